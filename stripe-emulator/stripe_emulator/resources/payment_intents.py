"""PaymentIntents and the Charges they create.

Routes: ``POST /v1/payment_intents``, ``GET|POST /v1/payment_intents/{id}``,
``POST /v1/payment_intents/{id}/confirm|cancel``, ``GET /v1/payment_intents``,
``GET /v1/charges``, ``GET /v1/charges/{id}``.

:func:`confirm_intent` is the one place money moves: invoices, Checkout and the API all charge
through it. A decline leaves the intent in ``requires_payment_method`` with
``last_payment_error``, records a failed Charge and emits ``payment_intent.payment_failed`` +
``charge.failed``; the caller gets the 402 ``card_error`` Stripe would return.
"""

from __future__ import annotations

from stripe_emulator import reference
from stripe_emulator.cards import (
    TestBankAccount,
    billing_details,
    charge_bank_details,
    charge_card_details,
)
from stripe_emulator.errors import (
    StripeError,
    card_error,
    check_updatable,
    invalid_request,
    unexpected_state,
)
from stripe_emulator.events import emit
from stripe_emulator.forms import Params, merge_metadata
from stripe_emulator.ids import client_secret, new_id
from stripe_emulator.lists import PAGINATION, created_filter, paginate
from stripe_emulator.resources.payment_methods import (
    attach,
    bank_of,
    card_of,
    require_usable,
    resolve,
    use_up,
)
from stripe_emulator.routing import Route
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON, snapshot

CANCELABLE = (
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "requires_capture",
    "processing",
)
CANCELLATION_REASONS = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")


def create_intent(
    ctx: Ctx,
    *,
    amount: int,
    currency: str,
    customer: str | None,
    payment_method: str | None = None,
    description: str | None = None,
    metadata: dict[str, str] | None = None,
    receipt_email: str | None = None,
    setup_future_usage: str | None = None,
) -> JSON:
    now = ctx.state.now_for_customer(customer)
    pi_id = new_id("pi_")
    pi: JSON = {
        "id": pi_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic",
        "client_secret": client_secret(pi_id),
        "confirmation_method": "automatic",
        "created": now,
        "currency": currency,
        "customer": customer,
        "customer_account": None,
        "description": description,
        "excluded_payment_method_types": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "managed_payments": None,
        "metadata": dict(metadata or {}),
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": payment_method,
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "processing": None,
        "receipt_email": receipt_email,
        "review": None,
        "setup_future_usage": setup_future_usage,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "requires_confirmation" if payment_method else "requires_payment_method",
        "transfer_data": None,
        "transfer_group": None,
    }
    ctx.store.put(pi)
    emit(ctx, "payment_intent.created", pi)
    return pi


def _charge(ctx: Ctx, pi: JSON, pm: JSON, error: StripeError | None) -> JSON:
    card = card_of(ctx, pm)
    succeeded = error is None
    charge_id = new_id("ch_")
    charge: JSON = {
        "id": charge_id,
        "object": "charge",
        "amount": pi["amount"],
        "amount_captured": pi["amount"] if succeeded else 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": None,
        "billing_details": snapshot(pm.get("billing_details") or billing_details()),
        "calculated_statement_descriptor": "EMULATED STRIPE",
        "captured": succeeded,
        "created": ctx.state.now_for_customer(pi["customer"]),
        "currency": pi["currency"],
        "customer": pi["customer"],
        "description": pi["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None if succeeded else card.error_code,
        "failure_message": None if succeeded else card.message,
        "fraud_details": {},
        "livemode": False,
        "metadata": dict(pi["metadata"]),
        "on_behalf_of": None,
        "outcome": {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network" if succeeded else "declined_by_network",
            "reason": None if succeeded else card.decline_code,
            "seller_message": "Payment complete."
            if succeeded
            else "The bank did not return any further details with this decline.",
            "type": "authorized" if succeeded else "issuer_declined",
        },
        "paid": succeeded,
        "payment_intent": pi["id"],
        "payment_method": pm["id"],
        "payment_method_details": {"card": charge_card_details(card), "type": "card"},
        "receipt_email": pi["receipt_email"],
        "receipt_number": None,
        "receipt_url": ctx.url(f"/receipts/{charge_id}"),
        "refunded": False,
        "review": None,
        "shipping": None,
        # The legacy Sources/Cards field: charges made with a PaymentMethod have none.
        "source": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "succeeded" if succeeded else "failed",
        "transfer_data": None,
        "transfer_group": None,
    }
    ctx.store.put(charge)
    return charge


def confirm_intent(ctx: Ctx, pi: JSON, pm: JSON) -> StripeError | None:
    """Charge ``pm`` for the intent; returns the card error on a decline (state already updated).

    An unattached ``pm`` is spent by the charge (paid or declined), unless the intent saves it
    to its customer (``setup_future_usage``, on success); a spent one is refused with Stripe's
    400 before anything changes.
    """
    if pm["customer"] is not None and pi["customer"] not in (None, pm["customer"]):
        raise invalid_request(
            "The provided PaymentMethod belongs to a different customer.", param="payment_method"
        )
    require_usable(ctx, pm)
    error = _charge_with(ctx, pi, pm)
    if pm["customer"] is None and pi["status"] != "requires_action":
        if error is None and pi["setup_future_usage"] and pi["customer"]:
            attach(ctx, pm, pi["customer"])
        else:
            use_up(ctx, pm)
    return error


def _charge_with(ctx: Ctx, pi: JSON, pm: JSON) -> StripeError | None:
    pi["payment_method"] = pm["id"]
    bank = bank_of(ctx, pm)
    if bank is not None:
        _start_debit(ctx, pi, pm, bank)
        return None
    card = card_of(ctx, pm)
    # A buyer paying on a hosted page completes 3D Secure there (the page sets this flag for
    # one payment); anywhere else a card that always asks for it needs the customer.
    authenticated = ctx.store.priv(pm["id"]).pop("authenticate_next", False)
    if card.requires_action and not card.decline_code and not authenticated:
        _require_action(ctx, pi)
        return None
    error: StripeError | None = None
    if card.decline_code:
        error = card_error(card.error_code, card.message, decline_code=card.decline_code)
    charge = _charge(ctx, pi, pm, error)
    pi["latest_charge"] = charge["id"]
    if error is None:
        pi.update(status="succeeded", amount_received=pi["amount"], last_payment_error=None)
        emit(ctx, "charge.succeeded", charge)
        emit(ctx, "payment_intent.succeeded", pi)
        return None
    pi["status"] = "requires_payment_method"
    pi["last_payment_error"] = {
        "type": "card_error",
        "code": card.error_code,
        "decline_code": card.decline_code,
        "message": card.message,
        "charge": charge["id"],
        "payment_method": snapshot(pm),
    }
    emit(ctx, "charge.failed", charge)
    emit(ctx, "payment_intent.payment_failed", pi)
    error.extra.update(
        charge=charge["id"], payment_intent=snapshot(pi), payment_method=snapshot(pm)
    )
    return error


def _require_action(ctx: Ctx, pi: JSON) -> None:
    """3D Secure needed: Stripe leaves the PaymentIntent ``requires_action`` with a
    ``next_action`` for the customer (``payment_intent.requires_action``); no Charge yet."""
    pi.update(
        status="requires_action",
        next_action={
            "type": "use_stripe_sdk",
            "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": ""},
        },
        last_payment_error=None,
    )
    emit(ctx, "payment_intent.requires_action", pi)


def _start_debit(ctx: Ctx, pi: JSON, pm: JSON, bank: TestBankAccount) -> None:
    """ACH Direct Debit: confirming starts the debit. Stripe's docs: the PaymentIntent moves to
    ``processing`` (``payment_intent.processing``) and its Charge is ``pending``
    (``charge.pending``) until the bank settles it — see :func:`settle_debit`."""
    charge = _charge(ctx, pi, pm, None)
    charge.update(
        status="pending",
        paid=False,
        payment_method_details={
            "type": "us_bank_account",
            "us_bank_account": charge_bank_details(bank),
        },
    )
    charge["outcome"].update(seller_message="Payment pending.", type="authorized")
    if "us_bank_account" not in pi["payment_method_types"]:
        pi["payment_method_types"] = [*pi["payment_method_types"], "us_bank_account"]
    pi.update(status="processing", latest_charge=charge["id"], last_payment_error=None)
    ctx.store.priv(pi["id"])["processing_since"] = ctx.state.now_for_customer(pi["customer"])
    emit(ctx, "charge.pending", charge)
    emit(ctx, "payment_intent.processing", pi)


def settle_debit(ctx: Ctx, pi: JSON, succeed: bool | None = None) -> bool:
    """The bank's answer to a ``processing`` debit: the test account's outcome unless
    ``succeed`` forces one. Success: Charge ``succeeded``, PaymentIntent ``succeeded``
    (``charge.succeeded``, ``payment_intent.succeeded``). Failure (a return such as
    ``account_closed``): Charge ``failed``, PaymentIntent back to ``requires_payment_method``
    with ``last_payment_error`` (``charge.failed``, ``payment_intent.payment_failed``)."""
    if pi["status"] != "processing":
        raise invalid_request(
            f"This PaymentIntent is not processing; its status is {pi['status']}.",
            code="payment_intent_unexpected_state",
        )
    pm = ctx.store.require("payment_method", pi["payment_method"])
    bank = bank_of(ctx, pm)
    assert bank is not None
    ok = bank.failure_code is None if succeed is None else succeed
    charge = ctx.store.require("charge", pi["latest_charge"])
    if ok:
        charge.update(status="succeeded", paid=True)
        charge["outcome"]["seller_message"] = "Payment complete."
        pi.update(status="succeeded", amount_received=pi["amount"])
        emit(ctx, "charge.succeeded", charge)
        emit(ctx, "payment_intent.succeeded", pi)
        return True
    code = bank.failure_code or "account_closed"
    message = bank.message or "The customer's bank account has been closed."
    charge.update(
        status="failed",
        paid=False,
        captured=False,
        amount_captured=0,
        failure_code=code,
        failure_message=message,
    )
    charge["outcome"].update(
        network_status="declined_by_network",
        reason=code,
        seller_message="The bank returned this payment.",
        type="issuer_declined",
    )
    pi["status"] = "requires_payment_method"
    # Stripe's error types are api_error, card_error, idempotency_error and
    # invalid_request_error; a failed payment with a payment method is reported as card_error.
    pi["last_payment_error"] = {
        "type": "card_error",
        "code": code,
        "decline_code": None,
        "message": message,
        "charge": charge["id"],
        "payment_method": snapshot(pm),
    }
    emit(ctx, "charge.failed", charge)
    emit(ctx, "payment_intent.payment_failed", pi)
    return False


def _create(ctx: Ctx, p: Params) -> JSON:
    p.only(
        (
            "amount",
            "currency",
            "customer",
            "payment_method",
            "confirm",
            "description",
            "metadata",
            "receipt_email",
            "setup_future_usage",
            "off_session",
            "automatic_payment_methods",
            "payment_method_types",
            "capture_method",
            "statement_descriptor",
            "statement_descriptor_suffix",
            "return_url",
            "error_on_requires_action",
            "confirmation_method",
            "use_stripe_sdk",
            "expand",
            "payment_method_options",
            "shipping",
            "transfer_group",
        )
    )
    amount = p.integer("amount", required=True, minimum=1)
    currency = reference.currency(p.string("currency", required=True))
    assert amount is not None
    reference.check_maximum(amount, currency)
    reference.url(p.string("return_url"), param="return_url")
    reference.email(p.string("receipt_email"), param="receipt_email")
    least = reference.minimum_amount(currency)
    if amount < least:
        raise invalid_request(
            f"Amount must be at least {reference.format_amount(least, currency)}.",
            param="amount",
            code="amount_too_small",
        )
    capture = p.string("capture_method")
    if capture not in (None, "automatic", "automatic_async"):
        raise invalid_request(
            "The emulator only supports automatic capture.", param="capture_method"
        )
    customer = p.string("customer")
    if customer:
        ctx.store.require("customer", customer, param="customer")
    pm_ref = p.string("payment_method")
    # Paying with a card does not save it to the customer (that takes attach or
    # setup_future_usage), so a test id resolves to an unattached clone here.
    pm = resolve(ctx, pm_ref, param="payment_method") if pm_ref else None
    pi = create_intent(
        ctx,
        amount=amount,
        currency=currency,
        customer=customer,
        payment_method=pm["id"] if pm else None,
        description=p.string("description"),
        metadata=merge_metadata({}, p.metadata(), replace=True),
        receipt_email=p.string("receipt_email"),
        setup_future_usage=p.string("setup_future_usage", choices=("on_session", "off_session")),
    )
    if p.boolean("confirm", default=False):
        if pm is None:
            raise invalid_request(
                "You cannot confirm this PaymentIntent because it's missing a payment method.",
                param="payment_method",
                code="payment_intent_unexpected_state",
            )
        error = confirm_intent(ctx, pi, pm)
        if error is not None:
            raise error
    return pi


def _retrieve(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("expand", "client_secret"))
    return ctx.store.require("payment_intent", id, param="intent")


def _update(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(
        (
            "amount",
            "currency",
            "customer",
            "description",
            "metadata",
            "payment_method",
            "receipt_email",
            "setup_future_usage",
            "expand",
            "statement_descriptor",
            "statement_descriptor_suffix",
            "shipping",
        )
    )
    pi = ctx.store.require("payment_intent", id, param="intent")
    check_updatable(pi, p.data)
    if p.has("currency"):
        pi["currency"] = reference.currency(p.string("currency") or pi["currency"])
    if p.has("amount"):
        pi["amount"] = p.integer("amount", minimum=1)
        reference.check_maximum(int(pi["amount"] or 0), pi["currency"])
    if p.has("receipt_email"):
        reference.email(p.string("receipt_email"), param="receipt_email")
    if p.has("customer"):
        customer = p.string("customer")
        if customer:
            ctx.store.require("customer", customer, param="customer")
        pi["customer"] = customer
    for key in ("description", "receipt_email"):
        if p.has(key):
            pi[key] = p.string(key)
    if p.has("payment_method"):
        ref = p.string("payment_method")
        pi["payment_method"] = resolve(ctx, ref, param="payment_method")["id"] if ref else None
        pi["status"] = "requires_confirmation" if ref else "requires_payment_method"
    pi["metadata"] = merge_metadata(pi["metadata"], p.metadata(), replace=False)
    return pi


def _confirm(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(
        (
            "payment_method",
            "off_session",
            "return_url",
            "expand",
            "receipt_email",
            "error_on_requires_action",
            "setup_future_usage",
            "use_stripe_sdk",
            "payment_method_options",
            "mandate_data",
            "shipping",
        )
    )
    pi = ctx.store.require("payment_intent", id, param="intent")
    if pi["status"] not in ("requires_payment_method", "requires_confirmation"):
        raise unexpected_state(pi, "confirm")
    ref = p.string("payment_method") or pi["payment_method"]
    if ref is None:
        raise invalid_request(
            "You cannot confirm this PaymentIntent because it's missing a payment method. To "
            "confirm the PaymentIntent with a payment method, pass payment_method.",
            code="payment_intent_unexpected_state",
            param="payment_method",
        )
    reference.url(p.string("return_url"), param="return_url")
    pm = resolve(ctx, ref, param="payment_method")
    if p.has("receipt_email"):
        pi["receipt_email"] = reference.email(p.string("receipt_email"), param="receipt_email")
    error = confirm_intent(ctx, pi, pm)
    if error is not None:
        raise error
    # Imported here: invoicing builds on this module (an invoice is paid through a
    # PaymentIntent), and only this route needs to call back into it.
    from stripe_emulator.invoicing import on_intent_succeeded

    on_intent_succeeded(ctx, pi)
    return pi


def _cancel(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("cancellation_reason", "expand"))
    pi = ctx.store.require("payment_intent", id, param="intent")
    if pi["status"] not in CANCELABLE:
        raise unexpected_state(pi, "cancel")
    pi.update(
        status="canceled",
        canceled_at=ctx.state.now_for_customer(pi["customer"]),
        cancellation_reason=p.string("cancellation_reason", choices=CANCELLATION_REASONS),
    )
    emit(ctx, "payment_intent.canceled", pi)
    return pi


def _list(ctx: Ctx, p: Params) -> JSON:
    p.only((*PAGINATION, "customer", "created"))
    customer = p.string("customer")
    created = created_filter(p)
    items = ctx.store.all(
        "payment_intent",
        lambda pi: (customer is None or pi["customer"] == customer) and created(pi),
    )
    return paginate(items, p, "/v1/payment_intents")


def _charges(ctx: Ctx, p: Params) -> JSON:
    p.only((*PAGINATION, "customer", "created", "payment_intent"))
    customer, intent = p.string("customer"), p.string("payment_intent")
    created = created_filter(p)
    items = ctx.store.all(
        "charge",
        lambda ch: (
            (customer is None or ch["customer"] == customer)
            and (intent is None or ch["payment_intent"] == intent)
            and created(ch)
        ),
    )
    return paginate(items, p, "/v1/charges")


def _charge_retrieve(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("expand",))
    return ctx.store.require("charge", id, param="charge")


ROUTES = [
    Route("POST", "/v1/payment_intents", _create),
    Route("GET", "/v1/payment_intents", _list),
    Route("GET", "/v1/payment_intents/{id}", _retrieve),
    Route("POST", "/v1/payment_intents/{id}", _update),
    Route("POST", "/v1/payment_intents/{id}/confirm", _confirm),
    Route("POST", "/v1/payment_intents/{id}/cancel", _cancel),
    Route("GET", "/v1/charges", _charges),
    Route("GET", "/v1/charges/{id}", _charge_retrieve),
]
