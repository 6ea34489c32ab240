"""Cursor pagination shared by connection types (Relay-style ``edges`` + ``pageInfo``)."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import FieldNode, FragmentSpreadNode

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


def selects(info: Any, *names: str) -> bool:
    """Whether the field being resolved selects a field of one of ``names`` anywhere beneath
    it (through fragments and inline fragments too): a query that does not ask for a costly
    value need not read it. Walks graphql-core's nodes with each fragment visited once (Strawberry's
    ``selected_fields`` rebuilds a fragment at every spread: exponential in a chain of them)."""
    raw = info._raw_info
    fragments = raw.fragments
    seen: set[str] = set()
    stack: list[Any] = [
        child
        for field in raw.field_nodes
        if field.selection_set
        for child in field.selection_set.selections
    ]
    while stack:
        node = stack.pop()
        if isinstance(node, FragmentSpreadNode):
            fragment = fragments.get(node.name.value)
            if fragment is not None and node.name.value not in seen:
                seen.add(node.name.value)
                stack.extend(fragment.selection_set.selections)
            continue
        if isinstance(node, FieldNode) and node.name.value in names:
            return True
        if node.selection_set is not None:
            stack.extend(node.selection_set.selections)
    return False
