"""The read models of one-time payments: the PaymentIntent (``StripePaymentIntent``, with its
``last_payment_error``), the refund made of it (``StripeRefund``) and the charge refunded
(``StripeCharge``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from revenue_engine.gateway.models.base import ExpandableId, StripeModel, parse_model


class StripePaymentError(StripeModel):
    """Why the intent's last payment attempt failed: Stripe's message, else the card's
    decline code."""

    decline_code: str | None = None
    message: str | None = None

    @property
    def reason(self) -> str | None:
        """The failure reason stored on a payment (``None``: none given)."""
        return self.message or self.decline_code


class StripePaymentIntent(StripeModel):
    """What the engine reads of a PaymentIntent: its status (stored on our payment), the
    client secret handed to Stripe.js, and why the last attempt failed."""

    object: Literal["payment_intent"]
    id: Annotated[str, Field(min_length=1)]
    status: Annotated[str, Field(min_length=1)]
    client_secret: str | None = None
    last_payment_error: StripePaymentError | None = None

    @property
    def failure_reason(self) -> str | None:
        """The last attempt's failure reason (``None``: it did not fail, or Stripe says not
        why)."""
        error = self.last_payment_error
        return error.reason if error is not None else None


class StripeRefund(StripeModel):
    """A refund: its id, the amount it gives back and the charge it refunds."""

    object: Literal["refund"]
    id: Annotated[str, Field(min_length=1)]
    amount: int | None = None
    charge: ExpandableId = None


class StripeCharge(StripeModel):
    """A charge: the payment intent it belongs to and Stripe's running total refunded."""

    object: Literal["charge"]
    id: Annotated[str, Field(min_length=1)]
    amount_refunded: int | None = None
    payment_intent: ExpandableId = None


def parse_payment_intent(data: Any) -> StripePaymentIntent:
    """``data`` (Stripe's JSON of a PaymentIntent) as the read model; ``MalformedStripeObject``
    when it is not one (the validation error is its cause)."""
    return parse_model(StripePaymentIntent, "payment intent", data)


def parse_refund(data: Any) -> StripeRefund:
    """``data`` (Stripe's JSON of a refund) as the read model; ``MalformedStripeObject`` when
    it is not one."""
    return parse_model(StripeRefund, "refund", data)


def parse_charge(data: Any) -> StripeCharge:
    """``data`` (Stripe's JSON of a charge: a gateway answer or an event's object) as the read
    model; ``MalformedStripeObject`` when it is not one."""
    return parse_model(StripeCharge, "charge", data)
