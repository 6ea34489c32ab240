"""The parse and validation steps of every operation: bounded, and cached by query text.

* A query text over ``MAX_QUERY_LENGTH`` characters is refused before parsing
  (``GRAPHQL_PARSE_FAILED``; ``schema.pipeline``), then parsed through an LRU of texts. The
  parser reads about 3 MB/s: a 256 KiB body of one comment would hold the event loop ~80 ms,
  64 Ki characters ~20 ms.
* ``validated`` replaces Strawberry's ``ValidationCache``, which is keyed by the
  parsed document: graphql-core's AST nodes are dataclasses whose ``__hash__`` and ``__eq__``
  recurse through the whole tree, so two texts that parse to the same deeply nested document
  (the same query with another comment) made the cache lookup itself raise ``RecursionError``.
  Here the key is the query text, the schema and the rule classes; all are cheap to hash.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema
from strawberry.schema.schema import validate_document

#: Characters of query text, comments and strings included.
MAX_QUERY_LENGTH = 65_536
#: Query texts whose parse and validation results are kept.
CACHE_SIZE = 256

_Key = tuple[GraphQLSchema, str, tuple[type[ASTValidationRule], ...]]
K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A least-recently-used map of at most ``size`` entries (thread-safe: apps served from
    several threads share one). The schema's caches are made of these."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[K, V] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self.lock:
            found = self.entries.get(key)
            if found is not None:
                self.entries.move_to_end(key)
            return found

    def put(self, key: K, value: V) -> None:
        with self.lock:
            self.entries[key] = value
            self.entries.move_to_end(key)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)


#: Validation errors found per (schema, query text, rule classes).
VALIDATED: LRU[_Key, list[GraphQLError]] = LRU(CACHE_SIZE)


def validated(
    schema: GraphQLSchema,
    document: DocumentNode,
    query: str | None,
    rules: tuple[type[ASTValidationRule], ...],
) -> list[GraphQLError]:
    """The validation errors of ``document`` (parsed from ``query``), once per query text."""
    if query is None:
        return validate_document(schema, document, rules)
    key = (schema, query, rules)
    errors = VALIDATED.get(key)
    if errors is None:
        errors = validate_document(schema, document, rules)
        VALIDATED.put(key, errors)
    return errors
