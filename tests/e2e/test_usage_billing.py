"""Usage-based billing end to end: the served engine (emulator embedded, webhooks signed and
delivered to the engine's own route over HTTP), the real SDK, a Stripe test clock per customer,
usage sent to ``POST /v1/usage`` with a service key and reported by the engine's background
loop (every 0.1 s here) — through the renewal invoice Stripe makes at the period end.

The demo plans: Pro includes 250,000 API calls a month; its metered add-on ``api_calls`` bills
$15 per 10,000 beyond (packages rounded up). Starter includes 10,000, $2 per 1,000.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest
import stripe
from stripe_emulator import Emulator
from stripe_emulator.server import UvicornThread

from revenue_engine.app import create_app
from revenue_engine.documents import Subscription, UsageCounter, UsageEvent, WebhookEvent
from revenue_engine.settings import Settings
from tests.conftest import make_settings
from tests.wire import free_port

DAY = 86_400
KEY = "uk_e2e_" + "u5" * 16
SERVICE = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
METER_EVENTS = "/v1/billing/meter_events"
EVENT_NAME = "revenue_engine.api_calls"
PRO_INCLUDED = 250_000

T = TypeVar("T")

USAGE = """query { usage { planUid periodStart periodEnd features { feature used included
  remaining overageAvailable overageEnabled packageSize overageUnits overagePackages
  overageAmount currency reportedUnits } } }"""
INVOICES = "query { invoices(first: 10) { nodes { id status amountDue amountPaid currency } } }"
CREATE_SUBSCRIPTION = """mutation($input: CreateSubscriptionInput!) { createSubscription(
  input: $input) { __typename ... on SubscriptionPayload { subscription { subscriptionId status
  overages } } ... on UserError { code message } } }"""
CANCEL_AT_END = """mutation { cancelSubscription(atPeriodEnd: true) { __typename
  ... on SubscriptionPayload { subscription { cancelAtPeriodEnd } } } }"""
CHANGE_PLAN = """mutation($input: ChangePlanInput!) { changeSubscriptionPlan(input: $input) {
  __typename ... on SubscriptionPayload { subscription { planUid overages } }
  ... on UserError { code message } } }"""


@dataclass(frozen=True)
class Served:
    url: str
    emulator: Emulator
    settings: Settings


@pytest.fixture
def served() -> Iterator[Served]:
    """A fresh engine per test: its own store (mongomock checks a unique index by scanning the
    collection, so inserts slow down with every event already stored) and its own emulator."""
    port = free_port()
    settings = make_settings(
        environment="development",
        public_base_url=f"http://127.0.0.1:{port}",
        mongodb_database=f"t_{uuid.uuid4().hex[:12]}",
        usage_api_keys=[KEY],
        usage_report_interval_seconds=0.1,
        # A timed-out meter event is retried soon (the faults below hang for longer).
        stripe_timeout_seconds=1.5,
    )
    app = create_app(settings)
    with UvicornThread(app, port=port) as server:
        emulator = app.state.emulator
        assert isinstance(emulator, Emulator)
        yield Served(server.url, emulator, settings)


@pytest.fixture
async def sdk(served: Served) -> AsyncIterator[stripe.StripeClient]:
    url = served.url + "/stripe-emulator"
    http_client = stripe.HTTPXClient(timeout=10)
    yield stripe.StripeClient(
        "sk_test_usage",
        stripe_version="2026-10-28.endive",
        http_client=http_client,
        max_network_retries=0,
        base_addresses={"api": url, "connect": url, "files": url, "meter_events": url},
    )
    await http_client.close_async()


async def eventually(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    within: float = 20,
    what: str = "",
) -> T:
    """``probe()`` until ``done`` says yes (the background loop and webhooks are asynchronous)."""
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"{what or 'condition'} not reached: {value}"
        await asyncio.sleep(0.05)


def calls(prefix: str, count: int, quantity: int = 100, **extra: Any) -> list[dict[str, Any]]:
    """``count`` events ``<prefix><n>`` of ``quantity`` API calls (no organization yet)."""
    return [{"id": f"{prefix}{n}", "quantity": quantity, **extra} for n in range(count)]


class Tenant:
    """One organization: its member's GraphQL calls, its backend's usage batches, its Stripe
    customer on a test clock."""

    def __init__(self, served: Served, sdk: stripe.StripeClient, org: str) -> None:
        self.served = served
        self.sdk = sdk
        self.org = org
        self.headers = {"x-organization-id": org, "x-customer-email": f"{org}@example.com"}
        self.customer_id = ""
        self.clock_id = ""
        self.subscription_id = ""
        self.started = 0

    async def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT) as client:
            response = await client.post(
                f"{self.served.url}/graphql",
                json={"query": query, "variables": variables or {}},
                headers=self.headers,
            )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    async def post(
        self, events: list[dict[str, Any]], headers: dict[str, str] | None = None
    ) -> httpx.Response:
        body = {
            "events": [{"organization_id": self.org, "feature": "api_calls", **e} for e in events]
        }
        return await post_raw(
            self.served, json.dumps(body), SERVICE if headers is None else headers
        )

    async def report(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        """A batch the engine takes (200); its answer."""
        response = await self.post(events)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        assert len(answer["results"]) == len(events)
        return answer

    async def subscribe(
        self, plan: str = "pro", overages: tuple[str, ...] = ("api_calls",), *, days_ago: int = 0
    ) -> None:
        """The customer on a fresh test clock (frozen now, or ``days_ago`` days before) with a
        default card, subscribed directly to ``plan`` with ``overages``."""
        created = await self.gql(
            "mutation { createCustomer { ... on CustomerPayload { customer { id } } } }"
        )
        self.customer_id = created["createCustomer"]["customer"]["id"]
        self.started = int(time.time()) - days_ago * DAY
        clock = await self.sdk.v1.test_helpers.test_clocks.create_async(
            params={"frozen_time": self.started}
        )
        self.clock_id = clock.id
        self.served.emulator.attach_test_clock(self.customer_id, clock.id)
        pm = await self.sdk.v1.payment_methods.attach_async(
            "pm_card_visa", params={"customer": self.customer_id}
        )
        await self.sdk.v1.customers.update_async(
            self.customer_id, params={"invoice_settings": {"default_payment_method": pm.id}}
        )
        result = (
            await self.gql(
                CREATE_SUBSCRIPTION,
                {
                    "input": {
                        "planUid": plan,
                        "billingInterval": "MONTH",
                        "overages": list(overages),
                    }
                },
            )
        )["createSubscription"]
        assert result["__typename"] == "SubscriptionPayload", result
        assert result["subscription"]["status"] == "active"
        assert result["subscription"]["overages"] == sorted(overages)
        self.subscription_id = result["subscription"]["subscriptionId"]

    async def usage(self) -> dict[str, Any]:
        """The ``usage`` query, api_calls only, with the period."""
        data = (await self.gql(USAGE))["usage"]
        [api] = [f for f in data["features"] if f["feature"] == "api_calls"]
        return {**api, "planUid": data["planUid"], "periodStart": data["periodStart"]}

    async def counters(self) -> list[UsageCounter]:
        return (
            await UsageCounter.find({"organization_id": self.org}).sort("+period_start").to_list()
        )

    async def reported(self, units: int) -> UsageCounter:
        """The current counter once Stripe acknowledged ``units`` and nothing is in flight."""

        async def last() -> UsageCounter:
            return (await self.counters())[-1]

        return await eventually(
            last,
            lambda c: c.reported == units and c.inflight is None and not c.report_due,
            what=f"{units} units reported",
        )

    async def subscription(self) -> Subscription:
        sub = await Subscription.find_one({"stripe_subscription_id": self.subscription_id})
        assert sub is not None
        return sub

    async def advance_past_period_end(self, extra_seconds: int = 120) -> int:
        """Move the clock just past the current period; wait until the engine has applied the
        roll-over (or the end) that Stripe's webhooks announce. Returns the old period end."""
        sub = await self.subscription()
        assert sub.current_period_end is not None
        end = int(sub.current_period_end.replace(tzinfo=UTC).timestamp())
        await self.sdk.v1.test_helpers.test_clocks.advance_async(
            self.clock_id, params={"frozen_time": end + extra_seconds}
        )

        async def applied() -> Subscription:
            return await self.subscription()

        await eventually(
            applied,
            lambda s: (
                s.status == "canceled"
                or (
                    s.current_period_start is not None
                    and int(s.current_period_start.replace(tzinfo=UTC).timestamp()) == end
                )
            ),
            what="the period end applied by webhook",
        )
        return end

    async def invoices(self) -> list[stripe.Invoice]:
        """The subscription's invoices at Stripe, newest first."""
        listed = await self.sdk.v1.invoices.list_async(
            params={"subscription": self.subscription_id}
        )
        return list(listed.data)

    async def billed_units(self, start: int, end: int) -> int:
        """What Stripe's meter event summaries say the customer used over ``[start, end)``."""
        meters = await self.sdk.v1.billing.meters.list_async()
        [meter] = [m for m in meters.data if m.event_name == EVENT_NAME]
        summaries = await self.sdk.v1.billing.meters.event_summaries.list_async(
            meter.id,
            params={
                "customer": self.customer_id,
                "start_time": start // 60 * 60,  # Stripe: whole minutes
                "end_time": (end + 59) // 60 * 60,
            },
        )
        return sum(int(s.aggregated_value) for s in summaries.data)


#: Seconds a request may take: a 1,000-event batch on the in-memory store checks its unique
#: index by scanning every stored event, seconds per batch here, more on a busy machine.
REQUEST_TIMEOUT = 120


async def post_raw(served: Served, content: str, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT) as client:
        response = await client.post(f"{served.url}/v1/usage", content=content, headers=headers)
    assert response.status_code != 500, response.text
    return response


async def invoice_lines(
    sdk: stripe.StripeClient, invoice: stripe.Invoice
) -> list[tuple[str, int | None, int]]:
    """(price lookup key, quantity, amount) of each invoice line."""
    lines = []
    for line in invoice.lines.data:
        assert line.pricing is not None
        assert line.pricing.price_details is not None
        price = await sdk.v1.prices.retrieve_async(str(line.pricing.price_details.price))
        lines.append((str(price.lookup_key), line.quantity, line.amount))
    return lines


def metered(lines: list[tuple[str, int | None, int]]) -> list[tuple[str, int | None, int]]:
    return [line for line in lines if "_api_calls_" in line[0]]


def counts(answer: dict[str, Any]) -> tuple[int, int, int]:
    return answer["accepted"], answer["duplicates"], answer["rejected"]


async def stored() -> tuple[int, int, int]:
    """(usage events, counters, units counted) over the whole store."""
    rows = await UsageCounter.find_all().to_list()
    return await UsageEvent.find_all().count(), len(rows), sum(c.used for c in rows)


# ------------------------------------------------------------------------- 1. overage on
async def test_pro_with_overage_bills_one_package_at_renewal(
    served: Served, sdk: stripe.StripeClient
) -> None:
    pro = Tenant(served, sdk, "org_usage_on")
    await pro.subscribe()
    first = calls("c", 1000)  # c0..c999
    second = [{"id": f"c{n}", "quantity": 100} for n in range(1000, 1800)]
    # The same ids again in the batch (a different quantity: the first one counts) and ids of
    # the first batch.
    second += [{"id": f"c{n}", "quantity": 7} for n in range(1000, 1100)]
    second += [{"id": f"c{n}", "quantity": 100} for n in range(100)]
    third = [{"id": f"c{n}", "quantity": 100} for n in range(1800, 2600)]
    third += [{"id": f"c{n}", "quantity": 100} for n in range(1700, 1800)]  # the second's

    assert counts(await pro.report(first)) == (1000, 0, 0)
    answer = await pro.report(second)
    assert counts(answer) == (800, 200, 0)
    assert {r["status"] for r in answer["results"][800:]} == {"duplicate"}
    assert counts(await pro.report(second)) == (0, 1000, 0)  # the whole batch retried
    assert counts(await pro.report(third)) == (800, 100, 0)
    assert await UsageEvent.find({"organization_id": pro.org}).count() == 2600

    counter = await pro.reported(10_000)  # by the background loop
    assert counter.used == 260_000
    assert counter.period_start.replace(tzinfo=UTC) == datetime.fromtimestamp(pro.started, UTC)
    assert await pro.usage() == {
        "feature": "api_calls",
        "planUid": "pro",
        "periodStart": datetime.fromtimestamp(pro.started, UTC).isoformat(),
        "used": 260_000,
        "included": PRO_INCLUDED,
        "remaining": 0,
        "overageAvailable": True,
        "overageEnabled": True,
        "packageSize": 10_000,
        "overageUnits": 10_000,
        "overagePackages": 1,
        "overageAmount": 1500,
        "currency": "usd",
        "reportedUnits": 10_000,
    }

    end = await pro.advance_past_period_end()
    renewal, opening = await pro.invoices()
    assert renewal.billing_reason == "subscription_cycle"
    lines = await invoice_lines(sdk, renewal)
    assert metered(lines) == [("pro_api_calls_month", 1, 1500)]
    assert sorted(lines) == [("pro_api_calls_month", 1, 1500), ("pro_month", 1, 4900)]
    assert (renewal.total, renewal.status, renewal.currency) == (6400, "paid", "usd")
    assert await pro.billed_units(pro.started, end) == 10_000  # Stripe received exactly that
    # The engine shows the same invoices (read from Stripe), and applied the renewal's events.
    nodes = (await pro.gql(INVOICES))["invoices"]["nodes"]
    assert [(n["id"], n["amountDue"], n["status"]) for n in nodes] == [
        (renewal.id, 6400, "paid"),
        (opening.id, 4900, "paid"),
    ]
    applied = await WebhookEvent.find({"type": "invoice.paid", "status": "processed"}).to_list()
    assert any(renewal.id in e.payload for e in applied)
    assert (await pro.usage())["used"] == 0  # the new period starts at 0


async def test_on_a_clock_months_behind_ours_the_overage_is_reported_and_billed(
    served: Served, sdk: stripe.StripeClient
) -> None:
    """Meter events are dated on the subscription's own time (its test clock's), which Stripe
    checks them against — not on ours, 90 days ahead of it."""
    pro = Tenant(served, sdk, "org_usage_past")
    await pro.subscribe(days_ago=90)
    assert counts(await pro.report(calls("p", 260, 1000))) == (260, 0, 0)
    counter = await pro.reported(10_000)
    assert counter.last_report_error is None
    end = await pro.advance_past_period_end()
    renewal = (await pro.invoices())[0]
    assert metered(await invoice_lines(sdk, renewal)) == [("pro_api_calls_month", 1, 1500)]
    assert await pro.billed_units(pro.started, end) == 10_000


# ------------------------------------------------------------------------- 2. overage off
async def test_without_overage_calls_past_the_cap_are_refused_and_never_billed(
    served: Served, sdk: stripe.StripeClient
) -> None:
    capped = Tenant(served, sdk, "org_usage_off")
    await capped.subscribe(overages=())
    assert counts(await capped.report(calls("a", 200, 1000))) == (200, 0, 0)
    # 50 fit exactly; the 5 after them do not.
    answer = await capped.report(calls("d", 55, 1000))
    assert counts(answer) == (50, 0, 5)
    assert {(r["status"], r.get("reason")) for r in answer["results"][50:]} == {
        ("rejected", "QUOTA_EXCEEDED")
    }
    refused = await capped.report([{"id": "one_more", "quantity": 1}])
    assert [r.get("reason") for r in refused["results"]] == ["QUOTA_EXCEEDED"]
    # Nothing of it was recorded.
    [counter] = await capped.counters()
    assert counter.used == PRO_INCLUDED
    assert await UsageEvent.find({"organization_id": capped.org}).count() == 250
    assert (
        await UsageEvent.find({"organization_id": capped.org, "event_id": "one_more"}).count() == 0
    )
    usage = await capped.usage()
    assert (usage["used"], usage["remaining"], usage["overageEnabled"]) == (PRO_INCLUDED, 0, False)
    assert (usage["overageUnits"], usage["overageAmount"]) == (0, 0)

    await capped.advance_past_period_end()
    renewal = (await capped.invoices())[0]
    assert renewal.billing_reason == "subscription_cycle"
    assert await invoice_lines(sdk, renewal) == [("pro_month", 1, 4900)]
    assert renewal.total == 4900
    counter = (await capped.counters())[0]
    assert (counter.reported, counter.inflight) == (0, None)
    assert served.emulator.request_count("POST", METER_EVENTS) == 0  # nothing was billable


# ------------------------------------------------------------------------- 3. Stripe failing
async def test_stripe_failing_while_reports_drain_loses_and_doubles_nothing(
    served: Served, sdk: stripe.StripeClient
) -> None:
    pro = Tenant(served, sdk, "org_usage_faults")
    await pro.subscribe()
    emulator = served.emulator
    assert counts(await pro.report(calls("in", 250, 1000))) == (250, 0, 0)  # all included
    assert emulator.request_count("POST", METER_EVENTS) == 0

    # In the order the reporter meets them: Stripe unavailable on every attempt of one call
    # (the SDK's retries included: the engine backs off and resends); a timeout after Stripe
    # counted the event (the SDK resends with the same key: replayed); the answer lost after
    # Stripe counted it, on every attempt of a call (the engine resends later).
    unavailable = emulator.inject_fault("503", count=3, method="POST", path=METER_EVENTS)
    slow = emulator.inject_fault(
        "timeout", when="after", hang_seconds=5, method="POST", path=METER_EVENTS
    )
    lost = emulator.inject_fault("500", count=3, when="after", method="POST", path=METER_EVENTS)
    assert counts(await pro.report(calls("over", 3, 1000))) == (3, 0, 0)  # 3,000 billable

    async def counter() -> UsageCounter:
        return (await pro.counters())[0]

    failed = await eventually(counter, lambda c: c.report_failures > 0, what="a failed report")
    assert failed.inflight is not None  # kept for the resend
    assert (failed.inflight.start, failed.inflight.end) == (0, 3000)
    assert failed.reported == 0
    await pro.reported(3000)
    assert emulator.faults.armed() == []
    assert (unavailable.fired, slow.fired, lost.fired) == (3, 1, 3)

    # The next report's answer lost after Stripe counted it, every attempt; then Stripe has
    # forgotten the idempotency key (as after its 24 hours): the resend is refused as a
    # duplicate identifier — Stripe has it — and acknowledged.
    emulator.inject_fault("500", count=3, when="after", method="POST", path=METER_EVENTS)
    assert counts(await pro.report(calls("late", 7, 1000))) == (7, 0, 0)
    failed = await eventually(counter, lambda c: c.report_failures > 0, what="a failed report")
    assert failed.inflight is not None
    assert (failed.inflight.start, failed.inflight.end) == (3000, 10_000)
    emulator.idempotency.reset()
    done = await pro.reported(10_000)
    assert (done.report_failures, done.last_report_error) == (0, None)
    resend = [e for e in emulator.requests.entries if e.path == METER_EVENTS][-1]
    assert (resend.status, resend.replayed) == (400, False)  # the duplicate identifier

    # Stripe has every billable unit once. The first report took 8 requests with one
    # idempotency key (3 refused, 1 timed out, 3 answers lost, the replay), the second 4.
    assert await pro.billed_units(pro.started, pro.started + 40 * DAY) == 10_000
    assert emulator.request_count("POST", METER_EVENTS) == 12
    assert sorted(emulator.idempotency_keys("POST", METER_EVENTS).values()) == [4, 8]
    end = await pro.advance_past_period_end()
    renewal = (await pro.invoices())[0]
    assert metered(await invoice_lines(sdk, renewal)) == [("pro_api_calls_month", 1, 1500)]
    assert await pro.billed_units(pro.started, end) == 10_000


# ------------------------------------------------------------------------- 4. periods
async def test_usage_after_the_renewal_counts_in_the_new_period_and_late_events_in_the_old(
    served: Served, sdk: stripe.StripeClient
) -> None:
    pro = Tenant(served, sdk, "org_usage_rollover")
    await pro.subscribe()
    assert counts(await pro.report(calls("p1_", 10))) == (10, 0, 0)
    old_start = pro.started
    old_end = await pro.advance_past_period_end()
    usage = await pro.usage()
    assert (usage["used"], usage["periodStart"]) == (
        0,
        datetime.fromtimestamp(old_end, UTC).isoformat(),
    )

    assert counts(await pro.report(calls("p2_", 5))) == (5, 0, 0)
    late = await pro.report([{"id": "late", "quantity": 7, "timestamp": old_end - 60}])
    assert counts(late) == (1, 0, 0)
    too_old = await pro.report([{"id": "older", "quantity": 7, "timestamp": old_start - 3600}])
    assert [r.get("reason") for r in too_old["results"]] == ["TIMESTAMP_TOO_OLD"]
    previous, current = await pro.counters()
    assert (previous.period_start.replace(tzinfo=UTC).timestamp(), previous.used) == (
        old_start,
        1007,
    )
    assert (current.period_start.replace(tzinfo=UTC).timestamp(), current.used) == (old_end, 500)
    assert (await pro.usage())["used"] == 500

    # Past the grace: once the engine's time for the subscription (the clock's, through the
    # next applied event) is an hour after the old period's end, that period is closed.
    grace = served.settings.usage_late_grace_seconds
    await sdk.v1.test_helpers.test_clocks.advance_async(
        pro.clock_id, params={"frozen_time": old_end + grace + 300}
    )
    assert (await pro.gql(CANCEL_AT_END))["cancelSubscription"]["subscription"]["cancelAtPeriodEnd"]

    async def engine_now() -> Subscription:
        return await pro.subscription()

    await eventually(
        engine_now,
        lambda s: (s.last_event_created or 0) >= old_end + grace + 300,
        what="the clock's time seen by the engine",
    )
    closed = await pro.report([{"id": "after_grace", "quantity": 7, "timestamp": old_end - 60}])
    assert [r.get("reason") for r in closed["results"]] == ["TIMESTAMP_TOO_OLD"]
    assert [c.used for c in await pro.counters()] == [1007, 500]


async def test_cancel_at_period_end_takes_usage_to_the_end_and_bills_it_on_the_final_invoice(
    served: Served, sdk: stripe.StripeClient
) -> None:
    pro = Tenant(served, sdk, "org_usage_cancel")
    await pro.subscribe()
    assert (await pro.gql(CANCEL_AT_END))["cancelSubscription"]["subscription"]["cancelAtPeriodEnd"]
    assert counts(await pro.report(calls("k", 260, 1000))) == (260, 0, 0)
    await pro.reported(10_000)
    end = await pro.advance_past_period_end()
    assert (await pro.subscription()).status == "canceled"
    final = (await pro.invoices())[0]
    assert await invoice_lines(sdk, final) == [("pro_api_calls_month", 1, 1500)]
    assert (final.total, final.status, final.period_end) == (1500, "paid", end)
    after = await pro.report([{"id": "after_end", "quantity": 1}])
    assert [r.get("reason") for r in after["results"]] == ["NO_LIVE_SUBSCRIPTION"]


async def stripe_items(sdk: stripe.StripeClient, subscription_id: str) -> list[str]:
    """The lookup keys of the Stripe subscription's item prices."""
    sub = await sdk.v1.subscriptions.retrieve_async(subscription_id)
    return sorted(str(i.price.lookup_key) for i in sub["items"]["data"])


async def test_a_plan_change_after_overage_was_reported_keeps_the_metered_item_to_the_end(
    served: Served, sdk: stripe.StripeClient
) -> None:
    org = Tenant(served, sdk, "org_usage_change")
    await org.subscribe()
    assert counts(await org.report(calls("pro", 260, 1000))) == (260, 0, 0)
    await org.reported(10_000)
    changed = (
        await org.gql(CHANGE_PLAN, {"input": {"planUid": "starter", "billingInterval": "MONTH"}})
    )["changeSubscriptionPlan"]
    assert changed["__typename"] == "SubscriptionPayload", changed
    assert changed["subscription"] == {"planUid": "starter", "overages": ["api_calls"]}
    # The period's usage carries over (one counter), now beyond Starter's 10,000.
    usage = await org.usage()
    assert (usage["planUid"], usage["used"], usage["included"]) == ("starter", 260_000, 10_000)
    assert counts(await org.report([{"id": "starter1", "quantity": 500}])) == (1, 0, 0)
    [counter] = await org.counters()
    assert counter.used == 260_500
    await org.reported(250_500)
    # The period's metered item stays, while the background loop runs: what it reported is
    # billed at the period end under it (Stripe bills a re-priced item only from the change).
    await asyncio.sleep(0.5)
    assert await stripe_items(sdk, org.subscription_id) == ["pro_api_calls_month", "starter_month"]

    end = await org.advance_past_period_end()
    renewal = (await org.invoices())[0]
    assert renewal.billing_reason == "subscription_cycle"
    # 250,500 calls at Pro's price: 26 packages of 10,000.
    assert metered(await invoice_lines(sdk, renewal)) == [("pro_api_calls_month", 26, 39_000)]
    assert await org.billed_units(org.started, end) == 250_500
    # Then ``settle_overage_switches`` (the background loop) swaps it for Starter's.
    await eventually(
        lambda: stripe_items(sdk, org.subscription_id),
        lambda got: got == ["starter_api_calls_month", "starter_month"],
        what="the metered item swapped",
    )
    # The swap is seen at Stripe a moment before the pass clears the flag in the store.
    await eventually(
        org.subscription, lambda sub: not sub.overage_settle, what="the plan change settled"
    )
    usage = await org.usage()
    assert (usage["used"], usage["included"], usage["overageEnabled"]) == (0, 10_000, True)
    assert counts(await org.report(calls("next", 11, 1000))) == (11, 0, 0)
    await org.reported(1000)
    await org.advance_past_period_end()
    assert metered(await invoice_lines(sdk, (await org.invoices())[0])) == [
        ("starter_api_calls_month", 1, 200)
    ]


async def test_a_plan_change_with_nothing_reported_swaps_the_metered_item_at_once(
    served: Served, sdk: stripe.StripeClient
) -> None:
    org = Tenant(served, sdk, "org_usage_change_early")
    await org.subscribe()
    assert counts(await org.report(calls("before", 50))) == (50, 0, 0)  # 5,000: included
    changed = (
        await org.gql(CHANGE_PLAN, {"input": {"planUid": "starter", "billingInterval": "MONTH"}})
    )["changeSubscriptionPlan"]
    assert changed["__typename"] == "SubscriptionPayload", changed
    # Nothing of the period is billable: the new plan's metered price replaces the old now.
    await eventually(
        lambda: stripe_items(sdk, org.subscription_id),
        lambda got: got == ["starter_api_calls_month", "starter_month"],
        what="the metered item swapped",
    )
    usage = await org.usage()
    assert (usage["planUid"], usage["used"], usage["included"]) == ("starter", 5000, 10_000)
    assert counts(await org.report(calls("after", 70))) == (70, 0, 0)  # 12,000: 2,000 over
    [counter] = await org.counters()  # the same counter
    assert counter.used == 12_000
    await org.reported(2000)
    usage = await org.usage()
    assert (usage["overagePackages"], usage["overageAmount"]) == (2, 400)

    end = await org.advance_past_period_end()
    renewal = (await org.invoices())[0]
    # What the engine showed: 2,000 calls at Starter's price, 2 packages of 1,000.
    assert metered(await invoice_lines(sdk, renewal)) == [("starter_api_calls_month", 2, 400)]
    assert await org.billed_units(org.started, end) == 2000


# ------------------------------------------------------------------------- 5. bad input
BAD_EVENTS: list[tuple[dict[str, Any], str]] = [
    ({"feature": "api_callz"}, "UNKNOWN_FEATURE"),
    ({"feature": "seats"}, "UNKNOWN_FEATURE"),  # a limit, not metered
    ({"quantity": -5}, "INVALID_QUANTITY"),
    ({"quantity": 0}, "INVALID_QUANTITY"),
    ({"quantity": 1.5}, "INVALID_QUANTITY"),
    ({"quantity": "10"}, "INVALID_QUANTITY"),
    ({"quantity": True}, "INVALID_QUANTITY"),
    ({"organization_id": "org_nobody_here"}, "UNKNOWN_ORGANIZATION"),
    ({"organization_id": "org_usage_customer_only"}, "NO_LIVE_SUBSCRIPTION"),
    ({"timestamp": "2020-01-01T00:00:00Z"}, "TIMESTAMP_TOO_OLD"),
    ({"timestamp": int(time.time()) + 2 * DAY}, "TIMESTAMP_IN_FUTURE"),
    ({"timestamp": "yesterday"}, "INVALID_TIMESTAMP"),
    ({"id": ""}, "INVALID_ID"),
    ({"id": "no spaces"}, "INVALID_ID"),
]


async def test_every_bad_input_is_a_clear_error_that_changes_nothing(
    served: Served, sdk: stripe.StripeClient
) -> None:
    org = Tenant(served, sdk, "org_usage_bad")
    await org.subscribe()
    bystander = Tenant(served, sdk, "org_usage_customer_only")
    await bystander.gql("mutation { createCustomer { __typename } }")
    assert counts(await org.report([{"id": "good", "quantity": 3}])) == (1, 0, 0)
    before = await stored()

    for change, reason in BAD_EVENTS:
        answer = await org.report([{"id": "bad", "quantity": 1, **change}])
        [result] = answer["results"]
        assert (result["status"], result["reason"]) == ("rejected", reason), change
        assert result["message"], change
        assert counts(answer) == (0, 0, 1)
        assert await stored() == before, change

    # The same bad events beside a good one in one batch: only the good one counts.
    mixed = [{"id": "bad", "quantity": 1, **change} for change, _ in BAD_EVENTS]
    answer = await org.report([*mixed, {"id": "good2", "quantity": 4}])
    assert counts(answer) == (1, 0, len(BAD_EVENTS))
    assert [r.get("reason") for r in answer["results"]] == [*(r for _, r in BAD_EVENTS), None]
    events, counters, used = await stored()
    assert (events, counters, used) == (before[0] + 1, before[1], before[2] + 4)
    before = await stored()

    oversized = await org.post(calls("big", 1001, 1))
    assert oversized.status_code == 400
    assert oversized.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert "1,001" in oversized.json()["errors"][0]["message"]
    refused = [
        (await org.post(calls("x", 1), {**SERVICE, "authorization": "Bearer uk_wrong_key"}), 401),
        (await org.post(calls("x", 1), {"content-type": "application/json"}), 401),
        (await org.post(calls("x", 1), {**SERVICE, "authorization": f"Basic {KEY}"}), 401),
        # A member of an organization (development headers) lacks the usage role.
        (
            await org.post(
                calls("x", 1), {"content-type": "application/json", "x-organization-id": org.org}
            ),
            403,
        ),
        (await org.post(calls("x", 1), {**SERVICE, "content-type": "text/plain"}), 415),
    ]
    for response, status in refused:
        assert response.status_code == status, response.text
        assert response.json()["errors"][0]["extensions"]["code"]
    malformed = await post_raw(served, '{"events": [', SERVICE)
    assert malformed.status_code == 400
    assert await stored() == before
    assert (await org.usage())["used"] == 7
