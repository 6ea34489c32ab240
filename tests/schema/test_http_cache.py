"""HTTP caching of the public catalog (``schema.http_cache``): a catalog query over GET carries an
``ETag`` and ``Cache-Control: public``; a repeat with the tag is ``304`` without executing the
query; a change to the catalog changes the tag; every other answer is ``no-store``. And the
catalog's answers from memory: a repeated catalog query, GET or POST, is not executed again
until the catalog changes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from revenue_engine.app import EngineGraphQL
from revenue_engine.documents import SubscriptionPlan
from revenue_engine.documents.plan import CATALOG_VERSIONS
from revenue_engine.schema import http_cache
from revenue_engine.schema.caches import LRU
from revenue_engine.services import plan_cache, plan_store
from tests.gql import ADMIN, MEMBER

PLANS = {"query": "{ plans { uid name } }"}


@pytest.fixture
def list_plans_calls(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Each execution of the ``plans`` resolver appends to this (the real read still runs)."""
    calls: list[bool] = []
    real = plan_store.list_plans

    async def counted(**kwargs: Any) -> Any:
        calls.append(True)
        return await real(**kwargs)

    monkeypatch.setattr(plan_store, "list_plans", counted)
    return calls


async def get(client: httpx.AsyncClient, params: dict[str, str], **headers: str) -> httpx.Response:
    return await client.get("/graphql", params=params, headers=headers)


async def test_a_repeat_with_the_tag_is_304_without_executing(
    client: httpx.AsyncClient, list_plans_calls: list[bool]
) -> None:
    first = await get(client, PLANS)
    assert first.status_code == 200
    assert first.json()["data"]["plans"]
    tag = first.headers["etag"]
    assert tag.startswith('"')
    assert tag.endswith('"')
    assert first.headers["cache-control"] == "public, max-age=30"
    assert len(list_plans_calls) == 1

    again = await get(client, PLANS, **{"if-none-match": tag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == tag
    assert again.headers["cache-control"] == "public, max-age=30"
    assert len(list_plans_calls) == 1  # not executed

    # A weak tag, a list holding it, and "*" match too (RFC 9110's weak comparison).
    for header in (f"W/{tag}", f'"other", {tag}', "*"):
        assert (await get(client, PLANS, **{"if-none-match": header})).status_code == 304
    # A tag of something else: answered in full (from the answers kept), with the same tag.
    other = await get(client, PLANS, **{"if-none-match": '"0123"'})
    assert other.status_code == 200
    assert other.json() == first.json()
    assert other.headers["etag"] == tag


async def test_a_change_to_the_catalog_changes_the_tag(client: httpx.AsyncClient) -> None:
    tag = (await get(client, PLANS)).headers["etag"]
    body = {
        "query": 'mutation { archivePlan(uid: "starter") { __typename } }',
    }
    archived = await client.post("/graphql", json=body, headers=ADMIN)
    assert archived.json()["data"]["archivePlan"]["__typename"] == "PlanPayload"

    stale = await get(client, PLANS, **{"if-none-match": tag})
    assert stale.status_code == 200  # this instance's write is seen at once
    assert "starter" not in [p["uid"] for p in stale.json()["data"]["plans"]]
    assert stale.headers["etag"] != tag


async def test_another_instances_write_changes_the_tag_within_the_check_interval(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1_000.0]
    monkeypatch.setattr(plan_cache.time, "monotonic", lambda: now[0])
    tag = (await get(client, PLANS)).headers["etag"]
    # What another engine process does: a write and the version increment, not counted here.
    collection = SubscriptionPlan.get_motor_collection()
    await collection.update_one({"uid": "pro"}, {"$set": {"name": "Pro 2"}})
    await collection.database[CATALOG_VERSIONS].update_one(
        {"_id": "plans"}, {"$inc": {"version": 1}}, upsert=True
    )
    now[0] += plan_cache.CHECK_INTERVAL / 2
    assert (await get(client, PLANS, **{"if-none-match": tag})).status_code == 304
    now[0] += plan_cache.CHECK_INTERVAL
    fresh = await get(client, PLANS, **{"if-none-match": tag})
    assert fresh.status_code == 200
    assert "Pro 2" in [p["name"] for p in fresh.json()["data"]["plans"]]
    assert fresh.headers["etag"] != tag


async def test_the_tag_names_the_request_as_sent(client: httpx.AsyncClient) -> None:
    query = "query($uid: ID!) { plan(uid: $uid) { uid } }"
    pro = await get(client, {"query": query, "variables": '{"uid": "pro"}'})
    starter = await get(client, {"query": query, "variables": '{"uid": "starter"}'})
    assert pro.json()["data"]["plan"]["uid"] == "pro"
    assert pro.headers["etag"] != starter.headers["etag"]
    # pro's tag does not stand for starter's answer
    crossed = await get(
        client,
        {"query": query, "variables": '{"uid": "starter"}'},
        **{"if-none-match": pro.headers["etag"]},
    )
    assert crossed.status_code == 200
    assert crossed.json()["data"]["plan"]["uid"] == "starter"


@pytest.mark.parametrize(
    "query",
    [
        "{ plans { uid } __typename }",
        "query Catalog { ...F } fragment F on Query { plans { uid } }",
        '{ ... on Query { plan(uid: "pro") { uid } } }',
    ],
)
async def test_catalog_only_shapes_are_cacheable(client: httpx.AsyncClient, query: str) -> None:
    response = await get(client, {"query": query})
    assert "errors" not in response.json()
    assert response.headers["cache-control"].startswith("public")
    assert "etag" in response.headers


@pytest.mark.parametrize(
    "params",
    [
        {"query": "{ plans { uid } subscriptionStatus { hasSubscription } }"},
        {"query": "{ ...F } fragment F on Query { viewer { organizationId } }"},
        {
            "query": "query A { plans { uid } } query B { viewer { organizationId } }",
            "operationName": "B",
        },
        {"query": "{ plans { uid nope } }"},  # fails validation: an error is never cached
    ],
)
async def test_everything_else_is_no_store_without_a_tag(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await get(client, params, **MEMBER)
    assert response.status_code in (200, 400)
    assert response.headers["cache-control"] == "no-store"
    assert "etag" not in response.headers


async def test_posts_and_mutations_are_never_cacheable(client: httpx.AsyncClient) -> None:
    posted = await client.post("/graphql", json=PLANS)
    assert posted.json()["data"]["plans"]
    assert posted.headers["cache-control"] == "no-store"
    assert "etag" not in posted.headers
    mutation = await get(
        client, {"query": 'mutation { archivePlan(uid: "pro") { __typename } }'}, **ADMIN
    )
    assert mutation.status_code in (400, 405)
    assert "etag" not in mutation.headers
    assert (await SubscriptionPlan.find_one({"uid": "pro"})).active  # type: ignore[union-attr]


async def test_an_unknown_query_text_is_executed_whatever_tag_it_brings(
    client: httpx.AsyncClient, list_plans_calls: list[bool]
) -> None:
    """A conditional request of a text never executed here is not answered from the tag: it
    runs (so the conditional path never parses what the limits have not seen)."""
    first = await get(client, PLANS)
    http_cache.KNOWN.entries.clear()  # a new instance, or the text fell out of the LRU
    http_cache.RESPONSES.entries.clear()
    again = await get(client, PLANS, **{"if-none-match": first.headers["etag"]})
    assert again.status_code == 200
    assert len(list_plans_calls) == 2


async def test_hostile_conditional_headers_are_plain_misses(client: httpx.AsyncClient) -> None:
    await get(client, PLANS)
    for header in ("", ",,,", "W/", '"' + "x" * 4000 + '"', "\u00e9t\u00e9"):
        response = await client.get(
            "/graphql",
            params=PLANS,
            headers=[(b"if-none-match", header.encode("utf-8"))],
        )
        assert response.status_code == 200, header
        assert response.json()["data"]["plans"]


async def test_a_repeated_catalog_query_is_answered_from_memory_until_the_catalog_changes(
    client: httpx.AsyncClient, list_plans_calls: list[bool]
) -> None:
    answers = [(await client.post("/graphql", json=PLANS)).json() for _ in range(3)]
    assert answers[0] == answers[1] == answers[2]
    assert answers[0]["data"]["plans"]
    assert len(list_plans_calls) == 1
    # Other variables or another operation name are another answer.
    named = {"query": "query Catalog { plans { uid name } }", "operationName": "Catalog"}
    assert (await client.post("/graphql", json=named)).json() == answers[0]
    assert len(list_plans_calls) == 2
    # A change to the catalog: executed again, and the change is in the answer.
    body = {"query": 'mutation { archivePlan(uid: "pro") { __typename } }'}
    assert (await client.post("/graphql", json=body, headers=ADMIN)).status_code == 200
    fresh = (await client.post("/graphql", json=PLANS)).json()
    assert "pro" not in [p["uid"] for p in fresh["data"]["plans"]]
    assert len(list_plans_calls) == 3


async def test_answers_with_errors_and_large_answers_are_not_kept(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    http_cache.RESPONSES.entries.clear()
    bad = {"query": "query($uid: ID!) { plan(uid: $uid) { uid } }", "variables": {}}
    assert "errors" in (await client.post("/graphql", json=bad)).json()
    assert not http_cache.RESPONSES.entries
    monkeypatch.setattr(http_cache, "RESPONSE_MAX_BYTES", 10)
    assert (await client.post("/graphql", json=PLANS)).json()["data"]["plans"]
    assert not http_cache.RESPONSES.entries
    monkeypatch.setattr(http_cache, "RESPONSES", LRU(2))
    monkeypatch.setattr(http_cache, "RESPONSE_MAX_BYTES", 65_536)
    for uid in ("starter", "pro", "business"):
        query = {"query": "query($u: ID!) { plan(uid: $u) { uid } }", "variables": {"u": uid}}
        assert (await client.post("/graphql", json=query)).json()["data"]["plan"]["uid"] == uid
    assert len(http_cache.RESPONSES.entries) == 2  # the LRU keeps its bound


@pytest.fixture
def executions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each request the HTTP view hands to GraphQL appends its method (the real view runs)."""
    calls: list[str] = []
    real = EngineGraphQL.run

    async def counted(self: EngineGraphQL, request: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(request.method)
        return await real(self, request, *args, **kwargs)

    monkeypatch.setattr(EngineGraphQL, "run", counted)
    return calls


async def test_a_repeated_request_is_answered_as_kept_before_graphql_runs(
    client: httpx.AsyncClient, executions: list[str]
) -> None:
    http_cache.RESPONSES.entries.clear()
    first = await client.post("/graphql", json=PLANS)
    again = await client.post("/graphql", json=PLANS)
    assert again.status_code == 200
    assert again.content == first.content
    assert again.json()["data"]["plans"]
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["cache-control"] == "no-store"
    assert int(again.headers["content-length"]) == len(first.content)
    assert again.headers["x-request-id"] != first.headers["x-request-id"]  # still its own
    assert executions == ["POST"]
    # Over GET: the tag and Cache-Control come back as first sent.
    got = [await get(client, PLANS) for _ in range(2)]
    assert got[0].headers["etag"] == got[1].headers["etag"]
    assert got[1].headers["cache-control"] == "public, max-age=30"
    assert executions == ["POST", "GET"]
    # Another Accept header, or other bytes for the same query: executed (then kept too).
    accept = {"accept": "application/graphql-response+json"}
    await client.post("/graphql", json=PLANS, headers=accept)
    spaced = b'{"query": "{ plans { uid name } }"}  '
    await client.post("/graphql", content=spaced, headers={"content-type": "application/json"})
    await client.post("/graphql", content=spaced, headers={"content-type": "application/json"})
    assert executions == ["POST", "GET", "POST", "POST"]


async def test_a_kept_answer_still_needs_a_valid_credential(
    client: httpx.AsyncClient, executions: list[str]
) -> None:
    await client.post("/graphql", json=PLANS)
    forged = {"authorization": "Bearer not-a-token"}
    refused = await client.post("/graphql", json=PLANS, headers=forged)
    assert refused.status_code == 401
    assert "plans" not in refused.text


async def test_per_caller_queries_and_long_requests_are_never_kept(
    client: httpx.AsyncClient, executions: list[str]
) -> None:
    http_cache.RESPONSES.entries.clear()
    status = {"query": "{ subscriptionStatus { status } }"}
    for _ in range(2):
        assert (await client.post("/graphql", json=status, headers=MEMBER)).status_code == 200
    long = {"query": "{ plans { uid } }" + " " * http_cache.REQUEST_MAX_BYTES}
    for _ in range(2):
        assert (await client.post("/graphql", json=long)).json()["data"]["plans"]
    assert len(executions) == 4
    assert not http_cache.RESPONSES.entries
