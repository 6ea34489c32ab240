"""Resolvers of the billing flows: each unpacks its input, calls one service, converts."""

from __future__ import annotations

import strawberry

from revenue_engine.context import Info
from revenue_engine.documents import BillingInterval, Subscription
from revenue_engine.errors import FieldProblem, ValidationFailed
from revenue_engine.schema.billing import (
    NO_SUBSCRIPTION,
    ChangePlanInput,
    CheckoutInput,
    CheckoutPayload,
    CheckoutSession,
    CreateSubscriptionInput,
    Customer,
    CustomerConnection,
    CustomerInput,
    CustomerPayload,
    DeletedPayload,
    InvoiceConnection,
    MetadataInput,
    PaymentIntent,
    PaymentIntentInput,
    PaymentIntentPayload,
    PortalPayload,
    SubscriptionPayload,
    SubscriptionStatus,
    VerifyCheckoutPayload,
    checkout_type,
    customer_type,
    invoice_type,
    payment_type,
    subscription_type,
)
from revenue_engine.schema.pagination import PageInfo, page_size, selects
from revenue_engine.services import (
    checkout,
    customers,
    payments,
    portal,
    subscriptions,
    usage_reads,
)


async def subscription_status_type(
    info: Info, doc: Subscription | None, *, usage_asked: bool = True
) -> SubscriptionStatus:
    """The status of ``doc``; an active one with its metered features' usage this period
    (unless the query does not ask for it: ``usage_asked``)."""
    if doc is None:
        return NO_SUBSCRIPTION
    active = subscriptions.is_active(doc, info.context.settings)
    usage = await usage_reads.entitlement_usage(doc) if active and usage_asked else None
    return subscription_type(doc, active=active, usage=usage)


def _asks_usage(info: Info) -> bool:
    """Whether the query asks for the entitlements' ``used`` or ``remaining`` (each costs a
    read of the period's counters)."""
    return selects(info, "used", "remaining")


# --- customers ---------------------------------------------------------------------------
async def customer(info: Info) -> Customer | None:
    found = await customers.get_customer(info.context.require_principal())
    return customer_type(found) if found else None


async def customer_list(info: Info, first: int, after: str | None) -> CustomerConnection:
    info.context.require_admin()
    rows, more = await customers.list_customers(page_size(first), after)
    return CustomerConnection(
        nodes=[customer_type(c) for c in rows],
        page_info=PageInfo(
            end_cursor=rows[-1].organization_id if rows else None, has_next_page=more
        ),
    )


async def create_customer(info: Info, data: CustomerInput | None) -> CustomerPayload:
    ctx = info.context
    doc = await customers.get_or_create_customer(
        ctx.gateway,
        ctx.require_principal(),
        email=data.email if data else None,
        name=data.name if data else None,
    )
    return CustomerPayload(customer=customer_type(doc))


async def update_customer(info: Info, data: CustomerInput) -> CustomerPayload:
    ctx = info.context
    doc = await customers.update_customer(
        ctx.gateway, ctx.require_principal(), email=data.email, name=data.name
    )
    return CustomerPayload(customer=customer_type(doc))


async def delete_customer(info: Info) -> DeletedPayload:
    ctx = info.context
    deleted = await customers.delete_customer(ctx.gateway, ctx.require_principal())
    return DeletedPayload(id=strawberry.ID(deleted))


# --- checkout ----------------------------------------------------------------------------
async def create_checkout_session(info: Info, data: CheckoutInput) -> CheckoutPayload:
    ctx = info.context
    doc = await checkout.create_checkout_session(
        ctx.gateway,
        ctx.settings,
        ctx.require_principal(),
        checkout.CheckoutRequest(
            plan_uid=data.plan_uid,
            interval=BillingInterval(data.billing_interval.value),
            overages=tuple(data.overages),
            success_path=data.success_path,
            cancel_path=data.cancel_path,
            trial_days=data.trial_days,
            promotion_code=data.promotion_code,
            seats=data.seats,
        ),
    )
    return CheckoutPayload(
        session_id=strawberry.ID(doc.stripe_session_id), checkout_url=doc.url or ""
    )


async def checkout_session(info: Info, session_id: strawberry.ID) -> CheckoutSession | None:
    doc = await checkout.get_checkout_session(info.context.require_principal(), str(session_id))
    return checkout_type(doc) if doc else None


async def verify_checkout_session(info: Info, session_id: strawberry.ID) -> VerifyCheckoutPayload:
    ctx = info.context
    result = await checkout.verify_checkout_session(
        ctx.gateway, ctx.require_principal(), str(session_id), request_id=ctx.request_id
    )
    return VerifyCheckoutPayload(
        session_id=strawberry.ID(result.session.stripe_session_id),
        status=result.stripe_status,
        payment_status=result.payment_status,
        subscription=await subscription_status_type(info, result.subscription),
    )


# --- subscriptions -----------------------------------------------------------------------
async def subscription_status(info: Info) -> SubscriptionStatus:
    doc = await subscriptions.current_subscription(info.context.require_principal())
    return await subscription_status_type(info, doc, usage_asked=_asks_usage(info))


async def subscription_list(info: Info) -> list[SubscriptionStatus]:
    docs = await subscriptions.list_subscriptions(info.context.require_principal())
    asked = _asks_usage(info)
    return [await subscription_status_type(info, d, usage_asked=asked) for d in docs]


async def create_subscription(info: Info, data: CreateSubscriptionInput) -> SubscriptionPayload:
    ctx = info.context
    doc = await subscriptions.create_subscription(
        ctx.gateway,
        ctx.require_principal(),
        settings=ctx.settings,
        plan_uid=data.plan_uid,
        interval=BillingInterval(data.billing_interval.value),
        overages=list(data.overages),
        trial_days=data.trial_days,
        request_id=ctx.request_id,
        promotion_code=data.promotion_code,
        seats=data.seats,
    )
    return SubscriptionPayload(subscription=await subscription_status_type(info, doc))


async def cancel_subscription(info: Info, at_period_end: bool) -> SubscriptionPayload:
    ctx = info.context
    doc = await subscriptions.cancel_subscription(
        ctx.gateway,
        ctx.require_principal(),
        settings=ctx.settings,
        at_period_end=at_period_end,
        request_id=ctx.request_id,
    )
    return SubscriptionPayload(subscription=await subscription_status_type(info, doc))


async def resume_subscription(info: Info) -> SubscriptionPayload:
    ctx = info.context
    doc = await subscriptions.resume_subscription(
        ctx.gateway, ctx.require_principal(), request_id=ctx.request_id
    )
    return SubscriptionPayload(subscription=await subscription_status_type(info, doc))


async def change_subscription_plan(info: Info, data: ChangePlanInput) -> SubscriptionPayload:
    ctx = info.context
    doc = await subscriptions.change_subscription_plan(
        ctx.gateway,
        ctx.require_principal(),
        settings=ctx.settings,
        plan_uid=data.plan_uid,
        interval=BillingInterval(data.billing_interval.value),
        overages=list(data.overages) if data.overages is not None else None,
        proration=subscriptions.ProrationBehavior(data.proration_behavior.value),
        request_id=ctx.request_id,
        promotion_code=data.promotion_code,
        seats=data.seats,
    )
    return SubscriptionPayload(subscription=await subscription_status_type(info, doc))


async def invoices(info: Info, first: int, after: str | None) -> InvoiceConnection:
    ctx = info.context
    rows, more = await subscriptions.list_invoices(
        ctx.gateway, ctx.require_principal(), first=page_size(first), after=after
    )
    return InvoiceConnection(
        nodes=[invoice_type(r) for r in rows],
        page_info=PageInfo(end_cursor=rows[-1].id if rows else None, has_next_page=more),
    )


# --- one-time payments -------------------------------------------------------------------
async def payment_intent(info: Info, intent_id: strawberry.ID) -> PaymentIntent | None:
    ctx = info.context
    doc = await payments.current_payment(ctx.gateway, ctx.require_principal(), str(intent_id))
    return payment_type(doc) if doc else None


def _metadata(entries: list[MetadataInput]) -> dict[str, str]:
    """The entries as a mapping; a key given twice is refused (neither value would be right)."""
    seen: dict[str, str] = {}
    twice: set[str] = set()
    for entry in entries:
        if entry.key in seen:
            twice.add(entry.key)
        seen[entry.key] = entry.value
    if twice:
        problems = [FieldProblem(f"metadata.{k}", "key given twice") for k in sorted(twice)]
        raise ValidationFailed("invalid metadata", problems)
    return seen


async def create_payment_intent(info: Info, data: PaymentIntentInput) -> PaymentIntentPayload:
    ctx = info.context
    doc, secret = await payments.create_payment_intent(
        ctx.gateway,
        ctx.settings,
        ctx.require_principal(),
        amount=data.amount,
        currency=data.currency,
        metadata=_metadata(data.metadata),
    )
    return PaymentIntentPayload(payment_intent=payment_type(doc), client_secret=secret)


async def confirm_payment_intent(
    info: Info, intent_id: strawberry.ID, payment_method: str
) -> PaymentIntentPayload:
    ctx = info.context
    doc = await payments.confirm_payment_intent(
        ctx.gateway, ctx.require_principal(), str(intent_id), payment_method=payment_method
    )
    return PaymentIntentPayload(payment_intent=payment_type(doc))


async def cancel_payment_intent(info: Info, intent_id: strawberry.ID) -> PaymentIntentPayload:
    ctx = info.context
    doc = await payments.cancel_payment_intent(ctx.gateway, ctx.require_principal(), str(intent_id))
    return PaymentIntentPayload(payment_intent=payment_type(doc))


async def refund_payment(
    info: Info, intent_id: strawberry.ID, amount: int | None
) -> PaymentIntentPayload:
    ctx = info.context
    # Refunds move money back: an operator's decision (the admin role), not a customer's.
    doc = await payments.refund_payment(
        ctx.gateway, ctx.require_admin(), str(intent_id), amount=amount
    )
    return PaymentIntentPayload(payment_intent=payment_type(doc))


# --- billing portal ----------------------------------------------------------------------
async def create_billing_portal_session(info: Info, return_path: str | None) -> PortalPayload:
    ctx = info.context
    url = await portal.create_portal_session(
        ctx.gateway, ctx.settings, ctx.require_principal(), return_path
    )
    return PortalPayload(url=url)
