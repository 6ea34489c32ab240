"""Browser fixtures: the engine as ``make run`` serves it (embedded emulator, demo SPA, GraphiQL)
on a loopback port, and Debian's Chromium driven by Playwright for Python.

No browser is downloaded: Playwright launches ``/usr/bin/chromium`` (``make test`` installs the
``chromium`` package when it is missing and it can). Without Chromium or Playwright the browser
tests are skipped with the reason, except under ``CI``, where that is a failure.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.conftest import serving_app

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000


def _unavailable(reason: str) -> None:
    # CI must run the browser tests: there, a missing browser is a failure, not a skip.
    if os.environ.get("CI"):
        pytest.fail(f"browser tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    """The real app on a free port; its public URL is that address (Checkout redirects back)."""
    with serving_app() as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if importlib.util.find_spec("playwright") is None:
        _unavailable("the Python package `playwright` is not installed (pip install -e '.[dev]')")
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        _unavailable(
            f"{CHROMIUM} is missing (Debian: apt-get install chromium; `make test` does it)"
        )
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser profile (own localStorage) per test; an uncaught script error fails it."""
    context = browser.new_context(
        locale="en-US", timezone_id="UTC", viewport={"width": 1200, "height": 800}
    )
    context.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    context.on("weberror", lambda error: errors.append(str(error.error)))
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


def api(base: str, query: str, org: str | None = None, **variables: Any) -> dict[str, Any]:
    """The GraphQL API as the SPA calls it (development headers), to check what the page shows."""
    headers = {"x-organization-id": org} if org else {}
    response = httpx.post(
        f"{base}/graphql",
        json={"query": query, "variables": variables},
        headers=headers,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data
