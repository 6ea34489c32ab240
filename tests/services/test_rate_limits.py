"""The rate-limit counter on both backends: atomic counting, windows, organizations and buckets
kept apart, and correctness that does not wait for the TTL monitor."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from datetime import UTC, datetime

import pytest

from revenue_engine.db import Database, StoreError, connect
from revenue_engine.documents import RateLimitCounter
from revenue_engine.errors import RateLimited
from revenue_engine.schema import build_schema
from revenue_engine.schema.rate_limit import StripeRateLimit
from revenue_engine.services.rate_limits import EXPIRY_MARGIN_SECONDS, hit
from tests.conftest import make_settings

NOW = 1_800_000_030.0  # 30 s into a 60 s window


async def test_the_limit_is_counted_per_organization_and_bucket(database: Database) -> None:
    for expected in (1, 2, 3):
        assert await hit("org_a", "stripe", limit=3, window_seconds=60, now=NOW) == expected
    with pytest.raises(RateLimited) as refused:
        await hit("org_a", "stripe", limit=3, window_seconds=60, now=NOW + 5)
    assert refused.value.code == "RATE_LIMITED"
    assert refused.value.retry_after == 25.0  # until the window ends
    # Other organizations and other buckets are unaffected.
    assert await hit("org_b", "stripe", limit=3, window_seconds=60, now=NOW) == 1
    assert await hit("org_a", "other", limit=3, window_seconds=60, now=NOW) == 1


async def test_the_next_window_starts_from_zero(database: Database) -> None:
    for _ in range(3):
        await hit("org_a", "stripe", limit=3, window_seconds=60, now=NOW)
    with pytest.raises(RateLimited):
        await hit("org_a", "stripe", limit=3, window_seconds=60, now=NOW + 29)
    assert await hit("org_a", "stripe", limit=3, window_seconds=60, now=NOW + 30) == 1


async def test_an_expired_counter_left_in_place_is_not_read(database: Database) -> None:
    # The in-memory store never runs the TTL monitor, and MongoDB runs it about once a minute:
    # a past window's row may still be there. The key holds the window, so it is never read.
    start = int(NOW // 60) * 60
    await RateLimitCounter(
        id=f"org_a:stripe:{start - 60}",
        organization_id="org_a",
        bucket="stripe",
        hits=999,
        expires_at=datetime.fromtimestamp(start, UTC),
    ).insert()
    assert await hit("org_a", "stripe", limit=3, window_seconds=60, now=NOW) == 1


async def test_concurrent_hits_are_counted_exactly(database: Database) -> None:
    async def one() -> bool:
        try:
            await hit("org_a", "stripe", limit=10, window_seconds=60, now=NOW)
        except RateLimited:
            return False
        return True

    results = await asyncio.gather(*(one() for _ in range(25)))
    assert results.count(True) == 10
    [row] = await RateLimitCounter.find_all().to_list()
    assert row.hits == 25


async def test_a_hit_at_a_windows_last_instant_counts_after_the_boundary(
    database: Database,
) -> None:
    # The request chose its window just before the boundary; the store handles it after.
    # A row expiring at the window's end was gone by the read-back (the in-memory store expires
    # on read, by its clock): the limiter crashed on the missing row.
    last_instant = int(time.time()) - 0.001
    assert await hit("org_a", "stripe", limit=3, window_seconds=1, now=last_instant) == 1
    assert await hit("org_a", "stripe", limit=3, window_seconds=1, now=last_instant) == 2
    [row] = await RateLimitCounter.find_all().to_list()
    assert row.hits == 2
    window_end = int(last_instant) + 1
    assert row.expires_at == datetime.fromtimestamp(window_end + EXPIRY_MARGIN_SECONDS, UTC)


async def test_a_row_the_store_keeps_expiring_is_a_store_error_not_a_crash() -> None:
    # Only a store clock far ahead of the engine's does this: the in-memory store stands in
    # for it, as it expires rows on every read (the wire server runs no TTL monitor).
    db = await connect(make_settings(mongodb_database="t_rate_limit_expired"))
    try:
        long_ago = time.time() - 10 * EXPIRY_MARGIN_SECONDS
        with pytest.raises(StoreError):
            await hit("org_a", "stripe", limit=3, window_seconds=1, now=long_ago)
    finally:
        db.close()


async def test_a_one_second_window_hammered_across_boundaries_counts_each_window(
    database: Database,
) -> None:
    """Several seconds of back-to-back hits: no error but ``RateLimited``, and in every window
    exactly the first ``limit`` hits pass. Concurrent callers on the in-memory store only: the
    wire test server (jongodb) increments atomically but may hand two concurrent
    ``findAndModify`` calls the same post-image, which MongoDB never does."""
    limit = 20
    outcomes: dict[int, list[int | None]] = defaultdict(list)  # window -> counts (None: refused)
    deadline = time.perf_counter() + 3.5

    async def caller() -> None:
        for _ in range(100_000):  # bounded, whatever the store's speed
            if time.perf_counter() > deadline:
                return
            now = time.time()
            try:
                count: int | None = await hit(
                    "org_a", "stripe", limit=limit, window_seconds=1, now=now
                )
            except RateLimited as refused:
                retry_after.add(refused.retry_after)
                count = None
            outcomes[int(now)].append(count)

    retry_after: set[float] = set()
    await asyncio.gather(*(caller() for _ in range(3 if database.in_memory else 1)))
    assert retry_after == {1.0}
    assert len(outcomes) >= 3  # boundaries were crossed
    rows = {row.id: row.hits for row in await RateLimitCounter.find_all().to_list()}
    for window, counts in outcomes.items():
        passed = sorted(c for c in counts if c is not None)
        assert passed == list(range(1, min(limit, len(counts)) + 1)), window
        assert counts.count(None) == max(0, len(counts) - limit), window
        assert rows[f"org_a:stripe:{window}"] == len(counts), window
    assert any(counts.count(None) for counts in outcomes.values())  # the limit was reached


async def test_zero_means_no_limit(database: Database) -> None:
    for _ in range(5):
        assert await hit("org_a", "stripe", limit=0, window_seconds=60) == 0
    assert await RateLimitCounter.find_all().count() == 0


async def test_counters_expire_by_ttl_index(database: Database) -> None:
    info = await RateLimitCounter.get_motor_collection().index_information()
    assert info["ttl"]["expireAfterSeconds"] == 0
    assert list(info["ttl"]["key"]) == [("expires_at", 1)]


#: Mutations that never call Stripe, so the Stripe limit does not apply (admin catalog edits,
#: replaying a stored event, and recording usage: reports reach Stripe in the background).
NOT_CALLING_STRIPE = {"upsertPlan", "archivePlan", "replayWebhookEvent", "recordUsage"}


def test_every_mutation_is_limited_or_listed_as_not_calling_stripe() -> None:
    """Generated over the schema: a new mutation fails here until it carries the limit or is
    added to the list above on purpose."""
    schema = build_schema()
    mutation = schema.get_type_by_name("Mutation")
    assert mutation is not None
    unlimited = {
        schema.config.name_converter.get_graphql_name(field)
        for field in mutation.fields  # type: ignore[union-attr]
        if not any(isinstance(e, StripeRateLimit) for e in field.extensions)
    }
    assert unlimited == NOT_CALLING_STRIPE
