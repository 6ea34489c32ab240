"""List objects: Stripe's cursor pagination and the common ``created`` filter.

``{"object": "list", "data": [...], "has_more": bool, "url": "/v1/..."}``, newest first, with
``limit`` (1-100, default 10), ``starting_after`` (the page after an id) and ``ending_before``
(the page before an id, still newest first).
"""

from __future__ import annotations

from collections.abc import Callable

from stripe_emulator.errors import invalid_request, parameter_invalid
from stripe_emulator.forms import Params
from stripe_emulator.store import JSON, snapshot

PAGINATION = ("limit", "starting_after", "ending_before", "expand")


def list_object(items: list[JSON], url: str, *, has_more: bool = False) -> JSON:
    return {
        "object": "list",
        "data": [snapshot(i) for i in items],
        "has_more": has_more,
        "url": url,
    }


def paginate(items: list[JSON], params: Params, url: str) -> JSON:
    """One page of ``items`` (already newest first) as a Stripe list object."""
    limit = params.integer("limit", minimum=1, maximum=100) or 10
    starting_after = params.string("starting_after")
    ending_before = params.string("ending_before")
    if starting_after and ending_before:
        raise invalid_request(
            "You may only specify one of these parameters: ending_before, starting_after.",
            param="ending_before",
        )
    ids = [item["id"] for item in items]
    if starting_after:
        if starting_after not in ids:
            raise _unknown_cursor("starting_after", starting_after)
        rest = items[ids.index(starting_after) + 1 :]
        return list_object(rest[:limit], url, has_more=len(rest) > limit)
    if ending_before:
        if ending_before not in ids:
            raise _unknown_cursor("ending_before", ending_before)
        before = items[: ids.index(ending_before)]
        page = before[-limit:]
        return list_object(page, url, has_more=len(before) > limit)
    return list_object(items[:limit], url, has_more=len(items) > limit)


def _unknown_cursor(param: str, object_id: str) -> Exception:
    return invalid_request(f"No such object: '{object_id}'", param=param, code="resource_missing")


def created_filter(params: Params, key: str = "created") -> Callable[[JSON], bool]:
    """``created=<ts>`` or ``created[gt|gte|lt|lte]=<ts>`` as a predicate."""
    if not params.has(key):
        return lambda _obj: True
    if not isinstance(params.data[key], dict):
        exact = params.integer(key)
        return lambda obj: obj.get(key) == exact
    bounds = params.sub(key)
    assert bounds is not None
    bounds.only(("gt", "gte", "lt", "lte"))
    gt, gte = bounds.integer("gt"), bounds.integer("gte")
    lt, lte = bounds.integer("lt"), bounds.integer("lte")

    def check(obj: JSON) -> bool:
        value = obj.get(key)
        if not isinstance(value, int):
            return False
        return (
            (gt is None or value > gt)
            and (gte is None or value >= gte)
            and (lt is None or value < lt)
            and (lte is None or value <= lte)
        )

    return check


def require_choice(params: Params, key: str, choices: tuple[str, ...]) -> str | None:
    value = params.string(key)
    if value is not None and value not in choices:
        raise parameter_invalid(params.path(key), f"Invalid {key}: must be one of {choices}")
    return value
