"""Per-seat plans in the catalog: ``upsertPlan`` with ``perSeat``/``minSeats``/``maxSeats``, the
validation of the bounds, and the ``seats`` entitlement following the quantity held."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from revenue_engine.documents import AddonKind, Overage, SubscriptionItem, SubscriptionPlan
from revenue_engine.services import entitlements
from revenue_engine.services.plan_spec import PlanSpec, PriceSpec, validate_spec
from tests.gql import ADMIN, gql

UPSERT = """
mutation($input: PlanInput!) { upsertPlan(input: $input) { __typename
  ... on PlanPayload { plan { uid perSeat minSeats maxSeats entitlements { key limit } } }
  ... on ValidationError { fields { field message } } } }
"""


def team(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "uid": "team",
        "name": "Team",
        "perSeat": True,
        "minSeats": 2,
        "maxSeats": 50,
        "entitlements": [{"key": "sso", "enabled": True}],
        "prices": [{"interval": "MONTH", "amount": 1200, "currency": "usd"}],
    }
    data.update(overrides)
    return data


async def test_an_admin_saves_a_per_seat_plan(client: httpx.AsyncClient) -> None:
    body = await gql(client, UPSERT, {"input": team()}, ADMIN)
    plan = body["data"]["upsertPlan"]["plan"]
    assert (plan["perSeat"], plan["minSeats"], plan["maxSeats"]) == (True, 2, 50)
    stored = await SubscriptionPlan.find_one({"uid": "team"})
    assert stored is not None
    assert (stored.per_seat, stored.min_seats, stored.max_seats) == (True, 2, 50)
    # Saved again without seats, it is sold once again (and shows no bounds).
    again = await gql(
        client, UPSERT, {"input": team(perSeat=False, minSeats=None, maxSeats=None)}, ADMIN
    )
    plan = again["data"]["upsertPlan"]["plan"]
    assert (plan["perSeat"], plan["minSeats"], plan["maxSeats"]) == (False, None, None)


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        (
            {"minSeats": 10, "maxSeats": 5},
            [("maxSeats", "max_seats must be between min_seats and 10000")],
        ),
        ({"minSeats": 0}, [("minSeats", "min_seats must be between 1 and 10000")]),
        ({"maxSeats": 10_001}, [("maxSeats", "max_seats must be between min_seats and 10000")]),
        (
            {"perSeat": False},
            [
                ("minSeats", "min_seats is for per-seat plans (per_seat: true)"),
                ("maxSeats", "max_seats is for per-seat plans (per_seat: true)"),
            ],
        ),
        (
            {"entitlements": [{"key": "seats", "limit": 10}]},
            [
                (
                    "entitlements.0.limit",
                    "a per-seat plan's seats are the number bought: leave `seats` out of its "
                    "entitlements",
                )
            ],
        ),
        (
            {
                "maxSeats": 10_000,
                "prices": [{"interval": "MONTH", "amount": 20_000, "currency": "usd"}],
            },
            [
                (
                    "maxSeats",
                    "10000 seats at 20000 would be more than the largest amount Stripe charges "
                    "in usd (99999999)",
                )
            ],
        ),
    ],
)
async def test_seat_bounds_that_cannot_be_sold_are_refused(
    client: httpx.AsyncClient, overrides: dict[str, Any], fields: list[tuple[str, str]]
) -> None:
    body = await gql(client, UPSERT, {"input": team(**overrides)}, ADMIN)
    result = body["data"]["upsertPlan"]
    assert result["__typename"] == "ValidationError"
    assert [(f["field"], f["message"]) for f in result["fields"]] == fields
    assert await SubscriptionPlan.find_one({"uid": "team"}) is None


def test_a_seat_bound_is_a_whole_number_as_written() -> None:
    with pytest.raises(ValueError, match="min_seats"):
        PlanSpec.model_validate({"uid": "t", "name": "T", "per_seat": True, "min_seats": "3"})
    with pytest.raises(ValueError, match="per_seat"):
        PlanSpec.model_validate({"uid": "t", "name": "T", "per_seat": "yes"})
    spec = PlanSpec(
        uid="t",
        name="T",
        per_seat=True,
        prices=[PriceSpec(interval="month", amount=900, currency="usd")],
    )
    assert validate_spec(spec) == []


def test_the_seats_entitlement_is_the_quantity_held() -> None:
    plan = SubscriptionPlan(
        uid="team",
        name="Team",
        per_seat=True,
        min_seats=2,
        entitlements={"sso": True, "projects": 10},
        overages=[
            Overage(
                key="projects",
                name="Projects",
                unit="10 projects",
                prices=[],
                kind=AddonKind.PACK,
                feature="projects",
                pack_size=10,
            )
        ],
    )
    items = [
        SubscriptionItem(stripe_item_id="si_1", stripe_price_id="price_1", quantity=7),
        SubscriptionItem(
            stripe_item_id="si_2", stripe_price_id="price_2", quantity=2, overage_key="projects"
        ),
    ]
    assert entitlements.limits(plan, items) == {"sso": True, "projects": 30, "seats": 7}
    # A plan not sold per seat keeps its own seats whatever the quantity.
    flat = plan.model_copy(update={"per_seat": False, "entitlements": {"seats": 3}})
    assert entitlements.limits(flat, items)["seats"] == 3
