"""The webhook route's HTTP contract through the real ASGI app: signature checks (W8-W10),
limits (W11), bad bodies (W12), methods and content types (W13), configuration."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from revenue_engine.app import create_app
from revenue_engine.documents import WebhookEvent
from revenue_engine.settings import Settings
from tests.conftest import make_settings
from tests.stripe_events import (
    OTHER_SECRET,
    PATH,
    SECRET,
    body_of,
    event,
    post,
    signature,
    stripe_object,
    v1,
)

Start = Callable[[Settings], Any]


async def start(client_for: Start, *secrets: str, **overrides: Any) -> httpx.AsyncClient:
    settings = make_settings(stripe_webhook_secret=list(secrets or (SECRET,)), **overrides)
    client: httpx.AsyncClient = await client_for(settings)
    return client


def unhandled() -> dict[str, Any]:
    return event("balance.available", {"object": "balance", "available": []})


async def rows() -> int:
    return await WebhookEvent.find_all().count()


async def test_a_signed_event_is_recorded(client_for: Start) -> None:
    client = await start(client_for)
    payload = unhandled()
    response = await post(client, payload)
    assert response.status_code == 200
    assert response.json() == {"received": True, "id": payload["id"], "status": "ignored"}
    stored = await WebhookEvent.find_one({"event_id": payload["id"]})
    assert stored is not None
    assert stored.payload == body_of(payload).decode()


# --- W8: timestamps -----------------------------------------------------------------------


@pytest.mark.parametrize("offset", [-301, 3600, -86400, 301])
async def test_w8_timestamp_outside_the_window_is_refused(client_for: Start, offset: int) -> None:
    client = await start(client_for)
    response = await post(client, unhandled(), t=int(time.time()) + offset)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid request"}
    assert await rows() == 0


@pytest.mark.parametrize("offset", [-290, 0, 60])
async def test_w8_timestamp_inside_the_window_is_accepted(client_for: Start, offset: int) -> None:
    client = await start(client_for)
    response = await post(client, unhandled(), t=int(time.time()) + offset)
    assert response.status_code == 200


# --- W9: bad signatures -------------------------------------------------------------------


def _bad_deliveries() -> list[tuple[str, Callable[[bytes], tuple[bytes, str | None]]]]:
    def no_header(body: bytes) -> tuple[bytes, str | None]:
        return body, None

    def empty_header(body: bytes) -> tuple[bytes, str | None]:
        return body, ""

    def only_v0(body: bytes) -> tuple[bytes, str | None]:
        t = int(time.time())
        return body, f"t={t},v0={v1(body, SECRET, t)}"

    def wrong_secret(body: bytes) -> tuple[bytes, str | None]:
        return body, signature(body, "whsec_" + "00" * 16)

    def one_byte_changed(body: bytes) -> tuple[bytes, str | None]:
        header = signature(body)
        index = body.index(b"balance.available")
        return body[:index] + b"B" + body[index + 1 :], header

    def garbage(body: bytes) -> tuple[bytes, str | None]:
        return body, "t=abc,v1=zz"

    def no_timestamp(body: bytes) -> tuple[bytes, str | None]:
        return body, "v1=" + v1(body, SECRET, int(time.time()))

    return [
        ("no header", no_header),
        ("empty header", empty_header),
        ("only v0", only_v0),
        ("wrong secret", wrong_secret),
        ("body changed by one byte", one_byte_changed),
        ("garbage header", garbage),
        ("no timestamp", no_timestamp),
    ]


@pytest.mark.parametrize(("case", "tamper"), _bad_deliveries(), ids=lambda v: str(v))
async def test_w9_unverifiable_deliveries_are_refused_without_detail(
    client_for: Start, case: str, tamper: Callable[[bytes], tuple[bytes, str | None]]
) -> None:
    client = await start(client_for)
    body, header = tamper(body_of(unhandled()))
    headers = {"content-type": "application/json"}
    if header is not None:
        headers["stripe-signature"] = header
    response = await client.post(PATH, content=body, headers=headers)
    assert response.status_code == 400, case
    # The same generic answer whatever failed: no hint for someone probing the route.
    assert response.json() == {"error": "invalid request"}
    assert await rows() == 0


# --- W10: secret rotation -----------------------------------------------------------------


async def test_w10_either_of_two_secrets_is_accepted(client_for: Start) -> None:
    client = await start(client_for, OTHER_SECRET, SECRET)
    for secrets in ([SECRET], [OTHER_SECRET], [OTHER_SECRET, SECRET]):
        body = body_of(unhandled())
        t = int(time.time())
        header = f"t={t}," + ",".join(f"v1={v1(body, s, t)}" for s in secrets)
        response = await post(client, body, header=header)
        assert response.status_code == 200, secrets
    assert await rows() == 3


async def test_w10_two_signatures_verify_against_the_one_configured_secret(
    client_for: Start,
) -> None:
    client = await start(client_for, SECRET)
    body = body_of(unhandled())
    t = int(time.time())
    both = f"t={t},v1={v1(body, OTHER_SECRET, t)},v1={v1(body, SECRET, t)}"
    assert (await post(client, body, header=both)).status_code == 200
    retired = body_of(unhandled())
    response = await post(client, retired, header=signature(retired, OTHER_SECRET))
    assert response.status_code == 400


# --- W11: size limit ----------------------------------------------------------------------

FIVE_MIB = 5 * 1024 * 1024
CHUNK = 64 * 1024


async def test_w11_declared_length_over_the_limit_is_413(client_for: Start) -> None:
    client = await start(client_for)
    body = b'{"pad": "' + b"x" * FIVE_MIB + b'"}'
    response = await post(client, body)
    assert response.status_code == 413
    assert await rows() == 0


async def test_w11_chunked_body_without_length_is_cut_at_the_limit(client_for: Start) -> None:
    client = await start(client_for)
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(FIVE_MIB // CHUNK):
            sent += 1
            yield b"x" * CHUNK

    response = await client.post(
        PATH,
        content=chunks(),
        headers={"content-type": "application/json", "stripe-signature": "t=1,v1=00"},
    )
    assert response.status_code == 413
    assert "content-length" not in response.request.headers
    # Stopped reading just past 1 MiB: the rest of the 5 MiB was never pulled.
    assert sent <= 1024 * 1024 // CHUNK + 1
    assert await rows() == 0


async def test_w11_a_lying_content_length_does_not_lift_the_limit() -> None:
    app = create_app(make_settings(stripe_webhook_secret=[SECRET]))
    pulled = 0

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x" * CHUNK, "more_body": pulled < 80}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == 413
    assert pulled <= 1024 * 1024 // CHUNK + 1


async def test_w11_limit_is_configurable(client_for: Start) -> None:
    client = await start(client_for, webhook_max_body_bytes=2048)
    payload = event("balance.available", {"object": "balance", "pad": "x" * 4096})
    assert (await post(client, payload)).status_code == 413
    assert (await post(client, unhandled())).status_code == 200


# --- W12: bad bodies with a valid signature ------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": "evt_1", "object": "event", ',
        b"[]",
        b'{"object": "event", "type": "price.created"}',
        b'{"id": "evt_1", "object": "charge", "type": "x", "created": 1, "livemode": false}',
        b'{"id": "evt_1", "object": "event", "type": "x", "created": 1, "livemode": false}',
        b'{"id": "evt_1", "object": "event", "type": "x", "created": "1", "livemode": false,'
        b' "data": {"object": {}}}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"id": "evt_1", "object": "event", "data": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001,
    ],
    ids=[
        "truncated",
        "array",
        "no id",
        "not an event",
        "no data",
        "created as text",
        "nested too deep",
        "object nested too deep",
    ],
)
async def test_w12_malformed_event_with_a_valid_signature_is_400(
    client_for: Start, body: bytes
) -> None:
    client = await start(client_for)
    response = await post(client, body)
    assert response.status_code == 400
    assert "error" in response.json()
    assert await rows() == 0


async def test_w12_invalid_utf8_is_refused(client_for: Start) -> None:
    client = await start(client_for)
    body = b'{"id": "\xff\xfe"}'
    t = int(time.time())
    response = await post(client, body, header=f"t={t},v1={v1(body, SECRET, t)}")
    assert response.status_code == 400
    assert await rows() == 0


# --- W13: methods and content types -------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_w13_other_methods_are_405(client_for: Start, method: str) -> None:
    client = await start(client_for)
    response = await client.request(method, PATH)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""],
)
async def test_w13_non_json_content_types_are_415(client_for: Start, content_type: str) -> None:
    client = await start(client_for)
    response = await post(client, unhandled(), content_type=content_type)
    assert response.status_code == 415
    assert await rows() == 0


# --- configuration ------------------------------------------------------------------------


async def test_without_a_secret_every_delivery_is_refused(client_for: Start) -> None:
    # A deployment pointed at a Stripe (here: an API base) but given no signing secret. (The
    # embedded default registers its own endpoint with the built-in emulator instead.)
    client: httpx.AsyncClient = await client_for(
        make_settings(stripe_api_base="http://127.0.0.1:9")
    )
    response = await post(client, unhandled())
    assert response.status_code == 503
    assert response.json() == {"error": "webhooks are not configured"}
    assert await rows() == 0


async def test_the_path_is_configurable(client_for: Start) -> None:
    client = await start(client_for, stripe_webhook_path="/hooks/stripe-7f3a")
    assert (await post(client, unhandled(), path="/hooks/stripe-7f3a")).status_code == 200
    assert (await post(client, unhandled())).status_code == 404


@pytest.mark.parametrize(
    "path", ["/graphql", "/readyz", "webhooks", "/a b", "/x/../y", "/x?q=1", "/"]
)
def test_unsafe_paths_are_refused(path: str) -> None:
    with pytest.raises(ValidationError, match="STRIPE_WEBHOOK_PATH"):
        make_settings(stripe_webhook_path=path)


async def test_the_route_is_not_behind_the_auth_gate(client_for: Start) -> None:
    client = await start(client_for)
    body = body_of(unhandled())
    response = await client.post(
        PATH,
        content=body,
        headers={
            "content-type": "application/json",
            "stripe-signature": signature(body),
            "authorization": "Bearer not-a-token",
        },
    )
    assert response.status_code == 200


async def test_a_price_from_the_fixtures_is_parsed_as_stripe_sends_it(client_for: Start) -> None:
    client = await start(client_for)
    payload = event("price.created", stripe_object("price"))
    response = await post(client, payload)
    assert response.status_code == 200
    # Stripe's example price has no lookup key: not part of our catalog.
    assert response.json()["status"] == "ignored"
