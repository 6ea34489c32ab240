"""A plan as written (``PlanSpec``: the plans file, or an admin's ``upsertPlan``) and its
validation. Pure: no store, no Stripe.

``validate_spec`` lists every problem at once, each with the path of the field it is about
(``overages.1.pack_size``); nothing is written unless the list is empty.

The rules of metered features and add-ons (see ``documents.plan``):

* ``metered`` lists entitlements that are quantities (an integer, or null for unlimited), each
  once; a switch (true/false) cannot be metered.
* Every add-on says what it does: ``kind: pack`` raises ``feature``'s limit by ``pack_size``
  per unit bought; ``kind: metered`` bills ``feature``'s usage beyond the included quantity per
  package of ``package_size`` units. The feature is a quantity of the plan; a pack on an
  unlimited feature raises nothing, a metered add-on needs a metered, finite feature, and a
  feature has at most one metered add-on (one overage price). Sizes are whole numbers from 1 to
  ``MAX_SIZE``, and each only on its kind. A metered add-on's prices are per package and more
  than 0; like every add-on price they are not a charge on their own, so Stripe's minimum
  charge does not apply to them.
* An add-on without ``kind`` (a plans file from before kinds existed) is refused with what to
  add (``MIGRATION``).

Per-seat plans (``per_seat: true``): the plan's prices are per seat, a purchase buys between
``min_seats`` (default 1) and ``max_seats`` (default no bound but ``MAX_SEATS``) of them, and the
``seats`` entitlement is the number bought — so the plan does not set ``seats`` itself. The
seat bounds are for per-seat plans only; at ``max_seats`` the price must stay within the
largest amount Stripe charges in the currency.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from revenue_engine.documents import AddonKind, BillingInterval
from revenue_engine.errors import FieldProblem
from revenue_engine.money import MAX_AMOUNT, charge_problem, max_amount, normalize_currency
from revenue_engine.services.entitlements import MAX_LIMIT, SEATS

_UID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_KEY = re.compile(r"[a-z0-9][a-z0-9_]{0,39}")
#: Stripe takes lookup keys of up to 200 characters and keeps each one unique per account; the
#: engine allows a conservative set of characters so a key reads the same in every tool.
_LOOKUP_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
#: The largest pack or package size (a billion units).
MAX_SIZE = 10**9
#: The most seats one subscription may hold.
MAX_SEATS = 10_000

#: What an add-on written before kinds existed is told to add.
MIGRATION = (
    "say what this add-on does: `kind: pack` with `feature` and `pack_size` (raises the limit "
    "by pack_size per unit bought) or `kind: metered` with `feature` and `package_size` (bills "
    "usage beyond the included quantity); the feature must be listed in `metered`"
)


class PriceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interval: str | None = None
    amount: int | None = None
    currency: str | None = None
    lookup_key: str | None = None


class OverageSpec(BaseModel):
    """An add-on as written (the YAML key stays ``overages``)."""

    model_config = ConfigDict(extra="forbid")

    key: str
    name: str
    unit: str = "unit"
    prices: list[PriceSpec] = Field(default_factory=list)
    kind: str | None = None
    feature: str | None = None
    # Strict: a size is a whole number as written, never a bool, a float or a string.
    pack_size: int | None = Field(default=None, strict=True)
    package_size: int | None = Field(default=None, strict=True)


class PlanSpec(BaseModel):
    """A plan as written in the plans file or sent by an admin; validated by ``validate_spec``."""

    model_config = ConfigDict(extra="forbid")

    uid: str
    name: str
    description: str = ""
    features: list[str] = Field(default_factory=list)
    entitlements: dict[str, int | bool | None] = Field(default_factory=dict)
    metered: list[str] = Field(default_factory=list)
    active: bool = True
    sort_order: int = 0
    prices: list[PriceSpec] = Field(default_factory=list)
    overages: list[OverageSpec] = Field(default_factory=list)
    # Strict, like the sizes: a switch is a bool and a bound a whole number, as written.
    per_seat: bool = Field(default=False, strict=True)
    min_seats: int | None = Field(default=None, strict=True)
    max_seats: int | None = Field(default=None, strict=True)


def is_valid_key(key: str) -> bool:
    """An entitlement or overage key: 1-40 of a-z, 0-9 and '_', starting with a letter or digit."""
    return _KEY.fullmatch(key) is not None


def _check_prices(
    where: str, prices: Sequence[PriceSpec], problems: list[FieldProblem], *, charged: bool
) -> list[BillingInterval]:
    """Check ``prices``; ``charged``: each is what a checkout charges on its own (a plan's
    price, not an add-on's per-unit price), so a paid one must meet Stripe's minimum charge
    of its currency (0 is a free plan)."""
    seen: list[BillingInterval] = []
    if not prices:
        problems.append(
            FieldProblem(where, "at least one price (interval month or year) is required")
        )
    for index, price in enumerate(prices):
        at = f"{where}.{index}"
        if price.interval is None:
            problems.append(FieldProblem(f"{at}.interval", "interval is required (month or year)"))
        elif price.interval not in BillingInterval.__members__.values():
            problems.append(FieldProblem(f"{at}.interval", "interval must be month or year"))
        else:
            interval = BillingInterval(price.interval)
            if interval in seen:
                problems.append(FieldProblem(f"{at}.interval", f"duplicate interval {interval}"))
            seen.append(interval)
        if price.amount is None:
            problems.append(FieldProblem(f"{at}.amount", "amount is required"))
        elif price.amount < 0:
            problems.append(FieldProblem(f"{at}.amount", "amount must not be negative"))
        elif price.amount > 0 and (code := normalize_currency(price.currency or "")):
            refused = charge_problem(price.amount, code) if charged else None
            if refused is None and price.amount > max_amount(code):
                refused = f"amount must be at most {max_amount(code)} for {code}"
            if refused is not None:
                problems.append(FieldProblem(f"{at}.amount", refused))
        elif price.amount > MAX_AMOUNT:
            problems.append(FieldProblem(f"{at}.amount", f"amount must be at most {MAX_AMOUNT}"))
        if price.currency is None:
            problems.append(FieldProblem(f"{at}.currency", "currency is required"))
        elif normalize_currency(price.currency) is None:
            problems.append(FieldProblem(f"{at}.currency", f"unknown currency {price.currency!r}"))
        if price.lookup_key is not None and not _LOOKUP_KEY.fullmatch(price.lookup_key):
            problems.append(
                FieldProblem(
                    f"{at}.lookup_key",
                    "lookup keys are 1-200 of A-Z, a-z, 0-9, '_', '.', ':' or '-'",
                )
            )
    return seen


def _priced(spec: PlanSpec) -> list[tuple[str, PriceSpec, str]]:
    """Every price of ``spec`` (plan prices, then overage prices) with its field path and the
    lookup key it will carry (the explicit one, else ``uid_interval`` / ``uid_key_interval``)."""
    found = [
        (f"prices.{i}", p, p.lookup_key or f"{spec.uid}_{p.interval}")
        for i, p in enumerate(spec.prices)
    ]
    for index, overage in enumerate(spec.overages):
        found.extend(
            (
                f"overages.{index}.prices.{i}",
                p,
                p.lookup_key or f"{spec.uid}_{overage.key}_{p.interval}",
            )
            for i, p in enumerate(overage.prices)
        )
    return found


def lookup_keys(spec: PlanSpec) -> dict[str, str]:
    """The lookup keys a (valid) spec gives its prices, each with the path of its price."""
    return {key: at for at, _, key in _priced(spec)}


def _check_plan_wide(spec: PlanSpec, problems: list[FieldProblem]) -> None:
    """One currency per plan (a subscription bills in one currency: a checkout mixing two is
    refused by Stripe) and one price per lookup key."""
    currency: str | None = None
    keys: set[str] = set()
    for at, price, key in _priced(spec):
        this = normalize_currency(price.currency) if price.currency else None
        if this is not None:
            if currency is None:
                currency = this
            elif this != currency:
                problems.append(
                    FieldProblem(
                        f"{at}.currency",
                        f"every price of a plan is in one currency: {currency}, not {this}",
                    )
                )
        if key in keys:
            problems.append(
                FieldProblem(f"{at}.lookup_key", f"lookup key {key!r} is used twice in the plan")
            )
        keys.add(key)


def _check_metered(spec: PlanSpec, problems: list[FieldProblem]) -> None:
    seen: set[str] = set()
    for index, feature in enumerate(spec.metered):
        at = f"metered.{index}"
        if feature in seen:
            problems.append(FieldProblem(at, f"{feature!r} is listed twice"))
        seen.add(feature)
        if feature not in spec.entitlements:
            problems.append(
                FieldProblem(at, f"metered feature {feature!r} is not an entitlement of the plan")
            )
        elif isinstance(spec.entitlements[feature], bool):
            problems.append(
                FieldProblem(
                    at,
                    f"{feature!r} is a switch (true or false): only a quantity (an integer, or "
                    "null for unlimited) can be metered",
                )
            )


_SIZE = {AddonKind.PACK: "pack_size", AddonKind.METERED: "package_size"}
_SIZE_MEANS = {
    AddonKind.PACK: "how much one unit bought raises the limit",
    AddonKind.METERED: "how many units beyond the included quantity one billed package holds",
}


def _check_sizes(
    at: str, overage: OverageSpec, kind: AddonKind, problems: list[FieldProblem]
) -> None:
    size_name = _SIZE[kind]
    other = AddonKind.METERED if kind is AddonKind.PACK else AddonKind.PACK
    if getattr(overage, _SIZE[other]) is not None:
        problems.append(
            FieldProblem(
                f"{at}.{_SIZE[other]}",
                f"{_SIZE[other]} is for {other} add-ons; a {kind} add-on has {size_name}",
            )
        )
    size: int | None = getattr(overage, size_name)
    if size is None:
        problems.append(
            FieldProblem(f"{at}.{size_name}", f"{size_name} is required: {_SIZE_MEANS[kind]}")
        )
    elif not 1 <= size <= MAX_SIZE:
        problems.append(
            FieldProblem(f"{at}.{size_name}", f"{size_name} must be between 1 and {MAX_SIZE}")
        )


def _check_feature(
    spec: PlanSpec,
    index: int,
    overage: OverageSpec,
    kind: AddonKind,
    billed: dict[str, int],
    problems: list[FieldProblem],
) -> None:
    """The add-on's feature: a quantity of the plan it can act on. ``billed`` maps each
    feature to the metered add-on that bills it (one per feature)."""
    at = f"overages.{index}.feature"
    feature = overage.feature
    does = "raises" if kind is AddonKind.PACK else "bills"
    if feature is None:
        problems.append(FieldProblem(at, f"feature is required: the entitlement the add-on {does}"))
        return
    if feature not in spec.entitlements:
        problems.append(FieldProblem(at, f"feature {feature!r} is not an entitlement of the plan"))
        return
    value = spec.entitlements[feature]
    if isinstance(value, bool):
        problems.append(
            FieldProblem(
                at,
                f"feature {feature!r} is a switch (true or false); an add-on acts on a quantity",
            )
        )
    elif kind is AddonKind.PACK:
        if value is None:
            problems.append(
                FieldProblem(at, f"feature {feature!r} is unlimited (null): a pack raises nothing")
            )
    elif feature not in spec.metered:
        problems.append(
            FieldProblem(
                at,
                f"feature {feature!r} must be listed in `metered`: only a metered feature's "
                "usage is counted and billed",
            )
        )
    elif value is None:
        problems.append(
            FieldProblem(
                at, f"feature {feature!r} is unlimited (null): no usage is beyond it to bill"
            )
        )
    elif feature in billed:
        problems.append(
            FieldProblem(
                at,
                f"feature {feature!r} already has a metered add-on (overages.{billed[feature]}): "
                "a feature has one overage price",
            )
        )
    else:
        billed[feature] = index


def _check_addon(
    spec: PlanSpec,
    index: int,
    intervals: list[BillingInterval],
    billed: dict[str, int],
    problems: list[FieldProblem],
) -> None:
    overage = spec.overages[index]
    at = f"overages.{index}"
    for interval in _check_prices(f"{at}.prices", overage.prices, problems, charged=False):
        if intervals and interval not in intervals:
            problems.append(FieldProblem(f"{at}.prices", f"the plan is not offered per {interval}"))
    if overage.kind is None:
        problems.append(FieldProblem(f"{at}.kind", MIGRATION))
        return
    if overage.kind not in AddonKind.__members__.values():
        problems.append(FieldProblem(f"{at}.kind", "kind must be pack or metered"))
        return
    kind = AddonKind(overage.kind)
    _check_sizes(at, overage, kind, problems)
    _check_feature(spec, index, overage, kind, billed, problems)
    if kind is AddonKind.METERED:
        problems.extend(
            FieldProblem(
                f"{at}.prices.{i}.amount",
                "a package's price must be more than 0 (free overage is no limit at all: make "
                "the entitlement unlimited, null, instead)",
            )
            for i, price in enumerate(overage.prices)
            if price.amount == 0
        )


def _check_seats(spec: PlanSpec, problems: list[FieldProblem]) -> None:
    if not spec.per_seat:
        problems.extend(
            FieldProblem(name, f"{name} is for per-seat plans (per_seat: true)")
            for name in ("min_seats", "max_seats")
            if getattr(spec, name) is not None
        )
        return
    if SEATS in spec.entitlements:
        problems.append(
            FieldProblem(
                f"entitlements.{SEATS}",
                "a per-seat plan's seats are the number bought: leave `seats` out of its "
                "entitlements",
            )
        )
    least = 1 if spec.min_seats is None else spec.min_seats
    if not 1 <= least <= MAX_SEATS:
        problems.append(FieldProblem("min_seats", f"min_seats must be between 1 and {MAX_SEATS}"))
    most = spec.max_seats
    if most is None:
        return
    if not max(least, 1) <= most <= MAX_SEATS:
        problems.append(
            FieldProblem("max_seats", f"max_seats must be between min_seats and {MAX_SEATS}")
        )
        return
    for price in spec.prices:
        code = normalize_currency(price.currency or "")
        if code and price.amount is not None and price.amount * most > max_amount(code):
            problems.append(
                FieldProblem(
                    "max_seats",
                    f"{most} seats at {price.amount} would be more than the largest amount "
                    f"Stripe charges in {code} ({max_amount(code)})",
                )
            )
            return


def validate_spec(spec: PlanSpec) -> list[FieldProblem]:
    """Every problem with ``spec``; an empty list means it may be written."""
    problems: list[FieldProblem] = []
    if not _UID.fullmatch(spec.uid):
        problems.append(FieldProblem("uid", "uid must be 1-63 of a-z, 0-9, '-' or '_'"))
    if not spec.name.strip():
        problems.append(FieldProblem("name", "name must not be empty"))
    for key, value in spec.entitlements.items():
        if not _KEY.fullmatch(key):
            problems.append(FieldProblem(f"entitlements.{key}", "keys are a-z, 0-9 and '_'"))
        elif not isinstance(value, bool) and isinstance(value, int) and value < 0:
            problems.append(
                FieldProblem(
                    f"entitlements.{key}",
                    "a limit must not be negative (0 grants none; unlimited is null)",
                )
            )
        elif not isinstance(value, bool) and isinstance(value, int) and value > MAX_LIMIT:
            problems.append(
                FieldProblem(
                    f"entitlements.{key}",
                    f"a limit must be at most {MAX_LIMIT} (unlimited is null)",
                )
            )
    _check_metered(spec, problems)
    _check_seats(spec, problems)
    intervals = _check_prices("prices", spec.prices, problems, charged=True)
    keys: set[str] = set()
    billed: dict[str, int] = {}
    for index, overage in enumerate(spec.overages):
        if not _KEY.fullmatch(overage.key):
            problems.append(FieldProblem(f"overages.{index}.key", "keys are a-z, 0-9 and '_'"))
        if overage.key in keys:
            problems.append(
                FieldProblem(f"overages.{index}.key", f"duplicate overage {overage.key!r}")
            )
        keys.add(overage.key)
        _check_addon(spec, index, intervals, billed, problems)
    _check_plan_wide(spec, problems)
    return problems
