"""Object shapes follow Stripe's own fixtures (``tests/fixtures/stripe/fixtures3.json``).

For every object type the emulator returns — every stored object, every object embedded in an
event, and the deleted stubs — its keys must be a subset of the keys of Stripe's example object
of that type, and shared keys must have the same JSON type (null on either side is compatible),
recursively through nested hashes and arrays of hashes.

The other way round, no field is missing: every top-level field of Stripe's example that the
current SDK also declares on its class for that type is present on each of the emulator's
objects of the type (``OMITTED`` names the few left out, and why).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
from stripe._object_classes import get_object_class
from stripe.events import V1BillingMeterErrorReportTriggeredEvent

from emulator_helpers import (
    SDK_HTTPX_WARNING,
    as_dict,
    make_customer,
    make_meter,
    make_metered_price,
    make_plan,
    report_usage,
)
from stripe_emulator import Emulator

pytestmark = [SDK_HTTPX_WARNING]

FIXTURES = Path(__file__).parent / "fixtures" / "stripe" / "fixtures3.json"

# Stripe's example objects leave out a few optional fields that its API reference documents.
# Each exception names the SDK class whose typed attributes declare the field, and the test
# below checks that declaration, so this list cannot hide a misspelt or invented field.
DOCUMENTED_BUT_NOT_IN_EXAMPLE: dict[tuple[str, str], tuple[type[Any], str]] = {
    ("webhook_endpoint", "secret"): (stripe.WebhookEndpoint, "secret"),
    ("invoice_payment", "payment.payment_intent"): (
        stripe.InvoicePayment.Payment,
        "payment_intent",
    ),
    ("line_item", "pricing.price_details"): (stripe.InvoiceLineItem.Pricing, "price_details"),
    ("invoiceitem", "pricing.price_details"): (stripe.InvoiceItem.Pricing, "price_details"),
    ("invoiceitem", "parent.subscription_details.subscription_item"): (
        stripe.InvoiceItem.Parent.SubscriptionDetails,
        "subscription_item",
    ),
    ("payment_intent", "last_payment_error.code"): (stripe.PaymentIntent.LastPaymentError, "code"),
    ("payment_intent", "last_payment_error.decline_code"): (
        stripe.PaymentIntent.LastPaymentError,
        "decline_code",
    ),
    ("payment_intent", "last_payment_error.message"): (
        stripe.PaymentIntent.LastPaymentError,
        "message",
    ),
    ("payment_intent", "last_payment_error.charge"): (
        stripe.PaymentIntent.LastPaymentError,
        "charge",
    ),
    ("payment_intent", "last_payment_error.payment_method"): (
        stripe.PaymentIntent.LastPaymentError,
        "payment_method",
    ),
    ("test_helpers.test_clock", "status_details.advancing"): (
        stripe.test_helpers.TestClock.StatusDetails,
        "advancing",
    ),
}
# A meter error report is a thin (v2) event on Stripe; the emulator's snapshot event carries the
# fields of that event's ``data`` beside ``data.object``.
_REPORT_DATA = V1BillingMeterErrorReportTriggeredEvent.V1BillingMeterErrorReportTriggeredEventData
for _field in ("developer_message_summary", "reason", "validation_end", "validation_start"):
    DOCUMENTED_BUT_NOT_IN_EXAMPLE[("event", f"data.{_field}")] = (_REPORT_DATA, _field)


# Fields of Stripe's examples, declared by the SDK, that the emulator's objects leave out as
# Stripe's own answers do.
OMITTED: dict[tuple[str, str], str] = {
    ("charge", "refunds"): "includable only (expand[]=refunds) since API version 2022-11-15",
}


def _fixtures() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURES.read_text(encoding="utf-8"))["resources"]
    return data


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


KINDS = (
    "customer", "product", "price", "checkout.session", "subscription", "subscription_item",
    "invoice", "invoice_payment", "invoiceitem", "payment_intent", "charge", "refund",
    "payment_method", "billing_portal.session", "event", "webhook_endpoint",
    "test_helpers.test_clock", "billing.meter",
)  # fmt: skip

# Checked as objects of their own type, not against the example event's (a plan).
OPAQUE = {("event", "data.object"), ("event", "data.previous_attributes")}


def shape_problems(
    kind: str, obj: dict[str, Any], example: dict[str, Any], path: str = ""
) -> list[str]:
    if path and isinstance(obj.get("object"), str):
        kind, path = str(obj["object"]), ""  # a nested Stripe object: its own type's rules
    problems = []
    for key, value in obj.items():
        where = f"{path}.{key}" if path else key
        if (kind, where) in OPAQUE:
            continue
        if key not in example:
            if (kind, where) not in DOCUMENTED_BUT_NOT_IN_EXAMPLE:
                problems.append(f"{kind}: {where} is not a field of Stripe's {kind}")
            continue
        expected = example[key]
        if value is None or expected is None:
            continue
        if _json_type(value) != _json_type(expected):
            problems.append(
                f"{kind}: {where} is {_json_type(value)}, Stripe's is {_json_type(expected)}"
            )
        elif isinstance(value, dict):
            problems += shape_problems(kind, value, expected, where)
        elif isinstance(value, list) and expected and isinstance(expected[0], dict):
            for item in value:
                if isinstance(item, dict):
                    problems += shape_problems(kind, item, expected[0], where)
    return problems


def declared_fields(kind: str) -> set[str]:
    """The fields the SDK's class for an object type declares (its typed attributes)."""
    cls = get_object_class("V1", kind)
    return {name for klass in cls.__mro__ for name in getattr(klass, "__annotations__", {})}


def missing_fields(kind: str, obj: dict[str, Any], example: dict[str, Any]) -> list[str]:
    """Top-level fields of Stripe's example, declared by the SDK, absent from ``obj``."""
    wanted = set(example) & declared_fields(kind)
    return [
        f"{kind}: {obj.get('id')} lacks {field}"
        for field in sorted(wanted - set(obj))
        if (kind, field) not in OMITTED
    ]


def _fixture_key(obj: dict[str, Any]) -> str:
    kind = str(obj["object"])
    return f"deleted_{kind}" if obj.get("deleted") is True else kind


async def _exercise_everything(
    client: stripe.StripeClient, http: httpx.AsyncClient, emulator: Emulator
) -> list[dict[str, Any]]:
    """Drive every resource through its states; return the objects seen only in responses."""
    seen: list[dict[str, Any]] = []
    endpoint = await client.v1.webhook_endpoints.create_async(
        params={"url": "https://hooks.test/stripe", "enabled_events": ["*"]}
    )
    seen.append(as_dict(endpoint))
    emulator.pause_deliveries()
    clock = await client.v1.test_helpers.test_clocks.create_async(
        params={"frozen_time": 1_900_000_000}
    )
    customer = await make_customer(client, test_clock=clock.id)
    basic = await make_plan(client, amount=1000, name="Basic", lookup_key="basic")
    pro = await make_plan(client, amount=3000, name="Pro")
    meter = await make_meter(client)
    metered = await make_metered_price(client, meter)
    sub = await client.v1.subscriptions.create_async(
        params={"customer": customer.id, "items": [{"price": basic.id}, {"price": metered.id}]}
    )
    seen.append(as_dict(await report_usage(client, customer.id, 12_345, identifier="u-1")))
    await report_usage(client, customer.id, 1, identifier="u-2")
    await report_usage(client, "cus_nobody", 1, identifier="u-3")  # an error report
    adjustment = await client.v1.billing.meter_event_adjustments.create_async(
        params={"event_name": meter.event_name, "type": "cancel", "cancel": {"identifier": "u-2"}}
    )
    seen.append(as_dict(adjustment))
    summaries = await client.v1.billing.meters.event_summaries.list_async(
        meter.id,
        params={"customer": customer.id, "start_time": 0, "end_time": 2_000_000_040},
    )
    seen += [as_dict(summary) for summary in summaries.data]
    await client.v1.billing.meters.update_async(meter.id, params={"display_name": "Calls"})
    await client.v1.subscriptions.update_async(
        sub.id, params={"items": [{"id": sub.items.data[0].id, "price": pro.id}]}
    )
    preview = await client.v1.invoices.create_preview_async(
        params={
            "subscription": sub.id,
            "subscription_details": {"items": [{"id": sub.items.data[0].id, "quantity": 2}]},
        }
    )
    seen.append(as_dict(preview))
    other_meter = await make_meter(client, event_name="revenue_engine.bandwidth_gb")
    await client.v1.billing.meters.deactivate_async(other_meter.id)
    emulator.set_card_decline(
        str(customer.invoice_settings.default_payment_method), "generic_decline"
    )
    await client.v1.test_helpers.test_clocks.advance_async(
        clock.id, params={"frozen_time": sub.items.data[0].current_period_end + 3600}
    )
    seen.append(as_dict(await client.v1.test_helpers.test_clocks.retrieve_async(clock.id)))

    session = await client.v1.checkout.sessions.create_async(
        params={
            "mode": "subscription",
            "line_items": [{"price": basic.id, "quantity": 1}],
            "success_url": "https://app.test/ok",
        }
    )
    assert session.url is not None
    await http.post(f"{session.url}/pay", data={"card": "pm_card_visa", "email": "c@example.com"})
    expanded = await client.v1.checkout.sessions.retrieve_async(
        session.id, params={"expand": ["line_items"]}
    )
    seen.append(as_dict(expanded))
    portal = await client.v1.billing_portal.sessions.create_async(
        params={"customer": customer.id, "return_url": "https://app.test"}
    )
    seen.append(as_dict(portal))

    intent = await client.v1.payment_intents.create_async(
        params={
            "amount": 2000,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": True,
        }
    )
    await client.v1.refunds.create_async(params={"payment_intent": intent.id, "amount": 500})
    with pytest.raises(stripe.CardError):
        await client.v1.payment_intents.create_async(
            params={
                "amount": 2000,
                "currency": "usd",
                "payment_method": "pm_card_chargeDeclined",
                "confirm": True,
            }
        )
    gone = await client.v1.customers.create_async(params={"email": "gone@example.com"})
    seen.append(as_dict(await client.v1.customers.delete_async(gone.id)))
    product = await client.v1.products.create_async(params={"name": "Temporary"})
    seen.append(as_dict(await client.v1.products.delete_async(product.id)))
    seen.append(as_dict(await client.v1.webhook_endpoints.delete_async(endpoint.id)))
    other_clock = await client.v1.test_helpers.test_clocks.create_async(params={"frozen_time": 1})
    seen.append(as_dict(await client.v1.test_helpers.test_clocks.delete_async(other_clock.id)))
    return seen


def test_documented_exceptions_are_declared_by_the_sdk() -> None:
    for (kind, field), (cls, attribute) in DOCUMENTED_BUT_NOT_IN_EXAMPLE.items():
        assert attribute in cls.__annotations__, f"{kind}.{field}: not declared on {cls}"


async def _samples(
    client: stripe.StripeClient, http: httpx.AsyncClient, emulator: Emulator
) -> list[dict[str, Any]]:
    """Every object the emulator holds or answered with after ``_exercise_everything``."""
    samples = await _exercise_everything(client, http, emulator)
    for kind in KINDS:
        samples += emulator.objects(kind)
    for event in emulator.objects("event"):
        samples.append(event["data"]["object"])
    for invoice in emulator.objects("invoice"):
        samples += invoice["lines"]["data"]
    for session in samples:
        if session.get("object") == "checkout.session" and "line_items" in session:
            samples += session.pop("line_items")["data"]
    for sub in emulator.objects("subscription"):
        samples += [item["plan"] for item in sub["items"]["data"]]
    return samples


async def test_every_object_matches_stripes_fixture(
    client: stripe.StripeClient, http: httpx.AsyncClient, emulator: Emulator
) -> None:
    fixtures = _fixtures()
    samples = await _samples(client, http, emulator)
    covered = {_fixture_key(obj) for obj in samples}
    meter_kinds = {
        "billing.meter_event",
        "billing.meter_event_adjustment",
        "billing.meter_event_summary",
    }
    assert (
        set(KINDS)
        | meter_kinds
        | {"line_item", "item", "plan", "deleted_customer", "deleted_product"}
        <= covered
    )
    reports = emulator.events("billing.meter.error_report_triggered")
    assert [r["data"]["object"]["object"] for r in reports] == ["billing.meter"]
    problems = []
    for obj in samples:
        problems += shape_problems(_fixture_key(obj), obj, fixtures[_fixture_key(obj)])
    assert sorted(set(problems)) == []


async def test_no_object_lacks_a_field_stripe_and_the_sdk_have(
    client: stripe.StripeClient, http: httpx.AsyncClient, emulator: Emulator
) -> None:
    fixtures = _fixtures()
    samples = await _samples(client, http, emulator)
    problems = []
    for obj in samples:
        kind = _fixture_key(obj)
        if not kind.startswith("deleted_"):
            problems += missing_fields(kind, obj, fixtures[kind])
    assert sorted(set(problems)) == []
    # The fields this check was written for, on the objects that carry them.
    checked = {
        "subscription": ("billing_schedules", "managed_payments"),
        "payment_intent": ("managed_payments",),
        "checkout.session": ("managed_payments", "ui_mode"),
        "invoiceitem": ("quantity_decimal",),
        "line_item": ("quantity_decimal",),
        "charge": ("source",),
        "item": ("metadata",),
    }
    for kind, fields in checked.items():
        assert set(fields) <= set(fixtures[kind]) & declared_fields(kind), kind
        assert any(_fixture_key(obj) == kind for obj in samples), kind


def test_omitted_fields_are_stripes_and_declared() -> None:
    fixtures = _fixtures()
    for kind, field in OMITTED:
        assert field in fixtures[kind]
        assert field in declared_fields(kind)


def test_the_gap_checker_names_what_is_missing() -> None:
    example = {"id": "x", "object": "charge", "amount": 1, "source": None, "not_declared": 1}
    assert missing_fields("charge", {"id": "ch_1", "object": "charge", "amount": 1}, example) == [
        "charge: ch_1 lacks source"
    ]
    # Omitted on purpose (OMITTED), or not declared by the SDK: not a gap.
    assert missing_fields("charge", {"id": "ch_1"}, {"refunds": None, "not_declared": 1}) == []


def test_the_checker_catches_wrong_names_and_types() -> None:
    example = {"id": "x", "amount": 1, "nested": {"a": "b"}, "items": [{"k": 1}], "maybe": None}
    assert shape_problems("t", {"id": "y", "amount": None, "maybe": 3}, example) == []
    assert shape_problems("t", {"amonut": 1}, example) == ["t: amonut is not a field of Stripe's t"]
    assert shape_problems("t", {"amount": "1"}, example) == [
        "t: amount is string, Stripe's is number"
    ]
    assert shape_problems("t", {"nested": {"c": 1}}, example) == [
        "t: nested.c is not a field of Stripe's t"
    ]
    assert shape_problems("t", {"items": [{"k": True}]}, example) == [
        "t: items.k is boolean, Stripe's is number"
    ]
