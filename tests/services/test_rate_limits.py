"""The rate-limit counter on both backends: atomic counting, windows, organizations and buckets
kept apart, and correctness that does not wait for the TTL monitor."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from revenue_engine.db import Database
from revenue_engine.documents import RateLimitCounter
from revenue_engine.errors import RateLimited
from revenue_engine.schema import build_schema
from revenue_engine.schema.rate_limit import StripeRateLimit
from revenue_engine.services.rate_limits import hit

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


async def test_zero_means_no_limit(database: Database) -> None:
    for _ in range(5):
        assert await hit("org_a", "stripe", limit=0, window_seconds=60) == 0
    assert await RateLimitCounter.find_all().count() == 0


async def test_counters_expire_by_ttl_index(database: Database) -> None:
    info = await RateLimitCounter.get_motor_collection().index_information()
    assert info["ttl"]["expireAfterSeconds"] == 0
    assert list(info["ttl"]["key"]) == [("expires_at", 1)]


#: Mutations that never call Stripe, so the Stripe limit does not apply (admin catalog edits
#: and replaying a stored event).
NOT_CALLING_STRIPE = {"upsertPlan", "archivePlan", "replayWebhookEvent"}


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
