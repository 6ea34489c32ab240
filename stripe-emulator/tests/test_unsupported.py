"""Subscription parameters Stripe honours and the emulator does not implement are refused with
a 400 that says so, instead of being silently ignored; what the engine sends keeps working."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import stripe

from emulator_helpers import SDK_HTTPX_WARNING, auth, make_customer, make_plan

pytestmark = [SDK_HTTPX_WARNING]

UNSUPPORTED_ON_CREATE = {
    "pause_collection[behavior]": "void",
    "billing_cycle_anchor": "1900000000",
    "add_invoice_items[0][price]": "price_x",
    "backdate_start_date": "1600000000",
    "payment_settings[save_default_payment_method]": "on_subscription",
    "automatic_tax[enabled]": "true",
    "default_tax_rates[0]": "txr_1",
    "application_fee_percent": "5",
    "on_behalf_of": "acct_1",
    "transfer_data[destination]": "acct_1",
    "billing_thresholds[amount_gte]": "10000",
    "pending_invoice_item_interval[interval]": "month",
    "billing_mode[type]": "flexible",
    "currency": "usd",
    "items[0][tax_rates][0]": "txr_1",
    "billing_schedules[0][bill_until][type]": "duration",
}


def _name(key: str) -> str:
    return key.split("[", 1)[0] if not key.startswith("items[") else key.rsplit("[", 1)[0]


@pytest.mark.parametrize("key", sorted(UNSUPPORTED_ON_CREATE))
async def test_create_refuses_what_the_emulator_would_ignore(
    client: stripe.StripeClient, http: httpx.AsyncClient, key: str
) -> None:
    customer = await make_customer(client)
    price = await make_plan(client)
    data = {"customer": customer.id, "items[0][price]": price.id, key: UNSUPPORTED_ON_CREATE[key]}
    answer = await http.post("/v1/subscriptions", headers=auth(), data=data)
    assert answer.status_code == 400
    error = answer.json()["error"]
    name = _name(key) if key != "items[0][tax_rates][0]" else "items[0][tax_rates]"
    assert error == {
        "type": "invalid_request_error",
        "message": f"{name} is not supported by the emulator.",
        "param": name,
    }
    assert (await client.v1.subscriptions.list_async()).data == []


async def _subscription(client: stripe.StripeClient, **extra: Any) -> stripe.Subscription:
    customer = await make_customer(client)
    price = await make_plan(client)
    params: dict[str, Any] = {"customer": customer.id, "items": [{"price": price.id}], **extra}
    return await client.v1.subscriptions.create_async(params=params)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"pause_collection": {"behavior": "void"}}, "pause_collection"),
        ({"add_invoice_items": [{"price": "price_x"}]}, "add_invoice_items"),
        ({"billing_cycle_anchor": "now"}, "billing_cycle_anchor"),
        ({"trial_end": 1_900_000_000}, "trial_end"),
        ({"trial_end": "now"}, "trial_end"),
        ({"trial_settings": {"end_behavior": {"missing_payment_method": "cancel"}}}, None),
        # Coupons and promotion codes are emulated; an existing discount by id is not.
        ({"discounts": [{"discount": "di_x"}]}, "discounts[0][discount]"),
        ({"billing_schedules": [{"bill_until": {"type": "duration"}}]}, "billing_schedules"),
    ],
)
async def test_update_refuses_what_the_emulator_would_ignore(
    client: stripe.StripeClient, params: dict[str, Any], param: str | None
) -> None:
    sub = await _subscription(client)
    assert sub.status == "active"
    with pytest.raises(stripe.InvalidRequestError) as exc:
        await client.v1.subscriptions.update_async(sub.id, params=params)  # type: ignore[arg-type]
    assert exc.value.http_status == 400
    assert "not supported by the emulator" in str(exc.value.user_message)
    assert exc.value.param == (param or next(iter(params)))
    after = await client.v1.subscriptions.retrieve_async(sub.id)
    assert (after.status, after.trial_end, after.pause_collection) == ("active", None, None)


async def test_what_the_engine_sends_still_works(client: stripe.StripeClient) -> None:
    """The engine's own calls (services/subscriptions.py), parameter for parameter."""
    customer = await make_customer(client)
    base = await make_plan(client, amount=2000)
    bigger = await make_plan(client, amount=5000, name="Team")
    sub = await client.v1.subscriptions.create_async(
        params={
            "customer": customer.id,
            "items": [{"price": base.id, "quantity": 1}],
            "metadata": {"organization_id": "org_1"},
            "payment_behavior": "error_if_incomplete",
            "expand": ["latest_invoice"],
            "trial_period_days": 14,
        }
    )
    assert sub.status == "trialing"
    # trial_end on a trialing subscription, and billing_cycle_anchor=unchanged, are honoured.
    moved = await client.v1.subscriptions.update_async(
        sub.id, params={"trial_end": sub.created + 7 * 86400, "billing_cycle_anchor": "unchanged"}
    )
    assert moved.trial_end == sub.created + 7 * 86400
    await client.v1.subscriptions.update_async(sub.id, params={"cancel_at_period_end": True})
    resumed = await client.v1.subscriptions.update_async(
        sub.id, params={"cancel_at_period_end": False, "cancel_at": ""}
    )
    assert resumed.cancel_at_period_end is False
    changed = await client.v1.subscriptions.update_async(
        sub.id,
        params={
            "items": [{"id": sub["items"].data[0].id, "price": bigger.id, "quantity": 1}],
            "proration_behavior": "create_prorations",
            "metadata": {"plan_uid": "team"},
            "off_session": True,
        },
    )
    assert changed["items"].data[0].price.id == bigger.id


async def _checkout(http: httpx.AsyncClient, **extra: str) -> httpx.Response:
    product = (await http.post("/v1/products", headers=auth(), data={"name": "Pro"})).json()
    price = await http.post(
        "/v1/prices",
        headers=auth(),
        data={"product": product["id"], "currency": "usd", "unit_amount": "900"},
    )
    data = {
        "mode": "payment",
        "line_items[0][price]": price.json()["id"],
        "success_url": "https://app.test/done",
        **extra,
    }
    return await http.post("/v1/checkout/sessions", headers=auth(), data=data)


@pytest.mark.parametrize("mode", ["embedded_page", "elements", "form"])
async def test_checkout_refuses_the_ui_modes_it_cannot_serve(
    http: httpx.AsyncClient, client: stripe.StripeClient, mode: str
) -> None:
    """Stripe's other UI modes need Stripe.js on the integrator's page: refused, not turned
    into a hosted page the caller did not ask for."""
    answer = await _checkout(http, ui_mode=mode)
    assert answer.status_code == 400
    assert answer.json()["error"] == {
        "type": "invalid_request_error",
        "message": f"ui_mode is not supported by the emulator (`{mode}`; only `hosted_page`).",
        "param": "ui_mode",
    }
    assert (await client.v1.checkout.sessions.list_async()).data == []


async def test_checkout_ui_mode_is_todays_value(http: httpx.AsyncClient) -> None:
    default = (await _checkout(http)).json()
    asked = (await _checkout(http, ui_mode="hosted_page")).json()
    assert (default["ui_mode"], asked["ui_mode"]) == ("hosted_page", "hosted_page")
    assert default["url"].endswith(f"/checkout/{default['id']}")
    legacy = await _checkout(http, ui_mode="hosted")  # renamed in 2026-03-25.dahlia: refused
    assert legacy.status_code == 400
    assert legacy.json()["error"]["message"] == (
        "Invalid ui_mode: must be one of elements, embedded_page, form, hosted_page"
    )


async def test_checkout_refuses_managed_payments(http: httpx.AsyncClient) -> None:
    refused = await _checkout(http, **{"managed_payments[enabled]": "true"})
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "managed_payments"
    off = await _checkout(http, **{"managed_payments[enabled]": "false"})
    assert off.status_code == 200
    assert off.json()["managed_payments"] is None
