"""``billing.meter.error_report_triggered`` through the real app on both stores: a signed
delivery is recorded once (delivered twice, or replayed: one row), admins see it in
``meterErrorReports``, members are refused; a malformed report is ``failed``, not a 500."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from revenue_engine.documents import BillingMeter, MeterErrorReport
from revenue_engine.documents import WebhookEvent as WebhookEventDoc
from revenue_engine.gateway import StripeGateway
from revenue_engine.settings import Settings
from revenue_engine.webhooks.context import HandlerContext
from revenue_engine.webhooks.replay import replay_event
from tests.gql import ADMIN, MEMBER, gql
from tests.stripe_events import event, post, with_secrets

Start = Callable[[Settings], Any]
TYPE = "billing.meter.error_report_triggered"

REPORTS = """
query($first: Int) {
  meterErrorReports(first: $first) {
    stripeEventId stripeMeterId eventName errorCount errorCodes summary sample
    validationStart validationEnd receivedAt
  }
}
"""


@pytest.fixture
async def client(client_for: Start, store_settings: Settings) -> httpx.AsyncClient:
    settings = with_secrets(store_settings).model_copy(
        update={"environment": "development", "auth_dev_headers": True}
    )
    started: httpx.AsyncClient = await client_for(settings)
    return started


def error_report(**overrides: Any) -> dict[str, Any]:
    """The report as Stripe's event data carries it."""
    report: dict[str, Any] = {
        "developer_message_summary": "2 meter events were dropped: customer not found",
        "reason": {
            "error_count": 2,
            "error_types": [
                {
                    "code": "meter_event_customer_not_found",
                    "error_count": 2,
                    "sample_errors": [
                        {
                            "error_message": "No customer cus_gone",
                            "request": {"identifier": "re_0123"},
                        }
                    ],
                }
            ],
        },
        "validation_start": 1_800_000_000,
        "validation_end": "2027-01-15T08:05:00Z",
        "related_object": {"id": "mtr_1", "type": "billing.meter", "url": "/v1/billing/meters"},
    }
    report.update(overrides)
    return report


async def test_a_report_is_recorded_once_and_shown_to_admins(
    client: httpx.AsyncClient, store_settings: Settings
) -> None:
    await BillingMeter(
        feature="api_calls", event_name="revenue_engine.api_calls", stripe_meter_id="mtr_1"
    ).insert()
    payload = event(TYPE, error_report())
    first = await post(client, payload)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "processed"
    again = await post(client, payload)  # Stripe delivers it again
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    # An operator's replay runs the handler again: still one row.
    gateway = StripeGateway.from_settings(store_settings)
    try:
        context = HandlerContext.from_settings(store_settings, gateway)
        outcome, _ = await replay_event(payload["id"], context)
    finally:
        await gateway.close()
    assert outcome.value == "processed"
    assert await MeterErrorReport.find_all().count() == 1

    body = await gql(client, REPORTS, headers=ADMIN)
    assert "errors" not in body, body
    [row] = body["data"]["meterErrorReports"]
    assert row["stripeEventId"] == payload["id"]
    assert row["stripeMeterId"] == "mtr_1"
    assert row["eventName"] == "revenue_engine.api_calls"  # from the meter we know
    assert row["errorCount"] == 2
    assert row["errorCodes"] == ["meter_event_customer_not_found"]
    assert row["summary"].startswith("2 meter events were dropped")
    assert row["sample"] == {
        "code": "meter_event_customer_not_found",
        "error_message": "No customer cus_gone",
        "identifier": "re_0123",
    }
    assert row["validationStart"].startswith("2027-01-15T08:00:00")
    assert row["validationEnd"].startswith("2027-01-15T08:05:00")


@pytest.mark.parametrize("named", [True, False], ids=["meter", "no-meter"])
async def test_the_emulators_shape_the_report_beside_the_meter(
    client: httpx.AsyncClient, named: bool
) -> None:
    """As the emulator sends it: ``data.object`` is the meter (or, for an event name no meter
    owns, a ``billing.meter_error_report``), the report is in ``data`` beside it."""
    subject = (
        {"id": "mtr_9", "object": "billing.meter", "event_name": "revenue_engine.seats"}
        if named
        else {
            "id": "mtrerr_1",
            "object": "billing.meter_error_report",
            "event_name": "revenue_engine.nothing",
            "livemode": False,
            "meter": None,
        }
    )
    payload = event(TYPE, subject)
    details = error_report(validation_start="2030-01-31T12:00:00.000Z")
    del details["related_object"]
    payload["data"].update(details)
    response = await post(client, payload)
    assert response.json()["status"] == "processed"
    [row] = await MeterErrorReport.find_all().to_list()
    assert row.stripe_meter_id == ("mtr_9" if named else None)
    assert row.event_name == subject["event_name"]
    assert row.error_count == 2
    assert row.sample["identifier"] == "re_0123"
    assert row.validation_start is not None
    assert row.validation_start.year == 2030


async def test_reports_are_listed_newest_first_within_first(client: httpx.AsyncClient) -> None:
    ids = []
    for n in range(3):
        payload = event(TYPE, error_report(meter=f"mtr_{n}", related_object=None))
        assert (await post(client, payload)).status_code == 200
        ids.append(payload["id"])
    body = await gql(client, REPORTS, {"first": 2}, headers=ADMIN)
    listed = [r["stripeEventId"] for r in body["data"]["meterErrorReports"]]
    assert listed == [ids[2], ids[1]]
    too_many = await gql(client, REPORTS, {"first": 101}, headers=ADMIN)
    assert too_many["errors"][0]["extensions"]["code"] == "VALIDATION"


async def test_non_admins_are_refused(client: httpx.AsyncClient) -> None:
    assert (await post(client, event(TYPE, error_report()))).status_code == 200
    member = await gql(client, REPORTS, headers=MEMBER)
    assert member["data"] is None
    assert member["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    anonymous = await gql(client, REPORTS)
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    "report",
    [
        {"developer_message_summary": "no reason"},
        error_report(reason={"error_count": -1}),
        error_report(reason={"error_count": 1, "error_types": "many"}),
        error_report(reason={"error_count": 1, "error_types": ["meter_event_customer_not_found"]}),
        error_report(validation_start="yesterday"),
        error_report(validation_start=10**30),
        error_report(developer_message_summary=["not", "text"]),
    ],
    ids=[
        "no-reason",
        "negative-count",
        "types-not-a-list",
        "type-not-an-object",
        "bad-time",
        "huge-time",
        "summary",
    ],
)
async def test_a_malformed_report_is_failed_and_records_nothing(
    client: httpx.AsyncClient, report: dict[str, Any]
) -> None:
    payload = event(TYPE, report)
    response = await post(client, payload)
    assert response.status_code == 200
    assert response.json()["status"] == "failed"
    row = await WebhookEventDoc.find_one({"event_id": payload["id"]})
    assert row is not None
    assert row.last_error is not None
    assert row.last_error.startswith("MALFORMED_OBJECT")
    assert await MeterErrorReport.find_all().count() == 0
