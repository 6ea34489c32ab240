"""Small in-memory stand-ins for the gateway, for unit tests of the services that need no HTTP.

``FakeCatalogGateway`` implements the ``CatalogCalls`` role (meters, products, prices) whole, so
the catalog services take it as it is; mypy checks it against the role (``_catalog`` below; this
module is in ``[tool.mypy]``). It records what was sent and answers as Stripe does, with
idempotency keys replaying the first answer. ``FakeBillingGateway`` adds the few calls of other
roles a purchase makes; implementing only those, it is handed over as a ``StripeApi`` by a cast.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, cast

from revenue_engine.gateway import CatalogCalls, StripeApi, StripeSubscription, parse_subscription
from revenue_engine.gateway.models.catalog import (
    CatalogPrice,
    CatalogProduct,
    StripeMeter,
    parse_as,
)
from revenue_engine.gateway.models.customer import (
    StripeCheckoutSession,
    StripeCustomer,
    parse_checkout_session,
    parse_customer,
)


class FakeCatalogGateway:
    def __init__(self) -> None:
        self.meters: list[dict[str, Any]] = []
        self.prices: list[dict[str, Any]] = []
        self.calls: list[tuple[str, dict[str, Any], str | None]] = []
        self.replies: dict[str, dict[str, Any]] = {}
        #: A server that ignores the ``lookup_keys`` filter of a price listing.
        self.ignore_lookup_filter = False
        self._ids = itertools.count(1)

    def calls_to(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params, _ in self.calls if name == operation]

    def _keyed(self, operation: str, params: dict[str, Any], key: str, make: Any) -> Any:
        self.calls.append((operation, params, key))
        if key not in self.replies:
            self.replies[key] = make()
        return self.replies[key]

    async def list_meters(self) -> list[StripeMeter]:
        """Every meter, active or not, as Stripe lists them."""
        self.calls.append(("billing.meters.list", {}, None))
        return [parse_as(StripeMeter, "billing meter", m) for m in self.meters]

    async def create_meter(self, params: dict[str, Any], *, key: str) -> StripeMeter:
        def make() -> dict[str, Any]:
            meter = {"id": f"mtr_{next(self._ids)}", "object": "billing.meter"}
            meter.update(status="active", **params)
            self.meters.append(meter)
            return meter

        meter = self._keyed("billing.meters.create", params, key, make)
        return parse_as(StripeMeter, "billing meter", meter)

    async def reactivate_meter(self, meter_id: str, *, key: str) -> StripeMeter:
        def make() -> dict[str, Any]:
            meter = next(m for m in self.meters if m["id"] == meter_id)
            meter["status"] = "active"
            return dict(meter)

        meter = self._keyed("billing.meters.reactivate", {"id": meter_id}, key, make)
        return parse_as(StripeMeter, "billing meter", meter)

    async def create_product(self, params: dict[str, Any], *, key: str) -> CatalogProduct:
        product = self._keyed(
            "products.create", params, key, lambda: {"id": f"prod_{next(self._ids)}", **params}
        )
        return parse_as(CatalogProduct, "product", product)

    async def find_prices(self, lookup_keys: list[str]) -> list[CatalogPrice]:
        self.calls.append(("prices.list", {"lookup_keys": lookup_keys}, None))
        found = [
            p
            for p in self.prices
            if self.ignore_lookup_filter or p.get("lookup_key") in lookup_keys
        ]
        return [parse_as(CatalogPrice, "price", p) for p in found]

    def add_price(self, **fields: Any) -> dict[str, Any]:
        price: dict[str, Any] = {
            "id": f"price_{next(self._ids)}",
            "object": "price",
            "active": True,
            "currency": "usd",
            "transform_quantity": None,
            **fields,
        }
        recurring = {"interval_count": 1, "usage_type": "licensed", "meter": None}
        recurring.update(fields.get("recurring") or {})
        price["recurring"] = recurring
        self.prices.append(price)
        return price

    async def create_price(self, params: dict[str, Any], *, key: str) -> CatalogPrice:
        def make() -> dict[str, Any]:
            fields = {k: v for k, v in params.items() if k != "transfer_lookup_key"}
            if params.get("transfer_lookup_key"):
                for other in self.prices:
                    if other.get("lookup_key") == params.get("lookup_key"):
                        other["lookup_key"] = None
            return self.add_price(**fields)

        return parse_as(CatalogPrice, "price", self._keyed("prices.create", params, key, make))


class FakeBillingGateway(FakeCatalogGateway):
    """The catalog fake plus what a purchase calls: a customer with a default card, Checkout
    sessions (recorded), and subscriptions whose items follow the requests as Stripe's do
    (a metered item without quantity)."""

    PERIOD = (1_767_225_600, 1_769_904_000)

    def __init__(self) -> None:
        super().__init__()
        self.subscriptions: dict[str, dict[str, Any]] = {}

    def as_gateway(self) -> StripeApi:
        return cast(StripeApi, self)

    async def create_customer(self, params: dict[str, Any], *, key: str) -> StripeCustomer:
        return parse_customer(
            self._keyed(
                "customers.create",
                params,
                key,
                lambda: {"id": "cus_fake", "object": "customer", **params},
            )
        )

    async def retrieve_customer(self, customer_id: str) -> StripeCustomer:
        return parse_customer(
            {
                "id": customer_id,
                "object": "customer",
                "invoice_settings": {"default_payment_method": "pm_fake"},
            }
        )

    async def create_checkout_session(
        self, params: dict[str, Any], *, key: str
    ) -> StripeCheckoutSession:
        return parse_checkout_session(
            self._keyed(
                "checkout.sessions.create",
                params,
                key,
                lambda: {
                    "id": f"cs_{next(self._ids)}",
                    "object": "checkout.session",
                    "status": "open",
                    "payment_status": "unpaid",
                    "url": "https://checkout.test/pay",
                },
            )
        )

    def _item(self, entry: dict[str, Any]) -> dict[str, Any]:
        price = next(p for p in self.prices if p["id"] == entry["price"])
        start, end = self.PERIOD
        return {
            "id": f"si_{next(self._ids)}",
            "object": "subscription_item",
            "price": price,
            "quantity": entry.get("quantity"),
            "current_period_start": start,
            "current_period_end": end,
        }

    async def create_subscription(self, params: dict[str, Any], *, key: str) -> StripeSubscription:
        def make() -> dict[str, Any]:
            sub = {
                "id": f"sub_{next(self._ids)}",
                "object": "subscription",
                "status": "active",
                "customer": params["customer"],
                "metadata": dict(params.get("metadata") or {}),
                "items": {"data": [self._item(e) for e in params["items"]]},
            }
            self.subscriptions[sub["id"]] = sub
            return sub

        return parse_subscription(self._keyed("subscriptions.create", params, key, make))

    async def update_subscription(
        self, subscription_id: str, params: dict[str, Any], *, key: str
    ) -> StripeSubscription:
        def make() -> dict[str, Any]:
            sub = self.subscriptions[subscription_id]
            items: list[dict[str, Any]] = sub["items"]["data"]
            for entry in params.get("items") or []:
                if "id" not in entry:
                    items.append(self._item(entry))
                    continue
                index = next(i for i, item in enumerate(items) if item["id"] == entry["id"])
                if entry.get("deleted"):
                    del items[index]
                    continue
                if "price" in entry:
                    items[index]["price"] = next(
                        p for p in self.prices if p["id"] == entry["price"]
                    )
                if "quantity" in entry:
                    items[index]["quantity"] = entry["quantity"]
            sub["metadata"].update(params.get("metadata") or {})
            return dict(sub)

        self.calls.append(("subscriptions.update", params, key))
        if key not in self.replies:
            self.replies[key] = make()
        return parse_subscription(self.replies[key])


if TYPE_CHECKING:

    def _catalog(fake: FakeCatalogGateway) -> CatalogCalls:
        return fake  # mypy: the fake implements the whole role, with the gateway's signatures
