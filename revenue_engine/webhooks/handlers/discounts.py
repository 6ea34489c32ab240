"""Handlers for ``customer.discount.*``: a discount was added to, changed on or removed from a
subscription (a promotion code redeemed in the dashboard or the portal, a ``once`` or
``repeating`` discount running out). The event only says *that* it changed: the handler re-reads
the subscription (its discounts expanded) and hands it to the one reconciler, exactly as
``customer.subscription.*`` does — throttle and ordering included (see ``handlers.billing``).
A discount on the customer itself (no ``subscription``) is not part of our view: ignored.
"""

from __future__ import annotations

from revenue_engine.webhooks.context import HandlerContext
from revenue_engine.webhooks.errors import IgnoredEvent, MalformedObject
from revenue_engine.webhooks.event import StripeEvent
from revenue_engine.webhooks.handlers.billing import _apply_subscription, _id


async def discount_changed(event: StripeEvent, context: HandlerContext) -> None:
    """customer.discount.created / updated / deleted."""
    if event.object.get("object") != "discount":
        raise MalformedObject("the event's object is not a discount")
    sub_id = _id(event.object.get("subscription"))
    if sub_id is None:
        raise IgnoredEvent("a customer-level discount: no subscription to update")
    await _apply_subscription(event, context, sub_id)


DISCOUNT_HANDLERS = {
    "customer.discount.created": discount_changed,
    "customer.discount.updated": discount_changed,
    "customer.discount.deleted": discount_changed,
}
