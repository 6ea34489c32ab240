"""Billing meters: create, retrieve, list, update, deactivate and reactivate, as Stripe does."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from emulator_helpers import SDK_HTTPX_WARNING, make_meter
from stripe_emulator import Emulator

pytestmark = [SDK_HTTPX_WARNING]


def _error(exc: pytest.ExceptionInfo[stripe.StripeError]) -> dict[str, Any]:
    body = exc.value.json_body
    assert body is not None
    error: dict[str, Any] = body["error"]
    return error


async def test_create_renders_stripes_meter(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    meter = await make_meter(client)
    assert meter.id.startswith("mtr_test_")
    assert meter.object == "billing.meter"
    assert (meter.status, meter.status_transitions.deactivated_at) == ("active", None)
    assert meter.customer_mapping.event_payload_key == "stripe_customer_id"
    assert meter.customer_mapping.type == "by_id"
    assert meter.default_aggregation.formula == "sum"
    assert meter.value_settings.event_payload_key == "value"
    assert (meter.event_name, meter.display_name) == ("revenue_engine.api_calls", "API calls")
    assert meter.event_time_window is None
    assert meter.created == meter.updated
    assert [e["data"]["object"]["id"] for e in emulator.events("billing.meter.created")] == [
        meter.id
    ]
    assert (await client.v1.billing.meters.retrieve_async(meter.id)).id == meter.id


async def test_defaults_and_optional_settings(client: stripe.StripeClient) -> None:
    meter = await client.v1.billing.meters.create_async(
        params={
            "display_name": "Tokens",
            "event_name": "tokens",
            "default_aggregation": {"formula": "count"},
            "event_time_window": "hour",
        }
    )
    assert meter.customer_mapping.event_payload_key == "stripe_customer_id"
    assert meter.value_settings.event_payload_key == "value"
    assert (meter.default_aggregation.formula, meter.event_time_window) == ("count", "hour")


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({"event_name": None}, "event_name", "parameter_missing"),
        ({"display_name": None}, "display_name", "parameter_missing"),
        ({"default_aggregation": None}, "default_aggregation", "parameter_missing"),
        ({"default_aggregation": {"formula": "max"}}, "default_aggregation[formula]", None),
        ({"customer_mapping": {"event_payload_key": "org"}}, "customer_mapping[type]", None),
        ({"customer_mapping": {"type": "by_id"}}, "customer_mapping[event_payload_key]", None),
        ({"event_time_window": "week"}, "event_time_window", None),
        ({"metadata": {"a": "b"}}, "metadata", "parameter_unknown"),
    ],
)
async def test_bad_parameters_are_refused_as_stripe_does(
    client: stripe.StripeClient,
    emulator: Emulator,
    params: dict[str, Any],
    param: str,
    code: str | None,
) -> None:
    base: dict[str, Any] = {
        "display_name": "API calls",
        "event_name": "api_calls",
        "default_aggregation": {"formula": "sum"},
    }
    body = {k: v for k, v in {**base, **params}.items() if v is not None}
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.billing.meters.create_async(params=body)  # type: ignore[arg-type]
    error = _error(exc)
    assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    assert emulator.objects("billing.meter") == []


async def test_an_event_name_belongs_to_one_meter_even_deactivated(
    client: stripe.StripeClient,
) -> None:
    first = await make_meter(client)
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await make_meter(client, display_name="Again")
    error = _error(exc)
    assert (error["param"], error["code"]) == ("event_name", "resource_already_exists")
    assert first.id in error["message"]
    await client.v1.billing.meters.deactivate_async(first.id)
    with pytest.raises(stripe.InvalidRequestError):
        await make_meter(client)
    other = await make_meter(client, event_name="revenue_engine.bandwidth_gb")
    assert other.id != first.id


async def test_list_filters_by_status_and_paginates(client: stripe.StripeClient) -> None:
    meters = [await make_meter(client, event_name=f"feature.{n}") for n in range(3)]
    await client.v1.billing.meters.deactivate_async(meters[0].id)
    everything = await client.v1.billing.meters.list_async()
    assert [m.id for m in everything.data] == [m.id for m in reversed(meters)]
    active = await client.v1.billing.meters.list_async(params={"status": "active"})
    assert [m.id for m in active.data] == [meters[2].id, meters[1].id]
    inactive = await client.v1.billing.meters.list_async(params={"status": "inactive"})
    assert [m.id for m in inactive.data] == [meters[0].id]
    page = await client.v1.billing.meters.list_async(params={"limit": 1})
    assert (len(page.data), page.has_more) == (1, True)
    rest = await client.v1.billing.meters.list_async(
        params={"limit": 5, "starting_after": page.data[0].id}
    )
    assert [m.id for m in rest.data] == [meters[1].id, meters[0].id]
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.billing.meters.list_async(params={"status": "archived"})  # type: ignore[typeddict-item]


async def test_only_the_display_name_changes(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    meter = await make_meter(client)
    renamed = await client.v1.billing.meters.update_async(
        meter.id, params={"display_name": "API requests"}
    )
    assert renamed.display_name == "API requests"
    (updated,) = emulator.events("billing.meter.updated")
    assert updated["data"]["previous_attributes"]["display_name"] == "API calls"
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.billing.meters.update_async(
            meter.id,
            params={"event_name": "other"},  # type: ignore[typeddict-unknown-key]
        )
    assert _error(exc)["code"] == "parameter_unknown"


async def test_deactivate_and_reactivate(client: stripe.StripeClient, emulator: Emulator) -> None:
    meter = await make_meter(client)
    off = await client.v1.billing.meters.deactivate_async(meter.id)
    assert off.status == "inactive"
    assert off.status_transitions.deactivated_at is not None
    with pytest.raises(stripe.InvalidRequestError):
        await client.v1.billing.meters.deactivate_async(meter.id)
    on = await client.v1.billing.meters.reactivate_async(meter.id)
    assert (on.status, on.status_transitions.deactivated_at) == ("active", None)
    types = [e["type"] for e in reversed(emulator.events()) if e["type"].startswith("billing.")]
    assert types == [
        "billing.meter.created",
        "billing.meter.deactivated",
        "billing.meter.reactivated",
    ]


async def test_unknown_meter_is_stripes_404(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.billing.meters.retrieve_async("mtr_test_missing")
    assert exc.value.http_status == 404
    assert _error(exc)["code"] == "resource_missing"
