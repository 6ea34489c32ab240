"""The error policy: mask the unexpected, give every error a code.

Every top-level error leaves with ``extensions.code``:

* a ``DomainError`` keeps its message and gets its ``code`` (UNAUTHENTICATED, FORBIDDEN, …);
* syntax errors get ``GRAPHQL_PARSE_FAILED``, validation errors ``GRAPHQL_VALIDATION_FAILED``;
* variables that do not fit their declared types (a missing required field, an unknown enum
  value, a string for an ``Int``) get ``BAD_USER_INPUT`` and keep graphql-core's message, which
  names the variable and the path inside it;
* a database failure outside a typed union gets ``UNAVAILABLE`` with ``retryAfterSeconds``
  (the client retries; nothing about the store leaks);
* anything else is unexpected: logged with the request id and the traceback, and replaced by
  ``Unexpected error (request id …)`` with ``INTERNAL_SERVER_ERROR`` so no internals leak.
"""

from __future__ import annotations

import logging
import re

from graphql import GraphQLError, GraphQLSyntaxError

from revenue_engine.db import StoreError
from revenue_engine.errors import (
    STORE_RETRY_AFTER_SECONDS,
    STORE_UNAVAILABLE_MESSAGE,
    DomainError,
    ServiceUnavailable,
)

log = logging.getLogger("revenue_engine.graphql")


def shape_error(error: GraphQLError, request_id: str) -> GraphQLError:
    """The error as the client may see it (see the module docstring)."""
    original = error.original_error
    extensions = dict(error.extensions or {})
    if isinstance(original, DomainError):
        extensions.setdefault("code", original.code)
        message = original.message
    elif isinstance(error, GraphQLSyntaxError):
        extensions.setdefault("code", "GRAPHQL_PARSE_FAILED")
        message = error.message
    elif original is None:
        extensions.setdefault("code", "GRAPHQL_VALIDATION_FAILED")
        message = error.message
    elif error.path is None and isinstance(original, ValueError) and error.nodes:
        # A literal graphql-core could not convert (an integer of over 4,300 digits): the
        # query's fault, found while validating it. The message would repeat the literal.
        extensions.setdefault("code", "GRAPHQL_VALIDATION_FAILED")
        message = "A literal in the query is not a valid value for its type (too long)."
        original = None
    elif error.path is None and isinstance(original, GraphQLError):
        # Variable coercion (graphql-core wraps the inner coercion error): the request's fault.
        extensions.setdefault("code", "BAD_USER_INPUT")
        message = error.message
        original = None
    elif isinstance(original, (StoreError, TimeoutError)):
        log.warning(
            "store unavailable request_id=%s path=%s error=%s",
            request_id,
            ".".join(str(p) for p in error.path or ()),
            type(original).__name__,
        )
        extensions = {
            "code": ServiceUnavailable.code,
            "retryAfterSeconds": STORE_RETRY_AFTER_SECONDS,
            "requestId": request_id,
        }
        message = STORE_UNAVAILABLE_MESSAGE
        return GraphQLError(message, nodes=error.nodes, path=error.path, extensions=extensions)
    else:
        log.error(
            "unexpected error request_id=%s path=%s",
            request_id,
            ".".join(str(p) for p in error.path or ()),
            exc_info=(type(original), original, original.__traceback__),
        )
        extensions = {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
        message = f"Unexpected error (request id {request_id})."
        return GraphQLError(message, nodes=error.nodes, path=error.path, extensions=extensions)
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=original,
        extensions=extensions,
    )


#: graphql-core's hint at a near miss ("… Did you mean the enum value 'MONTH'?"); production
#: gives no hints about the schema (Strawberry's setting covers field names only).
_SUGGESTION = re.compile(r"\s*Did you mean .*\?\s*$", re.DOTALL)


def _without_suggestion(error: GraphQLError) -> GraphQLError:
    message = _SUGGESTION.sub("", error.message)
    if message == error.message:
        return error
    return GraphQLError(
        message,
        nodes=error.nodes,
        path=error.path,
        original_error=error.original_error,
        extensions=error.extensions,
    )


def shape_errors(
    errors: list[GraphQLError], request_id: str, *, hide_suggestions: bool = False
) -> list[GraphQLError]:
    shaped = [shape_error(error, request_id) for error in errors]
    return [_without_suggestion(e) for e in shaped] if hide_suggestions else shaped
