"""Stripe Checkout: start a session for a plan, and verify it when the buyer is redirected back.

Verification and the webhook handlers apply the same reconciler, so whichever arrives first does
the work and the other changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pymongo.errors import DuplicateKeyError

from revenue_engine.auth import Principal
from revenue_engine.documents import (
    AuditSource,
    BillingInterval,
    CheckoutSession,
    CheckoutStatus,
    Subscription,
    SubscriptionPlan,
)
from revenue_engine.documents.plan import utcnow
from revenue_engine.errors import FieldProblem, NotFound, ValidationFailed
from revenue_engine.gateway import StripeGateway, StripeNotFound, idempotency_key
from revenue_engine.services.catalog import ensure_plan_prices
from revenue_engine.services.customers import get_or_create_customer
from revenue_engine.services.reconcile import apply_subscription
from revenue_engine.services.subscriptions import ensure_no_live_subscription, purchasable_plan
from revenue_engine.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_SUCCESS_PATH = "/billing/success"
DEFAULT_CANCEL_PATH = "/billing/cancel"


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    plan_uid: str
    interval: BillingInterval
    overages: tuple[str, ...] = ()
    success_path: str | None = None
    cancel_path: str | None = None


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
    if not path.startswith("/") or path.startswith("//") or "\\" in path or len(path) > 512:
        problems.append(FieldProblem(field, "must be a path on this site, starting with '/'"))
    return path


def _url(settings: Settings, path: str, *, with_session: bool) -> str:
    url = settings.public_base_url.rstrip("/") + path
    if with_session:
        url += ("&" if "?" in path else "?") + "session_id={CHECKOUT_SESSION_ID}"
    return url


async def create_checkout_session(
    gateway: StripeGateway, settings: Settings, principal: Principal, request: CheckoutRequest
) -> CheckoutSession:
    """Validate the purchase, then create (or reuse) a Checkout session for it."""
    org = principal.organization_id
    problems: list[FieldProblem] = []
    success = _check_path("successPath", request.success_path, DEFAULT_SUCCESS_PATH, problems)
    cancel = _check_path("cancelPath", request.cancel_path, DEFAULT_CANCEL_PATH, problems)
    plan: SubscriptionPlan = await purchasable_plan(
        request.plan_uid, request.interval, request.overages, problems
    )
    if problems:
        raise ValidationFailed("invalid checkout request", problems)
    await ensure_no_live_subscription(org)
    overages = sorted(set(request.overages))

    # Counted before looking for an open session: a double-submit whose twin stores its session
    # after this count finds that session below, or else counted the same attempt and sends the
    # same idempotency key (counted later, it could miss the session and make a second one).
    attempt = await CheckoutSession.find({"organization_id": org}).count()
    # An open session for the very same purchase is handed out again (no new Stripe object).
    pending = await CheckoutSession.find_one(
        {
            "organization_id": org,
            "status": CheckoutStatus.PENDING.value,
            "plan_uid": plan.uid,
            "interval": request.interval.value,
            "overages": overages,
        }
    )
    if pending is not None and pending.url:
        return pending

    customer = await get_or_create_customer(gateway, principal)
    price_ids = await ensure_plan_prices(gateway, plan, request.interval, overages)
    metadata = {"organization_id": org, "plan_uid": plan.uid, "interval": request.interval.value}
    params: dict[str, object] = {
        "mode": "subscription",
        "customer": customer.stripe_customer_id,
        "line_items": [{"price": pid, "quantity": 1} for pid in price_ids],
        "success_url": _url(settings, success, with_session=True),
        "cancel_url": _url(settings, cancel, with_session=False),
        "client_reference_id": org,
        "metadata": metadata,
        "subscription_data": {"metadata": metadata},
    }
    key = idempotency_key(
        org, "checkout.create", plan.uid, request.interval.value, overages, success, cancel, attempt
    )
    session = await gateway.create_checkout_session(params, key=key)
    document = CheckoutSession(
        stripe_session_id=session["id"],
        organization_id=org,
        stripe_customer_id=customer.stripe_customer_id,
        plan_uid=plan.uid,
        interval=request.interval,
        overages=overages,
        url=session.get("url"),
        attempt=attempt,
    )
    try:
        await document.insert()
    except DuplicateKeyError:
        # A double-submit got the same session from Stripe (same key) and stored it first.
        existing = await CheckoutSession.find_one({"stripe_session_id": session["id"]})
        assert existing is not None
        return existing
    log.info("checkout created organization_id=%s session=%s plan=%s", org, session["id"], plan.uid)
    return document


async def get_checkout_session(principal: Principal, session_id: str) -> CheckoutSession | None:
    return await CheckoutSession.find_one(
        {"stripe_session_id": session_id, "organization_id": principal.organization_id}
    )


async def verify_checkout_session(
    gateway: StripeGateway, principal: Principal, session_id: str, *, request_id: str | None
) -> Verification:
    """Re-read the session from Stripe and apply what it says. Another organization's session is
    answered exactly like a missing one. Idempotent."""
    document = await get_checkout_session(principal, session_id)
    if document is None:
        raise NotFound("checkout session", session_id)
    try:
        session = await gateway.retrieve_checkout_session(session_id)
    except StripeNotFound:
        raise NotFound("checkout session", session_id) from None
    if session.get("client_reference_id") != principal.organization_id:
        raise NotFound("checkout session", session_id)
    observed_at = utcnow()
    status = str(session.get("status"))
    payment_status = str(session.get("payment_status"))
    subscription: Subscription | None = None
    raw_subscription = session.get("subscription")
    if status == "complete" and isinstance(raw_subscription, dict):
        # paid / no_payment_required: the subscription is live now; unpaid (a delayed method):
        # it exists but is not active yet — the reconciler records whatever Stripe says.
        subscription = await apply_subscription(
            raw_subscription,
            source=AuditSource.CHECKOUT_VERIFY,
            reference=request_id,
            observed_at=observed_at,
        )
    new_status = {
        "complete": CheckoutStatus.COMPLETED,
        "expired": CheckoutStatus.EXPIRED,
    }.get(status, CheckoutStatus.PENDING)
    changed = (document.status, document.payment_status) != (new_status, payment_status)
    if (
        subscription is not None
        and document.stripe_subscription_id != subscription.stripe_subscription_id
    ):
        document.stripe_subscription_id = subscription.stripe_subscription_id
        changed = True
    if changed:
        document.status = new_status
        document.payment_status = payment_status
        if new_status is CheckoutStatus.COMPLETED and document.completed_at is None:
            document.completed_at = observed_at
        await document.save()
    if subscription is None and document.stripe_subscription_id:
        subscription = await Subscription.find_one(
            {
                "stripe_subscription_id": document.stripe_subscription_id,
                "organization_id": principal.organization_id,
            }
        )
    return Verification(document, status, payment_status, subscription)
