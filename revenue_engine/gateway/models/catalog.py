"""The read models of the catalog and what is billed from it.

* Products (``CatalogProduct``), prices (``CatalogPrice``: more of a price than the
  subscription's ``StripePrice``, whether it is active and its ``transform_quantity``), Billing
  Meters (``StripeMeter``) and the meter events sent to them (``MeterEventReceipt``).
  ``services.catalog`` reads them from the gateway's answers and ``services.catalog_sync`` from
  the ``price.*``/``product.*`` events, so one model holds what both read.
* Invoices: an issued one as listed (``StripeInvoice``) and the next one previewed, with its
  lines (``StripeInvoicePreview``).
* Promotion codes (``StripePromotionCode``) and their coupons (``StripeCoupon``), as
  ``services.promotions`` checks them.
* Events as the Events API lists them (``StripeEventListing``), for the webhook backfill.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from revenue_engine.errors import MalformedStripeObject
from revenue_engine.gateway.models.base import (
    ExpandableId,
    ModelT,
    StripeModel,
    list_data,
    parse_model,
)


class CatalogRecurring(StripeModel):
    """A recurring price's billing: every ``interval_count`` ``interval``s, ``licensed`` (per
    unit, up front) or ``metered`` (usage on ``meter``)."""

    interval: str
    interval_count: int = 1
    usage_type: str = "licensed"
    meter: str | None = None


class PriceTransform(StripeModel):
    """``transform_quantity``: the quantity billed is the usage divided by ``divide_by``,
    rounded ``up`` or ``down``."""

    divide_by: int
    round: str


class CatalogPrice(StripeModel):
    """The fields of a Stripe price the catalog reads (see ``services.catalog`` and
    ``services.catalog_sync``)."""

    id: Annotated[str, Field(min_length=1)]
    active: bool = True
    deleted: bool = False
    lookup_key: str | None = None
    currency: str | None = None
    unit_amount: int | None = None
    product: ExpandableId = None
    recurring: CatalogRecurring | None = None
    transform_quantity: PriceTransform | None = None

    @property
    def product_id(self) -> str | None:
        return self.product

    def describe(self) -> str:
        """What the price bills, in words (for a mismatch report)."""
        every = f"/{self.recurring.interval}" if self.recurring else " once"
        if self.recurring and self.recurring.interval_count != 1:
            every = f"/{self.recurring.interval_count} {self.recurring.interval}s"
        described = f"{self.unit_amount} {self.currency}{every}"
        if self.recurring and self.recurring.usage_type == "metered":
            described += f" metered on {self.recurring.meter}"
        if self.transform_quantity:
            described += (
                f" per {self.transform_quantity.divide_by} units"
                f" rounded {self.transform_quantity.round}"
            )
        return described


class CatalogProduct(StripeModel):
    """The fields of a Stripe product the catalog reads."""

    id: Annotated[str, Field(min_length=1)]
    active: bool = True
    deleted: bool = False
    metadata: dict[str, str] = Field(default_factory=dict)


class StripeMeter(StripeModel):
    """A Billing Meter: its id, the event name it counts, ``active`` or ``inactive``."""

    id: Annotated[str, Field(min_length=1)]
    event_name: str | None = None
    status: str | None = "active"


class MeterEventReceipt(StripeModel):
    """Stripe's answer to a meter event: the identifier it counts the event under."""

    identifier: Annotated[str, Field(min_length=1)]
    event_name: str | None = None
    timestamp: int | None = None


def _int_or_none(value: Any) -> Any:
    """An integer as sent, anything else (a boolean included) as none."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


#: An integer where Stripe sends one; what is not one reads as ``None``.
IntOrNone = Annotated[int | None, BeforeValidator(_int_or_none)]


class DiscountAmount(StripeModel):
    """One of ``total_discount_amounts``: what one discount took off."""

    amount: IntOrNone = None


class _InvoiceAmounts(StripeModel):
    """What an invoice, issued or previewed, amounts to."""

    currency: str | None = None
    created: int | None = None
    subtotal: int | None = None
    total: int | None = None
    amount_due: int | None = None
    total_discount_amounts: list[DiscountAmount] | None = None

    @property
    def discount_amount(self) -> int:
        """What the invoice's discounts took off."""
        return sum(d.amount or 0 for d in self.total_discount_amounts or [])


class StripeInvoice(_InvoiceAmounts):
    """An issued invoice as listed (``services.subscriptions.list_invoices``)."""

    id: Annotated[str, Field(min_length=1)]
    number: str | None = None
    status: str | None = None
    amount_paid: int | None = None
    hosted_invoice_url: str | None = None
    invoice_pdf: str | None = None


class LinePeriod(StripeModel):
    start: int | None = None
    end: int | None = None


class ProrationFlag(StripeModel):
    """A line parent's details: whether the line is a proration."""

    proration: bool | None = None


class LineParent(StripeModel):
    """What a line bills (since API 2025-03-31): a subscription item or an invoice item."""

    subscription_item_details: ProrationFlag | None = None
    invoice_item_details: ProrationFlag | None = None


class InvoiceLine(StripeModel):
    """One line of a previewed invoice. ``proration`` is where API versions before 2025-03-31
    said so; a ``quantity`` that is not an integer reads as none."""

    description: str | None = None
    amount: int | None = None
    quantity: IntOrNone = None
    period: LinePeriod | None = None
    parent: LineParent | None = None
    proration: bool | None = None

    @property
    def is_proration(self) -> bool:
        parent = self.parent
        details = None
        if parent is not None:
            details = parent.subscription_item_details or parent.invoice_item_details
        if details is not None and "proration" in details.model_fields_set:
            return bool(details.proration)
        return bool(self.proration)


class StripeInvoicePreview(_InvoiceAmounts):
    """The invoice Stripe would issue next (``invoices.create_preview``): it is no stored
    invoice, so it needs no id."""

    lines: Annotated[list[InvoiceLine], BeforeValidator(list_data)] = Field(default_factory=list)


class CouponAppliesTo(StripeModel):
    """The products a coupon is limited to (none: every product)."""

    products: list[str] | None = None


class StripeCoupon(StripeModel):
    """A coupon. ``applies_to`` is sent only when asked for (``expand``): whether it was sent
    is ``"applies_to" in coupon.model_fields_set``."""

    id: Annotated[str, Field(min_length=1)]
    deleted: bool = False
    valid: bool | None = None
    amount_off: int | None = None
    currency: str | None = None
    redeem_by: IntOrNone = None
    max_redemptions: IntOrNone = None
    times_redeemed: int | None = None
    applies_to: CouponAppliesTo | None = None

    @property
    def used_up(self) -> bool:
        limit = self.max_redemptions
        return limit is not None and (self.times_redeemed or 0) >= limit


class PromotionRestrictions(StripeModel):
    first_time_transaction: bool | None = None
    minimum_amount: IntOrNone = None
    minimum_amount_currency: str | None = None


class Promoted(StripeModel):
    """What a promotion code promotes (since API 2025-09-30): its coupon, expanded or its id."""

    coupon: StripeCoupon | str | None = None


class StripePromotionCode(StripeModel):
    """A promotion code. Its coupon is ``promotion.coupon``; before API 2025-09-30 it was the
    code's own ``coupon`` (``coupon_ref`` reads either)."""

    id: Annotated[str, Field(min_length=1)]
    code: str
    active: bool = False
    customer: ExpandableId = None
    expires_at: IntOrNone = None
    max_redemptions: IntOrNone = None
    times_redeemed: int | None = None
    restrictions: PromotionRestrictions | None = None
    promotion: Promoted | None = None
    coupon: StripeCoupon | str | None = None

    @property
    def coupon_ref(self) -> StripeCoupon | str | None:
        return (self.promotion.coupon if self.promotion else None) or self.coupon

    @property
    def used_up(self) -> bool:
        limit = self.max_redemptions
        return limit is not None and (self.times_redeemed or 0) >= limit


class StripeEventListing(StripeModel):
    """One event of an Events API listing: its ``id`` (the listing's cursor), its ``created``
    (``None`` when it is not an integer) and the envelope as Stripe sent it, as JSON text
    (``envelope``).

    The envelope stays Stripe's JSON: the backfill hands that text to the same ledger and
    dispatch as a delivery, which check the whole envelope themselves (``webhooks.event``), keep
    the text and give each handler its ``data.object`` to validate. An event that check refuses
    is counted as malformed there, so a listing is not refused for it here."""

    id: Annotated[str, Field(min_length=1)]
    created: IntOrNone = None
    envelope: str


def parse_listed_event(data: Any) -> StripeEventListing:
    """One listed event; ``MalformedStripeObject`` when it is no object with an id."""
    if not isinstance(data, dict):
        raise MalformedStripeObject("not a Stripe event object (missing or invalid: -)")
    envelope = json.dumps(data)
    fields = {"id": data.get("id"), "created": data.get("created"), "envelope": envelope}
    return parse_as(StripeEventListing, "event", fields)


def parse_as(model: type[ModelT], kind: str, data: Any) -> ModelT:
    """``data`` (Stripe's JSON of a ``kind`` object) as ``model``; ``MalformedStripeObject``
    naming what is missing or invalid when it is not one (the validation error is its cause)."""
    return parse_model(model, kind, data, name_fields=True)
