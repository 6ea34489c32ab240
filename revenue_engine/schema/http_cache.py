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

Over GET or POST, the encoded answer of a catalog-only request is kept in memory
(``RESPONSES``, an LRU) under the schema, the catalog's digest and the request as sent (method,
``Accept`` and ``Content-Type``, the query string or body), and the HTTP view answers a repeat
from it before GraphQL runs: the same bytes passed the request checks, the limits and
validation, and executed as catalog-only without errors, the first time. Authentication still
runs first. Only answers without errors are kept, each at most ``RESPONSE_MAX_BYTES``.
"""

from __future__ import annotations

import hashlib
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


#: Catalog answers kept, the largest kept (a catalog page is a few KiB), and the largest
#: request (query string or body) whose answer is kept.
RESPONSES_SIZE = 256
RESPONSE_MAX_BYTES = 65_536
REQUEST_MAX_BYTES = 8_192
#: Where the key of a request's answer waits for the view (the request's scope state), and
#: the catalog digest of an answer that may be kept under it.
ANSWER_KEY = "catalog_answer_key"
ANSWERED = "catalog_answered"


@dataclass(frozen=True)
class Kept:
    """An encoded catalog answer: the catalog digest it was read under, its body and headers
    (the length is the body's)."""

    catalog: str
    body: bytes
    headers: tuple[tuple[str, str], ...]


AnswerKey = tuple[str, str, str, str, bytes]
#: Encoded answers of catalog-only requests, by ``answer_key``.
RESPONSES: LRU[AnswerKey, Kept] = LRU(RESPONSES_SIZE)


def answer_key(
    schema: Any, method: str, accept: str, content_type: str, payload: bytes
) -> AnswerKey | None:
    """The key of a request's answer: the schema and the request as sent (its method, the
    headers that choose the answer's form, its query string or body); ``None`` for a request
    over ``REQUEST_MAX_BYTES``, whose answer is not kept."""
    if len(payload) > REQUEST_MAX_BYTES:
        return None
    return (_schema_digest(schema), method, accept, content_type, payload)


@dataclass(frozen=True)
class Pending:
    """A catalog-only query on its way through execution: the catalog's digest, taken
    before it executes."""

    catalog: str


async def before_execution(context: Any, *, catalog_gets_only: bool) -> Pending | None:
    """Before ``context`` (Strawberry's execution context) executes: with
    ``catalog_gets_only`` (production) any query but a catalog-only one over GET is refused
    unexecuted, the view answering it 400 (``GET_REFUSED`` in the request's state). ``None``
    for a query that is not catalog-only."""
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
    return Pending(await plan_cache.catalog_digest())


def after_execution(context: Any, pending: Pending) -> None:
    """After a catalog-only query executed without errors: the view may keep its answer
    (``ANSWERED``) and, over GET, its text is known and its tag waits for the view."""
    result = context.result
    if result is None or getattr(result, "errors", None):
        return
    request = context.context.request
    state = request.scope.setdefault("state", {})
    state[ANSWERED] = pending.catalog
    if request.method == "GET":
        KNOWN.put(context.query, True)
        state[STATE_KEY] = entity_tag(context.schema, pending.catalog, request.query_params)
