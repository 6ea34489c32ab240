"""``setOverage`` end to end (real app, real SDK, the emulator), on both stores: switching on
adds the metered price to the Stripe subscription once; off with nothing reported removes it
at once and caps usage; off after overage was reported keeps it until the period is settled,
and ``settle_overage_switches`` removes it then."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import stripe
from stripe_emulator import EmulatorServer

from revenue_engine.clock import as_utc
from revenue_engine.documents import Subscription, UsageCounter
from revenue_engine.documents.usage import counter_id
from revenue_engine.gateway import StripeGateway
from revenue_engine.services.overage import settle_overage_switches
from revenue_engine.services.usage_rules import shift_months
from tests.e2e.conftest import engine_settings
from tests.e2e.ops import CREATE_CUSTOMER, CREATE_SUBSCRIPTION, call, only
from tests.usage_world import INCLUDED, save_plan

ORG = "org_a"
SET_OVERAGE = """
mutation($feature: String!, $enabled: Boolean!) {
  setOverage(feature: $feature, enabled: $enabled) {
    __typename
    ... on OveragePayload { feature overageEnabled removalPending
      usage { used included overageEnabled reportedUnits removalPending }
      subscription { overages entitlements { key used remaining } } }
    ... on UserError { code message }
  }
}"""
RECORD = """
mutation($input: UsageEventInput!) {
  recordUsage(input: $input) { __typename ... on UsageRecorded { status } ... on UserError { code } }
}"""


async def _subscribe(engine: httpx.AsyncClient, stripe_client: stripe.StripeClient) -> str:
    await save_plan()
    customer = only(await call(engine, CREATE_CUSTOMER, org=ORG))["customer"]["id"]
    pm = await stripe_client.v1.payment_methods.attach_async(
        "pm_card_visa", params={"customer": customer}
    )
    await stripe_client.v1.customers.update_async(
        customer, params={"invoice_settings": {"default_payment_method": pm.id}}
    )
    created = only(
        await call(
            engine,
            CREATE_SUBSCRIPTION,
            {"input": {"planUid": "metered", "billingInterval": "MONTH"}},
            org=ORG,
        )
    )
    assert created["__typename"] == "SubscriptionPayload", created
    return str(created["subscription"]["subscriptionId"])


async def _switch(engine: httpx.AsyncClient, enabled: bool, feature: str = "api_calls") -> Any:
    return only(await call(engine, SET_OVERAGE, {"feature": feature, "enabled": enabled}, org=ORG))


async def _record(engine: httpx.AsyncClient, event_id: str, quantity: int) -> str:
    answer = only(
        await call(
            engine,
            RECORD,
            {"input": {"id": event_id, "feature": "api_calls", "quantity": quantity}},
            org=ORG,
        )
    )
    return str(answer.get("status") or answer.get("code"))


async def _items(stripe_client: stripe.StripeClient, sid: str) -> list[str]:
    sub = await stripe_client.v1.subscriptions.retrieve_async(sid)
    return sorted(str(i.price.lookup_key) for i in sub["items"]["data"])


async def test_overage_on_and_off_at_stripe(
    engine_on_each_store: httpx.AsyncClient,
    stripe_client: stripe.StripeClient,
    emulator_server: EmulatorServer,
) -> None:
    engine = engine_on_each_store
    sid = await _subscribe(engine, stripe_client)
    assert await _items(stripe_client, sid) == ["metered_month"]
    assert await _record(engine, "e1", INCLUDED - 10) == "ACCEPTED"

    on = await _switch(engine, True)
    assert on["__typename"] == "OveragePayload", on
    assert on["overageEnabled"] is True
    assert on["removalPending"] is False
    assert on["subscription"]["overages"] == ["api_calls"]
    assert await _items(stripe_client, sid) == ["metered_api_calls_month", "metered_month"]
    again = await _switch(engine, True)  # already on: nothing more at Stripe
    assert again["overageEnabled"] is True
    assert await _items(stripe_client, sid) == ["metered_api_calls_month", "metered_month"]

    # Nothing billable in the period: switching off takes the item off now.
    off = await _switch(engine, False)
    assert off["overageEnabled"] is False
    assert off["removalPending"] is False
    assert off["subscription"]["overages"] == []
    assert await _items(stripe_client, sid) == ["metered_month"]
    assert await _record(engine, "e2", 10) == "ACCEPTED"  # up to the cap
    assert await _record(engine, "e3", 1) == "QUOTA_EXCEEDED"  # no overage item: a cap

    # On again (a new request at Stripe); one unit of overage; off reports it first and keeps
    # the item, so Stripe bills it at the period end.
    assert (await _switch(engine, True))["overageEnabled"] is True
    assert await _items(stripe_client, sid) == ["metered_api_calls_month", "metered_month"]
    assert await _record(engine, "e3", 1) == "ACCEPTED"
    pending = await _switch(engine, False)
    assert pending["removalPending"] is True
    assert pending["overageEnabled"] is False
    assert pending["usage"]["overageEnabled"] is False
    assert pending["usage"]["reportedUnits"] == 1
    assert pending["usage"]["removalPending"] is True
    assert await _record(engine, "e4", 1) == "QUOTA_EXCEEDED"  # capped from now
    assert await _items(stripe_client, sid) == ["metered_api_calls_month", "metered_month"]
    sub = await Subscription.find_one({"stripe_subscription_id": sid})
    assert sub is not None
    assert sub.current_period_start is not None
    start = as_utc(sub.current_period_start)
    [meter] = (await stripe_client.v1.billing.meters.list_async()).data
    summaries = await stripe_client.v1.billing.meters.event_summaries.list_async(
        meter.id,
        params={
            "customer": sub.stripe_customer_id,
            "start_time": int(start.timestamp()) // 60 * 60,  # Stripe: whole minutes
            "end_time": int(start.timestamp()) // 60 * 60 + 40 * 86_400,
        },
    )
    assert sum(int(x.aggregated_value) for x in summaries.data) == 1

    gateway = StripeGateway.from_settings(engine_settings(emulator_server))
    try:
        assert (
            await settle_overage_switches(gateway, engine_settings(emulator_server)) == 0
        )  # the period is not over
        assert await _items(stripe_client, sid) == ["metered_api_calls_month", "metered_month"]
        # The next period (as a roll-over webhook would store it): its counter reported nothing.
        end = shift_months(start, 1, start.day)
        await Subscription.get_motor_collection().update_one(
            {"_id": sub.id},
            {"$set": {"current_period_start": end, "current_period_end": end + timedelta(days=30)}},
        )
        assert await settle_overage_switches(gateway, engine_settings(emulator_server)) == 1
    finally:
        await gateway.close()
    assert await _items(stripe_client, sid) == ["metered_month"]
    settled = await Subscription.find_one({"stripe_subscription_id": sid})
    assert settled is not None
    assert settled.overage_off == []
    assert settled.overages == []


async def test_switching_needs_a_metered_feature_with_overage_for_sale(
    engine: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    nothing = await _switch(engine, True)
    assert nothing["code"] == "NO_SUBSCRIPTION"
    await _subscribe(engine, stripe_client)
    assert (await _switch(engine, True, "seats"))["code"] == "VALIDATION"
    assert (await _switch(engine, True, "nope"))["code"] == "VALIDATION"
    assert (await _switch(engine, True, "exports"))["code"] == "OVERAGE_NOT_OFFERED"
    off = await _switch(engine, False)  # never on: nothing to do
    assert off["overageEnabled"] is False
    assert off["removalPending"] is False


CANCEL_NOW = """mutation { cancelSubscription(atPeriodEnd: false) { __typename
  ... on SubscriptionPayload { subscription { status } } ... on UserError { code message }
  } }"""
CHANGE_INTERVAL = """mutation($input: ChangePlanInput!) { changeSubscriptionPlan(input: $input) {
  __typename ... on SubscriptionPayload { subscription { billingInterval } }
  ... on UserError { code message } ... on ValidationError { fields { field message } } } }"""


async def _overage_subscription(
    engine: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> str:
    sid = await _subscribe(engine, stripe_client)
    assert (await _switch(engine, True))["overageEnabled"] is True
    assert await _record(engine, "c1", INCLUDED + 250) == "ACCEPTED"  # 250 beyond: 3 packages
    return sid


async def test_cancel_now_reports_the_period_s_overage_and_bills_it_on_a_final_invoice(
    engine_on_each_store: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    """Without a report first, the 250 units would still wait in the outbox when the metered
    item ends; without ``invoice_now`` Stripe would not bill what it had."""
    engine = engine_on_each_store
    sid = await _overage_subscription(engine, stripe_client)
    canceled = only(await call(engine, CANCEL_NOW, org=ORG))
    assert canceled["subscription"]["status"] == "canceled", canceled
    sub = await Subscription.find_one({"stripe_subscription_id": sid})
    assert sub is not None
    assert sub.current_period_start is not None
    counter = await UsageCounter.get(counter_id(sid, as_utc(sub.current_period_start), "api_calls"))
    assert counter is not None
    assert counter.reported == 250
    invoices = await stripe_client.v1.invoices.list_async(params={"subscription": sid})
    lines = [
        (line.quantity, line.amount)
        for invoice in invoices.data
        for line in invoice.lines.data
        if "Extra API calls" in (line.description or "")
    ]
    # The final invoice of the cancellation bills the period's overage: 3 packages.
    assert lines == [(3, 3 * 1500)]


async def test_an_interval_change_waits_for_the_period_s_overage_to_be_billed(
    engine_on_each_store: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    """A new interval starts a new period at once and re-prices the metered item: Stripe would
    not bill the 250 units reported. The change is refused, saying when it can be made."""
    engine = engine_on_each_store
    sid = await _overage_subscription(engine, stripe_client)
    before = await _items(stripe_client, sid)
    answer = only(
        await call(
            engine,
            CHANGE_INTERVAL,
            {"input": {"planUid": "metered", "billingInterval": "YEAR"}},
            org=ORG,
        )
    )
    assert answer["__typename"] == "ValidationError", answer
    [problem] = answer["fields"]
    assert problem["field"] == "billingInterval"
    assert "250 units of api_calls overage" in problem["message"]
    assert await _items(stripe_client, sid) == before
    sub = await Subscription.find_one({"stripe_subscription_id": sid})
    assert sub is not None
    assert sub.interval is not None
    assert sub.interval.value == "month"


async def test_an_interval_change_without_overage_this_period_swaps_the_metered_item(
    engine_on_each_store: httpx.AsyncClient, stripe_client: stripe.StripeClient
) -> None:
    engine = engine_on_each_store
    sid = await _subscribe(engine, stripe_client)
    assert (await _switch(engine, True))["overageEnabled"] is True
    assert await _record(engine, "y1", INCLUDED - 1) == "ACCEPTED"
    answer = only(
        await call(
            engine,
            CHANGE_INTERVAL,
            {"input": {"planUid": "metered", "billingInterval": "YEAR"}},
            org=ORG,
        )
    )
    assert answer["subscription"]["billingInterval"] == "YEAR", answer
    assert await _items(stripe_client, sid) == ["metered_api_calls_year", "metered_year"]
