"""The whole purchase in a real browser: the demo SPA, the emulator's hosted Checkout page, the
redirect back, the billing portal, and GraphiQL, all served by one engine process offline."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import api
from tests.browser.flows import long_date, pay, sign_in, start_checkout, subscribe

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

STATUS = "{ subscriptionStatus { hasSubscription status isActive planUid currentPeriodEnd } }"


def test_subscribe_pay_on_the_hosted_page_and_land_back_active(page: Page, served: str) -> None:
    from playwright.sync_api import expect

    org = "org_acme"  # the server is this module's own: each test has its own organization
    sign_in(page, served, org, "billing@acme.example")
    # A second tab of the same organization, left open from before the purchase.
    stale = page.context.new_page()
    stale.goto(f"{served}/demo/")
    expect(stale.get_by_test_id("who")).to_have_text(f"signed in as {org}")
    expect(stale.get_by_test_id("choose-starter")).to_have_text("Subscribe")

    expect(page.get_by_test_id("subscription-panel")).to_be_hidden()
    start_checkout(page, served, "pro")
    expect(page.locator("body")).to_contain_text("$49.00")
    pay(page, "pm_card_visa")
    page.wait_for_url(f"{served}/demo/")

    expect(page.get_by_test_id("message")).to_have_text(
        "Payment received: you are subscribed to Pro."
    )
    expect(page.get_by_test_id("status")).to_have_text("active")
    expect(page.get_by_test_id("access")).to_contain_text("yes")
    expect(page.get_by_test_id("plan")).to_have_attribute("data-plan", "pro")
    expect(page.get_by_test_id("plan")).to_contain_text("Pro · monthly")
    expect(page.get_by_test_id("choose-pro")).to_have_text("Current plan")
    expect(page.get_by_test_id("choose-pro")).to_be_disabled()
    expect(page.get_by_test_id("choose-starter")).to_have_text("Switch to this plan")
    expect(page.get_by_test_id("invoices")).to_contain_text("paid · $49.00")

    # The plan's entitlements, as the catalog defines them, are what the page lists; a metered
    # one shows the current period's use against it.
    plan = api(
        served, '{ plan(uid: "pro") { metered entitlements { key enabled limit unlimited } } }'
    )["plan"]
    assert plan["metered"] == ["api_calls", "bandwidth_gb"]
    shown = page.get_by_test_id("entitlements").locator("li")
    expect(shown).to_have_count(len(plan["entitlements"]))
    for entitlement in plan["entitlements"]:
        limit = entitlement["limit"]
        value = f"{limit:,}" if limit is not None else "yes"
        if entitlement["key"] in plan["metered"] and limit is not None:
            value = f"0 / {limit:,} ({limit:,} left)"
        if entitlement["unlimited"]:
            value = "unlimited"
        if not entitlement["enabled"]:
            value = "no"
        expect(shown.and_(page.locator(f"[data-key={entitlement['key']}]"))).to_have_text(
            f"{entitlement['key']}: {value}"
        )
    status = api(served, STATUS, org)["subscriptionStatus"]
    assert (status["status"], status["isActive"], status["planUid"]) == ("active", True, "pro")

    # The stale tab still offers "Subscribe": the API answers with a typed error, shown as such.
    stale.get_by_test_id("choose-starter").click()
    message = stale.get_by_test_id("message")
    expect(message).to_have_attribute("data-code", "ALREADY_SUBSCRIBED")
    expect(message).to_have_class("error")
    expect(message).to_contain_text("use changeSubscriptionPlan to switch plans")
    assert stale.url == f"{served}/demo/"


def test_a_declined_card_shows_the_decline_and_leaves_nothing_active(
    page: Page, served: str
) -> None:
    from playwright.sync_api import expect

    org = "org_declined"
    sign_in(page, served, org)
    page.get_by_test_id("interval-year").check()
    expect(page.get_by_test_id("plan-starter")).to_contain_text("$190.00 / year")
    start_checkout(page, served, "starter")
    pay(page, "pm_card_chargeDeclined")

    expect(page.get_by_role("alert")).to_have_text("Your card was declined.")
    expect(page.get_by_role("button", name=re.compile(r"^Pay "))).to_be_visible()
    status = api(served, STATUS, org)["subscriptionStatus"]
    assert status == {
        "hasSubscription": False,
        "status": None,
        "isActive": False,
        "planUid": None,
        "currentPeriodEnd": None,
    }

    # Giving up on the hosted page lands on the SPA's cancel URL: nothing was charged.
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_url(f"{served}/demo/")
    expect(page.get_by_test_id("message")).to_have_text("Checkout canceled: nothing was charged.")
    expect(page.locator("main")).to_have_attribute("aria-busy", "false")
    expect(page.get_by_test_id("subscription-panel")).to_be_hidden()
    expect(page.get_by_test_id("choose-starter")).to_have_text("Subscribe")
    assert api(served, STATUS, org)["subscriptionStatus"]["hasSubscription"] is False


def test_cancel_at_period_end_shows_the_end_date_then_resume_and_the_portal(
    page: Page, served: str
) -> None:
    from playwright.sync_api import expect

    org = "org_cancels"
    sign_in(page, served, org)
    # The metered add-on chosen at checkout: overage is on from the start.
    page.get_by_test_id("addon-starter-api_calls").locator("input[type=checkbox]").check()
    subscribe(page, served, "starter")
    expect(page.get_by_test_id("meter-used-api_calls")).to_have_text("0 / 10,000")
    expect(page.get_by_test_id("overage-state-api_calls")).to_have_text("Overage: on")
    expect(page.get_by_test_id("overage-toggle-api_calls")).to_have_text("Switch overage off")
    expect(page.get_by_test_id("cancels")).to_have_text("no")
    expect(page.get_by_test_id("resume")).to_be_hidden()

    page.get_by_test_id("cancel-at-period-end").click()
    period_end = api(served, STATUS, org)["subscriptionStatus"]["currentPeriodEnd"]
    assert period_end is not None
    shown = long_date(period_end)
    expect(page.get_by_test_id("message")).to_have_text(
        f"Your subscription stays active until {shown}, then ends."
    )
    cancels = page.get_by_test_id("cancels")
    expect(cancels).to_have_text(f"at period end, {shown}")
    expect(cancels.locator("time")).to_have_attribute("datetime", period_end)
    expect(page.get_by_test_id("status")).to_have_text("active")
    expect(page.get_by_test_id("cancel-at-period-end")).to_be_hidden()
    expect(page.get_by_test_id("resume")).to_be_visible()

    page.get_by_test_id("resume").click()
    expect(page.get_by_test_id("message")).to_contain_text("the cancellation is withdrawn")
    expect(cancels).to_have_text("no")

    # The billing portal link: the emulator's hosted portal, and back.
    page.get_by_test_id("portal").click()
    page.wait_for_url(re.compile(re.escape(f"{served}/stripe-emulator/billing_portal/")))
    expect(page.locator("body")).to_contain_text("Renews on")
    page.get_by_role("link", name="Return").click()
    page.wait_for_url(f"{served}/demo/")
    expect(page.get_by_test_id("status")).to_have_text("active")


USAGE = """{ usage { features { feature used included remaining overageEnabled
    overageUnits overagePackages overageAmount currency } } }"""


def simulate(page: Page, quantity: int) -> None:
    """Record ``quantity`` api_calls through the SPA's "simulate usage" form."""
    from playwright.sync_api import expect

    page.get_by_test_id("simulate-feature").select_option("api_calls")
    page.get_by_test_id("simulate-quantity").fill(str(quantity))
    page.get_by_test_id("simulate-submit").click()
    expect(page.locator("main")).to_have_attribute("aria-busy", "false")


def test_usage_meter_quota_then_overage_on_and_off(page: Page, served: str) -> None:
    from playwright.sync_api import expect

    org = "org_metered"
    sign_in(page, served, org)
    # What each add-on does, on the plan card: a pack adds to a limit, a metered one bills overage.
    card = page.get_by_test_id("plan-pro")
    expect(card.get_by_test_id("addon-pro-bandwidth")).to_contain_text(
        "+100 GB bandwidth_gb, $9.00 / month"
    )
    metered_addon = card.get_by_test_id("addon-pro-api_calls")
    expect(metered_addon).to_contain_text(
        "Overage: $15.00 per 10,000 api_calls beyond the included, billed at period end"
    )
    expect(metered_addon.locator("input[type=checkbox]")).not_to_be_checked()
    subscribe(page, served, "pro")  # the api_calls overage not chosen: a hard cap

    meter = page.get_by_test_id("meter-api_calls")
    used = page.get_by_test_id("meter-used-api_calls")
    bar = page.get_by_test_id("meter-bar-api_calls")
    toggle = page.get_by_test_id("overage-toggle-api_calls")
    message = page.get_by_test_id("message")
    expect(used).to_have_text("0 / 250,000")
    expect(bar).to_have_attribute("max", "250000")
    expect(bar).to_have_attribute("value", "0")
    expect(page.get_by_test_id("meter-remaining-api_calls")).to_have_text("250,000 left")
    expect(page.get_by_test_id("overage-state-api_calls")).to_have_text("Overage: off")
    expect(toggle).to_have_text("Switch overage on")
    expect(page.get_by_test_id("overage-so-far-api_calls")).to_have_text(
        "Overage so far: 0 packages, $0.00"
    )
    period = page.get_by_test_id("usage-period").locator("time")
    expect(period).to_have_count(2)
    # Pro sells no bandwidth overage: its switch cannot be pressed.
    expect(page.get_by_test_id("meter-used-bandwidth_gb")).to_have_text("0 / 500")
    expect(page.get_by_test_id("overage-toggle-bandwidth_gb")).to_be_disabled()
    expect(page.get_by_test_id("overage-state-bandwidth_gb")).to_have_text(
        "Overage: not offered on this plan"
    )

    for _ in range(2):
        simulate(page, 125_000)
        expect(message).to_have_attribute("data-code", "ACCEPTED")
    expect(used).to_have_text("250,000 / 250,000")
    expect(bar).to_have_attribute("value", "250000")
    expect(page.get_by_test_id("meter-remaining-api_calls")).to_have_text("none left")
    entitlement = page.get_by_test_id("entitlements").locator("[data-key=api_calls]")
    expect(entitlement).to_have_text("api_calls: 250,000 / 250,000 (0 left)")

    # One more call past the cap: refused with the typed code, nothing recorded.
    simulate(page, 1)
    expect(message).to_have_attribute("data-code", "QUOTA_EXCEEDED")
    expect(message).to_have_class("error")
    expect(message).to_contain_text("Quota reached: switch overage on or upgrade")
    expect(used).to_have_text("250,000 / 250,000")
    [api_calls] = [
        f for f in api(served, USAGE, org)["usage"]["features"] if f["feature"] == "api_calls"
    ]
    assert (api_calls["used"], api_calls["remaining"]) == (250_000, 0)

    # A quantity that is not a whole number never reaches the engine.
    page.get_by_test_id("simulate-quantity").fill("1.5")
    page.get_by_test_id("simulate-submit").click()
    expect(message).to_have_attribute("data-code", "INVALID_QUANTITY")
    expect(used).to_have_text("250,000 / 250,000")

    toggle.click()
    expect(message).to_contain_text("Overage on for api_calls")
    expect(page.get_by_test_id("overage-state-api_calls")).to_have_text("Overage: on")
    # The plan card's metered add-on shows the switch; it is not a change of add-ons.
    addon_box = metered_addon.locator("input[type=checkbox]")
    expect(addon_box).to_be_checked()
    expect(addon_box).to_be_disabled()
    expect(page.get_by_test_id("choose-pro")).to_have_text("Current plan")
    expect(toggle).to_have_text("Switch overage off")
    simulate(page, 10_000)
    expect(message).to_have_attribute("data-code", "ACCEPTED")
    expect(used).to_have_text("260,000 / 250,000")
    expect(page.get_by_test_id("overage-so-far-api_calls")).to_have_text(
        "Overage so far: 1 package, $15.00"
    )
    expect(meter.get_by_test_id("overage-pending-api_calls")).to_have_count(0)

    # Off again: what was used beyond the included is billed at the period's end.
    toggle.click()
    expect(message).to_contain_text("Overage off for api_calls")
    expect(page.get_by_test_id("overage-state-api_calls")).to_have_text("Overage: off")
    expect(toggle).to_have_text("Switch overage on")
    expect(page.get_by_test_id("overage-pending-api_calls")).to_have_text(
        "overage off — this period's overage is still billed at its end"
    )
    expect(addon_box).not_to_be_checked()
    expect(page.get_by_test_id("choose-pro")).to_be_disabled()
    expect(page.get_by_test_id("overage-so-far-api_calls")).to_have_text(
        "Overage so far: 1 package, $15.00"
    )
    [api_calls] = [
        f for f in api(served, USAGE, org)["usage"]["features"] if f["feature"] == "api_calls"
    ]
    assert api_calls == {
        "feature": "api_calls",
        "used": 260_000,
        "included": 250_000,
        "remaining": 0,
        "overageEnabled": False,
        "overageUnits": 10_000,
        "overagePackages": 1,
        "overageAmount": 1500,
        "currency": "usd",
    }


def test_graphiql_loads_offline_and_runs_a_query(page: Page, served: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{served}/graphql")
    editor = page.locator(".graphiql-query-editor .CodeMirror")
    expect(editor).to_be_visible()
    editor.click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.press("Delete")
    page.keyboard.type("{ plans { uid } }")
    page.locator(".graphiql-execute-button").click()

    uids = [plan["uid"] for plan in api(served, "{ plans { uid } }")["plans"]]
    assert uids == ["starter", "pro", "business", "enterprise"]
    result = page.locator(".graphiql-response .CodeMirror")
    expect(result).to_contain_text(f'"uid": "{uids[-1]}"')
    shown = json.loads(result.evaluate("node => node.CodeMirror.getValue()"))
    assert shown == {"data": {"plans": [{"uid": uid} for uid in uids]}}
