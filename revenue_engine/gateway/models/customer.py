"""The read models of a customer (``StripeCustomer``, its ``deleted: true`` stub included), a
Checkout session (``StripeCheckoutSession``, its expanded subscription parsed as the subscription
read model) and a billing portal session (``StripePortalSession``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from revenue_engine.gateway.models.base import ExpandableId, StripeModel, parse_model
from revenue_engine.gateway.models.subscription import StripeSubscription, parse_subscription
from revenue_engine.gateway.payment_methods import CustomerDefaults


class StripeInvoiceSettings(StripeModel):
    """A customer's invoice settings: the payment method its invoices charge by default."""

    default_payment_method: ExpandableId = None


class StripeCustomer(StripeModel):
    """What the engine reads of a Stripe customer. Stripe answers a deleted one with a stub of
    ``id``, ``object`` and ``deleted: true`` only, so everything but the id is optional."""

    object: Literal["customer"]
    id: Annotated[str, Field(min_length=1)]
    deleted: bool = False
    email: str | None = None
    name: str | None = None
    invoice_settings: StripeInvoiceSettings | None = None
    default_source: ExpandableId = None

    def defaults(self) -> CustomerDefaults:
        """How the customer pays by default (the payment-method view's defaults)."""
        settings = self.invoice_settings
        return CustomerDefaults(
            customer_id=self.id,
            default_payment_method=(settings.default_payment_method if settings else None) or None,
            default_source=self.default_source or None,
            deleted=self.deleted,
        )


def _subscription(value: Any) -> Any:
    """A session's ``subscription`` as sent: the expanded object is parsed as the subscription
    read model (one the engine cannot read is ``MalformedStripeObject``, as anywhere else);
    an id or nothing stays as it is."""
    if isinstance(value, dict):
        return parse_subscription(value)
    return value


class StripeCheckoutSession(StripeModel):
    """What the engine reads of a Checkout session. ``status`` is ``open``, ``complete`` or
    ``expired`` (Stripe may send none); ``payment_status`` is what the engine stores and ranks
    (``unpaid`` → ``paid`` | ``no_payment_required``). ``subscription`` is the read model when
    Stripe expanded it (the gateway's retrieve asks it to), else its id."""

    object: Literal["checkout.session"]
    id: Annotated[str, Field(min_length=1)]
    status: str | None = None
    payment_status: Annotated[str, Field(min_length=1)]
    url: str | None = None
    client_reference_id: str | None = None
    subscription: Annotated[StripeSubscription | str | None, BeforeValidator(_subscription)] = None

    @property
    def expanded_subscription(self) -> StripeSubscription | None:
        """The session's subscription when Stripe sent it expanded, else ``None``."""
        sub = self.subscription
        return sub if isinstance(sub, StripeSubscription) else None


class StripePortalSession(StripeModel):
    """A billing portal session: where to send the customer."""

    object: Literal["billing_portal.session"]
    id: Annotated[str, Field(min_length=1)]
    url: Annotated[str, Field(min_length=1)]


def parse_customer(data: Any) -> StripeCustomer:
    """``data`` (Stripe's JSON of a customer, or of a deleted one) as the read model;
    ``MalformedStripeObject`` when it is not one (the validation error is its cause)."""
    return parse_model(StripeCustomer, "customer", data)


def parse_checkout_session(data: Any) -> StripeCheckoutSession:
    """``data`` (Stripe's JSON of a Checkout session) as the read model;
    ``MalformedStripeObject`` when it is not one, or when its expanded subscription is not
    one the engine can read ("not a Stripe subscription object")."""
    return parse_model(StripeCheckoutSession, "checkout session", data)


def parse_portal_session(data: Any) -> StripePortalSession:
    """``data`` (Stripe's JSON of a billing portal session) as the read model;
    ``MalformedStripeObject`` when it is not one."""
    return parse_model(StripePortalSession, "billing portal session", data)
