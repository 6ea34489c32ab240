"""Shared pieces of the hosted pages: the layout, money and dates, the test-card picker.

Plain HTML with no JavaScript; every link and form action is relative, so the pages work
wherever the emulator is mounted.
"""

from __future__ import annotations

from decimal import Decimal
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse

from stripe_emulator.cards import PAGE_CHOICES, TEST_BANK_ACCOUNTS, TEST_CARDS
from stripe_emulator.periods import utc_datetime
from stripe_emulator.state import Ctx
from stripe_emulator.urls import root_url

if TYPE_CHECKING:
    from stripe_emulator.emulator import Emulator

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#1a1a2e}
.box{border:1px solid #ddd;border-radius:8px;padding:1rem 1.25rem;margin:1rem 0}
.error{background:#fdecea;border-color:#f5c2c0;color:#8a1c1c}
.muted{color:#666;font-size:.9rem} button{padding:.5rem 1rem;margin:.25rem 0}
label{display:block;margin:.35rem 0} table{width:100%;border-collapse:collapse}
td,th{padding:.25rem 0} th{text-align:left;font-weight:600}
"""


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<p class='muted'>Stripe emulator · test mode</p><h1>{escape(title)}</h1>{body}"
        f"</body></html>"
    )
    return HTMLResponse(html, status_code=status)


def money(amount: int | Decimal, currency: str) -> str:
    """Minor units as a price: ``$12.50``, a credit as ``-$12.50``, ``12.50 EUR``."""
    sign, units = ("-", -amount / 100) if amount < 0 else ("", amount / 100)
    if currency.lower() == "usd":
        return f"{sign}${units:,.2f}"
    return f"{sign}{units:,.2f} {currency.upper()}"


def date(timestamp: int | None) -> str:
    return utc_datetime(timestamp).strftime("%Y-%m-%d") if timestamp else "—"


def card_choices(name: str = "card") -> str:
    options = []
    for index, card_id in enumerate(PAGE_CHOICES):
        card = TEST_CARDS[card_id]
        checked = " checked" if index == 0 else ""
        options.append(
            f"<label><input type='radio' name='{name}' value='{card_id}'{checked}> "
            f"{escape(card.label)} <span class='muted'>(•••• {card.last4})</span></label>"
        )
    return "".join(options)


def bank_choices(name: str = "card", *, checked_first: bool = False) -> str:
    """The test bank accounts (ACH Direct Debit, settled later) as radio buttons."""
    options = []
    for index, bank_id in enumerate(TEST_BANK_ACCOUNTS):
        account = TEST_BANK_ACCOUNTS[bank_id]
        checked = " checked" if checked_first and index == 0 else ""
        options.append(
            f"<label><input type='radio' name='{name}' value='{bank_id}'{checked}> "
            f"{escape(account.label)} <span class='muted'>(routing "
            f"{account.routing_number})</span></label>"
        )
    return "".join(options)


async def form_data(request: Request) -> dict[str, str]:
    return dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))


def page_ctx(emulator: Emulator, request: Request) -> Ctx:
    return Ctx(emulator.state, base_url=root_url(request))


def page_url(request: Request, path: str) -> str:
    """The absolute URL of the hosted page at ``path`` (``/invoices/in_…``), where a POST's
    303 sends the browser: on the address the browser used, mount prefix included."""
    return root_url(request) + path


def not_found(what: str) -> HTMLResponse:
    return page("Not found", f"<p>No such {escape(what)}.</p>", status=404)
