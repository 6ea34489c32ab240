"""The Stripe seam: nothing outside this package calls the Stripe SDK. Its consumers are typed by
the protocols of ``gateway.protocol`` (``StripeApi`` and its roles); ``StripeGateway`` implements
them."""

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
from revenue_engine.gateway.protocol import (
    CatalogCalls,
    CheckoutCalls,
    CustomerCalls,
    EventCalls,
    InvoiceCalls,
    MeterEventCalls,
    PaymentCalls,
    PortalCalls,
    PromotionCalls,
    SavedMethodCalls,
    SetupIntentCalls,
    StripeApi,
    SubscriptionCalls,
)

__all__ = [
    "EMULATOR_API_KEY",
    "EMULATOR_MOUNT",
    "CatalogCalls",
    "CheckoutCalls",
    "CustomerCalls",
    "CustomerDefaults",
    "EventCalls",
    "InvoiceCalls",
    "MeterEventCalls",
    "PaymentCalls",
    "PaymentMethodOwner",
    "PortalCalls",
    "PromotionCalls",
    "SavedMethod",
    "SavedMethodCalls",
    "SetupIntentCalls",
    "SetupIntentView",
    "StripeApi",
    "StripeGateway",
    "StripePrice",
    "StripeSubscription",
    "StripeSubscriptionItem",
    "SubscriptionCalls",
    "UnreadableSubscription",
    "customer_defaults",
    "idempotency_key",
    "parse_listed",
    "parse_subscription",
]
