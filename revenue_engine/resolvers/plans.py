"""Resolvers of the plan catalog."""

from __future__ import annotations

import strawberry

from revenue_engine.context import Info
from revenue_engine.errors import FieldProblem, ValidationFailed
from revenue_engine.schema.plans import (
    EntitlementInput,
    Plan,
    PlanInput,
    PlanPayload,
    PriceInput,
    plan_type,
)
from revenue_engine.services import plan_cache, plan_spec, plan_store


def _entitlement_value(item: EntitlementInput) -> int | bool | None:
    if not item.enabled:
        return False
    if item.unlimited:
        return None
    return item.limit if item.limit is not None else True


def _price_spec(price: PriceInput) -> plan_spec.PriceSpec:
    return plan_spec.PriceSpec(
        interval=price.interval.value,
        amount=price.amount,
        currency=price.currency,
        lookup_key=price.lookup_key,
    )


def spec_from_input(data: PlanInput) -> plan_spec.PlanSpec:
    return plan_spec.PlanSpec(
        uid=str(data.uid),
        name=data.name,
        description=data.description,
        features=list(data.features),
        entitlements={e.key: _entitlement_value(e) for e in data.entitlements},
        metered=list(data.metered),
        active=data.active,
        sort_order=data.sort_order,
        prices=[_price_spec(p) for p in data.prices],
        overages=[
            plan_spec.OverageSpec(
                key=o.key,
                name=o.name,
                unit=o.unit,
                prices=[_price_spec(p) for p in o.prices],
                kind=o.kind.value if o.kind else None,
                feature=o.feature,
                pack_size=o.pack_size,
                package_size=o.package_size,
            )
            for o in data.overages
        ],
        per_seat=data.per_seat,
        min_seats=data.min_seats,
        max_seats=data.max_seats,
    )


async def plans(info: Info, active_only: bool = True) -> list[Plan]:
    return [plan_type(p) for p in await plan_store.list_plans(active_only=active_only)]


async def plan(info: Info, uid: strawberry.ID) -> Plan | None:
    found = await plan_cache.plan(str(uid))
    return plan_type(found) if found else None


def _camel(segment: str) -> str:
    head, *rest = segment.split("_")
    return head + "".join(part.title() for part in rest)


def _input_path(field: str, entitlements: dict[str, int]) -> str:
    """A problem's path as the client wrote the input: ``entitlements.<key>`` becomes
    ``entitlements.<index>.limit`` (or ``.key``), other segments camelCase (``lookupKey``)."""
    head, _, rest = field.partition(".")
    if head == "entitlements" and rest in entitlements:
        part = "limit" if plan_spec.is_valid_key(rest) else "key"
        return f"entitlements.{entitlements[rest]}.{part}"
    return ".".join(_camel(segment) for segment in field.split("."))


def _entitlement_problems(data: PlanInput) -> tuple[dict[str, int], list[FieldProblem]]:
    """The index of each entitlement key, and an error for each key given twice (a later one
    would silently replace the first) or both unlimited and limited."""
    index: dict[str, int] = {}
    problems: list[FieldProblem] = []
    for i, item in enumerate(data.entitlements):
        if item.unlimited and item.limit is not None:
            problems.append(
                FieldProblem(f"entitlements.{i}.limit", "a quota is a limit or unlimited, not both")
            )
        if item.key in index:
            problems.append(
                FieldProblem(f"entitlements.{i}.key", f"duplicate entitlement {item.key!r}")
            )
        else:
            index[item.key] = i
    return index, problems


async def upsert_plan(info: Info, data: PlanInput, create_only: bool = False) -> PlanPayload:
    info.context.require_admin()
    spec = spec_from_input(data)
    index, duplicates = _entitlement_problems(data)
    try:
        if duplicates:
            raise ValidationFailed(f"plan {spec.uid!r} is invalid", plan_spec.validate_spec(spec))
        saved = await plan_store.upsert_plan(spec, create_only=create_only)
    except ValidationFailed as exc:
        problems = [FieldProblem(_input_path(p.field, index), p.message) for p in exc.problems]
        raise ValidationFailed(exc.message, [*duplicates, *problems]) from None
    return PlanPayload(plan=plan_type(saved))


async def archive_plan(info: Info, uid: str) -> PlanPayload:
    info.context.require_admin()
    return PlanPayload(plan=plan_type(await plan_store.archive_plan(uid)))
