"""The dispatch table: every key is a real Stripe event type (or one Stripe sends to event
destinations only), and the README lists exactly the events to enable on the Stripe endpoint
— and names the others."""

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

README = Path(__file__).parent.parent / "README.md"


def stripe_event_types() -> set[str]:
    # The SDK's own list of event types an endpoint can subscribe to.
    enabled = WebhookEndpointCreateParams.__annotations__["enabled_events"]
    (literal,) = typing.get_args(enabled)
    return set(typing.get_args(literal)) - {"*"}


def readme_event_types() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("### Events to enable on the Stripe endpoint", 1)[1].split("\n#", 1)[0]
    return re.findall(r"^- `([a-z0-9_.]+)`$", section, flags=re.MULTILINE)


def test_every_handled_type_is_a_real_stripe_event_type() -> None:
    known = stripe_event_types()
    assert len(known) > 200
    assert sorted(set(HANDLERS) - known - DESTINATION_EVENT_TYPES) == []
    # Stripe offers no endpoint subscription to these: were one to appear, it belongs above.
    assert DESTINATION_EVENT_TYPES & known == set()
    assert set(HANDLERS) >= DESTINATION_EVENT_TYPES


def test_the_readme_lists_exactly_the_handled_types() -> None:
    assert (
        readme_event_types()
        == ENDPOINT_EVENT_TYPES
        == sorted(set(HANDLERS) - DESTINATION_EVENT_TYPES)
    )
    text = README.read_text(encoding="utf-8").split("## Webhooks", 1)[1]
    for name in DESTINATION_EVENT_TYPES:
        assert f"`{name}`" in text
