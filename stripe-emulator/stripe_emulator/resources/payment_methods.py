"""PaymentMethods: Stripe's test cards, attach/detach, and a customer's saved cards.

Routes: ``POST /v1/payment_methods``, ``GET|POST /v1/payment_methods/{id}``,
``POST /v1/payment_methods/{id}/attach|detach``, ``GET /v1/payment_methods``,
``GET /v1/customers/{id}/payment_methods``.

A PaymentMethod that is not attached to a Customer is good for one payment: once a PaymentIntent
charged it (paid or declined) without saving it (``setup_future_usage``), or once it was detached
from its customer, Stripe refuses to use it again (:func:`require_usable`) or to attach it
(:data:`ATTACH_AFTER_USE`). Both refusals are 400 ``invalid_request_error`` without a ``code``,
the shape Stripe sends.

Detaching sends ``payment_method.detached`` (``previous_attributes.customer`` names the customer)
and clears the customer's ``invoice_settings.default_payment_method`` or ``default_source`` when
it was that one (``customer.updated``). Cards saved with the legacy ``source`` parameter of a
customer are ``card_…`` objects that this API serves too (:func:`add_source`).
"""

from __future__ import annotations

from stripe_emulator.cards import (
    TEST_BANK_ACCOUNTS,
    TEST_CARDS,
    TOKENS,
    TestBankAccount,
    TestCard,
    bank_details,
    billing_details,
    card_details,
)
from stripe_emulator.errors import card_error, invalid_request, parameter_missing
from stripe_emulator.events import emit, emit_update
from stripe_emulator.forms import Params, merge_metadata
from stripe_emulator.ids import new_id
from stripe_emulator.lists import PAGINATION, paginate
from stripe_emulator.routing import Route
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON, snapshot

#: Stripe's refusal of a payment with a used-up PaymentMethod (see the module docstring).
REUSE_AFTER_USE = (
    "The provided PaymentMethod was previously used with a PaymentIntent without Customer "
    "attachment, shared with a connected account without Customer attachment, or was detached "
    "from a Customer. It may not be used again. To use a PaymentMethod multiple times, you must "
    "attach it to a Customer first."
)
#: Stripe's refusal to attach a used-up PaymentMethod.
ATTACH_AFTER_USE = (
    "This PaymentMethod was previously used without being attached to a Customer or was "
    "detached from a Customer, and may not be used again."
)


def used_up(ctx: Ctx, pm: JSON) -> bool:
    """Was this PaymentMethod spent without a customer (or detached from one)?"""
    return bool(ctx.store.priv(pm["id"]).get("used_up"))


def use_up(ctx: Ctx, pm: JSON) -> None:
    """Mark an unattached PaymentMethod as spent: no further payment, no attaching."""
    ctx.store.priv(pm["id"])["used_up"] = True


def require_usable(ctx: Ctx, pm: JSON) -> JSON:
    """The PaymentMethod, unless it was spent without a customer (Stripe's 400)."""
    if used_up(ctx, pm):
        raise invalid_request(REUSE_AFTER_USE)
    return pm


def bank_of(ctx: Ctx, pm: JSON) -> TestBankAccount | None:
    """The test bank account behind a ``us_bank_account`` PaymentMethod (None for cards)."""
    bank_id = ctx.store.priv(pm["id"]).get("test_bank")
    return TEST_BANK_ACCOUNTS[bank_id] if bank_id else None


def card_of(ctx: Ctx, pm: JSON) -> TestCard:
    """How charges on this payment method behave (a test knob may override the decline)."""
    private = ctx.store.priv(pm["id"])
    bank = bank_of(ctx, pm)
    if bank is not None:  # a bank debit never declines at once: see bank_of and settle_debit
        return TestCard("us_bank_account", bank.last4, label=bank.label)
    card = TEST_CARDS[private.get("test_card", "pm_card_visa")]
    override = private.get("decline_code", "unset")
    if override == "unset":
        return card
    if override is None:
        return TestCard(
            card.brand, card.last4, label=card.label, requires_action=card.requires_action
        )
    return TestCard(card.brand, card.last4, decline_code=str(override), label=card.label)


def _clone(ctx: Ctx, test_id: str, customer: str | None, *, prefix: str = "pm_") -> JSON:
    card = TEST_CARDS[test_id]
    pm: JSON = {
        "id": new_id(prefix),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": billing_details(),
        "card": card_details(card),
        "created": ctx.state.now_for_customer(customer),
        "customer": None,
        "customer_account": None,
        "livemode": False,
        "metadata": {},
        "type": "card",
    }
    ctx.store.put(pm)
    ctx.store.priv(pm["id"])["test_card"] = test_id
    return pm


def resolve(ctx: Ctx, ref: str, *, param: str, customer: str | None = None) -> JSON:
    """A stored PaymentMethod, or a fresh clone of a Stripe test id.

    With a customer, a test id resolves to the clone already attached to that customer (Stripe's
    documented ``payment_method=pm_card_visa`` + ``default_payment_method=pm_card_visa``
    pattern), or a new one attached to it.
    """
    test_id = TOKENS.get(ref, ref)
    if test_id in TEST_CARDS:
        if customer:
            for pm in ctx.store.all("payment_method"):
                private = ctx.store.priv(pm["id"])
                if pm["customer"] == customer and private.get("test_card") == test_id:
                    return pm
            pm = _clone(ctx, test_id, customer)
            attach(ctx, pm, customer)
            return pm
        return _clone(ctx, test_id, customer)
    return ctx.store.require("payment_method", ref, param=param)


def new_card(ctx: Ctx, test_id: str, customer_id: str | None) -> JSON:
    """A card a person just typed into a hosted page: always a fresh PaymentMethod."""
    if test_id not in TEST_CARDS:
        raise invalid_request(f"Unknown test card {test_id}.", param="payment_method")
    pm = _clone(ctx, test_id, customer_id)
    if customer_id is not None:
        attach(ctx, pm, customer_id)
    return pm


def new_bank_account(ctx: Ctx, test_id: str, customer_id: str) -> JSON:
    """A bank account a person just entered on the hosted Checkout page (ACH Direct Debit)."""
    account = TEST_BANK_ACCOUNTS[test_id]
    pm: JSON = {
        "id": new_id("pm_"),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": billing_details(),
        "created": ctx.state.now_for_customer(customer_id),
        "customer": None,
        "customer_account": None,
        "livemode": False,
        "metadata": {},
        "type": "us_bank_account",
        "us_bank_account": bank_details(account),
    }
    ctx.store.put(pm)
    ctx.store.priv(pm["id"])["test_bank"] = test_id
    return attach(ctx, pm, customer_id)


def attach(ctx: Ctx, pm: JSON, customer_id: str) -> JSON:
    ctx.store.require("customer", customer_id, param="customer")
    if pm["customer"] == customer_id:
        return pm
    if used_up(ctx, pm):
        raise invalid_request(ATTACH_AFTER_USE)
    if pm["customer"] is not None:
        raise invalid_request(
            "The payment method you provided has already been attached to a customer.",
            param="payment_method",
        )
    card = card_of(ctx, pm)
    if card.attach_fails and card.decline_code:
        raise card_error(
            card.error_code,
            card.message,
            decline_code=card.decline_code,
            extra={"payment_method": snapshot(pm)},
        )
    pm["customer"] = customer_id
    emit(ctx, "payment_method.attached", pm)
    return pm


_SOURCE_BRANDS = {"visa": "Visa", "mastercard": "MasterCard", "amex": "American Express"}


def sources_of(ctx: Ctx, customer_id: str) -> list[JSON]:
    """The customer's cards saved through the legacy Sources API (``card_…``), newest first."""
    return ctx.store.all(
        "payment_method",
        lambda pm: pm["customer"] == customer_id and str(pm["id"]).startswith("card_"),
    )


def source_card(pm: JSON) -> JSON:
    """A saved source as the Sources API shows it (a ``card`` object)."""
    card = pm["card"]
    return {
        "id": pm["id"],
        "object": "card",
        "address_city": None,
        "address_country": None,
        "address_line1": None,
        "address_line1_check": None,
        "address_line2": None,
        "address_state": None,
        "address_zip": None,
        "address_zip_check": None,
        "brand": _SOURCE_BRANDS.get(card["brand"], card["brand"]),
        "country": card["country"],
        "customer": pm["customer"],
        "cvc_check": "pass",
        "dynamic_last4": None,
        "exp_month": card["exp_month"],
        "exp_year": card["exp_year"],
        "fingerprint": card["fingerprint"],
        "funding": card["funding"],
        "last4": card["last4"],
        "metadata": {},
        "name": pm["billing_details"]["name"],
        "tokenization_method": None,
        "regulated_status": None,
    }


def add_source(ctx: Ctx, customer: JSON, token: str, *, param: str = "source") -> JSON:
    """``source=tok_visa`` on a customer (the legacy Sources API): the card is saved to the
    customer (``customer.source.created``) and becomes its ``default_source`` when it has none,
    as on Stripe. Like Stripe, the emulator lets a ``card_…`` be used wherever a PaymentMethod
    is (retrieved, listed, charged, detached through the PaymentMethods API)."""
    test_id = TOKENS.get(token)
    if test_id is None:
        raise invalid_request(f"No such token: '{token}'", param=param, code="resource_missing")
    card = TEST_CARDS[test_id]
    if card.attach_fails and card.decline_code:
        raise card_error(card.error_code, card.message, decline_code=card.decline_code)
    pm = _clone(ctx, test_id, customer["id"], prefix="card_")
    pm["customer"] = customer["id"]
    emit(ctx, "customer.source.created", source_card(pm))
    if not customer.get("default_source"):
        customer["default_source"] = pm["id"]
    return pm


def require_source(ctx: Ctx, ref: str, customer_id: str, *, param: str) -> JSON:
    """One of the customer's saved sources (``default_source=card_…``)."""
    for pm in sources_of(ctx, customer_id):
        if pm["id"] == ref:
            return pm
    raise invalid_request(
        f"No such source: '{ref}'", param=param, code="resource_missing", status=404
    )


def require_attached(ctx: Ctx, ref: str, customer_id: str, *, param: str) -> JSON:
    """A payment method usable as the customer's default (must belong to them)."""
    pm = resolve(ctx, ref, param=param, customer=customer_id)
    if pm["customer"] != customer_id:
        raise invalid_request(
            f"The customer does not have a payment method with the ID {ref}. The payment method "
            "must be attached to the customer.",
            param=param,
        )
    return pm


def _create(ctx: Ctx, p: Params) -> JSON:
    p.only(("type", "card", "billing_details", "metadata", "customer", "expand", "allow_redisplay"))
    p.string("type", required=True, choices=("card",))
    card = p.sub("card", required=True)
    assert card is not None
    token = card.string("token")
    if token is None:
        raise parameter_missing("card[token]")
    if TOKENS.get(token, token) not in TEST_CARDS:
        raise invalid_request(
            f"No such token: '{token}'", param="card[token]", code="resource_missing"
        )
    pm = _clone(ctx, TOKENS.get(token, token), None)
    pm["metadata"] = merge_metadata({}, p.metadata(), replace=True)
    details = p.sub("billing_details")
    if details is not None:
        pm["billing_details"]["email"] = details.string("email")
        pm["billing_details"]["name"] = details.string("name")
    return pm


def _retrieve(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("expand",))
    return resolve(ctx, id, param="payment_method")


def _update(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("metadata", "billing_details", "expand", "allow_redisplay"))
    pm = ctx.store.require("payment_method", id, param="payment_method")
    before = snapshot(pm)
    pm["metadata"] = merge_metadata(pm["metadata"], p.metadata(), replace=False)
    details = p.sub("billing_details")
    if details is not None:
        for key in ("email", "name", "phone"):
            if details.has(key):
                pm["billing_details"][key] = details.string(key)
    emit_update(ctx, "payment_method.updated", pm, before)
    return pm


def _attach(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("customer", "expand"))
    customer = p.string("customer", required=True)
    assert customer is not None
    ctx.store.require("customer", customer, param="customer")
    test_id = TOKENS.get(id, id)
    pm = (
        _clone(ctx, test_id, customer)
        if test_id in TEST_CARDS
        else resolve(ctx, id, param="payment_method")
    )
    return attach(ctx, pm, customer)


def _detach(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("expand",))
    pm = ctx.store.require("payment_method", id, param="payment_method")
    if pm["customer"] is None:
        raise invalid_request(
            "The payment method you provided is not attached to a customer so detachment is "
            "impossible.",
            param="payment_method",
        )
    customer = ctx.store.get("customer", pm["customer"])
    detached = snapshot(pm)
    pm["customer"] = None
    use_up(ctx, pm)  # a detached PaymentMethod cannot be used or attached again
    if customer is not None:
        before = snapshot(customer)
        if customer["invoice_settings"]["default_payment_method"] == id:
            customer["invoice_settings"]["default_payment_method"] = None
        if customer.get("default_source") == id:
            # Stripe's rule for a deleted default card: the most recent other one takes over.
            others = sources_of(ctx, customer["id"])
            customer["default_source"] = others[0]["id"] if others else None
        emit_update(ctx, "customer.updated", customer, before)
    # previous_attributes says whose it was: the object itself no longer does.
    emit(ctx, "payment_method.detached", pm, detached)
    return pm


def _list(ctx: Ctx, p: Params) -> JSON:
    p.only((*PAGINATION, "customer", "type"))
    customer = p.string("customer")
    items = ctx.store.all(
        "payment_method", lambda pm: customer is None or pm["customer"] == customer
    )
    return paginate(items, p, "/v1/payment_methods")


def _customer_list(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only((*PAGINATION, "type", "allow_redisplay"))
    ctx.store.require("customer", id, param="customer")
    items = ctx.store.all("payment_method", lambda pm: pm["customer"] == id)
    return paginate(items, p, f"/v1/customers/{id}/payment_methods")


ROUTES = [
    Route("POST", "/v1/payment_methods", _create),
    Route("GET", "/v1/payment_methods", _list),
    Route("GET", "/v1/payment_methods/{id}", _retrieve),
    Route("POST", "/v1/payment_methods/{id}", _update),
    Route("POST", "/v1/payment_methods/{id}/attach", _attach),
    Route("POST", "/v1/payment_methods/{id}/detach", _detach),
    Route("GET", "/v1/customers/{id}/payment_methods", _customer_list),
]
