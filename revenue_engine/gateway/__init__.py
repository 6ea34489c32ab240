"""The Stripe seam: nothing outside this package calls the Stripe SDK."""

from revenue_engine.gateway.client import (
    EMULATOR_API_KEY,
    EMULATOR_MOUNT,
    PaymentMethodOwner,
    StripeGateway,
    idempotency_key,
)
from revenue_engine.gateway.models import (
    StripePrice,
    StripeSubscription,
    StripeSubscriptionItem,
    UnreadableSubscription,
    parse_listed,
    parse_subscription,
)
from revenue_engine.gateway.payment_methods import (
    CustomerDefaults,
    SavedMethod,
    SetupIntentView,
    customer_defaults,
)

__all__ = [
    "EMULATOR_API_KEY",
    "EMULATOR_MOUNT",
    "CustomerDefaults",
    "PaymentMethodOwner",
    "SavedMethod",
    "SetupIntentView",
    "StripeGateway",
    "StripePrice",
    "StripeSubscription",
    "StripeSubscriptionItem",
    "UnreadableSubscription",
    "customer_defaults",
    "idempotency_key",
    "parse_listed",
    "parse_subscription",
]
