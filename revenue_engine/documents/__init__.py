"""Beanie documents, one aggregate per module. No Strawberry and no Stripe imports here."""

from __future__ import annotations

from beanie import Document

from revenue_engine.documents.checkout import CheckoutSession, CheckoutStatus
from revenue_engine.documents.customer import Customer
from revenue_engine.documents.discount import AppliedDiscount
from revenue_engine.documents.lease import Lease
from revenue_engine.documents.payment import Payment
from revenue_engine.documents.plan import (
    AddonKind,
    BillingInterval,
    Overage,
    PlanPrice,
    SubscriptionPlan,
)
from revenue_engine.documents.rate_limit import RateLimitCounter
from revenue_engine.documents.stripe_object_version import StripeObjectVersion
from revenue_engine.documents.subscription import (
    LIVE_STATUSES,
    TERMINAL_STATUSES,
    AuditEntry,
    AuditSource,
    Subscription,
    SubscriptionItem,
)
from revenue_engine.documents.usage import (
    BillingMeter,
    MeterErrorReport,
    UsageCounter,
    UsageEvent,
)
from revenue_engine.documents.webhook_event import WebhookEvent, WebhookEventStatus

#: Every document model; ``db.connect`` initialises them all (and creates their indexes).
DOCUMENT_MODELS: tuple[type[Document], ...] = (
    SubscriptionPlan,
    Customer,
    CheckoutSession,
    Subscription,
    AuditEntry,
    Payment,
    WebhookEvent,
    StripeObjectVersion,
    RateLimitCounter,
    Lease,
    UsageEvent,
    UsageCounter,
    BillingMeter,
    MeterErrorReport,
)

__all__ = [
    "DOCUMENT_MODELS",
    "LIVE_STATUSES",
    "TERMINAL_STATUSES",
    "AddonKind",
    "AppliedDiscount",
    "AuditEntry",
    "AuditSource",
    "BillingInterval",
    "BillingMeter",
    "CheckoutSession",
    "CheckoutStatus",
    "Customer",
    "Lease",
    "MeterErrorReport",
    "Overage",
    "Payment",
    "PlanPrice",
    "RateLimitCounter",
    "StripeObjectVersion",
    "Subscription",
    "SubscriptionItem",
    "SubscriptionPlan",
    "UsageCounter",
    "UsageEvent",
    "WebhookEvent",
    "WebhookEventStatus",
]
