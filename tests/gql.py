"""Helpers to call the GraphQL endpoint the way a SPA does."""

from __future__ import annotations

from typing import Any

import httpx

ADMIN = {
    "x-organization-id": "org_admin",
    "x-customer-email": "ops@example.com",
    "x-roles": "admin",
}
MEMBER = {"x-organization-id": "org_a", "x-customer-email": "a@example.com"}


async def gql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
