"""Typed read models of the Stripe objects the engine reads, one module per kind of object
(``base`` holds what they share; its docstring says how they read Stripe's JSON)."""

from revenue_engine.gateway.models.subscription import (
    StripePrice,
    StripeRecurring,
    StripeSubscription,
    StripeSubscriptionItem,
    UnreadableSubscription,
    parse_listed,
    parse_subscription,
)

__all__ = [
    "StripePrice",
    "StripeRecurring",
    "StripeSubscription",
    "StripeSubscriptionItem",
    "UnreadableSubscription",
    "parse_listed",
    "parse_subscription",
]
