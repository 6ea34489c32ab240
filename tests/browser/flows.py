"""What the browser tests do again and again on the demo SPA: sign in, buy a plan on the hosted
Checkout page, read the confirm step, and make Stripe objects at the mounted emulator."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from revenue_engine.gateway import EMULATOR_API_KEY

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

# The README shows it. Rewritten when missing or with UPDATE_SCREENSHOT=1 (`make screenshot`),
# so that an ordinary test run leaves the work tree as it was.
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "demo.png"


def sign_in(page: Page, base: str, org: str, email: str = "") -> None:
    from playwright.sync_api import expect

    page.goto(f"{base}/demo/")
    expect(page.get_by_test_id("choose-pro")).to_be_visible()
    page.get_by_test_id("org").fill(org)
    page.get_by_test_id("email").fill(email or f"{org}@example.com")
    page.get_by_test_id("signin-submit").click()
    expect(page.get_by_test_id("who")).to_have_text(f"signed in as {org}")
    idle(page)


def idle(page: Page) -> None:
    """Wait until no request of the SPA is running (its <main aria-busy>)."""
    from playwright.sync_api import expect

    expect(page.locator("main")).to_have_attribute("aria-busy", "false")


def start_checkout(page: Page, base: str, plan: str) -> None:
    """Click the plan's button; the SPA follows ``checkoutUrl`` to the hosted page."""
    from playwright.sync_api import expect

    page.get_by_test_id(f"choose-{plan}").click()
    page.wait_for_url(re.compile(re.escape(f"{base}/stripe-emulator/checkout/cs_")))
    expect(page.get_by_role("heading", name="Checkout")).to_be_visible()


def pay(page: Page, card: str) -> None:
    page.locator(f"input[name=card][value={card}]").check()
    page.get_by_role("button", name=re.compile(r"^Pay ")).click()


def subscribe(page: Page, base: str, plan: str) -> None:
    from playwright.sync_api import expect

    start_checkout(page, base, plan)
    pay(page, "pm_card_visa")
    # Back on the SPA's success URL, which it verifies and then tidies away.
    page.wait_for_url(f"{base}/demo/")
    expect(page.get_by_test_id("message")).to_have_text(re.compile("^Payment received"))
    expect(page.get_by_test_id("status")).to_have_text("active")


def confirm_step(page: Page, title: str) -> Locator:
    """The open confirm dialog, checked to be the one titled ``title``."""
    from playwright.sync_api import expect

    dialog = page.get_by_test_id("confirm")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_test_id("confirm-title")).to_have_text(title)
    return dialog


def close_step(page: Page, button: str) -> None:
    """Press ``confirm-ok`` or ``confirm-cancel``; the dialog closes."""
    from playwright.sync_api import expect

    page.get_by_test_id(button).click()
    expect(page.get_by_test_id("confirm")).to_be_hidden()
    idle(page)


def long_date(iso: str) -> str:
    moment = datetime.fromisoformat(iso)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return f"{moment:%B} {moment.day}, {moment.year}"


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Until ``check()`` holds: a webhook from the emulator reaches the engine in the background."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def stripe_post(base: str, path: str, data: dict[str, Any]) -> dict[str, Any]:
    """A Stripe API call to the mounted emulator, as the dashboard would make it."""
    response = httpx.post(
        f"{base}/stripe-emulator/v1/{path}",
        data=data,
        headers={"authorization": f"Bearer {EMULATOR_API_KEY}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def promotion_code(base: str, code: str, **coupon: Any) -> str:
    """A coupon and a customer-facing code for it, made at Stripe."""
    made = stripe_post(base, "coupons", coupon)
    promo = stripe_post(
        base,
        "promotion_codes",
        {"code": code, "promotion[type]": "coupon", "promotion[coupon]": made["id"]},
    )
    return str(promo["id"])


def readme_picture(page: Page, tmp_path: Path) -> None:
    """Take the whole page; it becomes ``docs/demo.png`` when asked to (see SCREENSHOT)."""
    shot = tmp_path / "demo.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(b"\x89PNG")
    if os.environ.get("UPDATE_SCREENSHOT") or not SCREENSHOT.exists():
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)
