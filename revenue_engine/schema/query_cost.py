"""The query-cost rule: one validation pass, linear in the size of the document, that refuses a
query before it executes when its shape is too costly.

``QueryCostRule`` measures, over the document's operations with every fragment spread expanded
(a fragment spread twice counts twice):

* **depth** — levels of selections below the root fields, per operation (introspection fields
  such as ``__schema`` are not measured: their depth is bounded by the schema);
* **aliases** — aliased fields;
* **fields** — selections once fragments are expanded: fields, fragment spreads and inline
  fragments (the size the server, or any walker of the selection, would go through);
* **values** — fields weighted by the page size of the paginated lists around them (a field
  under ``customers(first: 100)`` counts 100 times): a bound on what the response can hold;
* **schemas** — ``__schema`` selections (introspection is development-only, but twelve wide
  aliases of it took 600 ms);
* **webhook payloads** — ``payload`` values of webhook events the operations may return,
  weighted like values (under ``webhookEvents(first: 100)`` one counts 100): each is a raw
  event of up to 1 MiB.

Two definitions of one fragment name are refused here too (graphql-core refuses them as well,
but measuring one and running the other would defeat the measure).

Over any limit (``MAX_*`` below) the document is refused with one error per exceeded limit
(``GRAPHQL_VALIDATION_FAILED`` once shaped) and validation stops there, so graphql-core's own
rules never spend time on a refused document.

Why not Strawberry's ``QueryDepthLimiter`` and ``MaxAliasesLimiter``: they walk a fragment again
at every spread, so fragments that each spread the next one twice cost 2^levels (20 levels
froze the server for seconds). Here each fragment definition is measured once, in dependency
order, and its measure is added at every spread. Every walk is iterative (no recursion on deep
selections or long fragment chains), a spread of a fragment still being measured (a cycle,
which graphql-core's ``NoFragmentCycles`` refuses anyway) adds nothing, and counts saturate at
``SATURATED`` so 2^200 repetitions stay a small integer.

``BoundedOverlapRule`` is graphql-core's ``OverlappingFieldsCanBeMergedRule`` with a smaller
work budget (``OVERLAP_BUDGET``): comparing fields that share a response name is quadratic in
their number, and graphql-core's own budget allows about a second of work.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    InlineFragmentNode,
    IntValueNode,
    NullValueNode,
    OperationDefinitionNode,
    SelectionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    get_named_type,
)
from graphql.validation import OverlappingFieldsCanBeMergedRule
from graphql.validation.validate import ValidationAbortedError

from revenue_engine.schema.pagination import MAX_PAGE_SIZE

MAX_DEPTH = 8
MAX_ALIASES = 15
#: Fields after fragment expansion (GraphiQL's introspection query selects about 200).
MAX_FIELDS = 1000
#: Fields weighted by the page sizes of the lists around them.
MAX_VALUES = 20_000
#: Webhook event payloads one request may return (one full page of them).
MAX_WEBHOOK_EVENTS = MAX_PAGE_SIZE
#: ``__schema`` selections one request may make (after expansion): one describes it all, and
#: each wide one is tens of milliseconds of work (introspection lists have no ``first``).
MAX_SCHEMA_FIELDS = 1
#: Work units for graphql-core's overlapping-fields rule (its default: 500,000, about 1 s).
OVERLAP_BUDGET = 20_000

#: Counts stop growing here: far above every limit, and cheap to multiply.
SATURATED = 1 << 40

#: Fields whose value is large (the raw webhook payload): counted as ``large_rows``.
_LARGE_VALUE_FIELDS = frozenset({("WebhookEvent", "payload")})


def _sat(value: int) -> int:
    return value if value < SATURATED else SATURATED


@dataclass(slots=True)
class Cost:
    """The measure of a selection level (a selection set with its spreads and inline fragments
    merged in): ``depth`` is the deepest field in it (a leaf is 0), the rest are sums."""

    depth: int = 0
    fields: int = 0
    aliases: int = 0
    values: int = 0
    large_rows: int = 0
    schemas: int = 0

    def add(self, other: Cost) -> None:
        self.depth = max(self.depth, other.depth)
        self.fields = _sat(self.fields + other.fields)
        self.aliases = _sat(self.aliases + other.aliases)
        self.values = _sat(self.values + other.values)
        self.large_rows = _sat(self.large_rows + other.large_rows)
        self.schemas = _sat(self.schemas + other.schemas)


@dataclass(slots=True)
class _FieldInfo:
    """What the schema says about one field node: the type of its selections, the page size
    it multiplies them by, and whether its own value is a large one."""

    child_type: GraphQLNamedType | None
    multiplier: int
    large: bool


@dataclass(slots=True)
class _Level:
    """A selection level being measured: selections still to visit (with their parent type),
    the measure so far, and the field that owns the level (None at the top)."""

    pending: list[tuple[SelectionNode, GraphQLNamedType | None]]
    cost: Cost
    owner: tuple[FieldNode, _FieldInfo] | None


def _selections(
    selection_set: SelectionSetNode | None, parent_type: GraphQLNamedType | None
) -> list[tuple[SelectionNode, GraphQLNamedType | None]]:
    if selection_set is None:
        return []
    return [(selection, parent_type) for selection in selection_set.selections]


def _page_size(node: FieldNode, default: Any) -> int:
    """The ``first`` a paginated field asks for, clamped to ``0..MAX_PAGE_SIZE``; a variable
    counts as a full page (validation does not see variable values)."""
    value = next((a.value for a in node.arguments or () if a.name.value == "first"), None)
    if value is None or isinstance(value, NullValueNode):
        if isinstance(default, int):
            return max(0, min(default, MAX_PAGE_SIZE))
        return MAX_PAGE_SIZE
    if isinstance(value, IntValueNode):
        digits = value.value
        # A literal of thousands of digits: no int() on it (and it is over the page size).
        if len(digits.lstrip("-")) > 6:
            return 0 if digits.startswith("-") else MAX_PAGE_SIZE
        return max(0, min(int(digits), MAX_PAGE_SIZE))
    return MAX_PAGE_SIZE


class _Measure:
    """Measures a document against a schema (see the module docstring)."""

    def __init__(self, context: ValidationContext) -> None:
        self.schema = context.schema
        self.fragments: dict[str, FragmentDefinitionNode] = {}
        self.operations: list[OperationDefinitionNode] = []
        self.duplicates: list[str] = []
        for definition in context.document.definitions:
            if isinstance(definition, FragmentDefinitionNode):
                if definition.name.value in self.fragments:
                    self.duplicates.append(definition.name.value)
                self.fragments.setdefault(definition.name.value, definition)
            elif isinstance(definition, OperationDefinitionNode):
                self.operations.append(definition)
        self.costs: dict[str, Cost] = {}

    def field_info(self, node: FieldNode, parent_type: GraphQLNamedType | None) -> _FieldInfo:
        name = node.name.value
        if not isinstance(parent_type, (GraphQLObjectType, GraphQLInterfaceType)):
            return _FieldInfo(None, 1, False)
        definition = parent_type.fields.get(name)
        if definition is None:
            return _FieldInfo(None, 1, False)
        child_type = get_named_type(definition.type)
        large = (parent_type.name, name) in _LARGE_VALUE_FIELDS
        first = definition.args.get("first")
        if first is None:
            return _FieldInfo(child_type, 1, large)
        return _FieldInfo(child_type, _page_size(node, first.default_value), large)

    def measure(
        self, selection_set: SelectionSetNode, parent_type: GraphQLNamedType | None
    ) -> Cost:
        """The cost of one selection set; spreads of fragments measured before add their cost,
        others (unknown, or on a cycle) add nothing. Iterative: one stack entry per open
        field, each selection visited once."""
        stack = [_Level(_selections(selection_set, parent_type), Cost(), None)]
        while True:
            level = stack[-1]
            if level.pending:
                node, node_parent = level.pending.pop()
                if isinstance(node, FieldNode):
                    info = self.field_info(node, node_parent)
                    if node.selection_set is not None:
                        children = _selections(node.selection_set, info.child_type)
                        stack.append(_Level(children, Cost(), (node, info)))
                    else:
                        level.cost.add(_field_cost(node, info, None))
                elif isinstance(node, InlineFragmentNode):
                    condition = node.type_condition
                    inner = self.schema.get_type(condition.name.value) if condition else None
                    level.pending += _selections(node.selection_set, inner or node_parent)
                    level.cost.fields = _sat(level.cost.fields + 1)
                elif isinstance(node, FragmentSpreadNode):
                    known = self.costs.get(node.name.value)
                    if known is not None:
                        level.cost.add(known)
                    level.cost.fields = _sat(level.cost.fields + 1)
                continue
            stack.pop()
            if level.owner is None:
                return level.cost
            field, info = level.owner
            stack[-1].cost.add(_field_cost(field, info, level.cost))

    def fragment_order(self) -> list[str]:
        """Fragments reachable from the operations, each after the fragments it spreads
        (an iterative depth-first search; an edge back into the search is a cycle: skipped)."""
        spreads = {name: list(_spread_names(f.selection_set)) for name, f in self.fragments.items()}
        order: list[str] = []
        state: dict[str, int] = {}  # 1: being searched, 2: done
        roots = [name for op in self.operations for name in _spread_names(op.selection_set)]
        for root in roots:
            if root not in self.fragments or root in state:
                continue
            state[root] = 1
            path: list[tuple[str, Iterator[str]]] = [(root, iter(spreads[root]))]
            while path:
                name, children = path[-1]
                child = next(children, None)
                if child is None:
                    path.pop()
                    state[name] = 2
                    order.append(name)
                elif child in self.fragments and child not in state:
                    state[child] = 1
                    path.append((child, iter(spreads[child])))
        return order

    def errors(self) -> list[GraphQLError]:
        for name in self.fragment_order():
            fragment = self.fragments[name]
            condition = self.schema.get_type(fragment.type_condition.name.value)
            self.costs[name] = self.measure(fragment.selection_set, condition)
        errors: list[GraphQLError] = [
            GraphQLError(f"There can be only one fragment named '{name}'.")
            for name in dict.fromkeys(self.duplicates)
        ]
        total = Cost()
        for operation in self.operations:
            root = self.schema.get_root_type(operation.operation)
            cost = self.measure(operation.selection_set, root)
            total.add(cost)
            if cost.depth > MAX_DEPTH:
                name = operation.name.value if operation.name else "anonymous"
                message = f"'{name}' exceeds maximum operation depth of {MAX_DEPTH}"
                errors.append(GraphQLError(message, operation))
        checks = (
            (total.aliases, MAX_ALIASES, "{} aliases found. Allowed: {}"),
            (
                total.fields,
                MAX_FIELDS,
                "The query selects {} fields (fragment spreads included) once fragments are "
                "expanded. Allowed: {}",
            ),
            (
                total.values,
                MAX_VALUES,
                "The query may return {} values (each field counted once per item of the "
                "lists around it). Allowed: {}",
            ),
            (
                total.schemas,
                MAX_SCHEMA_FIELDS,
                "The query selects `__schema` {} times (aliases and fragments included). "
                "Allowed: {}",
            ),
            (
                total.large_rows,
                MAX_WEBHOOK_EVENTS,
                "The query may return {} webhook event payloads (each `payload` counted once "
                "per item of the pages around it, aliases and fragments included). Allowed: {}",
            ),
        )
        for count, limit, text in checks:
            if count > limit:
                shown = f"{count}" if count < SATURATED else f"more than {SATURATED}"
                errors.append(GraphQLError(text.format(shown, limit)))
        return errors


def _field_cost(node: FieldNode, info: _FieldInfo, children: Cost | None) -> Cost:
    """A field's measure from its children's (None for a leaf)."""
    inner = children or Cost()
    introspection = node.name.value.startswith("__")
    return Cost(
        depth=0 if children is None or introspection else inner.depth + 1,
        fields=_sat(1 + inner.fields),
        aliases=_sat((1 if node.alias else 0) + inner.aliases),
        values=_sat(1 + info.multiplier * inner.values),
        large_rows=_sat((1 if info.large else 0) + info.multiplier * inner.large_rows),
        schemas=_sat((1 if node.name.value == "__schema" else 0) + inner.schemas),
    )


def _spread_names(selection_set: SelectionSetNode) -> Iterable[str]:
    """Names of the fragments spread anywhere inside ``selection_set`` (iterative)."""
    pending: list[SelectionNode] = list(selection_set.selections)
    while pending:
        node = pending.pop()
        if isinstance(node, FragmentSpreadNode):
            yield node.name.value
        elif isinstance(node, (FieldNode, InlineFragmentNode)) and node.selection_set:
            pending += node.selection_set.selections


class QueryCostRule(ValidationRule):
    """Refuses a document over a cost limit, then stops validation (module docstring)."""

    def enter_document(self, *_args: Any) -> None:
        errors = _Measure(self.context).errors()
        if not errors:
            return
        for error in errors[:-1]:
            self.report_error(error)
        # Raised, not reported: graphql-core stops validating (its other rules would spend
        # their own budgets on a document that is refused anyway) and keeps this error.
        last = errors[-1]
        raise ValidationAbortedError(last.message, last.nodes)


class BoundedOverlapRule(OverlappingFieldsCanBeMergedRule):
    """graphql-core's field-merging rule within ``OVERLAP_BUDGET`` work units."""

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        self.rule_context.remaining_complexity_budget = OVERLAP_BUDGET

    def enter_selection_set(self, *args: Any) -> None:
        try:
            super().enter_selection_set(*args)
        except ValidationAbortedError:
            message = (
                "The query repeats fields of the same name too often to be checked "
                "(merge them, or use aliases)."
            )
            raise ValidationAbortedError(message) from None
