"""Meter events: Stripe's synchronous checks, its asynchronous ones (accepted, not counted,
reported by a signed ``billing.meter.error_report_triggered`` webhook), event summaries,
cancellations, and retries through injected faults that count an event once."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import stripe

from emulator_helpers import (
    RECEIVER_URL,
    SDK_HTTPX_WARNING,
    Receiver,
    make_customer,
    make_meter,
    report_usage,
)
from stripe_emulator import Emulator

pytestmark = [SDK_HTTPX_WARNING]

ROUTE = ("POST", "/v1/billing/meter_events")
DAY = 86400
CLOCK_START = int(datetime(2030, 1, 31, 12, 0, tzinfo=UTC).timestamp())


def _error(exc: pytest.ExceptionInfo[stripe.StripeError]) -> dict[str, Any]:
    assert exc.value.http_status == 400
    body = exc.value.json_body
    assert body is not None
    error: dict[str, Any] = body["error"]
    assert error["type"] == "invalid_request_error"
    return error


async def _total(client: stripe.StripeClient, meter_id: str, customer_id: str, end: int) -> int:
    """The customer's usage from the epoch to ``end`` (a minute boundary), via the SDK."""
    summaries = await client.v1.billing.meters.event_summaries.list_async(
        meter_id, params={"customer": customer_id, "start_time": 0, "end_time": end}
    )
    (summary,) = summaries.data
    return int(summary.aggregated_value)


def _next_minute() -> int:
    return (int(time.time()) // 60 + 1) * 60


async def test_an_accepted_event_is_stripes_meter_event(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    meter = await make_meter(client)
    customer = await make_customer(client)
    before = int(time.time())
    event = await report_usage(client, customer.id, 25, identifier="org-1:2030-01:1")
    assert event.object == "billing.meter_event"
    assert (event.event_name, event.identifier) == ("revenue_engine.api_calls", "org-1:2030-01:1")
    assert event.payload.to_dict() == {"stripe_customer_id": customer.id, "value": "25"}
    assert before <= event.timestamp <= int(time.time())  # default: now
    assert event.created == event.timestamp
    generated = await report_usage(client, customer.id, 5)
    assert len(generated.identifier) == 36  # a UUID when none is given
    assert await _total(client, meter.id, customer.id, _next_minute()) == 30
    assert emulator.meter_usage(meter.id, customer.id) == 30


async def test_a_duplicate_identifier_is_refused_and_not_retried(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    meter = await make_meter(client)
    customer = await make_customer(client)
    await report_usage(client, customer.id, 10, identifier="org-1:batch-7")
    emulator.requests.clear()
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await report_usage(client, customer.id, 10, identifier="org-1:batch-7")
    error = _error(exc)
    assert error["message"] == "An event already exists with identifier org-1:batch-7."
    assert error["param"] == "identifier"
    assert "code" not in error  # Stripe's only marker is the message
    assert exc.value.headers is not None
    assert exc.value.headers["stripe-should-retry"] == "false"
    assert emulator.request_count(*ROUTE) == 1  # the SDK obeys Stripe-Should-Retry: false
    assert emulator.meter_usage(meter.id, customer.id) == 10


async def test_the_timestamp_window_is_35_days_back_and_5_minutes_ahead(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    meter = await make_meter(client)
    customer = await make_customer(client)
    now = int(time.time())
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await report_usage(client, customer.id, 1, timestamp=now - 35 * DAY - 60)
    error = _error(exc)
    assert (error["param"], error["code"]) == ("timestamp", "timestamp_too_far_in_past")
    assert error["message"].startswith(
        "The event timestamp cannot be more than 35 days in past. Expected a timestamp greater "
        "than or equal to "
    )
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await report_usage(client, customer.id, 1, timestamp=now + 6 * 60)
    error = _error(exc)
    assert (error["param"], error["code"]) == ("timestamp", "timestamp_in_future")
    assert "5 minutes in the future" in error["message"]
    await report_usage(client, customer.id, 2, timestamp=now - 35 * DAY + 60)
    await report_usage(client, customer.id, 3, timestamp=now + 4 * 60)
    assert emulator.meter_usage(meter.id, customer.id) == 5


async def test_a_test_clock_customer_is_checked_and_stamped_on_the_clock(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    meter = await make_meter(client)
    clock = await client.v1.test_helpers.test_clocks.create_async(
        params={"frozen_time": CLOCK_START}
    )
    customer = await make_customer(client, test_clock=clock.id)
    stamped = await report_usage(client, customer.id, 7)
    assert (stamped.timestamp, stamped.created) == (CLOCK_START, CLOCK_START)
    await report_usage(client, customer.id, 1, timestamp=CLOCK_START - 30 * DAY)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await report_usage(client, customer.id, 1, timestamp=int(time.time()))  # years back
    assert _error(exc)["code"] == "timestamp_too_far_in_past"
    assert emulator.meter_usage(meter.id, customer.id) == 8


@pytest.mark.parametrize(
    ("params", "param"),
    [({"payload": {"value": "1"}}, "event_name"), ({"event_name": "x"}, "payload")],
)
async def test_event_name_and_payload_are_required(
    client: stripe.StripeClient, params: dict[str, Any], param: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.billing.meter_events.create_async(params=params)  # type: ignore[arg-type]
    error = _error(exc)
    assert (error["param"], error["code"]) == (param, "parameter_missing")


@pytest.mark.parametrize(
    ("payload", "code", "message"),
    [
        ({"value": "5"}, "meter_event_no_customer_defined", "Customer mapping key "),
        ({"stripe_customer_id": "cus_nobody", "value": "5"}, "meter_event_customer_not_found", ""),
        ({"value": "1.5"}, "meter_event_invalid_value", "not a whole number"),
        ({"value": "ten"}, "meter_event_invalid_value", "not a whole number"),
        ({"value": "9" * 5000}, "meter_event_invalid_value", "not a whole number"),
        ({}, "meter_event_value_not_found", "Value settings key value not found"),
    ],
)
async def test_async_problems_are_accepted_not_counted_and_reported(
    client: stripe.StripeClient,
    emulator: Emulator,
    receiver: Receiver,
    payload: dict[str, str],
    code: str,
    message: str,
) -> None:
    endpoint = await client.v1.webhook_endpoints.create_async(
        params={"url": RECEIVER_URL, "enabled_events": ["billing.meter.error_report_triggered"]}
    )
    receiver.secret = endpoint.secret
    meter = await make_meter(client)
    customer = await make_customer(client)
    body = {"stripe_customer_id": customer.id, **payload}
    if "value" not in payload:
        body.pop("value", None)
    if code == "meter_event_no_customer_defined":
        body.pop("stripe_customer_id")
    accepted = await client.v1.billing.meter_events.create_async(
        params={"event_name": meter.event_name, "payload": body, "identifier": f"bad-{code}"}
    )
    assert accepted.identifier == f"bad-{code}"
    assert emulator.meter_usage(meter.id, customer.id) == 0
    await emulator.flush_deliveries()
    assert receiver.rejected == []
    (event,) = receiver.events  # signed, verified by the receiver
    assert event.type == "billing.meter.error_report_triggered"
    assert event.request is not None
    assert (event.request.id, event.request.idempotency_key) == (None, None)
    data = event.data
    assert data.object["id"] == meter.id
    assert data["developer_message_summary"] == "There is 1 invalid event"
    assert data["reason"]["error_count"] == 1
    (kind,) = data["reason"]["error_types"]
    assert (kind["code"], kind["error_count"]) == (code, 1)
    (sample,) = kind["sample_errors"]
    assert message in sample["error_message"]
    assert sample["request"]["identifier"] == f"bad-{code}"
    start = datetime.strptime(data["validation_start"], "%Y-%m-%dT%H:%M:%S.000Z")
    end = datetime.strptime(data["validation_end"], "%Y-%m-%dT%H:%M:%S.000Z")
    assert (end - start).total_seconds() == 10
    # The identifier stays taken, as on Stripe.
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.billing.meter_events.create_async(
            params={"event_name": meter.event_name, "payload": body, "identifier": f"bad-{code}"}
        )


async def test_no_meter_or_a_deactivated_one_is_reported_too(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    customer = await make_customer(client)
    await report_usage(client, customer.id, 3, event_name="nobody.listens")
    (report,) = emulator.events("billing.meter.error_report_triggered")
    subject = report["data"]["object"]
    assert (subject["object"], subject["event_name"], subject["meter"]) == (
        "billing.meter_error_report",
        "nobody.listens",
        None,
    )
    (kind,) = report["data"]["reason"]["error_types"]
    assert kind["code"] == "no_meter"
    assert kind["sample_errors"][0]["error_message"] == (
        "No meter was found matching event_name nobody.listens."
    )

    meter = await make_meter(client)
    await client.v1.billing.meters.deactivate_async(meter.id)
    await report_usage(client, customer.id, 3)
    latest = emulator.events("billing.meter.error_report_triggered")[0]
    assert latest["data"]["object"]["id"] == meter.id
    assert latest["data"]["reason"]["error_types"][0]["code"] == "archived_meter"
    assert emulator.meter_usage(meter.id, customer.id) == 0


async def test_formulas_and_negative_corrections(client: stripe.StripeClient) -> None:
    customer = await make_customer(client)
    now = int(time.time()) - 120
    end = _next_minute()
    summed = await make_meter(client, event_name="sum.meter")
    counted = await make_meter(
        client, event_name="count.meter", default_aggregation={"formula": "count"}
    )
    last = await make_meter(
        client, event_name="last.meter", default_aggregation={"formula": "last"}
    )
    for offset, value in ((0, "10"), (30, "-3"), (10, "4")):
        for meter in (summed, counted, last):
            await report_usage(
                client, customer.id, value, timestamp=now + offset, event_name=meter.event_name
            )
    # Negative whole numbers correct over-reporting, as Stripe documents.
    assert await _total(client, summed.id, customer.id, end) == 11
    assert await _total(client, counted.id, customer.id, end) == 3
    assert await _total(client, last.id, customer.id, end) == -3  # the latest timestamp's value


async def test_a_count_meter_needs_no_value(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    meter = await make_meter(client, event_name="logins", default_aggregation={"formula": "count"})
    customer = await make_customer(client)
    await client.v1.billing.meter_events.create_async(
        params={"event_name": "logins", "payload": {"stripe_customer_id": customer.id}}
    )
    assert emulator.meter_usage(meter.id, customer.id) == 1
    assert emulator.events("billing.meter.error_report_triggered") == []


async def test_summaries_window_by_hour_and_day(client: stripe.StripeClient) -> None:
    meter = await make_meter(client)
    clock = await client.v1.test_helpers.test_clocks.create_async(
        params={"frozen_time": CLOCK_START}
    )
    customer = await make_customer(client, test_clock=clock.id)
    midnight = CLOCK_START - 12 * 3600  # 2030-01-31 00:00 UTC
    for hour, value in ((0, 1), (0, 2), (5, 10), (-24, 100)):
        await report_usage(client, customer.id, value, timestamp=midnight + hour * 3600 + 59)
    whole = await client.v1.billing.meters.event_summaries.list_async(
        meter.id,
        params={"customer": customer.id, "start_time": midnight, "end_time": midnight + DAY},
    )
    (summary,) = whole.data
    assert summary.object == "billing.meter_event_summary"
    assert summary.id.startswith("mtrusg_")
    assert (summary.aggregated_value, summary.meter) == (13, meter.id)
    assert (summary.start_time, summary.end_time) == (midnight, midnight + DAY)

    hours = await client.v1.billing.meters.event_summaries.list_async(
        meter.id,
        params={
            "customer": customer.id,
            "start_time": midnight,
            "end_time": midnight + 6 * 3600,
            "value_grouping_window": "hour",
            "limit": 2,
        },
    )
    assert [s.start_time for s in hours.data] == [midnight + 5 * 3600, midnight + 4 * 3600]
    assert [s.aggregated_value for s in hours.data] == [10, 0]
    assert hours.has_more is True
    rest = await client.v1.billing.meters.event_summaries.list_async(
        meter.id,
        params={
            "customer": customer.id,
            "start_time": midnight,
            "end_time": midnight + 6 * 3600,
            "value_grouping_window": "hour",
            "starting_after": hours.data[-1].id,
            "limit": 10,
        },
    )
    assert [s.aggregated_value for s in rest.data] == [0, 0, 0, 3]

    days = await client.v1.billing.meters.event_summaries.list_async(
        meter.id,
        params={
            "customer": customer.id,
            "start_time": midnight - DAY,
            "end_time": midnight + DAY,
            "value_grouping_window": "day",
        },
    )
    assert [s.aggregated_value for s in days.data] == [13, 100]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"start_time": 61, "end_time": 120}, "start_time"),
        ({"start_time": 3600, "end_time": 5400, "value_grouping_window": "hour"}, "end_time"),
        ({"start_time": 3600, "end_time": 2 * DAY, "value_grouping_window": "day"}, "start_time"),
        ({"start_time": 120, "end_time": 120}, "start_time"),
        ({"start_time": 0}, "end_time"),
    ],
)
async def test_summary_bounds_are_checked(
    client: stripe.StripeClient, params: dict[str, Any], param: str
) -> None:
    meter = await make_meter(client)
    customer = await make_customer(client)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.billing.meters.event_summaries.list_async(
            meter.id,
            params={"customer": customer.id, **params},  # type: ignore[typeddict-item]
        )
    assert _error(exc)["param"] == param


async def test_summaries_of_an_unknown_customer_are_a_404(client: stripe.StripeClient) -> None:
    meter = await make_meter(client)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.billing.meters.event_summaries.list_async(
            meter.id, params={"customer": "cus_nobody", "start_time": 0, "end_time": 60}
        )
    assert exc.value.http_status == 404


async def test_an_adjustment_cancels_one_recent_event(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    meter = await make_meter(client)
    customer = await make_customer(client)
    await report_usage(client, customer.id, 40, identifier="keep")
    await report_usage(client, customer.id, 2, identifier="oops")
    adjustment = await client.v1.billing.meter_event_adjustments.create_async(
        params={"event_name": meter.event_name, "type": "cancel", "cancel": {"identifier": "oops"}}
    )
    assert adjustment.object == "billing.meter_event_adjustment"
    assert (adjustment.type, adjustment.status) == ("cancel", "complete")
    assert adjustment.cancel is not None
    assert adjustment.cancel.identifier == "oops"
    assert emulator.meter_usage(meter.id, customer.id) == 40
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.billing.meter_event_adjustments.create_async(
            params={"event_name": meter.event_name, "type": "cancel", "cancel": {"identifier": "x"}}
        )
    assert _error(exc)["param"] == "cancel[identifier]"
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.billing.meter_event_adjustments.create_async(
            params={"event_name": "other", "type": "cancel", "cancel": {"identifier": "keep"}}
        )
    assert emulator.meter_usage(meter.id, customer.id) == 40


@pytest.mark.parametrize("when", ["before", "after"])
async def test_a_503_retried_with_the_same_key_counts_once(
    client: stripe.StripeClient, emulator: Emulator, when: str
) -> None:
    meter = await make_meter(client)
    customer = await make_customer(client)
    emulator.inject_fault("503", when=when, method="POST", path="/v1/billing/meter_events")
    event = await report_usage(
        client, customer.id, 1000, identifier="org-1:2030-01:42", idempotency_key="usage-42"
    )
    assert event.identifier == "org-1:2030-01:42"
    assert emulator.idempotency_keys(*ROUTE) == {"usage-42": 2}
    assert [e.fault for e in emulator.requests.entries if e.path == ROUTE[1]] == ["503", None]
    assert emulator.meter_usage(meter.id, customer.id) == 1000
    # A retry that lost its idempotency key is stopped by the identifier.
    with pytest.raises(stripe.InvalidRequestError):
        await report_usage(
            client, customer.id, 1000, identifier="org-1:2030-01:42", idempotency_key="other"
        )
    assert emulator.meter_usage(meter.id, customer.id) == 1000


async def test_usage_is_readable_over_the_control_api(
    client: stripe.StripeClient, http: httpx.AsyncClient
) -> None:
    meter = await make_meter(client)
    customer = await make_customer(client)
    await report_usage(client, customer.id, 12)
    answer = await http.get(f"/_emulator/meters/{meter.id}/usage", params={"customer": customer.id})
    assert answer.json() == {"usage": 12}
    state = (await http.get("/_emulator/state")).json()
    assert state["objects"]["billing.meter"] == 1
    assert state["objects"]["billing.meter_event"] == 1
    assert (await http.get(f"/_emulator/meters/{meter.id}/usage")).status_code == 400
