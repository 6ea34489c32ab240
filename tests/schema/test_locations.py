"""Error locations (``schema.locations``): the same lines and columns as graphql-core's scan,
without scanning the query text again for every error."""

from __future__ import annotations

import random
import re
import time

import httpx
from graphql import GraphQLError, Source, parse

from revenue_engine.schema.locations import locate
from tests.conftest import untraced

_NEWLINE = re.compile(r"\r\n|[\n\r]")


def scanned(body: str, position: int) -> tuple[int, int]:
    """graphql-core's own algorithm (``Source.get_location`` before ``install``)."""
    line, line_start = 1, 0
    for match in _NEWLINE.finditer(body):
        if match.start() >= position:
            break
        line_start = match.end()
        line += 1
    return line, position + 1 - line_start


def test_locations_match_graphql_cores_scan_on_random_texts() -> None:
    rng = random.Random(11)
    for _ in range(300):
        body = "".join(rng.choice(["a", " ", "\n", "\r", "\r\n", "{", "é"]) for _ in range(60))
        for position in range(len(body) + 1):
            found = locate(body, position)
            assert (found.line, found.column) == scanned(body, position), (body, position)


def test_graphql_core_errors_carry_the_same_locations() -> None:
    source = Source("{\n  a\r\n  b\r c }")
    assert source.get_location(9) == locate(source.body, 9)
    error = GraphQLError("x", parse(source).definitions[0])
    assert error.locations is not None
    assert (error.locations[0].line, error.locations[0].column) == (1, 1)


async def test_many_errors_after_many_lines_are_answered_fast(client: httpx.AsyncClient) -> None:
    # 60,000 newlines (not tokens: within both limits) before 900 unknown directives: a
    # hundred errors each scanned the whole text for its line, 1.6-3.4 s of the event loop.
    query = "\n" * 60_000 + "{ __typename" + " @x" * 900 + " }"
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        with untraced():  # the bound is the engine's, not coverage's
            response = await client.post("/graphql", json={"query": query})
        best = min(best, time.perf_counter() - started)
        body = response.json()
        assert body["errors"][0]["locations"] == [{"line": 60_001, "column": 14}]
        assert {e["extensions"]["code"] for e in body["errors"]} == {"GRAPHQL_VALIDATION_FAILED"}
    assert best < 0.1, f"answered in {best * 1000:.0f} ms"
