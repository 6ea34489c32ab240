"""Handlers that keep the stored view of a customer's payment methods true
(``services.payment_methods``): ``payment_method.attached`` / ``detached`` / ``updated`` and
``setup_intent.succeeded`` re-read the customer's defaults and saved methods from Stripe.

Order-proof like the billing handlers: the event only says *that* something changed; the view
is re-read and written with the moment before the read as its watermark, so any order of
deliveries ends in Stripe's latest state. A detached method names its customer only in
``previous_attributes``; failing that, the customer whose view lists it is refreshed.
"""

from __future__ import annotations

from typing import Any

from revenue_engine.documents import Customer
from revenue_engine.errors import StripeNotFound
from revenue_engine.services.payment_methods import refresh_view
from revenue_engine.webhooks.context import HandlerContext
from revenue_engine.webhooks.errors import IgnoredEvent, MalformedObject
from revenue_engine.webhooks.event import StripeEvent


def _id(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


async def _refresh(context: HandlerContext, customer: Customer | None) -> None:
    if customer is None:
        raise IgnoredEvent("no organization has this customer")
    try:
        await refresh_view(context.gateway, customer)
    except StripeNotFound as exc:
        # The customer is gone at Stripe: customer.deleted removes our document.
        raise IgnoredEvent("the customer no longer exists at Stripe") from exc


async def payment_method_changed(event: StripeEvent, context: HandlerContext) -> None:
    """payment_method.* — a method was saved to, or removed from, a customer."""
    method_id = event.object_id
    if not method_id or event.object.get("object") != "payment_method":
        raise MalformedObject("the event's object is not a payment method")
    previous = event.previous_attributes or {}
    customer_id = _id(event.object.get("customer")) or _id(previous.get("customer"))
    if customer_id is not None:
        customer = await Customer.find_one({"stripe_customer_id": customer_id})
    else:
        customer = await Customer.find_one({"payment_methods.id": method_id})
    await _refresh(context, customer)


async def setup_intent_succeeded(event: StripeEvent, context: HandlerContext) -> None:
    """setup_intent.succeeded — a card was saved for the intent's customer."""
    if not event.object_id or event.object.get("object") != "setup_intent":
        raise MalformedObject("the event's object is not a setup intent")
    customer_id = _id(event.object.get("customer"))
    if customer_id is None:
        raise IgnoredEvent("a setup intent without a customer")
    await _refresh(context, await Customer.find_one({"stripe_customer_id": customer_id}))


PAYMENT_METHOD_HANDLERS = {
    "payment_method.attached": payment_method_changed,
    "payment_method.detached": payment_method_changed,
    "payment_method.updated": payment_method_changed,
    "setup_intent.succeeded": setup_intent_succeeded,
}
