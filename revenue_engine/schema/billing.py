"""GraphQL types of the billing flows: customers, checkout, subscriptions, invoices, payments,
their inputs, result unions, and converters from documents."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated

import strawberry

from revenue_engine.documents import CheckoutSession as CheckoutDoc
from revenue_engine.documents import Customer as CustomerDoc
from revenue_engine.documents import Payment
from revenue_engine.documents import Subscription as SubscriptionDoc
from revenue_engine.schema.errors import (
    AlreadySubscribedError,
    BillingStateError,
    IdempotencyConflictError,
    NotFoundError,
    PaymentDeclinedError,
    PromotionCodeError,
    ProviderRejectedError,
    RetryableError,
    ValidationError,
)
from revenue_engine.schema.pagination import PageInfo
from revenue_engine.schema.plans import BillingInterval, Entitlement, entitlement_type
from revenue_engine.schema.promotions import Discount, discount_type
from revenue_engine.schema.scalars import Count
from revenue_engine.services.subscriptions import Invoice as InvoiceRow
from revenue_engine.services.usage_reads import FeatureUsage as FeatureUsageRow


@strawberry.type(description="The organization's Stripe customer.")
class Customer:
    id: strawberry.ID = strawberry.field(description="The Stripe customer id (cus_…).")
    organization_id: strawberry.ID
    email: str | None
    name: str | None
    created_at: datetime


def customer_type(doc: CustomerDoc) -> Customer:
    return Customer(
        id=strawberry.ID(doc.stripe_customer_id),
        organization_id=strawberry.ID(doc.organization_id),
        email=doc.email,
        name=doc.name,
        created_at=doc.created_at,
    )


@strawberry.type
class CustomerConnection:
    nodes: list[Customer]
    page_info: PageInfo


@strawberry.enum(description="Our view of a Checkout session.")
class CheckoutSessionStatus(enum.StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    EXPIRED = "expired"


@strawberry.type(description="A Stripe Checkout session started by the organization.")
class CheckoutSession:
    session_id: strawberry.ID
    checkout_url: str | None
    status: CheckoutSessionStatus
    payment_status: str
    plan_uid: str
    billing_interval: BillingInterval
    overages: list[str]
    created_at: datetime
    completed_at: datetime | None
    seats: int = strawberry.field(description="Seats bought (1 unless the plan is per seat).")


def checkout_type(doc: CheckoutDoc) -> CheckoutSession:
    return CheckoutSession(
        session_id=strawberry.ID(doc.stripe_session_id),
        checkout_url=doc.url,
        status=CheckoutSessionStatus(doc.status.value),
        payment_status=doc.payment_status,
        plan_uid=doc.plan_uid,
        billing_interval=BillingInterval(doc.interval.value),
        overages=list(doc.overages),
        created_at=doc.created_at,
        completed_at=doc.completed_at,
        seats=doc.seats,
    )


@strawberry.type(
    description="An entitlement of the subscription (`limit`: per month for a metered "
    "feature, packs included); a metered feature also says what its current period used."
)
class SubscriptionEntitlement(Entitlement):
    used: Count | None = strawberry.field(
        description="Used in the current billing period; null for a feature that is not metered."
    )
    remaining: Count | None = strawberry.field(
        description="Included in the current period (the limit, times 12 on a yearly plan) "
        "minus used; null when not metered or unlimited."
    )


def subscription_entitlement(
    key: str, value: int | bool | None, usage: FeatureUsageRow | None
) -> SubscriptionEntitlement:
    base = entitlement_type(key, value)
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
    return SubscriptionEntitlement(
        **fields,
        used=Count(usage.used) if usage else None,
        remaining=Count(usage.remaining) if usage and usage.remaining is not None else None,
    )


@strawberry.type(description="What the organization is subscribed to and may use.")
class SubscriptionStatus:
    has_subscription: bool
    subscription_id: strawberry.ID | None
    status: str | None = strawberry.field(
        description="Stripe's status: active, trialing, past_due, canceled, unpaid, incomplete…"
    )
    is_active: bool = strawberry.field(
        description="May the plan be used now (past_due counts within the grace window)."
    )
    plan_uid: str | None
    billing_interval: BillingInterval | None
    overages: list[str]
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    cancel_at: datetime | None
    canceled_at: datetime | None
    ended_at: datetime | None
    trial_end: datetime | None
    latest_invoice_id: str | None
    entitlements: list[SubscriptionEntitlement]
    discounts: list[Discount] = strawberry.field(
        default_factory=list,
        description="Stripe's discounts on the subscription (promotion codes, coupons).",
    )
    seats: int | None = strawberry.field(
        default=None,
        description="Seats held, when the plan is priced per seat (the `seats` entitlement "
        "follows it); null otherwise.",
    )


NO_SUBSCRIPTION = SubscriptionStatus(
    has_subscription=False,
    subscription_id=None,
    status=None,
    is_active=False,
    plan_uid=None,
    billing_interval=None,
    overages=[],
    current_period_start=None,
    current_period_end=None,
    cancel_at_period_end=False,
    cancel_at=None,
    canceled_at=None,
    ended_at=None,
    trial_end=None,
    latest_invoice_id=None,
    entitlements=[],
)


def subscription_type(
    doc: SubscriptionDoc, *, active: bool, usage: Mapping[str, FeatureUsageRow] | None = None
) -> SubscriptionStatus:
    """``usage``: the current period's usage of the metered features, by feature."""
    usage = usage or {}
    return SubscriptionStatus(
        has_subscription=True,
        subscription_id=strawberry.ID(doc.stripe_subscription_id),
        status=doc.status,
        is_active=active,
        plan_uid=doc.plan_uid,
        billing_interval=BillingInterval(doc.interval.value) if doc.interval else None,
        overages=list(doc.overages),
        current_period_start=doc.current_period_start,
        current_period_end=doc.current_period_end,
        cancel_at_period_end=doc.cancel_at_period_end,
        cancel_at=doc.cancel_at,
        canceled_at=doc.canceled_at,
        ended_at=doc.ended_at,
        trial_end=doc.trial_end,
        latest_invoice_id=doc.latest_invoice_id,
        seats=doc.seats,
        entitlements=(
            [
                subscription_entitlement(k, v, usage.get(k))
                for k, v in sorted(doc.entitlements.items())
            ]
            if active
            else []
        ),
        discounts=[discount_type(d) for d in doc.discounts],
    )


@strawberry.type(description="A Stripe invoice, with links for the customer.")
class Invoice:
    id: strawberry.ID
    number: str | None
    status: str | None
    amount_due: int
    amount_paid: int
    currency: str
    created: datetime
    hosted_invoice_url: str | None
    invoice_pdf: str | None
    subtotal: int = strawberry.field(default=0, description="Before discounts (minor units).")
    total: int = strawberry.field(default=0, description="After discounts (minor units).")
    discount_amount: int = strawberry.field(default=0, description="What discounts took off.")


def invoice_type(row: InvoiceRow) -> Invoice:
    return Invoice(
        id=strawberry.ID(row.id),
        number=row.number,
        status=row.status,
        amount_due=row.amount_due,
        amount_paid=row.amount_paid,
        currency=row.currency,
        created=row.created,
        hosted_invoice_url=row.hosted_invoice_url,
        invoice_pdf=row.invoice_pdf,
        subtotal=row.subtotal,
        total=row.total,
        discount_amount=row.discount_amount,
    )


@strawberry.type
class InvoiceConnection:
    nodes: list[Invoice]
    page_info: PageInfo


@strawberry.type(description="A key/value pair of metadata.")
class MetadataEntry:
    key: str
    value: str


@strawberry.type(description="A one-time payment.")
class PaymentIntent:
    id: strawberry.ID
    amount: int
    currency: str
    amount_refunded: int
    status: str
    failure_reason: str | None
    metadata: list[MetadataEntry]
    created_at: datetime


def payment_type(doc: Payment) -> PaymentIntent:
    return PaymentIntent(
        id=strawberry.ID(doc.stripe_payment_intent_id),
        amount=doc.amount,
        currency=doc.currency,
        amount_refunded=doc.amount_refunded,
        status=doc.status,
        failure_reason=doc.failure_reason,
        metadata=[MetadataEntry(key=k, value=v) for k, v in sorted(doc.metadata.items())],
        created_at=doc.created_at,
    )


# --- inputs ------------------------------------------------------------------------------
PROMOTION_CODE = (
    "A promotion code the customer typed; checked at Stripe first (INVALID_PROMOTION_CODE "
    "when it cannot be used, nothing written)."
)
SEATS_INPUT = (
    "A per-seat plan's seats, between its minSeats and maxSeats (default minSeats); only for "
    "per-seat plans."
)


@strawberry.input
class CustomerInput:
    email: str | None = None
    name: str | None = None


@strawberry.input
class CheckoutInput:
    plan_uid: str
    billing_interval: BillingInterval
    overages: list[str] = strawberry.field(default_factory=list)
    success_path: str | None = strawberry.field(
        default=None, description="Path on PUBLIC_BASE_URL; `?session_id=…` is appended."
    )
    cancel_path: str | None = None
    trial_days: int | None = strawberry.field(
        default=None, description="Free days before the first charge (1-730)."
    )
    promotion_code: str | None = strawberry.field(default=None, description=PROMOTION_CODE)
    seats: int | None = strawberry.field(default=None, description=SEATS_INPUT)


@strawberry.input
class CreateSubscriptionInput:
    plan_uid: str
    billing_interval: BillingInterval
    overages: list[str] = strawberry.field(default_factory=list)
    trial_days: int | None = None
    promotion_code: str | None = strawberry.field(default=None, description=PROMOTION_CODE)
    seats: int | None = strawberry.field(default=None, description=SEATS_INPUT)


@strawberry.enum
class ProrationBehavior(enum.StrEnum):
    CREATE_PRORATIONS = "create_prorations"
    ALWAYS_INVOICE = "always_invoice"
    NONE = "none"


@strawberry.input
class ChangePlanInput:
    plan_uid: str
    billing_interval: BillingInterval
    overages: list[str] | None = strawberry.field(
        default=None, description="null keeps the current add-ons."
    )
    proration_behavior: ProrationBehavior = ProrationBehavior.CREATE_PRORATIONS
    promotion_code: str | None = strawberry.field(
        default=None,
        description=PROMOTION_CODE + " Replaces the subscription's discounts; with the current "
        "plan, only applies the code.",
    )
    seats: int | None = strawberry.field(
        default=None,
        description="A per-seat plan's seats; null keeps the seats held (or the plan's least).",
    )


@strawberry.input
class MetadataInput:
    key: str
    value: str


@strawberry.input
class PaymentIntentInput:
    amount: int = strawberry.field(description="Minor units.")
    currency: str
    metadata: list[MetadataInput] = strawberry.field(default_factory=list)


# --- payloads and results ----------------------------------------------------------------
@strawberry.type
class CustomerPayload:
    customer: Customer


@strawberry.type
class DeletedPayload:
    id: strawberry.ID


@strawberry.type
class CheckoutPayload:
    session_id: strawberry.ID
    checkout_url: str


@strawberry.type
class VerifyCheckoutPayload:
    session_id: strawberry.ID
    status: str = strawberry.field(description="Stripe's session status: open, complete, expired.")
    payment_status: str = strawberry.field(
        description="paid, unpaid (a delayed method is still pending), no_payment_required."
    )
    subscription: SubscriptionStatus


@strawberry.type
class SubscriptionPayload:
    subscription: SubscriptionStatus


@strawberry.type
class PaymentIntentPayload:
    payment_intent: PaymentIntent
    client_secret: str | None = None


@strawberry.type
class PortalPayload:
    url: str


# Each mutation's union lists the errors it can answer (docs/api.md, "Errors by mutation").
# Every one that reaches Stripe or the store can answer RetryableError (RATE_LIMITED, BUSY,
# UNAVAILABLE) and, calling Stripe, ProviderRejectedError; IdempotencyConflictError where it
# writes to Stripe (every write is keyed).
_STRIPE_WRITE = RetryableError | IdempotencyConflictError | ProviderRejectedError
CreateCustomerResult = Annotated[
    CustomerPayload | ValidationError | _STRIPE_WRITE, strawberry.union("CreateCustomerResult")
]
UpdateCustomerResult = Annotated[
    CustomerPayload | ValidationError | NotFoundError | _STRIPE_WRITE,
    strawberry.union("UpdateCustomerResult"),
]
DeleteCustomerResult = Annotated[
    DeletedPayload | NotFoundError | AlreadySubscribedError | _STRIPE_WRITE,
    strawberry.union("DeleteCustomerResult"),
]
CheckoutResult = Annotated[
    CheckoutPayload
    | ValidationError
    | NotFoundError
    | AlreadySubscribedError
    | BillingStateError
    | PromotionCodeError
    | _STRIPE_WRITE,
    strawberry.union("CheckoutResult"),
]
VerifyCheckoutResult = Annotated[
    VerifyCheckoutPayload | NotFoundError | _STRIPE_WRITE, strawberry.union("VerifyCheckoutResult")
]
CreateSubscriptionResult = Annotated[
    SubscriptionPayload
    | ValidationError
    | NotFoundError
    | AlreadySubscribedError
    | BillingStateError
    | PaymentDeclinedError
    | PromotionCodeError
    | _STRIPE_WRITE,
    strawberry.union("CreateSubscriptionResult"),
]
CancelSubscriptionResult = Annotated[
    SubscriptionPayload | NotFoundError | BillingStateError | _STRIPE_WRITE,
    strawberry.union("CancelSubscriptionResult"),
]
ResumeSubscriptionResult = Annotated[
    SubscriptionPayload | NotFoundError | BillingStateError | _STRIPE_WRITE,
    strawberry.union("ResumeSubscriptionResult"),
]
ChangeSubscriptionPlanResult = Annotated[
    SubscriptionPayload
    | ValidationError
    | NotFoundError
    | BillingStateError
    | PromotionCodeError
    | _STRIPE_WRITE,
    strawberry.union("ChangeSubscriptionPlanResult"),
]
CreatePaymentIntentResult = Annotated[
    PaymentIntentPayload | ValidationError | NotFoundError | _STRIPE_WRITE,
    strawberry.union("CreatePaymentIntentResult"),
]
ConfirmPaymentIntentResult = Annotated[
    PaymentIntentPayload | ValidationError | NotFoundError | PaymentDeclinedError | _STRIPE_WRITE,
    strawberry.union("ConfirmPaymentIntentResult"),
]
CancelPaymentIntentResult = Annotated[
    PaymentIntentPayload | NotFoundError | _STRIPE_WRITE,
    strawberry.union("CancelPaymentIntentResult"),
]
RefundPaymentResult = Annotated[
    PaymentIntentPayload | ValidationError | NotFoundError | _STRIPE_WRITE,
    strawberry.union("RefundPaymentResult"),
]
PortalResult = Annotated[
    PortalPayload | ValidationError | NotFoundError | _STRIPE_WRITE,
    strawberry.union("PortalResult"),
]
