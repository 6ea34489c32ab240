"""The gateway's calls about saved payment methods: a customer's cards and its defaults,
SetupIntents, detaching. ``StripeGateway`` inherits them (same client, same error table, same
Server-Timing), so they stay in the one seam that calls Stripe.

What the engine reads of these objects is parsed here, once, into the types below; nothing
else of Stripe's JSON leaves this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import stripe

#: Pages of 100 read when listing a customer's payment methods (Stripe's largest page).
MAX_METHOD_PAGES = 10


@dataclass(frozen=True, slots=True)
class SavedMethod:
    """A payment method saved to a customer: a card (brand, last four digits, expiry) or a
    bank account (bank name as ``brand``, last four digits)."""

    id: str
    type: str
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None


@dataclass(frozen=True, slots=True)
class CustomerDefaults:
    """How a customer pays by default: ``invoice_settings.default_payment_method``, else its
    ``default_source`` (a card saved through the legacy Sources API)."""

    customer_id: str
    default_payment_method: str | None
    default_source: str | None
    deleted: bool = False

    @property
    def default(self) -> str | None:
        """What Stripe charges when neither the invoice nor the subscription names a method."""
        return self.default_payment_method or self.default_source


@dataclass(frozen=True, slots=True)
class SetupIntentView:
    id: str
    client_secret: str
    status: str
    customer: str | None
    payment_method: str | None


def _plain(obj: Any) -> dict[str, Any]:
    if isinstance(obj, stripe.StripeObject):
        return obj.to_dict(for_json=True)
    return dict(obj)


def _id(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def saved_method(pm: Any) -> SavedMethod:
    """A PaymentMethod (SDK object or plain JSON) as the engine keeps it."""
    pm = _plain(pm)
    kind = str(pm.get("type") or "card")
    details = pm.get(kind) or {}
    if kind == "card":
        brand = _str(details.get("display_brand")) or _str(details.get("brand"))
        expiry = (_int(details.get("exp_month")), _int(details.get("exp_year")))
    else:
        brand, expiry = _str(details.get("bank_name")), (None, None)
    return SavedMethod(
        id=str(pm["id"]),
        type=kind,
        brand=brand,
        last4=_str(details.get("last4")),
        exp_month=expiry[0],
        exp_year=expiry[1],
    )


def customer_defaults(customer: Any) -> CustomerDefaults:
    """A Customer (SDK object or plain JSON, possibly the ``deleted: true`` stub)."""
    customer = _plain(customer)
    settings = customer.get("invoice_settings") or {}
    return CustomerDefaults(
        customer_id=str(customer["id"]),
        default_payment_method=_id(settings.get("default_payment_method")),
        default_source=_id(customer.get("default_source")),
        deleted=bool(customer.get("deleted")),
    )


def _setup_intent(seti: Any) -> SetupIntentView:
    seti = _plain(seti)
    return SetupIntentView(
        id=str(seti["id"]),
        client_secret=str(seti.get("client_secret") or ""),
        status=str(seti.get("status")),
        customer=_id(seti.get("customer")),
        payment_method=_id(seti.get("payment_method")),
    )


def _path(*segments: str) -> str:
    """``/v1/…`` with each id quoted (nothing in one can reach the path)."""
    return "/v1/" + "/".join(quote(segment, safe="") for segment in segments)


class PaymentMethodCalls:
    """Mixed into ``StripeGateway``; every write takes the caller's derived idempotency key.
    Like the gateway's other calls, these send through ``StripeClient.raw_request_async`` and
    read Stripe's JSON as parsed (no ``StripeObject`` tree)."""

    if TYPE_CHECKING:  # provided by StripeGateway

        async def _get(
            self, operation: str, path: str, params: dict[str, Any] | None = None
        ) -> Any: ...

        async def _read(
            self, operation: str, path: str, params: dict[str, Any] | None = None
        ) -> dict[str, Any]: ...

        async def _send(
            self, operation: str, method: str, path: str, params: dict[str, Any], key: str
        ) -> Any: ...

    async def list_saved_methods(self, customer_id: str) -> list[SavedMethod]:
        """Every payment method saved to the customer, newest first (at most
        ``MAX_METHOD_PAGES`` pages of 100)."""
        path = _path("customers", customer_id, "payment_methods")
        found: list[SavedMethod] = []
        after: str | None = None
        for _ in range(MAX_METHOD_PAGES):
            params: dict[str, Any] = {"limit": 100}
            if after:
                params["starting_after"] = after
            body = (await self._get("customers.payment_methods.list", path, params)).data
            page = list(body.get("data") or [])
            found.extend(saved_method(pm) for pm in page)
            if not body.get("has_more") or not page:
                break
            after = str(page[-1]["id"])
        return found

    async def retrieve_customer_defaults(self, customer_id: str) -> CustomerDefaults:
        customer = await self._read("customers.retrieve", _path("customers", customer_id))
        return customer_defaults(customer)

    async def set_default_payment_method(
        self, customer_id: str, payment_method_id: str, *, key: str
    ) -> CustomerDefaults:
        """Make the method the customer's ``invoice_settings.default_payment_method``."""
        params = {"invoice_settings": {"default_payment_method": payment_method_id}}
        path = _path("customers", customer_id)
        return customer_defaults(await self._send("customers.update", "post", path, params, key))

    async def detach_payment_method(self, payment_method_id: str, *, key: str) -> None:
        path = _path("payment_methods", payment_method_id, "detach")
        await self._send("payment_methods.detach", "post", path, {}, key)

    async def create_setup_intent(self, params: dict[str, Any], *, key: str) -> SetupIntentView:
        seti = await self._send("setup_intents.create", "post", _path("setup_intents"), params, key)
        return _setup_intent(seti)

    async def retrieve_setup_intent(self, setup_intent_id: str) -> SetupIntentView:
        path = _path("setup_intents", setup_intent_id)
        return _setup_intent(await self._read("setup_intents.retrieve", path))
