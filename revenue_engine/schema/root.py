"""The root ``Query`` and ``Mutation`` types: field names, arguments and their resolvers."""

from __future__ import annotations

from typing import Annotated

import strawberry

from revenue_engine.context import Info
from revenue_engine.resolvers import billing
from revenue_engine.resolvers import metering as metering_resolvers
from revenue_engine.resolvers import payment_methods as payment_method_resolvers
from revenue_engine.resolvers import plans as plan_resolvers
from revenue_engine.resolvers import previews as preview_resolvers
from revenue_engine.resolvers import usage as usage_resolvers
from revenue_engine.resolvers import webhooks as webhook_resolvers
from revenue_engine.schema.billing import (
    CancelPaymentIntentResult,
    CancelSubscriptionResult,
    ChangePlanInput,
    ChangeSubscriptionPlanResult,
    CheckoutInput,
    CheckoutResult,
    CheckoutSession,
    ConfirmPaymentIntentResult,
    CreateCustomerResult,
    CreatePaymentIntentResult,
    CreateSubscriptionInput,
    CreateSubscriptionResult,
    Customer,
    CustomerConnection,
    CustomerInput,
    DeleteCustomerResult,
    InvoiceConnection,
    PaymentIntent,
    PaymentIntentInput,
    PortalResult,
    ProrationBehavior,
    RefundPaymentResult,
    ResumeSubscriptionResult,
    SubscriptionStatus,
    UpdateCustomerResult,
    VerifyCheckoutResult,
)
from revenue_engine.schema.metering import MeterErrorReport
from revenue_engine.schema.payment_methods import (
    CreateSetupIntentResult,
    DetachPaymentMethodResult,
    PaymentMethod,
    SetDefaultPaymentMethodResult,
)
from revenue_engine.schema.plans import ArchivePlanResult, Plan, PlanInput, UpsertPlanResult
from revenue_engine.schema.previews import (
    PreviewChangeInput,
    PreviewChangeResult,
    UpdateSeatsResult,
)
from revenue_engine.schema.rate_limit import StripeRateLimit
from revenue_engine.schema.usage import RecordUsageResult, SetOverageResult, Usage, UsageEventInput
from revenue_engine.schema.viewer import Viewer, viewer_type
from revenue_engine.schema.webhooks import ReplayWebhookEventResult, WebhookEventConnection


@strawberry.type
class Query:
    plans: list[Plan] = strawberry.field(
        resolver=plan_resolvers.plans, description="The plan catalog, by sort order."
    )
    plan: Plan | None = strawberry.field(
        resolver=plan_resolvers.plan, description="One plan by uid; null when unknown."
    )

    webhook_events: WebhookEventConnection = strawberry.field(
        resolver=webhook_resolvers.webhook_events,
        description="Admin: received Stripe events, newest first (`first` at most 100).",
    )

    meter_error_reports: list[MeterErrorReport] = strawberry.field(
        resolver=metering_resolvers.meter_error_reports,
        description="Admin: Stripe's reports of meter events it dropped, newest first "
        "(`first` at most 100).",
    )

    @strawberry.field(description="The authenticated caller (UNAUTHENTICATED without one).")
    def viewer(self, info: Info) -> Viewer:
        return viewer_type(info.context.require_principal())

    @strawberry.field(description="The organization's Stripe customer, if created.")
    async def customer(self, info: Info) -> Customer | None:
        return await billing.customer(info)

    @strawberry.field(description="Admin: customers of all organizations, by organization id.")
    async def customers(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> CustomerConnection:
        return await billing.customer_list(info, first, after)

    @strawberry.field(description="One of the organization's Checkout sessions.")
    async def checkout_session(self, info: Info, id: strawberry.ID) -> CheckoutSession | None:
        return await billing.checkout_session(info, id)

    @strawberry.field(description="The current (live, else latest) subscription and entitlements.")
    async def subscription_status(self, info: Info) -> SubscriptionStatus:
        return await billing.subscription_status(info)

    @strawberry.field(description="Every subscription of the organization, newest first.")
    async def subscriptions(self, info: Info) -> list[SubscriptionStatus]:
        return await billing.subscription_list(info)

    @strawberry.field(description="The organization's invoices, newest first (first ≤ 100).")
    async def invoices(
        self, info: Info, first: int = 10, after: str | None = None
    ) -> InvoiceConnection:
        return await billing.invoices(info, first, after)

    @strawberry.field(
        description="What a plan, interval, add-on or seat change would bill (Stripe's invoice "
        "preview); nothing is changed.",
        extensions=[StripeRateLimit()],
    )
    async def preview_subscription_change(
        self, info: Info, data: Annotated[PreviewChangeInput, strawberry.argument(name="input")]
    ) -> PreviewChangeResult:
        return await preview_resolvers.preview_subscription_change(info, data)

    @strawberry.field(description="One of the organization's one-time payments.")
    async def payment_intent(self, info: Info, id: strawberry.ID) -> PaymentIntent | None:
        return await billing.payment_intent(info, id)

    @strawberry.field(
        description="The payment methods saved to the organization's customer, newest first "
        "(read from Stripe; the stored view while Stripe cannot be reached)."
    )
    async def payment_methods(self, info: Info) -> list[PaymentMethod]:
        return await payment_method_resolvers.payment_method_list(info)

    @strawberry.field(
        description="Usage of the metered features in the current billing period of the "
        "caller's organization (admins: any organization); null without a live subscription."
    )
    async def usage(self, info: Info, organization_id: str | None = None) -> Usage | None:
        return await usage_resolvers.usage(info, organization_id)


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Admin: create or replace a plan by uid.")
    async def upsert_plan(
        self,
        info: Info,
        data: Annotated[PlanInput, strawberry.argument(name="input")],
        create_only: bool = False,
    ) -> UpsertPlanResult:
        return await plan_resolvers.upsert_plan(info, data, create_only)

    @strawberry.mutation(description="Admin: hide a plan from new purchases.")
    async def archive_plan(self, info: Info, uid: strawberry.ID) -> ArchivePlanResult:
        return await plan_resolvers.archive_plan(info, str(uid))

    @strawberry.mutation(
        description="Get or create the organization's Stripe customer.",
        extensions=[StripeRateLimit()],
    )
    async def create_customer(
        self,
        info: Info,
        data: Annotated[CustomerInput | None, strawberry.argument(name="input")] = None,
    ) -> CreateCustomerResult:
        return await billing.create_customer(info, data)

    @strawberry.mutation(
        description="Change the customer's email or name.", extensions=[StripeRateLimit()]
    )
    async def update_customer(
        self, info: Info, data: Annotated[CustomerInput, strawberry.argument(name="input")]
    ) -> UpdateCustomerResult:
        return await billing.update_customer(info, data)

    @strawberry.mutation(
        description="Delete the customer (refused while a subscription is live).",
        extensions=[StripeRateLimit()],
    )
    async def delete_customer(self, info: Info) -> DeleteCustomerResult:
        return await billing.delete_customer(info)

    @strawberry.mutation(
        description="Start Stripe Checkout for a plan; returns the hosted URL.",
        extensions=[StripeRateLimit()],
    )
    async def create_checkout_session(
        self, info: Info, data: Annotated[CheckoutInput, strawberry.argument(name="input")]
    ) -> CheckoutResult:
        return await billing.create_checkout_session(info, data)

    @strawberry.mutation(
        description="After the redirect back: confirm the session and apply it.",
        extensions=[StripeRateLimit()],
    )
    async def verify_checkout_session(
        self, info: Info, session_id: strawberry.ID
    ) -> VerifyCheckoutResult:
        return await billing.verify_checkout_session(info, session_id)

    @strawberry.mutation(
        description="Subscribe directly with the customer's default payment method.",
        extensions=[StripeRateLimit()],
    )
    async def create_subscription(
        self,
        info: Info,
        data: Annotated[CreateSubscriptionInput, strawberry.argument(name="input")],
    ) -> CreateSubscriptionResult:
        return await billing.create_subscription(info, data)

    @strawberry.mutation(
        description="Cancel at the end of the period (default) or now.",
        extensions=[StripeRateLimit()],
    )
    async def cancel_subscription(
        self, info: Info, at_period_end: bool = True
    ) -> CancelSubscriptionResult:
        return await billing.cancel_subscription(info, at_period_end)

    @strawberry.mutation(
        description="Undo a scheduled cancellation.", extensions=[StripeRateLimit()]
    )
    async def resume_subscription(self, info: Info) -> ResumeSubscriptionResult:
        return await billing.resume_subscription(info)

    @strawberry.mutation(
        description="Switch plan, interval or add-ons, with proration control.",
        extensions=[StripeRateLimit()],
    )
    async def change_subscription_plan(
        self, info: Info, data: Annotated[ChangePlanInput, strawberry.argument(name="input")]
    ) -> ChangeSubscriptionPlanResult:
        return await billing.change_subscription_plan(info, data)

    @strawberry.mutation(
        description="Set the seats of a per-seat subscription, with proration control.",
        extensions=[StripeRateLimit()],
    )
    async def update_seats(
        self,
        info: Info,
        quantity: int,
        proration_behavior: ProrationBehavior = ProrationBehavior.CREATE_PRORATIONS,
    ) -> UpdateSeatsResult:
        return await preview_resolvers.update_seats(info, quantity, proration_behavior)

    @strawberry.mutation(
        description="A one-time payment; identical requests within the window return the same.",
        extensions=[StripeRateLimit()],
    )
    async def create_payment_intent(
        self, info: Info, data: Annotated[PaymentIntentInput, strawberry.argument(name="input")]
    ) -> CreatePaymentIntentResult:
        return await billing.create_payment_intent(info, data)

    @strawberry.mutation(extensions=[StripeRateLimit()])
    async def confirm_payment_intent(
        self, info: Info, id: strawberry.ID, payment_method: str
    ) -> ConfirmPaymentIntentResult:
        return await billing.confirm_payment_intent(info, id, payment_method)

    @strawberry.mutation(extensions=[StripeRateLimit()])
    async def cancel_payment_intent(
        self, info: Info, id: strawberry.ID
    ) -> CancelPaymentIntentResult:
        return await billing.cancel_payment_intent(info, id)

    @strawberry.mutation(
        description="Refund (needs the admin role) all that is left of one of the "
        "organization's payments, or `amount` of it.",
        extensions=[StripeRateLimit()],
    )
    async def refund_payment(
        self, info: Info, payment_intent_id: strawberry.ID, amount: int | None = None
    ) -> RefundPaymentResult:
        return await billing.refund_payment(info, payment_intent_id, amount)

    @strawberry.mutation(
        description="A Stripe billing-portal URL for the organization's customer.",
        extensions=[StripeRateLimit()],
    )
    async def create_billing_portal_session(
        self, info: Info, return_path: str | None = None
    ) -> PortalResult:
        return await billing.create_billing_portal_session(info, return_path)

    @strawberry.mutation(
        description="A SetupIntent to save a card for renewals: confirm it with Stripe.js "
        "(against the emulator: open its `confirmationUrl`).",
        extensions=[StripeRateLimit()],
    )
    async def create_setup_intent(
        self, info: Info, return_path: str | None = None
    ) -> CreateSetupIntentResult:
        return await payment_method_resolvers.create_setup_intent(info, return_path)

    @strawberry.mutation(
        description="Make one of the customer's saved payment methods the default for "
        "invoices and renewals.",
        extensions=[StripeRateLimit()],
    )
    async def set_default_payment_method(
        self, info: Info, id: strawberry.ID
    ) -> SetDefaultPaymentMethodResult:
        return await payment_method_resolvers.set_default_payment_method(info, id)

    @strawberry.mutation(
        description="Remove a saved payment method (not the one the live subscription pays with).",
        extensions=[StripeRateLimit()],
    )
    async def detach_payment_method(
        self, info: Info, id: strawberry.ID
    ) -> DetachPaymentMethodResult:
        return await payment_method_resolvers.detach_payment_method(info, id)

    @strawberry.mutation(
        description="Report one usage event (role `usage` or admin: any organization; members: "
        "their own while USAGE_SELF_REPORT is on). Batches: POST /v1/usage."
    )
    async def record_usage(
        self, info: Info, data: Annotated[UsageEventInput, strawberry.argument(name="input")]
    ) -> RecordUsageResult:
        return await usage_resolvers.record_usage(info, data)

    @strawberry.mutation(
        description="Switch overage of a metered feature on (usage beyond the included "
        "quantity is billed) or off (it is refused with QUOTA_EXCEEDED).",
        extensions=[StripeRateLimit()],
    )
    async def set_overage(self, info: Info, feature: str, enabled: bool) -> SetOverageResult:
        return await usage_resolvers.set_overage(info, feature, enabled)

    @strawberry.mutation(description="Admin: dispatch a stored Stripe event again, by its id.")
    async def replay_webhook_event(self, info: Info, id: strawberry.ID) -> ReplayWebhookEventResult:
        return await webhook_resolvers.replay_webhook_event(info, id)
