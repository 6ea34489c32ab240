"""SetupIntents: saving a card for later, off-session payments (renewals), and their attempts.

Routes: ``POST /v1/setup_intents``, ``GET /v1/setup_intents``, ``GET|POST /v1/setup_intents/{id}``,
``POST /v1/setup_intents/{id}/confirm|cancel``, ``GET /v1/setup_attempts`` (``setup_intent``).

Statuses as on Stripe: ``requires_payment_method`` (or ``requires_confirmation`` once a payment
method is set) → confirm → ``succeeded``; ``requires_action`` for a card that asks for 3D Secure
(completed on the hosted page, where the customer is present); back to
``requires_payment_method`` with ``last_setup_error`` when the card is refused (a 402
``card_error``, the failed attempt recorded); ``canceled``. On success the card is attached to
the intent's customer (``payment_method.attached``) before ``setup_intent.succeeded``. Every
confirmation records a ``setup_attempt`` (``latest_attempt``). Parameters Stripe honours and the
emulator does not (mandates, Connect, other payment method types, payment method options) are
refused.
"""

from __future__ import annotations

from stripe_emulator import reference
from stripe_emulator.errors import (
    StripeError,
    card_error,
    check_updatable,
    invalid_request,
    unexpected_state,
    unsupported,
)
from stripe_emulator.events import emit
from stripe_emulator.forms import Params, merge_metadata
from stripe_emulator.ids import client_secret, new_id
from stripe_emulator.lists import PAGINATION, created_filter, paginate
from stripe_emulator.resources.payment_methods import (
    attach,
    card_of,
    require_usable,
    resolve,
)
from stripe_emulator.routing import Route
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON, snapshot

CONFIRMABLE = ("requires_payment_method", "requires_confirmation")
CANCELABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
CANCELLATION_REASONS = ("abandoned", "duplicate", "requested_by_customer")
_UNSUPPORTED = (
    "attach_to_self",
    "confirmation_token",
    "excluded_payment_method_types",
    "flow_directions",
    "mandate_data",
    "on_behalf_of",
    "payment_method_configuration",
    "payment_method_data",
    "payment_method_options",
    "single_use",
)


def _refuse_unsupported(p: Params) -> None:
    for key in _UNSUPPORTED:
        if p.has(key):
            raise unsupported(key)


def _types(p: Params) -> list[str] | None:
    if not p.has("payment_method_types"):
        return None
    types = p.strings("payment_method_types")
    for kind in types:
        if kind != "card":
            raise unsupported("payment_method_types", f" ({kind!r}; only card)")
    return types or ["card"]


def _set_payment_method(ctx: Ctx, seti: JSON, ref: str | None) -> JSON | None:
    """The payment method named by ``ref`` (a test id clones a fresh, unattached card)."""
    if not ref:
        return None
    pm = resolve(ctx, ref, param="payment_method")
    seti["payment_method"] = pm["id"]
    seti["status"] = "requires_confirmation"
    return pm


def _create(ctx: Ctx, p: Params) -> JSON:
    _refuse_unsupported(p)
    p.only(
        (
            *_UNSUPPORTED,
            "automatic_payment_methods",
            "confirm",
            "customer",
            "description",
            "expand",
            "metadata",
            "payment_method",
            "payment_method_types",
            "return_url",
            "usage",
            "use_stripe_sdk",
        )
    )
    customer = p.string("customer")
    if customer:
        ctx.store.require("customer", customer, param="customer")
    types = _types(p)
    automatic = p.sub("automatic_payment_methods")
    if automatic is not None:
        automatic.only(("enabled", "allow_redirects"))
        if types is not None and automatic.boolean("enabled", default=False):
            raise invalid_request(
                "You may only specify one of these parameters: automatic_payment_methods, "
                "payment_method_types.",
                param="automatic_payment_methods",
            )
    confirm = p.boolean("confirm", default=False)
    return_url = reference.url(p.string("return_url"), param="return_url")
    if return_url and not confirm:
        raise invalid_request(
            "You can only pass return_url when confirm is true.", param="return_url"
        )
    seti_id = new_id("seti_")
    seti: JSON = {
        "id": seti_id,
        "object": "setup_intent",
        "application": None,
        "automatic_payment_methods": None if types else {"enabled": True},
        "cancellation_reason": None,
        "client_secret": client_secret(seti_id),
        "created": ctx.state.now_for_customer(customer),
        "customer": customer,
        "description": p.string("description"),
        "excluded_payment_method_types": None,
        "flow_directions": None,
        "last_setup_error": None,
        "latest_attempt": None,
        "livemode": False,
        "mandate": None,
        "metadata": merge_metadata({}, p.metadata(), replace=True),
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": types or ["card"],
        "single_use_mandate": None,
        "status": "requires_payment_method",
        "usage": p.string("usage", choices=("on_session", "off_session")) or "off_session",
    }
    pm = _set_payment_method(ctx, seti, p.string("payment_method"))
    ctx.store.put(seti)
    emit(ctx, "setup_intent.created", seti)
    if confirm:
        if pm is None:
            raise invalid_request(
                "You cannot confirm this SetupIntent because it's missing a payment method.",
                param="payment_method",
                code="setup_intent_unexpected_state",
            )
        error = confirm_setup(ctx, seti, pm)
        if error is not None:
            raise error
    return seti


def _attempt(ctx: Ctx, seti: JSON, pm: JSON, status: str, error: JSON | None) -> JSON:
    card = pm.get("card") or {}
    attempt: JSON = {
        "id": new_id("setatt_"),
        "object": "setup_attempt",
        "application": None,
        "created": ctx.state.now_for_customer(seti["customer"]),
        "customer": seti["customer"],
        "customer_account": None,
        "flow_directions": None,
        "livemode": False,
        "on_behalf_of": None,
        "payment_method": pm["id"],
        "payment_method_details": {
            "card": {
                "brand": card.get("brand"),
                "checks": snapshot(card["checks"]) if card.get("checks") else None,
                "country": card.get("country"),
                "exp_month": card.get("exp_month"),
                "exp_year": card.get("exp_year"),
                "fingerprint": card.get("fingerprint"),
                "funding": card.get("funding"),
                "last4": card.get("last4"),
                "network": card.get("brand"),
                "three_d_secure": None,
                "wallet": None,
            },
            "type": pm["type"],
        },
        "setup_error": error,
        "setup_intent": seti["id"],
        "status": status,
        "usage": seti["usage"],
    }
    ctx.store.put(attempt)
    seti["latest_attempt"] = attempt["id"]
    return attempt


def confirm_setup(
    ctx: Ctx, seti: JSON, pm: JSON, *, authenticated: bool = False
) -> StripeError | None:
    """Set up ``pm`` for the intent; returns the card error when the card is refused (the failed
    attempt is recorded, as Stripe records it before answering 402). ``authenticated``: the
    customer is on the hosted page and completes a 3D Secure challenge there."""
    if seti["status"] not in CONFIRMABLE and not (
        authenticated and seti["status"] == "requires_action"
    ):
        raise unexpected_state(seti, "confirm")
    if pm["customer"] is not None and seti["customer"] not in (None, pm["customer"]):
        raise invalid_request(
            "The provided PaymentMethod belongs to a different customer.", param="payment_method"
        )
    require_usable(ctx, pm)
    seti["payment_method"] = pm["id"]
    card = card_of(ctx, pm)
    if card.attach_fails and card.decline_code:
        error = card_error(card.error_code, card.message, decline_code=card.decline_code)
        last_error: JSON = {
            "type": "card_error",
            "code": card.error_code,
            "decline_code": card.decline_code,
            "message": card.message,
            "payment_method": snapshot(pm),
        }
        _attempt(ctx, seti, pm, "failed", last_error)
        seti.update(status="requires_payment_method", last_setup_error=last_error, next_action=None)
        emit(ctx, "setup_intent.setup_failed", seti)
        error.extra.update(setup_intent=snapshot(seti), payment_method=snapshot(pm))
        return error
    if card.requires_action and not authenticated:
        _attempt(ctx, seti, pm, "requires_action", None)
        seti.update(
            status="requires_action",
            last_setup_error=None,
            next_action={
                "type": "use_stripe_sdk",
                "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": ""},
            },
        )
        emit(ctx, "setup_intent.requires_action", seti)
        return None
    if seti["customer"] and pm["customer"] is None:
        attach(ctx, pm, seti["customer"])
    _attempt(ctx, seti, pm, "succeeded", None)
    seti.update(status="succeeded", last_setup_error=None, next_action=None)
    emit(ctx, "setup_intent.succeeded", seti)
    return None


def _retrieve(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("expand", "client_secret"))
    return ctx.store.require("setup_intent", id, param="intent")


def _update(ctx: Ctx, p: Params, id: str) -> JSON:
    _refuse_unsupported(p)
    p.only(
        (
            *_UNSUPPORTED,
            "customer",
            "description",
            "expand",
            "metadata",
            "payment_method",
            "payment_method_types",
        )
    )
    seti = ctx.store.require("setup_intent", id, param="intent")
    check_updatable(seti, p.data)
    if p.has("customer"):
        customer = p.string("customer")
        if customer:
            ctx.store.require("customer", customer, param="customer")
        seti["customer"] = customer
    if p.has("description"):
        seti["description"] = p.string("description")
    types = _types(p)
    if types is not None:
        seti.update(payment_method_types=types, automatic_payment_methods=None)
    if p.has("payment_method") and not _set_payment_method(ctx, seti, p.string("payment_method")):
        seti.update(payment_method=None, status="requires_payment_method")
    seti["metadata"] = merge_metadata(seti["metadata"], p.metadata(), replace=False)
    return seti


def _confirm(ctx: Ctx, p: Params, id: str) -> JSON:
    _refuse_unsupported(p)
    p.only(
        (*_UNSUPPORTED, "client_secret", "expand", "payment_method", "return_url", "use_stripe_sdk")
    )
    seti = ctx.store.require("setup_intent", id, param="intent")
    secret = p.string("client_secret")
    if secret is not None and secret != seti["client_secret"]:
        raise invalid_request(
            "The client_secret provided does not match the client_secret associated with the "
            "SetupIntent.",
            param="client_secret",
        )
    if seti["status"] not in CONFIRMABLE:
        raise unexpected_state(seti, "confirm")
    reference.url(p.string("return_url"), param="return_url")
    ref = p.string("payment_method") or seti["payment_method"]
    if ref is None:
        raise invalid_request(
            "You cannot confirm this SetupIntent because it's missing a payment method. To "
            "confirm the SetupIntent with a payment method, pass payment_method.",
            param="payment_method",
            code="setup_intent_unexpected_state",
        )
    pm = resolve(ctx, ref, param="payment_method")
    error = confirm_setup(ctx, seti, pm)
    if error is not None:
        raise error
    return seti


def _cancel(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("cancellation_reason", "expand"))
    seti = ctx.store.require("setup_intent", id, param="intent")
    if seti["status"] not in CANCELABLE:
        raise unexpected_state(seti, "cancel")
    seti.update(
        status="canceled",
        next_action=None,
        cancellation_reason=p.string("cancellation_reason", choices=CANCELLATION_REASONS),
    )
    emit(ctx, "setup_intent.canceled", seti)
    return seti


def _list(ctx: Ctx, p: Params) -> JSON:
    p.only((*PAGINATION, "customer", "payment_method", "created", "attach_to_self"))
    customer, pm = p.string("customer"), p.string("payment_method")
    created = created_filter(p)
    items = ctx.store.all(
        "setup_intent",
        lambda s: (
            (customer is None or s["customer"] == customer)
            and (pm is None or s["payment_method"] == pm)
            and created(s)
        ),
    )
    return paginate(items, p, "/v1/setup_intents")


def _attempts(ctx: Ctx, p: Params) -> JSON:
    p.only((*PAGINATION, "setup_intent", "created"))
    seti_id = p.string("setup_intent", required=True)
    ctx.store.require("setup_intent", seti_id, param="setup_intent")
    created = created_filter(p)
    items = ctx.store.all("setup_attempt", lambda a: a["setup_intent"] == seti_id and created(a))
    return paginate(items, p, "/v1/setup_attempts")


ROUTES = [
    Route("POST", "/v1/setup_intents", _create),
    Route("GET", "/v1/setup_intents", _list),
    Route("GET", "/v1/setup_intents/{id}", _retrieve),
    Route("POST", "/v1/setup_intents/{id}", _update),
    Route("POST", "/v1/setup_intents/{id}/confirm", _confirm),
    Route("POST", "/v1/setup_intents/{id}/cancel", _cancel),
    Route("GET", "/v1/setup_attempts", _attempts),
]
