"""The plans file: a YAML list of plan specs, read strictly and applied to the store as a whole.

``read_plans_file`` parses and validates without touching the store (the CLI's ``check``);
``load_plans_file`` (at start and the CLI's ``load``) backfills the lookup-key claims of plans
stored before they existed, then writes every plan through ``services.plan_store``.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pymongo.errors import DuplicateKeyError

from revenue_engine.clock import utcnow
from revenue_engine.documents import SubscriptionPlan
from revenue_engine.documents.plan import catalog_changed
from revenue_engine.errors import FieldProblem, ServiceUnavailable, ValidationFailed
from revenue_engine.services import plan_store
from revenue_engine.services.plan_spec import PlanSpec, lookup_keys, validate_spec

log = logging.getLogger(__name__)


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key written twice in one mapping (PyYAML keeps the last
    one silently: a repeated entitlement would quietly replace the first) and a key that is a
    list or a mapping (``? [a, b]: 1``) with the loader's own error rather than a TypeError."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    "found unhashable key",
                    key_node.start_mark,
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_plans_file(path: Path) -> list[PlanSpec]:
    """Parse and validate a YAML plans file; raises ``ValidationFailed`` listing every problem."""
    try:
        raw: Any = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)  # noqa: S506
    except (OSError, yaml.YAMLError) as exc:
        raise ValidationFailed(f"cannot read plans file {path.name}: {exc}") from exc
    entries = raw.get("plans") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        raise ValidationFailed(f"plans file {path.name} must have a top-level 'plans' list")
    specs: list[PlanSpec] = []
    problems: list[FieldProblem] = []
    seen: set[str] = set()
    keys: dict[str, str] = {}  # lookup key -> uid of the plan using it
    for index, entry in enumerate(entries):
        try:
            spec = PlanSpec.model_validate(entry)
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"])
                problems.append(FieldProblem(f"plans.{index}.{where}", err["msg"]))
            continue
        if spec.uid in seen:
            problems.append(FieldProblem(f"plans.{index}.uid", f"duplicate uid {spec.uid!r}"))
        seen.add(spec.uid)
        problems.extend(
            FieldProblem(f"plans.{index}.{p.field}", p.message) for p in validate_spec(spec)
        )
        for key, at in lookup_keys(spec).items():
            user = keys.setdefault(key, spec.uid)
            if user != spec.uid:
                problems.append(
                    FieldProblem(
                        f"plans.{index}.{at}.lookup_key",
                        f"lookup key {key!r} is used by plan {user!r}",
                    )
                )
        specs.append(spec)
    if problems:
        raise ValidationFailed(f"plans file {path.name} is invalid", problems)
    return specs


async def backfill_lookup_keys() -> int:
    """Write ``lookup_keys`` on plans stored before the field existed, so the unique index
    covers them; runs before every load of the plans file (at start). A plan sharing a key with
    a plan that already claims it is left as it is and logged: it keeps working, the read-check
    still sees its keys, and saving it again reports the clash. Returns how many were written."""
    written = 0
    for plan in await SubscriptionPlan.find({"lookup_keys": {"$exists": False}}).to_list():
        try:
            result = await SubscriptionPlan.find_one(
                {"_id": plan.id, "lookup_keys": {"$exists": False}}
            ).update({"$set": {"lookup_keys": plan.price_lookup_keys()}})
            await catalog_changed()
        except DuplicateKeyError:
            log.warning(
                "plan lookup keys clash with another plan uid=%s keys=%s",
                plan.uid,
                ",".join(plan.price_lookup_keys()),
            )
            continue
        written += getattr(result, "modified_count", 0)
    return written


async def _check_file_keys_are_free(specs: Sequence[PlanSpec]) -> None:
    """Refuse a file whose lookup keys a plan outside the file claims (the file cannot move a
    key away from a plan it does not describe). Nothing is written."""
    owner = {
        key: (index, at) for index, s in enumerate(specs) for key, at in lookup_keys(s).items()
    }
    others = await SubscriptionPlan.find(
        {"uid": {"$nin": [s.uid for s in specs]}, **plan_store.plans_claiming(list(owner))}
    ).to_list()
    problems: list[FieldProblem] = []
    for other in sorted(others, key=lambda plan: plan.uid):
        taken = set(other.lookup_keys)
        problems.extend(
            FieldProblem(
                f"plans.{index}.{at}.lookup_key",
                f"lookup key {key!r} is used by plan {other.uid!r}",
            )
            for key, (index, at) in owner.items()
            if key in taken
        )
    if problems:
        problems.sort(key=lambda p: p.field)
        raise ValidationFailed("plans file is invalid", problems)


async def _release_moving_keys(specs: Sequence[PlanSpec]) -> None:
    """First pass of a load: a plan of the file gives up the keys the file gives another plan,
    so the second pass can write the plans in any order. Only the claim is dropped here; the
    prices follow when the plan itself is written."""
    owner = {key: s.uid for s in specs for key in lookup_keys(s)}
    for spec in specs:
        for _ in range(plan_store.CAS_ATTEMPTS):
            plan = await plan_store.get_plan(spec.uid)
            moving = (
                [k for k in plan.lookup_keys if owner.get(k, spec.uid) != spec.uid] if plan else []
            )
            if plan is None or not moving:
                break
            seen = plan.updated_at
            after = max(utcnow(), seen + timedelta(milliseconds=1))
            result = await SubscriptionPlan.find_one({"_id": plan.id, "updated_at": seen}).update(
                {
                    "$set": {
                        "lookup_keys": [k for k in plan.lookup_keys if k not in moving],
                        "updated_at": after,
                    }
                }
            )
            if getattr(result, "matched_count", 0):
                await catalog_changed()
                log.info("plan lookup keys released uid=%s keys=%s", spec.uid, ",".join(moving))
                break
        else:
            raise ServiceUnavailable(f"plan {spec.uid!r} kept changing; retry")


async def load_plans_file(path: Path) -> list[SubscriptionPlan]:
    """Upsert every plan of the file (validated as a whole first). Idempotent. A plan that is
    archived in the database stays archived (``keep_archived``).

    The file is applied as a whole: its lookup keys are unique within it (``read_plans_file``)
    and free of plans outside it, then the plans that give a key to another plan of the file
    release it, then every plan is written. A file that moves a key between two of its plans
    loads whatever their order."""
    specs = read_plans_file(path)
    await backfill_lookup_keys()
    try:
        await _check_file_keys_are_free(specs)
    except ValidationFailed as exc:
        raise ValidationFailed(f"plans file {path.name} is invalid", exc.problems) from None
    await _release_moving_keys(specs)
    plans = [await plan_store.upsert_plan(spec, keep_archived=True) for spec in specs]
    log.info("plans loaded file=%s count=%d", path.name, len(plans))
    return plans
