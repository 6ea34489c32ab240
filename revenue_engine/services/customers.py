"""Customers: the one Stripe customer of each organization (get-or-create, race-safe)."""

from __future__ import annotations

import logging
import re

from pymongo.errors import DuplicateKeyError

from revenue_engine.auth import Principal
from revenue_engine.clock import utcnow
from revenue_engine.documents import AuditEntry, AuditSource, Customer, Subscription
from revenue_engine.documents.subscription import LIVE_STATUSES
from revenue_engine.errors import (
    AlreadySubscribed,
    FieldProblem,
    NotFound,
    StripeNotFound,
    ValidationFailed,
)
from revenue_engine.gateway import CustomerCalls, idempotency_key
from revenue_engine.invariants import present

log = logging.getLogger(__name__)

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")


def _check(email: str | None, name: str | None) -> None:
    problems: list[FieldProblem] = []
    if email is not None and not _EMAIL.match(email):
        problems.append(FieldProblem("email", "not a valid email address"))
    if name is not None and not 0 < len(name.strip()) <= 256:
        problems.append(FieldProblem("name", "name must be 1-256 characters"))
    if problems:
        raise ValidationFailed("invalid customer", problems)


async def get_customer(principal: Principal) -> Customer | None:
    return await Customer.find_one({"organization_id": principal.organization_id})


async def _generation(organization_id: str) -> int:
    """How many customers this organization deleted: part of the create intent, so a new
    customer after a deletion gets a new idempotency key."""
    return await AuditEntry.find(
        {"organization_id": organization_id, "kind": "customer.deleted"}
    ).count()


async def get_or_create_customer(
    gateway: CustomerCalls,
    principal: Principal,
    *,
    email: str | None = None,
    name: str | None = None,
) -> Customer:
    """The organization's customer, created at Stripe on first use.

    Concurrent callers derive the same idempotency key (one Stripe customer) and race on the
    unique ``organization_id`` index (one document); if our write fails after Stripe succeeded,
    the retry gets the same Stripe customer back and completes the write.
    """
    _check(email, name)
    org = principal.organization_id
    existing = await get_customer(principal)
    if existing is not None:
        return existing
    email = email or principal.email
    generation = await _generation(org)
    params: dict[str, object] = {"metadata": {"organization_id": org}}
    if email:
        params["email"] = email
    if name:
        params["name"] = name
    stripe_customer = await gateway.create_customer(
        params, key=idempotency_key(org, "customer.create", generation)
    )
    customer = Customer(
        organization_id=org,
        stripe_customer_id=stripe_customer.id,
        email=stripe_customer.email,
        name=stripe_customer.name,
    )
    try:
        await customer.insert()
    except DuplicateKeyError:
        winner = await get_customer(principal)
        return present(winner, f"the customer of {org} after a duplicate insert")
    log.info("customer created organization_id=%s customer=%s", org, customer.stripe_customer_id)
    return customer


async def update_customer(
    gateway: CustomerCalls, principal: Principal, *, email: str | None, name: str | None
) -> Customer:
    _check(email, name)
    customer = await get_customer(principal)
    if customer is None:
        raise NotFound("customer", principal.organization_id)
    params = {k: v for k, v in {"email": email, "name": name}.items() if v is not None}
    if not params:
        return customer
    key = idempotency_key(
        principal.organization_id, "customer.update", params, customer.updated_at.isoformat()
    )
    updated = await gateway.update_customer(customer.stripe_customer_id, params, key=key)
    customer.email = updated.email
    customer.name = updated.name
    customer.updated_at = utcnow()
    # Targeted: leaves fields the webhooks own (default payment method) alone, and writes
    # nothing if the customer was deleted meanwhile.
    await Customer.find_one({"_id": customer.id}).update(
        {
            "$set": {
                "email": customer.email,
                "name": customer.name,
                "updated_at": customer.updated_at,
            }
        }
    )
    return customer


async def delete_customer(gateway: CustomerCalls, principal: Principal) -> str:
    """Delete the organization's customer (refused while a subscription is live)."""
    org = principal.organization_id
    customer = await get_customer(principal)
    if customer is None:
        raise NotFound("customer", org)
    live = await Subscription.find_one(
        {"organization_id": org, "status": {"$in": sorted(LIVE_STATUSES)}}
    )
    if live is not None:
        raise AlreadySubscribed(live.stripe_subscription_id, live.status)
    key = idempotency_key(org, "customer.delete", customer.stripe_customer_id)
    try:
        await gateway.delete_customer(customer.stripe_customer_id, key=key)
    except StripeNotFound:
        # Already gone at Stripe (the twin of a double-submit, or deleted in the dashboard):
        # what is left to do is ours.
        log.info("customer already deleted at stripe customer=%s", customer.stripe_customer_id)
    # The audit row first: it moves the next creation to a new idempotency key, so a
    # get-or-create racing this deletion cannot get the deleted customer back from Stripe.
    await AuditEntry(
        organization_id=org,
        kind="customer.deleted",
        source=AuditSource.MUTATION,
        reference=customer.stripe_customer_id,
    ).insert()
    await customer.delete()
    return customer.stripe_customer_id


async def list_customers(limit: int, after: str | None) -> tuple[list[Customer], bool]:
    """Admin listing across organizations, by organization id, cursor = last organization id."""
    query = Customer.find({"organization_id": {"$gt": after}} if after else {})
    rows = await query.sort("organization_id").limit(limit + 1).to_list()
    return rows[:limit], len(rows) > limit
