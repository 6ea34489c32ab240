"""The GraphQL schema: ``build_schema(settings)`` assembles types, handlers and extensions."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from revenue_engine.schema import execution, locations
from revenue_engine.schema.caches import CACHE_SIZE, MAX_QUERY_LENGTH
from revenue_engine.schema.errors import ERROR_TYPES, EXCEPTION_HANDLERS
from revenue_engine.schema.execution import EngineExecutor
from revenue_engine.schema.pipeline import MAX_TOKENS, PipelineRunner, with_limits
from revenue_engine.schema.query_cost import (
    MAX_ALIASES,
    MAX_DEPTH,
    MAX_FIELDS,
    MAX_VALUES,
    MAX_WEBHOOK_EVENTS,
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
    "PipelineRunner",
    "build_schema",
    "export_sdl",
    "with_limits",
]


class EngineSchema(strawberry.Schema):
    """Strawberry's schema, minus its default error logging: the HTTP view logs unexpected errors
    once, with the request id (``schema.error_policy``); expected ones are not log-worthy."""

    def __init__(self, *args: Any, production: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("execution_context_class", EngineExecutor)
        super().__init__(*args, **kwargs)
        self.production = production
        setattr(self._schema, execution.ATTRIBUTE, execution.plain_leaves(self._schema))

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        return None

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        """The engine's steps of every operation (``schema.pipeline``)."""
        return PipelineRunner(execution_context, extensions, production=self.production)


# Error locations without rescanning the query text per error (``schema.locations``).
locations.install()


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    """The schema for ``settings`` (production disables introspection)."""
    production = settings is not None and settings.is_production
    return EngineSchema(
        config=StrawberryConfig(disable_field_suggestions=production, scalar_map=SCALAR_MAP),
        query=Query,
        mutation=Mutation,
        types=list(ERROR_TYPES),
        exception_handlers=EXCEPTION_HANDLERS,
        production=production,  # no introspection (schema.pipeline), no "Did you mean …?"
    )


def export_sdl() -> str:
    """The SDL written to ``schema.graphql`` (the development schema: same types as production)."""
    return build_schema().as_str() + "\n"
