"""``revenue-engine events replay``: in-process on both backends, and as a user runs it."""

from __future__ import annotations

import dataclasses
import io
import os
import subprocess
import sys
import uuid

import pytest

from revenue_engine.cli import build_parser, main, replay_events
from revenue_engine.db import Database, connect
from revenue_engine.documents import WebhookEvent, WebhookEventStatus
from revenue_engine.gateway.models.catalog import StripeEventListing, parse_listed_event
from revenue_engine.services import plan_spec, plan_store
from revenue_engine.settings import Settings
from revenue_engine.webhooks import dispatch
from revenue_engine.webhooks.backfill import backfill
from revenue_engine.webhooks.context import HandlerContext
from revenue_engine.webhooks.event import StripeEvent, parse_event
from tests.conftest import make_settings
from tests.stripe_events import body_of, event, stripe_object
from tests.wire import WireServer


class Flaky:
    def __init__(self) -> None:
        self.broken = True

    async def __call__(self, event: StripeEvent, context: HandlerContext) -> None:
        if self.broken:
            raise RuntimeError("not yet")


async def deliver(settings: Settings, type: str, obj: dict[str, object]) -> str:
    text = body_of(event(type, obj)).decode()
    parsed = parse_event(text)
    await dispatch.deliver(parsed, text, HandlerContext.from_settings(settings))
    return parsed.id


async def test_replay_failed_prints_progress_and_resumes(
    database: Database, store_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    flaky = Flaky()
    monkeypatch.setitem(dispatch.HANDLERS, "product.updated", flaky)
    ids = [
        await deliver(store_settings, "product.updated", stripe_object("product")) for _ in range(3)
    ]
    assert await WebhookEvent.find({"status": "failed"}).count() == 3

    out = io.StringIO()
    assert await replay_events(store_settings, event_id=None, out=out) == 1  # still broken
    assert out.getvalue().splitlines()[-1].startswith("3/3 replayed (")
    assert out.getvalue().splitlines()[-1].endswith("failed=3")

    flaky.broken = False
    out = io.StringIO()
    assert await replay_events(store_settings, event_id=None, out=out) == 0
    lines = out.getvalue().splitlines()
    assert [line.split(" ")[0] for line in lines] == ["1/3", "2/3", "3/3"]
    assert lines[-1].endswith("processed=3")
    for event_id in ids:
        row = await WebhookEvent.find_one({"event_id": event_id})
        assert row is not None
        assert row.status is WebhookEventStatus.PROCESSED

    out = io.StringIO()
    assert await replay_events(store_settings, event_id=None, out=out) == 0
    assert out.getvalue() == "nothing to replay: no failed events\n"


async def test_replay_one_by_id(
    database: Database, store_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    event_id = await deliver(store_settings, "balance.available", {"object": "balance"})
    out = io.StringIO()
    assert await replay_events(store_settings, event_id=event_id, out=out) == 0
    assert out.getvalue().endswith("ignored=1\n")
    assert await replay_events(store_settings, event_id="evt_unknown", out=io.StringIO()) == 1
    assert "webhook event 'evt_unknown' was not found" in capsys.readouterr().err


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "MONGODB_", "AUTH_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "revenue_engine", "events", "replay", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("args", [[], ["--failed", "--id", "evt_1"]])
def test_the_command_needs_failed_or_id(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["events", "replay", *args])
    assert exited.value.code == 2
    assert "--failed" in capsys.readouterr().err


def test_the_command_on_an_empty_store() -> None:
    empty = run("--failed")
    assert empty.returncode == 0, empty.stderr
    assert empty.stdout == "nothing to replay: no failed events\n"
    missing = run("--id", "evt_missing")
    assert missing.returncode == 1
    assert "not found" in missing.stderr


@pytest.mark.wire
async def test_the_command_replays_a_fixed_catalog_event_on_a_real_database(
    wire_server: WireServer | None,
) -> None:
    if wire_server is None:
        pytest.skip("no MongoDB wire server: set MONGODB_URI or run `npm install` (see README)")
    name = f"t_{uuid.uuid4().hex[:12]}"
    settings = make_settings(mongodb_uri=wire_server.uri, mongodb_database=name)
    database = await connect(settings)
    try:
        spec = plan_spec.PlanSpec(
            uid="solo",
            name="Solo",
            prices=[plan_spec.PriceSpec(interval="month", amount=900, currency="usd")],
        )
        await plan_store.upsert_plan(spec)
        price = stripe_object(
            "price",
            id="price_solo",
            lookup_key="solo_month",
            unit_amount=1200,
            transform_quantity=None,  # the example's sample value; a plain price has none
        )
        event_id = await deliver(settings, "price.created", price)
        row = await WebhookEvent.find_one({"event_id": event_id})
        assert row is not None
        assert row.status is WebhookEventStatus.FAILED  # 1200 in Stripe, 900 in the catalog
        spec.prices[0].amount = 1200  # the catalog is corrected
        await plan_store.upsert_plan(spec)

        result = run("--failed", env={"MONGODB_URI": wire_server.uri, "MONGODB_DATABASE": name})
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("1/1 replayed (")
        assert result.stdout.rstrip().endswith("processed=1")
        solo = await plan_store.get_plan("solo")
        assert solo is not None
        assert solo.prices[0].stripe_price_id == "price_solo"
    finally:
        database.close()


@pytest.mark.parametrize("since", ["yesterday", "3w", ""])
def test_backfill_refuses_an_unreadable_since_with_a_usage_error(
    since: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["events", "backfill", "--since", since])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ")
    assert f"argument --since: not a time: {since!r}" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1700000000", 1700000000), ("2026-11-01", 1793491200), ("2026-11-01T00:00:00Z", 1793491200)],
)
def test_backfill_reads_since(value: str, expected: int) -> None:
    args = build_parser().parse_args(["events", "backfill", "--since", value])
    assert args.since == expected


class ListingGateway:
    """Stripe's Events API for ``backfill``: one page per call, ``per_page`` events each."""

    def __init__(self, events: list[dict[str, object]], per_page: int = 7) -> None:
        self.events = events
        self.per_page = per_page

    async def list_events(
        self, *, starting_after: str | None = None, **_: object
    ) -> tuple[list[StripeEventListing], bool]:
        ids = [e["id"] for e in self.events]
        start = ids.index(starting_after) + 1 if starting_after else 0
        page = self.events[start : start + self.per_page]
        return [parse_listed_event(e) for e in page], start + self.per_page < len(self.events)


def balance_events(count: int) -> list[dict[str, object]]:
    """``count`` events of a type no handler takes (each ends ``ignored``), a second apart."""
    return [
        event("balance.available", {"object": "balance"}, created=1_700_000_000 + i)
        for i in range(count)
    ]


def listing_context(settings: Settings, listed: list[dict[str, object]]) -> HandlerContext:
    """A handler context whose Stripe lists ``listed`` as its events."""
    context = HandlerContext.from_settings(settings)
    return dataclasses.replace(context, gateway=ListingGateway(listed))  # type: ignore[arg-type]


async def test_backfill_reports_done_of_total_every_ten_events(
    database: Database, store_settings: Settings
) -> None:
    context = listing_context(store_settings, balance_events(25))
    lines: list[str] = []
    progress = await backfill(context, since=0, report=lambda p: lines.append(p.line()))
    assert (progress.done, progress.total) == (25, 25)
    assert [line.split(" ")[0] for line in lines] == ["10/25", "20/25", "25/25"]
    assert lines[-1].endswith("ignored=25")


async def test_backfill_skips_a_malformed_listing_and_goes_on(
    database: Database, store_settings: Settings
) -> None:
    good = balance_events(3)
    bad = event("balance.available", {"object": "balance"}, created=1_700_000_000)
    bad["created"] = 10**30  # out of the envelope's range: the route would answer 400
    odd = event("balance.available", {"object": "balance"}, created=1_700_000_000)
    odd["created"] = "yesterday"
    context = listing_context(store_settings, [*good, bad, odd])
    progress = await backfill(context, since=0)
    assert (progress.done, progress.total) == (5, 5)
    assert progress.outcomes == {"ignored": 3, "malformed": 2}
    assert await WebhookEvent.find({"event_id": {"$in": [bad["id"], odd["id"]]}}).count() == 0
