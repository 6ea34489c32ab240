"""``schema.execution``: plain leaf fields read directly give the same answers and the same
errors as graphql-core's general path, and fields that are not plain still take it."""

from __future__ import annotations

import enum
from typing import Any, NewType

import pytest
import strawberry
from strawberry.extensions import FieldExtension
from strawberry.permission import BasePermission
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from revenue_engine.schema import EngineSchema, build_schema
from revenue_engine.schema.execution import ATTRIBUTE, EngineExecutor


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


#: A scalar that serializes nothing (graphql-core refuses that as an error of the field).
Void = NewType("Void", str)
CONFIG = StrawberryConfig(
    scalar_map={Void: strawberry.scalar(name="Void", serialize=lambda value: None)}
)


@strawberry.type
class Item:
    name: str
    maybe: str | None
    count: int
    colour: Colour
    ratio: float
    flag: bool
    #: Values of the wrong kind, as a bug would leave them.
    not_a_number: int
    missing: str
    void: Void

    @strawberry.field
    def shout(self, times: int = 1) -> str:
        return self.name.upper() * times

    @property
    def broken(self) -> str:
        raise RuntimeError("this attribute fails")


class Deny(BasePermission):
    message = "denied"

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        return False


class Upper(FieldExtension):
    def resolve(self, next_: Any, source: Any, info: Any, **kwargs: Any) -> Any:
        return next_(source, info, **kwargs).upper()


@strawberry.type
class Account:
    """Attribute fields that are not plain: a permission class, a field extension."""

    name: str
    secret: str = strawberry.field(permission_classes=[Deny])
    shout: str = strawberry.field(extensions=[Upper()])


@strawberry.type
class Holder:
    item: Item

    @strawberry.field
    def account(self) -> Account:
        return Account(name="a", secret="s3cret", shout="hello")

    @strawberry.field
    def raises(self) -> str:
        return Item.broken.fget(self.item)  # type: ignore[attr-defined,no-any-return]


def _item(**overrides: Any) -> Item:
    values: dict[str, Any] = {
        "name": "a",
        "maybe": None,
        "count": 3,
        "colour": Colour.BLUE,
        "ratio": 0.5,
        "flag": True,
        "not_a_number": "three",
        "missing": None,
        "void": "v",
    }
    return Item(**{**values, **overrides})


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return [_item(), _item(name="b", maybe="m", colour=Colour.RED)]

    @strawberry.field
    def holder(self) -> Holder:
        return Holder(item=_item())


QUERIES = [
    "{ items { name maybe count colour ratio flag } }",
    "{ items { name shout(times: 2) } }",
    "{ items { notANumber } }",  # a value Int cannot coerce: an error at its path
    "{ items { name missing } }",  # null for a non-null field: the parent is nulled
    "{ items { name void } }",  # a scalar that serializes to nothing
    "{ holder { raises item { name } } }",
    "{ holder { account { name secret } } }",  # the permission class refuses
    "{ holder { account { name shout } } }",  # the extension changes the value
    "{ items { n: name, n2: name, __typename } }",
    "{ items { ... on Item { name } ...F } } fragment F on Item { colour }",
    "query($skip: Boolean!) { items { name @skip(if: $skip) count } }",
]


@pytest.mark.parametrize("query", QUERIES)
async def test_answers_and_errors_are_those_of_the_general_path(query: str) -> None:
    fast = EngineSchema(query=Query, config=CONFIG)
    general = strawberry.Schema(
        query=Query,
        config=CONFIG,
        execution_context_class=StrawberryGraphQLCoreExecutionContext,
    )
    variables = {"skip": True}
    ours = await fast.execute(query, variable_values=variables)
    theirs = await general.execute(query, variable_values=variables)
    assert ours.data == theirs.data
    assert [(e.message, e.path) for e in ours.errors or []] == [
        (e.message, e.path) for e in theirs.errors or []
    ]


def test_only_plain_leaves_take_the_short_path() -> None:
    leaves = getattr(EngineSchema(query=Query, config=CONFIG)._schema, ATTRIBUTE)
    assert ("Item", "name") in leaves
    assert ("Item", "colour") in leaves
    assert leaves["Item", "name"].non_null
    assert not leaves["Item", "maybe"].non_null
    assert ("Item", "shout") not in leaves  # a resolver with arguments
    assert ("Holder", "raises") not in leaves  # a resolver
    assert ("Holder", "item") not in leaves  # an object
    assert ("Query", "items") not in leaves
    assert ("Account", "name") in leaves
    assert ("Account", "secret") not in leaves  # a permission class
    assert ("Account", "shout") not in leaves  # a field extension


async def test_the_short_path_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """The general path runs for the list and the resolver only, not for each leaf."""
    general: list[str] = []
    real = StrawberryGraphQLCoreExecutionContext.execute_field

    def counted(self: Any, parent_type: Any, source: Any, details: Any, *rest: Any) -> Any:
        general.append(f"{parent_type.name}.{details[0].node.name.value}")
        return real(self, parent_type, source, details, *rest)

    monkeypatch.setattr(StrawberryGraphQLCoreExecutionContext, "execute_field", counted)
    result = await EngineSchema(query=Query, config=CONFIG).execute(
        "{ items { name count colour } }"
    )
    assert result.errors is None
    assert general == ["Query.items"]


def test_the_engine_schema_executes_with_it() -> None:
    assert build_schema().execution_context_class is EngineExecutor
    leaves = getattr(build_schema()._schema, ATTRIBUTE)
    assert ("SubscriptionStatus", "status") in leaves
    assert ("FeatureUsage", "overageAmount") in leaves
