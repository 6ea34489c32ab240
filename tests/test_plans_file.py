"""Reading the plans file: every problem reported at once, nothing loaded from a bad file."""

from __future__ import annotations

from pathlib import Path

import pytest

from revenue_engine.errors import ValidationFailed
from revenue_engine.services.plans import read_plans_file
from revenue_engine.settings import DEMO_PLANS_FILE


def test_demo_file_is_valid() -> None:
    specs = read_plans_file(DEMO_PLANS_FILE)
    assert [s.uid for s in specs] == ["starter", "pro", "enterprise"]


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
