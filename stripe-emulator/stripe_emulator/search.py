"""The Search API (``GET /v1/<resource>/search?query=…``) over in-memory objects.

Supports the parts of Stripe's query language integrations actually use: ``field:'value'``
(exact), ``field~'value'`` (substring), ``field>n`` / ``<`` / ``>=`` / ``<=`` on numbers,
``metadata['key']:'value'``, ``-`` negation, ``null``, and clauses joined by ``AND`` or by ``OR``
(not both, as on Stripe). Unlike Stripe, results are visible immediately (no indexing delay).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from stripe_emulator.errors import invalid_request
from stripe_emulator.forms import Params
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON, snapshot

_CLAUSE = re.compile(
    r"""\s*(?P<neg>-)?
    (?P<field>metadata\[(?P<q>['"])(?P<mkey>[^'"]+)(?P=q)\]|[a-z_\.]+)
    \s*(?P<op>:|~|>=|<=|>|<)\s*
    (?P<value>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s]+)\s*""",
    re.VERBOSE,
)


def _value(raw: str) -> Any:
    if raw[:1] in ("'", '"'):
        return raw[1:-1].replace("\\'", "'").replace('\\"', '"')
    if raw == "null":
        return None
    if re.fullmatch(r"-?\d+", raw):
        return int(raw)
    return raw


def _predicate(text: str) -> Callable[[JSON], bool]:
    match = _CLAUSE.fullmatch(text)
    if match is None:
        raise invalid_request(f"Invalid search query clause: {text}", param="query")
    field, op = match.group("field"), match.group("op")
    value = _value(match.group("value"))
    meta_key = match.group("mkey")

    def lookup(obj: JSON) -> Any:
        if meta_key is not None:
            return (obj.get("metadata") or {}).get(meta_key)
        node: Any = obj
        for part in field.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node

    def test(obj: JSON) -> bool:
        actual = lookup(obj)
        if op == ":":
            if isinstance(actual, bool):
                return str(actual).lower() == str(value).lower()
            return actual == value or (
                isinstance(actual, str)
                and isinstance(value, str)
                and actual.lower() == value.lower()
            )
        if op == "~":
            return isinstance(actual, str) and str(value).lower() in actual.lower()
        if not isinstance(actual, int) or not isinstance(value, int):
            return False
        return {
            ">": actual > value,
            "<": actual < value,
            ">=": actual >= value,
            "<=": actual <= value,
        }[op]

    if match.group("neg"):
        return lambda obj: not test(obj)
    return test


def parse(query: str) -> Callable[[JSON], bool]:
    has_and = re.search(r"\sAND\s", query) is not None
    has_or = re.search(r"\sOR\s", query) is not None
    if has_and and has_or:
        raise invalid_request(
            "Search queries cannot mix AND and OR; use one of them.", param="query"
        )
    parts = re.split(r"\s(?:AND|OR)\s", query)
    predicates = [_predicate(part) for part in parts]
    if has_or:
        return lambda obj: any(p(obj) for p in predicates)
    return lambda obj: all(p(obj) for p in predicates)


def search(ctx: Ctx, p: Params, kind: str, url: str) -> JSON:
    p.only(("query", "limit", "page", "expand"))
    query = p.string("query", required=True)
    assert query is not None
    limit = p.integer("limit", minimum=1, maximum=100) or 10
    page = p.string("page")
    offset = int(page) if page and page.isdigit() else 0
    matcher = parse(query)
    hits = [obj for obj in ctx.store.all(kind) if matcher(obj)]
    window = hits[offset : offset + limit]
    more = len(hits) > offset + limit
    return {
        "object": "search_result",
        "data": [snapshot(obj) for obj in window],
        "has_more": more,
        "next_page": str(offset + limit) if more else None,
        "url": url,
    }
