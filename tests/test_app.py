"""The HTTP surface through the real ASGI app: health, readiness, GraphiQL, request ids."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from revenue_engine.settings import Settings
from tests.conftest import make_settings
from tests.wire import WireServer, free_port


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_pings_the_store(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["mongo"]) == ("ok", "ok")
    # In process nothing serves the mounted emulator over HTTP: Stripe is reported (once the
    # background probe has run), not required.
    assert body["stripe"] in {"unchecked", "unreachable"}


async def test_readyz_is_503_within_the_timeout_when_mongo_is_unreachable(
    client_for: Callable[[Settings], Any],
) -> None:
    # Nothing listens on this port: startup must not hang, readiness must say so quickly.
    settings = make_settings(
        mongodb_uri=f"mongodb://127.0.0.1:{free_port()}/", mongodb_timeout_ms=300
    )
    started = time.monotonic()
    client: httpx.AsyncClient = await client_for(settings)
    assert time.monotonic() - started < 3
    health = await client.get("/healthz")
    assert health.status_code == 200
    started = time.monotonic()
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert time.monotonic() - started < 2


class Relay:
    """A TCP relay in front of the wire server: ``cut()`` makes the database go away for the
    engine (the listener closes, open connections stop answering) without stopping the server
    other tests use."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.cut_off = asyncio.Event()
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers += [writer, up_writer]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await source.read(65536):
                    if self.cut_off.is_set():
                        return  # swallowed: the request never gets an answer
                    sink.write(data)
                    await sink.drain()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        self.cut_off.set()
        if self.server is not None:
            self.server.close()

    async def close(self) -> None:
        self.cut()
        for writer in self.writers:
            writer.close()


@pytest.mark.wire
async def test_readyz_is_503_within_the_timeout_when_mongo_goes_away_after_ready(
    client_for: Callable[[Settings], Any], wire_server: WireServer | None
) -> None:
    if wire_server is None:
        pytest.skip("no MongoDB wire server")
    address = wire_server.uri.split("//", 1)[1].split("/", 1)[0].split(",")[0]
    host, _, port = address.rpartition(":")
    relay = Relay(host, int(port))
    try:
        relay_port = await relay.start()
        settings = make_settings(
            mongodb_uri=f"mongodb://127.0.0.1:{relay_port}/?directConnection=true",
            mongodb_database=f"t_{uuid.uuid4().hex[:12]}",
            mongodb_timeout_ms=500,
        )
        client: httpx.AsyncClient = await client_for(settings)
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert (ready.json()["status"], ready.json()["mongo"]) == ("ok", "ok")

        relay.cut()
        for _ in range(2):  # the open connection hangs, then new connections are refused
            started = time.monotonic()
            gone = await client.get("/readyz")
            elapsed = time.monotonic() - started
            assert gone.status_code == 503
            assert gone.json() == {"status": "unavailable", "mongo": "unreachable"}
            assert elapsed < 0.5 + 1.0, elapsed
        assert (await client.get("/healthz")).status_code == 200
    finally:
        await relay.close()


async def test_graphiql_is_served_in_development(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_graphiql_loads_nothing_from_elsewhere(client: httpx.AsyncClient) -> None:
    """Every script and style of the IDE is served here, and is the file its hash names."""
    page = (await client.get("/graphql", headers={"accept": "text/html"})).text
    assert "http://" not in page
    assert "https://" not in page
    assets = re.findall(r'(?:src|href)="(/graphiql/[^"]+)"\s+integrity="sha384-([^"]+)"', page)
    assert len(assets) == 6
    for path, digest in assets:
        response = await client.get(path)
        assert response.status_code == 200, path
        assert base64.b64encode(hashlib.sha384(response.content).digest()).decode() == digest


async def test_graphiql_can_be_switched_off(client_for: Callable[[Settings], Any]) -> None:
    client: httpx.AsyncClient = await client_for(make_settings(graphiql=False))
    response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 404
    assert "graphiql" not in response.text.lower()
    assert (await client.get("/graphiql/graphiql.min.js")).status_code == 404


async def test_request_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/healthz", headers={"x-request-id": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    made = await client.get("/healthz", headers={"x-request-id": "bad id with spaces"})
    assert made.headers["x-request-id"] != "bad id with spaces"
    assert len(made.headers["x-request-id"]) == 32


async def test_graphql_rejects_other_methods(client: httpx.AsyncClient) -> None:
    response = await client.put("/graphql", json={"query": "{ plans { uid } }"})
    assert response.status_code == 405


# --- JSON depth and encoding on /graphql (issue 11, break 4) ------------------------------

PLANS = b'{"query": "{ plans { uid } }", '


def nested(levels: int) -> bytes:
    """A JSON value ``levels`` arrays deep."""
    return b"[" * levels + b"]" * levels


async def post_json(client: httpx.AsyncClient, body: bytes) -> httpx.Response:
    return await client.post("/graphql", content=body, headers={"content-type": "application/json"})


def assert_bad_request(response: httpx.Response, needle: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert "data" not in body
    [error] = body["errors"]
    assert error["extensions"] == {"code": "BAD_REQUEST"}
    assert needle in error["message"]


@pytest.mark.parametrize(
    "body",
    [
        PLANS + b'"variables": {"a": ' + nested(100_000) + b"}}",
        PLANS + b'"variables": ' + b'{"a":' * 40_000 + b"1" + b"}" * 40_001,
        PLANS + b'"extensions": {"x": ' + nested(100_000) + b"}}",
        # Unclosed: a parser would recurse 200,000 levels before finding the end.
        PLANS + b'"variables": ' + b"[" * 200_000,
    ],
    ids=["variables", "objects", "extensions", "unclosed"],
)
async def test_json_nested_too_deep_is_400(client: httpx.AsyncClient, body: bytes) -> None:
    assert len(body) < 256 * 1024  # within the body limit: the depth is what is refused
    assert_bad_request(await post_json(client, body), "nested more than 64 levels deep")
    assert (await client.get("/healthz")).status_code == 200


async def test_json_depth_limit_is_64_levels(client: httpx.AsyncClient) -> None:
    # The body object is level 1, so extensions may nest 63 more.
    at_limit = await post_json(client, PLANS + b'"extensions": {"x": ' + nested(62) + b"}}")
    assert at_limit.status_code == 200
    assert at_limit.json()["data"]["plans"]
    over = await post_json(client, PLANS + b'"extensions": {"x": ' + nested(63) + b"}}")
    assert_bad_request(over, "nested more than 64 levels deep")


async def test_brackets_inside_strings_do_not_count(client: httpx.AsyncClient) -> None:
    text = '[{"\\"' * 5_000
    body = json.dumps({"query": "{ plans { uid } }", "extensions": {"x": text}}).encode()
    response = await post_json(client, body)
    assert response.status_code == 200
    assert response.json()["data"]["plans"]


async def test_get_variables_nested_too_deep_are_400(client: httpx.AsyncClient) -> None:
    params = {"query": "query($a: Int) { plans { uid } }", "variables": nested(1_000).decode()}
    assert_bad_request(await client.get("/graphql", params=params), "nested more than 64")


@pytest.mark.parametrize(
    "body",
    [PLANS + b'"variables": {"a": "\xff"}}', PLANS + b'"variables": {"a": "\xed\xa0\x80"}}'],
    ids=["invalid byte", "encoded surrogate"],
)
async def test_a_body_that_is_not_utf8_is_400(client: httpx.AsyncClient, body: bytes) -> None:
    assert_bad_request(await post_json(client, body), "not UTF-8")


async def test_a_number_too_long_for_python_in_variables_is_400(client: httpx.AsyncClient) -> None:
    # json refuses to convert an integer of over 4,300 digits (a ValueError, not a JSON error).
    body = b'{"query": "query($n: Int) { plans { uid } }", "variables": {"n": ' + b"9" * 5_000
    assert_bad_request(await post_json(client, body + b"}}"), "number in the request JSON")
    assert (await client.get("/healthz")).status_code == 200


async def test_an_integer_literal_too_long_for_python_is_a_validation_error(
    client: httpx.AsyncClient,
) -> None:
    query = "{ customers(first: %s) { nodes { id } } }" % ("9" * 5_000)
    body = json.dumps({"query": query}).encode()
    response = await client.post(
        "/graphql",
        content=body,
        headers={
            "content-type": "application/json",
            "x-organization-id": "org_a",
            "x-roles": "admin",
        },
    )
    assert response.status_code == 200
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}
    assert "9999" not in error["message"]


PAYMENT = "mutation($i: PaymentIntentInput!) { createPaymentIntent(input: $i) { __typename } }"


def payment_with_metadata(entries: int) -> bytes:
    metadata = [{"key": str(i), "value": ""} for i in range(entries)]
    variables = {"i": {"amount": 100, "currency": "usd", "metadata": metadata}}
    return json.dumps({"query": PAYMENT, "variables": variables}).encode()


async def test_variables_holding_too_many_values_are_refused_before_coercion(
    client: httpx.AsyncClient,
) -> None:
    # 8,000 metadata entries (about 200 KiB, within the body limit) took 350-450 ms of the
    # event loop to coerce: over 4,001 objects, refused before the body is even decoded.
    headers = {"content-type": "application/json", "x-organization-id": "org_a"}
    body = payment_with_metadata(8_000)
    assert len(body) < 256 * 1024
    response = await client.post("/graphql", content=body, headers=headers)
    assert_bad_request(response, "holds more than 4,001 objects and arrays")
    # 1,000 entries are few enough objects, but 3,000 values: refused before coercion.
    response = await client.post("/graphql", content=payment_with_metadata(1_000), headers=headers)
    assert response.status_code == 200
    assert response.json() == {
        "data": None,
        "errors": [
            {
                "message": "The variables hold more than 2,000 values (objects, lists and scalars).",
                "extensions": {"code": "BAD_USER_INPUT"},
            }
        ],
    }
    # Within the limit the mutation runs (and answers its own typed error: too much metadata).
    within = await client.post("/graphql", content=payment_with_metadata(600), headers=headers)
    assert within.json()["data"]["createPaymentIntent"]["__typename"] == "ValidationError"


@pytest.mark.parametrize("body", [b"null", b"1", b"1.5", b"true", b'"x"', b"\x00" * 257])
async def test_a_body_that_is_not_a_json_object_is_400(
    client: httpx.AsyncClient, body: bytes
) -> None:
    response = await post_json(client, body)
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_REQUEST"}


async def test_get_variables_that_are_not_an_object_are_400(client: httpx.AsyncClient) -> None:
    params = {"query": "query($a: Int) { plans { uid } }", "variables": "5"}
    response = await client.get("/graphql", params=params)
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"] == {"code": "BAD_REQUEST"}


async def test_a_body_of_many_empty_arrays_is_refused_before_decoding(
    client: httpx.AsyncClient,
) -> None:
    # 87,000 empty arrays and a lone surrogate (262 KB): decoding and walking them held the
    # event loop 200-375 ms.
    body = b'{"query": "{ __typename }", "variables": {"z": {"y": "\\ud800"}, "x": ['
    body += b",".join([b"[]"] * 87_000) + b"]}}"
    assert_bad_request(await post_json(client, body), "holds more than 4,001 objects and arrays")
