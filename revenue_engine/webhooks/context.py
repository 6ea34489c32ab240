"""``HandlerContext``: what a webhook handler may use besides the event itself."""

from __future__ import annotations

from dataclasses import dataclass

from revenue_engine.settings import Settings


@dataclass(frozen=True, slots=True)
class HandlerContext:
    """Dependencies of handlers (the Stripe gateway joins here once it exists)."""

    settings: Settings
    #: The deployment's mode: events of the other mode are ignored, never applied.
    livemode: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> HandlerContext:
        return cls(settings=settings, livemode=settings.livemode)
