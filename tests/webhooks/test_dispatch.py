"""The dispatch table: every key is a real Stripe event type (or one Stripe sends to event
destinations only), and docs/webhooks.md lists exactly the events to enable on the Stripe
endpoint — and names the others."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from stripe.params import WebhookEndpointCreateParams

from revenue_engine.webhooks.dispatch import (
    DESTINATION_EVENT_TYPES,
    ENDPOINT_EVENT_TYPES,
    HANDLERS,
)

WEBHOOKS_PAGE = Path(__file__).parents[2] / "docs" / "webhooks.md"


def stripe_event_types() -> set[str]:
    # The SDK's own list of event types an endpoint can subscribe to.
    enabled = WebhookEndpointCreateParams.__annotations__["enabled_events"]
    (literal,) = typing.get_args(enabled)
    return set(typing.get_args(literal)) - {"*"}


def documented_event_types() -> list[str]:
    text = WEBHOOKS_PAGE.read_text(encoding="utf-8")
    section = text.split("## Events to enable on the Stripe endpoint", 1)[1].split("\n#", 1)[0]
    return re.findall(r"^- `([a-z0-9_.]+)`$", section, flags=re.MULTILINE)


def test_every_handled_type_is_a_real_stripe_event_type() -> None:
    known = stripe_event_types()
    assert len(known) > 200
    assert sorted(set(HANDLERS) - known - DESTINATION_EVENT_TYPES) == []
    # Stripe offers no endpoint subscription to these: were one to appear, it belongs above.
    assert DESTINATION_EVENT_TYPES & known == set()
    assert set(HANDLERS) >= DESTINATION_EVENT_TYPES


def test_the_webhooks_page_lists_exactly_the_handled_types() -> None:
    assert (
        documented_event_types()
        == ENDPOINT_EVENT_TYPES
        == sorted(set(HANDLERS) - DESTINATION_EVENT_TYPES)
    )
    text = WEBHOOKS_PAGE.read_text(encoding="utf-8")
    for name in DESTINATION_EVENT_TYPES:
        assert f"`{name}`" in text
