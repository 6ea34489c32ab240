"""GraphQL types of subscription-change previews and seat changes: the preview of the next
invoice, its input, and the result unions of ``previewSubscriptionChange`` and ``updateSeats``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from revenue_engine.schema.billing import ProrationBehavior, SubscriptionPayload
from revenue_engine.schema.errors import (
    BillingStateError,
    IdempotencyConflictError,
    NotFoundError,
    PromotionCodeError,
    ProviderRejectedError,
    RetryableError,
    ValidationError,
)
from revenue_engine.schema.plans import BillingInterval
from revenue_engine.services.previews import ChangePreview, PreviewLine


@strawberry.type(description="A line of an invoice Stripe has not issued yet.")
class InvoicePreviewLine:
    description: str | None
    amount: int = strawberry.field(description="Minor units; a credit is negative.")
    quantity: int | None
    period_start: datetime
    period_end: datetime
    proration: bool = strawberry.field(
        description="A proration: credit for the unused time of what the change removes, or "
        "charge for the remaining time of what it adds."
    )


@strawberry.type(description="An invoice Stripe has not issued yet, as Stripe computes it.")
class InvoicePreview:
    date: datetime = strawberry.field(description="When Stripe issues it.")
    currency: str
    subtotal: int
    discount_amount: int = strawberry.field(
        description="What the discounts take off (the subtotal less the total before credit)."
    )
    total: int
    amount_due: int = strawberry.field(
        description="The total less the customer's credit balance (never below 0)."
    )
    lines: list[InvoicePreviewLine]


@strawberry.type(description="What a subscription change would bill; nothing was changed.")
class SubscriptionChangePreview:
    plan_uid: str
    billing_interval: BillingInterval
    overages: list[str]
    seats: int | None = strawberry.field(description="Seats after the change (per-seat plans).")
    proration_behavior: ProrationBehavior
    proration_date: datetime = strawberry.field(
        description="The moment the prorations are computed for."
    )
    amount_due_now: int = strawberry.field(
        description="Charged when the change is made: the prorations with ALWAYS_INVOICE, the "
        "new period of a new interval; 0 when the prorations wait for the next invoice."
    )
    proration_amount: int = strawberry.field(
        description="Net of the proration lines (negative: a credit), wherever they are billed."
    )
    next_invoice: InvoicePreview = strawberry.field(
        description="The next invoice after the change: the one issued at once when "
        "amountDueNow applies, else the renewal at the period end, prorations included."
    )


def _line(line: PreviewLine) -> InvoicePreviewLine:
    return InvoicePreviewLine(
        description=line.description,
        amount=line.amount,
        quantity=line.quantity,
        period_start=line.period_start,
        period_end=line.period_end,
        proration=line.proration,
    )


def preview_type(preview: ChangePreview) -> SubscriptionChangePreview:
    invoice = preview.invoice
    return SubscriptionChangePreview(
        plan_uid=preview.plan_uid,
        billing_interval=BillingInterval(preview.interval.value),
        overages=list(preview.overages),
        seats=preview.seats,
        proration_behavior=ProrationBehavior(preview.proration_behavior.value),
        proration_date=preview.proration_date,
        amount_due_now=preview.amount_due_now,
        proration_amount=preview.proration_amount,
        next_invoice=InvoicePreview(
            date=invoice.issued_at,
            currency=invoice.currency,
            subtotal=invoice.subtotal,
            total=invoice.total,
            discount_amount=invoice.discount_amount,
            amount_due=invoice.amount_due,
            lines=[_line(line) for line in invoice.lines],
        ),
    )


@strawberry.input(description="A change to preview; a field left null keeps what it is now.")
class PreviewChangeInput:
    plan_uid: str | None = None
    billing_interval: BillingInterval | None = None
    overages: list[str] | None = strawberry.field(
        default=None, description="null keeps the current add-ons (as changeSubscriptionPlan)."
    )
    seats: int | None = strawberry.field(
        default=None, description="A per-seat plan's seats; null keeps the seats held."
    )
    proration_behavior: ProrationBehavior = ProrationBehavior.CREATE_PRORATIONS
    promotion_code: str | None = strawberry.field(
        default=None,
        description="A promotion code the change would apply (checked at Stripe as the change "
        "checks it); its discount shows in the preview.",
    )


PreviewChangeResult = Annotated[
    SubscriptionChangePreview
    | ValidationError
    | NotFoundError
    | BillingStateError
    | RetryableError
    | ProviderRejectedError
    | PromotionCodeError,
    strawberry.union("PreviewChangeResult"),
]
UpdateSeatsResult = Annotated[
    SubscriptionPayload
    | ValidationError
    | BillingStateError
    | RetryableError
    | IdempotencyConflictError
    | ProviderRejectedError,
    strawberry.union("UpdateSeatsResult"),
]
