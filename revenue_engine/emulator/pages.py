"""Hosted pages: Checkout, the billing portal, invoices and receipts.

Plain HTML forms, no JavaScript, so a person can click through them in a browser and a test can
drive them with any HTTP client (GET the page, POST the form, follow the 303). All links and form
actions are relative, so the pages work wherever the emulator is mounted; a page re-rendered by a
failed POST (``…/{id}/pay`` after a decline) writes them relative to that address, so that trying
again or cancelling from it reaches ``…/{id}/<action>`` too.

* ``GET  /checkout/{id}`` — plan, amount and interval; test-card choice; Pay / Cancel.
* ``POST /checkout/{id}/pay`` (``card``, ``email``, ``name``) — 303 to ``success_url`` with
  ``{CHECKOUT_SESSION_ID}`` filled in; a decline re-renders the page (HTTP 402) and changes nothing.
* ``POST|GET /checkout/{id}/cancel`` — 303 to ``cancel_url``; the session stays open.
* ``GET  /billing_portal/{id}`` and ``POST …/cancel|renew|payment_method`` (``subscription``,
  ``card``) — portal actions, then 303 back (or to the flow's redirect).
* ``GET  /invoices/{id}`` (+ ``POST …/pay``), ``GET /invoices/{id}/pdf``, ``GET /receipts/{id}``.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from revenue_engine.emulator.billing import TIMES, current_period, items_of, recurring_of
from revenue_engine.emulator.cards import PAGE_CHOICES, TEST_CARDS
from revenue_engine.emulator.errors import StripeError
from revenue_engine.emulator.invoicing import attempt_payment
from revenue_engine.emulator.periods import utc_datetime
from revenue_engine.emulator.resources import checkout, portal
from revenue_engine.emulator.resources.payment_methods import resolve
from revenue_engine.emulator.state import Ctx
from revenue_engine.emulator.store import JSON

if TYPE_CHECKING:
    from revenue_engine.emulator.emulator import Emulator

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#1a1a2e}
.box{border:1px solid #ddd;border-radius:8px;padding:1rem 1.25rem;margin:1rem 0}
.error{background:#fdecea;border-color:#f5c2c0;color:#8a1c1c}
.muted{color:#666;font-size:.9rem} button{padding:.5rem 1rem;margin:.25rem 0}
label{display:block;margin:.35rem 0} table{width:100%;border-collapse:collapse}
td{padding:.25rem 0}
"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<p class='muted'>Stripe emulator · test mode</p><h1>{escape(title)}</h1>{body}"
        f"</body></html>"
    )
    return HTMLResponse(html, status_code=status)


def money(amount: int, currency: str) -> str:
    if currency.lower() == "usd":
        return f"${amount / 100:,.2f}"
    return f"{amount / 100:,.2f} {currency.upper()}"


def _date(timestamp: int | None) -> str:
    return utc_datetime(timestamp).strftime("%Y-%m-%d") if timestamp else "—"


def _card_choices(name: str = "card") -> str:
    options = []
    for index, card_id in enumerate(PAGE_CHOICES):
        card = TEST_CARDS[card_id]
        checked = " checked" if index == 0 else ""
        options.append(
            f"<label><input type='radio' name='{name}' value='{card_id}'{checked}> "
            f"{escape(card.label)} <span class='muted'>(•••• {card.last4})</span></label>"
        )
    return "".join(options)


async def _form(request: Request) -> dict[str, str]:
    return dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))


# How a page's relative links reach ``…/{id}/<action>``: from the page itself (``…/{id}``) they
# need the id; from a re-rendered POST answer (``…/{id}/<action>``) they are siblings.
def _at_page(object_id: str) -> str:
    return f"{escape(object_id)}/"


AFTER_POST = ""


def _ctx(emulator: Emulator, request: Request) -> Ctx:
    return Ctx(emulator.state, base_url=str(request.base_url))


def _not_found(what: str) -> HTMLResponse:
    return _page("Not found", f"<p>No such {escape(what)}.</p>", status=404)


# --------------------------------------------------------------------------- checkout
def _checkout_page(
    ctx: Ctx, session: JSON, here: str, error: str | None = None, status: int = 200
) -> Response:
    if session["status"] == "complete":
        target = checkout.success_redirect(session)
        link = f"<p><a href='{escape(target)}'>Continue</a></p>" if target else ""
        return _page(
            "Payment complete", f"<div class='box'>Thank you — this session is paid.</div>{link}"
        )
    if session["status"] == "expired":
        return _page(
            "Session expired", "<div class='box'>This Checkout Session has expired.</div>", 410
        )
    rows = []
    for item in ctx.store.priv(session["id"]).get("items", []):
        price = item["price"]
        every = ""
        if price["recurring"]:
            interval, count = recurring_of(price)
            every = f" / {interval}" if count == 1 else f" every {count} {interval}s"
        rows.append(
            f"<tr><td>{escape(str(item['description']))} {TIMES} {item['quantity']}</td>"
            f"<td style='text-align:right'>{money(int(item['amount_total']), item['currency'])}"
            f"{escape(every)}</td></tr>"
        )
    trial = ctx.store.priv(session["id"]).get("trial_period_days")
    trial_note = f"<p>{int(trial)}-day free trial, then billed as shown.</p>" if trial else ""
    total = money(int(session["amount_subtotal"]), session["currency"])
    banner = f"<div class='box error' role='alert'>{escape(error)}</div>" if error else ""
    email = session["customer_email"]
    if session["customer"]:
        customer = ctx.store.get("customer", session["customer"])
        email = email or (customer or {}).get("email")
    body = (
        f"{banner}<div class='box'><table>{''.join(rows)}</table>"
        f"<p><strong>Total: {total}</strong></p>{trial_note}</div>"
        f"<form method='post' action='{here}pay' class='box'>"
        f"<label>Email <input name='email' type='email' value='{escape(email or '')}'></label>"
        f"<label>Name on card <input name='name' value=''></label>"
        f"<fieldset><legend>Test card</legend>{_card_choices()}</fieldset>"
        f"<button type='submit'>Pay {total}</button></form>"
        f"<form method='post' action='{here}cancel'><button type='submit'>Cancel</button></form>"
    )
    return _page("Checkout", body, status)


def checkout_routes(emulator: Emulator) -> list[Route]:
    async def show(request: Request) -> Response:
        ctx = _ctx(emulator, request)
        with emulator.state.lock:
            session = ctx.store.get("checkout.session", request.path_params["id"])
            if session is None:
                return _not_found("checkout session")
            checkout.expire_if_due(ctx, session)
            return _checkout_page(ctx, session, _at_page(session["id"]))

    async def pay(request: Request) -> Response:
        form = await _form(request)
        ctx = _ctx(emulator, request)
        with emulator.state.lock:
            session = ctx.store.get("checkout.session", request.path_params["id"])
            if session is None:
                return _not_found("checkout session")
            checkout.expire_if_due(ctx, session)
            error = checkout.complete(
                ctx,
                session,
                form.get("card", "pm_card_visa"),
                form.get("email") or None,
                form.get("name") or None,
            )
            if error is not None:
                return _checkout_page(ctx, session, AFTER_POST, error.message, error.status)
            target = checkout.success_redirect(session)
            if target is None:
                return _checkout_page(ctx, session, AFTER_POST)
        return RedirectResponse(target, status_code=303)

    async def cancel(request: Request) -> Response:
        ctx = _ctx(emulator, request)
        with emulator.state.lock:
            session = ctx.store.get("checkout.session", request.path_params["id"])
            if session is None:
                return _not_found("checkout session")
            target = session["cancel_url"]
        if not target:
            return _page("Checkout canceled", "<p>You can close this page.</p>")
        return RedirectResponse(target, status_code=303)

    return [
        Route("/checkout/{id}", show, methods=["GET"]),
        Route("/checkout/{id}/pay", pay, methods=["POST"]),
        Route("/checkout/{id}/cancel", cancel, methods=["GET", "POST"]),
    ]


# --------------------------------------------------------------------------- portal
def _portal_page(
    ctx: Ctx, session: JSON, here: str, error: str | None = None, status: int = 200
) -> Response:
    customer = ctx.store.require("customer", session["customer"])
    blocks = []
    for sub in portal.portal_subscriptions(ctx, session):
        names = ", ".join(portal.describe_subscription(ctx, sub))
        amount = sum(
            int(i["price"]["unit_amount"] or 0) * int(i["quantity"] or 0) for i in items_of(sub)
        )
        interval, _ = recurring_of(items_of(sub)[0]["price"])
        end = _date(current_period(sub)[1])
        sub_id = escape(sub["id"])
        if sub["cancel_at_period_end"]:
            state = f"Cancels on {end}"
            action = (
                f"<form method='post' action='{here}renew'>"
                f"<input type='hidden' name='subscription' value='{sub_id}'>"
                f"<button type='submit'>Don't cancel</button></form>"
            )
        else:
            state = f"Renews on {end}"
            action = (
                f"<form method='post' action='{here}cancel'>"
                f"<input type='hidden' name='subscription' value='{sub_id}'>"
                f"<button type='submit'>Cancel plan</button></form>"
            )
        blocks.append(
            f"<div class='box'><strong>{escape(names)}</strong> — "
            f"{money(amount, sub['currency'])} / {escape(interval)}<br>"
            f"<span class='muted'>Status: {escape(sub['status'])} · {escape(state)}</span>"
            f"{action}</div>"
        )
    pm_id = customer["invoice_settings"]["default_payment_method"]
    pm = ctx.store.get("payment_method", pm_id) if pm_id else None
    card = f"{pm['card']['brand']} •••• {pm['card']['last4']}" if pm else "none"
    banner = f"<div class='box error' role='alert'>{escape(error)}</div>" if error else ""
    back = session["return_url"]
    body = (
        f"{banner}<p>{escape(customer['email'] or customer['id'])}</p>"
        f"{''.join(blocks) or '<p>No active subscriptions.</p>'}"
        f"<form method='post' action='{here}payment_method' class='box'>"
        f"<p>Payment method: {escape(card)}</p>{_card_choices()}"
        f"<button type='submit'>Update payment method</button></form>"
        + (f"<p><a href='{escape(back)}'>Return</a></p>" if back else "")
    )
    return _page("Billing", body, status)


def portal_routes(emulator: Emulator) -> list[Route]:
    def load(ctx: Ctx, request: Request) -> JSON | None:
        return ctx.store.get("billing_portal.session", request.path_params["id"])

    async def show(request: Request) -> Response:
        ctx = _ctx(emulator, request)
        with emulator.state.lock:
            session = load(ctx, request)
            if session is None:
                return _not_found("portal session")
            return _portal_page(ctx, session, _at_page(session["id"]))

    def done(request: Request, session: JSON) -> Response:
        flow = session.get("flow") or {}
        redirect = (flow.get("after_completion") or {}).get("redirect") or {}
        target = redirect.get("return_url") or str(request.url_for("portal_page", id=session["id"]))
        return RedirectResponse(target, status_code=303)

    async def act(request: Request) -> Response:
        form = await _form(request)
        action = request.path_params["action"]
        ctx = _ctx(emulator, request)
        with emulator.state.lock:
            session = load(ctx, request)
            if session is None:
                return _not_found("portal session")
            try:
                if action in ("cancel", "renew"):
                    portal.cancel_at_period_end(
                        ctx, session, form.get("subscription", ""), cancel=action == "cancel"
                    )
                elif action == "payment_method":
                    error = portal.update_payment_method(ctx, session, form.get("card", ""))
                    if error is not None:
                        return _portal_page(ctx, session, AFTER_POST, error.message, error.status)
                else:
                    return _not_found("portal action")
            except StripeError as error:
                return _portal_page(ctx, session, AFTER_POST, error.message, error.status)
        return done(request, session)

    return [
        Route("/billing_portal/{id}", show, methods=["GET"], name="portal_page"),
        Route("/billing_portal/{id}/{action}", act, methods=["POST"]),
    ]


# --------------------------------------------------------------------------- invoices
def _invoice_page(
    ctx: Ctx, inv: JSON, here: str, error: str | None = None, status: int = 200
) -> Response:
    rows = "".join(
        f"<tr><td>{escape(str(line['description']))}</td>"
        f"<td style='text-align:right'>{money(int(line['amount']), inv['currency'])}</td></tr>"
        for line in inv["lines"]["data"]
    )
    pay = ""
    if inv["status"] == "open":
        pay = (
            f"<form method='post' action='{here}pay' class='box'>{_card_choices()}"
            f"<button type='submit'>Pay {money(int(inv['amount_remaining']), inv['currency'])}"
            f"</button></form>"
        )
    banner = f"<div class='box error' role='alert'>{escape(error)}</div>" if error else ""
    body = (
        f"{banner}<div class='box'><p>Invoice {escape(inv['number'] or inv['id'])} · "
        f"status <strong>{escape(inv['status'])}</strong></p><table>{rows}</table>"
        f"<p>Amount due: {money(int(inv['amount_due']), inv['currency'])} · paid "
        f"{money(int(inv['amount_paid']), inv['currency'])}</p></div>{pay}"
        f"<p><a href='{here}pdf'>Download PDF</a></p>"
    )
    return _page("Invoice", body, status)


def _pdf(lines: list[str]) -> bytes:
    """A minimal one-page PDF with the given text lines (valid enough for any viewer)."""
    text = (
        "BT /F1 11 Tf 50 780 Td 14 TL "
        + " ".join(
            "(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") '"
            for line in lines
        )
        + " ET"
    )
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(text)} >>\nstream\n{text}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = "%PDF-1.4\n"
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out.encode("latin-1", "replace")))
        out += f"{number} 0 obj\n{obj}\nendobj\n"
    xref = len(out.encode("latin-1", "replace"))
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n"
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    return out.encode("latin-1", "replace")


def invoice_routes(emulator: Emulator) -> list[Route]:
    async def show(request: Request) -> Response:
        ctx = _ctx(emulator, request)
        with emulator.state.lock:
            inv = ctx.store.get("invoice", request.path_params["id"])
            if inv is None or inv["status"] == "draft":
                return _not_found("invoice")
            return _invoice_page(ctx, inv, _at_page(inv["id"]))

    async def pay(request: Request) -> Response:
        form = await _form(request)
        ctx = _ctx(emulator, request)
        with emulator.state.lock:
            inv = ctx.store.get("invoice", request.path_params["id"])
            if inv is None or inv["status"] != "open":
                return _not_found("open invoice")
            try:
                pm = resolve(
                    ctx, form.get("card", "pm_card_visa"), param="card", customer=inv["customer"]
                )
            except StripeError as error:
                return _invoice_page(ctx, inv, AFTER_POST, error.message, error.status)
            failure = attempt_payment(ctx, inv, pm)
            if failure is not None:
                return _invoice_page(ctx, inv, AFTER_POST, failure.message, failure.status)
        return RedirectResponse(str(request.url_for("invoice_page", id=inv["id"])), status_code=303)

    async def pdf(request: Request) -> Response:
        with emulator.state.lock:
            inv = emulator.state.store.get("invoice", request.path_params["id"])
            if inv is None or inv["status"] == "draft":
                return _not_found("invoice")
            lines = [
                f"Invoice {inv['number']}",
                f"Status: {inv['status']}",
                *(
                    f"{line['description']}: {money(int(line['amount']), inv['currency'])}"
                    for line in inv["lines"]["data"]
                ),
                f"Total: {money(int(inv['total']), inv['currency'])}",
            ]
        return Response(_pdf(lines), media_type="application/pdf")

    async def receipt(request: Request) -> Response:
        with emulator.state.lock:
            charge = emulator.state.store.get("charge", request.path_params["id"])
            if charge is None:
                return _not_found("charge")
            body = (
                f"<div class='box'>{money(int(charge['amount']), charge['currency'])} · "
                f"{escape(charge['status'])} · refunded "
                f"{money(int(charge['amount_refunded']), charge['currency'])}</div>"
            )
        return _page("Receipt", body)

    return [
        Route("/invoices/{id}", show, methods=["GET"], name="invoice_page"),
        Route("/invoices/{id}/pay", pay, methods=["POST"]),
        Route("/invoices/{id}/pdf", pdf, methods=["GET"]),
        Route("/receipts/{id}", receipt, methods=["GET"]),
    ]
