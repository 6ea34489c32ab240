"""GraphQL types of saved payment methods: the list, adding a card (a SetupIntent), the default,
removing one; their payloads, result unions and converters."""

from __future__ import annotations

from typing import Annotated

import strawberry

from revenue_engine.schema.errors import (
    BillingStateError,
    IdempotencyConflictError,
    NotFoundError,
    ProviderRejectedError,
    RetryableError,
    ValidationError,
)
from revenue_engine.services.payment_methods import PaymentMethodRow
from revenue_engine.services.setup_intents import SetupGrant


@strawberry.type(description="A payment method saved to the organization's customer.")
class PaymentMethod:
    id: strawberry.ID = strawberry.field(
        description="Stripe's id (pm_…, or card_… for a card saved through the legacy Sources API)."
    )
    type: str = strawberry.field(description="card, us_bank_account, …")
    brand: str | None = strawberry.field(description="visa, mastercard, …; a bank's name.")
    last4: str | None
    exp_month: int | None
    exp_year: int | None
    is_default: bool = strawberry.field(
        description="What invoices and renewals charge when the subscription names no other."
    )


def payment_method_type(row: PaymentMethodRow) -> PaymentMethod:
    return PaymentMethod(
        id=strawberry.ID(row.id),
        type=row.type,
        brand=row.brand,
        last4=row.last4,
        exp_month=row.exp_month,
        exp_year=row.exp_year,
        is_default=row.is_default,
    )


@strawberry.type
class PaymentMethodsPayload:
    payment_methods: list[PaymentMethod] = strawberry.field(
        description="The customer's saved payment methods after the change, newest first."
    )


@strawberry.type
class SetupIntentPayload:
    setup_intent_id: strawberry.ID
    client_secret: str = strawberry.field(description="For Stripe.js `confirmSetup`.")
    confirmation_url: str | None = strawberry.field(
        description="Development against the emulator only: its hosted page that confirms the "
        "SetupIntent with a test card and returns to `returnPath`."
    )


def setup_intent_payload(grant: SetupGrant) -> SetupIntentPayload:
    return SetupIntentPayload(
        setup_intent_id=strawberry.ID(grant.setup_intent_id),
        client_secret=grant.client_secret,
        confirmation_url=grant.confirmation_url,
    )


CreateSetupIntentResult = Annotated[
    SetupIntentPayload
    | ValidationError
    | RetryableError
    | IdempotencyConflictError
    | ProviderRejectedError,
    strawberry.union("CreateSetupIntentResult"),
]
SetDefaultPaymentMethodResult = Annotated[
    PaymentMethodsPayload
    | NotFoundError
    | RetryableError
    | IdempotencyConflictError
    | ProviderRejectedError,
    strawberry.union("SetDefaultPaymentMethodResult"),
]
DetachPaymentMethodResult = Annotated[
    PaymentMethodsPayload
    | NotFoundError
    | BillingStateError
    | RetryableError
    | IdempotencyConflictError
    | ProviderRejectedError,
    strawberry.union("DetachPaymentMethodResult"),
]
