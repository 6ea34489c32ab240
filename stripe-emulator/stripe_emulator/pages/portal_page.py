"""The billing portal page (a portal session's ``url``).

``GET /billing_portal/{id}`` lists the customer's subscriptions; ``POST .../cancel`` and
``.../renew`` (``subscription``) schedule or undo cancellation at period end, and
``POST .../payment_method`` (``card``) replaces the default card and retries past-due invoices.
Each action answers 303 back to the page, or to the session flow's redirect. The page also
lists the customer's invoices, linked to their hosted pages (which link back here).
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from stripe_emulator.billing import current_period, item_amount, items_of, recurring_of
from stripe_emulator.errors import StripeError
from stripe_emulator.pages.layout import (
    card_choices,
    date,
    form_data,
    money,
    not_found,
    page,
    page_ctx,
    page_url,
)
from stripe_emulator.resources import portal
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON

if TYPE_CHECKING:
    from stripe_emulator.emulator import Emulator


def _portal_page(
    ctx: Ctx,
    session: JSON,
    error: str | None = None,
    status: int = 200,
    *,
    after_post: bool = False,
) -> Response:
    pid = escape(session["id"])
    # Relative form actions reach …/{id}/<action> from the page (…/{id}) and, when a failed
    # POST re-renders it at …/{id}/<action>, as siblings.
    here = "" if after_post else f"{pid}/"
    customer = ctx.store.require("customer", session["customer"])
    blocks = []
    for sub in portal.portal_subscriptions(ctx, session):
        names = ", ".join(portal.describe_subscription(ctx, sub))
        amount = sum(item_amount(i) for i in items_of(sub))  # metered usage comes on top
        interval, _ = recurring_of(items_of(sub)[0]["price"])
        end = date(current_period(sub)[1])
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
    # What renewals are charged to: the default payment method, else the default source.
    pm_id = customer["invoice_settings"]["default_payment_method"] or customer.get("default_source")
    pm = ctx.store.get("payment_method", pm_id) if pm_id else None
    card = f"{pm['card']['brand']} •••• {pm['card']['last4']}" if pm else "none"
    banner = f"<div class='box error' role='alert'>{escape(error)}</div>" if error else ""
    back = session["return_url"]
    body = (
        f"{banner}<p>{escape(customer['email'] or customer['id'])}</p>"
        f"{''.join(blocks) or '<p>No active subscriptions.</p>'}"
        f"<form method='post' action='{here}payment_method' class='box'>"
        f"<p>Payment method: {escape(card)}</p>{card_choices()}"
        f"<button type='submit'>Update payment method</button></form>"
        f"{_invoice_history(ctx, session)}"
        + (f"<p><a href='{escape(back)}'>Return</a></p>" if back else "")
    )
    return page("Billing", body, status)


def _invoice_history(ctx: Ctx, session: JSON, shown: int = 12) -> str:
    """The customer's latest invoices, each linked to its hosted page (which links back here)."""
    invoices = ctx.store.all(
        "invoice", lambda i: i["customer"] == session["customer"] and i["status"] != "draft"
    )[:shown]
    if not invoices:
        return ""
    rows = "".join(
        f"<tr><td><a href='{escape(inv['hosted_invoice_url'])}'>"
        f"{escape(inv['number'] or inv['id'])}</a></td><td>{date(inv['created'])}</td>"
        f"<td>{escape(inv['status'])}</td>"
        f"<td style='text-align:right'>{money(int(inv['total']), inv['currency'])}</td></tr>"
        for inv in invoices
    )
    return f"<div class='box'><h2>Invoice history</h2><table>{rows}</table></div>"


def portal_routes(emulator: Emulator) -> list[Route]:
    def load(ctx: Ctx, request: Request) -> JSON | None:
        return ctx.store.get("billing_portal.session", request.path_params["id"])

    async def show(request: Request) -> Response:
        ctx = page_ctx(emulator, request)
        with emulator.state.lock:
            session = load(ctx, request)
            if session is None:
                return not_found("portal session")
            return _portal_page(ctx, session)

    def done(request: Request, session: JSON) -> Response:
        flow = session.get("flow") or {}
        redirect = (flow.get("after_completion") or {}).get("redirect") or {}
        target = redirect.get("return_url") or page_url(request, f"/billing_portal/{session['id']}")
        return RedirectResponse(target, status_code=303)

    async def act(request: Request) -> Response:
        form = await form_data(request)
        action = request.path_params["action"]
        ctx = page_ctx(emulator, request)
        with emulator.state.lock:
            session = load(ctx, request)
            if session is None:
                return not_found("portal session")
            try:
                if action in ("cancel", "renew"):
                    portal.cancel_at_period_end(
                        ctx, session, form.get("subscription", ""), cancel=action == "cancel"
                    )
                elif action == "payment_method":
                    error = portal.update_payment_method(ctx, session, form.get("card", ""))
                    if error is not None:
                        return _portal_page(
                            ctx, session, error.message, status=error.status, after_post=True
                        )
                else:
                    return not_found("portal action")
            except StripeError as error:
                return _portal_page(
                    ctx, session, error.message, status=error.status, after_post=True
                )
        return done(request, session)

    return [
        Route("/billing_portal/{id}", show, methods=["GET"]),
        Route("/billing_portal/{id}/{action}", act, methods=["POST"]),
    ]
