"""The organization-wide lease on both backends: one holder at a time, waiters run after it,
a waiter gives up with ``Busy``, and a lease whose holder died is taken over once expired."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from revenue_engine.clock import utcnow
from revenue_engine.db import Database
from revenue_engine.documents import Lease
from revenue_engine.errors import Busy, RateLimited
from revenue_engine.services import leases


async def test_holders_never_overlap_and_the_lease_is_released(database: Database) -> None:
    inside = 0
    most = 0
    order: list[int] = []

    async def work(n: int) -> None:
        nonlocal inside, most
        async with leases.hold("org_a:purchase", wait_seconds=30):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.02)
            order.append(n)
            inside -= 1

    await asyncio.gather(*(work(n) for n in range(5)))
    assert most == 1
    assert sorted(order) == [0, 1, 2, 3, 4]
    assert await Lease.find_all().count() == 0


async def test_other_keys_do_not_wait(database: Database) -> None:
    async with leases.hold("org_a:purchase"), leases.hold("org_b:purchase", wait_seconds=0):
        assert await Lease.find_all().count() == 2


async def test_a_waiter_gives_up_with_busy_and_the_holder_keeps_its_lease(
    database: Database,
) -> None:
    async with leases.hold("org_a:purchase"):
        with pytest.raises(Busy) as refused:
            async with leases.hold("org_a:purchase", wait_seconds=0.1):
                pytest.fail("entered a held lease")
        [row] = await Lease.find_all().to_list()
    assert refused.value.code == "BUSY"
    assert isinstance(refused.value, RateLimited)  # typed as a retryable error
    assert refused.value.retry_after == 1.0
    assert row.id == "org_a:purchase"
    assert await Lease.find_all().count() == 0


async def test_an_expired_lease_of_a_dead_holder_is_taken_over(database: Database) -> None:
    await Lease(
        id="org_a:purchase", owner="dead", expires_at=utcnow() - timedelta(seconds=1)
    ).insert()
    async with leases.hold("org_a:purchase", wait_seconds=0):
        [row] = await Lease.find_all().to_list()
        assert row.owner != "dead"
    assert await Lease.find_all().count() == 0


async def test_a_live_lease_of_another_holder_is_not_taken_over(database: Database) -> None:
    await Lease(
        id="org_a:purchase", owner="alive", expires_at=utcnow() + timedelta(seconds=60)
    ).insert()
    with pytest.raises(Busy):
        async with leases.hold("org_a:purchase", wait_seconds=0.05):
            pytest.fail("entered a held lease")
    # The failed waiter deletes nothing of the holder's.
    [row] = await Lease.find_all().to_list()
    assert row.owner == "alive"


async def test_a_failing_body_still_releases(database: Database) -> None:
    with pytest.raises(RuntimeError):
        async with leases.hold("org_a:purchase"):
            raise RuntimeError("stripe said no")
    assert await Lease.find_all().count() == 0


async def test_a_slow_holder_keeps_its_lease_past_the_lease_time(database: Database) -> None:
    """The holder renews its claim while the body runs: a waiter never takes over a lease
    whose holder is alive, however slow (e.g. Stripe retrying)."""
    entered = asyncio.Event()

    async def slow_holder() -> None:
        async with leases.hold("org_a:purchase", lease_seconds=0.3):
            entered.set()
            await asyncio.sleep(1.0)  # three lease times

    holder = asyncio.create_task(slow_holder())
    await entered.wait()
    await asyncio.sleep(0.6)  # the unrenewed lease would have expired by now
    with pytest.raises(Busy):
        async with leases.hold("org_a:purchase", lease_seconds=0.3, wait_seconds=0.2):
            pytest.fail("took over the lease of a live holder")
    await holder
    assert await Lease.find_all().count() == 0


async def test_a_release_the_store_refused_is_retried(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pymongo.errors import AutoReconnect

    real_release = leases._release
    refusals = 0

    async def flaky_release(key: str, owner: str) -> None:
        nonlocal refusals
        if refusals == 0:  # the store is down when the body ends
            refusals += 1
            raise AutoReconnect("connection lost")
        await real_release(key, owner)

    monkeypatch.setattr(leases, "_release", flaky_release)
    async with leases.hold("org_a:purchase"):
        pass
    assert await Lease.find_all().count() == 1  # not released yet...
    await asyncio.gather(*leases._PENDING_RELEASES)
    assert await Lease.find_all().count() == 0  # ...released once the store answered
    assert refusals == 1
