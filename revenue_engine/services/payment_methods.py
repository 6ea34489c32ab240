"""The saved payment methods of an organization's customer: the list, the default, removing one,
the card paid at Checkout as the default for renewals, and the stored view of all that.

* **Ownership.** An id from a client is checked at Stripe first: one Stripe does not know, or
  attached to another customer, is ``NOT_FOUND`` (the same answer, so it tells nothing about
  other organizations), and nothing is written to Stripe. An id of the wrong shape gets the
  same answer before anything is sent.
* **Idempotency.** Changing the default is keyed by the customer's count of default changes
  made through the engine (``Customer.default_changes``): a double-submit shares the key (one
  change at Stripe) and bumps the count once; the next change is a new request. A method that
  is already the default at Stripe is not sent again. Detaching is keyed by the method (a
  detached method cannot come back); asked again after it went, it answers as done.
* **Renewals.** The default is what Stripe charges when a subscription names no method of its
  own; a subscription that names one (Checkout sets the card paid with) is moved to the new
  default with it, so the choice is what renewals charge. The live subscription's method
  cannot be detached (``PAYMENT_METHOD_IN_USE``): choose another default first.
* **The view.** ``refresh_view`` reads the customer's defaults and saved methods from Stripe and
  stores them on the ``Customer`` document, watermarked with the moment just before the reads,
  so an older read never overwrites a newer one. Webhooks (``payment_method.*``,
  ``setup_intent.succeeded``, ``customer.updated``) and every mutation here refresh it; the
  ``paymentMethods`` query reads Stripe too (a card saved in the browser shows at once) and
  answers from the view when Stripe cannot be reached.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from revenue_engine.auth import Principal
from revenue_engine.clock import utcnow
from revenue_engine.documents import AuditEntry, AuditSource, CheckoutSession, Customer
from revenue_engine.documents.customer import SavedPaymentMethod
from revenue_engine.errors import (
    NotFound,
    PaymentMethodInUse,
    PaymentProviderRejected,
    RateLimited,
    ServiceUnavailable,
    StripeNotFound,
)
from revenue_engine.gateway import (
    CustomerDefaults,
    SavedMethod,
    SavedMethodCalls,
    StripeApi,
    SubscriptionCalls,
    idempotency_key,
)
from revenue_engine.gateway.models.customer import StripeCheckoutSession
from revenue_engine.services.customers import get_customer
from revenue_engine.services.purchase import live_subscription
from revenue_engine.services.reconcile import apply_subscription

log = logging.getLogger(__name__)

#: A saved payment method's id: a PaymentMethod (``pm_``) or a legacy card source (``card_``).
_METHOD_ID = re.compile(r"(pm|card)_[A-Za-z0-9_]{1,250}")
#: Audit kinds: a Checkout card made the default (reference: the session), a method detached.
CHECKOUT_DEFAULT = "customer.checkout_default"
DETACHED = "payment_method.detached"


@dataclass(frozen=True, slots=True)
class PaymentMethodRow:
    id: str
    type: str
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None
    is_default: bool


def rows(customer: Customer) -> list[PaymentMethodRow]:
    """The stored view; the default is what Stripe charges: the default payment method, else
    the default source."""
    default = customer.default_payment_method or customer.default_source
    return [
        PaymentMethodRow(**m.model_dump(), is_default=m.id == default)
        for m in customer.payment_methods
    ]


async def record_view(
    customer: Customer,
    defaults: CustomerDefaults,
    methods: list[SavedMethod],
    observed_at: datetime,
) -> Customer:
    """Store what Stripe said at ``observed_at``, unless a later read is stored already."""
    saved = [SavedPaymentMethod(**asdict(m)) for m in methods]
    fields: dict[str, Any] = {
        "default_payment_method": defaults.default_payment_method,
        "default_source": defaults.default_source,
        "payment_methods": [m.model_dump() for m in saved],
        "payment_methods_seen_at": observed_at,
    }
    await Customer.find_one(
        {
            "_id": customer.id,
            "$or": [
                {"payment_methods_seen_at": None},
                {"payment_methods_seen_at": {"$lt": observed_at}},
            ],
        }
    ).update({"$set": fields})
    customer.default_payment_method = defaults.default_payment_method
    customer.default_source = defaults.default_source
    customer.payment_methods = saved
    customer.payment_methods_seen_at = observed_at
    return customer


async def refresh_view(
    gateway: SavedMethodCalls,
    customer: Customer,
    *,
    defaults: CustomerDefaults | None = None,
    observed_at: datetime | None = None,
) -> Customer:
    """Re-read the customer's defaults (unless given, with the moment before they were read)
    and saved methods from Stripe, and store them (see the module docstring)."""
    moment = observed_at or utcnow()
    if defaults is None:
        defaults = await gateway.retrieve_customer_defaults(customer.stripe_customer_id)
    if defaults.deleted:
        return customer  # customer.deleted removes the document
    methods = await gateway.list_saved_methods(customer.stripe_customer_id)
    return await record_view(customer, defaults, methods, moment)


async def list_payment_methods(
    gateway: SavedMethodCalls, principal: Principal
) -> list[PaymentMethodRow]:
    """The customer's saved methods as Stripe says now; the stored view while Stripe cannot be
    reached; none before the organization has a customer."""
    customer = await get_customer(principal)
    if customer is None:
        return []
    try:
        customer = await refresh_view(gateway, customer)
    except (ServiceUnavailable, RateLimited) as exc:
        log.warning(
            "payment methods answered from the stored view organization_id=%s error=%s",
            principal.organization_id,
            type(exc).__name__,
        )
    return rows(customer)


def _check_id(payment_method_id: str) -> None:
    # Answered as an id Stripe does not know (as invoice cursors are): an id's shape tells a
    # caller nothing an unknown id would not, and nothing is sent.
    if not _METHOD_ID.fullmatch(payment_method_id):
        raise NotFound("payment method", payment_method_id)


async def _owned(
    gateway: SavedMethodCalls, principal: Principal, payment_method_id: str
) -> tuple[Customer, str | None]:
    """The organization's customer and whose the method is at Stripe (its customer, or None
    when attached to nobody); ``NotFound`` for an unknown id or another customer's method."""
    _check_id(payment_method_id)
    customer = await get_customer(principal)
    if customer is None:
        raise NotFound("payment method", payment_method_id)
    try:
        owner = await gateway.retrieve_payment_method(payment_method_id)
    except StripeNotFound:
        raise NotFound("payment method", payment_method_id) from None
    if owner.customer not in (None, customer.stripe_customer_id):
        log.warning(
            "payment method of another customer refused organization_id=%s",
            principal.organization_id,
        )
        raise NotFound("payment method", payment_method_id)
    return customer, owner.customer


async def set_default_payment_method(
    gateway: StripeApi, principal: Principal, payment_method_id: str, *, request_id: str | None
) -> list[PaymentMethodRow]:
    """Make one of the customer's saved methods the default for its invoices and renewals."""
    customer, owner = await _owned(gateway, principal, payment_method_id)
    if owner is None:
        raise NotFound("payment method", payment_method_id)  # not saved: save it first
    org = principal.organization_id
    cid = customer.stripe_customer_id
    change = customer.default_changes
    observed_at = utcnow()
    defaults = await gateway.retrieve_customer_defaults(cid)
    if defaults.default_payment_method != payment_method_id:
        key = idempotency_key(
            org, "customer.default_payment_method", cid, payment_method_id, change
        )
        defaults = await gateway.set_default_payment_method(cid, payment_method_id, key=key)
    await _move_subscription(gateway, principal, payment_method_id, change, request_id)
    # Once per change: a twin that shared the key finds the count moved already.
    await Customer.find_one({"_id": customer.id, "default_changes": change}).update(
        {"$inc": {"default_changes": 1}}
    )
    customer = await refresh_view(gateway, customer, defaults=defaults, observed_at=observed_at)
    log.info("default payment method set organization_id=%s", org)
    return rows(customer)


async def _move_subscription(
    gateway: SubscriptionCalls,
    principal: Principal,
    payment_method_id: str,
    change: int,
    request_id: str | None,
) -> None:
    """A live subscription that names its own method (Checkout's card) pays with the new
    default from now on."""
    live = await live_subscription(principal.organization_id)
    if live is None:
        return
    sid = live.stripe_subscription_id
    current = await gateway.retrieve_subscription(sid)
    named = current.default_payment_method
    if named is None or named == payment_method_id:
        return
    key = idempotency_key(
        principal.organization_id,
        "subscription.default_payment_method",
        sid,
        payment_method_id,
        change,
    )
    observed_at = utcnow()
    updated = await gateway.update_subscription(
        sid, {"default_payment_method": payment_method_id}, key=key
    )
    await apply_subscription(
        updated, source=AuditSource.MUTATION, reference=request_id, observed_at=observed_at
    )


async def detach_payment_method(
    gateway: StripeApi, principal: Principal, payment_method_id: str
) -> list[PaymentMethodRow]:
    """Remove a saved method from the customer (refused for the live subscription's)."""
    org = principal.organization_id
    customer, owner = await _owned(gateway, principal, payment_method_id)
    if owner is None:
        done = await AuditEntry.find_one(
            {"organization_id": org, "kind": DETACHED, "reference": payment_method_id}
        )
        if done is None:
            raise NotFound("payment method", payment_method_id)
        # Detached by this organization a moment ago (a double-submit): the same answer.
        return rows(await refresh_view(gateway, customer))
    cid = customer.stripe_customer_id
    defaults = await gateway.retrieve_customer_defaults(cid)
    live = await live_subscription(org)
    if live is not None:
        subscription = await gateway.retrieve_subscription(live.stripe_subscription_id)
        pays = subscription.default_payment_method or defaults.default
        if pays == payment_method_id:
            raise PaymentMethodInUse(payment_method_id)
    # The audit row first: a twin that finds the method detached a moment later answers as
    # done (a row whose detach then failed is harmless: the method is still attached, so the
    # row is never read for it).
    await AuditEntry(
        organization_id=org,
        kind=DETACHED,
        source=AuditSource.MUTATION,
        reference=payment_method_id,
    ).insert()
    await gateway.detach_payment_method(
        payment_method_id, key=idempotency_key(org, "payment_method.detach", payment_method_id)
    )
    log.info("payment method detached organization_id=%s", org)
    return rows(await refresh_view(gateway, customer))


async def adopt_checkout_card(
    gateway: SavedMethodCalls,
    document: CheckoutSession,
    session: StripeCheckoutSession,
    *,
    source: AuditSource,
    reference: str | None,
) -> None:
    """The card paid at Checkout (its subscription's ``default_payment_method``) becomes the
    customer's default, once per session: verification and the webhook share one key, and
    the audit row keeps a late redelivery from undoing a default chosen since."""
    subscription = session.expanded_subscription
    card = subscription.default_payment_method if subscription is not None else None
    if session.status != "complete" or not card:
        return
    org, sid = document.organization_id, document.stripe_session_id
    if await AuditEntry.find_one(
        {"organization_id": org, "kind": CHECKOUT_DEFAULT, "reference": sid}
    ):
        return
    customer = await Customer.find_one(
        {"organization_id": org, "stripe_customer_id": document.stripe_customer_id}
    )
    if customer is None:
        return  # deleted meanwhile
    observed_at = utcnow()
    key = idempotency_key(org, "customer.checkout_default", sid, card)
    defaults: CustomerDefaults | None = None
    try:
        defaults = await gateway.set_default_payment_method(
            customer.stripe_customer_id, card, key=key
        )
    except (PaymentProviderRejected, StripeNotFound) as exc:
        # The card was detached (or the customer deleted) before we got here: nothing to adopt.
        log.info("checkout card not adopted organization_id=%s reason=%s", org, exc.code)
    await AuditEntry(
        organization_id=org,
        kind=CHECKOUT_DEFAULT,
        source=source,
        reference=sid,
        changes={"default_payment_method": card if defaults else None},
    ).insert()
    if defaults is not None:
        await refresh_view(gateway, customer, defaults=defaults, observed_at=observed_at)
