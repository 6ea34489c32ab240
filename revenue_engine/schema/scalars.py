"""Custom scalars: ``Count``, a non-negative integer beyond GraphQL's 32-bit ``Int``.

Usage counts pass 2,147,483,647 (a yearly plan of 250,000 calls a month includes 3,000,000;
a busy organization uses more). ``Count`` is serialised as a JSON number, exact up to 2**53
(what a JavaScript client reads without loss); as input it takes an integer (never a bool,
a float or a string) in that range, else the request is refused before anything runs.
"""

from __future__ import annotations

from typing import Any, NewType

import strawberry
from graphql import IntValueNode, ValueNode
from strawberry.types.scalar import ScalarDefinition

Count = NewType("Count", int)

#: The largest ``Count``: every integer up to it is exact in an IEEE double.
MAX_COUNT = 2**53


def _serialize(value: Any) -> int:
    if type(value) is not int or not 0 <= value <= MAX_COUNT:
        raise ValueError(f"Count cannot represent {value!r}")
    return value


def _parse_value(value: Any) -> Count:
    if type(value) is not int or not 0 <= value <= MAX_COUNT:
        raise ValueError(f"Count must be an integer from 0 to {MAX_COUNT}")
    return Count(value)


def _parse_literal(node: ValueNode, _variables: dict[str, Any] | None = None) -> Count:
    if not isinstance(node, IntValueNode):
        raise ValueError(f"Count must be an integer from 0 to {MAX_COUNT}")
    if len(node.value) > 17:  # longer than 2**53 has digits: refused before converting
        raise ValueError(f"Count must be an integer from 0 to {MAX_COUNT}")
    return _parse_value(int(node.value))


COUNT_SCALAR: ScalarDefinition = strawberry.scalar(
    name="Count",
    description="A non-negative integer up to 2^53, serialised as a JSON number (GraphQL's "
    "Int stops at 2^31 - 1).",
    serialize=_serialize,
    parse_value=_parse_value,
    parse_literal=_parse_literal,
)

#: For ``StrawberryConfig.scalar_map``.
SCALAR_MAP: dict[object, ScalarDefinition] = {Count: COUNT_SCALAR}
