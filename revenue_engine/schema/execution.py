"""Field execution: graphql-core's executor with a shorter path for plain leaf fields.

Most fields a query selects are plain leaves: a scalar or enum read off its parent object as
an attribute (Strawberry's basic fields: no resolver, no arguments, no field extension — so no
permission class either).
graphql-core executes each through its general path — the resolve info built, the arguments
looked up, the resolver called through Strawberry's wrapper, the value completed by type
dispatch — at several microseconds a field, which is most of a per-caller query's engine time.
``EngineExecutor`` reads such a field with ``getattr`` and coerces it with its type, which is
what the general path does for it, without the bookkeeping. Anything else — a field with a
resolver or arguments, a null for a non-null field, a value its type cannot coerce, an
exception — goes the general way, so every answer and every error is the same as before.

``plain_leaves`` finds these fields once, when the schema is built.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from graphql import (
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    Undefined,
    is_leaf_type,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

#: Where the schema keeps its plain leaves (an attribute of graphql-core's schema object).
ATTRIBUTE = "_engine_plain_leaves"


class Leaf(NamedTuple):
    attribute: str
    type: GraphQLLeafType
    non_null: bool


def plain_leaves(schema: GraphQLSchema) -> dict[tuple[str, str], Leaf]:
    """The plain leaf fields of ``schema``'s object types, by (type name, field name)."""
    found: dict[tuple[str, str], Leaf] = {}
    for type_name, named in schema.type_map.items():
        if not isinstance(named, GraphQLObjectType) or type_name.startswith("__"):
            continue
        for field_name, field in named.fields.items():
            definition = field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
            if not _reads_an_attribute(definition) or field.args:
                continue
            kind = field.type
            non_null = isinstance(kind, GraphQLNonNull)
            inner = kind.of_type if isinstance(kind, GraphQLNonNull) else kind
            if is_leaf_type(inner):
                found[type_name, field_name] = Leaf(definition.python_name, inner, non_null)
    return found


def _reads_an_attribute(definition: Any) -> bool:
    """Whether Strawberry resolves this field by reading its attribute and nothing else: no
    resolver, no field extension (permission classes are extensions), Strawberry's own field
    class and the default resolver."""
    return (
        isinstance(definition, StrawberryField)
        and definition.is_basic_field
        and type(definition).get_result is StrawberryField.get_result
        and getattr(definition, "default_resolver", getattr) is getattr
    )


class EngineExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, with plain leaves read directly (see the module docstring)."""

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Any,
        position_context: Any,
    ) -> Any:
        node = field_details_list[0].node
        leaves: dict[tuple[str, str], Leaf] = getattr(self.schema, ATTRIBUTE, {})
        leaf = leaves.get((parent_type.name, node.name.value))
        if leaf is not None and not node.arguments and self._plain_execution():
            try:
                value = getattr(source, leaf.attribute)
                if value is None:
                    if not leaf.non_null:
                        return None
                else:
                    coerced = leaf.type.coerce_output_value(value)
                    if coerced is not None and coerced is not Undefined:
                        return coerced
            except Exception:  # noqa: S110 - the general path reports it
                pass
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

    def _plain_execution(self) -> bool:
        """No middleware wraps the resolvers (no schema extension resolves fields)."""
        manager = self.middleware_manager
        return manager is None or not manager.middlewares
