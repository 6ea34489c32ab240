"""Hostile values for GraphQL inputs, drawn from the input type of the schema.

``values_for(type)`` is mostly a value of the right shape (so resolvers and services run) mixed
with what an attacker sends: lone surrogates, very long strings, the 32/64-bit boundaries and
10^30, odd floats, unknown enum names, wrong types, missing or unknown input fields, huge lists
and JSON nested deeper than any parser's stack (``Deep``). ``dumps`` writes a request body as
ASCII JSON (lone surrogates as ``\\ud800`` escapes, which httpx's ``json=`` cannot encode) and
expands ``Deep`` markers textually (``json.dumps`` itself would overflow its stack on them).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import graphql
from hypothesis import strategies as st

JSON = Any

LONE_SURROGATES = ("\ud800", "\udbff", "\udc00", "\udfff")

#: Values that mean something to the engine or to Stripe: the demo plans, add-ons, currencies,
#: test cards, id prefixes, paths (seeded ids of live objects are added per run).
PLAUSIBLE = (
    "starter",
    "pro",
    "enterprise",
    "api_calls",
    "bandwidth",
    "usd",
    "eur",
    "USD",
    "jpy",
    "pm_card_visa",
    "pm_card_chargeDeclined",
    "pm_card_visa_chargeDeclinedInsufficientFunds",
    "pm_1",
    "cus_1",
    "pi_1",
    "cs_test_1",
    "evt_1",
    "sub_1",
    "in_1",
    "/billing/success",
    "/",
    "a@example.com",
    "month",
    "MONTH",
    "admin",
    "org_a",
)

#: Strings that have broken parsers, stores and URL builders elsewhere.
ODD_STRINGS = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "\n\r\t",
    "\u202e",
    "\ufeff",
    "\U0001f600",
    "$gt",
    '{"$ne": null}',
    "$where",
    "a.b",
    ".",
    "..",
    "../../etc/passwd",
    "//evil.example",
    "https://evil.example/x",
    "javascript:alert(1)",
    "%00",
    "%ZZ",
    "?a=b&c=d#e",
    "\\",
    "'\"`",
    "<script>",
    "-1",
    "0",
    "1e400",
    "NaN",
    "null",
    "9" * 40,
    "eyJ4IjoxfQ",
    "====",
)

INT_EDGES = (
    0,
    1,
    -1,
    2**31 - 1,
    -(2**31),
    2**31,
    -(2**31) - 1,
    2**53 + 1,
    2**63 - 1,
    2**63,
    -(2**63),
    2**64,
    10**30,
    -(10**30),
)

FLOAT_EDGES = (0.0, -0.0, 0.5, 1.0, -1.5, 1e30, -1e30, 1e308, -1e308, 5e-324, 2.0**63)

#: Nesting depths for ``Deep``: shallow, near Python's recursion limit, far past it.
DEPTHS = (64, 900, 5_000, 100_000)


@dataclass(frozen=True)
class Deep:
    """``depth`` nested JSON arrays (or objects), written out only by ``dumps``."""

    depth: int
    objects: bool = False

    @property
    def marker(self) -> str:
        return f"\x00fuzz-deep:{self.depth}:{int(self.objects)}\x00"

    def text(self) -> str:
        if self.objects:
            return '{"a":' * self.depth + "1" + "}" * self.depth
        return "[" * self.depth + "]" * self.depth

    def __repr__(self) -> str:
        return f"Deep({self.depth}{', objects' if self.objects else ''})"


_MARKER = re.compile(r'"\\u0000fuzz-deep:(\d+):([01])\\u0000"')


def _expand(text: str) -> str:
    return _MARKER.sub(lambda m: Deep(int(m[1]), m[2] == "1").text(), text)


def dumps(value: JSON) -> str:
    """``value`` as ASCII JSON; ``Deep`` values expanded in place."""

    def default(obj: object) -> str:
        if isinstance(obj, Deep):
            return obj.marker
        raise TypeError(type(obj).__name__)

    return _expand(json.dumps(value, ensure_ascii=True, default=default))


def plausible_text(seeds: tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    """Strings the engine may accept: known names and ids, short ASCII words."""
    word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12)
    return st.one_of(st.sampled_from(PLAUSIBLE + seeds), st.sampled_from(PLAUSIBLE + seeds), word)


def hostile_text() -> st.SearchStrategy[str]:
    """Lone surrogates, very long strings, odd characters, any text."""
    surrogate = st.builds(
        lambda a, s, b: a + s + b,
        st.sampled_from(("", "a", "starter", "pi_1")),
        st.sampled_from(LONE_SURROGATES),
        st.text(max_size=4),
    )
    long = st.builds(
        lambda c, n: c * n,
        st.sampled_from(("a", "\x00", "\u00e9", "\U0001f600", "\ud800")),
        st.sampled_from((257, 5_000, 100_000)),
    )
    return st.one_of(surrogate, surrogate, long, st.sampled_from(ODD_STRINGS), st.text(max_size=30))


def text(seeds: tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    """Any string, weighted towards the hostile and the meaningful."""
    return st.one_of(plausible_text(seeds), hostile_text())


def integers() -> st.SearchStrategy[int]:
    """The 32- and 64-bit boundaries, 10^30, and any integer."""
    return st.one_of(st.sampled_from(INT_EDGES), st.integers())


def floats() -> st.SearchStrategy[float]:
    return st.one_of(st.sampled_from(FLOAT_EDGES), st.floats(allow_nan=False, allow_infinity=False))


def deep() -> st.SearchStrategy[Deep]:
    return st.builds(Deep, st.sampled_from(DEPTHS), st.booleans())


def any_json(seeds: tuple[str, ...] = ()) -> st.SearchStrategy[JSON]:
    """Arbitrary JSON, now and then nested deeper than a recursive parser survives."""
    leaves = st.one_of(st.none(), st.booleans(), integers(), floats(), text(seeds))
    nested = st.recursive(
        leaves,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.text(max_size=8) | st.sampled_from(LONE_SURROGATES), inner, max_size=4
            )
        ),
        max_leaves=12,
    )
    return st.one_of(nested, nested, nested, deep())


@dataclass(frozen=True)
class Draw:
    """How one request draws its values: ``rate`` percent of the places get a hostile value
    (a few for a mostly valid request that reaches the services, all for pure noise)."""

    seeds: tuple[str, ...]
    rate: int

    def hostile(self, draw: st.DrawFn) -> bool:
        # Hypothesis starts from (and shrinks towards) the smallest draw: make that the benign one.
        return draw(st.integers(0, 99)) >= 100 - self.rate


RATES = (2, 5, 15, 40, 100)


def draws(seeds: tuple[str, ...]) -> st.SearchStrategy[Draw]:
    return st.builds(Draw, st.just(seeds), st.sampled_from(RATES))


def _scalar(draw: st.DrawFn, name: str, how: Draw) -> JSON:
    hostile = how.hostile(draw)
    if name in ("String", "ID"):
        if not hostile:
            return draw(plausible_text(how.seeds))
        return draw(st.one_of(hostile_text(), integers()) if name == "ID" else hostile_text())
    if name == "Int":
        return draw(integers() if hostile else st.integers(min_value=0, max_value=5_000))
    if name == "Float":
        return draw(st.one_of(floats(), integers()) if hostile else st.floats(0, 1e6))
    if name == "Boolean":
        return draw(st.booleans())
    if name == "DateTime":
        dates = ("2026-01-01T00:00:00+00:00", "9999-12-31T23:59:59", "0001-01-01", "2026-13-45")
        return draw(hostile_text() if hostile else st.sampled_from(dates))
    # A custom scalar (JSON and whatever comes next): any JSON at all.
    return draw(any_json(how.seeds))


def _enum(draw: st.DrawFn, type_: graphql.GraphQLEnumType, how: Draw) -> JSON:
    names = tuple(type_.values)
    if not how.hostile(draw):
        return draw(st.sampled_from(names))
    odd = (*(n.lower() for n in names), "", "NOPE", names[0] + " ", names[0] + "\ud800")
    return draw(st.one_of(st.sampled_from(odd), hostile_text()))


def _object(
    draw: st.DrawFn, type_: graphql.GraphQLInputObjectType, how: Draw, depth: int
) -> dict[str, JSON]:
    value: dict[str, JSON] = {}
    for name, field in type_.fields.items():
        if graphql.is_required_input_field(field):
            skip = how.hostile(draw) and draw(st.integers(0, 9)) == 9  # a coercion error
        else:
            skip = draw(st.booleans())
        if not skip:
            value[name] = draw(values_for(field.type, how, depth + 1))
    if how.hostile(draw) and draw(st.integers(0, 4)) == 4:
        key = draw(st.sampled_from(("bogus", "__proto__", "$set", "\ud800")))
        value[key] = draw(any_json(how.seeds))
    return value


def _list(draw: st.DrawFn, type_: graphql.GraphQLList[Any], how: Draw, depth: int) -> JSON:
    item = values_for(type_.of_type, how, depth + 1)
    if how.hostile(draw):
        # Very many items, or a bare item (GraphQL coerces it to a one-item list).
        return draw(
            st.one_of(st.builds(lambda v, n: [v] * n, item, st.sampled_from((100, 2_000))), item)
        )
    return draw(st.lists(item, max_size=3))


@st.composite
def values_for(draw: st.DrawFn, type_: graphql.GraphQLInputType, how: Draw, depth: int = 0) -> JSON:
    """A JSON value for a variable of ``type_``: of its shape, hostile at ``how.rate`` percent
    of the places (then also null where not allowed, or a value of another type)."""
    if how.hostile(draw) and draw(st.integers(0, 3)) == 3:
        return draw(st.one_of(st.none(), any_json(how.seeds)))
    nullable = not isinstance(type_, graphql.GraphQLNonNull)
    if nullable and draw(st.integers(0, 5)) == 5:
        return None
    inner = type_.of_type if isinstance(type_, graphql.GraphQLNonNull) else type_
    if isinstance(inner, graphql.GraphQLList):
        return _list(draw, inner, how, depth)
    if isinstance(inner, graphql.GraphQLInputObjectType):
        return _object(draw, inner, how, depth) if depth < 6 else {}
    if isinstance(inner, graphql.GraphQLEnumType):
        return _enum(draw, inner, how)
    return _scalar(draw, graphql.get_named_type(inner).name, how)
