"""The Stripe seam: nothing outside this package calls the Stripe SDK."""

from revenue_engine.gateway.client import (
    EMULATOR_API_KEY,
    EMULATOR_MOUNT,
    PaymentMethodOwner,
    StripeGateway,
    idempotency_key,
)
from revenue_engine.gateway.errors import (
    DuplicateMeterEvent,
    MeterEventTimestampRefused,
    StripeNotFound,
)

__all__ = [
    "EMULATOR_API_KEY",
    "EMULATOR_MOUNT",
    "DuplicateMeterEvent",
    "MeterEventTimestampRefused",
    "PaymentMethodOwner",
    "StripeGateway",
    "StripeNotFound",
    "idempotency_key",
]
