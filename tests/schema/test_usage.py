"""GraphQL ``recordUsage``, ``usage`` and ``subscriptionStatus.entitlements { used remaining }``
through the real app, on both stores: who may report and read, typed refusals, counts past
GraphQL's 32-bit Int."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from revenue_engine.documents import UsageCounter, UsageEvent
from revenue_engine.services import usage_reads
from revenue_engine.settings import Settings
from tests.conftest import make_settings
from tests.gql import gql
from tests.usage_world import INCLUDED, PACKAGE_PRICE, metered_engine

Start = Callable[[Settings], Any]
MEMBER = {"x-organization-id": "org_a"}
CAPPED = {"x-organization-id": "org_capped"}
SERVICE = {"x-organization-id": "org_backend", "x-roles": "usage"}
ADMIN = {"x-organization-id": "org_ops", "x-roles": "admin"}

RECORD = """
mutation($input: UsageEventInput!) {
  recordUsage(input: $input) {
    __typename
    ... on UsageRecorded { id status usage { feature used included remaining overageEnabled
      overageUnits overagePackages overageAmount currency packageSize reportedUnits } }
    ... on QuotaExceededError { feature included used }
    ... on UserError { code message }
  }
}"""
USAGE = """
query($org: String) {
  usage(organizationId: $org) {
    organizationId subscriptionId planUid periodStart periodEnd
    features { feature used included remaining overageAvailable overageEnabled packageSize
      overageUnits overagePackages overageAmount currency reportedUnits }
  }
}"""
STATUS = "{ subscriptionStatus { entitlements { key limit unlimited used remaining } } }"


def _settings(base: Settings, **overrides: Any) -> Settings:
    uri = base.mongodb_uri.get_secret_value() if base.mongodb_uri else None
    values: dict[str, Any] = {
        "mongodb_uri": uri,
        "mongodb_database": base.mongodb_database,
        "auth_dev_headers": True,
        "stripe_api_base": "http://127.0.0.1:9",  # nothing here calls Stripe
    }
    return make_settings(**{**values, **overrides})


@pytest.fixture
async def engine(client_for: Start, store_settings: Settings) -> httpx.AsyncClient:
    return await metered_engine(client_for, _settings(store_settings))


async def _record(
    client: httpx.AsyncClient, headers: dict[str, str], **event: Any
) -> dict[str, Any]:
    body = await gql(client, RECORD, {"input": {"feature": "api_calls", **event}}, headers)
    assert "errors" not in body, body
    answer: dict[str, Any] = body["data"]["recordUsage"]
    return answer


async def test_a_member_reports_its_own_usage_once(engine: httpx.AsyncClient) -> None:
    first = await _record(engine, MEMBER, id="evt_1", quantity=1200)
    assert first["__typename"] == "UsageRecorded"
    assert first["status"] == "ACCEPTED"
    assert first["usage"] == {
        "feature": "api_calls",
        "used": 1200,
        "included": INCLUDED,
        "remaining": 0,
        "overageEnabled": True,
        "overageUnits": 200,
        "overagePackages": 2,
        "overageAmount": 2 * PACKAGE_PRICE,
        "currency": "usd",
        "packageSize": 100,
        "reportedUnits": 0,
    }
    again = await _record(engine, MEMBER, id="evt_1", quantity=5)
    assert again["status"] == "DUPLICATE"
    assert again["usage"]["used"] == 1200


async def test_the_cap_answers_quota_exceeded_and_records_nothing(
    engine: httpx.AsyncClient,
) -> None:
    assert (await _record(engine, CAPPED, id="a", quantity=INCLUDED))["status"] == "ACCEPTED"
    refused = await _record(engine, CAPPED, id="b", quantity=1)
    assert refused == {
        "__typename": "QuotaExceededError",
        "feature": "api_calls",
        "included": INCLUDED,
        "used": INCLUDED,
        "code": "QUOTA_EXCEEDED",
        "message": refused["message"],
    }
    assert "overage is off" in refused["message"]
    assert await UsageEvent.find({"event_id": "b"}).count() == 0


@pytest.mark.parametrize(
    ("event", "code"),
    [
        ({"id": "q", "quantity": 0}, "INVALID_QUANTITY"),
        ({"id": "has space", "quantity": 1}, "INVALID_ID"),
        ({"id": "f", "quantity": 1, "feature": "seats"}, "UNKNOWN_FEATURE"),
        ({"id": "t", "quantity": 1, "timestamp": "2026-03-01T12:00:00"}, "INVALID_TIMESTAMP"),
        ({"id": "o", "quantity": 1, "timestamp": "2001-01-01T00:00:00Z"}, "TIMESTAMP_TOO_OLD"),
        ({"id": "n", "quantity": 1, "timestamp": "2999-01-01T00:00:00Z"}, "TIMESTAMP_IN_FUTURE"),
    ],
)
async def test_refused_events_are_typed(
    engine: httpx.AsyncClient, event: dict[str, Any], code: str
) -> None:
    answer = await _record(engine, MEMBER, **event)
    assert answer["__typename"] == "UsageRejectedError"
    assert answer["code"] == code
    assert await UsageEvent.find_all().count() == 0


async def test_an_organization_without_a_subscription(engine: httpx.AsyncClient) -> None:
    nobody = await _record(engine, {"x-organization-id": "org_nobody"}, id="a", quantity=1)
    assert nobody["code"] == "UNKNOWN_ORGANIZATION"
    usage = await gql(engine, USAGE, {}, {"x-organization-id": "org_nobody"})
    assert usage == {"data": {"usage": None}}


@pytest.mark.parametrize(
    "quantity", [1.5, 2.0, True, "5", -1, 2**53 + 1, 10**30, None, [1], {"n": 1}]
)
async def test_a_quantity_that_is_no_count_is_bad_user_input(
    engine: httpx.AsyncClient, quantity: Any
) -> None:
    body = await gql(
        engine, RECORD, {"input": {"id": "a", "feature": "api_calls", "quantity": quantity}}, MEMBER
    )
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await UsageEvent.find_all().count() == 0


async def test_a_literal_that_is_no_count_is_refused_before_running(
    engine: httpx.AsyncClient,
) -> None:
    for literal in ("1.5", '"5"', "-1", "9" * 40, "true"):
        query = f'mutation {{ recordUsage(input: {{id: "a", feature: "api_calls", quantity: {literal}}}) {{ __typename }} }}'
        body = await gql(engine, query, {}, MEMBER)
        assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", body
    assert await UsageEvent.find_all().count() == 0


async def test_who_may_report_for_which_organization(
    client_for: Start, store_settings: Settings, engine: httpx.AsyncClient
) -> None:
    other = await gql(
        engine,
        RECORD,
        {
            "input": {
                "id": "x",
                "feature": "api_calls",
                "quantity": 1,
                "organizationId": "org_capped",
            }
        },
        MEMBER,
    )
    assert other["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    anonymous = await gql(
        engine, RECORD, {"input": {"id": "x", "feature": "api_calls", "quantity": 1}}
    )
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    for headers in (SERVICE, ADMIN):
        ok = await _record(
            engine,
            headers,
            id=f"by_{headers['x-organization-id']}",
            quantity=1,
            organizationId="org_a",
        )
        assert ok["status"] == "ACCEPTED"
    assert await UsageEvent.find_all().count() == 2
    locked = await client_for(_settings(store_settings, usage_self_report=False))
    refused = await gql(
        locked, RECORD, {"input": {"id": "y", "feature": "api_calls", "quantity": 1}}, MEMBER
    )
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # The usage role still may (the in-memory store of this second app is empty: the event is
    # judged, not forbidden).
    allowed = await _record(locked, SERVICE, id="z", quantity=1, organizationId="org_a")
    assert allowed["__typename"] in {"UsageRecorded", "UsageRejectedError"}


async def test_usage_reads_the_current_period(engine: httpx.AsyncClient) -> None:
    await _record(engine, MEMBER, id="a", quantity=1250)
    for n in range(3):  # 10**9 at most per event
        await _record(engine, MEMBER, id=f"s{n}", quantity=10**9, feature="storage_gb")
    body = await gql(engine, USAGE, {}, MEMBER)
    usage = body["data"]["usage"]
    assert usage["organizationId"] == "org_a"
    assert usage["subscriptionId"] == "sub_org_a"
    assert usage["planUid"] == "metered"
    assert usage["periodStart"] < usage["periodEnd"]
    features = {f["feature"]: f for f in usage["features"]}
    assert list(features) == ["api_calls", "storage_gb", "exports"]
    assert features["api_calls"]["overageUnits"] == 250
    assert features["api_calls"]["overagePackages"] == 3
    assert features["api_calls"]["overageAmount"] == 3 * PACKAGE_PRICE
    assert features["storage_gb"] == {
        "feature": "storage_gb",
        "used": 3_000_000_000,  # past 2**31: a Count, serialised as a JSON number
        "included": None,
        "remaining": None,
        "overageAvailable": False,
        "overageEnabled": False,
        "packageSize": None,
        "overageUnits": 0,
        "overagePackages": 0,
        "overageAmount": 0,
        "currency": "usd",
        "reportedUnits": 0,
    }
    assert features["exports"]["used"] == 0
    assert features["exports"]["remaining"] == 50


async def test_usage_of_another_organization_needs_the_admin_role(
    engine: httpx.AsyncClient,
) -> None:
    await _record(engine, CAPPED, id="a", quantity=7)
    member = await gql(engine, USAGE, {"org": "org_capped"}, MEMBER)
    assert member["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    same = await gql(engine, USAGE, {"org": "org_a"}, MEMBER)
    assert same["data"]["usage"]["organizationId"] == "org_a"
    admin = await gql(engine, USAGE, {"org": "org_capped"}, ADMIN)
    assert admin["data"]["usage"]["features"][0]["used"] == 7


async def test_subscription_status_shows_used_and_remaining(engine: httpx.AsyncClient) -> None:
    await _record(engine, CAPPED, id="a", quantity=400)
    body = await gql(engine, STATUS, {}, CAPPED)
    rows = {e["key"]: e for e in body["data"]["subscriptionStatus"]["entitlements"]}
    assert rows["api_calls"] == {
        "key": "api_calls",
        "limit": INCLUDED,
        "unlimited": False,
        "used": 400,
        "remaining": INCLUDED - 400,
    }
    assert rows["storage_gb"] == {
        "key": "storage_gb",
        "limit": None,
        "unlimited": True,
        "used": 0,
        "remaining": None,
    }
    assert rows["seats"]["used"] is None  # a limit, not metered
    assert rows["seats"]["remaining"] is None
    assert rows["sso"]["used"] is None
    assert await UsageCounter.find_all().count() == 1


async def test_subscription_status_reads_the_counters_only_when_asked(
    engine: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``used`` and ``remaining`` cost a read of the period's counters: a query that asks
    neither does not read them; one that asks through a fragment does."""
    await _record(engine, CAPPED, id="a", quantity=400)
    reads: list[bool] = []
    real = usage_reads.entitlement_usage

    async def counted(*args: Any) -> Any:
        reads.append(True)
        return await real(*args)

    monkeypatch.setattr(usage_reads, "entitlement_usage", counted)
    plain = "{ subscriptionStatus { status entitlements { key limit } } }"
    body = await gql(engine, plain, {}, CAPPED)
    assert {e["key"] for e in body["data"]["subscriptionStatus"]["entitlements"]} >= {"api_calls"}
    assert reads == []
    spread = """{ subscriptionStatus { entitlements { key ...Used } } }
    fragment Used on SubscriptionEntitlement { used }"""
    body = await gql(engine, spread, {}, CAPPED)
    rows = {e["key"]: e for e in body["data"]["subscriptionStatus"]["entitlements"]}
    assert rows["api_calls"]["used"] == 400
    assert reads == [True]
    listed = "{ subscriptions { entitlements { key remaining } } }"
    body = await gql(engine, listed, {}, CAPPED)
    rows = {e["key"]: e for e in body["data"]["subscriptions"][0]["entitlements"]}
    assert rows["api_calls"]["remaining"] == INCLUDED - 400
    assert len(reads) == 2


SET_OVERAGE = """
mutation($feature: String!, $enabled: Boolean!) {
  setOverage(feature: $feature, enabled: $enabled) {
    __typename
    ... on OveragePayload { feature overageEnabled removalPending usage { overageEnabled } }
    ... on UserError { code message }
  }
}"""


async def test_overage_off_while_stripe_is_down_is_off_with_the_removal_pending(
    engine: httpx.AsyncClient,
) -> None:
    """Switching off refuses usage beyond the included quantity at once; the metered price's
    removal at Stripe (unreachable here) is left to the background, which retries it. The
    answer was a retryable error although the switch had taken effect."""
    body = await gql(engine, SET_OVERAGE, {"feature": "api_calls", "enabled": False}, MEMBER)
    assert body["data"]["setOverage"] == {
        "__typename": "OveragePayload",
        "feature": "api_calls",
        "overageEnabled": False,
        "removalPending": True,
        "usage": {"overageEnabled": False},
    }
    refused = await _record(engine, MEMBER, id="over", quantity=INCLUDED + 1)
    assert refused["__typename"] == "QuotaExceededError"
