"""Stripe Checkout: start a session for a plan, and verify it when the buyer is redirected back.

Verification and the webhook handlers apply the same reconciler, so whichever arrives first does
the work and the other changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from revenue_engine.auth import Principal
from revenue_engine.clock import as_utc, utcnow
from revenue_engine.documents import (
    AuditSource,
    BillingInterval,
    CheckoutSession,
    CheckoutStatus,
    Subscription,
    SubscriptionPlan,
)
from revenue_engine.errors import (
    FieldProblem,
    NotFound,
    PaymentProviderRejected,
    RateLimited,
    ServiceUnavailable,
    StripeNotFound,
    ValidationFailed,
)
from revenue_engine.gateway import CheckoutCalls, SavedMethodCalls, StripeApi, idempotency_key
from revenue_engine.gateway.models.customer import StripeCheckoutSession
from revenue_engine.invariants import present
from revenue_engine.services import promotions
from revenue_engine.services.catalog import ChosenPrice, ensure_plan_prices
from revenue_engine.services.customers import get_customer, get_or_create_customer
from revenue_engine.services.paths import path_problem
from revenue_engine.services.payment_methods import adopt_checkout_card
from revenue_engine.services.purchase import (
    ensure_no_live_subscription,
    purchasable_plan,
    purchase_lease,
)
from revenue_engine.services.reconcile import apply_subscription
from revenue_engine.services.seats import seats_for, with_seats
from revenue_engine.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_SUCCESS_PATH = "/billing/success"
#: An open session is handed out again for the same purchase while younger than this
#: (Stripe expires Checkout sessions after 24 hours).
REUSE_SECONDS = 23 * 3600
DEFAULT_CANCEL_PATH = "/billing/cancel"


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    plan_uid: str
    interval: BillingInterval
    overages: tuple[str, ...] = ()
    success_path: str | None = None
    cancel_path: str | None = None
    trial_days: int | None = None
    #: A promotion code the customer typed (checked at Stripe before anything is written).
    promotion_code: str | None = None
    #: A per-seat plan's seats (None: its least).
    seats: int | None = None


@dataclass(frozen=True, slots=True)
class Verification:
    session: CheckoutSession
    stripe_status: str
    payment_status: str
    subscription: Subscription | None


def _check_path(field: str, path: str | None, default: str, problems: list[FieldProblem]) -> str:
    """A same-site path (no scheme, no host): Checkout must not redirect anywhere else."""
    if path is None:
        return default
    problem = path_problem(path)
    if problem:
        problems.append(FieldProblem(field, problem))
    return path


def _url(settings: Settings, path: str, *, with_session: bool) -> str:
    url = settings.public_base_url.rstrip("/") + path
    if with_session:
        url += ("&" if "?" in path else "?") + "session_id={CHECKOUT_SESSION_ID}"
    return url


async def create_checkout_session(
    gateway: StripeApi, settings: Settings, principal: Principal, request: CheckoutRequest
) -> CheckoutSession:
    """Validate the purchase, then create (or reuse) a Checkout session for it."""
    org = principal.organization_id
    problems: list[FieldProblem] = []
    success = _check_path("successPath", request.success_path, DEFAULT_SUCCESS_PATH, problems)
    cancel = _check_path("cancelPath", request.cancel_path, DEFAULT_CANCEL_PATH, problems)
    if request.trial_days is not None and not 1 <= request.trial_days <= 730:
        problems.append(FieldProblem("trialDays", "trialDays must be between 1 and 730"))
    code = promotions.normalize(request.promotion_code, problems)
    plan: SubscriptionPlan = await purchasable_plan(
        request.plan_uid, request.interval, request.overages, problems
    )
    seats = seats_for(plan, request.seats, problems)
    if problems:
        raise ValidationFailed("invalid checkout request", problems)
    overages = sorted(set(request.overages))
    promotion = None
    if code is not None:
        customer = await get_customer(principal)
        purchase = promotions.purchase_of(
            org,
            customer.stripe_customer_id if customer else None,
            plan,
            request.interval,
            overages,
            utcnow(),
            base_quantity=seats,
        )
        promotion = await promotions.check_promotion_code(gateway, code, purchase)
    order = _Order(
        plan,
        request.interval,
        overages,
        request.trial_days,
        success,
        cancel,
        promotion,
        seats,
    )
    async with purchase_lease(org):
        return await _create_under_lease(gateway, settings, principal, order)


@dataclass(frozen=True, slots=True)
class _Order:
    """A checkout as asked and validated: the plan at an interval, the add-ons' keys (sorted),
    the trial, the return paths, the checked promotion code and the seats."""

    plan: SubscriptionPlan
    interval: BillingInterval
    overages: list[str]
    trial_days: int | None
    success: str
    cancel: str
    promotion: promotions.Promotion | None
    seats: int

    @property
    def promotion_id(self) -> str | None:
        return self.promotion.id if self.promotion else None

    def is_bought_by(self, pending: CheckoutSession) -> bool:
        """Whether the stored ``pending`` session buys exactly this."""
        return (
            pending.plan_uid,
            pending.interval,
            pending.overages,
            pending.trial_days,
            pending.success_path,
            pending.cancel_path,
            pending.promotion_code_id,
            pending.seats,
        ) == (
            self.plan.uid,
            self.interval,
            self.overages,
            self.trial_days,
            self.success,
            self.cancel,
            self.promotion_id,
            self.seats,
        )


async def _create_under_lease(
    gateway: StripeApi, settings: Settings, principal: Principal, order: _Order
) -> CheckoutSession:
    """The purchase itself; its caller holds the organization's purchase lease, so no other
    purchase of the organization runs between the checks below and the stored session."""
    org = principal.organization_id
    await ensure_no_live_subscription(org)
    # Counted before looking for an open session: a twin that got past the lease (one whose
    # holder died) either counted the same and derives the same key (Stripe answers with one
    # session), or had already stored its session, which the scan below then finds and reuses.
    attempt = await CheckoutSession.find({"organization_id": org}).count()
    reusable = await _reusable_session(gateway, org, order)
    if reusable is not None:
        return reusable
    await ensure_no_live_subscription(org)  # a session paid meanwhile made one
    customer = await get_or_create_customer(gateway, principal)
    chosen = await ensure_plan_prices(gateway, settings, order.plan, order.interval, order.overages)
    params = _checkout_params(
        settings, org, customer.stripe_customer_id, order, with_seats(chosen, order.seats)
    )
    key = _checkout_key(org, order, attempt)
    with promotions.refused_by_stripe(order.promotion):
        session = await gateway.create_checkout_session(params, key=key)
    return await _store_session(session, org, customer.stripe_customer_id, order, attempt)


async def _reusable_session(
    gateway: CheckoutCalls, org: str, order: _Order
) -> CheckoutSession | None:
    """An open session for the very same purchase, recent and with its URL, is handed out
    again (no new Stripe object); any other open session of the organization is expired, so
    two sessions can never both be paid into two subscriptions."""
    fresh_since = utcnow() - timedelta(seconds=REUSE_SECONDS)
    return await expire_open_sessions(
        gateway,
        org,
        keep=lambda pending: (
            order.is_bought_by(pending)
            and bool(pending.url)
            and as_utc(pending.created_at) > fresh_since
        ),
    )


def _checkout_params(
    settings: Settings, org: str, customer_id: str, order: _Order, chosen: list[ChosenPrice]
) -> dict[str, object]:
    """Stripe's ``create checkout session`` parameters for ``order`` at the ``chosen`` prices."""
    metadata = {
        "organization_id": org,
        "plan_uid": order.plan.uid,
        "interval": order.interval.value,
    }
    params: dict[str, object] = {
        "mode": "subscription",
        "customer": customer_id,
        # A metered add-on's price has no quantity: overage is on from the start.
        "line_items": [c.item() for c in chosen],
        "success_url": _url(settings, order.success, with_session=True),
        "cancel_url": _url(settings, order.cancel, with_session=False),
        "client_reference_id": org,
        "metadata": metadata,
        "subscription_data": {"metadata": metadata},
    }
    if order.trial_days:
        # Nothing is charged today: Stripe completes the session with no_payment_required.
        params["subscription_data"] = {
            "metadata": metadata,
            "trial_period_days": order.trial_days,
        }
    if order.promotion is not None:
        params["discounts"] = order.promotion.discounts()
    return params


def _checkout_key(org: str, order: _Order, attempt: int) -> str:
    """The idempotency key of the intent: this purchase after so many sessions (a
    double-submit shares it; a purchase after an expired session does not)."""
    intent: list[object] = [
        order.plan.uid,
        order.interval.value,
        order.overages,
        order.success,
        order.cancel,
        order.trial_days,
        attempt,
        # The seats are part of a per-seat purchase (other plans' keys stay as they were).
        *([order.seats] if order.plan.per_seat else []),
    ]
    if order.promotion_id is not None:
        intent.append(order.promotion_id)  # appended only: keys without a code stay as they were
    return idempotency_key(org, "checkout.create", *intent)


async def _store_session(
    session: StripeCheckoutSession, org: str, customer_id: str, order: _Order, attempt: int
) -> CheckoutSession:
    """Store the session Stripe created; a double-submit that stored the same one first wins."""
    document = CheckoutSession(
        stripe_session_id=session.id,
        organization_id=org,
        stripe_customer_id=customer_id,
        plan_uid=order.plan.uid,
        interval=order.interval,
        overages=order.overages,
        trial_days=order.trial_days,
        promotion_code_id=order.promotion_id,
        seats=order.seats,
        success_path=order.success,
        cancel_path=order.cancel,
        url=session.url,
        attempt=attempt,
    )
    try:
        await document.insert()
    except DuplicateKeyError:
        # A double-submit got the same session from Stripe (same key) and stored it first.
        existing = await CheckoutSession.find_one(
            {"stripe_session_id": session.id, "organization_id": org}
        )
        return present(existing, f"checkout session {session.id} after a duplicate insert")
    log.info(
        "checkout created organization_id=%s session=%s plan=%s", org, session.id, order.plan.uid
    )
    return document


async def expire_open_sessions(
    gateway: CheckoutCalls,
    organization_id: str,
    keep: Callable[[CheckoutSession], bool] = lambda _: False,
) -> CheckoutSession | None:
    """Expire the organization's open Checkout sessions at Stripe, except the first that
    ``keep`` accepts, which is returned. A session completed meanwhile is applied instead
    (its subscription then shows up as live)."""
    kept: CheckoutSession | None = None
    for pending in await CheckoutSession.find(
        {"organization_id": organization_id, "status": CheckoutStatus.PENDING.value}
    ).to_list():
        if kept is None and keep(pending):
            kept = pending
            continue
        await _expire(gateway, pending)
    return kept


async def _expire(gateway: CheckoutCalls, pending: CheckoutSession) -> None:
    """Expire a superseded open session at Stripe; if it was completed meanwhile, apply it."""
    key = idempotency_key(pending.organization_id, "checkout.expire", pending.stripe_session_id)
    observed_at = utcnow()
    try:
        session = await gateway.expire_checkout_session(pending.stripe_session_id, key=key)
    except (PaymentProviderRejected, StripeNotFound):
        # Stripe refuses to expire a session that is no longer open: read what it became.
        session = await gateway.retrieve_checkout_session(pending.stripe_session_id)
    await record_session(pending, session, reference=None, observed_at=observed_at)


#: A session only moves forward: open → complete | expired, unpaid → paid. A late event or a
#: slower read that says otherwise is older news and is not written.
_PAYMENT_RANK = {"unpaid": 0, "paid": 1, "no_payment_required": 1}


def _statuses_before(status: CheckoutStatus) -> list[str]:
    """The stored statuses ``status`` may be written over: an open session becomes completed or
    expired; a completed or expired one stays what it is (only its payment status may rise)."""
    return sorted({CheckoutStatus.PENDING.value, status.value})


def _not_ahead_of(status: CheckoutStatus, payment_status: str) -> dict[str, Any]:
    """A filter matching documents no further along than (``status``, ``payment_status``)."""
    rank = _PAYMENT_RANK.get(payment_status, 0)
    return {
        "status": {"$in": _statuses_before(status)},
        "payment_status": {"$nin": [p for p, r in _PAYMENT_RANK.items() if r > rank]},
    }


def _behind(document: CheckoutSession, status: CheckoutStatus, payment_status: str) -> bool:
    return document.status.value not in _statuses_before(status) or _PAYMENT_RANK.get(
        payment_status, 0
    ) < _PAYMENT_RANK.get(document.payment_status, 0)


async def record_session(
    document: CheckoutSession,
    session: StripeCheckoutSession,
    *,
    source: AuditSource = AuditSource.CHECKOUT_VERIFY,
    reference: str | None,
    observed_at: datetime,
) -> Subscription | None:
    """Write the session's outcome onto our document (targeted) and apply its subscription,
    observed at ``observed_at`` (taken before the Stripe read: what came back is that fresh).
    Never moves the session backwards (completed → open, paid → unpaid)."""
    status = {
        "complete": CheckoutStatus.COMPLETED,
        "expired": CheckoutStatus.EXPIRED,
    }.get(str(session.status), CheckoutStatus.PENDING)
    payment_status = session.payment_status
    subscription: Subscription | None = None
    expanded = session.expanded_subscription
    if status is CheckoutStatus.COMPLETED and expanded is not None:
        subscription = await apply_subscription(
            expanded,
            source=source,
            reference=reference,
            observed_at=observed_at,
        )
    changes: dict[str, Any] = {}
    moved = (document.status, document.payment_status) != (status, payment_status)
    if moved and not _behind(document, status, payment_status):
        changes.update(status=status.value, payment_status=payment_status)
        document.status, document.payment_status = status, payment_status
    sub_id = subscription.stripe_subscription_id if subscription else None
    if sub_id and document.stripe_subscription_id != sub_id:
        changes["stripe_subscription_id"] = document.stripe_subscription_id = sub_id
    if status is CheckoutStatus.COMPLETED and document.completed_at is None:
        changes["completed_at"] = document.completed_at = observed_at
    if changes:
        # Conditional: a concurrent writer that recorded a later state keeps it.
        await CheckoutSession.find_one(
            {"_id": document.id, **_not_ahead_of(status, payment_status)}
        ).update({"$set": changes})
    return subscription


async def _adopt_card(
    gateway: SavedMethodCalls,
    document: CheckoutSession,
    session: StripeCheckoutSession,
    request_id: str | None,
) -> None:
    """The card paid with becomes the customer's default; a Stripe outage does not fail the
    verification (the session's webhook adopts it when Stripe redelivers)."""
    try:
        await adopt_checkout_card(
            gateway, document, session, source=AuditSource.CHECKOUT_VERIFY, reference=request_id
        )
    except (ServiceUnavailable, RateLimited) as exc:
        log.warning(
            "checkout card not adopted yet organization_id=%s error=%s",
            document.organization_id,
            type(exc).__name__,
        )


async def get_checkout_session(principal: Principal, session_id: str) -> CheckoutSession | None:
    return await CheckoutSession.find_one(
        {"stripe_session_id": session_id, "organization_id": principal.organization_id}
    )


async def verify_checkout_session(
    gateway: StripeApi, principal: Principal, session_id: str, *, request_id: str | None
) -> Verification:
    """Re-read the session from Stripe and apply what it says. Another organization's session is
    answered exactly like a missing one. Idempotent."""
    document = await get_checkout_session(principal, session_id)
    if document is None:
        raise NotFound("checkout session", session_id)
    observed_at = utcnow()
    try:
        session = await gateway.retrieve_checkout_session(session_id)
    except StripeNotFound:
        raise NotFound("checkout session", session_id) from None
    if session.client_reference_id != principal.organization_id:
        raise NotFound("checkout session", session_id)
    # paid / no_payment_required: the subscription is live now; unpaid (a delayed method): it
    # exists but is not active yet — the reconciler records whatever Stripe says.
    subscription = await record_session(
        document, session, reference=request_id, observed_at=observed_at
    )
    await _adopt_card(gateway, document, session, request_id)
    if subscription is None and document.stripe_subscription_id:
        subscription = await Subscription.find_one(
            {
                "stripe_subscription_id": document.stripe_subscription_id,
                "organization_id": principal.organization_id,
            }
        )
    return Verification(document, str(session.status), session.payment_status, subscription)
