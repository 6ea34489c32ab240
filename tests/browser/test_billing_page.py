"""The billing page of the demo SPA in a real browser: add-ons on the current plan, seats, a
preview with a confirm step before every change, a confirmed cancel-now and the state it
leaves, promotion codes, and the billing portal's round trips back to the SPA."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import api
from tests.browser.flows import (
    close_step,
    confirm_step,
    idle,
    long_date,
    pay,
    promotion_code,
    readme_picture,
    sign_in,
    start_checkout,
    subscribe,
    wait_for,
)

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

STATUS = """{ subscriptionStatus { status planUid billingInterval overages seats currentPeriodEnd
  cancelAtPeriodEnd endedAt discounts { promotionCode percentOff } } }"""


def status(base: str, org: str) -> dict[str, object]:
    result: dict[str, object] = api(base, STATUS, org)["subscriptionStatus"]
    return result


def test_an_add_on_on_the_current_plan_is_previewed_then_added_and_removed(
    page: Page, served: str
) -> None:
    from playwright.sync_api import expect

    org = "org_addons"
    sign_in(page, served, org)
    subscribe(page, served, "pro")
    period_end = str(status(served, org)["currentPeriodEnd"])
    card = page.get_by_test_id("plan-pro")
    button = page.get_by_test_id("choose-pro")
    pack = card.get_by_test_id("addon-pro-bandwidth").locator("input")
    expect(button).to_have_text("Current plan")
    expect(button).to_be_disabled()
    # The metered add-on of the current plan is its meter's overage switch, not a checkbox.
    expect(card.get_by_test_id("addon-pro-api_calls").locator("input")).to_be_disabled()
    expect(card.get_by_test_id("addon-pro-api_calls")).to_contain_text("switch it under Usage")

    # Ticking the pack wakes the button up; unticking puts it back to sleep.
    pack.check()
    expect(button).to_have_text("Update add-ons")
    expect(button).to_be_enabled()
    pack.uncheck()
    expect(button).to_be_disabled()
    pack.check()
    button.click()
    dialog = confirm_step(page, "Change the add-ons of Pro")
    # Stripe's preview: the pack's remaining time this period waits for the renewal invoice.
    expect(dialog.get_by_test_id("preview-due-now")).to_have_text("$0.00")
    expect(dialog.get_by_test_id("preview-proration")).to_have_text(
        "$9.00 for the rest of this period"
    )
    expect(dialog.get_by_test_id("preview-next-invoice")).to_have_text(
        f"{long_date(period_end)} · $67.00"
    )
    lines = dialog.get_by_test_id("preview-line")
    expect(lines).to_have_count(3)
    expect(lines.nth(0)).to_contain_text("Remaining time on 1 \u00d7 Pro: Extra bandwidth")
    expect(lines.nth(0)).to_contain_text("$9.00")

    # Cancel changes nothing.
    close_step(page, "confirm-cancel")
    expect(page.get_by_test_id("message")).to_have_text("Nothing was changed.")
    assert status(served, org)["overages"] == []
    expect(page.get_by_test_id("overages")).to_have_count(0)

    button.click()
    confirm_step(page, "Change the add-ons of Pro")
    close_step(page, "confirm-ok")
    expect(page.get_by_test_id("message")).to_have_text("Add-ons of Pro updated.")
    expect(page.get_by_test_id("overages")).to_have_text("bandwidth")
    entitlement = page.get_by_test_id("entitlements").locator("[data-key=bandwidth_gb]")
    expect(entitlement).to_have_text(re.compile(r"/ 600 "))
    assert status(served, org)["overages"] == ["bandwidth"]
    expect(pack).to_be_checked()
    expect(button).to_be_disabled()

    # And off again: the credit for the pack's unused time cancels the charge for it that the
    # next invoice still carries.
    pack.uncheck()
    button.click()
    dialog = confirm_step(page, "Change the add-ons of Pro")
    expect(dialog.get_by_test_id("preview-proration")).to_have_text(
        "$0.00: the charges and credits cancel out"
    )
    lines = dialog.get_by_test_id("preview-line")
    expect(lines.filter(has_text="Unused time on 1 \u00d7 Pro: Extra bandwidth")).to_contain_text(
        "-$9.00"
    )
    expect(dialog.get_by_test_id("preview-next-invoice")).to_have_text(
        f"{long_date(period_end)} · $49.00"
    )
    close_step(page, "confirm-ok")
    expect(page.get_by_test_id("message")).to_have_text("Add-ons of Pro updated.")
    expect(page.get_by_test_id("overages")).to_have_count(0)
    assert status(served, org)["overages"] == []


def test_a_plan_or_interval_switch_shows_its_price_first_and_waits_for_confirm(
    page: Page, served: str
) -> None:
    from playwright.sync_api import expect

    org = "org_switch"
    sign_in(page, served, org)
    subscribe(page, served, "starter")
    period_end = str(status(served, org)["currentPeriodEnd"])

    # $19 to $199 a month: the preview says so before anything happens.
    page.get_by_test_id("choose-enterprise").click()
    dialog = confirm_step(page, "Switch to Enterprise (monthly)")
    expect(dialog.get_by_test_id("preview-due-now")).to_have_text("$0.00")
    expect(dialog.get_by_test_id("preview-proration")).to_have_text(
        "$180.00 for the rest of this period"
    )
    expect(dialog.get_by_test_id("preview-next-invoice")).to_have_text(
        f"{long_date(period_end)} · $379.00"
    )
    lines = dialog.get_by_test_id("preview-line")
    expect(lines.filter(has_text="Unused time on 1 \u00d7 Starter")).to_contain_text("-$19.00")
    expect(lines.filter(has_text="Remaining time on 1 \u00d7 Enterprise")).to_contain_text(
        "$199.00"
    )
    # Escape is a cancel too.
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.get_by_test_id("message")).to_have_text("Nothing was changed.")
    assert status(served, org)["planUid"] == "starter"

    page.get_by_test_id("choose-enterprise").click()
    confirm_step(page, "Switch to Enterprise (monthly)")
    close_step(page, "confirm-ok")
    expect(page.get_by_test_id("message")).to_have_text("Switched to Enterprise.")
    expect(page.get_by_test_id("plan")).to_have_attribute("data-plan", "enterprise")
    assert status(served, org)["planUid"] == "enterprise"

    # A new interval starts a new period: billed at once, less the unused month.
    page.get_by_test_id("interval-year").check()
    expect(page.get_by_test_id("choose-enterprise")).to_have_text("Switch to this plan")
    page.get_by_test_id("choose-enterprise").click()
    dialog = confirm_step(page, "Switch to Enterprise (yearly)")
    due = dialog.get_by_test_id("preview-due-now")
    expect(due).to_have_text(re.compile(r"^\$1,\d{3}\.\d\d$"))
    close_step(page, "confirm-ok")
    expect(page.get_by_test_id("plan")).to_contain_text("Enterprise · yearly")
    assert status(served, org)["billingInterval"] == "YEAR"


def test_seats_are_bought_at_checkout_and_changed_after_a_preview(page: Page, served: str) -> None:
    from playwright.sync_api import expect

    org = "org_seats"
    sign_in(page, served, org)
    card = page.get_by_test_id("plan-business")
    expect(card).to_contain_text("$15.00 / seat / month")
    seats = card.get_by_test_id("seats-input-business")
    expect(card.get_by_test_id("seats-business")).to_contain_text("5 to 500 seats")
    expect(seats).to_have_value("5")
    expect(seats).to_have_attribute("min", "5")
    expect(seats).to_have_attribute("max", "500")
    # Plans not priced per seat have no seat control.
    expect(page.get_by_test_id("seats-pro")).to_have_count(0)

    seats.fill("7")
    start_checkout(page, served, "business")
    expect(page.locator("body")).to_contain_text("$105.00")
    pay(page, "pm_card_visa")
    page.wait_for_url(f"{served}/demo/")
    expect(page.get_by_test_id("status")).to_have_text("active")
    expect(page.get_by_test_id("seats")).to_have_text("7")
    expect(page.get_by_test_id("entitlements").locator("[data-key=seats]")).to_have_text("seats: 7")
    expect(page.get_by_test_id("seats-range")).to_have_text("5 to 500 seats, 7 held")
    quantity = page.get_by_test_id("seats-quantity")
    expect(quantity).to_have_value("7")

    # Fewer than the plan sells: the engine's typed error, and no confirm step.
    quantity.fill("2")
    page.get_by_test_id("seats-submit").click()
    message = page.get_by_test_id("message")
    expect(message).to_have_attribute("data-code", "VALIDATION")
    expect(message).to_contain_text("sold from 5 seats")
    expect(page.get_by_test_id("confirm")).to_be_hidden()

    quantity.fill("9")
    page.get_by_test_id("seats-submit").click()
    dialog = confirm_step(page, "Change to 9 seats")
    expect(dialog.get_by_test_id("preview-proration")).to_have_text(
        "$30.00 for the rest of this period"
    )
    expect(dialog.get_by_test_id("preview-next-invoice")).to_contain_text("$165.00")
    close_step(page, "confirm-cancel")
    assert status(served, org)["seats"] == 7

    page.get_by_test_id("seats-submit").click()
    confirm_step(page, "Change to 9 seats")
    close_step(page, "confirm-ok")
    expect(message).to_have_text("You now have 9 seats.")
    expect(page.get_by_test_id("seats")).to_have_text("9")
    expect(page.get_by_test_id("entitlements").locator("[data-key=seats]")).to_have_text("seats: 9")
    assert status(served, org)["seats"] == 9


def test_cancel_now_asks_first_and_leaves_an_ended_subscription(page: Page, served: str) -> None:
    from playwright.sync_api import expect

    org = "org_cancel_now"
    sign_in(page, served, org)
    subscribe(page, served, "pro")

    page.get_by_test_id("cancel-now").click()
    dialog = confirm_step(page, "Cancel now")
    expect(dialog.get_by_test_id("cancel-now-warning")).to_contain_text("access stops at once")
    close_step(page, "confirm-cancel")
    expect(page.get_by_test_id("status")).to_have_text("active")
    # Enter at once presses the focused button, which is Cancel: a stray key cancels nothing.
    page.get_by_test_id("cancel-now").click()
    confirm_step(page, "Cancel now")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("confirm")).to_be_hidden()
    expect(page.get_by_test_id("message")).to_have_text("Nothing was changed.")
    assert status(served, org)["status"] == "active"

    page.get_by_test_id("cancel-now").click()
    confirm_step(page, "Cancel now")
    close_step(page, "confirm-ok")
    expect(page.get_by_test_id("message")).to_have_text(
        "Your subscription is canceled: it has ended."
    )
    expect(page.get_by_test_id("status")).to_have_text("canceled")
    ended = status(served, org)
    assert ended["status"] == "canceled"
    assert ended["endedAt"] is not None
    expect(page.get_by_test_id("ended")).to_have_text(long_date(str(ended["endedAt"])))
    # Nothing says the period runs on, nor offers to cancel again.
    expect(page.get_by_test_id("period-end")).to_have_count(0)
    expect(page.get_by_test_id("cancels")).to_have_count(0)
    expect(page.get_by_test_id("subscription")).not_to_contain_text("Current period ends")
    expect(page.get_by_test_id("access")).to_have_text("no")
    for action in ("cancel-now", "cancel-at-period-end", "resume"):
        expect(page.get_by_test_id(action)).to_be_hidden()
    expect(page.get_by_test_id("ended-note")).to_be_visible()
    # Every plan is offered to subscribe again, the old one too.
    for plan in ("starter", "pro", "business", "enterprise"):
        expect(page.get_by_test_id(f"choose-{plan}")).to_have_text("Subscribe")
        expect(page.get_by_test_id(f"choose-{plan}")).to_be_enabled()

    subscribe(page, served, "starter")
    expect(page.get_by_test_id("period-end")).to_be_visible()
    expect(page.get_by_test_id("ended")).to_have_count(0)


def test_promotion_codes_at_checkout_and_on_the_subscription(page: Page, served: str) -> None:
    from playwright.sync_api import expect

    org = "org_promo"
    promotion_code(served, "LAUNCH20", percent_off=20, duration="repeating", duration_in_months=3)
    promotion_code(served, "TENOFF", amount_off=1000, currency="usd", duration="forever")
    sign_in(page, served, org)
    message = page.get_by_test_id("message")
    code = page.get_by_test_id("promotion-code")
    expect(page.get_by_test_id("promotion-apply")).to_be_hidden()

    # An unknown code: refused with its reason, and the page stays.
    code.fill("NOSUCHCODE")
    page.get_by_test_id("choose-pro").click()
    expect(message).to_have_attribute("data-code", "INVALID_PROMOTION_CODE")
    expect(message).to_have_attribute("data-reason", "UNKNOWN")
    expect(message).to_contain_text("NOSUCHCODE")
    expect(message).to_contain_text("(unknown)")
    assert page.url == f"{served}/demo/"

    code.fill("launch20")
    start_checkout(page, served, "pro")
    expect(page.locator("body")).to_contain_text("$39.20")  # 20% off $49.00
    pay(page, "pm_card_visa")
    page.wait_for_url(f"{served}/demo/")
    expect(page.get_by_test_id("status")).to_have_text("active")
    discount = page.get_by_test_id("discounts").get_by_test_id("discount")
    expect(discount).to_have_count(1)
    expect(discount).to_have_attribute("data-code", "LAUNCH20")
    expect(discount).to_contain_text(re.compile(r"^LAUNCH20: 20% off for 3 months, until \w+ "))
    expect(page.get_by_test_id("invoices")).to_contain_text("paid · $39.20")

    # The discount held shows in a switch's preview: 20% off the renewal, not the prorations.
    code.fill("")
    page.get_by_test_id("choose-enterprise").click()
    dialog = confirm_step(page, "Switch to Enterprise (monthly)")
    expect(dialog.get_by_test_id("preview-discount")).to_contain_text("-$39.80")
    expect(dialog.get_by_test_id("preview-code")).to_have_count(0)
    close_step(page, "confirm-cancel")

    # A switch carries the code typed: one that cannot be used stops at the preview.
    code.fill("NOSUCHCODE")
    page.get_by_test_id("choose-enterprise").click()
    idle(page)
    expect(message).to_have_attribute("data-code", "INVALID_PROMOTION_CODE")
    expect(message).to_have_attribute("data-reason", "UNKNOWN")
    expect(page.get_by_test_id("confirm")).to_be_hidden()
    assert status(served, org)["planUid"] == "pro"

    # A code on the current plan alone replaces the discount, previewed like any change.
    code.fill("TENOFF")
    page.get_by_test_id("promotion-apply").click()
    dialog = confirm_step(page, "Apply TENOFF to Pro")
    expect(dialog.get_by_test_id("preview-code")).to_contain_text("TENOFF")
    expect(dialog.get_by_test_id("preview-discount")).to_contain_text("-$10.00")
    expect(dialog.get_by_test_id("preview-next-invoice")).to_contain_text("$39.00")
    close_step(page, "confirm-ok")
    expect(message).to_have_text("Promotion code TENOFF applied.")
    expect(discount).to_have_attribute("data-code", "TENOFF")
    expect(discount).to_have_text("TENOFF: $10.00 off forever")
    discounts = status(served, org)["discounts"]
    assert discounts == [{"promotionCode": "TENOFF", "percentOff": None}]


def test_the_billing_portal_updates_the_card_and_cancels_then_returns_to_the_spa(
    page: Page, served: str
) -> None:
    from playwright.sync_api import expect

    org = "org_portal_trip"
    sign_in(page, served, org)
    subscribe(page, served, "pro")
    period_end = str(status(served, org)["currentPeriodEnd"])

    page.get_by_test_id("portal").click()
    portal = re.compile(re.escape(f"{served}/stripe-emulator/billing_portal/bps_") + r"\w+$")
    page.wait_for_url(portal)
    # The card paid at Checkout is the customer's default: renewals are paid with it.
    expect(page.locator("body")).to_contain_text("Payment method: visa •••• 4242")
    # A card that cannot be attached: the reason on the portal page, which still works.
    page.locator("input[name=card][value=pm_card_chargeDeclined]").check()
    page.get_by_role("button", name="Update payment method").click()
    expect(page.get_by_role("alert")).to_have_text("Your card was declined.")
    page.locator("input[name=card][value=pm_card_chargeCustomerFail]").check()
    page.get_by_role("button", name="Update payment method").click()
    page.wait_for_url(portal)
    expect(page.locator("body")).to_contain_text("Payment method: visa •••• 0341")

    page.get_by_role("button", name="Cancel plan").click()
    page.wait_for_url(portal)
    expect(page.locator("body")).to_contain_text("Cancels on")
    # The engine learns of it from Stripe's webhook, in the background.
    wait_for(lambda: status(served, org)["cancelAtPeriodEnd"] is True)

    page.get_by_role("link", name="Return").click()
    page.wait_for_url(f"{served}/demo/")
    idle(page)
    expect(page.get_by_test_id("status")).to_have_text("active")
    expect(page.get_by_test_id("cancels")).to_have_text(f"at period end, {long_date(period_end)}")
    expect(page.get_by_test_id("resume")).to_be_visible()
    # The card chosen in the portal is the default the SPA lists.
    default = page.get_by_test_id("card").filter(has=page.get_by_test_id("card-default"))
    expect(default.get_by_test_id("card-name")).to_have_text("Visa •••• 0341")


def test_the_subscribed_billing_page_as_the_readme_shows_it(
    page: Page, served: str, tmp_path: Path
) -> None:
    """Eight seats of Business with a promotion code: every section of the page is filled."""
    from playwright.sync_api import expect

    org = "org_readme"
    promotion_code(served, "WELCOME15", percent_off=15, duration="repeating", duration_in_months=6)
    sign_in(page, served, org, "billing@readme.example")
    page.get_by_test_id("seats-input-business").fill("8")
    page.get_by_test_id("promotion-code").fill("WELCOME15")
    subscribe(page, served, "business")
    expect(page.get_by_test_id("seats")).to_have_text("8")
    expect(page.get_by_test_id("discount")).to_contain_text("WELCOME15: 15% off for 6 months")
    expect(page.get_by_test_id("seats-form")).to_be_visible()
    expect(page.get_by_test_id("meter-api_calls")).to_be_visible()
    expect(page.get_by_test_id("invoices")).to_contain_text("paid · $102.00")  # $120 less 15%
    expect(page.get_by_test_id("card-default")).to_be_visible()
    page.get_by_test_id("promotion-code").fill("")
    page.get_by_test_id("promotion-code").blur()
    readme_picture(page, tmp_path)


CARDS = "{ paymentMethods { id brand last4 isDefault } }"


def test_payment_methods_are_added_made_default_and_removed(page: Page, served: str) -> None:
    from playwright.sync_api import expect

    org = "org_cards_page"
    sign_in(page, served, org)
    expect(page.get_by_test_id("no-cards")).to_be_visible()
    subscribe(page, served, "pro")
    cards = page.get_by_test_id("cards").get_by_test_id("card")
    message = page.get_by_test_id("message")
    # The card paid at Checkout is saved and is the default for renewals.
    expect(cards).to_have_count(1)
    visa = cards.filter(has_text="Visa •••• 4242")
    expect(visa.get_by_test_id("card-default")).to_have_text("default")
    expect(visa.get_by_test_id("card-expiry")).to_have_text(re.compile(r"^expires \d\d/20\d\d$"))
    expect(visa.get_by_test_id("make-default")).to_have_count(0)

    # Add a card: a SetupIntent confirmed on the emulator's hosted page, then back.
    page.get_by_test_id("add-card").click()
    page.wait_for_url(re.compile(re.escape(f"{served}/stripe-emulator/setup/seti_")))
    page.locator("input[name=card][value=pm_card_chargeDeclined]").check()
    page.get_by_role("button", name="Save card").click()
    expect(page.get_by_role("alert")).to_have_text("Your card was declined.")
    page.locator("input[name=card][value=pm_card_chargeCustomerFail]").check()
    page.get_by_role("button", name="Save card").click()
    page.wait_for_url(f"{served}/demo/")  # the SetupIntent's secret is tidied away
    expect(message).to_have_text("Card saved.")
    idle(page)
    expect(cards).to_have_count(2)
    other = cards.filter(has_text="Visa •••• 0341")
    expect(other.get_by_test_id("card-default")).to_have_count(0)
    expect(visa.get_by_test_id("card-default")).to_be_visible()

    other.get_by_test_id("make-default").click()
    expect(message).to_have_text("Visa •••• 0341 is your default: renewals charge it.")
    expect(other.get_by_test_id("card-default")).to_be_visible()
    expect(visa.get_by_test_id("card-default")).to_have_count(0)
    saved = {c["last4"]: c["isDefault"] for c in api(served, CARDS, org)["paymentMethods"]}
    assert saved == {"4242": False, "0341": True}

    # Removing asks first; Cancel keeps the card.
    visa.get_by_test_id("remove-card").click()
    dialog = confirm_step(page, "Remove Visa •••• 4242")
    expect(dialog.get_by_test_id("remove-card-warning")).to_contain_text("for good")
    close_step(page, "confirm-cancel")
    expect(cards).to_have_count(2)
    visa.get_by_test_id("remove-card").click()
    confirm_step(page, "Remove Visa •••• 4242")
    close_step(page, "confirm-ok")
    expect(message).to_have_text("Visa •••• 4242 removed.")
    expect(cards).to_have_count(1)
    assert [c["last4"] for c in api(served, CARDS, org)["paymentMethods"]] == ["0341"]

    # The card the live subscription pays with stays: the engine says why.
    other.get_by_test_id("remove-card").click()
    dialog = confirm_step(page, "Remove Visa •••• 0341")
    expect(dialog.get_by_test_id("remove-card-warning")).to_contain_text("It is your default")
    close_step(page, "confirm-ok")
    expect(message).to_have_attribute("data-code", "PAYMENT_METHOD_IN_USE")
    expect(message).to_have_class("error")
    expect(cards).to_have_count(1)
    assert [c["last4"] for c in api(served, CARDS, org)["paymentMethods"]] == ["0341"]
