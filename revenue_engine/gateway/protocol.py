"""What the engine asks of Stripe, as types: ``StripeApi`` and the roles it is made of.

Services, webhook handlers and the request contexts depend on these protocols, not on the
class that implements them. ``StripeGateway`` (``gateway.client``) is the one implementation
that talks to Stripe; a test may implement a role in memory (``tests/services/fake_stripe.py``
does ``CatalogCalls``) and hand it to the services typed by that role, no cast needed.

Each role groups the calls of one part of Stripe; a function is typed by the narrowest role
that holds every call it makes, itself or through what it calls, and by ``StripeApi`` (every
role) when it spans several. Signatures are ``StripeGateway``'s, word for word: the check at
the bottom makes mypy refuse a drift between the two.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from revenue_engine.gateway.client import PaymentMethodOwner, StripeGateway
    from revenue_engine.gateway.models import StripeSubscription, UnreadableSubscription
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
    )
    from revenue_engine.gateway.models.customer import (
        StripeCheckoutSession,
        StripeCustomer,
        StripePortalSession,
    )
    from revenue_engine.gateway.models.payment import (
        StripeCharge,
        StripePaymentIntent,
        StripeRefund,
    )
    from revenue_engine.gateway.payment_methods import (
        CustomerDefaults,
        SavedMethod,
        SetupIntentView,
    )


class CustomerCalls(Protocol):
    """Customers: created once per organization, renamed, deleted."""

    async def create_customer(self, params: dict[str, Any], *, key: str) -> StripeCustomer: ...

    async def retrieve_customer(self, customer_id: str) -> StripeCustomer: ...

    async def update_customer(
        self, customer_id: str, params: dict[str, Any], *, key: str
    ) -> StripeCustomer: ...

    async def delete_customer(self, customer_id: str, *, key: str) -> StripeCustomer: ...


class CatalogCalls(Protocol):
    """The catalog: products, prices found by lookup key, and the Billing Meters of metered
    features."""

    async def find_prices(self, lookup_keys: list[str]) -> list[CatalogPrice]: ...

    async def create_product(self, params: dict[str, Any], *, key: str) -> CatalogProduct: ...

    async def create_price(self, params: dict[str, Any], *, key: str) -> CatalogPrice: ...

    async def list_meters(self) -> list[StripeMeter]: ...

    async def create_meter(self, params: dict[str, Any], *, key: str) -> StripeMeter: ...

    async def reactivate_meter(self, meter_id: str, *, key: str) -> StripeMeter: ...


class MeterEventCalls(Protocol):
    """Usage reported to a meter."""

    async def create_meter_event(
        self, params: dict[str, Any], *, key: str
    ) -> MeterEventReceipt: ...


class CheckoutCalls(Protocol):
    """Checkout Sessions (as the read model, ``gateway.models.customer``)."""

    async def create_checkout_session(
        self, params: dict[str, Any], *, key: str
    ) -> StripeCheckoutSession: ...

    async def retrieve_checkout_session(self, session_id: str) -> StripeCheckoutSession: ...

    async def expire_checkout_session(
        self, session_id: str, *, key: str
    ) -> StripeCheckoutSession: ...


class SubscriptionCalls(Protocol):
    """Subscriptions: created, read, changed, cancelled, listed — as the read model
    (``gateway.models``)."""

    async def create_subscription(
        self, params: dict[str, Any], *, key: str
    ) -> StripeSubscription: ...

    async def retrieve_subscription(self, subscription_id: str) -> StripeSubscription: ...

    async def update_subscription(
        self, subscription_id: str, params: dict[str, Any], *, key: str
    ) -> StripeSubscription: ...

    async def cancel_subscription(
        self, subscription_id: str, *, key: str, invoice_now: bool = False
    ) -> StripeSubscription: ...

    async def list_subscriptions(
        self, *, customer: str | None = None, starting_after: str | None = None, limit: int = 100
    ) -> tuple[list[StripeSubscription | UnreadableSubscription], bool]: ...


class InvoiceCalls(Protocol):
    """Invoices: the next one previewed, the issued ones listed, and a test clock's time (the
    "now" a preview is taken at)."""

    async def preview_invoice(self, params: dict[str, Any]) -> StripeInvoicePreview: ...

    async def test_clock_time(self, clock_id: str) -> int: ...

    async def list_invoices(
        self, *, customer: str, limit: int, starting_after: str | None = None
    ) -> tuple[list[StripeInvoice], bool]: ...


class PromotionCalls(Protocol):
    """Promotion codes, their coupons, and whether a customer has paid before (first-time-only
    codes)."""

    async def find_promotion_codes(self, code: str) -> list[StripePromotionCode]: ...

    async def retrieve_coupon(self, coupon_id: str) -> StripeCoupon: ...

    async def has_paid_invoice(self, customer: str) -> bool: ...


class EventCalls(Protocol):
    """The account's events, for the webhook backfill."""

    async def list_events(
        self,
        *,
        created_gte: int,
        types: list[str],
        delivery_success: bool | None,
        starting_after: str | None = None,
        limit: int = 100,
    ) -> tuple[list[StripeEventListing], bool]: ...


class PaymentCalls(Protocol):
    """One-time payments: PaymentIntents, refunds and the charges they refund — as the read
    models (``gateway.models.payment``)."""

    async def create_payment_intent(
        self, params: dict[str, Any], *, key: str
    ) -> StripePaymentIntent: ...

    async def retrieve_payment_intent(self, intent_id: str) -> StripePaymentIntent: ...

    async def confirm_payment_intent(
        self, intent_id: str, params: dict[str, Any], *, key: str
    ) -> StripePaymentIntent: ...

    async def cancel_payment_intent(self, intent_id: str, *, key: str) -> StripePaymentIntent: ...

    async def create_refund(self, params: dict[str, Any], *, key: str) -> StripeRefund: ...

    async def retrieve_charge(self, charge_id: str) -> StripeCharge: ...


class SavedMethodCalls(Protocol):
    """Payment methods: who owns one, a customer's saved ones and its default, detaching."""

    async def retrieve_payment_method(self, payment_method_id: str) -> PaymentMethodOwner: ...

    async def list_saved_methods(self, customer_id: str) -> list[SavedMethod]: ...

    async def retrieve_customer_defaults(self, customer_id: str) -> CustomerDefaults: ...

    async def set_default_payment_method(
        self, customer_id: str, payment_method_id: str, *, key: str
    ) -> CustomerDefaults: ...

    async def detach_payment_method(self, payment_method_id: str, *, key: str) -> None: ...


class SetupIntentCalls(Protocol):
    """SetupIntents, and the base address of the Stripe API called (the built-in emulator's
    confirmation page is under it)."""

    @property
    def api_base(self) -> str | None: ...

    async def create_setup_intent(self, params: dict[str, Any], *, key: str) -> SetupIntentView: ...

    async def retrieve_setup_intent(self, setup_intent_id: str) -> SetupIntentView: ...


class PortalCalls(Protocol):
    """Billing portal sessions."""

    async def create_portal_session(
        self, params: dict[str, Any], *, key: str
    ) -> StripePortalSession: ...


class StripeApi(
    CustomerCalls,
    CatalogCalls,
    MeterEventCalls,
    CheckoutCalls,
    SubscriptionCalls,
    InvoiceCalls,
    PromotionCalls,
    EventCalls,
    PaymentCalls,
    SavedMethodCalls,
    SetupIntentCalls,
    PortalCalls,
    Protocol,
):
    """Every call the engine makes to Stripe. ``StripeGateway`` implements it; its
    ``probe``/``close`` and SDK ``client`` are the wiring's (app, CLI), not part of it."""


if TYPE_CHECKING:

    def _conforms(gateway: StripeGateway) -> StripeApi:
        return gateway  # mypy: StripeGateway implements every role with these signatures
