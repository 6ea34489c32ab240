"""Hosted invoice pages, invoice PDFs and charge receipts.

``GET /invoices/{id}`` (the invoice's ``hosted_invoice_url``) says what the invoice says (see
:mod:`invoice_view`: number, status, dates, period, customer, lines with quantities and unit
prices, totals) with links to its PDF and back to the customer's billing portal and app, and a
Pay form while it is open (``POST .../pay``, ``card``: 303 back to the page, a decline
re-renders it); ``GET /invoices/{id}/pdf`` (its ``invoice_pdf``) is the same as a one-page PDF;
``GET /receipts/{id}`` is a charge's ``receipt_url``.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from stripe_emulator.billing import TIMES
from stripe_emulator.errors import StripeError
from stripe_emulator.invoicing import attempt_payment
from stripe_emulator.pages import invoice_view as view
from stripe_emulator.pages.layout import (
    card_choices,
    form_data,
    money,
    not_found,
    page,
    page_ctx,
    page_url,
)
from stripe_emulator.pages.pdf import text_pdf
from stripe_emulator.resources.payment_methods import new_card
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON

if TYPE_CHECKING:
    from stripe_emulator.emulator import Emulator


def _table(pairs: list[tuple[str, str]]) -> str:
    return "".join(
        f"<tr><th scope='row'>{escape(k)}</th><td style='text-align:right'>{escape(v)}</td></tr>"
        for k, v in pairs
    )


def _invoice_page(
    ctx: Ctx, inv: JSON, error: str | None = None, status: int = 200, *, after_post: bool = False
) -> Response:
    lines = "".join(
        f"<tr><td>{escape(r.description)}<br><span class='muted'>{escape(r.period)}</span></td>"
        f"<td style='text-align:right'>{escape(r.quantity)}</td>"
        f"<td style='text-align:right'>{escape(r.unit_price)}</td>"
        f"<td style='text-align:right'>{escape(r.amount)}</td></tr>"
        for r in view.rows(ctx, inv)
    )
    iid = escape(inv["id"])
    # Relative form actions reach …/{id}/<action> from the page (…/{id}) and, when a failed
    # POST re-renders it at …/{id}/<action>, as siblings.
    here = "" if after_post else f"{iid}/"
    pay = ""
    if inv["status"] == "open":
        pay = (
            f"<form method='post' action='{here}pay' class='box'>{card_choices()}"
            f"<button type='submit'>Pay {money(int(inv['amount_remaining']), inv['currency'])}"
            f"</button></form>"
        )
    banner = f"<div class='box error' role='alert'>{escape(error)}</div>" if error else ""
    links = [f"<a href='{here}pdf'>Download PDF</a>"] + [
        f"<a href='{escape(url)}'>{escape(label)}</a>" for label, url in view.ways_back(ctx, inv)
    ]
    status_line = (
        f"<p>Invoice {escape(inv['number'] or inv['id'])} · "
        f"status <strong>{escape(inv['status'])}</strong></p>"
    )
    body = (
        f"{banner}<div class='box'>{status_line}<table>{_table(view.facts(inv))}</table></div>"
        f"<div class='box'><table><tr><th>Description</th><th>Qty</th><th>Unit price</th>"
        f"<th>Amount</th></tr>{lines}</table>"
        f"<table>{_table(view.totals(inv))}</table></div>{pay}"
        f"<p>{' · '.join(links)}</p>"
    )
    return page("Invoice", body, status)


def _pdf_lines(ctx: Ctx, inv: JSON) -> list[str]:
    lines = ["Invoice", *(f"{k}: {v}" for k, v in view.facts(inv)), ""]
    for r in view.rows(ctx, inv):
        lines.append(f"{r.description} ({r.period})")
        priced = f" {TIMES} {r.unit_price} =" if r.unit_price != "—" else ":"
        lines.append(f"    Qty {r.quantity}{priced} {r.amount}")
    lines += ["", *(f"{k}: {v}" for k, v in view.totals(inv))]
    if inv["hosted_invoice_url"]:
        lines += ["", f"View and pay online: {inv['hosted_invoice_url']}"]
    return lines


def invoice_routes(emulator: Emulator) -> list[Route]:
    async def show(request: Request) -> Response:
        ctx = page_ctx(emulator, request)
        with emulator.state.lock:
            inv = ctx.store.get("invoice", request.path_params["id"])
            if inv is None or inv["status"] == "draft":
                return not_found("invoice")
            return _invoice_page(ctx, inv)

    async def pay(request: Request) -> Response:
        form = await form_data(request)
        ctx = page_ctx(emulator, request)
        with emulator.state.lock:
            inv = ctx.store.get("invoice", request.path_params["id"])
            if inv is None or inv["status"] != "open":
                return not_found("open invoice")
            try:
                pm = new_card(ctx, form.get("card", "pm_card_visa"), inv["customer"])
            except StripeError as error:
                return _invoice_page(ctx, inv, error.message, status=error.status, after_post=True)
            # The customer is on the page: a 3D Secure challenge is completed here.
            ctx.store.priv(pm["id"])["authenticate_next"] = True
            failure = attempt_payment(ctx, inv, pm)
            ctx.store.priv(pm["id"]).pop("authenticate_next", None)
            if failure is not None:
                return _invoice_page(
                    ctx, inv, failure.message, status=failure.status, after_post=True
                )
        return RedirectResponse(page_url(request, f"/invoices/{inv['id']}"), status_code=303)

    async def pdf(request: Request) -> Response:
        ctx = page_ctx(emulator, request)
        with emulator.state.lock:
            inv = ctx.store.get("invoice", request.path_params["id"])
            if inv is None or inv["status"] == "draft":
                return not_found("invoice")
            lines = _pdf_lines(ctx, inv)
        return Response(text_pdf(lines), media_type="application/pdf")

    async def receipt(request: Request) -> Response:
        with emulator.state.lock:
            charge = emulator.state.store.get("charge", request.path_params["id"])
            if charge is None:
                return not_found("charge")
            body = (
                f"<div class='box'>{money(int(charge['amount']), charge['currency'])} · "
                f"{escape(charge['status'])} · refunded "
                f"{money(int(charge['amount_refunded']), charge['currency'])}</div>"
            )
        return page("Receipt", body)

    return [
        Route("/invoices/{id}", show, methods=["GET"]),
        Route("/invoices/{id}/pay", pay, methods=["POST"]),
        Route("/invoices/{id}/pdf", pdf, methods=["GET"]),
        Route("/receipts/{id}", receipt, methods=["GET"]),
    ]
