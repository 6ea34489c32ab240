"""A property of ``POST /v1/usage`` through the real app on both stores: any body from a
valid service credential answers 2xx or 4xx, never 5xx; a 200 answers every event, in order.

Bodies are batches of event-like objects whose every field may be plausible (a live
organization with a metered plan, its features, quantities near the cap, timestamps in and
around the window) or odd (lone surrogates, other types, 10^30, nesting), fields missing or
added, ids repeated; and JSON of any shape; and bytes that are not UTF-8.
"""

from __future__ import annotations

import json
import time
from typing import Any

from hypothesis import given, note
from hypothesis import strategies as st
from pydantic import SecretStr

from revenue_engine.settings import Settings
from tests.fuzz.budget import examples, fuzzing
from tests.fuzz.engine import Engine
from tests.fuzz.values import any_json, dumps, hostile_text, integers
from tests.usage_world import save_plan, subscribe

#: Examples on (the in-memory store, the wire server).
EXAMPLES = (150, 60)
KEY = "uk_" + "f3" * 20
HEADERS = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
#: Read once: the strategies must draw the same way on every run of an example.
NOW = int(time.time())


@st.composite
def events(draw: st.DrawFn) -> Any:
    rate = draw(st.sampled_from((0, 10, 40, 100)))

    def _odd(plausible: st.SearchStrategy[Any]) -> Any:
        if draw(st.integers(0, 99)) < 100 - rate:
            return draw(plausible)
        return draw(st.one_of(hostile_text(), any_json()))

    now = NOW
    stamp = st.one_of(
        st.integers(now - 40 * 86_400, now + 600),
        st.sampled_from((0, -1, 10**30, 2**63, 253_402_300_800)),
        st.integers(now - 86_400, now).map(
            lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
        ),
        st.sampled_from(("2026-03-01T12:00:00", "9999-12-31T23:59:59Z", "nope")),
    )
    event: dict[str, Any] = {
        "id": _odd(st.sampled_from(("e1", "e2", "e3", "x" * 200, "a:b.c-d_e"))),
        "organization_id": _odd(st.sampled_from(("org_a", "org_capped", "org_nobody"))),
        "feature": _odd(st.sampled_from(("api_calls", "storage_gb", "exports", "seats"))),
        "quantity": _odd(st.one_of(st.integers(1, 1200), integers(), st.floats())),
    }
    if draw(st.booleans()):
        event["timestamp"] = _odd(stamp)
    if draw(st.integers(0, 99)) >= 100 - rate:
        del event[draw(st.sampled_from(sorted(event)))]
    return event


def _bodies() -> st.SearchStrategy[bytes]:
    batches = st.lists(events(), min_size=1, max_size=30).map(lambda e: {"events": e})
    as_json = st.one_of(batches, batches, batches, any_json()).map(dumps)
    encoded = as_json.map(lambda text: text.encode("ascii"))
    odd = st.one_of(
        hostile_text().map(lambda text: text.encode("utf-8", "surrogatepass")),
        as_json.map(lambda text: text.encode("utf-16")),
    )
    return st.one_of(encoded, encoded, encoded, odd)


def test_any_body_answers_2xx_or_4xx(fuzz_settings: Settings) -> None:
    settings = fuzz_settings.model_copy(update={"usage_api_keys": [SecretStr(KEY)]})
    with Engine(settings) as engine:

        async def world() -> None:
            plan = await save_plan()
            await subscribe("org_a", plan)
            await subscribe("org_capped", plan, overage=False)

        engine.run(world())

        @fuzzing(examples(*EXAMPLES, fuzz_settings))
        @given(body=_bodies())
        def batch_holds(body: bytes) -> None:
            answer = engine.post("/v1/usage", body, HEADERS)
            note(f"answered {answer.status}: {answer.text[:300]}")
            shown = body[:1_500].decode("ascii", "backslashreplace")
            assert answer.status < 500, f"{answer.summary()}\nbody: {shown}\n" + "\n".join(
                answer.problems()
            )
            if answer.status == 200:
                sent = json.loads(body)["events"]
                results = json.loads(answer.text)["results"]
                assert len(results) == len(sent)
                assert all(r["status"] in {"accepted", "duplicate", "rejected"} for r in results)

        batch_holds()
