"""``expand[]``: replacing ids in a response with the objects they name.

Paths are dotted (``latest_invoice``, ``items.data.price``, ``data.customer`` on lists), at most
four levels deep like Stripe's. A field holding an id is replaced by a snapshot of that object; a
field that is already an object is walked into; a list of ids (``discounts``) becomes a list of
objects. Some fields are *includable* — absent unless
expanded (a Checkout Session's ``line_items``); resource modules register a builder for those.
Expanding anything else is Stripe's 400 "This property cannot be expanded".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stripe_emulator.errors import invalid_request
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON, snapshot

Includable = Callable[[Ctx, JSON], JSON | None]

_INCLUDABLE: dict[tuple[str, str], Includable] = {}


def register_includable(object_type: str, field: str, build: Includable) -> None:
    _INCLUDABLE[(object_type, field)] = build


def apply(ctx: Ctx, obj: JSON, paths: list[str]) -> JSON:
    for index, path in enumerate(paths):
        parts = path.split(".")
        if len(parts) > 4:
            raise invalid_request(
                f"You cannot expand more than 4 levels of a property. Property: {path}",
                param=f"expand[{index}]",
            )
        _expand(ctx, obj, parts, path, index)
    return obj


def _expand(ctx: Ctx, node: Any, parts: list[str], path: str, index: int) -> None:
    if isinstance(node, list):
        for item in node:
            _expand(ctx, item, parts, path, index)
        return
    if not isinstance(node, dict):
        return
    head, rest = parts[0], parts[1:]
    if head not in node:
        build = _INCLUDABLE.get((str(node.get("object")), head))
        if build is None:
            raise _cannot_expand(path, index)
        node[head] = build(ctx, node)
    value = node[head]
    if isinstance(value, list):
        # A list of expandable ids (a subscription's ``discounts``): each id becomes its object.
        found = [ctx.store.find(v) if isinstance(v, str) else v for v in value]
        if any(f is None for f in found):
            raise _cannot_expand(path, index)
        node[head] = value = [snapshot(f) if isinstance(f, dict) else f for f in found]
        if rest:
            _expand(ctx, value, rest, path, index)
        return
    if isinstance(value, str):
        target = ctx.store.find(value)
        if target is None:
            raise _cannot_expand(path, index)
        node[head] = value = snapshot(target)
    elif value is None:
        return
    elif not rest and not isinstance(value, dict):
        raise _cannot_expand(path, index)
    if rest:
        _expand(ctx, value, rest, path, index)


def _cannot_expand(path: str, index: int) -> Exception:
    return invalid_request(f"This property cannot be expanded ({path}).", param=f"expand[{index}]")
