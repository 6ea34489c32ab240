"""GraphQL requests built from the schema the app serves.

``root_fields(schema)`` lists every query and mutation; ``requests_for(schema, field)`` draws a
request calling one of them: a selection drawn by ``hypothesis-graphql`` (union members, nested
arguments), its arguments passed as variables of hostile values (``values.values_for``) or, now
and then, written inline as literals. ``odd_requests(schema)`` draws documents of any fields in
unusual but legal-looking shapes: aliases, repeated fields, named fragments spread more than once
and chained a few levels deep, inline fragments, directives, several operations in one document,
and literals nested past the parser's limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import graphql
import hypothesis_graphql
from graphql import (
    ArgumentNode,
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    NamedTypeNode,
    NameNode,
    OperationDefinitionNode,
    SelectionNode,
    SelectionSetNode,
    VariableDefinitionNode,
    VariableNode,
)
from hypothesis import strategies as st

from tests.fuzz.values import Deep, draws, dumps, values_for

BUILT_IN_SCALARS = {"String", "ID", "Int", "Float", "Boolean"}


@dataclass
class Request:
    """One POST /graphql body; ``text()`` is what goes on the wire."""

    query: str
    variables: dict[str, Any] = field(default_factory=dict)
    operation_name: str | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"query": self.query, "variables": self.variables}
        if self.operation_name is not None:
            body["operationName"] = self.operation_name
        return body

    def text(self) -> str:
        return dumps(self.body())

    def __repr__(self) -> str:
        # Hypothesis prints the falsifying example: keep 100,000-character strings readable.
        shown = self.text()
        return f"Request({shown[:1_500] + '…' if len(shown) > 1_500 else shown})"


def root_fields(schema: graphql.GraphQLSchema) -> list[tuple[str, str]]:
    """``(operation, field)`` for every field of ``Query`` and ``Mutation``."""
    fields: list[tuple[str, str]] = []
    for kind, root in (("query", schema.query_type), ("mutation", schema.mutation_type)):
        if root is not None:
            fields.extend((kind, name) for name in root.fields)
    return fields


def _custom_scalars(schema: graphql.GraphQLSchema) -> dict[str, st.SearchStrategy[Any]]:
    # hypothesis-graphql needs a strategy for every non-built-in scalar an argument may take.
    return {
        name: st.builds(graphql.StringValueNode, value=st.text(max_size=10))
        for name, type_ in schema.type_map.items()
        if isinstance(type_, graphql.GraphQLScalarType) and name not in BUILT_IN_SCALARS
    }


def _keep(document: DocumentNode) -> DocumentNode:
    return document


def _documents(
    schema: graphql.GraphQLSchema, kind: str, fields: list[str] | None
) -> st.SearchStrategy[DocumentNode]:
    make = hypothesis_graphql.queries if kind == "query" else hypothesis_graphql.mutations
    documents: st.SearchStrategy[DocumentNode] = make(
        schema, fields=fields, custom_scalars=_custom_scalars(schema), print_ast=_keep
    )
    return documents


def _operation(document: DocumentNode) -> OperationDefinitionNode:
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    return operation


def _printed(node: graphql.Node) -> str:
    """``print_ast`` with ``Deep`` markers (string literals) expanded into nested literals."""

    def expand(match: re.Match[str]) -> str:
        return Deep(int(match[1]), match[2] == "1").text().replace('"a":', "a:")

    # print_ast writes the marker's NUL characters as "\u0000", as JSON does.
    return re.sub(r'"\\u0000fuzz-deep:(\d+):([01])\\u0000"', expand, graphql.print_ast(node))


def to_literal(value: Any, type_: graphql.GraphQLInputType) -> graphql.ValueNode:
    """``value`` written inline as a GraphQL literal of (if it fits) ``type_``."""
    named = graphql.get_named_type(type_)
    if value is None:
        return graphql.NullValueNode()
    if isinstance(value, Deep):
        return graphql.StringValueNode(value=value.marker)
    if isinstance(value, bool):
        return graphql.BooleanValueNode(value=value)
    if isinstance(value, int):
        return graphql.IntValueNode(value=str(value))
    if isinstance(value, float):
        return graphql.FloatValueNode(value=repr(value))
    if isinstance(value, str):
        if isinstance(named, graphql.GraphQLEnumType) and value.isidentifier():
            return graphql.EnumValueNode(value=value)
        return graphql.StringValueNode(value=value)
    inner = graphql.get_nullable_type(type_)
    if isinstance(value, list):
        item = inner.of_type if isinstance(inner, graphql.GraphQLList) else inner
        return graphql.ListValueNode(values=tuple(to_literal(v, item) for v in value))
    fields = inner.fields if isinstance(inner, graphql.GraphQLInputObjectType) else {}
    return graphql.ObjectValueNode(
        fields=tuple(
            graphql.ObjectFieldNode(
                name=NameNode(value=key if key.isidentifier() else "bogus"),
                value=to_literal(v, fields[key].type if key in fields else type_),
            )
            for key, v in value.items()
        )
    )


@st.composite
def requests_for(
    draw: st.DrawFn, schema: graphql.GraphQLSchema, kind: str, name: str, seeds: tuple[str, ...]
) -> Request:
    """A request calling ``kind`` field ``name`` with drawn arguments."""
    document = draw(_documents(schema, kind, [name]))
    operation = _operation(document)
    root = operation.selection_set.selections[0]
    assert isinstance(root, FieldNode)
    root_type = schema.query_type if kind == "query" else schema.mutation_type
    assert root_type is not None
    definition = root_type.fields[name]
    mode = draw(st.sampled_from(("variables", "variables", "variables", "literals", "drawn")))
    how = draw(draws(seeds))
    arguments: list[ArgumentNode] = []
    definitions: list[VariableDefinitionNode] = []
    variables: dict[str, Any] = {}
    if mode == "drawn":
        # hypothesis-graphql's own (valid, printable) literal arguments.
        arguments = list(root.arguments)
    for arg_name, argument in definition.args.items():
        if mode == "drawn":
            break
        if not isinstance(argument.type, graphql.GraphQLNonNull) and draw(st.booleans()):
            continue  # an optional argument left out
        value = draw(values_for(argument.type, how))
        if mode == "literals":
            arguments.append(
                ArgumentNode(name=NameNode(value=arg_name), value=to_literal(value, argument.type))
            )
            continue
        variable = f"v_{arg_name}"
        arguments.append(
            ArgumentNode(
                name=NameNode(value=arg_name), value=VariableNode(name=NameNode(value=variable))
            )
        )
        definitions.append(
            VariableDefinitionNode(
                variable=VariableNode(name=NameNode(value=variable)),
                type=graphql.parse_type(str(argument.type)),
                directives=(),
            )
        )
        # Now and then a declared variable is not sent (null, or a coercion error if required).
        if draw(st.integers(0, 9)) != 9:
            variables[variable] = value
    operation_node = OperationDefinitionNode(
        operation=operation.operation,
        name=NameNode(value="Fuzz"),
        variable_definitions=tuple(definitions),
        directives=(),
        selection_set=SelectionSetNode(
            selections=(
                FieldNode(
                    name=root.name,
                    alias=root.alias,
                    arguments=tuple(arguments),
                    directives=(),
                    selection_set=root.selection_set,
                ),
            )
        ),
    )
    return Request(_printed(DocumentNode(definitions=(operation_node,))), variables)


# --- odd shapes ---------------------------------------------------------------------------


class _Shaper:
    """Rewrites a drawn document into odd shapes, collecting the named fragments it makes."""

    def __init__(self, draw: st.DrawFn, schema: graphql.GraphQLSchema) -> None:
        self.draw = draw
        self.schema = schema
        self.fragments: list[FragmentDefinitionNode] = []

    def _directives(self) -> tuple[DirectiveNode, ...]:
        choice = self.draw(st.sampled_from(("none", "none", "include", "skip")))
        if choice == "none":
            return ()
        condition = graphql.BooleanValueNode(value=self.draw(st.booleans()))
        argument = ArgumentNode(name=NameNode(value="if"), value=condition)
        return (DirectiveNode(name=NameNode(value=choice), arguments=(argument,)),)

    def _fragment(self, type_name: str, selection_set: SelectionSetNode) -> str:
        name = f"F{len(self.fragments)}"
        self.fragments.append(
            FragmentDefinitionNode(
                name=NameNode(value=name),
                type_condition=NamedTypeNode(name=NameNode(value=type_name)),
                directives=(),
                selection_set=selection_set,
            )
        )
        return name

    def selection_set(
        self, selection_set: SelectionSetNode, parent: graphql.GraphQLNamedType
    ) -> SelectionSetNode:
        out: list[SelectionNode] = []
        for selection in selection_set.selections:
            out.extend(self.selection(selection, parent))
        if self.draw(st.integers(0, 3)) == 3:
            out.append(FieldNode(name=NameNode(value="__typename"), arguments=(), directives=()))
        if self.draw(st.integers(0, 5)) == 5 and len(self.fragments) < 12:
            # The whole set moved into a fragment chain: F(n) spreads F(n+1) twice, a few levels.
            levels = self.draw(st.integers(1, 4))
            inner = SelectionSetNode(selections=tuple(out))
            name = self._fragment(parent.name, inner)
            for _ in range(levels - 1):
                spread = FragmentSpreadNode(name=NameNode(value=name), directives=())
                name = self._fragment(parent.name, SelectionSetNode(selections=(spread, spread)))
            out = [FragmentSpreadNode(name=NameNode(value=name), directives=())]
        return SelectionSetNode(selections=tuple(out))

    def selection(
        self, selection: SelectionNode, parent: graphql.GraphQLNamedType
    ) -> list[SelectionNode]:
        if isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition
            target = self.schema.type_map[condition.name.value] if condition else parent
            inner = self.selection_set(selection.selection_set, target)
            return [
                InlineFragmentNode(
                    type_condition=condition, directives=self._directives(), selection_set=inner
                )
            ]
        assert isinstance(selection, FieldNode)
        node = selection
        if node.selection_set is not None and isinstance(
            parent, graphql.GraphQLObjectType | graphql.GraphQLInterfaceType
        ):
            target = graphql.get_named_type(parent.fields[node.name.value].type)
            node = FieldNode(
                name=node.name,
                alias=node.alias,
                arguments=node.arguments,
                directives=node.directives,
                selection_set=self.selection_set(node.selection_set, target),
            )
        shape = self.draw(
            st.sampled_from(("same", "same", "alias", "repeat", "inline", "directive"))
        )
        if shape == "alias":
            alias = self.draw(st.sampled_from(("a", "b", "__typename", "id", node.name.value)))
            node = FieldNode(
                name=node.name,
                alias=NameNode(value=alias),
                arguments=node.arguments,
                directives=node.directives,
                selection_set=node.selection_set,
            )
        if shape == "repeat":
            return [node, node]
        if shape == "inline":
            return [
                InlineFragmentNode(
                    type_condition=None,
                    directives=self._directives(),
                    selection_set=SelectionSetNode(selections=(node,)),
                )
            ]
        if shape == "directive":
            node = FieldNode(
                name=node.name,
                alias=node.alias,
                arguments=node.arguments,
                directives=self._directives(),
                selection_set=node.selection_set,
            )
        return [node]


@st.composite
def odd_requests(draw: st.DrawFn, schema: graphql.GraphQLSchema) -> Request:
    """A document of one or two operations over any root fields, in odd shapes."""
    operations: list[OperationDefinitionNode] = []
    shaper = _Shaper(draw, schema)
    for index in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(("query", "mutation")))
        root = schema.query_type if kind == "query" else schema.mutation_type
        assert root is not None
        operation = _operation(draw(_documents(schema, kind, None)))
        operations.append(
            OperationDefinitionNode(
                operation=operation.operation,
                name=NameNode(value=f"Op{index}"),
                variable_definitions=(),
                directives=(),
                selection_set=shaper.selection_set(operation.selection_set, root),
            )
        )
    if draw(st.integers(0, 7)) == 7:
        # A literal nested past the parser's limit, where a list of strings is allowed.
        deep = Deep(draw(st.sampled_from((50, 400, 1_500))))
        operations[0] = _with_deep_literal(operations[0], deep)
    names = [op.name.value for op in operations if op.name]
    operation_name = draw(st.sampled_from((*names, None, "Nope")))
    document = DocumentNode(definitions=(*operations, *shaper.fragments))
    return Request(_printed(document), {}, operation_name)


def _with_deep_literal(operation: OperationDefinitionNode, deep: Deep) -> OperationDefinitionNode:
    first = operation.selection_set.selections[0]
    if not isinstance(first, FieldNode):
        return operation
    argument = ArgumentNode(
        name=NameNode(value="deep"), value=graphql.StringValueNode(value=deep.marker)
    )
    field_node = FieldNode(
        name=first.name,
        alias=first.alias,
        arguments=(*first.arguments, argument),
        directives=first.directives,
        selection_set=first.selection_set,
    )
    return OperationDefinitionNode(
        operation=operation.operation,
        name=operation.name,
        variable_definitions=operation.variable_definitions,
        directives=operation.directives,
        selection_set=SelectionSetNode(
            selections=(field_node, *operation.selection_set.selections[1:])
        ),
    )
