"""Typed read models of the Stripe objects the engine reads: exactly the fields it reads, parsed
straight from Stripe's JSON (no ``StripeObject`` tree). Unknown fields are ignored, so a newer
API version that adds fields changes nothing; a missing or mistyped field the engine needs is
refused (``MalformedStripeObject``). Optional fields default to ``None``.

An expandable field (``customer``, ``latest_invoice``, ``test_clock``, ``product``, …) is read
as its id whether Stripe sent the id or the expanded object.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from revenue_engine.errors import MalformedStripeObject


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


ModelT = TypeVar("ModelT", bound=StripeModel)


def parse_model(model: type[ModelT], kind: str, data: Any, *, name_fields: bool = False) -> ModelT:
    """``data`` (Stripe's JSON of a ``kind`` object) as ``model``; ``MalformedStripeObject``
    when it is not one (the validation error is its cause), naming the fields missing or
    invalid with ``name_fields``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        message = f"not a Stripe {kind} object"
        if name_fields:
            where = ", ".join(".".join(str(p) for p in err["loc"]) or "-" for err in exc.errors())
            message += f" (missing or invalid: {where})"
        raise MalformedStripeObject(message) from exc
