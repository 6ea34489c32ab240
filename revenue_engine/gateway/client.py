"""``StripeGateway``: the only code that calls Stripe.

* One ``StripeClient`` per process: pinned API version, ``stripe.HTTPXClient`` with a request
  timeout (≤ 10 s), ``max_network_retries`` set explicitly (the SDK retries 409, 5xx and
  connection errors with the *same* idempotency key), and ``base_addresses`` pointing at the
  emulator when no key is configured.
* Only ``*_async`` methods. Every create/update passes an idempotency key derived by the caller
  with ``idempotency_key(org, operation, intent)`` — never a random one.
* 429s are retried here a bounded number of times with jittered backoff (the SDK does not
  retry them), then surface as ``RateLimited``.
* Errors go through the closed table in ``gateway.errors``; results are plain dicts, except
  the typed ones: subscriptions (``gateway.models.StripeSubscription``, reads and writes),
  customers, Checkout and portal sessions (``gateway.models.customer``), PaymentIntents,
  refunds and charges (``gateway.models.payment``), the catalog, meters, invoices, promotion
  codes and listed events (``gateway.models.catalog``) and ``PaymentMethodOwner``. Reads
  (retrieve, list) and the typed writes go through
  ``StripeClient.raw_request_async`` and use Stripe's JSON as parsed: building the SDK's
  ``StripeObject`` tree only to turn it back into a dict was a fifth of a webhook event's CPU.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import stripe

from revenue_engine.errors import DomainError, DuplicateMeterEvent, MeterEventTimestampRefused
from revenue_engine.gateway.errors import (
    is_duplicate_identifier,
    is_timestamp_refusal,
    rate_limited,
    translate,
)
from revenue_engine.gateway.models import (
    StripeSubscription,
    UnreadableSubscription,
    parse_listed,
    parse_subscription,
)
from revenue_engine.gateway.models.catalog import (
    CatalogPrice,
    CatalogProduct,
    MeterEventReceipt,
    StripeCoupon,
    StripeEventListing,
    StripeInvoice,
    StripeInvoicePreview,
    StripeMeter,
    StripePromotionCode,
    parse_as,
    parse_listed_event,
)
from revenue_engine.gateway.models.customer import (
    StripeCheckoutSession,
    StripeCustomer,
    StripePortalSession,
    parse_checkout_session,
    parse_customer,
    parse_portal_session,
)
from revenue_engine.gateway.models.payment import (
    StripeCharge,
    StripePaymentIntent,
    StripeRefund,
    parse_charge,
    parse_payment_intent,
    parse_refund,
)
from revenue_engine.gateway.payment_methods import PaymentMethodCalls
from revenue_engine.settings import Settings
from revenue_engine.timing import timed_stripe

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The key the embedded default uses with the built-in emulator (never valid at Stripe).
EMULATOR_API_KEY = "sk_test_emulator"
#: Where the engine mounts the emulator in the embedded default.
EMULATOR_MOUNT = "/stripe-emulator"

RATE_LIMIT_ATTEMPTS = 3
RATE_LIMIT_BASE_DELAY = 0.25

#: Every subscription read and write expands its discounts down to the coupon and the code, so
#: the reconciler can store what a discount takes off (see ``services.discounts``).
SUBSCRIPTION_EXPAND = ("discounts.source.coupon", "discounts.promotion_code")


def idempotency_key(organization_id: str, operation: str, *intent: object) -> str:
    """A deterministic key for one intent of one organization: retries and double-submits of
    the same intent share it, so Stripe creates one object. ``intent`` must hold everything that
    distinguishes one legitimate request from the next (e.g. a state version)."""
    digest = hashlib.sha256(
        json.dumps([organization_id, operation, *intent], sort_keys=True, default=str).encode()
    ).hexdigest()[:40]
    return f"re-{operation}-{digest}"


@dataclass(frozen=True, slots=True)
class PaymentMethodOwner:
    """What the engine reads of a PaymentMethod: its id and the customer it is attached to
    (``None``: attached to nobody, so Stripe alone decides whether it may still be used)."""

    id: str
    customer: str | None


def _any(params: dict[str, Any]) -> Any:
    """Our params are plain dicts; the SDK's TypedDicts describe the same wire shape."""
    return params


def _expanding(params: dict[str, Any], paths: tuple[str, ...], prefix: str = "") -> dict[str, Any]:
    """``params`` with ``paths`` (under ``prefix``) added to its ``expand``."""
    wanted = [*params.get("expand", []), *(f"{prefix}{path}" for path in paths)]
    return {**params, "expand": list(dict.fromkeys(wanted))}


def _path(*segments: str) -> str:
    """``/v1/…`` with each id quoted as the SDK quotes ids (nothing in one can reach the path)."""
    return "/v1/" + "/".join(quote(segment, safe="") for segment in segments)


def _page(response: Any) -> tuple[list[dict[str, Any]], bool]:
    """A list object's items and ``has_more``, as Stripe sent them."""
    body: dict[str, Any] = response.data
    return list(body.get("data") or []), bool(body.get("has_more"))


class StripeGateway(PaymentMethodCalls):
    """Async facade over the subset of Stripe the engine uses (saved payment methods and
    SetupIntents: ``PaymentMethodCalls``)."""

    def __init__(
        self,
        api_key: str,
        *,
        api_version: str,
        timeout: float,
        max_network_retries: int,
        api_base: str | None = None,
    ) -> None:
        addresses: dict[str, str | None] | None = None
        if api_base:
            base = api_base.rstrip("/")
            addresses = {"api": base, "connect": base, "files": base, "meter_events": base}
        self._http = stripe.HTTPXClient(timeout=timeout)
        self.client = stripe.StripeClient(
            api_key,
            stripe_version=api_version,
            http_client=self._http,
            max_network_retries=max_network_retries,
            base_addresses=_any(addresses or {}),
        )
        self.api_base = api_base

    @classmethod
    def from_settings(cls, settings: Settings) -> StripeGateway:
        key = settings.stripe_secret_key
        api_base = settings.stripe_api_base
        if key is None and api_base is None:
            api_base = settings.public_base_url.rstrip("/") + EMULATOR_MOUNT
        return cls(
            key.get_secret_value() if key else EMULATOR_API_KEY,
            api_version=settings.stripe_api_version,
            timeout=settings.stripe_timeout_seconds,
            max_network_retries=settings.stripe_max_network_retries,
            api_base=api_base,
        )

    async def _call(self, operation: str, make: Callable[[], Awaitable[T]]) -> T:
        # The whole call, backoff included, is the request's ``stripe`` time (Server-Timing).
        return await timed_stripe(self._attempts(operation, make))

    async def _attempts(self, operation: str, make: Callable[[], Awaitable[T]]) -> T:
        for attempt in range(1, RATE_LIMIT_ATTEMPTS + 1):
            try:
                return await make()
            except stripe.RateLimitError as exc:
                if attempt == RATE_LIMIT_ATTEMPTS:
                    raise rate_limited(exc) from exc
                delay = RATE_LIMIT_BASE_DELAY * 2 ** (attempt - 1)
                await asyncio.sleep(delay * (0.5 + random.random()))  # noqa: S311 - jitter
            except stripe.StripeError as exc:
                domain = translate(exc)
                log.info(
                    "stripe error operation=%s status=%s code=%s translated=%s",
                    operation,
                    exc.http_status,
                    exc.code,
                    type(domain).__name__ if domain else "-",
                )
                if domain is None:
                    raise
                raise domain from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _get(self, operation: str, path: str, params: dict[str, Any] | None = None) -> Any:
        """A read whose JSON answer comes back as Stripe sent it (``StripeResponse.data``): the
        SDK still signs, retries and sends, and errors are translated as for every call, but no
        ``StripeObject`` tree is built only to be turned back into a dict."""
        client = self.client
        return await self._call(
            operation, lambda: client.raw_request_async("get", path, **(params or {}))
        )

    async def _read(
        self, operation: str, path: str, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = (await self._get(operation, path, params)).data
        return body

    async def probe(self, within_seconds: float) -> str:
        """Can Stripe be reached with our key? ``ok``, ``unauthorized`` (the key is refused),
        ``unreachable`` (no answer within ``within_seconds``) or ``error``. One cheap authenticated
        read, no retries; for readiness reports only."""
        v1 = self.client.v1
        try:
            await asyncio.wait_for(
                v1.events.list_async(params={"limit": 1}, options={"max_network_retries": 0}),
                timeout=within_seconds,
            )
        except stripe.AuthenticationError:
            return "unauthorized"
        except (TimeoutError, stripe.APIConnectionError):
            return "unreachable"
        except stripe.StripeError:
            return "error"
        return "ok"

    # --- customers ---------------------------------------------------------------------
    # Customers, Checkout and portal sessions are parsed straight from Stripe's JSON into their
    # read models (``gateway.models.customer``), writes too (``_send``).
    async def create_customer(self, params: dict[str, Any], *, key: str) -> StripeCustomer:
        path = _path("customers")
        return parse_customer(await self._send("customers.create", "post", path, params, key))

    async def retrieve_customer(self, customer_id: str) -> StripeCustomer:
        """The customer; a deleted one is Stripe's stub (``deleted`` set, nothing else)."""
        path = _path("customers", customer_id)
        return parse_customer(await self._read("customers.retrieve", path))

    async def update_customer(
        self, customer_id: str, params: dict[str, Any], *, key: str
    ) -> StripeCustomer:
        path = _path("customers", customer_id)
        return parse_customer(await self._send("customers.update", "post", path, params, key))

    async def delete_customer(self, customer_id: str, *, key: str) -> StripeCustomer:
        path = _path("customers", customer_id)
        return parse_customer(await self._send("customers.delete", "delete", path, {}, key))

    # --- catalog -----------------------------------------------------------------------
    # Parsed straight from Stripe's JSON into the catalog's read models (``gateway.models``).
    async def find_prices(self, lookup_keys: list[str]) -> list[CatalogPrice]:
        params = {"lookup_keys": lookup_keys, "active": True, "limit": 100}
        page = _page(await self._get("prices.list", _path("prices"), params))[0]
        return [parse_as(CatalogPrice, "price", obj) for obj in page]

    async def create_product(self, params: dict[str, Any], *, key: str) -> CatalogProduct:
        answer = await self._send("products.create", "post", _path("products"), params, key)
        return parse_as(CatalogProduct, "product", answer)

    async def create_price(self, params: dict[str, Any], *, key: str) -> CatalogPrice:
        answer = await self._send("prices.create", "post", _path("prices"), params, key)
        return parse_as(CatalogPrice, "price", answer)

    # --- usage-based billing -------------------------------------------------------------
    async def list_meters(self) -> list[StripeMeter]:
        """Every Billing Meter of the account, active or not (auto-paginated): an event name
        belongs to one meter for good, deactivated ones included."""
        path = _path("billing", "meters")
        found, more = _page(await self._get("billing.meters.list", path, {"limit": 100}))
        while more and found:
            params = {"limit": 100, "starting_after": found[-1]["id"]}
            page, more = _page(await self._get("billing.meters.list", path, params))
            if not page:
                break
            found.extend(page)
        return [parse_as(StripeMeter, "billing meter", obj) for obj in found]

    async def create_meter(self, params: dict[str, Any], *, key: str) -> StripeMeter:
        path = _path("billing", "meters")
        answer = await self._send("billing.meters.create", "post", path, params, key)
        return parse_as(StripeMeter, "billing meter", answer)

    async def reactivate_meter(self, meter_id: str, *, key: str) -> StripeMeter:
        path = _path("billing", "meters", meter_id, "reactivate")
        answer = await self._send("billing.meters.reactivate", "post", path, {}, key)
        return parse_as(StripeMeter, "billing meter", answer)

    async def create_meter_event(self, params: dict[str, Any], *, key: str) -> MeterEventReceipt:
        """One meter event; ``params["identifier"]`` is deterministic, so Stripe counts a
        resent report once (and the idempotency key replays the first answer). Stripe's
        refusal of an identifier it has seen is ``DuplicateMeterEvent``, of its timestamp
        ``MeterEventTimestampRefused``."""
        path = _path("billing", "meter_events")
        try:
            answer = await self._send("billing.meter_events.create", "post", path, params, key)
        except DomainError as exc:
            if is_duplicate_identifier(exc.__cause__):
                raise DuplicateMeterEvent(str(params.get("identifier"))) from exc.__cause__
            if is_timestamp_refusal(exc.__cause__):
                raise MeterEventTimestampRefused(exc.message) from exc.__cause__
            raise
        return parse_as(MeterEventReceipt, "billing meter event", answer)

    # --- checkout ----------------------------------------------------------------------
    async def create_checkout_session(
        self, params: dict[str, Any], *, key: str
    ) -> StripeCheckoutSession:
        path = _path("checkout", "sessions")
        answer = await self._send("checkout.sessions.create", "post", path, params, key)
        return parse_checkout_session(answer)

    async def retrieve_checkout_session(self, session_id: str) -> StripeCheckoutSession:
        """The session with its subscription expanded (as every subscription read expands it)."""
        params = _expanding({"expand": ["subscription"]}, SUBSCRIPTION_EXPAND, "subscription.")
        path = _path("checkout", "sessions", session_id)
        return parse_checkout_session(await self._read("checkout.sessions.retrieve", path, params))

    async def expire_checkout_session(self, session_id: str, *, key: str) -> StripeCheckoutSession:
        path = _path("checkout", "sessions", session_id, "expire")
        answer = await self._send("checkout.sessions.expire", "post", path, {}, key)
        return parse_checkout_session(answer)

    async def retrieve_charge(self, charge_id: str) -> StripeCharge:
        return parse_charge(await self._read("charges.retrieve", _path("charges", charge_id)))

    # --- subscriptions -----------------------------------------------------------------
    # Parsed straight from Stripe's JSON into the read model (``gateway.models``), writes too.
    async def _send(
        self, operation: str, method: str, path: str, params: dict[str, Any], key: str
    ) -> Any:
        """A write whose JSON answer comes back as Stripe sent it, as ``_get`` reads: the SDK
        signs, sends and retries it with the same idempotency key."""
        client = self.client
        return (
            await self._call(
                operation,
                lambda: client.raw_request_async(method, path, idempotency_key=key, **params),
            )
        ).data

    async def create_subscription(self, params: dict[str, Any], *, key: str) -> StripeSubscription:
        params = _expanding(params, SUBSCRIPTION_EXPAND)
        path = _path("subscriptions")
        return parse_subscription(
            await self._send("subscriptions.create", "post", path, params, key)
        )

    async def retrieve_subscription(self, subscription_id: str) -> StripeSubscription:
        path = _path("subscriptions", subscription_id)
        params = _expanding({}, SUBSCRIPTION_EXPAND)
        return parse_subscription(await self._read("subscriptions.retrieve", path, params))

    async def update_subscription(
        self, subscription_id: str, params: dict[str, Any], *, key: str
    ) -> StripeSubscription:
        params = _expanding(params, SUBSCRIPTION_EXPAND)
        path = _path("subscriptions", subscription_id)
        return parse_subscription(
            await self._send("subscriptions.update", "post", path, params, key)
        )

    async def cancel_subscription(
        self, subscription_id: str, *, key: str, invoice_now: bool = False
    ) -> StripeSubscription:
        """Cancel now; ``invoice_now`` bills the period's unbilled metered usage on a final
        invoice (Stripe's default leaves it unbilled)."""
        params = _expanding({"invoice_now": True} if invoice_now else {}, SUBSCRIPTION_EXPAND)
        path = _path("subscriptions", subscription_id)
        return parse_subscription(
            await self._send("subscriptions.cancel", "delete", path, params, key)
        )

    async def list_subscriptions(
        self, *, customer: str | None = None, starting_after: str | None = None, limit: int = 100
    ) -> tuple[list[StripeSubscription | UnreadableSubscription], bool]:
        """One page of subscriptions; an item the engine cannot read is listed as such."""
        params: dict[str, Any] = _expanding(
            {"status": "all", "limit": limit}, SUBSCRIPTION_EXPAND, "data."
        )
        if customer:
            params["customer"] = customer
        if starting_after:
            params["starting_after"] = starting_after
        page, more = _page(await self._get("subscriptions.list", _path("subscriptions"), params))
        return [parse_listed(obj) for obj in page], more

    async def preview_invoice(self, params: dict[str, Any]) -> StripeInvoicePreview:
        """The invoice Stripe would issue next (``invoices.create_preview``), optionally after
        the change in ``params["subscription_details"]``. Stripe writes nothing: no key."""
        client = self.client
        path = _path("invoices", "create_preview")
        answer = await self._call(
            "invoices.create_preview", lambda: client.raw_request_async("post", path, **params)
        )
        return parse_as(StripeInvoicePreview, "invoice", answer.data)

    async def test_clock_time(self, clock_id: str) -> int:
        """A test clock's frozen time (unix seconds): "now" for what lives on it."""
        path = _path("test_helpers", "test_clocks", clock_id)
        clock = await self._read("test_helpers.test_clocks.retrieve", path)
        return int(clock["frozen_time"])

    async def list_invoices(
        self, *, customer: str, limit: int, starting_after: str | None = None
    ) -> tuple[list[StripeInvoice], bool]:
        params: dict[str, Any] = {"customer": customer, "limit": limit}
        if starting_after:
            params["starting_after"] = starting_after
        page, more = _page(await self._get("invoices.list", _path("invoices"), params))
        return [parse_as(StripeInvoice, "invoice", obj) for obj in page], more

    # --- promotion codes -------------------------------------------------------------------
    async def find_promotion_codes(self, code: str) -> list[StripePromotionCode]:
        """The promotion codes spelled ``code`` (Stripe matches regardless of case), active or
        not, each with its coupon expanded — ``applies_to`` included."""
        params = {"code": code, "limit": 100, "expand": ["data.promotion.coupon.applies_to"]}
        page = _page(await self._get("promotion_codes.list", _path("promotion_codes"), params))[0]
        return [parse_as(StripePromotionCode, "promotion code", obj) for obj in page]

    async def retrieve_coupon(self, coupon_id: str) -> StripeCoupon:
        """A coupon with its ``applies_to`` (absent unless expanded)."""
        params = {"expand": ["applies_to"]}
        coupon = await self._read("coupons.retrieve", _path("coupons", coupon_id), params)
        return parse_as(StripeCoupon, "coupon", coupon)

    async def has_paid_invoice(self, customer: str) -> bool:
        """Has the customer paid any invoice (an amount above 0)? A first-time-only promotion
        code is not for such a customer."""
        params = {"customer": customer, "status": "paid", "limit": 100}
        invoices, _ = _page(await self._get("invoices.list", _path("invoices"), params))
        return any(int(i.get("amount_paid") or 0) > 0 for i in invoices)

    async def list_events(
        self,
        *,
        created_gte: int,
        types: list[str],
        delivery_success: bool | None,
        starting_after: str | None = None,
        limit: int = 100,
    ) -> tuple[list[StripeEventListing], bool]:
        """One page of events, newest first (Stripe keeps them 30 days)."""
        params: dict[str, Any] = {"created": {"gte": created_gte}, "types": types, "limit": limit}
        if delivery_success is not None:
            params["delivery_success"] = delivery_success
        if starting_after:
            params["starting_after"] = starting_after
        page, more = _page(await self._get("events.list", _path("events"), params))
        return [parse_listed_event(obj) for obj in page], more

    # --- one-time payments -------------------------------------------------------------
    # Parsed straight from Stripe's JSON into the read models (``gateway.models.payment``).
    async def create_payment_intent(
        self, params: dict[str, Any], *, key: str
    ) -> StripePaymentIntent:
        path = _path("payment_intents")
        return parse_payment_intent(
            await self._send("payment_intents.create", "post", path, params, key)
        )

    async def retrieve_payment_intent(self, intent_id: str) -> StripePaymentIntent:
        path = _path("payment_intents", intent_id)
        return parse_payment_intent(await self._read("payment_intents.retrieve", path))

    async def confirm_payment_intent(
        self, intent_id: str, params: dict[str, Any], *, key: str
    ) -> StripePaymentIntent:
        path = _path("payment_intents", intent_id, "confirm")
        return parse_payment_intent(
            await self._send("payment_intents.confirm", "post", path, params, key)
        )

    async def retrieve_payment_method(self, payment_method_id: str) -> PaymentMethodOwner:
        """Whose PaymentMethod this is. In test mode Stripe answers for its test ids
        (``pm_card_visa`` …) with a fresh card attached to nobody; an unknown id raises
        ``StripeNotFound``."""
        path = _path("payment_methods", payment_method_id)
        pm = await self._read("payment_methods.retrieve", path)
        customer = pm.get("customer")
        if isinstance(customer, dict):
            customer = customer.get("id")  # expanded (we never ask for it, but it may be)
        return PaymentMethodOwner(id=str(pm["id"]), customer=str(customer) if customer else None)

    async def cancel_payment_intent(self, intent_id: str, *, key: str) -> StripePaymentIntent:
        path = _path("payment_intents", intent_id, "cancel")
        return parse_payment_intent(
            await self._send("payment_intents.cancel", "post", path, {}, key)
        )

    async def create_refund(self, params: dict[str, Any], *, key: str) -> StripeRefund:
        return parse_refund(
            await self._send("refunds.create", "post", _path("refunds"), params, key)
        )

    # --- billing portal ----------------------------------------------------------------
    async def create_portal_session(
        self, params: dict[str, Any], *, key: str
    ) -> StripePortalSession:
        path = _path("billing_portal", "sessions")
        answer = await self._send("billing_portal.sessions.create", "post", path, params, key)
        return parse_portal_session(answer)

    async def close(self) -> None:
        """Release the HTTP client's connections."""
        await self._http.close_async()  # type: ignore[no-untyped-call]
