"""The hosted confirmation page of a SetupIntent: what Stripe.js's ``confirmSetup`` does in a
browser, as a plain form (an emulator convenience: Stripe itself has no such page).

* ``GET  /setup/{id}?client_secret=…&return_url=…`` — the test-card choice and a Save button;
  the client secret must be the intent's (as Stripe.js needs it), ``return_url`` an absolute
  http(s) URL.
* ``POST /setup/{id}/confirm`` (``card``, ``client_secret``, ``return_url``) — confirms the intent
  with a new card (the customer is present: a 3D Secure challenge is completed here), then 303 to
  ``return_url`` with ``setup_intent``, ``setup_intent_client_secret`` and ``redirect_status``
  added, as Stripe.js redirects. A refused card re-renders the page (HTTP 402) with the reason;
  the failed attempt is recorded on the intent, as on Stripe.

Form actions are relative and the redirect is the given URL, so the page works wherever the
emulator is mounted.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from stripe_emulator import reference
from stripe_emulator.errors import StripeError
from stripe_emulator.pages.layout import card_choices, form_data, not_found, page, page_ctx
from stripe_emulator.resources.payment_methods import new_card
from stripe_emulator.resources.setup_intents import CONFIRMABLE, confirm_setup
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON

if TYPE_CHECKING:
    from stripe_emulator.emulator import Emulator


def completed_url(return_url: str, seti: JSON) -> str:
    """``return_url`` with what Stripe.js appends after a confirmation."""
    status = "succeeded" if seti["status"] == "succeeded" else "failed"
    query = urlencode(
        {
            "setup_intent": seti["id"],
            "setup_intent_client_secret": seti["client_secret"],
            "redirect_status": status,
        }
    )
    return f"{return_url}{'&' if '?' in return_url else '?'}{query}"


def _setup_page(
    ctx: Ctx,
    seti: JSON,
    return_url: str,
    error: str | None = None,
    status: int = 200,
    *,
    after_post: bool = False,
) -> Response:
    back = f"<p><a href='{escape(return_url)}'>Back</a></p>"
    if seti["status"] == "succeeded":
        pm = ctx.store.get("payment_method", seti["payment_method"] or "")
        card = (pm or {}).get("card") or {}
        saved = f" ({escape(card['brand'])} •••• {escape(card['last4'])})" if card else ""
        link = escape(completed_url(return_url, seti))
        return page(
            "Card saved",
            f"<div class='box'>This card is saved{saved}.</div>"
            f"<p><a href='{link}'>Continue</a></p>",
        )
    if seti["status"] == "canceled":
        return page("Canceled", f"<div class='box'>This SetupIntent was canceled.</div>{back}", 410)
    here = "" if after_post else f"{escape(seti['id'])}/"
    banner = f"<div class='box error' role='alert'>{escape(error)}</div>" if error else ""
    customer = ctx.store.get("customer", seti["customer"] or "")
    who = f"<p>{escape(customer['email'] or customer['id'])}</p>" if customer else ""
    body = (
        f"{banner}{who}<form method='post' action='{here}confirm' class='box'>"
        f"<input type='hidden' name='client_secret' value='{escape(seti['client_secret'])}'>"
        f"<input type='hidden' name='return_url' value='{escape(return_url)}'>"
        f"<fieldset><legend>Test card</legend>{card_choices()}</fieldset>"
        f"<p class='muted'>Saved for future payments ({escape(seti['usage'])}).</p>"
        f"<button type='submit'>Save card</button></form>{back}"
    )
    return page("Save a card", body, status)


def setup_routes(emulator: Emulator) -> list[Route]:
    def load(ctx: Ctx, request: Request, secret: str | None) -> JSON | None:
        seti = ctx.store.get("setup_intent", request.path_params["id"])
        # Without its client secret a SetupIntent is not found, as Stripe.js finds it.
        if seti is None or not secret or secret != seti["client_secret"]:
            return None
        return seti

    def checked_url(value: str | None) -> str | None:
        try:
            return reference.url(value or None, param="return_url")
        except StripeError:
            return None

    async def show(request: Request) -> Response:
        ctx = page_ctx(emulator, request)
        return_url = checked_url(request.query_params.get("return_url"))
        with emulator.state.lock:
            seti = load(ctx, request, request.query_params.get("client_secret"))
            if seti is None:
                return not_found("setup intent")
            if return_url is None:
                return page("Invalid request", "<p>return_url must be an http(s) URL.</p>", 400)
            return _setup_page(ctx, seti, return_url)

    async def confirm(request: Request) -> Response:
        form = await form_data(request)
        ctx = page_ctx(emulator, request)
        return_url = checked_url(form.get("return_url"))
        with emulator.state.lock:
            seti = load(ctx, request, form.get("client_secret"))
            if seti is None:
                return not_found("setup intent")
            if return_url is None:
                return page("Invalid request", "<p>return_url must be an http(s) URL.</p>", 400)
            if seti["status"] == "succeeded":  # a double-submit: the first one saved it
                return RedirectResponse(completed_url(return_url, seti), status_code=303)
            if seti["status"] not in (*CONFIRMABLE, "requires_action"):
                return _setup_page(ctx, seti, return_url)
            try:
                pm = new_card(ctx, form.get("card", "pm_card_visa"), None)
                error = confirm_setup(ctx, seti, pm, authenticated=True)
            except StripeError as refused:
                error = refused
            if error is not None:
                return _setup_page(
                    ctx, seti, return_url, error.message, status=error.status, after_post=True
                )
            target = completed_url(return_url, seti)
        return RedirectResponse(target, status_code=303)

    return [
        Route("/setup/{id}", show, methods=["GET"]),
        Route("/setup/{id}/confirm", confirm, methods=["POST"]),
    ]
