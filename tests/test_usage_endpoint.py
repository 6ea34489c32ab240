"""``POST /v1/usage`` through the real app, on both stores: credentials, the batch's shape,
per-event answers, exactly-once on retries and races — and never a 500."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from revenue_engine.auth import issue_token
from revenue_engine.documents import UsageCounter, UsageEvent
from revenue_engine.errors import ServiceUnavailable
from revenue_engine.services import usage
from revenue_engine.settings import Environment, Settings
from tests.conftest import make_settings
from tests.usage_world import INCLUDED, event, metered_engine, save_plan, subscribe

Start = Callable[[Settings], Any]
KEY = "uk_" + "k7" * 20
OTHER_KEY = "uk_" + "q9" * 20
SERVICE = {"authorization": f"Bearer {KEY}"}


def _settings(base: Settings, **overrides: Any) -> Settings:
    uri = base.mongodb_uri.get_secret_value() if base.mongodb_uri else None
    values: dict[str, Any] = {
        "mongodb_uri": uri,
        "mongodb_database": base.mongodb_database,
        "usage_api_keys": [KEY, OTHER_KEY],
        # Nothing here calls Stripe: no embedded emulator to start.
        "stripe_api_base": "http://127.0.0.1:9",
    }
    return make_settings(**{**values, **overrides})


@pytest.fixture
async def engine(client_for: Start, store_settings: Settings) -> httpx.AsyncClient:
    return await metered_engine(client_for, _settings(store_settings))


async def _post(
    client: httpx.AsyncClient, body: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    response = await client.post(
        "/v1/usage",
        content=json.dumps(body),
        headers={"content-type": "application/json", **(SERVICE if headers is None else headers)},
    )
    assert response.status_code != 500, response.text
    return response


async def _recorded() -> tuple[int, int]:
    """(events stored, units counted over every counter)."""
    counters = await UsageCounter.find_all().to_list()
    return await UsageEvent.find_all().count(), sum(c.used for c in counters)


async def test_a_batch_answers_each_event_in_order(engine: httpx.AsyncClient) -> None:
    body = {
        "events": [
            event("e1", 5),
            event("e2", 0),
            event("e1", 9),
            event("e3", 2, timestamp="2020-01-01T00:00:00Z"),
            event("e4", 3, org="org_nobody"),
            event("e5", 1, feature="seats"),
        ]
    }
    response = await _post(engine, body)
    assert response.status_code == 200
    answer = response.json()
    assert [(r["id"], r["status"], r.get("reason")) for r in answer["results"]] == [
        ("e1", "accepted", None),
        ("e2", "rejected", "INVALID_QUANTITY"),
        ("e1", "duplicate", None),
        ("e3", "rejected", "TIMESTAMP_TOO_OLD"),
        ("e4", "rejected", "UNKNOWN_ORGANIZATION"),
        ("e5", "rejected", "UNKNOWN_FEATURE"),
    ]
    assert (answer["accepted"], answer["duplicates"], answer["rejected"]) == (1, 1, 4)
    assert all("message" in r for r in answer["results"] if r["status"] != "accepted")
    assert await _recorded() == (1, 5)
    assert "app;dur=" in response.headers["server-timing"]


async def test_a_full_batch_retried_and_raced_counts_once(engine: httpx.AsyncClient) -> None:
    batch = {"events": [event(f"b{i}", 1 + i % 3) for i in range(1000)]}
    total = sum(1 + i % 3 for i in range(1000))
    first = await _post(engine, batch)
    assert first.status_code == 200
    assert first.json()["accepted"] == 1000
    answers = await asyncio.gather(*(_post(engine, batch) for _ in range(2)))
    assert [a.json()["duplicates"] for a in answers] == [1000, 1000]
    assert await _recorded() == (1000, total)


async def test_two_overlapping_batches_at_once(engine: httpx.AsyncClient) -> None:
    left = {"events": [event(f"o{i}", 1) for i in range(0, 300)]}
    right = {"events": [event(f"o{i}", 1) for i in range(150, 450)]}
    one, two = await asyncio.gather(_post(engine, left), _post(engine, right))
    assert one.json()["accepted"] + two.json()["accepted"] == 450
    assert one.json()["duplicates"] + two.json()["duplicates"] == 150
    assert await _recorded() == (450, 450)


async def test_the_cap_refuses_with_quota_exceeded_and_records_nothing(
    engine: httpx.AsyncClient,
) -> None:
    body = {"events": [event(f"c{i}", 300, org="org_capped") for i in range(4)]}
    answer = (await _post(engine, body)).json()
    assert [r.get("reason") for r in answer["results"]] == [None, None, None, "QUOTA_EXCEEDED"]
    assert await _recorded() == (3, 900)
    assert (
        await _post(engine, {"events": [event("c9", INCLUDED - 900, org="org_capped")]})
    ).json()["accepted"] == 1


MALFORMED: list[Any] = [
    [event("a", 1)],
    "events",
    None,
    17,
    {},
    {"events": None},
    {"events": {"id": "a"}},
    {"events": []},
    {"events": [event("a", 1), "not an event"]},
    {"events": [event("a", 1), [event("b", 1)]]},
    {"events": [{**event("a", 1), "qty": 2}]},
    {"events": [event("a", 1)], "extra": True},
    {"events": [event(f"m{i}", 1) for i in range(1001)]},
]


@pytest.mark.parametrize("body", MALFORMED, ids=range(len(MALFORMED)))
async def test_a_malformed_batch_is_400_and_records_nothing(
    engine: httpx.AsyncClient, body: Any
) -> None:
    response = await _post(engine, body)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert await _recorded() == (0, 0)


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b'{"events": [' + b"[" * 100 + b"]" * 100 + b"]}",
        b'{"events": [' + b"[]," * 5000 + b"[]]}",
        b'{"events": [{"id": "a", "quantity": 1' + b"0" * 5000 + b"}]}",
        b'\xff\xfe{"events": []}',
        json.dumps({"events": [{**event("ok", 1), "id": "\ud800"}]}).encode(),
        json.dumps({"events": [{"\udfff": 1}]}).encode(),
    ],
)
async def test_bad_json_is_400_and_records_nothing(
    engine: httpx.AsyncClient, content: bytes
) -> None:
    response = await engine.post(
        "/v1/usage", content=content, headers={**SERVICE, "content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["code"] in {"BAD_REQUEST", "BAD_USER_INPUT"}
    assert await _recorded() == (0, 0)


async def test_a_lone_surrogate_is_bad_user_input(engine: httpx.AsyncClient) -> None:
    content = json.dumps({"events": [{**event("x", 1), "feature": "api\ud800calls"}]}).encode()
    response = await engine.post(
        "/v1/usage", content=content, headers={**SERVICE, "content-type": "application/json"}
    )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "events[0].feature" in error["message"]


async def test_method_media_type_and_size(engine: httpx.AsyncClient) -> None:
    assert (await engine.get("/v1/usage", headers=SERVICE)).status_code == 405
    form = await engine.post(
        "/v1/usage", content=b"events=1", headers={**SERVICE, "content-type": "text/plain"}
    )
    assert form.status_code == 415
    big = {"events": [event(f"big{i}", 1, feature="api_calls" + " " * 1100) for i in range(1000)]}
    too_large = await _post(engine, big)
    assert too_large.status_code == 413
    assert await _recorded() == (0, 0)


async def test_the_largest_batch_the_contract_allows_fits_the_body_limit(
    engine: httpx.AsyncClient,
) -> None:
    # 1,000 events with 200-character ids, dated to the nanosecond: over 256 KiB, the limit of
    # every other route, and within the usage route's own.
    stamp = "2026-03-01T12:00:00.123456789+00:00"
    body = {"events": [event(f"{i:04d}" + "x" * 196, 1, timestamp=stamp) for i in range(1000)]}
    assert len(json.dumps(body)) > 262_144
    response = await _post(engine, body)
    assert response.status_code == 200, response.text
    assert len(response.json()["results"]) == 1000


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "UNAUTHENTICATED"),
        ({"authorization": "Bearer uk_wrong"}, 401, "UNAUTHENTICATED"),
        ({"authorization": f"Basic {KEY}"}, 401, "UNAUTHENTICATED"),
        ({"authorization": f"Bearer {KEY}x"}, 401, "UNAUTHENTICATED"),
        ({"authorization": "Bearer"}, 401, "UNAUTHENTICATED"),
    ],
)
async def test_wrong_credentials_are_refused(
    engine: httpx.AsyncClient, headers: dict[str, str], status: int, code: str
) -> None:
    response = await _post(engine, {"events": [event("a", 1)]}, headers)
    assert response.status_code == status
    assert response.json()["errors"][0]["extensions"]["code"] == code
    assert response.headers["www-authenticate"] == "Bearer"
    assert await _recorded() == (0, 0)


async def test_tokens_need_the_usage_role(engine: httpx.AsyncClient) -> None:
    settings = make_settings()
    member = issue_token(settings, "org_a", roles=[])
    refused = await _post(
        engine, {"events": [event("a", 1)]}, {"authorization": f"Bearer {member}"}
    )
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await _recorded() == (0, 0)
    service = issue_token(settings, "org_backend", roles=["usage"])
    ok = await _post(engine, {"events": [event("a", 1)]}, {"authorization": f"Bearer {service}"})
    assert ok.json()["accepted"] == 1  # for any organization
    admin = issue_token(settings, "org_ops", roles=["admin"])
    ok = await _post(engine, {"events": [event("b", 1)]}, {"authorization": f"Bearer {admin}"})
    assert ok.json()["accepted"] == 1
    second_key = await _post(
        engine, {"events": [event("c", 1)]}, {"authorization": f"Bearer {OTHER_KEY}"}
    )
    assert second_key.json()["accepted"] == 1  # rotation: every configured key works


async def test_development_headers_only_outside_production(
    client_for: Start, store_settings: Settings
) -> None:
    headers = {"x-organization-id": "org_backend", "x-roles": "usage"}
    dev = await client_for(_settings(store_settings, auth_dev_headers=True))
    plan = await save_plan()
    await subscribe("org_a", plan)
    assert (await _post(dev, {"events": [event("a", 1)]}, headers)).json()["accepted"] == 1
    prod_settings = _settings(
        store_settings,
        auth_dev_headers=True,
        stripe_secret_key="sk_test_" + "p1" * 12,
        stripe_api_base="http://127.0.0.1:9",
        mongodb_database=f"t_{uuid.uuid4().hex[:12]}",
    ).model_copy(update={"environment": Environment.PRODUCTION})
    prod = await client_for(prod_settings)
    refused = await _post(prod, {"events": [event("b", 1)]}, headers)
    assert refused.status_code == 401
    assert (await _post(prod, {"events": [event("b", 1)]})).status_code == 200  # the key works


async def test_the_store_failing_is_503_and_safe_to_retry(
    engine: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from revenue_engine import usage_endpoint

    async def down(*args: Any, **kwargs: Any) -> Any:
        raise ServiceUnavailable("the usage counter is busy; retry the batch")

    monkeypatch.setattr(usage_endpoint, "record_usage", down)
    response = await _post(engine, {"events": [event("a", 1)]})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAVAILABLE"
    monkeypatch.setattr(usage_endpoint, "record_usage", usage.record_usage)
    assert (await _post(engine, {"events": [event("a", 1)]})).json()["accepted"] == 1
