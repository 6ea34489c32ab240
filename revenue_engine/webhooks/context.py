"""``HandlerContext``: what a webhook handler may use besides the event itself."""

from __future__ import annotations

from dataclasses import dataclass

from revenue_engine.gateway import StripeApi, StripeGateway
from revenue_engine.settings import Settings


@dataclass(frozen=True, slots=True)
class HandlerContext:
    """Dependencies of handlers."""

    settings: Settings
    #: The deployment's mode: events of the other mode are ignored, never applied.
    livemode: bool
    #: Handlers re-read objects from Stripe through it (never trusting event order).
    gateway: StripeApi

    @classmethod
    def from_settings(cls, settings: Settings, gateway: StripeApi | None = None) -> HandlerContext:
        return cls(
            settings=settings,
            livemode=settings.livemode,
            gateway=gateway if gateway is not None else StripeGateway.from_settings(settings),
        )
