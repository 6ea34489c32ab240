"""``product.*`` and ``price.*``: keep the plan catalog's Stripe ids true.

Each event is admitted through the object's version watermark first, so an older event that
arrives late (``price.created`` after ``price.updated``/``deleted``) changes nothing.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from revenue_engine.gateway.models.catalog import CatalogPrice, CatalogProduct
from revenue_engine.services import catalog_sync, stripe_versions
from revenue_engine.services.catalog_sync import CatalogSync
from revenue_engine.webhooks.context import HandlerContext
from revenue_engine.webhooks.errors import CatalogMismatch, IgnoredEvent, MalformedObject
from revenue_engine.webhooks.event import StripeEvent

ModelT = TypeVar("ModelT", bound=BaseModel)


def _parse(model: type[ModelT], kind: str, obj: dict[str, Any]) -> ModelT:
    if obj.get("object") != kind:
        raise MalformedObject(f"expected a {kind} object, got {str(obj.get('object'))[:40]!r}")
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        where = ", ".join(".".join(str(p) for p in err["loc"]) for err in exc.errors())
        raise MalformedObject(f"{kind} object is missing or has invalid: {where}") from None


async def _admit(event: StripeEvent, object_id: str) -> None:
    admitted = await stripe_versions.admit(
        object_id, created=event.created, event_type=event.type, event_id=event.id
    )
    if not admitted:
        raise IgnoredEvent(f"older than the last event applied to {object_id}")


def _conclude(kind: str, object_id: str, sync: CatalogSync) -> None:
    if sync.mismatches:
        raise CatalogMismatch("; ".join(sync.mismatches))
    if not sync.matched:
        raise IgnoredEvent(f"{kind} {object_id} is not part of the plan catalog")


async def price_changed(event: StripeEvent, context: HandlerContext) -> None:
    """``price.created`` / ``price.updated`` / ``price.deleted``."""
    price = _parse(CatalogPrice, "price", event.object)
    async with stripe_versions.object_lock(price.id):
        await _admit(event, price.id)
        sync = await catalog_sync.sync_price(price, deleted=event.type == "price.deleted")
    _conclude("price", price.id, sync)


async def product_changed(event: StripeEvent, context: HandlerContext) -> None:
    """``product.created`` / ``product.updated`` / ``product.deleted``."""
    product = _parse(CatalogProduct, "product", event.object)
    async with stripe_versions.object_lock(product.id):
        await _admit(event, product.id)
        sync = await catalog_sync.sync_product(product, deleted=event.type == "product.deleted")
    _conclude("product", product.id, sync)
