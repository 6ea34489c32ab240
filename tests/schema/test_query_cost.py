"""The query-cost rule (``schema.query_cost``): linear in the query, whatever its fragments do.

Issue 11.1: fragments that each spread the next one twice froze the server for seconds (the
old limiters walked a fragment again at every spread). The rule measures each fragment once;
these tests check what it counts (depth, aliases, expanded fields, list-weighted values,
webhook rows), that it survives cycles, long chains and deep nesting without recursion, and —
the issue's acceptance test — that the doubling fragments are refused within 50 ms through a
real server while ``/healthz`` keeps answering. No shape within the body limit keeps
validation busy for more than 100 ms.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from graphql import (
    DocumentNode,
    FieldNode,
    NameNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    ValidationContext,
    parse,
    specified_rules,
    validate,
)
from graphql.utilities import TypeInfo

from revenue_engine.schema import MAX_ALIASES, MAX_FIELDS, build_schema, with_limits
from revenue_engine.schema.query_cost import (
    MAX_VALUES,
    MAX_WEBHOOK_EVENTS,
    SATURATED,
    Cost,
    _Measure,
)
from revenue_engine.settings import Settings
from tests.conftest import serving_app, untraced
from tests.gql import ADMIN

SCHEMA = build_schema()._schema
RULES = with_limits(tuple(specified_rules))

Start = Callable[[Settings], Any]


def doubling(levels: int) -> str:
    """The issue's query: ``levels`` fragments with random names, each spreading the next one
    twice (2^levels fields once expanded)."""
    names = [f"F{secrets.token_hex(6)}" for _ in range(levels)]
    lines = [f"fragment {a} on Query {{ ...{b} ...{b} }}" for a, b in itertools.pairwise(names)]
    lines.append(f"fragment {names[-1]} on Query {{ __typename }}")
    return "{ ..." + names[0] + " }\n" + "\n".join(lines)


def messages(query: str) -> list[str]:
    return [error.message for error in validate(SCHEMA, parse(query), RULES)]


def measure(document: DocumentNode) -> Cost:
    """The summed cost of the document's operations."""
    measured = _Measure(ValidationContext(SCHEMA, document, TypeInfo(SCHEMA), lambda e: None))
    measured.errors()
    total = Cost()
    for operation in measured.operations:
        total.add(measured.measure(operation.selection_set, SCHEMA.query_type))
    return total


# --- what the rule counts --------------------------------------------------------------------


def test_fragments_are_expanded_with_their_multiplicity() -> None:
    fragment = "fragment Wide on Query { " + "__typename " * 99 + "}"
    # Each spread counts too: ten of them are 10 x (99 + 1) selections.
    ten = "{ " + "...Wide " * 10 + "} " + fragment
    assert measure(parse(ten)).fields == 1000
    assert not [m for m in messages(ten) if "once fragments" in m]
    eleven = "{ " + "...Wide " * 11 + "} " + fragment
    assert messages(eleven) == [
        "The query selects 1100 fields (fragment spreads included) once fragments are "
        f"expanded. Allowed: {MAX_FIELDS}"
    ]


def test_spreads_of_a_chain_of_fragments_count_at_every_level() -> None:
    # 500 spreads of a chain of 121 fragments: few fields, but 60,500 spreads to walk for
    # anything that expands the selection (Strawberry's ``selected_fields`` does).
    chain = " ".join(f"fragment A{i} on Query {{ ...A{i + 1} }}" for i in range(120))
    query = "{ " + "...A0 " * 500 + "} " + chain + " fragment A120 on Query { __typename }"
    assert measure(parse(query)).fields == 500 * 122
    assert [m for m in messages(query) if "fragment spreads included" in m]


def test_colocated_fragments_that_repeat_fields_pass() -> None:
    # A front end composing 30 components' fragments, each asking for the same fields.
    fragments = " ".join(
        f"fragment F{i} on Query {{ subscriptionStatus {{ status planUid }} plans {{ uid name }} }}"
        for i in range(30)
    )
    query = "{ " + " ".join(f"...F{i}" for i in range(30)) + " } " + fragments
    assert messages(query) == []


def test_schema_is_introspected_once_per_request() -> None:
    one = "{ __schema { types { name fields { name } } } }"
    assert messages(one) == []
    aliased = "{ a: __schema { types { name } } b: __schema { types { name } } }"
    assert messages(aliased) == [
        "The query selects `__schema` 2 times (aliases and fragments included). Allowed: 1"
    ]
    spread = "{ ...S ...S } fragment S on Query { __schema { queryType { name } } }"
    assert [m for m in messages(spread) if "`__schema` 2 times" in m]


def test_two_fragments_of_one_name_are_refused() -> None:
    doubled = " ".join(
        f"fragment D{i} on Query {{ ...D{i + 1} ...D{i + 1} }}" for i in range(1, 60)
    )
    query = "{ ...D } fragment D on Query { __typename } fragment D on Query { ...D1 } " + doubled
    assert "There can be only one fragment named 'D'." in messages(query)


def test_aliases_in_a_fragment_count_at_every_spread() -> None:
    half = MAX_ALIASES // 2 + 1
    fragment = "fragment A on Query { " + " ".join(f"a{i}: __typename" for i in range(half)) + " }"
    assert messages("{ ...A } " + fragment) == []
    assert messages("{ ...A ...A } " + fragment) == [
        f"{2 * half} aliases found. Allowed: {MAX_ALIASES}"
    ]


def test_depth_counts_through_fragments_and_inline_fragments() -> None:
    def query(levels: int) -> str:
        # `plans`, then `prices` in a fragment reached through an inline fragment, then a chain
        # of `levels` fields (unknown ones: the depth is measured all the same).
        chain = "".join(f"{{ f{i} " for i in range(levels)) + "}" * levels
        return "query Deep { plans { ... on Plan { ...P } } } fragment P on Plan { prices " + (
            chain + " }"
        )

    assert measure(parse(query(7))).depth == 8
    assert not [m for m in messages(query(7)) if "depth" in m]
    assert measure(parse(query(8))).depth == 9
    assert "'Deep' exceeds maximum operation depth of 8" in messages(query(8))


def test_introspection_fields_do_not_count_towards_depth() -> None:
    query = "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { " + (
        "ofType { ofType { name } } } } } } } } } } }"
    )
    assert measure(parse(query)).depth == 0
    assert messages(query) == []


def test_webhook_payloads_count_first_times_repetitions() -> None:
    """The issue's 15 aliases of ``webhookEvents(first: 100) { payload }`` are refused before
    they run; a variable ``first`` counts as a full page, a missing one as the default (20);
    a page without ``payload`` loads none and counts nothing."""
    attack = (
        "{ "
        + " ".join(
            f"a{i}: webhookEvents(first: 100) {{ edges {{ node {{ payload }} }} }}"
            for i in range(15)
        )
        + " }"
    )
    assert measure(parse(attack)).large_rows == 1500
    assert messages(attack) == [
        "The query may return 1500 webhook event payloads (each `payload` counted once per "
        f"item of the pages around it, aliases and fragments included). Allowed: {MAX_WEBHOOK_EVENTS}"
    ]
    node = "edges { node { payload } }"
    five = "{ " + " ".join(f"a{i}: webhookEvents {{ {node} }}" for i in range(5)) + " }"
    assert measure(parse(five)).large_rows == 100
    assert messages(five) == []
    without = (
        "{ "
        + " ".join(f"a{i}: webhookEvents(first: 100) {{ edges {{ cursor }} }}" for i in range(5))
        + " }"
    )
    assert measure(parse(without)).large_rows == 0
    assert messages(without) == []
    by_variable = (
        f"query($n: Int) {{ a: webhookEvents(first: $n) {{ {node} }} ...W }} "
        f"fragment W on Query {{ webhookEvents(first: 1) {{ {node} }} }}"
    )
    assert measure(parse(by_variable)).large_rows == 101
    assert [m for m in messages(by_variable) if "may return 101 webhook event payloads" in m]


def test_values_are_weighted_by_page_sizes() -> None:
    def query(aliases: int, first: int, fields: int) -> str:
        page = f"customers(first: {first}) {{ nodes {{ {'name ' * fields}}} }}"
        return "{ " + " ".join(f"a{i}: {page}" for i in range(aliases)) + " }"

    # Per alias: the connection, then per item `nodes` and its fields.
    assert measure(parse(query(1, 100, 14))).values == 1 + 100 * (1 + 14)
    over = 15 * (1 + 100 * 15)
    assert over > MAX_VALUES
    assert messages(query(15, 100, 14)) == [
        f"The query may return {over} values (each field counted once per item of the lists "
        f"around it). Allowed: {MAX_VALUES}"
    ]
    assert messages(query(15, 10, 14)) == []


# --- bounded, whatever the shape ------------------------------------------------------------


def test_counts_saturate_instead_of_growing_without_bound() -> None:
    start = time.perf_counter()
    cost = measure(parse(doubling(200)))
    assert time.perf_counter() - start < 1
    assert cost.fields == cost.values == SATURATED


def test_a_fragment_cycle_is_refused_without_recursing() -> None:
    errors = messages(
        "{ ...A } fragment A on Query { ...B __typename } fragment B on Query { ...A }"
    )
    assert errors == ["Cannot spread fragment 'A' within itself via 'B'."]


def test_a_long_fragment_chain_is_measured_iteratively() -> None:
    """3,000 fragments each spreading the next (no token limit here): no RecursionError."""
    n = 3000
    chain = " ".join(f"fragment C{i} on Query {{ a{i}: __typename ...C{i + 1} }}" for i in range(n))
    document = parse("{ ...C0 } " + chain + f" fragment C{n} on Query {{ __typename }}")
    cost = measure(document)
    # n + 1 fields and n + 1 spreads.
    assert (cost.fields, cost.aliases) == (2 * n + 2, n)


def test_deep_selections_are_measured_iteratively() -> None:
    """A document nested 5,000 levels (built directly: the parser stops at 200)."""
    selection: FieldNode = FieldNode(name=NameNode(value="leaf"))
    for _ in range(5000):
        selection = FieldNode(
            name=NameNode(value="f"), selection_set=SelectionSetNode(selections=(selection,))
        )
    operation = OperationDefinitionNode(
        operation=OperationType.QUERY, selection_set=SelectionSetNode(selections=(selection,))
    )
    cost = measure(DocumentNode(definitions=(operation,)))
    assert (cost.depth, cost.fields) == (5000, 5001)


# --- through the real app ---------------------------------------------------------------


def server_ms(response: httpx.Response) -> float:
    """The engine's own time for a request (``Server-Timing: app;dur=…``), in ms."""
    timing = dict(
        part.strip().split(";dur=") for part in response.headers["server-timing"].split(",")
    )
    return float(timing["app"])


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    # Untraced: the 50 ms bound is the engine's, not coverage's.
    with serving_app(traced=False) as url:
        yield url


def test_doubling_fragments_are_refused_fast_while_healthz_answers(served: str) -> None:
    """Issue 11.1's acceptance test: 20, 30 and 60 levels (new random names each time, so no
    cache helps) are each refused within 50 ms of server time, and a client polling
    ``/healthz`` meanwhile is never kept waiting."""
    latencies: list[float] = []
    statuses: set[int] = set()
    stop = threading.Event()

    def poll() -> None:
        with httpx.Client(base_url=served, timeout=30) as health:
            while not stop.is_set():
                started = time.perf_counter()
                statuses.add(health.get("/healthz").status_code)
                latencies.append(time.perf_counter() - started)
                time.sleep(0.005)

    def wait_for_polls(count: int) -> None:
        deadline = time.monotonic() + 10
        while len(latencies) < count and time.monotonic() < deadline:
            time.sleep(0.01)

    with httpx.Client(base_url=served, timeout=60) as client:

        def refusal_ms(levels: int) -> float:
            response = client.post("/graphql", json={"query": doubling(levels)})
            assert response.status_code == 200
            body = response.json()
            assert body.get("data") is None
            assert {e["extensions"]["code"] for e in body["errors"]} == {
                "GRAPHQL_VALIDATION_FAILED"
            }
            return server_ms(response)

        for _ in range(3):  # warm-up: imports, first-request caches
            refusal_ms(12)
        poller = threading.Thread(target=poll)
        poller.start()
        try:
            wait_for_polls(3)
            polled = len(latencies)
            for levels in (20, 30, 60):
                # Five rounds, new names each: /healthz is polled in between. The best round
                # is the engine's cost (the machine is shared); on the old limiters every
                # round of 20 levels took seconds.
                rounds = []
                for _ in range(5):
                    rounds.append(refusal_ms(levels))
                    if rounds[-1] > 1000:
                        break
                assert min(rounds) < 50, f"{levels} levels took {min(rounds):.1f} ms"
            wait_for_polls(polled + 3)
        finally:
            stop.set()
            poller.join()
    assert statuses == {200}
    assert len(latencies) >= polled + 3
    assert max(latencies) < 0.5, f"/healthz waited {max(latencies):.3f} s"


def _within_body_limit() -> dict[str, str]:
    """Costly shapes that fit HTTP_MAX_BODY_BYTES (256 KiB) and the token limit."""
    same = "{ " + " ".join("plans { prices { id } }" for _ in range(280)) + " }"
    return {
        "wide fragment": "{ ...A } fragment A on Query { " + "__typename " * 1980 + "}",
        "same field 490 times": "{ " + "plans { uid } " * 490 + "}",
        "same nested field 280 times": same,
        "fragment pairs": "{ "
        + " ".join(f"...G{i}" for i in range(150))
        + " } "
        + " ".join(f"fragment G{i} on Query {{ __typename }}" for i in range(150)),
        "300 operations": " ".join(f"query Q{i} {{ ...A }}" for i in range(300))
        + " fragment A on Query { __typename }",
        "operations over a chain": " ".join(f"query Q{i} {{ ...A0 }}" for i in range(150))
        + " "
        + " ".join(f"fragment A{i} on Query {{ ...A{i + 1} }}" for i in range(99))
        + " fragment A99 on Query { __typename }",
        "nested to the parser's limit": "{" + "plans{" * 190 + "uid" + "}" * 190 + "}",
        "a 250 KB comment (over the query length)": "{ __typename }\n#" + "x" * 250_000,
        "a 64 K comment": "{ __typename }\n#" + "x" * 65_000,
        "a 64 K string": '{ plan(uid: "' + "x" * 65_000 + '") { uid } }',
        "10,000 escapes": '{ plan(uid: "' + "\\u0041" * 10_000 + '") { uid } }',
    }


SHAPES = _within_body_limit()


@pytest.mark.parametrize("shape", sorted(SHAPES))
async def test_no_shape_within_the_body_limit_keeps_the_server_busy(
    shape: str, client: httpx.AsyncClient
) -> None:
    """Each is answered (refused or not) within 100 ms of server time, parse included."""
    best = float("inf")
    for _ in range(3):
        # A new comment each time: the parser and validation caches never help.
        query = f"# {secrets.token_hex(8)}\n" + SHAPES[shape]
        assert len(json.dumps({"query": query})) < 262_144
        with untraced():  # the 100 ms bound is the engine's, not coverage's
            response = await client.post("/graphql", json={"query": query}, headers=ADMIN)
        assert response.status_code == 200
        body = response.json()
        codes = {e["extensions"]["code"] for e in body.get("errors", [])}
        assert "INTERNAL_SERVER_ERROR" not in codes
        best = min(best, server_ms(response))
        if best < 100:
            break
    assert best < 100, f"{shape}: {best:.1f} ms"
