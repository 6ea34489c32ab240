"""Recovery against Stripe (the emulator): backfill of undelivered events and reconciliation
with a drift report, both idempotent so a run can be repeated or resumed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import stripe
from stripe_emulator import Emulator
from stripe_emulator.server import EmulatorServer

from revenue_engine.documents import AuditEntry, Subscription, WebhookEvent
from revenue_engine.gateway import StripeGateway
from revenue_engine.services.drift import reconcile_subscriptions
from revenue_engine.settings import Settings
from revenue_engine.webhooks.backfill import backfill
from revenue_engine.webhooks.context import HandlerContext
from tests.e2e.conftest import engine_settings, pay
from tests.e2e.ops import (
    CHECKOUT,
    CREATE_CUSTOMER,
    CREATE_SUBSCRIPTION,
    STATUS_QUERY,
    call,
    only,
    plan_price_at_stripe,
)
from tests.e2e.test_subscriptions import customer_with_card, subscribe
from tests.stripe_events import SECRET
from tests.wire import WireServer


@pytest.fixture
async def gateway(emulator_server: EmulatorServer) -> Any:
    gw = StripeGateway(
        "sk_test_x",
        api_version="2026-10-28.endive",
        timeout=5,
        max_network_retries=1,
        api_base=emulator_server.url,
    )
    yield gw
    await gw.close()


async def test_backfill_applies_what_stripe_could_not_deliver(
    engine: httpx.AsyncClient,
    emulator: Emulator,
    stripe_client: stripe.StripeClient,
    emulator_server: EmulatorServer,
    gateway: StripeGateway,
) -> None:
    # Our endpoint was down: every delivery fails, the buyer never came back.
    await stripe_client.v1.webhook_endpoints.create_async(
        params={"url": "http://127.0.0.1:9/webhooks/stripe", "enabled_events": ["*"]}
    )
    emulator.configure_deliveries(max_attempts=1)
    started = only(
        await call(engine, CHECKOUT, {"input": {"planUid": "pro", "billingInterval": "MONTH"}})
    )
    await pay(started["checkoutUrl"])
    await emulator.flush_deliveries()
    assert (await call(engine, STATUS_QUERY))["subscriptionStatus"]["hasSubscription"] is False

    settings = engine_settings(emulator_server, stripe_webhook_secrets=[SECRET])
    context = HandlerContext.from_settings(settings, gateway)
    lines: list[str] = []
    first = await backfill(context, since=0, report=lambda p: lines.append(p.line()))
    assert first.done >= 3
    assert first.total == first.done
    assert lines[-1].startswith(f"{first.done}/{first.total} events (")
    assert first.outcomes["processed"] >= 1
    status = (await call(engine, STATUS_QUERY))["subscriptionStatus"]
    assert (status["status"], status["planUid"]) == ("active", "pro")
    rows = await WebhookEvent.find_all().count()
    again = await backfill(context, since=0)
    # The first run made the card paid at Checkout the customer's default: Stripe's
    # customer.updated about that is the one new event; after it there is nothing new.
    assert again.outcomes.get("processed") == 1
    assert set(again.outcomes) == {"duplicate", "processed"}
    third = await backfill(context, since=0)
    assert set(third.outcomes) == {"duplicate"}
    assert await WebhookEvent.find_all().count() == rows + 1


async def test_reconcile_reports_and_repairs_drift(
    engine: httpx.AsyncClient,
    emulator: Emulator,
    stripe_client: stripe.StripeClient,
    gateway: StripeGateway,
) -> None:
    await customer_with_card(engine, stripe_client, emulator)
    sub_id = (await subscribe(engine))["subscription"]["subscriptionId"]
    # Changed at Stripe while no webhook reached us.
    await stripe_client.v1.subscriptions.cancel_async(sub_id)

    dry = await reconcile_subscriptions(gateway, dry_run=True)
    found = [(d.kind, d.ours, d.stripe) for d in dry.drifts]
    assert ("status", "active", "canceled") in found
    assert {k for k, _, _ in found} >= {"status", "canceled_at", "ended_at"}
    assert (await Subscription.find_one({"stripe_subscription_id": sub_id})).status == "active"  # type: ignore[union-attr]

    real = await reconcile_subscriptions(gateway, organization_id="org_a")
    assert real.applied == 1
    doc = await Subscription.find_one({"stripe_subscription_id": sub_id})
    assert doc is not None
    assert doc.status == "canceled"
    [audit] = await AuditEntry.find({"source": "reconcile"}).to_list()
    assert (audit.from_status, audit.to_status) == ("active", "canceled")

    clean = await reconcile_subscriptions(gateway)
    assert (clean.checked, clean.drifts, clean.applied) == (1, [], 0)


async def test_reconcile_finds_subscriptions_missing_here(
    engine: httpx.AsyncClient,
    emulator: Emulator,
    stripe_client: stripe.StripeClient,
    gateway: StripeGateway,
) -> None:
    customer_id = await customer_with_card(engine, stripe_client, emulator)
    price_id = await plan_price_at_stripe(stripe_client, "Pro", 4900, "pro_month")
    await stripe_client.v1.subscriptions.create_async(
        params={"customer": customer_id, "items": [{"price": price_id}]}
    )
    report = await reconcile_subscriptions(gateway)
    assert [d.kind for d in report.drifts] == ["missing"]
    status = (await call(engine, STATUS_QUERY))["subscriptionStatus"]
    assert (status["status"], status["planUid"]) == ("active", "pro")


async def reconcile_command(
    settings: Settings, wire_server: WireServer, emulator_server: EmulatorServer, *args: str
) -> subprocess.CompletedProcess[str]:
    """``revenue-engine reconcile …`` as an operator runs it, on the engine's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "MONGODB_"))}
    env.update(
        MONGODB_URI=wire_server.uri,
        MONGODB_DATABASE=settings.mongodb_database,
        STRIPE_API_BASE=emulator_server.url,
        STRIPE_SECRET_KEY="sk_test_cli",
    )
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "revenue_engine", "reconcile", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


async def wire_engine(
    client_for: Callable[[Settings], Any],
    emulator_server: EmulatorServer,
    wire_server: WireServer | None,
) -> tuple[Settings, httpx.AsyncClient]:
    """The engine on the wire server (the command line runs in another process on the same
    database), or a skip when there is none."""
    if wire_server is None:
        pytest.skip("no MongoDB wire server")
    settings = engine_settings(emulator_server, mongodb_uri=wire_server.uri)
    engine: httpx.AsyncClient = await client_for(settings)
    return settings, engine


@pytest.mark.wire
async def test_reconcile_command_line_dry_run(
    client_for: Callable[[Settings], Any],
    emulator_server: EmulatorServer,
    emulator: Emulator,
    stripe_client: stripe.StripeClient,
    wire_server: WireServer | None,
) -> None:
    settings, engine = await wire_engine(client_for, emulator_server, wire_server)
    await customer_with_card(engine, stripe_client, emulator)
    sub_id = (await subscribe(engine))["subscription"]["subscriptionId"]
    await stripe_client.v1.subscriptions.update_async(sub_id, params={"cancel_at_period_end": True})
    await stripe_client.v1.subscriptions.cancel_async(sub_id)
    result = await reconcile_command(settings, wire_server, emulator_server, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "drift status" in result.stdout
    assert sub_id in result.stdout
    assert "1 checked," in result.stdout
    assert "would apply 1" in result.stdout
    assert (await Subscription.find_one({"stripe_subscription_id": sub_id})).status == "active"  # type: ignore[union-attr]


@pytest.mark.wire
async def test_reconcile_command_line_resumes_after_a_cursor(
    client_for: Callable[[Settings], Any],
    emulator_server: EmulatorServer,
    emulator: Emulator,
    stripe_client: stripe.StripeClient,
    wire_server: WireServer | None,
) -> None:
    settings, engine = await wire_engine(client_for, emulator_server, wire_server)
    for org in ("org_a", "org_b", "org_c"):
        customer_id = only(await call(engine, CREATE_CUSTOMER, org=org))["customer"]["id"]
        pm = await stripe_client.v1.payment_methods.attach_async(
            "pm_card_visa", params={"customer": customer_id}
        )
        await stripe_client.v1.customers.update_async(
            customer_id, params={"invoice_settings": {"default_payment_method": pm.id}}
        )
        created = only(
            await call(
                engine,
                CREATE_SUBSCRIPTION,
                {"input": {"planUid": "starter", "billingInterval": "MONTH"}},
                org=org,
            )
        )
        await stripe_client.v1.subscriptions.cancel_async(created["subscription"]["subscriptionId"])
    # Stripe's listing order (newest first); an earlier run stopped after the first one.
    listed = await stripe_client.v1.subscriptions.list_async(params={"status": "all"})
    first, *rest = [s.id for s in listed.data]
    assert len(rest) == 2

    result = await reconcile_command(
        settings, wire_server, emulator_server, "--starting-after", first
    )
    assert result.returncode == 0, result.stderr
    assert first not in result.stdout
    status_drifts = [
        line.split()[2]
        for line in result.stdout.splitlines()
        if line.split()[:2] == ["drift", "status"]
    ]
    assert sorted(status_drifts) == sorted(rest)
    assert f"cursor={rest[-1]}" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("2 checked,")
    assert result.stdout.splitlines()[-1].endswith("applied 2")
    statuses = {
        doc.stripe_subscription_id: doc.status for doc in await Subscription.find_all().to_list()
    }
    assert statuses == {first: "active", rest[0]: "canceled", rest[1]: "canceled"}
