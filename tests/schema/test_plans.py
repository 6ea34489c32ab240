"""The plan catalog over GraphQL: queries, admin mutations, typed errors, masking."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from revenue_engine.documents import SubscriptionPlan
from tests.gql import ADMIN, MEMBER, gql

PLANS = """
query { plans { uid name sortOrder perSeat minSeats maxSeats
  prices { interval amount currency lookupKey }
  overages { key prices { interval amount } } entitlements { key enabled limit unlimited } } }
"""

UPSERT = """
mutation($input: PlanInput!, $createOnly: Boolean! = false) {
  upsertPlan(input: $input, createOnly: $createOnly) {
    __typename
    ... on PlanPayload { plan { uid name active prices { interval amount currency } } }
    ... on UserError { message code }
    ... on ValidationError { fields { field message } }
  }
}
"""


def plan_input(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "uid": "team",
        "name": "Team",
        "entitlements": [{"key": "seats", "limit": 10}, {"key": "sso", "enabled": False}],
        "prices": [{"interval": "MONTH", "amount": 2500, "currency": "eur"}],
    }
    data.update(overrides)
    return data


async def test_demo_plans_are_listed_in_order(client: httpx.AsyncClient) -> None:
    body = await gql(client, PLANS)
    assert "errors" not in body
    plans = body["data"]["plans"]
    assert [p["uid"] for p in plans] == ["starter", "pro", "business", "enterprise"]
    starter = plans[0]
    assert {
        "interval": "MONTH",
        "amount": 1900,
        "currency": "usd",
        "lookupKey": "starter_month",
    } in (starter["prices"])
    assert {"key": "sso", "enabled": False, "limit": None, "unlimited": False} in starter[
        "entitlements"
    ]
    assert {"key": "seats", "enabled": True, "limit": 3, "unlimited": False} in starter[
        "entitlements"
    ]
    business = plans[2]
    assert business["perSeat"] is True
    assert (business["minSeats"], business["maxSeats"]) == (5, 500)
    assert "seats" not in {e["key"] for e in business["entitlements"]}  # the number bought
    assert plans[0]["perSeat"] is False
    assert (plans[0]["minSeats"], plans[0]["maxSeats"]) == (None, None)
    enterprise = plans[3]
    assert {"key": "seats", "enabled": True, "limit": None, "unlimited": True} in enterprise[
        "entitlements"
    ]
    assert {"key": "sso", "enabled": True, "limit": None, "unlimited": False} in enterprise[
        "entitlements"
    ]


async def test_plan_by_uid_and_unknown_is_null(client: httpx.AsyncClient) -> None:
    body = await gql(
        client,
        'query { a: plan(uid: "pro") { uid price(interval: YEAR) { amount } } '
        'b: plan(uid: "nope") { uid } }',
    )
    assert body["data"] == {"a": {"uid": "pro", "price": {"amount": 49000}}, "b": None}


async def test_admin_upserts_and_archives_a_plan(client: httpx.AsyncClient) -> None:
    body = await gql(client, UPSERT, {"input": plan_input()}, ADMIN)
    result = body["data"]["upsertPlan"]
    assert result["__typename"] == "PlanPayload"
    assert result["plan"]["prices"] == [{"interval": "MONTH", "amount": 2500, "currency": "eur"}]
    stored = await SubscriptionPlan.find_one({"uid": "team"})
    assert stored is not None
    assert stored.entitlements == {"seats": 10, "sso": False}

    archived = await gql(
        client,
        'mutation { archivePlan(uid: "team") '
        "{ __typename ... on PlanPayload { plan { active } } } }",
        headers=ADMIN,
    )
    assert archived["data"]["archivePlan"] == {
        "__typename": "PlanPayload",
        "plan": {"active": False},
    }
    listed = await gql(client, "query { plans { uid } }")
    assert "team" not in [p["uid"] for p in listed["data"]["plans"]]


async def test_archive_unknown_plan_is_a_typed_not_found(client: httpx.AsyncClient) -> None:
    body = await gql(
        client,
        'mutation { archivePlan(uid: "ghost") { __typename ... on UserError { code } } }',
        headers=ADMIN,
    )
    assert body["data"]["archivePlan"] == {"__typename": "NotFoundError", "code": "NOT_FOUND"}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"prices": [{"interval": "MONTH", "amount": -100, "currency": "usd"}]}, "prices.0.amount"),
        (
            {"prices": [{"interval": "MONTH", "amount": 100, "currency": "zzz"}]},
            "prices.0.currency",
        ),
        ({"prices": []}, "prices"),
        ({"uid": "no spaces allowed"}, "uid"),
        (
            {
                "prices": [
                    {"interval": "MONTH", "amount": 100, "currency": "eur"},
                    {"interval": "YEAR", "amount": 1000, "currency": "usd"},
                ]
            },
            "prices.1.currency",
        ),
        (
            {
                "overages": [
                    {
                        "key": "more_seats",
                        "name": "More seats",
                        "kind": "PACK",
                        "feature": "seats",
                        "packSize": 5,
                        "prices": [{"interval": "MONTH", "amount": 5, "currency": "usd"}],
                    }
                ]
            },
            "overages.0.prices.0.currency",
        ),
        ({"entitlements": [{"key": "seats", "limit": -5}]}, "entitlements.0.limit"),
        ({"entitlements": [{"key": "Seats!", "limit": 5}]}, "entitlements.0.key"),
        (
            {"entitlements": [{"key": "seats", "limit": 3}, {"key": "seats", "limit": 30}]},
            "entitlements.1.key",
        ),
        (
            {"prices": [{"interval": "MONTH", "amount": 100, "currency": "eur", "lookupKey": " "}]},
            "prices.0.lookupKey",
        ),
        (
            {"prices": [{"interval": "MONTH", "amount": 100, "currency": "eur", "lookupKey": ""}]},
            "prices.0.lookupKey",
        ),
        (
            {
                "prices": [
                    {
                        "interval": "MONTH",
                        "amount": 100,
                        "currency": "eur",
                        "lookupKey": "team plan",
                    }
                ]
            },
            "prices.0.lookupKey",
        ),
        (
            {
                "prices": [
                    {"interval": "MONTH", "amount": 100, "currency": "eur", "lookupKey": "k" * 201}
                ]
            },
            "prices.0.lookupKey",
        ),
        (
            {
                "prices": [
                    {"interval": "MONTH", "amount": 100, "currency": "eur", "lookupKey": "team"},
                    {"interval": "YEAR", "amount": 900, "currency": "eur", "lookupKey": "team"},
                ]
            },
            "prices.1.lookupKey",
        ),
        (
            {
                "prices": [
                    {
                        "interval": "MONTH",
                        "amount": 100,
                        "currency": "eur",
                        "lookupKey": "starter_month",
                    }
                ]
            },
            "prices.0.lookupKey",
        ),
    ],
)
async def test_invalid_plan_is_a_typed_error_and_writes_nothing(
    client: httpx.AsyncClient, overrides: dict[str, Any], field: str
) -> None:
    before = await SubscriptionPlan.find_all().count()
    body = await gql(client, UPSERT, {"input": plan_input(**overrides)}, ADMIN)
    result = body["data"]["upsertPlan"]
    assert result["__typename"] == "ValidationError"
    assert result["code"] == "VALIDATION"
    assert field in [f["field"] for f in result["fields"]]
    assert await SubscriptionPlan.find_all().count() == before


async def test_a_lookup_key_of_another_plan_is_refused_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    saved = await gql(client, UPSERT, {"input": plan_input()}, ADMIN)
    assert saved["data"]["upsertPlan"]["__typename"] == "PlanPayload"
    # The starter plan's yearly price carries the lookup key "starter_year" by default.
    taken = {"interval": "MONTH", "amount": 2500, "currency": "eur", "lookupKey": "starter_year"}
    body = await gql(client, UPSERT, {"input": plan_input(name="Renamed", prices=[taken])}, ADMIN)
    result = body["data"]["upsertPlan"]
    assert result["__typename"] == "ValidationError"
    assert result["fields"] == [
        {
            "field": "prices.0.lookupKey",
            "message": "lookup key 'starter_year' is used by plan 'starter'",
        }
    ]
    stored = await SubscriptionPlan.find_one({"uid": "team"})
    assert stored is not None
    assert (stored.name, stored.prices[0].lookup_key) == ("Team", "team_month")
    # The plan keeps its own keys when it is saved again.
    again = await gql(client, UPSERT, {"input": plan_input(name="Team 2")}, ADMIN)
    assert again["data"]["upsertPlan"]["__typename"] == "PlanPayload"


async def test_duplicate_uid_with_create_only_is_typed(client: httpx.AsyncClient) -> None:
    body = await gql(
        client, UPSERT, {"input": plan_input(uid="starter"), "createOnly": True}, ADMIN
    )
    result = body["data"]["upsertPlan"]
    assert result["__typename"] == "AlreadyExistsError"
    assert result["code"] == "ALREADY_EXISTS"
    starter = await SubscriptionPlan.find_one({"uid": "starter"})
    assert starter is not None
    assert starter.name == "Starter"


async def test_upsert_needs_admin(client: httpx.AsyncClient) -> None:
    anonymous = await gql(client, UPSERT, {"input": plan_input()})
    assert anonymous["data"] is None
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    member = await gql(client, UPSERT, {"input": plan_input()}, MEMBER)
    assert member["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await SubscriptionPlan.find_one({"uid": "team"}) is None


async def test_viewer_reflects_the_dev_headers(client: httpx.AsyncClient) -> None:
    body = await gql(client, "query { viewer { organizationId email roles } }", headers=MEMBER)
    assert body["data"]["viewer"] == {
        "organizationId": "org_a",
        "email": "a@example.com",
        "roles": [],
    }


async def test_validation_errors_carry_a_code(client: httpx.AsyncClient) -> None:
    body = await gql(client, "query { plans { nope } }")
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    syntax = await gql(client, "query { plans { ")
    assert syntax["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


async def test_depth_and_alias_limits(client: httpx.AsyncClient) -> None:
    aliases = " ".join(f"a{i}: plans {{ uid }}" for i in range(16))
    body = await gql(client, f"query {{ {aliases} }}")
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "aliases" in body["errors"][0]["message"]


async def test_unexpected_errors_are_masked_with_the_request_id(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from revenue_engine.services import plan_store

    async def broken(**_: object) -> list[object]:
        raise RuntimeError("mongodb://admin:hunter2@db.internal/prod exploded")

    monkeypatch.setattr(plan_store, "list_plans", broken)
    response = await client.post(
        "/graphql", json={"query": "{ plans { uid } }"}, headers={"x-request-id": "req-42"}
    )
    error = response.json()["errors"][0]
    assert error["message"] == "Unexpected error (request id req-42)."
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": "req-42"}
    assert "hunter2" not in response.text
    assert "request_id=req-42" in caplog.text


@pytest.mark.parametrize(
    ("variables", "needle"),
    [
        (
            {
                "input": {
                    "uid": "team",
                    "name": "Team",
                    "prices": [{"amount": 1, "currency": "usd"}],
                }
            },
            "interval",
        ),
        (
            {"input": plan_input(prices=[{"interval": "WEEK", "amount": 1, "currency": "usd"}])},
            "WEEK",
        ),
        (
            {"input": plan_input(prices=[{"interval": "MONTH", "amount": "x", "currency": "usd"}])},
            "amount",
        ),
        (
            {
                "input": plan_input(
                    prices=[{"interval": "MONTH", "amount": 2**40, "currency": "usd"}]
                )
            },
            "amount",
        ),
        ({}, "$input"),
    ],
)
async def test_bad_variables_are_a_request_error_not_a_crash(
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    variables: dict[str, Any],
    needle: str,
) -> None:
    before = await SubscriptionPlan.find_all().count()
    body = await gql(client, UPSERT, variables, ADMIN)
    assert body.get("data") is None
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert needle in error["message"]
    assert "Unexpected error" not in error["message"]
    assert "unexpected error" not in caplog.text
    assert await SubscriptionPlan.find_all().count() == before


async def test_a_store_outage_in_a_query_is_unavailable_not_masked(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pymongo.errors import ServerSelectionTimeoutError

    from revenue_engine.services import plan_store

    async def down(**_: object) -> list[object]:
        raise ServerSelectionTimeoutError("db.internal:27017: timed out")

    monkeypatch.setattr(plan_store, "list_plans", down)
    body = await gql(client, "{ plans { uid } }")
    error = body["errors"][0]
    assert error["extensions"]["code"] == "UNAVAILABLE"
    assert error["extensions"]["retryAfterSeconds"] == 1.0
    assert "db.internal" not in str(body)


@pytest.mark.parametrize(
    ("content", "content_type", "needle"),
    [
        ("{bad", "application/json", "JSON"),
        ("[]", "application/json", "Batching"),
        ('{"query": 5}', "application/json", "query"),
        ('{"variables": {}}', "application/json", "No GraphQL query"),
        ("query=x", "text/plain", "content type"),
    ],
)
async def test_an_unreadable_request_answers_in_the_graphql_shape(
    client: httpx.AsyncClient, content: str, content_type: str, needle: str
) -> None:
    response = await client.post(
        "/graphql", content=content, headers={"content-type": content_type}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert "data" not in body  # the request never executed
    [error] = body["errors"]
    assert error["extensions"] == {"code": "BAD_REQUEST"}
    assert needle in error["message"]


ADDONS = """
query { plans { uid metered overages { key kind feature packSize packageSize unit
  prices { interval amount } } } }
"""

UPSERT_ADDONS = """
mutation($input: PlanInput!) {
  upsertPlan(input: $input) {
    __typename
    ... on PlanPayload { plan { uid metered entitlements { key limit unlimited }
      overages { key kind feature packSize packageSize } } }
    ... on ValidationError { fields { field message } }
  }
}
"""


async def test_demo_add_ons_say_what_they_do(client: httpx.AsyncClient) -> None:
    body = await gql(client, ADDONS)
    plans = {p["uid"]: p for p in body["data"]["plans"]}
    assert plans["pro"]["metered"] == ["api_calls", "bandwidth_gb"]
    assert plans["pro"]["overages"] == [
        {
            "key": "bandwidth",
            "kind": "PACK",
            "feature": "bandwidth_gb",
            "packSize": 100,
            "packageSize": None,
            "unit": "100 GB",
            "prices": [{"interval": "MONTH", "amount": 900}, {"interval": "YEAR", "amount": 9000}],
        },
        {
            "key": "api_calls",
            "kind": "METERED",
            "feature": "api_calls",
            "packSize": None,
            "packageSize": 10000,
            "unit": "10,000 calls",
            "prices": [{"interval": "MONTH", "amount": 1500}, {"interval": "YEAR", "amount": 1500}],
        },
    ]
    assert [o["kind"] for o in plans["starter"]["overages"]] == ["METERED"]
    assert [o["kind"] for o in plans["enterprise"]["overages"]] == ["PACK"]


def metered_plan(**overrides: Any) -> dict[str, Any]:
    return plan_input(
        entitlements=[
            {"key": "seats", "limit": 10},
            {"key": "api_calls", "limit": 5000},
            {"key": "storage_gb", "unlimited": True},
        ],
        metered=["api_calls", "storage_gb"],
        overages=[
            {
                "key": "seats",
                "name": "More seats",
                "kind": "PACK",
                "feature": "seats",
                "packSize": 5,
                "prices": [{"interval": "MONTH", "amount": 1000, "currency": "eur"}],
            },
            {
                "key": "calls",
                "name": "Extra calls",
                "kind": "METERED",
                "feature": "api_calls",
                "packageSize": 1000,
                "prices": [{"interval": "MONTH", "amount": 300, "currency": "eur"}],
            },
        ],
        **overrides,
    )


async def test_admin_saves_packs_metered_add_ons_and_unlimited_quotas(
    client: httpx.AsyncClient,
) -> None:
    body = await gql(client, UPSERT_ADDONS, {"input": metered_plan()}, ADMIN)
    plan = body["data"]["upsertPlan"]["plan"]
    assert plan["metered"] == ["api_calls", "storage_gb"]
    assert {"key": "storage_gb", "limit": None, "unlimited": True} in plan["entitlements"]
    assert plan["overages"] == [
        {"key": "seats", "kind": "PACK", "feature": "seats", "packSize": 5, "packageSize": None},
        {
            "key": "calls",
            "kind": "METERED",
            "feature": "api_calls",
            "packSize": None,
            "packageSize": 1000,
        },
    ]
    stored = await SubscriptionPlan.find_one({"uid": "team"})
    assert stored is not None
    assert stored.entitlements["storage_gb"] is None
    assert stored.metered_addon("api_calls") is not None


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"kind": None}, "overages.1.kind", "say what this add-on does: `kind: pack`"),
        ({"packageSize": 0}, "overages.1.packageSize", "package_size must be between 1 and"),
        ({"packSize": 3}, "overages.1.packSize", "pack_size is for pack add-ons"),
        ({"feature": "seats"}, "overages.1.feature", "feature 'seats' must be listed in"),
        ({"feature": "storage_gb"}, "overages.1.feature", "feature 'storage_gb' is unlimited"),
    ],
)
async def test_an_add_on_that_does_not_say_what_it_does_is_refused(
    client: httpx.AsyncClient, change: dict[str, Any], field: str, message: str
) -> None:
    data = metered_plan()
    data["overages"][1].update(change)
    body = await gql(client, UPSERT_ADDONS, {"input": data}, ADMIN)
    result = body["data"]["upsertPlan"]
    assert result["__typename"] == "ValidationError"
    fields = {f["field"]: f["message"] for f in result["fields"]}
    assert fields[field].startswith(message), fields
    assert await SubscriptionPlan.find_one({"uid": "team"}) is None


async def test_a_quota_both_limited_and_unlimited_is_refused(client: httpx.AsyncClient) -> None:
    data = plan_input(entitlements=[{"key": "seats", "limit": 3, "unlimited": True}])
    body = await gql(client, UPSERT_ADDONS, {"input": data}, ADMIN)
    result = body["data"]["upsertPlan"]
    assert result["fields"] == [
        {"field": "entitlements.0.limit", "message": "a quota is a limit or unlimited, not both"}
    ]
    assert await SubscriptionPlan.find_one({"uid": "team"}) is None


async def test_a_plan_stored_before_add_on_kinds_is_still_served(
    client: httpx.AsyncClient,
) -> None:
    await SubscriptionPlan.find_one({"uid": "starter"}).update(
        {"$unset": {"metered": "", "overages.0.kind": "", "overages.0.feature": ""}}
    )
    body = await gql(client, ADDONS)
    assert "errors" not in body
    starter = next(p for p in body["data"]["plans"] if p["uid"] == "starter")
    assert starter["metered"] == []
    assert (starter["overages"][0]["kind"], starter["overages"][0]["feature"]) == (None, None)
