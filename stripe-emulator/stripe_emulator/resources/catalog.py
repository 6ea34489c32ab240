"""The catalog: Products and Prices.

Routes: ``POST /v1/products``, ``GET|POST|DELETE /v1/products/{id}``, ``GET /v1/products``,
``GET /v1/products/search``; ``POST /v1/prices``, ``GET|POST /v1/prices/{id}``, ``GET /v1/prices``
(``lookup_keys[]``, ``product``, ``active``, ``type``, ``recurring[interval]`` filters),
``GET /v1/prices/search``. Custom ids are allowed (``id=plan_pro``), as on Stripe, which makes
catalog sync idempotent by construction. A product with prices cannot be deleted.
A ``lookup_key`` is unique among prices; ``transfer_lookup_key=true`` moves it, which is how a
catalog sync re-points a plan at a new price. Prices cannot be deleted (only deactivated).

Usage-based prices: ``recurring[usage_type]=metered`` needs ``recurring[meter]``, an active
billing meter (see :mod:`resources.meters`); ``transform_quantity[divide_by]`` +
``[round]=up|down`` bills packages of units (``billing_scheme=per_unit`` only: tiers are refused
as not emulated, and never combine with ``transform_quantity``).
"""

from __future__ import annotations

from stripe_emulator import reference
from stripe_emulator.errors import invalid_request, unsupported
from stripe_emulator.events import emit, emit_update
from stripe_emulator.forms import Params, merge_metadata
from stripe_emulator.ids import new_id
from stripe_emulator.lists import PAGINATION, created_filter, paginate
from stripe_emulator.routing import Route
from stripe_emulator.search import search
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON, snapshot

_WRITABLE = (
    "name",
    "description",
    "active",
    "metadata",
    "images",
    "marketing_features",
    "url",
    "statement_descriptor",
    "tax_code",
    "unit_label",
    "shippable",
    "package_dimensions",
    "expand",
)


def _apply(product: JSON, p: Params, *, creating: bool) -> None:
    for key in ("name", "description", "url", "statement_descriptor", "tax_code", "unit_label"):
        if p.has(key):
            product[key] = p.string(key)
    if p.has("active"):
        product["active"] = p.boolean("active", default=True)
    if p.has("shippable"):
        product["shippable"] = p.boolean("shippable")
    if p.has("images"):
        product["images"] = p.strings("images")
    if p.has("marketing_features"):
        product["marketing_features"] = [
            {"name": feature.string("name", required=True)}
            for feature in p.hashes("marketing_features")
        ]
    product["metadata"] = merge_metadata(product["metadata"], p.metadata(), replace=creating)


def create_product(ctx: Ctx, p: Params) -> JSON:
    name = p.string("name", required=True)
    product_id = p.string("id") or new_id("prod_", 14)
    if ctx.store.get("product", product_id) is not None:
        raise invalid_request("Product already exists.", param="id", code="resource_already_exists")
    now = ctx.state.now()
    product: JSON = {
        "id": product_id,
        "object": "product",
        "active": True,
        "created": now,
        "default_price": None,
        "description": None,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": {},
        "name": name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": None,
        "updated": now,
        "url": None,
    }
    _apply(product, p, creating=True)
    ctx.store.put(product)
    emit(ctx, "product.created", product)
    return product


def _create(ctx: Ctx, p: Params) -> JSON:
    p.only((*_WRITABLE, "id", "default_price_data", "type"))
    product = create_product(ctx, p)
    price_data = p.sub("default_price_data")
    if price_data is not None:
        price_data.only(
            (
                "currency",
                "unit_amount",
                "unit_amount_decimal",
                "recurring",
                "tax_behavior",
                "metadata",
                "currency_options",
                "custom_unit_amount",
            )
        )
        price = create_price(ctx, price_data, product_id=product["id"])
        product["default_price"] = price["id"]
    return product


def _retrieve(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("expand",))
    return ctx.store.require("product", id)


def _update(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only((*_WRITABLE, "default_price"))
    product = ctx.store.require("product", id)
    before = snapshot(product)
    _apply(product, p, creating=False)
    if p.has("default_price"):
        price_id = p.string("default_price")
        if price_id:
            price = ctx.store.require("price", price_id, param="default_price")
            if price["product"] != id:
                raise invalid_request(
                    "The default price must belong to this product.", param="default_price"
                )
        product["default_price"] = price_id
    if product != before:
        product["updated"] = ctx.state.now()
    emit_update(ctx, "product.updated", product, before)
    return product


def _delete(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(())
    product = ctx.store.require("product", id)
    if ctx.store.all("price", lambda price: price["product"] == id):
        raise invalid_request(
            "This product cannot be deleted because it has one or more user-created prices.",
        )
    ctx.store.remove("product", id)
    emit(ctx, "product.deleted", product)
    return {"id": id, "object": "product", "deleted": True}


def _list(ctx: Ctx, p: Params) -> JSON:
    p.only((*PAGINATION, "active", "ids", "created", "shippable", "url"))
    active = p.boolean("active")
    ids = set(p.strings("ids"))
    created = created_filter(p)
    items = ctx.store.all(
        "product",
        lambda prod: (
            (active is None or prod["active"] == active)
            and (not ids or prod["id"] in ids)
            and created(prod)
        ),
    )
    return paginate(items, p, "/v1/products")


def _search(ctx: Ctx, p: Params) -> JSON:
    return search(ctx, p, "product", "/v1/products/search")


_PRICE_PARAMS = (
    "currency",
    "unit_amount",
    "unit_amount_decimal",
    "product",
    "product_data",
    "recurring",
    "lookup_key",
    "transfer_lookup_key",
    "nickname",
    "metadata",
    "active",
    "tax_behavior",
    "billing_scheme",
    "expand",
    "currency_options",
    "custom_unit_amount",
    "tiers",
    "tiers_mode",
    "transform_quantity",
)


def _claim_lookup_key(ctx: Ctx, price: JSON, key: str | None, transfer: bool) -> None:
    if key is None:
        return
    for other in ctx.store.all("price"):
        if other is not price and other["lookup_key"] == key:
            if not transfer:
                raise invalid_request(
                    f"A price ({other['id']}) already uses that lookup key.",
                    param="lookup_key",
                )
            before = snapshot(other)
            other["lookup_key"] = None
            emit_update(ctx, "price.updated", other, before)
    price["lookup_key"] = key


def _recurring(ctx: Ctx, p: Params) -> JSON | None:
    """``recurring``; a metered price needs a meter, as on every API version since
    2025-03-31.basil removed legacy usage-based prices (and ``aggregate_usage``)."""
    params = p.sub("recurring")
    if params is None:
        return None
    params.only(("interval", "interval_count", "usage_type", "meter", "trial_period_days"))
    interval = params.string("interval", required=True, choices=("day", "week", "month", "year"))
    count = params.integer("interval_count", minimum=1) or 1
    limit = {"day": 1095, "week": 156, "month": 36, "year": 3}[interval or "month"]
    if count > limit:
        raise invalid_request(
            "The maximum billing interval is three years.", param=params.path("interval_count")
        )
    usage_type = params.string("usage_type", choices=("licensed", "metered")) or "licensed"
    meter_id = params.string("meter")
    if usage_type == "metered" and meter_id is None:
        raise invalid_request(
            f"Missing required param: {params.path('meter')}. A price with usage_type=metered "
            "must be attached to a billing meter: legacy usage-based prices (metered without a "
            "meter) were removed in API version 2025-03-31.basil.",
            param=params.path("meter"),
            code="parameter_missing",
        )
    if meter_id is not None:
        if usage_type != "metered":
            raise invalid_request(
                f"{params.path('meter')} can only be set when {params.path('usage_type')} is "
                "`metered`.",
                param=params.path("meter"),
            )
        meter = ctx.store.require("billing.meter", meter_id, param=params.path("meter"))
        if meter["status"] != "active":
            raise invalid_request(
                f"The meter {meter_id} is deactivated: you can't attach a deactivated meter to "
                "a price.",
                param=params.path("meter"),
            )
    return {
        "interval": interval,
        "interval_count": count,
        "meter": meter_id,
        "trial_period_days": params.integer("trial_period_days", minimum=0),
        "usage_type": usage_type,
    }


def _transform_quantity(p: Params) -> JSON | None:
    """``transform_quantity`` (package pricing), never with tiers; tiers are not emulated."""
    for name in ("tiers", "tiers_mode"):
        if p.has(name):
            raise unsupported(p.path(name), " (tiered pricing)")
    scheme = p.string("billing_scheme", choices=("per_unit", "tiered"))
    params = p.sub("transform_quantity")
    if scheme == "tiered":
        if params is not None:
            raise invalid_request(
                "transform_quantity cannot be combined with tiered pricing "
                "(billing_scheme=tiered).",
                param=p.path("transform_quantity"),
            )
        raise unsupported(p.path("billing_scheme"), " (only `per_unit`; tiers are not emulated)")
    if params is None:
        return None
    params.only(("divide_by", "round"))
    divide_by = params.integer("divide_by", required=True, minimum=1)
    rounding = params.string("round", required=True, choices=("down", "up"))
    return {"divide_by": divide_by, "round": rounding}


def create_price(ctx: Ctx, p: Params, *, product_id: str | None = None) -> JSON:
    """Create a price; ``product_id`` is set when called through ``default_price_data``."""
    currency = reference.currency(p.string("currency", required=True), param=p.path("currency"))
    decimal = p.string("unit_amount_decimal")
    unit_amount = p.integer("unit_amount", minimum=0)
    if unit_amount is None and decimal is not None:
        unit_amount = int(float(decimal))
    if unit_amount is None:
        raise invalid_request(
            "Missing required param: unit_amount.", param="unit_amount", code="parameter_missing"
        )
    if product_id is None:
        product_data = p.sub("product_data")
        if product_data is not None:
            product_data.only(
                (
                    "name",
                    "active",
                    "metadata",
                    "statement_descriptor",
                    "tax_code",
                    "unit_label",
                    "id",
                )
            )
            product_id = create_product(ctx, product_data)["id"]
        else:
            product_id = p.string("product", required=True)
            ctx.store.require("product", product_id, param="product")
    recurring = _recurring(ctx, p)
    transform = _transform_quantity(p)
    price: JSON = {
        "id": new_id("price_"),
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "created": ctx.state.now(),
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": None,
        "metadata": merge_metadata({}, p.metadata(), replace=True),
        "nickname": p.string("nickname"),
        "product": product_id,
        "recurring": recurring,
        "tax_behavior": p.string("tax_behavior", choices=("inclusive", "exclusive", "unspecified"))
        or "unspecified",
        "tiers_mode": None,
        "transform_quantity": transform,
        "type": "recurring" if recurring else "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": decimal or str(unit_amount),
    }
    if p.has("active"):
        price["active"] = p.boolean("active", default=True)
    _claim_lookup_key(
        ctx, price, p.string("lookup_key", max_length=200), bool(p.boolean("transfer_lookup_key"))
    )
    ctx.store.put(price)
    emit(ctx, "price.created", price)
    return price


def _price_create(ctx: Ctx, p: Params) -> JSON:
    p.only(_PRICE_PARAMS)
    return create_price(ctx, p)


def _price_retrieve(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(("expand",))
    return ctx.store.require("price", id)


def _price_update(ctx: Ctx, p: Params, id: str) -> JSON:
    p.only(
        (
            "active",
            "lookup_key",
            "transfer_lookup_key",
            "metadata",
            "nickname",
            "tax_behavior",
            "expand",
            "currency_options",
        )
    )
    price = ctx.store.require("price", id)
    before = snapshot(price)
    if p.has("active"):
        price["active"] = p.boolean("active", default=True)
    if p.has("nickname"):
        price["nickname"] = p.string("nickname")
    if p.has("tax_behavior"):
        price["tax_behavior"] = p.string(
            "tax_behavior", choices=("inclusive", "exclusive", "unspecified")
        )
    if p.has("lookup_key"):
        key = p.string("lookup_key", max_length=200)
        if key is None:
            price["lookup_key"] = None
        else:
            _claim_lookup_key(ctx, price, key, bool(p.boolean("transfer_lookup_key")))
    price["metadata"] = merge_metadata(price["metadata"], p.metadata(), replace=False)
    emit_update(ctx, "price.updated", price, before)
    return price


def _price_list(ctx: Ctx, p: Params) -> JSON:
    p.only(
        (
            *PAGINATION,
            "active",
            "currency",
            "product",
            "type",
            "lookup_keys",
            "recurring",
            "created",
        )
    )
    active = p.boolean("active")
    currency, product = p.string("currency"), p.string("product")
    kind = p.string("type", choices=("one_time", "recurring"))
    lookup_keys = set(p.strings("lookup_keys"))
    if len(lookup_keys) > 10:
        raise invalid_request("You may pass at most 10 lookup keys.", param="lookup_keys")
    recurring = p.sub("recurring")
    interval = recurring.string("interval") if recurring else None
    created = created_filter(p)
    items = ctx.store.all(
        "price",
        lambda price: (
            (active is None or price["active"] == active)
            and (currency is None or price["currency"] == currency)
            and (product is None or price["product"] == product)
            and (kind is None or price["type"] == kind)
            and (not lookup_keys or price["lookup_key"] in lookup_keys)
            and (interval is None or (price["recurring"] or {}).get("interval") == interval)
            and created(price)
        ),
    )
    return paginate(items, p, "/v1/prices")


def _price_search(ctx: Ctx, p: Params) -> JSON:
    return search(ctx, p, "price", "/v1/prices/search")


ROUTES = [
    Route("POST", "/v1/products", _create),
    Route("GET", "/v1/products", _list),
    Route("GET", "/v1/products/search", _search),
    Route("GET", "/v1/products/{id}", _retrieve),
    Route("POST", "/v1/products/{id}", _update),
    Route("DELETE", "/v1/products/{id}", _delete),
    Route("POST", "/v1/prices", _price_create),
    Route("GET", "/v1/prices", _price_list),
    Route("GET", "/v1/prices/search", _price_search),
    Route("GET", "/v1/prices/{id}", _price_retrieve),
    Route("POST", "/v1/prices/{id}", _price_update),
]
