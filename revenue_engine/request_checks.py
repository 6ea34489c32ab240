"""Checks on a GraphQL request as it arrives, before it is parsed or executed.

* ``decode_request_json`` — the body (or a GET request's ``variables`` / ``extensions``) must
  be UTF-8 JSON nested at most ``MAX_JSON_DEPTH`` levels deep and holding at most
  ``MAX_REQUEST_CONTAINERS`` objects and arrays, else ``HTTPException`` 400 (the view answers
  it as ``BAD_REQUEST``);
* ``check_text`` — no string of the request (the query text, so every literal, id, cursor
  and enum-like string in it; ``operationName``; every variable at any depth, keys included;
  ``extensions``) may hold a lone surrogate, else ``BadUserInput`` naming the first one's
  place, which the view answers ``BAD_USER_INPUT`` as for any variable that does not fit its
  type. Such text could reach neither the store (BSON) nor Stripe (the SDK encodes UTF-8), so
  it stops here;
* ``check_size`` (first) — the variables of one request, and its extensions, may each hold
  at most ``MAX_VARIABLE_VALUES`` values, else ``BadUserInput``: coercing them into inputs
  costs tens of microseconds a value on the event loop, and no input of this API needs more
  than a few hundred.
"""

from __future__ import annotations

import json

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from strawberry.http import GraphQLRequestData

from revenue_engine.errors import BadUserInput
from revenue_engine.json_input import (
    MAX_JSON_DEPTH,
    BadText,
    JsonTooDeep,
    JsonTooLarge,
    find_bad_text,
    holds_more_values_than,
    loads,
    lone_surrogate_at,
    may_decode_to_bad_text,
)

#: Values (objects, lists and scalars) the variables of one request may hold.
MAX_VARIABLE_VALUES = 2_000
#: Objects and arrays a request body may hold, counted before it is decoded: the variables'
#: and the extensions' share, and the body itself.
MAX_REQUEST_CONTAINERS = 2 * MAX_VARIABLE_VALUES + 1

_LONE_SURROGATE = "is not valid Unicode (a lone surrogate)"


def decode_request_json(data: str | bytes) -> object:
    """Decode request JSON under the rules above (``json.JSONDecodeError`` passes through)."""
    try:
        return loads(data, max_depth=MAX_JSON_DEPTH, max_containers=MAX_REQUEST_CONTAINERS)
    except JsonTooLarge:
        raise HTTPException(
            400, f"The request JSON holds more than {MAX_REQUEST_CONTAINERS:,} objects and arrays"
        ) from None
    except JsonTooDeep:
        raise HTTPException(
            400, f"The request JSON is nested more than {MAX_JSON_DEPTH} levels deep"
        ) from None
    except UnicodeDecodeError:
        raise HTTPException(400, "The request body is not UTF-8") from None
    except json.JSONDecodeError:
        raise
    except ValueError:
        # Python refuses to convert an integer of over 4,300 digits (CVE-2020-10735's guard):
        # no value of this API is that long.
        raise HTTPException(400, "A number in the request JSON is too long") from None


async def check_text(
    request: AsyncHTTPRequestAdapter, parsed: GraphQLRequestData | list[GraphQLRequestData]
) -> None:
    """``BadUserInput`` when a string of ``parsed`` (read from ``request``) is not valid
    Unicode; the message names the place, never the text itself."""
    if request.method == "GET":
        raw: list[str | bytes] = []
        for value in request.query_params.values():
            raw.extend(value if isinstance(value, list) else [value or ""])
    else:
        raw = [await request.get_body()]  # Starlette keeps the body it has read
    if not any(may_decode_to_bad_text(part) for part in raw):
        return
    for item in parsed if isinstance(parsed, list) else [parsed]:
        problem = _item_problem(item)
        if problem is not None:
            raise BadUserInput(problem)


def check_size(parsed: GraphQLRequestData | list[GraphQLRequestData]) -> None:
    """``BadUserInput`` when the variables (or the extensions) of ``parsed`` hold too many
    values. Checked before the text, so that walk is small too."""
    for item in parsed if isinstance(parsed, list) else [parsed]:
        for name, value in (("variables", item.variables), ("extensions", item.extensions)):
            if holds_more_values_than(value, MAX_VARIABLE_VALUES):
                raise BadUserInput(
                    f"The {name} hold more than {MAX_VARIABLE_VALUES:,} values "
                    "(objects, lists and scalars)."
                )


def _item_problem(request: GraphQLRequestData) -> str | None:
    fields = {
        "query": request.query,
        "operationName": request.operation_name,
        "variables": request.variables,
        "extensions": request.extensions,
    }
    bad = find_bad_text(fields)
    if bad is None:
        return None
    if not bad.placed or not bad.path:
        return f"The request holds text that {_LONE_SURROGATE}."
    first, rest = bad.path[0], bad.path[1:]
    if first == "query" and isinstance(request.query, str):
        line, column = _position(request.query)
        return f"The query text {_LONE_SURROGATE} at line {line}, column {column}."
    if first == "variables" and rest:
        where = BadText(rest, key=bad.key).describe()
        return f"Variable '${rest[0]}' got text that {_LONE_SURROGATE} at {where}."
    if first == "variables":
        return f"A variable name {_LONE_SURROGATE}."
    return f"The request holds text that {_LONE_SURROGATE} at {bad.describe()}."


def _position(query: str) -> tuple[int, int]:
    """Line and column of the first lone surrogate in ``query`` (1-based, as GraphQL counts)."""
    index = lone_surrogate_at(query)
    line = query.count("\n", 0, index) + 1
    column = index - query.rfind("\n", 0, index)
    return line, column
