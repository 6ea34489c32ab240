"""Typed read models of the Stripe objects the engine reads: exactly the fields it reads, parsed
straight from Stripe's JSON (no ``StripeObject`` tree). Unknown fields are ignored, so a newer
API version that adds fields changes nothing; a missing or mistyped field the engine needs is
refused (``MalformedStripeObject``). Optional fields default to ``None``.

An expandable field (``customer``, ``latest_invoice``, ``test_clock``, ``product``, …) is read
as its id whether Stripe sent the id or the expanded object.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict


def expanded_id(value: Any) -> Any:
    """An expandable field as its id: the expanded object's ``id``, else the value as sent."""
    if isinstance(value, dict):
        return value.get("id")
    return value


def list_data(value: Any) -> Any:
    """A Stripe list object (``{"object": "list", "data": [...]}``) as its items; absent: none."""
    if value is None:
        return []
    if isinstance(value, dict):
        return value.get("data") or []
    return value


#: An expandable reference: its id (``None`` when Stripe sent none).
ExpandableId = Annotated[str | None, BeforeValidator(expanded_id)]


class StripeModel(BaseModel):
    """The base of every read model: unknown fields ignored, instances frozen."""

    model_config = ConfigDict(extra="ignore", frozen=True)
