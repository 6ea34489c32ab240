"""Reading the plans file: every problem reported at once, nothing loaded from a bad file."""

from __future__ import annotations

from pathlib import Path

import pytest

from revenue_engine.db import Database
from revenue_engine.documents import AddonKind, Overage, SubscriptionItem, SubscriptionPlan
from revenue_engine.errors import ValidationFailed
from revenue_engine.services import entitlements
from revenue_engine.services.plans_file import read_plans_file
from revenue_engine.settings import DEMO_PLANS_FILE


def test_demo_file_is_valid() -> None:
    specs = read_plans_file(DEMO_PLANS_FILE)
    assert [s.uid for s in specs] == ["starter", "pro", "business", "enterprise"]


def test_every_problem_is_listed(tmp_path: Path) -> None:
    path = tmp_path / "plans.yaml"
    path.write_text(
        """
plans:
  - uid: a
    name: A
    prices: [{interval: week, amount: 100, currency: usd}]
  - uid: a
    name: A again
    prices: [{interval: month, amount: -5, currency: usd}]
  - uid: b
    name: B
    surprise: true
    prices: [{interval: month, amount: 100, currency: usd}]
""",
        encoding="utf-8",
    )
    with pytest.raises(ValidationFailed) as caught:
        read_plans_file(path)
    fields = {p.field for p in caught.value.problems}
    assert fields == {
        "plans.0.prices.0.interval",
        "plans.1.uid",
        "plans.1.prices.0.amount",
        "plans.2.surprise",
    }


@pytest.mark.parametrize("text", ["plans: 3", "- just a list", "plans: [", ""])
def test_malformed_files_are_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "plans.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValidationFailed):
        read_plans_file(path)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed, match="cannot read plans file"):
        read_plans_file(tmp_path / "nope.yaml")


def test_plan_wide_rules_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "plans.yaml"
    path.write_text(
        """
plans:
  - uid: mixed
    name: Mixed currencies
    entitlements: {seats: -5, sso: false}
    prices:
      - {interval: month, amount: 100, currency: usd}
      - {interval: year, amount: 1000, currency: eur}
    overages:
      - key: calls
        name: Calls
        kind: pack
        feature: seats
        pack_size: 1
        prices: [{interval: month, amount: 1, currency: gbp}]
  - uid: keys
    name: Lookup keys
    prices:
      - {interval: month, amount: 100, currency: usd, lookup_key: "  "}
      - {interval: year, amount: 1000, currency: usd, lookup_key: "a/b"}
  - uid: twice
    name: One key twice
    prices:
      - {interval: month, amount: 100, currency: usd, lookup_key: same}
      - {interval: year, amount: 1000, currency: usd, lookup_key: same}
  - uid: thief
    name: Takes another plan's key
    prices: [{interval: month, amount: 100, currency: usd, lookup_key: mixed_year}]
""",
        encoding="utf-8",
    )
    with pytest.raises(ValidationFailed) as caught:
        read_plans_file(path)
    fields = {p.field for p in caught.value.problems}
    assert fields == {
        "plans.0.entitlements.seats",
        "plans.0.prices.1.currency",
        "plans.0.overages.0.prices.0.currency",
        "plans.1.prices.0.lookup_key",
        "plans.1.prices.1.lookup_key",
        "plans.2.prices.1.lookup_key",
        "plans.3.prices.0.lookup_key",
    }


def test_a_key_written_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plans.yaml"
    path.write_text(
        """
plans:
  - uid: a
    name: A
    entitlements: {seats: 3, seats: 30}
    prices: [{interval: month, amount: 100, currency: usd}]
""",
        encoding="utf-8",
    )
    with pytest.raises(ValidationFailed, match="duplicate key 'seats'"):
        read_plans_file(path)


@pytest.mark.parametrize(
    "key", ["? [a, b]", "? {a: 1}", "[a]", "{a: 1}"], ids=["list", "map", "flow-list", "flow-map"]
)
@pytest.mark.parametrize("where", ["top", "entitlements"])
def test_a_list_or_mapping_as_a_key_is_a_clear_problem(
    tmp_path: Path, key: str, where: str
) -> None:
    path = tmp_path / "plans.yaml"
    if where == "top":
        text = f"plans: []\n{key}: 1\n"
    else:
        text = f"""
plans:
  - uid: a
    name: A
    entitlements:
      {key}: 1
    prices: [{{interval: month, amount: 100, currency: usd}}]
"""
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValidationFailed, match="found unhashable key"):
        read_plans_file(path)


def test_demo_file_says_what_every_add_on_does() -> None:
    specs = {s.uid: s for s in read_plans_file(DEMO_PLANS_FILE)}
    assert specs["pro"].metered == ["api_calls", "bandwidth_gb"]
    addons = {(s.uid, o.key): o for s in specs.values() for o in s.overages}
    calls = addons[("pro", "api_calls")]
    assert (calls.kind, calls.feature, calls.package_size) == ("metered", "api_calls", 10000)
    # A package costs the same whatever the interval (a yearly period includes 12 months').
    assert [(p.interval, p.amount) for p in calls.prices] == [("month", 1500), ("year", 1500)]
    bandwidth = addons[("pro", "bandwidth")]
    assert (bandwidth.kind, bandwidth.feature, bandwidth.pack_size) == ("pack", "bandwidth_gb", 100)
    assert addons[("starter", "api_calls")].package_size == 1000
    assert addons[("enterprise", "bandwidth")].pack_size == 1000
    assert specs["enterprise"].entitlements["api_calls"] is None


def plan_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "plans.yaml"
    path.write_text(
        f"""
plans:
  - uid: p
    name: P
    entitlements: {{seats: 5, api_calls: 1000, storage: null, sso: true}}
    prices: [{{interval: month, amount: 1000, currency: usd}}]
{body}
""",
        encoding="utf-8",
    )
    return path


def problems_of(path: Path) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        read_plans_file(path)
    return {p.field: p.message for p in caught.value.problems}


def test_an_old_add_on_without_kind_is_told_what_to_add(tmp_path: Path) -> None:
    path = plan_file(
        tmp_path,
        """    overages:
      - key: api_calls
        name: Extra API calls
        unit: 1,000 calls
        prices: [{interval: month, amount: 200, currency: usd}]
""",
    )
    assert problems_of(path) == {
        "plans.0.overages.0.kind": (
            "say what this add-on does: `kind: pack` with `feature` and `pack_size` (raises the "
            "limit by pack_size per unit bought) or `kind: metered` with `feature` and "
            "`package_size` (bills usage beyond the included quantity); the feature must be "
            "listed in `metered`"
        )
    }


def test_every_add_on_problem_is_listed_at_once(tmp_path: Path) -> None:
    path = plan_file(
        tmp_path,
        """    metered: [api_calls, sso, nothing, api_calls, storage]
    overages:
      - {key: a, name: A, kind: bundle, prices: [{interval: month, amount: 1, currency: usd}]}
      - {key: b, name: B, kind: pack, prices: [{interval: month, amount: 1, currency: usd}]}
      - key: c
        name: C
        kind: pack
        feature: sso
        pack_size: 0
        package_size: 10
        prices: [{interval: month, amount: 1, currency: usd}]
      - key: d
        name: D
        kind: pack
        feature: storage
        pack_size: 1000000001
        prices: [{interval: month, amount: 1, currency: usd}]
      - key: e
        name: E
        kind: metered
        feature: seats
        pack_size: 1
        prices: [{interval: month, amount: 0, currency: usd}]
      - key: f
        name: F
        kind: metered
        feature: api_calls
        package_size: 100
        prices: [{interval: month, amount: 1, currency: usd}]
      - key: g
        name: G
        kind: metered
        feature: api_calls
        package_size: 100
        prices: [{interval: month, amount: 1, currency: usd}]
      - key: h
        name: H
        kind: metered
        feature: storage
        package_size: 100
        prices: [{interval: month, amount: 1, currency: usd}]
      - key: i
        name: I
        kind: pack
        feature: ghost
        pack_size: 1
        prices: [{interval: month, amount: 1, currency: usd}]
""",
    )
    problems = problems_of(path)
    expected = {
        "metered.1": "'sso' is a switch (true or false): only a quantity",
        "metered.2": "metered feature 'nothing' is not an entitlement of the plan",
        "metered.3": "'api_calls' is listed twice",
        "overages.0.kind": "kind must be pack or metered",
        "overages.1.pack_size": "pack_size is required: how much one unit bought raises",
        "overages.1.feature": "feature is required: the entitlement the add-on raises",
        "overages.2.pack_size": "pack_size must be between 1 and 1000000000",
        "overages.2.package_size": "package_size is for metered add-ons; a pack add-on has",
        "overages.2.feature": "feature 'sso' is a switch (true or false)",
        "overages.3.pack_size": "pack_size must be between 1 and 1000000000",
        "overages.3.feature": "feature 'storage' is unlimited (null): a pack raises nothing",
        "overages.4.package_size": "package_size is required: how many units beyond",
        "overages.4.pack_size": "pack_size is for pack add-ons; a metered add-on has",
        "overages.4.feature": "feature 'seats' must be listed in `metered`",
        "overages.4.prices.0.amount": "a package's price must be more than 0",
        "overages.6.feature": "feature 'api_calls' already has a metered add-on (overages.5)",
        "overages.7.feature": "feature 'storage' is unlimited (null): no usage is beyond it",
        "overages.8.feature": "feature 'ghost' is not an entitlement of the plan",
    }
    assert set(problems) == {f"plans.0.{field}" for field in expected}
    for field, message in expected.items():
        assert problems[f"plans.0.{field}"].startswith(message), field


@pytest.mark.parametrize("size", ["true", "1.5", '"100"', "-3"])
def test_a_size_is_a_whole_positive_number_as_written(tmp_path: Path, size: str) -> None:
    path = plan_file(
        tmp_path,
        f"""    overages:
      - {{key: s, name: S, kind: pack, feature: seats, pack_size: {size},
         prices: [{{interval: month, amount: 1, currency: usd}}]}}
""",
    )
    assert list(problems_of(path)) == ["plans.0.overages.0.pack_size"]


def test_a_valid_pack_and_metered_add_on_load(tmp_path: Path) -> None:
    path = plan_file(
        tmp_path,
        """    metered: [api_calls, storage]
    overages:
      - {key: seats, name: Seats, kind: pack, feature: seats, pack_size: 5,
         prices: [{interval: month, amount: 0, currency: usd}]}
      - {key: calls, name: Calls, kind: metered, feature: api_calls, package_size: 1000,
         prices: [{interval: month, amount: 1, currency: usd}]}
""",
    )
    [spec] = read_plans_file(path)
    assert spec.metered == ["api_calls", "storage"]
    assert [(o.kind, o.feature) for o in spec.overages] == [
        ("pack", "seats"),
        ("metered", "api_calls"),
    ]


def test_a_limit_past_graphql_int_is_refused(tmp_path: Path) -> None:
    """GraphQL's Int stops at 2**31 - 1: a larger limit would fail every read of the plan."""
    path = tmp_path / "plans.yaml"
    path.write_text(
        """
plans:
  - uid: p
    name: P
    entitlements: {api_calls: 2147483648, seats: 2147483647}
    prices: [{interval: month, amount: 1000, currency: usd}]
""",
        encoding="utf-8",
    )
    assert problems_of(path) == {
        "plans.0.entitlements.api_calls": "a limit must be at most 2147483647 (unlimited is null)"
    }


async def test_packs_raise_a_limit_no_further_than_graphql_int(database: Database) -> None:
    plan = SubscriptionPlan(
        uid="p",
        name="P",
        entitlements={"seats": 2_000_000_000},
        overages=[
            Overage(
                key="seats",
                name="Seats",
                unit="1e9 seats",
                kind=AddonKind.PACK,
                feature="seats",
                pack_size=1_000_000_000,
                prices=[],
            )
        ],
    )
    item = SubscriptionItem(
        stripe_item_id="si_1", stripe_price_id="price_1", overage_key="seats", quantity=3
    )
    assert entitlements.limits(plan, [item])["seats"] == 2**31 - 1
