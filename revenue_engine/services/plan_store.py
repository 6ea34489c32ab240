"""The plan catalog in the store: create, update and archive plans, and read them.

A plan arrives as a ``PlanSpec`` (from the plans file or an admin mutation; see
``services.plan_spec``). ``validate_spec`` lists every problem at once; nothing is written
unless the list is empty. Loading the plans file is ``services.plans_file``.

A price lookup key names one price at Stripe, so it belongs to one plan. Each plan stores the
keys it claims (``SubscriptionPlan.lookup_keys``) under a unique multikey index: of two admins
saving plans with the same key at the same moment, the store lets one win. A read-check before
the write gives the usual error (which plan holds the key) without trying the write, and names
the holder when the index refuses one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from revenue_engine.clock import utcnow
from revenue_engine.documents import (
    AddonKind,
    BillingInterval,
    Overage,
    PlanPrice,
    SubscriptionPlan,
)
from revenue_engine.documents.plan import LOOKUP_KEYS_INDEX, catalog_changed
from revenue_engine.errors import (
    AlreadyExists,
    FieldProblem,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
)
from revenue_engine.invariants import InvariantError
from revenue_engine.money import normalize_currency
from revenue_engine.services import plan_cache
from revenue_engine.services.plan_spec import (
    OverageSpec,
    PlanSpec,
    PriceSpec,
    lookup_keys,
    validate_spec,
)

log = logging.getLogger(__name__)

#: Compare-and-set attempts before a write that keeps losing answers ``ServiceUnavailable``.
CAS_ATTEMPTS = 8


def _price(spec: PriceSpec, default_lookup_key: str, old: PlanPrice | None) -> PlanPrice:
    # ``validate_spec`` has refused a price without interval, amount or a known currency.
    currency = normalize_currency(spec.currency) if spec.currency is not None else None
    if spec.interval is None or spec.amount is None or currency is None:
        raise InvariantError(f"price {spec!r} reached the store unvalidated")
    price = PlanPrice(
        interval=BillingInterval(spec.interval),
        amount=spec.amount,
        currency=currency,
        lookup_key=spec.lookup_key or default_lookup_key,
    )
    # A Stripe price is immutable: keep its id only while amount and currency are unchanged.
    if old and (old.amount, old.currency, old.lookup_key) == (
        price.amount,
        price.currency,
        price.lookup_key,
    ):
        price.stripe_price_id = old.stripe_price_id
    return price


def _stripe_shape(kind: AddonKind | None, feature: str | None, package_size: int | None) -> object:
    """What an add-on's Stripe price is besides amount and currency: a licensed price per unit
    (a pack, or an add-on stored before kinds), or a metered price on the feature's meter,
    counting packages of ``package_size``."""
    return ("metered", feature, package_size) if kind is AddonKind.METERED else ("licensed",)


def _addon(spec: PlanSpec, o: OverageSpec, old: Overage | None) -> Overage:
    kind = AddonKind(o.kind) if o.kind else None
    if old and _stripe_shape(old.kind, old.feature, old.package_size) != _stripe_shape(
        kind, o.feature, o.package_size
    ):
        # Another kind of Stripe price (licensed/metered, meter, package): none of the old
        # price ids stays; the product does.
        old_prices: list[PlanPrice] = []
    else:
        old_prices = old.prices if old else []
    return Overage(
        key=o.key,
        name=o.name,
        unit=o.unit,
        kind=kind,
        feature=o.feature,
        pack_size=o.pack_size,
        package_size=o.package_size,
        prices=[
            _price(
                p,
                f"{spec.uid}_{o.key}_{p.interval}",
                next((q for q in old_prices if q.interval.value == p.interval), None),
            )
            for p in o.prices
        ],
        stripe_product_id=old.stripe_product_id if old else None,
    )


def _apply(spec: PlanSpec, plan: SubscriptionPlan, *, active: bool) -> SubscriptionPlan:
    """Copy a validated spec onto ``plan`` (new or existing), keeping still-valid Stripe ids."""
    plan.name = spec.name.strip()
    plan.description = spec.description
    plan.features = list(spec.features)
    plan.entitlements = dict(spec.entitlements)
    plan.metered = list(spec.metered)
    plan.active = active
    plan.sort_order = spec.sort_order
    plan.per_seat = spec.per_seat
    plan.min_seats = (spec.min_seats or 1) if spec.per_seat else 1
    plan.max_seats = spec.max_seats if spec.per_seat else None
    plan.prices = [
        _price(p, f"{spec.uid}_{p.interval}", plan.price_for(BillingInterval(p.interval or "")))
        for p in spec.prices
    ]
    old_overages = {o.key: o for o in plan.overages}
    plan.overages = [_addon(spec, o, old_overages.get(o.key)) for o in spec.overages]
    plan.lookup_keys = plan.price_lookup_keys()
    plan.updated_at = utcnow()
    return plan


async def save_if_unchanged(plan: SubscriptionPlan, seen_updated_at: datetime) -> bool:
    """Write ``plan`` only if nobody changed it since it was read (compare-and-set on
    ``updated_at``): admins, checkout and catalog webhooks all write plans, and a whole-document
    save could otherwise drop a Stripe id another writer just set."""
    after = max(utcnow(), seen_updated_at + timedelta(milliseconds=1))
    result = await SubscriptionPlan.find_one(
        {"_id": plan.id, "updated_at": seen_updated_at}
    ).update(
        {
            "$set": {
                **plan.model_dump(mode="python", exclude={"id", "revision_id", "created_at"}),
                "updated_at": after,
            }
        }
    )
    if getattr(result, "matched_count", 0):
        plan.updated_at = after
        await catalog_changed()
        return True
    return False


async def get_plan(uid: str) -> SubscriptionPlan | None:
    return await SubscriptionPlan.find_one(SubscriptionPlan.uid == uid)


async def list_plans(*, active_only: bool = True) -> list[SubscriptionPlan]:
    """The catalog as the plan cache holds it (``services.plan_cache``): read-only plans."""
    return await plan_cache.catalog(active_only=active_only)


def plans_claiming(keys: Sequence[str]) -> dict[str, Any]:
    """Plans claiming any of ``keys``. A plan stored before ``lookup_keys`` existed (and not
    backfilled: it shares a key with another plan) is matched by its prices."""
    wanted = {"$in": list(keys)}
    return {
        "$or": [
            {"lookup_keys": wanted},
            {"lookup_keys": {"$exists": False}, "prices.lookup_key": wanted},
            {"lookup_keys": {"$exists": False}, "overages.prices.lookup_key": wanted},
        ]
    }


async def _check_lookup_keys_are_free(spec: PlanSpec) -> None:
    """Refuse lookup keys another plan claims: at Stripe a lookup key names one price per
    account, and syncing would move it away from the other plan."""
    keys = lookup_keys(spec)
    others = await SubscriptionPlan.find(
        {"uid": {"$ne": spec.uid}, **plans_claiming(list(keys))}
    ).to_list()
    problems: list[FieldProblem] = []
    for other in sorted(others, key=lambda plan: plan.uid):
        taken = set(other.lookup_keys)
        problems.extend(
            FieldProblem(f"{at}.lookup_key", f"lookup key {key!r} is used by plan {other.uid!r}")
            for key, at in keys.items()
            if key in taken
        )
    if problems:
        raise ValidationFailed(f"plan {spec.uid!r} is invalid", problems)


def _refused_lookup_key(exc: DuplicateKeyError) -> str | None:
    """The lookup key a duplicate key error of the ``lookup_keys`` index names (``""`` when the
    server does not say which); None when another index refused the write."""
    details = exc.details or {}
    pattern = details.get("keyPattern") or {}
    if "lookup_keys" not in pattern and LOOKUP_KEYS_INDEX not in str(details.get("errmsg", exc)):
        return None
    value = (details.get("keyValue") or {}).get("lookup_keys")
    return value if isinstance(value, str) else ""


async def _after_duplicate(spec: PlanSpec, exc: DuplicateKeyError) -> str | None:
    """A write of ``spec`` was refused by a unique index. Raise the read-check's error when
    another plan now claims one of its keys; otherwise (a concurrent write of the same uid,
    or the other plan let the key go) the caller retries. Returns what ``_refused_lookup_key``
    says, for the error if the retries run out."""
    await _check_lookup_keys_are_free(spec)
    return _refused_lookup_key(exc)


def _lookup_keys_taken(spec: PlanSpec, key: str) -> ValidationFailed:
    at = lookup_keys(spec).get(key)
    if at is None:
        problem = FieldProblem("prices", "a lookup key of the plan is used by another plan")
    else:
        problem = FieldProblem(f"{at}.lookup_key", f"lookup key {key!r} is used by another plan")
    return ValidationFailed(f"plan {spec.uid!r} is invalid", [problem])


async def upsert_plan(
    spec: PlanSpec, *, create_only: bool = False, keep_archived: bool = False
) -> SubscriptionPlan:
    """Create or update a plan by uid. Invalid input raises ``ValidationFailed``, writes nothing.

    With ``keep_archived`` (the plans file) an existing archived plan stays archived: the spec
    may archive a plan (``active: false``) but never brings back one an admin archived.
    """
    problems = validate_spec(spec)
    if problems:
        raise ValidationFailed(f"plan {spec.uid!r} is invalid", problems)
    await _check_lookup_keys_are_free(spec)
    refused: str | None = None
    for _ in range(CAS_ATTEMPTS):
        existing = await get_plan(spec.uid)
        if existing is None:
            try:
                new = SubscriptionPlan(uid=spec.uid, name=spec.name)
                return await _apply(spec, new, active=spec.active).insert()
            except DuplicateKeyError as exc:
                # A unique index decided: another plan took a lookup key first (raises), or
                # a concurrent writer inserted the same uid first.
                refused = await _after_duplicate(spec, exc)
                if create_only and refused is None:
                    raise AlreadyExists("plan", spec.uid) from None
                continue
        if create_only:
            raise AlreadyExists("plan", spec.uid)
        seen = existing.updated_at
        active = spec.active and (existing.active or not keep_archived)
        try:
            if await save_if_unchanged(_apply(spec, existing, active=active), seen):
                return existing
        except DuplicateKeyError as exc:
            refused = await _after_duplicate(spec, exc)
    if refused is not None:
        raise _lookup_keys_taken(spec, refused)
    raise ServiceUnavailable(f"plan {spec.uid!r} kept changing; retry")


async def archive_plan(uid: str) -> SubscriptionPlan:
    """Hide a plan from new purchases; existing subscriptions keep it."""
    plan = await get_plan(uid)
    if plan is None:
        raise NotFound("plan", uid)
    if plan.active:
        # A targeted write: fields other writers own (Stripe ids) are left as they are.
        plan.active = False
        plan.updated_at = utcnow()
        await SubscriptionPlan.find_one({"_id": plan.id}).update(
            {"$set": {"active": False, "updated_at": plan.updated_at}}
        )
        await catalog_changed()
    return plan
