"""The GraphQL schema: ``build_schema(settings)`` assembles types, handlers and extensions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import strawberry
from graphql import ASTValidationRule, GraphQLError
from graphql.validation import OverlappingFieldsCanBeMergedRule, PossibleFragmentSpreadsRule
from strawberry.extensions import DisableIntrospection, MaxTokensLimiter, SchemaExtension
from strawberry.schema.config import StrawberryConfig

from revenue_engine.schema import locations
from revenue_engine.schema.caches import (
    CACHE_SIZE,
    MAX_QUERY_LENGTH,
    BoundedParserCache,
    TextValidationCache,
)
from revenue_engine.schema.compat import ErrorFragmentSpreads
from revenue_engine.schema.errors import ERROR_TYPES, EXCEPTION_HANDLERS
from revenue_engine.schema.http_cache import CatalogCaching
from revenue_engine.schema.query_cost import (
    MAX_ALIASES,
    MAX_DEPTH,
    MAX_FIELDS,
    MAX_VALUES,
    MAX_WEBHOOK_EVENTS,
    BoundedOverlapRule,
    QueryCostRule,
)
from revenue_engine.schema.root import Mutation, Query
from revenue_engine.schema.scalars import SCALAR_MAP
from revenue_engine.settings import Settings

__all__ = [
    "CACHE_SIZE",
    "MAX_ALIASES",
    "MAX_DEPTH",
    "MAX_FIELDS",
    "MAX_QUERY_LENGTH",
    "MAX_TOKENS",
    "MAX_VALUES",
    "MAX_WEBHOOK_EVENTS",
    "QueryLimits",
    "build_schema",
    "export_sdl",
    "with_limits",
]

MAX_TOKENS = 2000


def with_limits(
    rules: tuple[type[ASTValidationRule], ...],
) -> tuple[type[ASTValidationRule], ...]:
    """``rules`` with the query-cost rule first, graphql-core's field-merging rule bounded and
    its fragment-spread rule accepting old error fragments (``schema.compat``). The rule
    classes are module-level, so every request gets an equal tuple and the validation cache
    (keyed by it) keeps hitting (strawberry #4635)."""
    swap: dict[type[ASTValidationRule], type[ASTValidationRule]] = {
        OverlappingFieldsCanBeMergedRule: BoundedOverlapRule,
        PossibleFragmentSpreadsRule: ErrorFragmentSpreads,
    }
    return (QueryCostRule, *(swap.get(r, r) for r in rules))


class QueryLimits(SchemaExtension):
    """Validates every operation with ``with_limits`` (see ``schema.query_cost``)."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.validation_rules = with_limits(context.validation_rules)
        yield


def _max_tokens() -> SchemaExtension:
    return MaxTokensLimiter(max_token_count=MAX_TOKENS)


class EngineSchema(strawberry.Schema):
    """Strawberry's schema, minus its default error logging: the HTTP view logs unexpected errors
    once, with the request id (``schema.error_policy``); expected ones are not log-worthy."""

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        return None


# Error locations without rescanning the query text per error (``schema.locations``).
locations.install()


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    """The schema for ``settings`` (production disables introspection)."""
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        _max_tokens,
        BoundedParserCache,
        QueryLimits,
        TextValidationCache,
    ]
    catalog_gets_only = settings is not None and settings.is_production
    extensions.append(lambda: CatalogCaching(catalog_gets_only=catalog_gets_only))
    if settings is not None and settings.is_production:
        extensions.append(DisableIntrospection)  # and no "Did you mean …?" (config below)
    production = settings is not None and settings.is_production
    return EngineSchema(
        config=StrawberryConfig(disable_field_suggestions=production, scalar_map=SCALAR_MAP),
        query=Query,
        mutation=Mutation,
        types=list(ERROR_TYPES),
        extensions=extensions,
        exception_handlers=EXCEPTION_HANDLERS,
    )


def export_sdl() -> str:
    """The SDL written to ``schema.graphql`` (the development schema: same types as production)."""
    return build_schema().as_str() + "\n"
