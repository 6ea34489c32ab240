"""HTTP caching of the public catalog: a GraphQL query over GET that reads only the catalog
(``plans``, ``plan``, ``__typename`` at its root, through fragments too) is answered with an
``ETag`` and ``Cache-Control: public, max-age=CATALOG_CACHE_SECONDS``, so a browser or a CDN can
answer repeat requests; a repeat with a matching ``If-None-Match`` is answered ``304 Not
Modified`` without executing the query. Every other GraphQL answer says ``Cache-Control:
no-store`` (it may depend on who asks).

The entity tag digests the request (query text, variables and operation name as sent), the
schema and the catalog's content (``services.plan_cache.catalog_digest``). The catalog's digest
is taken *before* the query executes: the answer is at least as new as its tag, so a tag never
vouches for an answer older than the catalog it names. A change to the catalog changes the
digest — at once in the instance that wrote it, within the plan cache's check interval (at most
1 s) in the others.

A query text becomes known as catalog-only once it has executed without errors (it has passed
parsing, the limits and validation then); only known texts are answered 304 unexecuted, so the
conditional path never parses what the limits have not seen. Known texts are kept in an LRU of
``KNOWN_SIZE`` entries.

Over GET or POST, the answer of a catalog-only query is kept in memory (``RESULTS``, an LRU)
under the same digests — schema, catalog, query text, variables, operation name — and a repeat
is answered from it without executing the query again: parsing and validation are cached by
query text already, so a repeated catalog read costs the auth, the limits' cached verdicts and
encoding the JSON. Only answers without errors are kept, each at most ``RESULT_MAX_BYTES``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
)

from revenue_engine.schema.caches import LRU
from revenue_engine.services import plan_cache

#: Root fields whose answers depend on the catalog alone (not on the caller).
CATALOG_FIELDS = frozenset({"plans", "plan", "__typename"})
#: Query texts remembered as catalog-only.
KNOWN_SIZE = 256
#: Where the tag of a cacheable answer waits for the HTTP view (the request's scope state).
STATE_KEY = "catalog_etag"
#: Marks (in the request's scope state) a GET of another query where only catalog ones are served.
GET_REFUSED = "Only catalog queries (plans, plan) are served over GET here: send this one by POST"


#: Query texts that executed as catalog-only queries.
KNOWN: LRU[str, bool] = LRU(KNOWN_SIZE)


def catalog_only(document: DocumentNode, operation_name: str | None) -> bool:
    """Whether the operation to run is a query whose root reads only ``CATALOG_FIELDS``."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation is not OperationType.QUERY:
        return False
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    return _reads_catalog_only(operations[0].selection_set, fragments, set())


def _reads_catalog_only(
    selections: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    seen: set[str],
) -> bool:
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value not in CATALOG_FIELDS:
                return False
        elif isinstance(selection, InlineFragmentNode):
            if not _reads_catalog_only(selection.selection_set, fragments, seen):
                return False
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in seen:
                continue
            seen.add(name)
            fragment = fragments.get(name)
            if fragment is None or not _reads_catalog_only(fragment.selection_set, fragments, seen):
                return False
        else:
            return False
    return True


def _schema_digest(schema: Any) -> str:
    """A digest of the schema's SDL (the same in every instance running this code)."""
    found: str | None = getattr(schema, "_catalog_tag_seed", None)
    if found is None:
        found = hashlib.sha256(schema.as_str().encode()).hexdigest()
        schema._catalog_tag_seed = found
    return found


def entity_tag(schema: Any, catalog: str, params: Mapping[str, str]) -> str:
    """The ``ETag`` of a catalog answer: the request as sent, the schema, the catalog."""
    digest = hashlib.sha256()
    for part in (
        _schema_digest(schema),
        catalog,
        params.get("query", ""),
        params.get("variables", ""),
        params.get("operationName", ""),
    ):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return f'"{digest.hexdigest()[:32]}"'


def matches(if_none_match: str, tag: str) -> bool:
    """RFC 9110's weak comparison of ``If-None-Match`` (a list of tags, or ``*``) with ``tag``."""
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == tag:
            return True
    return False


async def conditional_tag(schema: Any, params: Mapping[str, str]) -> str | None:
    """The current tag of a GET request's answer, when its query text is known catalog-only
    (else ``None``: it must execute)."""
    query = params.get("query")
    if query is None or KNOWN.get(query) is None:
        return None
    return entity_tag(schema, await plan_cache.catalog_digest(), params)


#: Catalog answers kept, and the largest kept (a catalog page is a few KiB).
RESULTS_SIZE = 256
RESULT_MAX_BYTES = 65_536
#: Answers of catalog-only queries, by (schema, catalog digest, query, variables, operation
#: name), each at most ``RESULT_MAX_BYTES`` of JSON.
RESULTS: LRU[tuple[str, ...], ExecutionResult] = LRU(RESULTS_SIZE)


def _result_key(context: Any, catalog: str) -> tuple[str, ...] | None:
    try:
        variables = json.dumps(context.variables or {}, sort_keys=True, ensure_ascii=True)
    except (TypeError, ValueError):  # not JSON-shaped: not worth a key
        return None
    return (
        _schema_digest(context.schema),
        catalog,
        context.query,
        variables,
        context.operation_name or "",
    )


@dataclass(frozen=True)
class Pending:
    """A catalog-only query on its way through execution: the catalog's digest taken before,
    and the key its answer is kept under (``None``: not keepable)."""

    catalog: str
    key: tuple[str, ...] | None
    cached: bool


async def before_execution(context: Any, *, catalog_gets_only: bool) -> Pending | None:
    """Before ``context`` (Strawberry's execution context) executes: a catalog-only query
    answered before gets its kept answer (``context.result``: not executed again); with
    ``catalog_gets_only`` (production) any other query over GET is refused unexecuted, the
    view answering it 400 (``GET_REFUSED`` in the request's state). ``None`` for a query that
    is not catalog-only."""
    request = getattr(context.context, "request", None)
    document = context.graphql_document
    if request is None or context.query is None or document is None:
        return None
    if not catalog_only(document, context.operation_name):
        if catalog_gets_only and request.method == "GET":
            request.scope.setdefault("state", {})[GET_REFUSED] = True
            context.result = ExecutionResult(data=None, errors=[GraphQLError(GET_REFUSED)])
        return None
    # Before executing: the answer is at least as new as the catalog its digest names.
    catalog = await plan_cache.catalog_digest()
    key = _result_key(context, catalog)
    cached = RESULTS.get(key) if key is not None else None
    if cached is not None:
        context.result = cached  # the same catalog, the same request
    return Pending(catalog, key, cached is not None)


def after_execution(context: Any, pending: Pending) -> None:
    """After a catalog-only query executed without errors: its answer is kept (at most
    ``RESULT_MAX_BYTES``) and, over GET, its text is known and its tag waits for the view."""
    result = context.result
    if result is None or getattr(result, "errors", None):
        return
    if not pending.cached and pending.key is not None and isinstance(result, ExecutionResult):
        size = len(json.dumps(result.data, ensure_ascii=True, default=str))
        if size <= RESULT_MAX_BYTES:
            RESULTS.put(pending.key, result)
    request = context.context.request
    if request.method == "GET":
        KNOWN.put(context.query, True)
        tag = entity_tag(context.schema, pending.catalog, request.query_params)
        request.scope.setdefault("state", {})[STATE_KEY] = tag
