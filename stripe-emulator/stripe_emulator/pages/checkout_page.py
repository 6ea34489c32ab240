"""The hosted checkout page (a Checkout Session's ``url``).

* ``GET  /checkout/{id}`` — plan, amount and interval; test-card choice; Pay / Cancel.
* ``POST /checkout/{id}/pay`` (``card``, ``email``, ``name``) — 303 to ``success_url`` with
  ``{CHECKOUT_SESSION_ID}`` filled in; a decline re-renders the page (HTTP 402), changing nothing.
  ``card`` is a test card id or, where the session offers ACH Direct Debit, a test bank
  account (``pm_usBankAccount_success``, ``pm_usBankAccount_accountClosed``): the session
  completes unpaid and the debit settles later.
* ``POST|GET /checkout/{id}/cancel`` — 303 to ``cancel_url``; the session stays open.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from stripe_emulator.billing import TIMES, recurring_of
from stripe_emulator.metering import is_metered
from stripe_emulator.pages.layout import (
    bank_choices,
    card_choices,
    form_data,
    money,
    not_found,
    page,
    page_ctx,
)
from stripe_emulator.resources import checkout
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON

if TYPE_CHECKING:
    from stripe_emulator.emulator import Emulator


def _checkout_page(
    ctx: Ctx,
    session: JSON,
    error: str | None = None,
    status: int = 200,
    *,
    after_post: bool = False,
) -> Response:
    sid = escape(session["id"])
    # Relative form actions reach …/{id}/<action> from the page (…/{id}) and, when a failed
    # POST re-renders it at …/{id}/<action>, as siblings.
    here = "" if after_post else f"{sid}/"
    if session["status"] == "complete":
        target = checkout.success_redirect(session)
        link = f"<p><a href='{escape(target)}'>Continue</a></p>" if target else ""
        if session["payment_status"] == "unpaid":
            return page(
                "Payment processing",
                "<div class='box'>Thank you — your bank debit is processing.</div>" + link,
            )
        return page(
            "Payment complete", f"<div class='box'>Thank you — this session is paid.</div>{link}"
        )
    if session["status"] == "expired":
        return page(
            "Session expired", "<div class='box'>This Checkout Session has expired.</div>", 410
        )
    rows = []
    for item in ctx.store.priv(session["id"]).get("items", []):
        price = item["price"]
        every = ""
        if price["recurring"]:
            interval, count = recurring_of(price)
            every = f" / {interval}" if count == 1 else f" every {count} {interval}s"
        if is_metered(price):
            rule = price["transform_quantity"]
            per = f" per {rule['divide_by']} units" if rule else " per unit"
            unit = money(int(price["unit_amount"] or 0), item["currency"])
            rows.append(
                f"<tr><td>{escape(str(item['description']))} (billed by usage, in arrears)</td>"
                f"<td style='text-align:right'>{unit}{escape(per + every)}</td></tr>"
            )
            continue
        rows.append(
            f"<tr><td>{escape(str(item['description']))} {TIMES} {item['quantity']}</td>"
            f"<td style='text-align:right'>{money(int(item['amount_total']), item['currency'])}"
            f"{escape(every)}</td></tr>"
        )
    trial = ctx.store.priv(session["id"]).get("trial_period_days")
    trial_note = f"<p>{int(trial)}-day free trial, then billed as shown.</p>" if trial else ""
    total = money(int(session["amount_subtotal"]), session["currency"])
    discount = int(session["total_details"]["amount_discount"])
    if discount:
        rows.append(
            f"<tr><td>Discount</td><td style='text-align:right'>"
            f"-{money(discount, session['currency'])}</td></tr>"
        )
        total = money(int(session["amount_subtotal"]) - discount, session["currency"])
    code_field = (
        "<label>Promotion code <input name='promotion_code' value=''></label>"
        if session["allow_promotion_codes"]
        else ""
    )
    banner = f"<div class='box error' role='alert'>{escape(error)}</div>" if error else ""
    email = session["customer_email"]
    if session["customer"]:
        customer = ctx.store.get("customer", session["customer"])
        email = email or (customer or {}).get("email")
    methods = ""
    if checkout.offers_cards(session):
        methods += f"<fieldset><legend>Test card</legend>{card_choices()}</fieldset>"
    if checkout.offers_bank_debit(session):
        methods += (
            "<fieldset><legend>US bank account (ACH Direct Debit — settles later)</legend>"
            f"{bank_choices(checked_first=not checkout.offers_cards(session))}</fieldset>"
        )
    body = (
        f"{banner}<div class='box'><table>{''.join(rows)}</table>"
        f"<p><strong>Total: {total}</strong></p>{trial_note}</div>"
        f"<form method='post' action='{here}pay' class='box'>"
        f"<label>Email <input name='email' type='email' value='{escape(email or '')}'></label>"
        f"<label>Name on card <input name='name' value=''></label>"
        f"{code_field}{methods}"
        f"<button type='submit'>Pay {total}</button></form>"
        f"<form method='post' action='{here}cancel'><button type='submit'>Cancel</button></form>"
    )
    return page("Checkout", body, status)


def checkout_routes(emulator: Emulator) -> list[Route]:
    async def show(request: Request) -> Response:
        ctx = page_ctx(emulator, request)
        with emulator.state.lock:
            session = ctx.store.get("checkout.session", request.path_params["id"])
            if session is None:
                return not_found("checkout session")
            checkout.expire_if_due(ctx, session)
            return _checkout_page(ctx, session)

    async def pay(request: Request) -> Response:
        form = await form_data(request)
        ctx = page_ctx(emulator, request)
        with emulator.state.lock:
            session = ctx.store.get("checkout.session", request.path_params["id"])
            if session is None:
                return not_found("checkout session")
            checkout.expire_if_due(ctx, session)
            error = checkout.complete(
                ctx,
                session,
                form.get("card", "pm_card_visa"),
                form.get("email") or None,
                form.get("name") or None,
                promotion_code=form.get("promotion_code") or None,
            )
            if error is not None:
                return _checkout_page(
                    ctx, session, error.message, status=error.status, after_post=True
                )
            target = checkout.success_redirect(session)
            if target is None:
                return _checkout_page(ctx, session, after_post=True)
        return RedirectResponse(target, status_code=303)

    async def cancel(request: Request) -> Response:
        ctx = page_ctx(emulator, request)
        with emulator.state.lock:
            session = ctx.store.get("checkout.session", request.path_params["id"])
            if session is None:
                return not_found("checkout session")
            target = session["cancel_url"]
        if not target:
            return page("Checkout canceled", "<p>You can close this page.</p>")
        return RedirectResponse(target, status_code=303)

    return [
        Route("/checkout/{id}", show, methods=["GET"]),
        Route("/checkout/{id}/pay", pay, methods=["POST"]),
        Route("/checkout/{id}/cancel", cancel, methods=["GET", "POST"]),
    ]
