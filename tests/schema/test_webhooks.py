"""Admin GraphQL over the webhook ledger: ``webhookEvents`` (filters, cursor pagination) and
``replayWebhookEvent`` — and both refused to non-admins."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from revenue_engine.clock import utcnow
from revenue_engine.documents import WebhookEvent, WebhookEventStatus
from revenue_engine.settings import Settings
from revenue_engine.webhooks import dispatch, ledger
from revenue_engine.webhooks.context import HandlerContext
from revenue_engine.webhooks.errors import TransientWebhookError
from revenue_engine.webhooks.event import StripeEvent
from tests.conftest import make_settings
from tests.gql import ADMIN, MEMBER, gql
from tests.stripe_events import SECRET, event, post, stripe_object

Start = Callable[[Settings], Any]

EVENTS = """
query($status: WebhookEventStatus, $type: String, $first: Int, $after: String) {
  webhookEvents(status: $status, type: $type, first: $first, after: $after) {
    edges { cursor node { id type status attempts lastError livemode apiVersion
                          created receivedAt processedAt } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

REPLAY = """
mutation($id: ID!) {
  replayWebhookEvent(id: $id) {
    __typename
    ... on ReplayWebhookEventPayload { outcome event { id status attempts lastError } }
    ... on UserError { code message }
  }
}
"""


class Flaky:
    def __init__(self) -> None:
        self.broken = True
        self.calls = 0

    async def __call__(self, event: StripeEvent, context: HandlerContext) -> None:
        self.calls += 1
        if self.broken:
            raise ValueError("bug in handler")


@pytest.fixture
def flaky(monkeypatch: pytest.MonkeyPatch) -> Flaky:
    handler = Flaky()
    monkeypatch.setitem(dispatch.HANDLERS, "product.updated", handler)
    return handler


@pytest.fixture
async def client(client_for: Start) -> httpx.AsyncClient:
    settings = make_settings(
        environment="development",
        stripe_webhook_secret=[SECRET],
        mongodb_database=f"t_{uuid.uuid4().hex[:12]}",
    )
    started: httpx.AsyncClient = await client_for(settings)
    return started


async def deliver(client: httpx.AsyncClient, type: str, obj: dict[str, Any]) -> str:
    payload = event(type, obj)
    response = await post(client, payload)
    assert response.status_code == 200
    return str(payload["id"])


async def delivered_row(client: httpx.AsyncClient) -> tuple[str, WebhookEvent]:
    """A ``product.updated`` delivered, and its ledger row."""
    event_id = await deliver(client, "product.updated", stripe_object("product"))
    row = await WebhookEvent.find_one({"event_id": event_id})
    assert row is not None
    return event_id, row


async def test_non_admins_are_refused(client: httpx.AsyncClient) -> None:
    member = await gql(client, EVENTS, headers=MEMBER)
    assert member["data"] is None
    assert member["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    anonymous = await gql(client, EVENTS)
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    replay = await gql(client, REPLAY, {"id": "evt_1"}, headers=MEMBER)
    assert replay["data"] is None
    assert replay["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_events_are_listed_newest_first_page_by_page(
    client: httpx.AsyncClient, flaky: Flaky
) -> None:
    ids = [await deliver(client, "balance.available", {"object": "balance"}) for _ in range(5)]
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        body = await gql(client, EVENTS, {"first": 2, "after": after}, headers=ADMIN)
        assert "errors" not in body, body
        page = body["data"]["webhookEvents"]
        seen += [edge["node"]["id"] for edge in page["edges"]]
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ids[::-1]
    assert pages == 3
    node = (await gql(client, EVENTS, {"first": 1}, headers=ADMIN))["data"]["webhookEvents"][
        "edges"
    ][0]["node"]
    assert node["status"] == "IGNORED"
    assert node["attempts"] == 1
    assert node["livemode"] is False
    assert node["apiVersion"] == "2026-10-28.endive"
    assert node["lastError"] == "no handler for this event type"
    assert node["processedAt"] is not None


async def test_events_filter_by_status_and_type(client: httpx.AsyncClient, flaky: Flaky) -> None:
    failed = await deliver(client, "product.updated", stripe_object("product"))
    await deliver(client, "balance.available", {"object": "balance"})
    by_status = await gql(client, EVENTS, {"status": "FAILED"}, headers=ADMIN)
    edges = by_status["data"]["webhookEvents"]["edges"]
    assert [e["node"]["id"] for e in edges] == [failed]
    assert edges[0]["node"]["lastError"] == "ValueError: bug in handler"
    by_type = await gql(client, EVENTS, {"type": "balance.available"}, headers=ADMIN)
    assert len(by_type["data"]["webhookEvents"]["edges"]) == 1
    none = await gql(client, EVENTS, {"status": "PROCESSING"}, headers=ADMIN)
    assert none["data"]["webhookEvents"] == {
        "edges": [],
        "pageInfo": {"hasNextPage": False, "endCursor": None},
    }


async def test_an_abandoned_transient_event_is_listed_as_failed(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unknown_org(event: StripeEvent, context: HandlerContext) -> None:
        raise TransientWebhookError("organization org_9 not known yet")

    monkeypatch.setitem(dispatch.HANDLERS, "product.updated", unknown_org)
    payload = event("product.updated", stripe_object("product"))
    assert (await post(client, payload)).status_code == 503
    # Stripe's test mode retried a few times, then stopped; hours later an admin looks.
    await WebhookEvent.find_one({"event_id": payload["id"]}).update(
        {"$set": {"received_at": utcnow() - ledger.GIVE_UP_AFTER_TEST - timedelta(minutes=1)}}
    )
    listed = await gql(client, EVENTS, {"status": "FAILED"}, headers=ADMIN)
    [edge] = listed["data"]["webhookEvents"]["edges"]
    assert (edge["node"]["id"], edge["node"]["status"]) == (payload["id"], "FAILED")
    assert "organization org_9 not known yet" in edge["node"]["lastError"]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"first": 101}, "first must be between 1 and 100"),
        ({"first": 0}, "first must be between 1 and 100"),
        ({"after": "not-a-cursor"}, "invalid cursor"),
    ],
)
async def test_bad_page_arguments_are_validation_errors(
    client: httpx.AsyncClient, variables: dict[str, Any], message: str
) -> None:
    body = await gql(client, EVENTS, variables, headers=ADMIN)
    assert body["errors"][0]["extensions"]["code"] == "VALIDATION"
    assert body["errors"][0]["message"] == message


async def test_the_payload_is_the_event_stripe_sent(client: httpx.AsyncClient) -> None:
    event_id = await deliver(client, "balance.available", {"object": "balance", "amount": 7})
    body = await gql(
        client, "{ webhookEvents(first: 1) { edges { node { payload } } } }", None, ADMIN
    )
    payload = body["data"]["webhookEvents"]["edges"][0]["node"]["payload"]
    assert payload["id"] == event_id
    assert payload["data"]["object"] == {"object": "balance", "amount": 7}


async def test_the_payload_is_read_when_a_fragment_asks_for_it(client: httpx.AsyncClient) -> None:
    event_id = await deliver(client, "balance.available", {"object": "balance", "amount": 8})
    query = """
    query { webhookEvents(first: 1) { edges { node { id ...P } } } }
    fragment P on WebhookEvent { ... on WebhookEvent { payload } }
    """
    body = await gql(client, query, None, ADMIN)
    node = body["data"]["webhookEvents"]["edges"][0]["node"]
    assert node["id"] == event_id
    assert node["payload"]["data"]["object"] == {"object": "balance", "amount": 8}


async def test_a_page_without_payloads_leaves_them_in_the_store(
    client: httpx.AsyncClient,
) -> None:
    ids = [await deliver(client, "balance.available", {"object": "balance"}) for _ in range(3)]
    rows, more = await ledger.list_events(first=2, with_payload=False)
    assert [row.event_id for row in rows] == ids[::-1][:2]
    assert more
    assert [row.payload for row in rows] == ["", ""]
    full, _ = await ledger.list_events(first=2)
    assert all(json.loads(row.payload)["id"] == row.event_id for row in full)
    # Through GraphQL, a page that does not select the payload answers the same rows.
    body = await gql(
        client, "{ webhookEvents(first: 2) { edges { node { id status } } } }", None, ADMIN
    )
    assert [e["node"]["id"] for e in body["data"]["webhookEvents"]["edges"]] == ids[::-1][:2]


async def test_replay_unknown_event_is_not_found(client: httpx.AsyncClient) -> None:
    body = await gql(client, REPLAY, {"id": "evt_missing"}, headers=ADMIN)
    assert body["data"]["replayWebhookEvent"] == {
        "__typename": "NotFoundError",
        "code": "NOT_FOUND",
        "message": "webhook event 'evt_missing' was not found",
    }


async def test_w17_replay_after_the_fix_processes_the_failed_event(
    client: httpx.AsyncClient, flaky: Flaky
) -> None:
    event_id = await deliver(client, "product.updated", stripe_object("product"))
    flaky.broken = False  # the bug is fixed and deployed
    body = await gql(client, REPLAY, {"id": event_id}, headers=ADMIN)
    assert body["data"]["replayWebhookEvent"] == {
        "__typename": "ReplayWebhookEventPayload",
        "outcome": "PROCESSED",
        "event": {"id": event_id, "status": "PROCESSED", "attempts": 2, "lastError": None},
    }
    assert flaky.calls == 2


async def test_replay_of_a_stored_row_that_breaks_the_envelope_rules_fails_it(
    client: httpx.AsyncClient, flaky: Flaky
) -> None:
    # A row recorded before the envelope's rules tightened (a `created` far out of range).
    event_id, row = await delivered_row(client)
    stored = json.loads(row.payload)
    stored["created"] = 10**30
    row.payload = json.dumps(stored)
    await row.save()
    body = await gql(client, REPLAY, {"id": event_id}, headers=ADMIN)
    result = body["data"]["replayWebhookEvent"]
    assert result["outcome"] == "FAILED", body
    assert result["event"]["status"] == "FAILED"
    assert result["event"]["lastError"].startswith("MalformedEvent:")
    assert flaky.calls == 1  # never dispatched again


async def test_replay_of_an_event_being_processed_is_busy(
    client: httpx.AsyncClient, flaky: Flaky
) -> None:
    event_id, row = await delivered_row(client)
    row.status, row.claimed_at, row.claim_token = WebhookEventStatus.PROCESSING, utcnow(), "x"
    await row.save()
    body = await gql(client, REPLAY, {"id": event_id}, headers=ADMIN)
    assert body["data"]["replayWebhookEvent"]["outcome"] == "BUSY"
    assert flaky.calls == 1
