"""Cursor pagination shared by connection types (Relay-style ``edges`` + ``pageInfo``)."""

from __future__ import annotations

import strawberry

#: Largest page a client may ask for with ``first``.
MAX_PAGE_SIZE = 100


@strawberry.type(description="Where a page ends and whether another follows.")
class PageInfo:
    has_next_page: bool
    end_cursor: str | None = strawberry.field(
        description="Pass as `after` to get the next page; null on an empty page."
    )
