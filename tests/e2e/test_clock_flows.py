"""Time passing, offline: the embedded engine (emulator mounted, webhooks delivered to its own
route over HTTP) while a Stripe test clock advances through period ends and failed renewals."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import stripe
from stripe_emulator import Emulator
from stripe_emulator.server import UvicornThread

from revenue_engine.app import create_app
from tests.conftest import make_settings
from tests.wire import free_port

DAY = 86_400


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, Emulator]]:
    port = free_port()
    settings = make_settings(environment="development", public_base_url=f"http://127.0.0.1:{port}")
    app = create_app(settings)
    with UvicornThread(app, port=port) as server:
        yield server.url, app.state.emulator


@pytest.fixture
async def sdk(served: tuple[str, Emulator]) -> AsyncIterator[stripe.StripeClient]:
    url = served[0] + "/stripe-emulator"
    http_client = stripe.HTTPXClient(timeout=10)
    yield stripe.StripeClient(
        "sk_test_clock",
        stripe_version="2026-10-28.endive",
        http_client=http_client,
        base_addresses={"api": url, "connect": url, "files": url, "meter_events": url},
    )
    await http_client.close_async()


class Org:
    def __init__(self, base: str, org: str) -> None:
        self.base = base
        self.headers = {"x-organization-id": org, "x-customer-email": f"{org}@example.com"}

    async def gql(self, query: str) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(
                f"{self.base}/graphql", json={"query": query}, headers=self.headers
            )
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    async def status(self) -> dict[str, Any]:
        data = await self.gql(
            "{ subscriptionStatus { status isActive cancelAtPeriodEnd currentPeriodEnd } }"
        )
        result: dict[str, Any] = data["subscriptionStatus"]
        return result

    async def wait_status(self, wanted: str, within: float = 15) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while True:
            current = await self.status()
            if current["status"] == wanted:
                return current
            assert time.monotonic() < deadline, f"still {current} (waiting for {wanted})"
            await asyncio.sleep(0.05)

    async def audit(self) -> list[tuple[str | None, str | None, str]]:
        from revenue_engine.documents import AuditEntry

        rows = (
            await AuditEntry.find({"organization_id": self.headers["x-organization-id"]})
            .sort("at")
            .to_list()
        )
        return [
            (a.from_status, a.to_status, a.source.value)
            for a in rows
            if a.kind.startswith("subscription")
        ]


async def subscribed_on_a_clock(
    org: Org,
    sdk: stripe.StripeClient,
    emulator: Emulator,
    plan: str = "starter",
    *,
    days_ago: int = 0,
) -> tuple[str, str, int]:
    """The org's customer on a fresh test clock (frozen ``days_ago`` days before now) with a
    default card, subscribed directly."""
    created = await org.gql(
        "mutation { createCustomer { ... on CustomerPayload { customer { id } } } }"
    )
    customer_id = created["createCustomer"]["customer"]["id"]
    now = int(time.time()) - days_ago * DAY
    clock = await sdk.v1.test_helpers.test_clocks.create_async(params={"frozen_time": now})
    emulator.attach_test_clock(customer_id, clock.id)
    pm = await sdk.v1.payment_methods.attach_async("pm_card_visa", params={"customer": customer_id})
    await sdk.v1.customers.update_async(
        customer_id, params={"invoice_settings": {"default_payment_method": pm.id}}
    )
    result = await org.gql(
        f'mutation {{ createSubscription(input: {{planUid: "{plan}", billingInterval: MONTH}}) '
        "{ __typename ... on SubscriptionPayload { subscription { status } } } }"
    )
    assert result["createSubscription"]["subscription"]["status"] == "active"
    return clock.id, pm.id, now


async def test_cancel_at_period_end_then_the_clock_passes_the_period(
    served: tuple[str, Emulator], sdk: stripe.StripeClient
) -> None:
    base, emulator = served
    org = Org(base, "org_clock_cancel")
    clock_id, _, now = await subscribed_on_a_clock(org, sdk, emulator)
    result = await org.gql(
        "mutation { cancelSubscription(atPeriodEnd: true) { ... on SubscriptionPayload "
        "{ subscription { cancelAtPeriodEnd currentPeriodEnd } } } }"
    )
    assert result["cancelSubscription"]["subscription"]["cancelAtPeriodEnd"] is True
    await sdk.v1.test_helpers.test_clocks.advance_async(
        clock_id, params={"frozen_time": now + 32 * DAY}
    )
    ended = await org.wait_status("canceled")
    assert ended["isActive"] is False
    assert await org.audit() == [
        (None, "active", "mutation"),
        ("active", "active", "mutation"),  # cancel_at_period_end set
        ("active", "canceled", "webhook"),
    ]


async def test_failed_renewal_goes_past_due_then_canceled(
    served: tuple[str, Emulator], sdk: stripe.StripeClient
) -> None:
    base, emulator = served
    emulator.set_dunning(retry_days=(1, 2), final_action="cancel")
    org = Org(base, "org_clock_dunning")
    clock_id, pm_id, now = await subscribed_on_a_clock(org, sdk, emulator)
    emulator.set_card_decline(pm_id, "insufficient_funds")

    await sdk.v1.test_helpers.test_clocks.advance_async(
        clock_id, params={"frozen_time": now + 31 * DAY + 3600}
    )
    past_due = await org.wait_status("past_due")
    assert past_due["isActive"] is True  # within PAST_DUE_GRACE_DAYS of the failed renewal

    await sdk.v1.test_helpers.test_clocks.advance_async(
        clock_id, params={"frozen_time": now + 35 * DAY}
    )
    await org.wait_status("canceled")
    assert await org.audit() == [
        (None, "active", "mutation"),
        ("active", "past_due", "webhook"),
        ("past_due", "canceled", "webhook"),
    ]


async def test_a_clock_in_the_past_still_reaches_past_due(
    served: tuple[str, Emulator], sdk: stripe.StripeClient
) -> None:
    """Events of objects on a test clock carry the clock's time, here 90 days before ours:
    none of them may be taken for old news."""
    base, emulator = served
    emulator.set_dunning(retry_days=(1, 2), final_action="cancel")
    org = Org(base, "org_clock_past")
    clock_id, pm_id, start = await subscribed_on_a_clock(org, sdk, emulator, days_ago=90)
    emulator.set_card_decline(pm_id, "insufficient_funds")

    await sdk.v1.test_helpers.test_clocks.advance_async(
        clock_id, params={"frozen_time": start + 31 * DAY + 3600}
    )
    await org.wait_status("past_due")
    await sdk.v1.test_helpers.test_clocks.advance_async(
        clock_id, params={"frozen_time": start + 35 * DAY}
    )
    await org.wait_status("canceled")
    assert await org.audit() == [
        (None, "active", "mutation"),
        ("active", "past_due", "webhook"),
        ("past_due", "canceled", "webhook"),
    ]


@pytest.mark.parametrize("days_ago", [0, 90])
async def test_past_due_is_active_only_within_the_grace_window_of_the_clock(
    served: tuple[str, Emulator], sdk: stripe.StripeClient, days_ago: int
) -> None:
    """The grace window is counted on the subscription's own time — its test clock's — whether
    the clock runs ahead of ours (0) or months behind it (90)."""
    base, emulator = served
    emulator.set_dunning(retry_days=(10, 10), final_action="unpaid")
    org = Org(base, f"org_clock_grace_{days_ago}")
    clock_id, pm_id, start = await subscribed_on_a_clock(
        org, sdk, emulator, "pro", days_ago=days_ago
    )
    emulator.set_card_decline(pm_id, "insufficient_funds")

    await sdk.v1.test_helpers.test_clocks.advance_async(
        clock_id, params={"frozen_time": start + 31 * DAY + 3600}
    )
    inside = await org.wait_status("past_due")
    assert inside["isActive"] is True  # a day into PAST_DUE_GRACE_DAYS (7)

    # The first retry, 10 days after the failed renewal, fails too: still past_due, but the
    # clock is now past the grace window.
    await sdk.v1.test_helpers.test_clocks.advance_async(
        clock_id, params={"frozen_time": start + 42 * DAY}
    )
    deadline = time.monotonic() + 15
    while (current := await org.status())["isActive"]:
        assert time.monotonic() < deadline, f"still active: {current}"
        await asyncio.sleep(0.05)
    assert current["status"] == "past_due"
    renewals = [
        i
        for i in emulator.objects("invoice")
        if i["test_clock"] == clock_id and i["billing_reason"] == "subscription_cycle"
    ]
    assert [(i["status"], i["attempt_count"]) for i in renewals] == [("open", 2)]
