"""The ``viewer`` query: who the API thinks the caller is."""

from __future__ import annotations

import strawberry

from revenue_engine.auth import Principal


@strawberry.type(description="The authenticated caller.")
class Viewer:
    organization_id: strawberry.ID
    email: str | None
    roles: list[str]


def viewer_type(principal: Principal) -> Viewer:
    return Viewer(
        organization_id=strawberry.ID(principal.organization_id),
        email=principal.email,
        roles=sorted(principal.roles),
    )
