"""A property of the webhook route through the real app on both stores: any validly signed body
(signed as Stripe signs, with the configured secret) answers 2xx or 4xx, never 5xx.

Bodies are event-like envelopes whose every field may be of the right shape (a known event
type around Stripe's own example object) or odd: ids and types with lone surrogates or of
another type, ``created`` far out of range, ``livemode`` and ``data`` of any type, fields
missing or added; and JSON of any shape, nested past a recursive parser's stack; and bytes that
are not UTF-8. Bounded and reproducible (``budget``).
"""

from __future__ import annotations

import time
from typing import Any

from hypothesis import given, note
from hypothesis import strategies as st

from revenue_engine.settings import Settings
from revenue_engine.webhooks.dispatch import HANDLERS
from tests.fuzz.budget import examples, fuzzing
from tests.fuzz.engine import Answer, Engine
from tests.fuzz.values import LONE_SURROGATES, any_json, dumps, hostile_text, integers
from tests.stripe_events import SECRET, event_id, signature, stripe_object, with_secrets

#: Examples on (the in-memory store, the wire server).
EXAMPLES = (150, 60)

#: The example object each handled event type carries (Stripe's fixture of that kind).
_KINDS = {
    "charge": "charge",
    "checkout.session": "checkout.session",
    "customer.subscription": "subscription",
    "customer": "customer",
    "invoice": "invoice",
    "payment_intent": "payment_intent",
    "price": "price",
    "product": "product",
}
TYPES = sorted(HANDLERS)


def _kind(event_type: str) -> str:
    prefix = max((p for p in _KINDS if event_type.startswith(p + ".")), key=len, default="")
    return _KINDS.get(prefix, "balance")


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    # Each field is odd at ``rate`` percent: a few for an event that passes the envelope check
    # and reaches the ledger and the handlers, all for pure noise.
    rate = draw(st.sampled_from((5, 20, 50, 100)))

    def _odd(plausible: st.SearchStrategy[Any]) -> Any:
        if draw(st.integers(0, 99)) < 100 - rate:
            return draw(plausible)
        return draw(st.one_of(hostile_text(), any_json()))

    event_type = _odd(st.sampled_from((*TYPES, "balance.available", "v2.core.event")))
    kind = _kind(event_type) if isinstance(event_type, str) else "balance"
    obj: Any = stripe_object(kind)
    if draw(st.integers(0, 99)) >= 100 - 2 * rate:
        # One field of the object made odd (an id with a surrogate, a customer of another type…).
        field = draw(st.sampled_from(sorted(obj) or ["id"]))
        obj[field] = draw(st.one_of(hostile_text(), any_json()))
    now = int(time.time())
    created = st.one_of(
        st.just(now),
        st.just(now),
        st.sampled_from((10**30, 253402300800, -(10**12), 2**63, -(2**63), 0, -1, 2**31)),
        integers(),
        st.floats(allow_nan=False, allow_infinity=False),
    )
    envelope: dict[str, Any] = {
        "id": _odd(st.builds(event_id)),
        "object": _odd(st.just("event")),
        "api_version": _odd(st.just("2026-10-28.endive")),
        "created": _odd(created),
        "data": _odd(st.just({"object": obj})),
        "livemode": _odd(st.just(False)),
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }
    if draw(st.integers(0, 99)) >= 100 - rate:
        for name in draw(st.lists(st.sampled_from(sorted(envelope)), max_size=2, unique=True)):
            del envelope[name]
    if draw(st.integers(0, 99)) >= 100 - rate:
        envelope[draw(st.sampled_from(("extra", *LONE_SURROGATES)))] = draw(any_json())
    return envelope


def _bodies() -> st.SearchStrategy[bytes]:
    as_json = st.one_of(envelopes(), envelopes(), envelopes(), any_json()).map(dumps)
    encoded = as_json.map(lambda text: text.encode("ascii"))
    # Not UTF-8 at all (a raw lone surrogate), or with a BOM, NULs or trailing bytes.
    odd = st.one_of(
        hostile_text().map(lambda text: text.encode("utf-8", "surrogatepass")),
        as_json.map(lambda text: b"\xef\xbb\xbf" + text.encode("ascii")),
        as_json.map(lambda text: text.encode("utf-16")),
        as_json.map(lambda text: text.encode("ascii") + b"\x00garbage"),
    )
    return st.one_of(encoded, encoded, encoded, odd)


def deliver(engine: Engine, body: bytes) -> Answer:
    headers = {
        "content-type": "application/json; charset=utf-8",
        "stripe-signature": signature(body, SECRET),
        "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    }
    return engine.post("/webhooks/stripe", body, headers)


def test_any_validly_signed_body_answers_2xx_or_4xx(fuzz_settings: Settings) -> None:
    with Engine(with_secrets(fuzz_settings)) as engine:

        @fuzzing(examples(*EXAMPLES, fuzz_settings))
        @given(body=_bodies())
        def delivery_holds(body: bytes) -> None:
            answer = deliver(engine, body)
            note(f"answered {answer.status}: {answer.text[:300]}")
            shown = body[:1_500].decode("ascii", "backslashreplace")
            # An exception out of the app counts as the 500 Starlette answers (``Answer``).
            answered = 200 <= answer.status < 300 or 400 <= answer.status < 500
            assert answered, (
                f"signed delivery answered {answer.status}: {answer.summary()}\n"
                f"body: {shown}\n" + "\n".join(answer.problems())
            )

        delivery_holds()
