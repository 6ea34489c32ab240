"""The per-request ``Context`` handed to resolvers, and the ``Info`` alias they annotate with."""

from __future__ import annotations

from dataclasses import dataclass

import strawberry
from starlette.requests import Request
from starlette.responses import Response

from revenue_engine.auth import Principal
from revenue_engine.errors import Forbidden, ResponseTooLarge, Unauthenticated
from revenue_engine.gateway import StripeApi
from revenue_engine.settings import Settings


@dataclass(slots=True)
class Context:
    request: Request
    response: Response
    settings: Settings
    gateway: StripeApi
    principal: Principal | None
    request_id: str
    #: Bytes of large values (webhook payloads) put in this request's response so far.
    large_value_bytes: int = 0

    def require_principal(self) -> Principal:
        """The caller, or ``Unauthenticated`` for tenant fields asked anonymously."""
        if self.principal is None:
            raise Unauthenticated()
        return self.principal

    def require_admin(self) -> Principal:
        principal = self.require_principal()
        if not principal.has_role(self.settings.auth_admin_role):
            raise Forbidden()
        return principal

    def charge_response(self, size: int) -> None:
        """Count a large value of ``size`` bytes towards ``GRAPHQL_MAX_RESPONSE_BYTES`` before
        it is decoded: past the budget, ``ResponseTooLarge`` (the answer is then that error
        alone), so a request never holds much more than its budget in decoded payloads."""
        self.large_value_bytes += size
        limit = self.settings.graphql_max_response_bytes
        if self.large_value_bytes > limit:
            raise ResponseTooLarge(limit)


Info = strawberry.Info[Context, None]
