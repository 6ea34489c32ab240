"""Every operation's steps around Strawberry's (``PipelineRunner``).

Strawberry runs schema extensions through one context manager per lifecycle phase, which looks
up each extension's hook and wraps it in a generator-based context manager, per extension and
per request: five small extensions cost about as much as executing a dozen fields. The engine
has none. Its steps are Strawberry's extension runner itself (``EngineSchema`` answers
``create_extensions_runner`` with this one), each phase a plain context manager:

* **operation**: the token limit (``MAX_TOKENS``, graphql-core's parser counts) and the
  validation rules with the limits (``with_limits``), plus, in production, graphql-core's rule
  refusing introspection;
* **parse**: a text over ``MAX_QUERY_LENGTH`` characters is refused unparsed, then parsing goes
  through an LRU of ``CACHE_SIZE`` texts;
* **validation**: once per query text (``schema.caches.validated``);
* **execution**: the catalog's answers from memory and tagged over GET (``schema.http_cache``;
  asynchronous execution only, as the HTTP view runs it).

A schema extension added to the schema would still run, inside each of these steps.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from graphql import ASTValidationRule, GraphQLSyntaxError, Source, parse
from graphql.validation import (
    NoSchemaIntrospectionCustomRule,
    OverlappingFieldsCanBeMergedRule,
    PossibleFragmentSpreadsRule,
)
from strawberry.extensions.runner import SchemaExtensionsRunner

from revenue_engine.schema import http_cache
from revenue_engine.schema.caches import CACHE_SIZE, MAX_QUERY_LENGTH, validated
from revenue_engine.schema.compat import ErrorFragmentSpreads
from revenue_engine.schema.query_cost import BoundedOverlapRule, QueryCostRule

if TYPE_CHECKING:
    from strawberry.extensions import SchemaExtension
    from strawberry.types import ExecutionContext

#: Tokens of one document (graphql-core's parser stops past it).
MAX_TOKENS = 2000

#: Documents parsed, by query text and parse options.
_parse = lru_cache(maxsize=CACHE_SIZE)(parse)

Rules = tuple[type[ASTValidationRule], ...]


def with_limits(rules: Rules) -> Rules:
    """``rules`` with the query-cost rule first, graphql-core's field-merging rule bounded and
    its fragment-spread rule accepting old error fragments (``schema.compat``). The rule
    classes are module-level, so every request gets an equal tuple and the validation cache
    (keyed by it) keeps hitting (strawberry #4635)."""
    swap: dict[type[ASTValidationRule], type[ASTValidationRule]] = {
        OverlappingFieldsCanBeMergedRule: BoundedOverlapRule,
        PossibleFragmentSpreadsRule: ErrorFragmentSpreads,
    }
    return (QueryCostRule, *(swap.get(r, r) for r in rules))


@lru_cache(maxsize=8)
def limited_rules(rules: Rules, production: bool) -> Rules:
    """``rules`` with the limits (``with_limits``) and, in production, no introspection. One
    equal tuple per input, so the validation cache keyed by it keeps hitting."""
    limited = with_limits(rules)
    return (*limited, NoSchemaIntrospectionCustomRule) if production else limited


class _Step:
    """One phase: ``enter`` before Strawberry's step, ``leave`` after it unless it raised; the
    other extensions' hooks (``inner``, Strawberry's manager) in between."""

    __slots__ = ("context", "inner", "runner")

    def __init__(self, runner: PipelineRunner, inner: Any) -> None:
        self.runner = runner
        self.context = runner.execution_context
        self.inner = inner

    def enter(self) -> None:
        return None

    def leave(self) -> None:
        return None

    def __enter__(self) -> None:
        self.enter()
        if self.inner is not None:
            self.inner.__enter__()

    def __exit__(self, kind: type[BaseException] | None, error: Any, trace: Any) -> None:
        if self.inner is not None:
            self.inner.__exit__(kind, error, trace)
        if kind is None:
            self.leave()

    async def __aenter__(self) -> None:
        self.enter()
        if self.inner is not None:
            await self.inner.__aenter__()

    async def __aexit__(self, kind: type[BaseException] | None, error: Any, trace: Any) -> None:
        if self.inner is not None:
            await self.inner.__aexit__(kind, error, trace)
        if kind is None:
            self.leave()


class _Operation(_Step):
    __slots__ = ()

    def enter(self) -> None:
        context = self.context
        context.parse_options["max_tokens"] = MAX_TOKENS
        context.validation_rules = limited_rules(context.validation_rules, self.runner.production)


class _Parsing(_Step):
    __slots__ = ()

    def enter(self) -> None:
        context = self.context
        query = context.query
        if query is None:
            return
        if len(query) > MAX_QUERY_LENGTH:
            message = f"Document is longer than {MAX_QUERY_LENGTH} characters. Parsing aborted."
            raise GraphQLSyntaxError(Source(query[:80]), 0, message)
        context.graphql_document = _parse(query, **context.parse_options)


class _Validation(_Step):
    __slots__ = ()

    def enter(self) -> None:
        context = self.context
        document = context.graphql_document
        if document is not None:  # else not parsed: Strawberry reports why
            context.pre_execution_errors = validated(
                context.schema._schema, document, context.query, context.validation_rules
            )


class _Executing(_Step):
    __slots__ = ("pending",)

    def __init__(self, runner: PipelineRunner, inner: Any) -> None:
        super().__init__(runner, inner)
        self.pending: http_cache.Pending | None = None

    async def __aenter__(self) -> None:
        self.pending = await http_cache.before_execution(
            self.context, catalog_gets_only=self.runner.production
        )
        if self.inner is not None:
            await self.inner.__aenter__()

    def leave(self) -> None:
        if self.pending is not None:
            http_cache.after_execution(self.context, self.pending)


class PipelineRunner(SchemaExtensionsRunner):
    """Strawberry's extension runner with the engine's steps (see the module docstring);
    ``production`` adds the introspection rule and serves only catalog queries over GET."""

    def __init__(
        self,
        execution_context: ExecutionContext,
        extensions: list[SchemaExtension] | None = None,
        *,
        production: bool = False,
    ) -> None:
        super().__init__(execution_context, extensions)
        self.production = production

    def operation(self) -> Any:
        return _Operation(self, super().operation() if self.extensions else None)

    def parsing(self) -> Any:
        return _Parsing(self, super().parsing() if self.extensions else None)

    def validation(self) -> Any:
        return _Validation(self, super().validation() if self.extensions else None)

    def executing(self) -> Any:
        return _Executing(self, super().executing() if self.extensions else None)
