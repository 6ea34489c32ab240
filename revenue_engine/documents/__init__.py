"""Beanie documents, one aggregate per module. No Strawberry and no Stripe imports here."""

from __future__ import annotations

from beanie import Document

from revenue_engine.documents.plan import BillingInterval, Overage, PlanPrice, SubscriptionPlan
from revenue_engine.documents.stripe_object_version import StripeObjectVersion
from revenue_engine.documents.webhook_event import WebhookEvent, WebhookEventStatus

#: Every document model; ``db.connect`` initialises them all (and creates their indexes).
DOCUMENT_MODELS: tuple[type[Document], ...] = (
    SubscriptionPlan,
    WebhookEvent,
    StripeObjectVersion,
)

__all__ = [
    "DOCUMENT_MODELS",
    "BillingInterval",
    "Overage",
    "PlanPrice",
    "StripeObjectVersion",
    "SubscriptionPlan",
    "WebhookEvent",
    "WebhookEventStatus",
]
