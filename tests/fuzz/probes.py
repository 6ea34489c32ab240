"""A systematic sweep next to the random one: every scalar place of every root field's arguments,
in turn, gets each hostile probe while the rest of the request stays plausible.

Random generation rarely puts a lone surrogate in the one string a service stores when every
other field is also valid; this puts one there, and 2^31 - 1 in every ``Int``, for every field
the schema has. ``baseline(args)`` fills the arguments with values the engine accepts (names
guided by ``HINTS``); ``probes(args)`` yields ``(place, variables)`` with one place replaced.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import graphql

#: Plausible values by argument or input-field name (else by type).
HINTS: dict[str, Any] = {
    "currency": "usd",
    "planUid": "starter",
    "uid": "starter",
    "paymentMethod": "pm_card_visa",
    "email": "a@example.com",
    "name": "Name",
    "key": "api_calls",
    "unit": "unit",
    "amount": 1900,
    "trialDays": 7,
    "first": 10,
    "overages": "api_calls",
    "createOnly": False,
    "limit": 5,
    "returnPath": "/billing",
    "successPath": "/billing/success",
    "cancelPath": "/billing/cancel",
}

STRING_PROBES: tuple[Any, ...] = ("a\ud800b", "\udfff", "x" * 100_000, "\x00", "$a.b")
INT_PROBES: tuple[Any, ...] = (2**31 - 1, -(2**31), 2**31, 10**30)
ID_PROBES: tuple[Any, ...] = ("\ud800", 2**63, "x" * 100_000)
FLOAT_PROBES: tuple[Any, ...] = (1e308, -0.0)

Place = tuple[str | int, ...]


def _plausible(name: str, type_: graphql.GraphQLInputType, hints: dict[str, Any]) -> Any:
    inner = graphql.get_nullable_type(type_)
    if isinstance(inner, graphql.GraphQLList):
        return [_plausible(name, inner.of_type, hints)]
    if isinstance(inner, graphql.GraphQLInputObjectType):
        return {
            field: _plausible(field, definition.type, hints)
            for field, definition in inner.fields.items()
        }
    if isinstance(inner, graphql.GraphQLEnumType):
        return next(iter(inner.values))
    if name in hints:
        return hints[name]
    scalar = graphql.get_named_type(inner).name
    if scalar in ("String", "ID"):
        hints["__count"] = hints.get("__count", 0) + 1
        return f"x{hints['__count']}"  # distinct, so no two lookup keys collide
    return {"Int": 100, "Float": 1.5, "Boolean": True}.get(scalar, "x")


def baseline(
    arguments: dict[str, graphql.GraphQLArgument], hints: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Every argument with a plausible value (optional ones too, so each place exists);
    ``hints`` (ids of live objects, by argument name) go before ``HINTS``."""
    known = {**HINTS, **(hints or {})}
    return {name: _plausible(name, argument.type, known) for name, argument in arguments.items()}


def _places(
    value: Any, type_: graphql.GraphQLInputType, place: Place
) -> Iterator[tuple[Place, str]]:
    inner = graphql.get_nullable_type(type_)
    if isinstance(inner, graphql.GraphQLList):
        for index, item in enumerate(value):
            yield from _places(item, inner.of_type, (*place, index))
    elif isinstance(inner, graphql.GraphQLInputObjectType):
        for field, item in value.items():
            yield from _places(item, inner.fields[field].type, (*place, field))
    elif isinstance(inner, graphql.GraphQLScalarType):
        yield place, inner.name


def _replaced(variables: dict[str, Any], place: Place, probe: Any) -> dict[str, Any]:
    changed = copy.deepcopy(variables)
    target: Any = changed
    for step in place[:-1]:
        target = target[step]
    target[place[-1]] = probe
    return changed


def probes(
    arguments: dict[str, graphql.GraphQLArgument], hints: dict[str, Any] | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(place, variables)``: the baseline with one scalar place set to one probe."""
    base = baseline(arguments, hints)
    for name, argument in arguments.items():
        for place, scalar in _places(base[name], argument.type, (name,)):
            values = {
                "String": STRING_PROBES,
                "ID": ID_PROBES,
                "Int": INT_PROBES,
                "Float": FLOAT_PROBES,
            }.get(scalar, ())
            for probe in values:
                shown = (
                    probe
                    if not isinstance(probe, str) or len(probe) < 20
                    else f"{probe[:3]}… ({len(probe)} chars)"
                )
                yield f"{'.'.join(map(str, place))}={shown!r}", _replaced(base, place, probe)


def operation(kind: str, name: str, field: graphql.GraphQLField) -> str:
    """``kind Probe($a: T, …) { name(a: $a, …) { __typename } }`` (``__typename`` is always
    selectable: the sweep is about the arguments; the random fuzz varies the selection)."""
    declared = ", ".join(f"${arg}: {argument.type}" for arg, argument in field.args.items())
    passed = ", ".join(f"{arg}: ${arg}" for arg in field.args)
    head = f"{kind} Probe({declared})" if declared else kind
    call = f"{name}({passed})" if passed else name
    selection = (
        "" if graphql.is_leaf_type(graphql.get_named_type(field.type)) else " { __typename }"
    )
    return f"{head} {{ {call}{selection} }}"
