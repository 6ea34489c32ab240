"""Cursor pagination shared by connection types (Relay-style ``edges`` + ``pageInfo``)."""

from __future__ import annotations

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
