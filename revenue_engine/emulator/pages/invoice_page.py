"""Hosted invoice pages, invoice PDFs and charge receipts.

``GET /invoices/{id}`` (the invoice's ``hosted_invoice_url``) shows lines and status, with a
Pay form while it is open (``POST .../pay``, ``card``); ``GET /invoices/{id}/pdf`` (its
``invoice_pdf``) is a one-page PDF; ``GET /receipts/{id}`` is a charge's ``receipt_url``.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from revenue_engine.emulator.errors import StripeError
from revenue_engine.emulator.invoicing import attempt_payment
from revenue_engine.emulator.pages.layout import (
    card_choices,
    form_data,
    money,
    not_found,
    page,
    page_ctx,
    page_url,
)
from revenue_engine.emulator.resources.payment_methods import new_card
from revenue_engine.emulator.state import Ctx
from revenue_engine.emulator.store import JSON

if TYPE_CHECKING:
    from revenue_engine.emulator.emulator import Emulator


def _invoice_page(
    ctx: Ctx, inv: JSON, error: str | None = None, status: int = 200, *, after_post: bool = False
) -> Response:
    rows = "".join(
        f"<tr><td>{escape(str(line['description']))}</td>"
        f"<td style='text-align:right'>{money(int(line['amount']), inv['currency'])}</td></tr>"
        for line in inv["lines"]["data"]
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
    body = (
        f"{banner}<div class='box'><p>Invoice {escape(inv['number'] or inv['id'])} · "
        f"status <strong>{escape(inv['status'])}</strong></p><table>{rows}</table>"
        f"<p>Amount due: {money(int(inv['amount_due']), inv['currency'])} · paid "
        f"{money(int(inv['amount_paid']), inv['currency'])}</p></div>{pay}"
        f"<p><a href='{iid}/pdf'>Download PDF</a></p>"
    )
    return page("Invoice", body, status)


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
        with emulator.state.lock:
            inv = emulator.state.store.get("invoice", request.path_params["id"])
            if inv is None or inv["status"] == "draft":
                return not_found("invoice")
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
