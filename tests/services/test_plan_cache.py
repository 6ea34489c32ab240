"""The plan catalog from memory: fresh at once after this instance's writes, within the check
interval after another instance's, and never a store read per request in between."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from pymongo.errors import ServerSelectionTimeoutError

from revenue_engine.db import connect
from revenue_engine.documents import SubscriptionPlan
from revenue_engine.documents.plan import CATALOG_VERSIONS, catalog_version
from revenue_engine.services import plan_cache, plan_store
from revenue_engine.services.plan_spec import PlanSpec, PriceSpec
from revenue_engine.settings import Settings
from tests.usage_world import metered_plan, save_plan

pytestmark = pytest.mark.usefixtures("database")


class Clock:
    """``time.monotonic`` as the cache sees it, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(plan_cache.time, "monotonic", c)
    return c


async def other_instance_renames(uid: str, name: str) -> None:
    """What another engine process does: a targeted write and the version increment, without
    this process's in-memory count of its own writes."""
    collection = SubscriptionPlan.get_motor_collection()
    await collection.update_one({"uid": uid}, {"$set": {"name": name}})
    await collection.database[CATALOG_VERSIONS].update_one(
        {"_id": "plans"}, {"$inc": {"version": 1}}, upsert=True
    )


def spec(uid: str, name: str) -> PlanSpec:
    return PlanSpec(
        uid=uid,
        name=name,
        prices=[PriceSpec(interval="month", amount=900, currency="usd")],
    )


async def test_this_instances_writes_are_seen_at_once(clock: Clock) -> None:
    await plan_store.upsert_plan(spec("basic", "Basic"))
    assert (await plan_cache.plan("basic")).name == "Basic"  # type: ignore[union-attr]
    await plan_store.upsert_plan(spec("basic", "Basic II"))
    assert (await plan_cache.plan("basic")).name == "Basic II"  # type: ignore[union-attr]
    await plan_store.archive_plan("basic")
    assert (await plan_cache.plan("basic")).active is False  # type: ignore[union-attr]
    assert await catalog_version() >= 3


async def test_another_instances_write_is_seen_within_the_check_interval(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await save_plan()
    first = await plan_cache.plan("metered")
    assert first is not None
    assert first.name == "Metered"
    await other_instance_renames("metered", "Renamed elsewhere")
    reads: list[Any] = []
    real_find = SubscriptionPlan.get_motor_collection().find

    def counting_find(*args: Any, **kwargs: Any) -> Any:
        reads.append(args)
        return real_find(*args, **kwargs)

    monkeypatch.setattr(SubscriptionPlan.get_motor_collection(), "find", counting_find)
    clock.now += plan_cache.CHECK_INTERVAL / 2
    # Within the interval: served from memory, no read of the plans.
    assert (await plan_cache.plan("metered")) is first
    assert reads == []
    clock.now += plan_cache.CHECK_INTERVAL
    assert (await plan_cache.plan("metered")).name == "Renamed elsewhere"  # type: ignore[union-attr]
    assert len(reads) == 1
    # Rebuilt once: the next reads are from memory again.
    await plan_cache.plan("metered")
    assert len(reads) == 1
    assert plan_cache.CHECK_INTERVAL <= 1.0


async def test_a_plan_the_cache_does_not_hold_yet_is_read_from_the_store(clock: Clock) -> None:
    await save_plan()
    assert await plan_cache.plan("metered") is not None
    # Inserted by another instance a moment ago: the version check has not run yet.
    await SubscriptionPlan.get_motor_collection().insert_one(
        metered_plan("fresh").model_dump(by_alias=True, exclude={"id"})
    )
    fresh = await plan_cache.plan("fresh")
    assert fresh is not None
    assert fresh.uid == "fresh"
    found = await plan_cache.plans(["metered", "fresh", "none"])
    assert sorted(found) == ["fresh", "metered"]
    assert await plan_cache.plan("none") is None
    assert await plan_cache.plan(None) is None


async def test_a_stale_cache_is_rebuilt_after_its_maximum_age(clock: Clock) -> None:
    await save_plan()
    await plan_cache.plan("metered")
    # A write whose version increment never happened (its writer stopped in between).
    await SubscriptionPlan.get_motor_collection().update_one(
        {"uid": "metered"}, {"$set": {"name": "Lost increment"}}
    )
    clock.now += plan_cache.CHECK_INTERVAL * 2
    assert (await plan_cache.plan("metered")).name == "Metered"  # type: ignore[union-attr]
    clock.now += plan_cache.MAX_AGE
    assert (await plan_cache.plan("metered")).name == "Lost increment"  # type: ignore[union-attr]


async def test_each_database_has_its_own_cache(clock: Clock, store_settings: Settings) -> None:
    await save_plan()
    assert await plan_cache.plan("metered") is not None
    other = await connect(store_settings, database_name=f"other_{uuid.uuid4().hex[:10]}")
    try:
        assert await plan_cache.plan("metered") is None
        assert await plan_cache.plans(["metered"]) == {}
    finally:
        other.close()


async def test_an_unreachable_store_serves_the_catalog_as_last_checked(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await save_plan()
    first = await plan_cache.plan("metered")

    async def unreachable() -> int:
        raise ServerSelectionTimeoutError("no server")

    monkeypatch.setattr(plan_cache, "catalog_version", unreachable)
    clock.now += plan_cache.CHECK_INTERVAL * 2
    assert await plan_cache.plan("metered") is first
    # Past its maximum age the cache must be rebuilt, which needs the store.
    clock.now += plan_cache.MAX_AGE
    with pytest.raises(ServerSelectionTimeoutError):
        await plan_cache.plan("metered")


async def test_after_a_failed_check_requests_do_not_wait_for_the_store(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await save_plan()
    first = await plan_cache.plan("metered")
    checks: list[str] = []
    store_back = asyncio.Event()

    async def unreachable() -> int:
        checks.append("refused")
        raise ServerSelectionTimeoutError("no server")

    async def silent() -> int:  # a partition: nothing answers until the test says so
        checks.append("silent")
        await store_back.wait()
        raise ServerSelectionTimeoutError("no server")

    monkeypatch.setattr(plan_cache, "catalog_version", unreachable)
    clock.now += plan_cache.CHECK_INTERVAL * 2
    assert await plan_cache.plan("metered") is first  # this check failed in the request
    monkeypatch.setattr(plan_cache, "catalog_version", silent)
    for _ in range(3):  # the next checks run in the background, one at a time
        clock.now += plan_cache.CHECK_INTERVAL * 2
        assert await asyncio.wait_for(plan_cache.plan("metered"), 0.5) is first
        await asyncio.sleep(0)
    assert checks == ["refused", "silent"]
    store_back.set()
    await asyncio.sleep(0)

    # The store is back, and another instance renamed the plan meanwhile: the next background
    # check sees the new version and rebuilds; the checks are synchronous again after it.
    monkeypatch.setattr(plan_cache, "catalog_version", catalog_version)
    await other_instance_renames("metered", "Renamed")
    clock.now += plan_cache.CHECK_INTERVAL * 2
    assert await plan_cache.plan("metered") is first
    assert plan_cache._checking is not None
    await plan_cache._checking
    renamed = await plan_cache.plan("metered")
    assert renamed is not None
    assert renamed.name == "Renamed"
    await other_instance_renames("metered", "Again")
    clock.now += plan_cache.CHECK_INTERVAL * 2
    again = await plan_cache.plan("metered")  # checked in the request, as before the outage
    assert again is not None
    assert again.name == "Again"
