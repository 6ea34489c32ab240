"""The Stripe billing portal for the caller's organization."""

from __future__ import annotations

from revenue_engine.auth import Principal
from revenue_engine.clock import unix_now
from revenue_engine.errors import FieldProblem, NotFound, ValidationFailed
from revenue_engine.gateway import PortalCalls, idempotency_key
from revenue_engine.services.customers import get_customer
from revenue_engine.services.paths import path_problem
from revenue_engine.settings import Settings

DEFAULT_RETURN_PATH = "/billing"


async def create_portal_session(
    gateway: PortalCalls, settings: Settings, principal: Principal, return_path: str | None
) -> str:
    path = return_path or DEFAULT_RETURN_PATH
    problem = path_problem(path)
    if problem:
        raise ValidationFailed("invalid return path", [FieldProblem("returnPath", problem)])
    customer = await get_customer(principal)
    if customer is None:
        raise NotFound("customer", principal.organization_id)
    # Portal sessions are short-lived: one per minute per return path is plenty.
    key = idempotency_key(principal.organization_id, "portal.create", path, int(unix_now()) // 60)
    session = await gateway.create_portal_session(
        {
            "customer": customer.stripe_customer_id,
            "return_url": settings.public_base_url.rstrip("/") + path,
        },
        key=key,
    )
    return session.url
