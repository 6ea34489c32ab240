"""The gateway's calls about saved payment methods: a customer's cards and its defaults,
SetupIntents, detaching. ``StripeGateway`` inherits them (same client, same error table, same
Server-Timing), so they stay in the one seam that calls Stripe.

What the engine reads of these objects is parsed here, once, into the types below; nothing
else of Stripe's JSON leaves this module.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import stripe

T = TypeVar("T")

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


class PaymentMethodCalls:
    """Mixed into ``StripeGateway``; every write takes the caller's derived idempotency key."""

    client: stripe.StripeClient

    if TYPE_CHECKING:  # provided by StripeGateway

        async def _call(self, operation: str, make: Callable[[], Awaitable[T]]) -> T: ...

        def _opts(self, key: str | None) -> Any: ...

    async def list_saved_methods(self, customer_id: str) -> list[SavedMethod]:
        """Every payment method saved to the customer, newest first (at most
        ``MAX_METHOD_PAGES`` pages of 100)."""
        v1 = self.client.v1
        found: list[SavedMethod] = []
        after: str | None = None
        for _ in range(MAX_METHOD_PAGES):
            params: Any = {"limit": 100}
            if after:
                params["starting_after"] = after
            page = await self._call(
                "customers.payment_methods.list",
                functools.partial(
                    v1.customers.payment_methods.list_async, customer_id, params=params
                ),
            )
            found.extend(saved_method(pm) for pm in page.data)
            if not page.has_more or not page.data:
                break
            after = page.data[-1].id
        return found

    async def retrieve_customer_defaults(self, customer_id: str) -> CustomerDefaults:
        v1 = self.client.v1
        customer = await self._call(
            "customers.retrieve", lambda: v1.customers.retrieve_async(customer_id)
        )
        return customer_defaults(customer)

    async def set_default_payment_method(
        self, customer_id: str, payment_method_id: str, *, key: str
    ) -> CustomerDefaults:
        """Make the method the customer's ``invoice_settings.default_payment_method``."""
        v1 = self.client.v1
        params: Any = {"invoice_settings": {"default_payment_method": payment_method_id}}
        customer = await self._call(
            "customers.update",
            lambda: v1.customers.update_async(customer_id, params=params, options=self._opts(key)),
        )
        return customer_defaults(customer)

    async def detach_payment_method(self, payment_method_id: str, *, key: str) -> None:
        v1 = self.client.v1
        await self._call(
            "payment_methods.detach",
            lambda: v1.payment_methods.detach_async(payment_method_id, options=self._opts(key)),
        )

    async def create_setup_intent(self, params: dict[str, Any], *, key: str) -> SetupIntentView:
        v1 = self.client.v1
        sent: Any = params
        seti = await self._call(
            "setup_intents.create",
            lambda: v1.setup_intents.create_async(params=sent, options=self._opts(key)),
        )
        return _setup_intent(seti)

    async def retrieve_setup_intent(self, setup_intent_id: str) -> SetupIntentView:
        v1 = self.client.v1
        seti = await self._call(
            "setup_intents.retrieve", lambda: v1.setup_intents.retrieve_async(setup_intent_id)
        )
        return _setup_intent(seti)
