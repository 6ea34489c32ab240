"""Handlers for subscription, checkout, invoice, payment and customer events.

Order-proof by re-reading: an event only says *that* an object changed. The handler fetches the
object from Stripe (the gateway) and hands the current truth to the one reconciler, with the
moment just before the fetch as its observation time. Deliveries in any order, duplicates and
same-second ties therefore all end in Stripe's latest state, and the reconciler refuses any
observation older than the one it applied.

Throttle: a subscription or invoice event created in an earlier second than the latest such
event whose re-read we applied (the subscription's ``last_event_created``) is already included
in our copy, so the handler applies nothing and makes no Stripe call. Both times are Stripe's
event times — for an object on a test clock, the clock's time, which may be months away from
ours — so our wall clock never enters the comparison. Same-second events (``created`` has
one-second resolution) are always re-read. Checkout events neither throttle nor move the
watermark: a session's events are not guaranteed to be on its subscription's clock.

What the services raise is answered by ``webhooks.errors.OUTCOMES``, not here: an object Stripe
does not have (``StripeNotFound``) or cannot be read (``MalformedStripeObject``) fails the event
for good; one we cannot tie to an organization yet (``UnknownOrganization``: the customer
document may be written a moment later by the mutation that created it) is retried: Stripe
redelivers, and the dispatcher parks the event as ``failed`` after its attempt limit (W7), to be
replayed once the cause is fixed.
"""

from __future__ import annotations

import logging
from typing import Any

from revenue_engine.clock import utcnow
from revenue_engine.documents import (
    AuditEntry,
    AuditSource,
    CheckoutSession,
    Customer,
    Payment,
    Subscription,
)
from revenue_engine.errors import StripeNotFound
from revenue_engine.gateway.models.customer import StripeCustomer
from revenue_engine.gateway.models.payment import parse_charge
from revenue_engine.services import payments
from revenue_engine.services.checkout import record_session
from revenue_engine.services.payment_methods import adopt_checkout_card, refresh_view
from revenue_engine.services.sync import refresh_subscription
from revenue_engine.webhooks.context import HandlerContext
from revenue_engine.webhooks.errors import IgnoredEvent, MalformedObject
from revenue_engine.webhooks.event import StripeEvent

log = logging.getLogger(__name__)


def _id(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


async def _apply_subscription(
    event: StripeEvent, context: HandlerContext, sub_id: str, *, throttle: bool = True
) -> None:
    """Re-read ``sub_id`` and reconcile it, unless (``throttle``) a later event's re-read has
    already been applied."""
    if throttle:
        current = await Subscription.find_one({"stripe_subscription_id": sub_id})
        latest = current.last_event_created if current is not None else None
        if latest is not None and event.created < latest:
            raise IgnoredEvent(f"subscription {sub_id} was re-read for a later event")
    await refresh_subscription(
        context.gateway,
        sub_id,
        source=AuditSource.WEBHOOK,
        reference=event.id,
        event_created=event.created if throttle else None,
    )


async def subscription_changed(event: StripeEvent, context: HandlerContext) -> None:
    """customer.subscription.* — the object is the subscription itself."""
    sub_id = event.object_id
    if not sub_id or event.object.get("object") != "subscription":
        raise MalformedObject("the event's object is not a subscription")
    await _apply_subscription(event, context, sub_id)


def _invoice_subscription(invoice: dict[str, Any]) -> str | None:
    # Current API: invoice.parent.subscription_details.subscription (older: invoice.subscription).
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") or {}
    return _id(details.get("subscription")) or _id(invoice.get("subscription"))


async def invoice_changed(event: StripeEvent, context: HandlerContext) -> None:
    """invoice.* — a subscription's invoice moved (paid, failed, finalized, action required):
    the subscription's status may have moved with it (active, past_due, unpaid…)."""
    if event.object.get("object") != "invoice":
        raise MalformedObject("the event's object is not an invoice")
    sub_id = _invoice_subscription(event.object)
    if sub_id is None:
        raise IgnoredEvent("a one-off invoice: no subscription to update")
    await _apply_subscription(event, context, sub_id)


async def checkout_changed(event: StripeEvent, context: HandlerContext) -> None:
    """checkout.session.* — record the session's outcome and apply its subscription, so a buyer
    who never comes back to the success URL is still subscribed.

    Order-proof like the others: the session is re-read from Stripe (its subscription expanded)
    and what Stripe says now is recorded, never moving our session backwards — a late
    ``completed`` (unpaid) after ``async_payment_succeeded`` (paid) leaves it paid."""
    session = event.object
    session_id = event.object_id
    if not session_id or session.get("object") != "checkout.session":
        raise MalformedObject("the event's object is not a checkout session")
    document = await CheckoutSession.find_one({"stripe_session_id": session_id})
    if document is None:
        if session.get("client_reference_id") is None:
            raise IgnoredEvent("a checkout session not started by this engine")
        sub_id = _id(session.get("subscription"))
        if sub_id and event.type != "checkout.session.expired":
            await _apply_subscription(event, context, sub_id, throttle=False)
        return
    observed_at = utcnow()
    fresh = await context.gateway.retrieve_checkout_session(session_id)
    await record_session(
        document, fresh, source=AuditSource.WEBHOOK, reference=event.id, observed_at=observed_at
    )
    # The card paid with becomes the customer's default for renewals (once per session).
    await adopt_checkout_card(
        context.gateway, document, fresh, source=AuditSource.WEBHOOK, reference=event.id
    )


async def payment_intent_changed(event: StripeEvent, context: HandlerContext) -> None:
    """payment_intent.* — keep our one-time payment documents true (status, failure reason)."""
    intent_id = event.object_id
    if not intent_id or event.object.get("object") != "payment_intent":
        raise MalformedObject("the event's object is not a payment intent")
    payment = await Payment.find_one({"stripe_payment_intent_id": intent_id})
    if payment is None:
        raise IgnoredEvent("not a one-time payment made through this engine")
    intent = await context.gateway.retrieve_payment_intent(intent_id)
    failure = intent.failure_reason
    if (payment.status, payment.failure_reason) != (intent.status, failure):
        await Payment.find_one({"_id": payment.id}).update(
            {
                "$set": {
                    "status": intent.status,
                    "failure_reason": failure,
                    "updated_at": utcnow(),
                }
            }
        )


async def charge_refunded(event: StripeEvent, context: HandlerContext) -> None:
    """charge.refunded — refunds made elsewhere (the dashboard) still count against a payment."""
    if event.object.get("object") != "charge":
        raise MalformedObject("the event's object is not a charge")
    charge = parse_charge(event.object)
    intent_id = charge.payment_intent
    payment = await Payment.find_one({"stripe_payment_intent_id": intent_id}) if intent_id else None
    if payment is None:
        raise IgnoredEvent("not a one-time payment made through this engine")
    refunded = min(charge.amount_refunded or 0, payment.amount)
    if refunded > payment.amount_refunded:
        # Stripe's total only grows: raising ours to it (never lowering) keeps a late, older
        # event, or a refund mutation in between, from undoing a larger total.
        await payments.raise_refunded(payment, refunded)


async def customer_changed(event: StripeEvent, context: HandlerContext) -> None:
    """customer.updated / customer.deleted — keep the organization's customer document true
    (email, name, and the payment-method view's defaults)."""
    customer_id = event.object_id
    if not customer_id or event.object.get("object") != "customer":
        raise MalformedObject("the event's object is not a customer")
    document = await Customer.find_one({"stripe_customer_id": customer_id})
    if document is None:
        raise IgnoredEvent("no organization has this customer")
    observed_at = utcnow()
    try:
        fresh: StripeCustomer | None = await context.gateway.retrieve_customer(customer_id)
    except StripeNotFound:
        fresh = None
    if fresh is None or fresh.deleted:
        # Stripe answers a deleted customer with a ``deleted: true`` stub. Audit row first (it
        # moves the next creation to a new idempotency key), then the document.
        await AuditEntry(
            organization_id=document.organization_id,
            kind="customer.deleted",
            source=AuditSource.WEBHOOK,
            reference=event.id,
        ).insert()
        await document.delete()
        return
    if event.type == "customer.deleted":
        raise IgnoredEvent("the customer still exists at Stripe")
    values = (fresh.email, fresh.name)
    if values != (document.email, document.name):
        email, name = values
        await Customer.find_one({"_id": document.id}).update(
            {"$set": {"email": email, "name": name, "updated_at": utcnow()}}
        )
    # The defaults (default payment method, default source) go into the payment-method view,
    # with the moment before the re-read as its watermark.
    await refresh_view(
        context.gateway, document, defaults=fresh.defaults(), observed_at=observed_at
    )


BILLING_HANDLERS = {
    "checkout.session.completed": checkout_changed,
    "checkout.session.async_payment_succeeded": checkout_changed,
    "checkout.session.async_payment_failed": checkout_changed,
    "checkout.session.expired": checkout_changed,
    "customer.subscription.created": subscription_changed,
    "customer.subscription.updated": subscription_changed,
    "customer.subscription.deleted": subscription_changed,
    "customer.subscription.paused": subscription_changed,
    "customer.subscription.resumed": subscription_changed,
    "customer.subscription.trial_will_end": subscription_changed,
    "invoice.paid": invoice_changed,
    "invoice.payment_failed": invoice_changed,
    "invoice.finalized": invoice_changed,
    "invoice.payment_action_required": invoice_changed,
    "payment_intent.succeeded": payment_intent_changed,
    "payment_intent.payment_failed": payment_intent_changed,
    "payment_intent.canceled": payment_intent_changed,
    "charge.refunded": charge_refunded,
    "customer.updated": customer_changed,
    "customer.deleted": customer_changed,
}
