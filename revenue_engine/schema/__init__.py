"""The GraphQL schema: ``build_schema(settings)`` assembles types, handlers and extensions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig

from revenue_engine.schema.errors import ERROR_TYPES, EXCEPTION_HANDLERS
from revenue_engine.schema.root import Mutation, Query
from revenue_engine.settings import Settings

MAX_DEPTH = 8
MAX_ALIASES = 15
MAX_TOKENS = 2000
CACHE_SIZE = 256

# The limiters' validation rules are classes made by each limiter's constructor. Build them once:
# a rule class made per request is a new cache key and defeats ValidationCache (strawberry #4635).
_LIMIT_RULES = (
    *QueryDepthLimiter(max_depth=MAX_DEPTH).validation_rules,
    *MaxAliasesLimiter(max_alias_count=MAX_ALIASES).validation_rules,
)


def _limits() -> SchemaExtension:
    return AddValidationRules(list(_LIMIT_RULES))


def _parser_cache() -> SchemaExtension:
    return ParserCache(maxsize=CACHE_SIZE)


def _validation_cache() -> SchemaExtension:
    return ValidationCache(maxsize=CACHE_SIZE)


def _max_tokens() -> SchemaExtension:
    return MaxTokensLimiter(max_token_count=MAX_TOKENS)


class EngineSchema(strawberry.Schema):
    """Strawberry's schema, minus its default error logging: the HTTP view logs unexpected errors
    once, with the request id (``schema.error_policy``); expected ones are not log-worthy."""

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        return None


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    """The schema for ``settings`` (production disables introspection)."""
    extensions: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
        _max_tokens,
        _parser_cache,
        _limits,
        _validation_cache,
    ]
    if settings is not None and settings.is_production:
        extensions.append(DisableIntrospection)  # and no "Did you mean …?" (config below)
    production = settings is not None and settings.is_production
    return EngineSchema(
        config=StrawberryConfig(disable_field_suggestions=production),
        query=Query,
        mutation=Mutation,
        types=list(ERROR_TYPES),
        extensions=extensions,
        exception_handlers=EXCEPTION_HANDLERS,
    )


def export_sdl() -> str:
    """The SDL written to ``schema.graphql`` (the development schema: same types as production)."""
    return build_schema().as_str() + "\n"
