"""Plan → checkout → pay on the hosted page → verify, through the real app, SDK and emulator."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import httpx
from stripe_emulator import Emulator
from stripe_emulator.server import EmulatorServer

from revenue_engine.documents import AuditEntry, CheckoutSession, Subscription
from tests.e2e.conftest import ENGINE_URL, pay
from tests.e2e.ops import CHECKOUT, STATUS_QUERY, VERIFY, call, only

PRO = {"planUid": "pro", "billingInterval": "MONTH", "overages": ["bandwidth"]}


async def start_checkout(
    engine: httpx.AsyncClient, org: str = "org_a", **extra: object
) -> dict[str, str]:
    result = only(await call(engine, CHECKOUT, {"input": {**PRO, **extra}}, org=org))
    assert result["__typename"] == "CheckoutPayload", result
    return result


async def test_pay_then_verify_makes_the_organization_active(
    engine: httpx.AsyncClient, emulator: Emulator, emulator_server: EmulatorServer
) -> None:
    started = await start_checkout(engine)
    assert started["checkoutUrl"].startswith(emulator_server.url + "/checkout/cs_test_")
    stored = await CheckoutSession.find_one({"stripe_session_id": started["sessionId"]})
    assert stored is not None
    assert (stored.organization_id, stored.status.value, stored.overages) == (
        "org_a",
        "pending",
        ["bandwidth"],
    )
    [session] = emulator.objects("checkout.session")
    assert session["client_reference_id"] == "org_a"
    assert session["metadata"] == {
        "organization_id": "org_a",
        "plan_uid": "pro",
        "interval": "month",
    }
    assert (
        session["success_url"] == f"{ENGINE_URL}/billing/success?session_id={{CHECKOUT_SESSION_ID}}"
    )

    paid = await pay(started["checkoutUrl"])
    assert paid.status_code == 303
    location = urlsplit(paid.headers["location"])
    assert (
        f"{location.scheme}://{location.netloc}{location.path}" == f"{ENGINE_URL}/billing/success"
    )
    assert parse_qs(location.query)["session_id"] == [started["sessionId"]]

    verified = only(await call(engine, VERIFY, {"id": started["sessionId"]}))
    assert verified["__typename"] == "VerifyCheckoutPayload"
    assert (verified["status"], verified["paymentStatus"]) == ("complete", "paid")
    sub = verified["subscription"]
    assert (sub["status"], sub["isActive"], sub["planUid"], sub["billingInterval"]) == (
        "active",
        True,
        "pro",
        "MONTH",
    )
    assert sub["overages"] == ["bandwidth"]
    assert {"key": "seats", "enabled": True, "limit": 15} in sub["entitlements"]
    assert sub["currentPeriodEnd"] is not None

    status = (await call(engine, STATUS_QUERY))["subscriptionStatus"]
    assert status == sub
    stored = await CheckoutSession.find_one({"stripe_session_id": started["sessionId"]})
    assert stored is not None
    assert (stored.status.value, stored.payment_status) == ("completed", "paid")
    assert stored.stripe_subscription_id == sub["subscriptionId"]

    # Verifying again changes nothing: same answer, no new audit row, no new version.
    audits = await AuditEntry.find({"organization_id": "org_a"}).count()
    again = only(await call(engine, VERIFY, {"id": started["sessionId"]}))
    assert again == verified
    assert await AuditEntry.find({"organization_id": "org_a"}).count() == audits
    [doc] = await Subscription.find({"organization_id": "org_a"}).to_list()
    assert doc.version == 0


async def test_second_checkout_is_refused_while_subscribed(engine: httpx.AsyncClient) -> None:
    started = await start_checkout(engine)
    await pay(started["checkoutUrl"])
    await call(engine, VERIFY, {"id": started["sessionId"]})
    again = only(
        await call(engine, CHECKOUT, {"input": {**PRO, "planUid": "starter", "overages": []}})
    )
    assert again["__typename"] == "AlreadySubscribedError"
    assert again["code"] == "ALREADY_SUBSCRIBED"
    assert "changeSubscriptionPlan" in again["message"]
    assert again["status"] == "active"


async def test_same_purchase_reuses_the_open_session(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    first = await start_checkout(engine)
    second = await start_checkout(engine)
    assert first == second
    assert len(emulator.objects("checkout.session")) == 1


async def test_double_submit_creates_one_session(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    results = await asyncio.gather(*(start_checkout(engine) for _ in range(2)))
    assert results[0]["sessionId"] == results[1]["sessionId"]
    assert len(emulator.objects("checkout.session")) == 1
    assert len(emulator.objects("customer")) == 1
    assert await CheckoutSession.find_all().count() == 1


async def test_declined_card_leaves_nothing_active(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    started = await start_checkout(engine)
    declined = await pay(started["checkoutUrl"], card="pm_card_chargeDeclined")
    assert declined.status_code == 402
    assert "declined" in declined.text.lower()
    verified = only(await call(engine, VERIFY, {"id": started["sessionId"]}))
    assert (verified["status"], verified["paymentStatus"]) == ("open", "unpaid")
    assert verified["subscription"]["hasSubscription"] is False
    status = (await call(engine, STATUS_QUERY))["subscriptionStatus"]
    assert (status["hasSubscription"], status["isActive"]) == (False, False)
    assert await Subscription.find_all().count() == 0


async def test_cancel_on_the_hosted_page_returns_to_the_cancel_url(
    engine: httpx.AsyncClient,
) -> None:
    started = await start_checkout(engine, cancelPath="/pricing?from=checkout")
    async with httpx.AsyncClient() as browser:
        response = await browser.post(f"{started['checkoutUrl']}/cancel")
    assert response.status_code == 303
    assert response.headers["location"] == f"{ENGINE_URL}/pricing?from=checkout"


async def test_another_organizations_session_is_not_found(engine: httpx.AsyncClient) -> None:
    started = await start_checkout(engine, org="org_a")
    await pay(started["checkoutUrl"])
    foreign = only(await call(engine, VERIFY, {"id": started["sessionId"]}, org="org_b"))
    missing = only(await call(engine, VERIFY, {"id": "cs_test_doesnotexist"}, org="org_b"))
    assert foreign["__typename"] == missing["__typename"] == "NotFoundError"
    assert foreign["message"].replace(started["sessionId"], "X") == missing["message"].replace(
        "cs_test_doesnotexist", "X"
    )
    assert await Subscription.find_all().count() == 0
    query = "query($id: ID!) { checkoutSession(id: $id) { sessionId } }"
    assert (await call(engine, query, {"id": started["sessionId"]}, org="org_b")) == {
        "checkoutSession": None
    }
    mine = await call(engine, query, {"id": started["sessionId"]}, org="org_a")
    assert mine == {"checkoutSession": {"sessionId": started["sessionId"]}}


async def test_a_trial_checkout_needs_no_payment_and_is_trialing(engine: httpx.AsyncClient) -> None:
    started = await start_checkout(engine, trialDays=14)
    paid = await pay(started["checkoutUrl"])
    assert paid.status_code == 303
    verified = only(await call(engine, VERIFY, {"id": started["sessionId"]}))
    assert (verified["status"], verified["paymentStatus"]) == ("complete", "no_payment_required")
    sub = verified["subscription"]
    assert (sub["status"], sub["isActive"]) == ("trialing", True)
    assert sub["trialEnd"] is not None
    bad = only(await call(engine, CHECKOUT, {"input": {**PRO, "trialDays": 0}}, org="org_z"))
    assert bad["__typename"] == "ValidationError"


async def test_a_new_purchase_expires_the_other_open_session(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    first = await start_checkout(engine)
    second = await start_checkout(engine, planUid="starter", overages=[])
    assert first["sessionId"] != second["sessionId"]
    stale = {s["id"]: s["status"] for s in emulator.objects("checkout.session")}
    assert stale == {first["sessionId"]: "expired", second["sessionId"]: "open"}
    old = await CheckoutSession.find_one({"stripe_session_id": first["sessionId"]})
    assert old is not None
    assert old.status.value == "expired"
    # Paying the superseded session is impossible: never two subscriptions.
    async with httpx.AsyncClient() as browser:
        late = await browser.post(f"{first['checkoutUrl']}/pay", data={"card": "pm_card_visa"})
    assert late.status_code == 410
    await pay(second["checkoutUrl"])
    verified = only(await call(engine, VERIFY, {"id": second["sessionId"]}))
    assert verified["subscription"]["planUid"] == "starter"
    assert len(emulator.objects("subscription")) == 1


async def test_a_session_paid_meanwhile_blocks_the_next_purchase(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    first = await start_checkout(engine)
    await pay(first["checkoutUrl"])  # paid, but neither verified nor delivered yet
    second = only(
        await call(engine, CHECKOUT, {"input": {**PRO, "planUid": "starter", "overages": []}})
    )
    assert second["__typename"] == "AlreadySubscribedError"
    assert len(emulator.objects("subscription")) == 1


async def test_two_different_purchases_at_once_leave_one_payable_session(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    starter = {"planUid": "starter", "overages": []}
    results = await asyncio.gather(start_checkout(engine), start_checkout(engine, **starter))
    sessions = {s["id"]: s["status"] for s in emulator.objects("checkout.session")}
    assert sorted(sessions.values()) == ["expired", "open"], sessions
    # Whichever ran second won; the other's page can no longer be paid.
    [open_id] = [sid for sid, status in sessions.items() if status == "open"]
    assert open_id in {r["sessionId"] for r in results}
    [stale] = [r for r in results if r["sessionId"] != open_id]
    async with httpx.AsyncClient() as browser:
        assert (await browser.get(stale["checkoutUrl"])).status_code == 410  # expired page
    [live] = [r for r in results if r["sessionId"] == open_id]
    assert (await pay(live["checkoutUrl"])).status_code == 303
    assert len(emulator.objects("subscription")) == 1
