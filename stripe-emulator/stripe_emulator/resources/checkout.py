"""Checkout Sessions (``mode=subscription`` and ``mode=payment``).

Routes: ``POST /v1/checkout/sessions``, ``GET|POST /v1/checkout/sessions/{id}``,
``POST /v1/checkout/sessions/{id}/expire``, ``GET /v1/checkout/sessions`` and
``GET /v1/checkout/sessions/{id}/line_items`` (also includable via ``expand[]=line_items``).

A session's ``url`` is the emulator's hosted page (``ui_mode=hosted_page``, Stripe's default
and the only mode emulated: the others are refused; see :mod:`pages`), which calls
:func:`complete` when the buyer pays: that creates the customer (if needed), the payment method,
the subscription and its paid first invoice (or a PaymentIntent in payment mode), marks the
session ``complete``/``paid`` and emits ``checkout.session.completed``. A declined test card
changes nothing.

A subscription-mode session in ``usd`` also offers ACH Direct Debit (``us_bank_account``, a
*delayed notification* payment method; Stripe lists it in ``payment_method_types`` when it is
eligible). Paying with a test bank account completes the session with ``payment_status:
"unpaid"`` — the subscription ``incomplete``, its first invoice ``open``, the PaymentIntent
``processing`` — and ``checkout.session.async_payment_succeeded`` or ``..._failed`` follows when
the debit settles (see :mod:`settlement`).

A metered price (``recurring[usage_type]=metered``) is a line item without ``quantity`` (Stripe
refuses one): it costs nothing at checkout, shows on the hosted page as billed by usage, and
becomes a metered item of the subscription, billed in arrears (see :mod:`billing`).

``discounts=[{promotion_code}|{coupon}]`` are checked when the session is made (and again when
it is paid), lower its ``amount_total`` and line items (``total_details.amount_discount``), and
are redeemed onto the subscription it creates. ``allow_promotion_codes=true`` (never with
``discounts``) lets the buyer enter a code on the hosted page instead. Both in subscription mode
only.
"""

from __future__ import annotations

from stripe_emulator import discounts, reference
from stripe_emulator.billing import ItemSpec, check_prices, start_subscription
from stripe_emulator.cards import TEST_BANK_ACCOUNTS, TEST_CARDS
from stripe_emulator.errors import StripeError, card_error, invalid_request, unsupported
from stripe_emulator.events import emit
from stripe_emulator.expand import register_includable
from stripe_emulator.forms import Params, merge_metadata
from stripe_emulator.ids import new_id
from stripe_emulator.lists import PAGINATION, created_filter, list_object, paginate
from stripe_emulator.metering import is_metered, transform
from stripe_emulator.resources.catalog import create_price
from stripe_emulator.resources.customers import new_customer
from stripe_emulator.resources.payment_intents import confirm_intent, create_intent
from stripe_emulator.resources.payment_methods import new_bank_account, new_card
from stripe_emulator.routing import Route
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON, snapshot

_ACCEPTED = (
    "mode",
    "line_items",
    "success_url",
    "cancel_url",
    "customer",
    "customer_email",
    "client_reference_id",
    "metadata",
    "subscription_data",
    "payment_intent_data",
    "expires_at",
    "allow_promotion_codes",
    "billing_address_collection",
    "payment_method_types",
    "customer_creation",
    "locale",
    "ui_mode",
    "automatic_tax",
    "tax_id_collection",
    "consent_collection",
    "custom_text",
    "phone_number_collection",
    "submit_type",
    "saved_payment_method_options",
    "payment_method_collection",
    "invoice_creation",
    "discounts",
    "expand",
    "currency",
    "customer_update",
    "return_url",
    "redirect_on_completion",
    "payment_method_options",
    "shipping_address_collection",
    "custom_fields",
    "origin_context",
    "managed_payments",
)
#: ``ui_mode`` values of the pinned API version (the SDK's ``SessionCreateParams``; since
#: 2026-03-25.dahlia, which removed ``hosted``/``embedded``/``custom``). Only the hosted page
#: exists here: the others need Stripe.js on the integrator's own page.
UI_MODES = ("elements", "embedded_page", "form", "hosted_page")


def _line_items(ctx: Ctx, p: Params, mode: str) -> list[JSON]:
    """Validated line items as ``item`` objects (the shape ``line_items`` returns)."""
    items: list[JSON] = []
    for line in p.hashes("line_items", required=True):
        line.only(
            (
                "price",
                "price_data",
                "quantity",
                "metadata",
                "adjustable_quantity",
                "tax_rates",
                "dynamic_tax_rates",
            )
        )
        price_data = line.sub("price_data")
        if price_data is not None:
            price_data.only(
                (
                    "currency",
                    "product",
                    "product_data",
                    "unit_amount",
                    "unit_amount_decimal",
                    "recurring",
                    "tax_behavior",
                )
            )
            price = create_price(ctx, price_data)
        else:
            price_id = line.string("price", required=True)
            price = ctx.store.require("price", price_id, param=line.path("price"))
        if not price["active"]:
            raise invalid_request(
                f"The price `{price['id']}` is not active.", param=line.path("price")
            )
        if mode == "payment" and price["type"] == "recurring":
            raise invalid_request(
                "You must be in subscription mode to specify a recurring price.",
                param=line.path("price"),
            )
        quantity: int | None = line.integer("quantity", minimum=0)
        if is_metered(price):
            # Usage is billed in arrears: a metered line item has no quantity and costs 0 now.
            if quantity is not None:
                raise invalid_request(
                    "Quantity should not be specified where usage_type is `metered`. Remove "
                    f"quantity from `{line.name}`",
                    param=line.path("quantity"),
                )
            amount = 0
        else:
            quantity = 1 if quantity is None else quantity
            amount = int(price["unit_amount"] or 0) * transform(price, quantity)
        product = ctx.store.get("product", price["product"])
        items.append(
            {
                "id": new_id("li_"),
                "object": "item",
                "adjustable_quantity": None,
                "amount_discount": 0,
                "amount_subtotal": amount,
                "amount_tax": 0,
                "amount_total": amount,
                "currency": price["currency"],
                "description": product["name"] if product else None,
                "metadata": merge_metadata({}, line.metadata(), replace=True),
                "price": snapshot(price),
                "quantity": quantity,
            }
        )
    if mode == "subscription":
        if not any(item["price"]["type"] == "recurring" for item in items):
            raise invalid_request(
                "You must specify at least one recurring price in `subscription` mode when "
                "using prices.",
                param="line_items",
            )
        check_prices(
            [
                ItemSpec(i["price"], i["quantity"])
                for i in items
                if i["price"]["type"] == "recurring"
            ],
            param="line_items",
        )
    return items


def _create(ctx: Ctx, p: Params) -> JSON:
    p.only(_ACCEPTED)
    mode = p.string("mode", required=True, choices=("payment", "subscription", "setup"))
    if mode == "setup":
        raise invalid_request("The emulator does not support mode=setup.", param="mode")
    assert mode is not None
    for key in ("success_url", "cancel_url", "return_url"):
        reference.url(p.string(key), param=key)
    reference.email(p.string("customer_email"), param="customer_email")
    if p.has("currency"):
        reference.currency(p.string("currency"))
    customer_id = p.string("customer")
    if customer_id:
        ctx.store.require("customer", customer_id, param="customer")
    if customer_id and p.has("customer_email"):
        raise invalid_request(
            "You may only specify one of these parameters: customer, customer_email.",
            param="customer_email",
        )
    ui_mode = p.string("ui_mode", choices=UI_MODES) or "hosted_page"
    if ui_mode != "hosted_page":
        raise unsupported("ui_mode", f" (`{ui_mode}`; only `hosted_page`)")
    managed = p.sub("managed_payments")
    if managed is not None:
        managed.only(("enabled",))
        if managed.boolean("enabled"):
            raise unsupported("managed_payments", " (Stripe as merchant of record)")
    items = _line_items(ctx, p, mode)
    now = ctx.state.now()
    refs = _discounts(ctx, p, mode, customer_id, items, now)
    expires_at = p.integer("expires_at") or now + ctx.state.config.checkout_session_ttl
    if not now + 1800 <= expires_at <= now + 86400:
        raise invalid_request(
            "The `expires_at` timestamp must be between 30 minutes and 24 hours from now.",
            param="expires_at",
        )
    subscription_data = p.sub("subscription_data")
    trial_days: int | None = None
    if subscription_data is not None:
        if mode != "subscription":
            raise invalid_request(
                "You can only specify `subscription_data` in `subscription` mode.",
                param="subscription_data",
            )
        subscription_data.only(
            (
                "metadata",
                "trial_period_days",
                "trial_end",
                "description",
                "default_tax_rates",
                "trial_settings",
                "billing_cycle_anchor",
                "proration_behavior",
                "application_fee_percent",
                "on_behalf_of",
                "transfer_data",
                "invoice_settings",
                "billing_mode",
            )
        )
        trial_days = subscription_data.integer("trial_period_days", minimum=1, maximum=730)
    intent_data = p.sub("payment_intent_data")
    if intent_data is not None and mode != "payment":
        raise invalid_request(
            "You can only specify `payment_intent_data` in `payment` mode.",
            param="payment_intent_data",
        )
    subtotal = sum(int(item["amount_subtotal"]) for item in items)
    discount = 0 if trial_days else _price_discounts(ctx, refs, items)
    total = 0 if trial_days else subtotal - discount
    currency = items[0]["currency"]
    # Without payment_method_types Stripe offers what is enabled and eligible (dynamic payment
    # methods): cards, and ACH Direct Debit for usd subscriptions here.
    method_types = p.strings("payment_method_types") or (
        ["card", "us_bank_account"] if mode == "subscription" and currency == "usd" else ["card"]
    )
    session_id = new_id("cs_test_", 58)
    session: JSON = {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": None,
        "after_expiration": None,
        "allow_promotion_codes": p.boolean("allow_promotion_codes"),
        "amount_subtotal": subtotal,
        "amount_total": total,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": p.string("billing_address_collection"),
        "cancel_url": p.string("cancel_url"),
        "client_reference_id": p.string("client_reference_id", max_length=200),
        "client_secret": None,
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": now,
        "currency": currency,
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": customer_id,
        "customer_account": None,
        "customer_creation": None
        if mode == "subscription" or customer_id
        else (p.string("customer_creation", choices=("always", "if_required")) or "if_required"),
        "customer_details": None,
        "customer_email": p.string("customer_email"),
        "discounts": [_session_discount(ref) for ref in refs],
        "expires_at": expires_at,
        "integration_identifier": None,
        "invoice": None,
        "invoice_creation": None,
        "livemode": False,
        "locale": p.string("locale"),
        "managed_payments": None,
        "metadata": merge_metadata({}, p.metadata(), replace=True),
        "mode": mode,
        "origin_context": None,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "always",
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": method_types,
        "payment_status": "unpaid",
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": p.string("submit_type"),
        "subscription": None,
        "success_url": p.string("success_url"),
        "total_details": {"amount_discount": discount, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": ui_mode,
        "url": ctx.url(f"/checkout/{session_id}"),
        "wallet_options": None,
    }
    ctx.store.put(session)
    ctx.store.priv(session_id).update(
        items=items,
        subscription_metadata=subscription_data.metadata() if subscription_data else None,
        trial_period_days=trial_days,
        subscription_description=subscription_data.string("description")
        if subscription_data
        else None,
        intent_metadata=intent_data.metadata() if intent_data else None,
        intent_description=intent_data.string("description") if intent_data else None,
        discounts=[_stored(ref) for ref in refs],
    )
    return session


def _discounts(
    ctx: Ctx, p: Params, mode: str, customer_id: str | None, items: list[JSON], now: int
) -> list[discounts.Reference]:
    """``discounts`` (checked now, redeemed when the session completes) or
    ``allow_promotion_codes`` (the buyer enters a code on the hosted page): one or the other,
    in subscription mode (the emulator does not discount one-time payments)."""
    refs = discounts.references(ctx, p)
    allow = p.boolean("allow_promotion_codes")
    if refs is not None and allow is not None:
        raise invalid_request(
            "You may only specify one of these parameters: allow_promotion_codes, discounts.",
            param="allow_promotion_codes",
        )
    if mode != "subscription" and (refs or allow):
        raise unsupported("discounts" if refs else "allow_promotion_codes", " in payment mode")
    if not refs:
        return []
    return discounts.check(ctx, refs, _purchase(customer_id, items, now))


def _purchase(customer_id: str | None, items: list[JSON], now: int) -> discounts.Purchase:
    return discounts.Purchase(
        customer=customer_id,
        currency=str(items[0]["currency"]),
        products=tuple(str(item["price"]["product"]) for item in items),
        amount=sum(int(item["amount_subtotal"]) for item in items),
        now=now,
    )


def _price_discounts(ctx: Ctx, refs: list[discounts.Reference], items: list[JSON]) -> int:
    """Set each line item's discount (as its first invoice will take it); the total."""
    amounts = discounts.checkout_amounts(ctx, refs, items)
    for item, amount in zip(items, amounts, strict=True):
        item["amount_discount"] = amount
        item["amount_total"] = int(item["amount_subtotal"]) - amount
    return sum(amounts)


def _session_discount(ref: discounts.Reference) -> JSON:
    if ref.promotion_code is not None:
        return {"coupon": None, "promotion_code": ref.promotion_code["id"]}
    return {"coupon": ref.coupon["id"], "promotion_code": None}


def _stored(ref: discounts.Reference) -> JSON:
    promo = ref.promotion_code["id"] if ref.promotion_code else None
    return {"param": ref.param, "coupon": ref.coupon["id"], "promotion_code": promo}


def _references(ctx: Ctx, session: JSON, entered: str | None) -> list[discounts.Reference]:
    """The session's discounts, or the code the buyer entered where codes are allowed."""
    stored: list[JSON] = ctx.store.priv(session["id"]).get("discounts", [])
    refs = [
        discounts.Reference(
            str(row["param"]),
            ctx.store.require("coupon", row["coupon"], param=str(row["param"])),
            ctx.store.get("promotion_code", row["promotion_code"])
            if row["promotion_code"]
            else None,
        )
        for row in stored
    ]
    if entered and session["allow_promotion_codes"]:
        found = [
            promo
            for promo in ctx.store.all("promotion_code")
            if promo["code"].lower() == entered.strip().lower()
            and promo["customer"] in (None, session["customer"])
        ]
        found.sort(key=lambda promo: not ctx.store.priv(promo["id"]).get("active"))
        if not found:
            raise invalid_request("This code is invalid.", param="promotion_code")
        promo = found[0]
        coupon = ctx.store.get("coupon", str(promo["promotion"]["coupon"]))
        assert coupon is not None
        refs = [discounts.Reference("promotion_code", coupon, promo)]
    return refs


def line_items(ctx: Ctx, session: JSON) -> JSON:
    items: list[JSON] = ctx.store.priv(session["id"]).get("items", [])
    return list_object(items, f"/v1/checkout/sessions/{session['id']}/line_items")


register_includable("checkout.session", "line_items", line_items)


def expire_if_due(ctx: Ctx, session: JSON) -> None:
    if session["status"] == "open" and ctx.state.now() >= int(session["expires_at"]):
        # Stripe expires sessions on its own: the request that notices it did not cause it.
        expire(ctx.background(), session)


def expire(ctx: Ctx, session: JSON) -> None:
    session["status"] = "expired"
    emit(ctx, "checkout.session.expired", session)


def require_session(ctx: Ctx, session_id: str) -> JSON:
    session = ctx.store.require("checkout.session", session_id, param="session")
    expire_if_due(ctx, session)
    return session


def complete(
    ctx: Ctx,
    session: JSON,
    card_id: str,
    email: str | None,
    name: str | None,
    *,
    promotion_code: str | None = None,
) -> StripeError | None:
    """The buyer pressed Pay with a test card (and, where the session allows codes, maybe
    entered a ``promotion_code``). Returns the decline or refusal, if any (nothing changes)."""
    if session["status"] != "open":
        return invalid_request("This Checkout Session is no longer active.")
    items: list[JSON] = ctx.store.priv(session["id"])["items"]
    try:
        # Checked again: the code may have expired or been used up since the session began.
        refs = discounts.check(
            ctx,
            _references(ctx, session, promotion_code),
            _purchase(session["customer"], items, ctx.state.now_for_customer(session["customer"])),
        )
    except StripeError as refused:
        return refused
    card = TEST_CARDS.get(card_id)
    bank = TEST_BANK_ACCOUNTS.get(card_id)
    if card is None and bank is None:
        return invalid_request(f"Unknown test card {card_id}.", param="payment_method")
    if bank is not None and not offers_bank_debit(session):
        return invalid_request(
            "The payment method type us_bank_account is not available for this Checkout Session.",
            param="payment_method",
        )
    if card is not None and card.decline_code:
        return card_error(card.error_code, card.message, decline_code=card.decline_code)
    try:
        reference.email(email)
    except StripeError as invalid:
        return invalid
    private = ctx.store.priv(session["id"])
    email = email or session["customer_email"]
    customer_id = session["customer"]
    if customer_id is None and (
        session["mode"] == "subscription" or session["customer_creation"] == "always"
    ):
        customer_id = new_customer(ctx, email=email, name=name)["id"]
    elif customer_id is not None:
        existing = ctx.store.require("customer", customer_id)
        email = email or existing["email"]
        name = name or existing["name"]
    if bank is not None:
        assert customer_id is not None  # subscription mode always has a customer
        pm = new_bank_account(ctx, card_id, customer_id)
    else:
        pm = new_card(ctx, card_id, customer_id)
        # The buyer is on the page: a 3D Secure challenge is completed here, for this payment.
        ctx.store.priv(pm["id"])["authenticate_next"] = True
    pm["billing_details"]["email"] = email
    pm["billing_details"]["name"] = name
    if refs and not private.get("discounts"):
        # A code entered on the page: the session shows it, and what it takes off, from now.
        if not private.get("trial_period_days"):
            discount = _price_discounts(ctx, refs, items)
            session["total_details"]["amount_discount"] = discount
            session["amount_total"] = int(session["amount_subtotal"]) - discount
        session["discounts"] = [_session_discount(ref) for ref in refs]
    if session["mode"] == "subscription":
        assert customer_id is not None
        trial_days = private.get("trial_period_days")
        now = ctx.state.now_for_customer(customer_id)
        sub = start_subscription(
            ctx,
            customer_id=customer_id,
            specs=[
                ItemSpec(ctx.store.require("price", i["price"]["id"]), i["quantity"])
                for i in items
                if i["price"]["type"] == "recurring"
            ],
            default_payment_method=pm["id"],
            metadata=private.get("subscription_metadata"),
            trial_end=now + int(trial_days) * 86400 if trial_days else None,
            description=private.get("subscription_description"),
            discounts=refs,
            checkout_session=session["id"],
        )
        invoice = ctx.store.require("invoice", sub["latest_invoice"])
        # A bank debit leaves the first invoice open (processing): "unpaid" until it settles.
        paid = "paid" if invoice["status"] == "paid" else "unpaid"
        session.update(
            subscription=sub["id"],
            invoice=sub["latest_invoice"],
            payment_status="no_payment_required" if trial_days else paid,
        )
    else:
        pi = create_intent(
            ctx,
            amount=int(session["amount_total"]),
            currency=session["currency"],
            customer=customer_id,
            payment_method=pm["id"],
            description=private.get("intent_description"),
            metadata=private.get("intent_metadata"),
        )
        error = confirm_intent(ctx, pi, pm)
        if error is not None:
            return error
        session.update(payment_intent=pi["id"], payment_status="paid")
    ctx.store.priv(pm["id"]).pop("authenticate_next", None)  # this payment only
    session.update(
        status="complete",
        customer=customer_id,
        customer_details={
            "address": None,
            "business_name": None,
            "email": email,
            "individual_name": None,
            "name": name,
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
        },
    )
    emit(ctx, "checkout.session.completed", session)
    return None


def offers_bank_debit(session: JSON) -> bool:
    return (
        session["mode"] == "subscription"
        and session["currency"] == "usd"
        and "us_bank_account" in session["payment_method_types"]
    )


def offers_cards(session: JSON) -> bool:
    return "card" in session["payment_method_types"]


def success_redirect(session: JSON) -> str | None:
    url = session["success_url"]
    return url.replace("{CHECKOUT_SESSION_ID}", session["id"]) if url else None


def _retrieve(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("expand",))
    return require_session(ctx, id)


def _update(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("metadata", "expand", "collected_information", "shipping_options"))
    session = require_session(ctx, id)
    session["metadata"] = merge_metadata(session["metadata"], p.metadata(), replace=False)
    return session


def _expire(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("expand",))
    session = require_session(ctx, id)
    if session["status"] != "open":
        raise invalid_request(
            f'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout '
            f'Session has a status of "{session["status"]}".',
            param="session",
        )
    expire(ctx, session)
    return session


def _list(ctx: Ctx, p: Params) -> JSON:
    p.only(
        (
            *PAGINATION,
            "customer",
            "subscription",
            "payment_intent",
            "status",
            "created",
            "customer_details",
            "payment_link",
        )
    )
    customer, subscription = p.string("customer"), p.string("subscription")
    intent = p.string("payment_intent")
    status = p.string("status", choices=("open", "complete", "expired"))
    created = created_filter(p)
    for session in ctx.store.all("checkout.session"):
        expire_if_due(ctx, session)
    items = ctx.store.all(
        "checkout.session",
        lambda s: (
            (customer is None or s["customer"] == customer)
            and (subscription is None or s["subscription"] == subscription)
            and (intent is None or s["payment_intent"] == intent)
            and (status is None or s["status"] == status)
            and created(s)
        ),
    )
    return paginate(items, p, "/v1/checkout/sessions")


def _line_items_route(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(PAGINATION)
    session = require_session(ctx, id)
    items: list[JSON] = list(ctx.store.priv(id).get("items", []))
    return paginate(items, p, f"/v1/checkout/sessions/{session['id']}/line_items")


ROUTES = [
    Route("POST", "/v1/checkout/sessions", _create),
    Route("GET", "/v1/checkout/sessions", _list),
    Route("GET", "/v1/checkout/sessions/{id}", _retrieve),
    Route("POST", "/v1/checkout/sessions/{id}", _update),
    Route("POST", "/v1/checkout/sessions/{id}/expire", _expire),
    Route("GET", "/v1/checkout/sessions/{id}/line_items", _line_items_route),
]
