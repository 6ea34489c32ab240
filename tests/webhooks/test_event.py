"""A validly signed webhook never answers 500 (issue 11, breaks 2 and 3): an envelope with an
out-of-range ``created``, a lone surrogate anywhere, or a field of the wrong type is 400
(malformed envelope) and nothing is recorded, on both stores."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from revenue_engine.clock import as_utc
from revenue_engine.documents import WebhookEvent
from revenue_engine.settings import Settings
from tests.stripe_events import event, post, with_secrets

Start = Callable[[Settings], Any]
Change = Callable[[dict[str, Any]], None]

#: A lone surrogate: JSON carries it (``json.dumps`` writes ``\ud800``), UTF-8 cannot.
S = "a\ud800b"


def unhandled() -> dict[str, Any]:
    return event("balance.available", {"object": "balance", "available": [], "livemode": False})


def setting(path: str, value: object) -> Change:
    """Set ``value`` at the dotted ``path`` of the envelope (``data.object.id``)."""

    def change(payload: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = payload
        for key in parents:
            target = target[key]
        target[last] = value

    return change


def removing(path: str) -> Change:
    def change(payload: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = payload
        for key in parents:
            target = target[key]
        del target[last]

    return change


def both(*changes: Change) -> Change:
    def change(payload: dict[str, Any]) -> None:
        for one in changes:
            one(payload)

    return change


REFUSED: dict[str, Change] = {
    # --- created out of range (datetime.fromtimestamp failed in the ledger) ---------------
    "created 10^30": setting("created", 10**30),
    "created 2^63": setting("created", 2**63),
    "created 253402300800 (year 10000)": setting("created", 253_402_300_800),
    "created -10^12": setting("created", -(10**12)),
    "created -1": setting("created", -1),
    "created 0": setting("created", 0),
    "created 1999-12-31T23:59:59Z": setting("created", 946_684_799),
    "created 2100-01-01": setting("created", 4_102_444_800),
    "created as a float": setting("created", 1_700_000_000.5),
    "created as a boolean": setting("created", True),
    "created null": setting("created", None),
    # --- lone surrogates ------------------------------------------------------------------
    "surrogate in id": setting("id", "evt_" + S),
    "surrogate in type": setting("type", "balance." + S),
    "surrogate in api_version": setting("api_version", S),
    "surrogate in data.object": setting("data.object.available", [{"currency": S}]),
    "surrogate in a key of data.object": setting("data.object." + S, 1),
    "surrogate in previous_attributes": setting("data.previous_attributes", {"x": S}),
    "surrogate in request.id": setting("request", {"id": S, "idempotency_key": None}),
    "surrogate in an unknown field": setting("extra", {"deep": [[S]]}),
    # --- wrong types and shapes of envelope fields --------------------------------------------
    "id a number": setting("id", 5),
    "id empty": setting("id", ""),
    "id too long": setting("id", "evt_" + "x" * 300),
    "id with a newline": setting("id", "evt_1\nforged=1"),
    "type a list": setting("type", ["balance.available"]),
    "type with a control character": setting("type", "balance.\x00available"),
    "livemode a string": setting("livemode", "false"),
    "livemode null": setting("livemode", None),
    "livemode missing": removing("livemode"),
    "api_version a number": setting("api_version", 2024),
    "data a list": setting("data", [{"object": {}}]),
    "data.object a string": setting("data.object", "balance"),
    "data.object null": setting("data.object", None),
    "previous_attributes a list": setting("data.previous_attributes", []),
    "previous_attributes a string": setting("data.previous_attributes", "x"),
    "request a number": setting("request", 5),
    "request a list": setting("request", []),
    "request.id a number": setting("request", {"id": 5, "idempotency_key": None}),
    "request.idempotency_key an object": setting("request", {"id": None, "idempotency_key": {}}),
    "pending_webhooks negative": setting("pending_webhooks", -1),
    "pending_webhooks a string": setting("pending_webhooks", "1"),
    "pending_webhooks a boolean": setting("pending_webhooks", True),
    "pending_webhooks a float": setting("pending_webhooks", 1.5),
    "account a number": setting("account", 5),
    "context an object": setting("context", {}),
    "object not event": setting("object", "charge"),
}

ACCEPTED: dict[str, Change] = {
    "created 2000-01-01": setting("created", 946_684_800),
    "created 2099-12-31T23:59:59Z": setting("created", 4_102_444_799),
    "request as a bare id (API versions before 2017-05-25)": setting("request", "req_123"),
    "request null": setting("request", None),
    "no pending_webhooks or request": both(removing("pending_webhooks"), removing("request")),
    "previous_attributes an object": setting("data.previous_attributes", {"available": []}),
    "account and context": both(setting("account", "acct_1"), setting("context", "acct_1")),
    "api_version null": setting("api_version", None),
    "non-ASCII text and an escaped pair": setting("data.object.note", "Grüße \ud83d\ude00"),
    "a field Stripe may add later": setting("reason", {"type": "automation"}),
}


def payload_with(change: Change) -> dict[str, Any]:
    payload = copy.deepcopy(unhandled())
    change(payload)
    return payload


async def rows() -> int:
    return await WebhookEvent.find_all().count()


async def test_malformed_envelopes_are_400_and_not_recorded(
    client_for: Start, store_settings: Settings
) -> None:
    client: httpx.AsyncClient = await client_for(with_secrets(store_settings))
    failures: dict[str, str] = {}
    for name, change in REFUSED.items():
        try:
            response = await post(client, payload_with(change))
        except Exception as exc:  # the app crashed: a 500, and Stripe would redeliver for days
            failures[name] = f"raised {exc!r}"
            continue
        if response.status_code != 400 or "error" not in response.json():
            failures[name] = f"HTTP {response.status_code}: {response.text[:200]}"
    assert not failures, "\n".join(f"{name}: {found}" for name, found in failures.items())
    assert await rows() == 0


async def test_sound_envelopes_at_the_edges_are_accepted(
    client_for: Start, store_settings: Settings
) -> None:
    client: httpx.AsyncClient = await client_for(with_secrets(store_settings))
    answers = {}
    for name, change in ACCEPTED.items():
        response = await post(client, payload_with(change))
        answers[name] = (response.status_code, response.json().get("status"))
    assert answers == dict.fromkeys(ACCEPTED, (200, "ignored"))
    assert await rows() == len(ACCEPTED)


async def test_the_400_names_the_problem_without_echoing_the_text(
    client_for: Start, store_settings: Settings
) -> None:
    client: httpx.AsyncClient = await client_for(with_secrets(store_settings))
    response = await post(client, payload_with(setting("data.object.available", [{"c": S}])))
    assert response.status_code == 400
    message = response.json()["error"]
    assert "not valid Unicode" in message
    assert "data.object.available[0].c" in message
    response = await post(client, payload_with(setting("created", 10**30)))
    assert response.json() == {"error": "the event's created timestamp is out of range"}


@pytest.mark.parametrize("created", [946_684_800, 4_102_444_799])
async def test_created_at_the_edges_is_stored_as_that_date(
    client_for: Start, store_settings: Settings, created: int
) -> None:
    client: httpx.AsyncClient = await client_for(with_secrets(store_settings))
    payload = payload_with(setting("created", created))
    assert (await post(client, payload)).status_code == 200
    row = await WebhookEvent.find_one({"event_id": payload["id"]})
    assert row is not None
    assert as_utc(row.created) == datetime.fromtimestamp(created, UTC)


async def test_an_event_of_too_many_objects_is_refused_before_decoding(
    client_for: Callable[[Settings], Any], store_settings: Settings
) -> None:
    # 340,000 empty arrays (1 MiB, the body limit): decoding and walking them held the event
    # loop about a second.
    client = await client_for(with_secrets(store_settings))
    body = b'{"object": "event", "z": {"y": "\\ud800"}, "x": [' + b",".join([b"[]"] * 340_000)
    body += b"]}"
    response = await post(client, body)
    assert response.status_code == 400
    assert "more than 20,000 objects and arrays" in response.json()["error"]
    assert await WebhookEvent.find_all().count() == 0
