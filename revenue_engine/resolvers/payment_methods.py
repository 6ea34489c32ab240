"""Resolvers of saved payment methods: each unpacks its input, calls one service, converts."""

from __future__ import annotations

import strawberry

from revenue_engine.context import Info
from revenue_engine.schema.payment_methods import (
    PaymentMethod,
    PaymentMethodsPayload,
    SetupIntentPayload,
    payment_method_type,
    setup_intent_payload,
)
from revenue_engine.services import payment_methods, setup_intents


async def payment_method_list(info: Info) -> list[PaymentMethod]:
    ctx = info.context
    found = await payment_methods.list_payment_methods(ctx.gateway, ctx.require_principal())
    return [payment_method_type(row) for row in found]


async def create_setup_intent(info: Info, return_path: str | None) -> SetupIntentPayload:
    ctx = info.context
    grant = await setup_intents.create_setup_intent(
        ctx.gateway, ctx.settings, ctx.require_principal(), return_path
    )
    return setup_intent_payload(grant)


async def set_default_payment_method(info: Info, id: strawberry.ID) -> PaymentMethodsPayload:
    ctx = info.context
    found = await payment_methods.set_default_payment_method(
        ctx.gateway, ctx.require_principal(), str(id), request_id=ctx.request_id
    )
    return PaymentMethodsPayload(payment_methods=[payment_method_type(r) for r in found])


async def detach_payment_method(info: Info, id: strawberry.ID) -> PaymentMethodsPayload:
    ctx = info.context
    found = await payment_methods.detach_payment_method(
        ctx.gateway, ctx.require_principal(), str(id)
    )
    return PaymentMethodsPayload(payment_methods=[payment_method_type(r) for r in found])
