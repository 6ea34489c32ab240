"""One-time payments: payment intents and refunds, with a duplicate guard.

An identical ``createPaymentIntent`` (same organization, amount, currency and metadata) within
``PAYMENT_DEDUP_WINDOW_SECONDS`` returns the intent already made instead of a second one, as
long as Stripe says it can still be paid (not succeeded, not canceled).

``confirmPaymentIntent`` takes a payment method id from the client: the engine asks Stripe whose
it is first, and answers ``NOT_FOUND`` (before any confirmation reaches Stripe) for an id Stripe
does not know or a method attached to a customer that is not the caller organization's. A
method attached to nobody (a card just collected by Stripe.js, or a test id such as
``pm_card_visa``) goes on to Stripe, which alone knows whether it was already used up.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import timedelta

from pymongo.errors import DuplicateKeyError

from revenue_engine.auth import Principal
from revenue_engine.clock import utcnow
from revenue_engine.documents import Payment
from revenue_engine.errors import (
    FieldProblem,
    NotFound,
    PaymentDeclined,
    RateLimited,
    ServiceUnavailable,
    StripeNotFound,
    ValidationFailed,
)
from revenue_engine.gateway import PaymentCalls, SavedMethodCalls, StripeApi, idempotency_key
from revenue_engine.gateway.models.payment import StripePaymentIntent
from revenue_engine.invariants import present
from revenue_engine.money import MAX_AMOUNT, charge_problem, normalize_currency
from revenue_engine.services.customers import get_customer, get_or_create_customer
from revenue_engine.settings import Settings

log = logging.getLogger(__name__)

#: A Stripe payment method id (``pm_`` and letters, digits or underscores).
_PAYMENT_METHOD = re.compile(r"^pm_[A-Za-z0-9_]{1,252}$")

#: Stripe allows 50 metadata keys; the engine adds ``organization_id`` itself.
MAX_METADATA_KEYS = 49
#: Stripe's limits on one metadata entry.
MAX_METADATA_KEY = 40
MAX_METADATA_VALUE = 500
RESERVED_METADATA = frozenset(["organization_id"])


def metadata_problems(metadata: dict[str, str], field: str = "metadata") -> list[FieldProblem]:
    """Stripe's metadata rules, checked here so that Stripe never sees a request it refuses."""
    problems: list[FieldProblem] = []
    if len(metadata) > MAX_METADATA_KEYS:
        problems.append(FieldProblem(field, f"at most {MAX_METADATA_KEYS} keys"))
    for key, value in metadata.items():
        at = f"{field}.{key}"
        if not 0 < len(key) <= MAX_METADATA_KEY:
            problems.append(FieldProblem(at, f"keys must be 1-{MAX_METADATA_KEY} characters"))
        elif "\x00" in key:
            # Not a key a document can store (BSON field names end at NUL).
            problems.append(FieldProblem(field, "keys must not contain the NUL character"))
        elif "[" in key or "]" in key:
            problems.append(FieldProblem(at, "keys must not contain '[' or ']'"))
        elif key in RESERVED_METADATA:
            problems.append(FieldProblem(at, f"{key!r} is set by the engine"))
        if len(value) > MAX_METADATA_VALUE:
            problems.append(
                FieldProblem(at, f"values must be at most {MAX_METADATA_VALUE} characters")
            )
    return problems


def _validate(amount: int, currency: str, metadata: dict[str, str]) -> str:
    problems: list[FieldProblem] = []
    code = normalize_currency(currency)
    if code is None:
        problems.append(FieldProblem("currency", f"unknown currency {currency!r}"))
        if not 0 < amount <= MAX_AMOUNT:
            problems.append(FieldProblem("amount", f"amount must be between 1 and {MAX_AMOUNT}"))
    else:
        amount_problem = charge_problem(amount, code)
        if amount_problem:
            problems.append(FieldProblem("amount", amount_problem))
    problems.extend(metadata_problems(metadata))
    if problems or code is None:  # an unknown currency is always one of the problems
        raise ValidationFailed("invalid payment", problems)
    return code


#: A canceled or paid intent is no answer to "I want to pay this (again)".
_SPENT = frozenset(["canceled", "succeeded"])


def _fingerprint(amount: int, currency: str, metadata: dict[str, str]) -> str:
    raw = json.dumps([amount, currency, sorted(metadata.items())])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _sync(payment: Payment, intent: StripePaymentIntent) -> bool:
    """Copy Stripe's view onto the document; True when something changed."""
    failure = intent.failure_reason
    changed = (payment.status, payment.failure_reason) != (intent.status, failure)
    payment.status = intent.status
    payment.failure_reason = failure
    return changed


async def create_payment_intent(
    gateway: StripeApi,
    settings: Settings,
    principal: Principal,
    *,
    amount: int,
    currency: str,
    metadata: dict[str, str],
) -> tuple[Payment, str | None]:
    """The payment and its ``client_secret`` (for Stripe.js on the client)."""
    code = _validate(amount, currency, metadata)
    org = principal.organization_id
    fingerprint = _fingerprint(amount, code, metadata)
    # The intent is numbered by the identical payments made before, counted first, before
    # anything is awaited on Stripe: concurrent double-submits count the same and share the
    # key (one intent), though one of them may insert its payment while another still makes
    # the customer; a later, deliberate repeat, or a repeat of one found spent below, counts
    # one more.
    bucket = await Payment.find({"organization_id": org, "fingerprint": fingerprint}).count()
    window = settings.payment_dedup_window_seconds
    if window:
        reused = await _payable_recent(gateway, org, fingerprint, window)
        if reused is not None:
            return reused
    customer = await get_or_create_customer(gateway, principal)
    intent = await gateway.create_payment_intent(
        {
            "amount": amount,
            "currency": code,
            "customer": customer.stripe_customer_id,
            "metadata": {**metadata, "organization_id": org},
            "payment_method_types": ["card"],
        },
        key=idempotency_key(org, "payment_intent.create", fingerprint, bucket),
    )
    payment = Payment(
        stripe_payment_intent_id=intent.id,
        organization_id=org,
        stripe_customer_id=customer.stripe_customer_id,
        amount=amount,
        currency=code,
        status=intent.status,
        fingerprint=fingerprint,
        metadata=metadata,
    )
    return await _stored(payment), intent.client_secret


async def _payable_recent(
    gateway: PaymentCalls, org: str, fingerprint: str, window: int
) -> tuple[Payment, str | None] | None:
    """The newest identical payment of the last ``window`` seconds that can still be paid,
    with its ``client_secret``; None when there is none. Stripe may have moved on before its
    webhook reached us (paid or canceled from Stripe.js or the dashboard): what Stripe says is
    stored on each candidate looked at, and only an intent that can still be paid is handed
    out."""
    recent = (
        await Payment.find(
            {
                "organization_id": org,
                "fingerprint": fingerprint,
                "created_at": {"$gte": utcnow() - timedelta(seconds=window)},
                "status": {"$nin": sorted(_SPENT)},
            }
        )
        .sort("-created_at")
        .to_list()
    )
    for candidate in recent:
        again = await gateway.retrieve_payment_intent(candidate.stripe_payment_intent_id)
        if _sync(candidate, again):
            candidate.updated_at = utcnow()
            # Targeted: leaves the refund fields, which webhooks may be writing, alone.
            await Payment.find_one({"_id": candidate.id}).update(
                {
                    "$set": {
                        "status": candidate.status,
                        "failure_reason": candidate.failure_reason,
                        "updated_at": candidate.updated_at,
                    }
                }
            )
        if candidate.status not in _SPENT:
            return candidate, again.client_secret
    return None


async def _stored(payment: Payment) -> Payment:
    """``payment`` inserted; a concurrent double-submit that stored the same intent first wins."""
    try:
        await payment.insert()
    except DuplicateKeyError:
        existing = await Payment.find_one(
            {
                "stripe_payment_intent_id": payment.stripe_payment_intent_id,
                "organization_id": payment.organization_id,
            }
        )
        return present(
            existing, f"payment {payment.stripe_payment_intent_id} after a duplicate insert"
        )
    return payment


async def raise_refunded(payment: Payment, total: int) -> None:
    """Raise the payment's ``amount_refunded`` to Stripe's ``total``, never lower it: what
    ``$max`` does, as a filtered ``$set`` (some MongoDB-compatible servers lack ``$max``)."""
    await Payment.find_one({"_id": payment.id, "amount_refunded": {"$lt": total}}).update(
        {"$set": {"amount_refunded": total, "updated_at": utcnow()}}
    )


async def get_payment(principal: Principal, intent_id: str) -> Payment | None:
    return await Payment.find_one(
        {"stripe_payment_intent_id": intent_id, "organization_id": principal.organization_id}
    )


async def _require(principal: Principal, intent_id: str) -> Payment:
    payment = await get_payment(principal, intent_id)
    if payment is None:
        raise NotFound("payment intent", intent_id)
    return payment


async def refresh_payment(gateway: PaymentCalls, principal: Principal, intent_id: str) -> Payment:
    payment = await _require(principal, intent_id)
    try:
        intent = await gateway.retrieve_payment_intent(intent_id)
    except StripeNotFound:
        raise NotFound("payment intent", intent_id) from None
    await _store_status(payment, intent)
    return payment


async def _store_status(payment: Payment, intent: StripePaymentIntent) -> None:
    if _sync(payment, intent):
        payment.updated_at = utcnow()
        # Targeted: leaves the refund fields, which webhooks may be writing, alone.
        await Payment.find_one({"_id": payment.id}).update(
            {
                "$set": {
                    "status": payment.status,
                    "failure_reason": payment.failure_reason,
                    "updated_at": payment.updated_at,
                }
            }
        )


#: Stored statuses that may have moved at Stripe without our knowing yet (a payment confirmed
#: in the browser with its client secret is ``succeeded`` there before its webhook arrives).
#: ``canceled`` is final at Stripe.
_MAY_HAVE_MOVED = frozenset(
    {
        "requires_payment_method",
        "requires_confirmation",
        "requires_action",
        "processing",
        "requires_capture",
    }
)


async def current_payment(
    gateway: PaymentCalls, principal: Principal, intent_id: str
) -> Payment | None:
    """The organization's payment; re-read from Stripe when the stored status is one Stripe
    may have moved on from (the stored one is answered while Stripe cannot be reached)."""
    payment = await get_payment(principal, intent_id)
    if payment is None or payment.status not in _MAY_HAVE_MOVED:
        return payment
    try:
        intent = await gateway.retrieve_payment_intent(intent_id)
    except (ServiceUnavailable, RateLimited, StripeNotFound) as exc:
        log.warning(
            "payment answered from the store payment=%s error=%s", intent_id, type(exc).__name__
        )
        return payment
    await _store_status(payment, intent)
    return payment


async def _require_payment_method(
    gateway: SavedMethodCalls, principal: Principal, payment: Payment, payment_method: str
) -> None:
    """``NotFound`` unless ``payment_method`` exists at Stripe and is attached to nobody or to
    one of the organization's customers (the intent's, or the organization's current one).

    Another customer's card and an unknown id get the same answer, so the answer tells nothing
    about other organizations."""
    try:
        method = await gateway.retrieve_payment_method(payment_method)
    except StripeNotFound:
        raise NotFound("payment method", payment_method) from None
    if method.customer is None:
        return
    ours = {payment.stripe_customer_id}
    if method.customer not in ours:
        current = await get_customer(principal)
        ours.add(current.stripe_customer_id if current else None)
    if method.customer not in ours:
        log.warning(
            "payment method of another customer refused organization_id=%s payment=%s",
            principal.organization_id,
            payment.stripe_payment_intent_id,
        )
        raise NotFound("payment method", payment_method)


async def confirm_payment_intent(
    gateway: StripeApi, principal: Principal, intent_id: str, *, payment_method: str
) -> Payment:
    """Pay the organization's intent with ``payment_method`` (checked first, see the module
    docstring); a decline is recorded and raised as ``PaymentDeclined``."""
    payment = await _require(principal, intent_id)
    if not _PAYMENT_METHOD.match(payment_method):
        raise ValidationFailed(
            "invalid payment method", [FieldProblem("paymentMethod", "expected a pm_… id")]
        )
    await _require_payment_method(gateway, principal, payment, payment_method)
    # Each attempt after a decline is a new intent (the card may work now).
    key = idempotency_key(
        principal.organization_id,
        "payment_intent.confirm",
        intent_id,
        payment_method,
        payment.declines,
    )
    try:
        intent = await gateway.confirm_payment_intent(
            intent_id, {"payment_method": payment_method}, key=key
        )
    except PaymentDeclined:
        # Record why, then let the caller see the typed decline.
        await Payment.find_one({"_id": payment.id}).update({"$inc": {"declines": 1}})
        await refresh_payment(gateway, principal, intent_id)
        raise
    _sync(payment, intent)
    payment.updated_at = utcnow()
    await payment.save()
    return payment


async def cancel_payment_intent(
    gateway: PaymentCalls, principal: Principal, intent_id: str
) -> Payment:
    payment = await _require(principal, intent_id)
    key = idempotency_key(principal.organization_id, "payment_intent.cancel", intent_id)
    intent = await gateway.cancel_payment_intent(intent_id, key=key)
    _sync(payment, intent)
    payment.updated_at = utcnow()
    await payment.save()
    return payment


async def refund_payment(
    gateway: PaymentCalls, principal: Principal, intent_id: str, *, amount: int | None
) -> Payment:
    """Refund all that is left, or ``amount`` of it; never more than what was paid."""
    payment = await _require(principal, intent_id)
    if payment.status in _MAY_HAVE_MOVED:
        # Stripe promises no delivery time for the webhook: ask it whether the payment went
        # through (confirmed in the browser) before refusing the refund.
        payment = await refresh_payment(gateway, principal, intent_id)
    left = payment.amount - payment.amount_refunded
    if payment.status != "succeeded":
        raise ValidationFailed(
            "nothing to refund", [FieldProblem("paymentIntentId", "the payment has not succeeded")]
        )
    wanted = left if amount is None else amount
    if not 0 < wanted <= left:
        raise ValidationFailed(
            "invalid refund amount", [FieldProblem("amount", f"must be between 1 and {left}")]
        )
    key = idempotency_key(
        principal.organization_id, "refund.create", intent_id, wanted, len(payment.refund_ids)
    )
    refund = await gateway.create_refund({"payment_intent": intent_id, "amount": wanted}, key=key)
    refund_id = refund.id
    # Stripe's running total is the truth: raising ours to it (never $inc) cannot double-count
    # a refund that a charge.refunded webhook recorded in between, and never lowers ours.
    total = (refund.amount or wanted) + payment.amount_refunded
    if refund.charge:
        total = (await gateway.retrieve_charge(refund.charge)).amount_refunded or total
    await Payment.find_one({"_id": payment.id}).update(
        {"$addToSet": {"refund_ids": refund_id}, "$set": {"updated_at": utcnow()}}
    )
    await raise_refunded(payment, min(total, payment.amount))
    payment = present(await Payment.get(payment.id), f"payment {payment.id} after its refund")
    log.info(
        "refund created organization_id=%s payment=%s amount=%d",
        principal.organization_id,
        intent_id,
        wanted,
    )
    return payment
