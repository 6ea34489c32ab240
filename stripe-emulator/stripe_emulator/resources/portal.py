"""Billing portal sessions and the actions of the emulated portal page.

Route: ``POST /v1/billing_portal/sessions`` (``customer``, ``return_url``, ``flow_data``).
The session ``url`` opens the emulator's portal page (see :mod:`pages`), where the customer can
cancel a subscription at period end (Stripe's default portal behaviour), undo that, or replace
the payment method — which also retries any open invoice of a past-due subscription.
"""

from __future__ import annotations

from stripe_emulator import reference
from stripe_emulator.billing import collect, items_of, schedule_cancel
from stripe_emulator.errors import StripeError, invalid_request
from stripe_emulator.events import emit_update
from stripe_emulator.forms import Params
from stripe_emulator.ids import new_id
from stripe_emulator.invoicing import subscription_of
from stripe_emulator.resources.payment_methods import new_card
from stripe_emulator.routing import Route
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON, snapshot

DEFAULT_CONFIGURATION = "bpc_emulatordefault0000000"
FLOW_TYPES = (
    "payment_method_update",
    "subscription_cancel",
    "subscription_update",
    "subscription_update_confirm",
)


def _flow(ctx: Ctx, p: Params, customer_id: str) -> JSON | None:
    data = p.sub("flow_data")
    if data is None:
        return None
    data.only(("type", "after_completion", *FLOW_TYPES))
    kind = data.string("type", required=True, choices=FLOW_TYPES)
    after = data.sub("after_completion")
    after_type = (
        after.string("type", choices=("hosted_confirmation", "portal_homepage", "redirect"))
        if after
        else None
    )
    redirect = after.sub("redirect") if after else None
    flow: JSON = {
        "after_completion": {
            "hosted_confirmation": None,
            "redirect": {
                "return_url": reference.url(
                    redirect.string("return_url", required=True), param=redirect.path("return_url")
                )
            }
            if redirect
            else None,
            "type": after_type or "portal_homepage",
        },
        "subscription_cancel": None,
        "subscription_update": None,
        "subscription_update_confirm": None,
        "type": kind,
    }
    if kind in ("subscription_cancel", "subscription_update", "subscription_update_confirm"):
        assert kind is not None
        details = data.sub(kind, required=True)
        assert details is not None
        sub_id = details.string("subscription", required=True)
        sub = ctx.store.require("subscription", sub_id, param=f"flow_data[{kind}][subscription]")
        if sub["customer"] != customer_id:
            raise invalid_request(
                "The subscription does not belong to this customer.",
                param=f"flow_data[{kind}][subscription]",
            )
        flow[kind] = {"subscription": sub_id}
        if kind == "subscription_cancel":
            flow[kind]["retention"] = None
    return flow


def _create(ctx: Ctx, p: Params) -> JSON:
    p.only(
        ("customer", "return_url", "configuration", "flow_data", "locale", "on_behalf_of", "expand")
    )
    customer_id = p.string("customer", required=True)
    assert customer_id is not None
    ctx.store.require("customer", customer_id, param="customer")
    session_id = new_id("bps_")
    session: JSON = {
        "id": session_id,
        "object": "billing_portal.session",
        "configuration": p.string("configuration") or DEFAULT_CONFIGURATION,
        "created": ctx.state.now_for_customer(customer_id),
        "customer": customer_id,
        "customer_account": None,
        "flow": _flow(ctx, p, customer_id),
        "livemode": False,
        "locale": p.string("locale"),
        "on_behalf_of": p.string("on_behalf_of"),
        "return_url": reference.url(p.string("return_url"), param="return_url"),
        "url": ctx.url(f"/billing_portal/{session_id}"),
    }
    ctx.store.put(session)
    return session


def portal_subscriptions(ctx: Ctx, session: JSON) -> list[JSON]:
    return ctx.store.all(
        "subscription",
        lambda s: (
            s["customer"] == session["customer"]
            and s["status"] not in ("canceled", "incomplete_expired")
        ),
    )


def _owned(ctx: Ctx, session: JSON, sub_id: str) -> JSON:
    sub = ctx.store.require("subscription", sub_id, param="subscription")
    if sub["customer"] != session["customer"]:
        raise invalid_request("No such subscription for this customer.", param="subscription")
    return sub


def cancel_at_period_end(ctx: Ctx, session: JSON, sub_id: str, *, cancel: bool) -> None:
    sub = _owned(ctx, session, sub_id)
    before = snapshot(sub)
    schedule_cancel(ctx, sub, at_period_end=cancel)
    emit_update(ctx, "customer.subscription.updated", sub, before)


def update_payment_method(ctx: Ctx, session: JSON, card_id: str) -> StripeError | None:
    """New default card for the customer and their subscriptions; retries past-due invoices."""
    customer = ctx.store.require("customer", session["customer"])
    try:
        pm = new_card(ctx, card_id, customer["id"])
    except StripeError as error:
        return error
    before = snapshot(customer)
    customer["invoice_settings"]["default_payment_method"] = pm["id"]
    emit_update(ctx, "customer.updated", customer, before)
    subs = portal_subscriptions(ctx, session)
    for sub in subs:
        before = snapshot(sub)
        sub["default_payment_method"] = pm["id"]
        emit_update(ctx, "customer.subscription.updated", sub, before)
    for inv in ctx.store.all("invoice", lambda i: i["customer"] == customer["id"]):
        billed = subscription_of(ctx, inv)
        if (
            inv["status"] == "open"
            and billed is not None
            and billed["status"] in ("past_due", "unpaid")
        ):
            collect(ctx, billed, inv)
    return None


def describe_subscription(ctx: Ctx, sub: JSON) -> list[str]:
    lines = []
    for item in items_of(sub):
        product = ctx.store.get("product", item["price"]["product"])
        lines.append(str(product["name"]) if product else str(item["price"]["product"]))
    return lines


ROUTES = [
    Route("POST", "/v1/billing_portal/sessions", _create),
]
