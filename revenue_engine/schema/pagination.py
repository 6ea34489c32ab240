"""Cursor pagination shared by connection types (Relay-style ``edges`` + ``pageInfo``)."""

from __future__ import annotations

from typing import Any

import strawberry

from revenue_engine.errors import FieldProblem, ValidationFailed

#: Largest page a client may ask for with ``first``.
MAX_PAGE_SIZE = 100


@strawberry.type(description="Where a page ends and whether another follows.")
class PageInfo:
    has_next_page: bool
    end_cursor: str | None = strawberry.field(
        description="Pass as `after` to get the next page; null on an empty page."
    )


def page_size(first: int | None, default: int = 20) -> int:
    """``first`` checked against ``MAX_PAGE_SIZE``; out of range → a VALIDATION error."""
    size = default if first is None else first
    if not 1 <= size <= MAX_PAGE_SIZE:
        message = f"first must be between 1 and {MAX_PAGE_SIZE}"
        raise ValidationFailed(message, [FieldProblem("first", message)])
    return size


def selects(info: Any, name: str) -> bool:
    """Whether the field being resolved selects a field ``name`` anywhere beneath it (through
    fragments and inline fragments too): a connection can leave unasked, costly values in the
    store. Iterative, and linear in the size of the selection."""
    stack: list[Any] = list(info.selected_fields)
    while stack:
        selection = stack.pop()
        if getattr(selection, "name", None) == name and hasattr(selection, "arguments"):
            return True
        stack.extend(selection.selections)
    return False
