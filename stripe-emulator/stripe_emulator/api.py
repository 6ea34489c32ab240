"""The ``/v1`` HTTP pipeline: what happens to one API request, in Stripe's order.

1. log it (method, path, idempotency key) for the request counters;
2. injected fault (``when="before"``) — answered without executing;
3. ``Authorization`` (Bearer or Basic) must carry a test-mode secret key → else 401;
4. ``Stripe-Version`` checked (one Stripe published and the emulator renders) and echoed;
5. form body / query string decoded; ``expand[]`` set aside;
6. ``Idempotency-Key`` on POST: replay the saved response, or 400 on different parameters;
7. the route's handler runs under the store lock (atomic with respect to other requests);
8. ``expand[]`` applied to the response; the result saved for the idempotency key;
9. injected fault (``when="after"``) replaces the response that was computed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import socket
import struct
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from stripe_emulator import expand, reference
from stripe_emulator.errors import (
    StripeError,
    api_error,
    authentication,
    rate_limited,
    unrecognized_url,
)
from stripe_emulator.faults import Fault
from stripe_emulator.forms import Params, decode, parse_pairs
from stripe_emulator.idempotency import IdempotencyCache, SavedResponse
from stripe_emulator.ids import request_id
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON, snapshot
from stripe_emulator.urls import root_url

if TYPE_CHECKING:
    from stripe_emulator.emulator import Emulator

logger = logging.getLogger("stripe_emulator")

_KEY = re.compile(r"^(sk|rk)_test_[A-Za-z0-9_]+$")
RAW_SEND = "stripe_emulator.raw_send"


def _json_response(status: int, body: JSON | bytes, headers: dict[str, str]) -> Response:
    content = body if isinstance(body, bytes) else json.dumps(body, indent=2).encode()
    return Response(content, status_code=status, headers=headers, media_type="application/json")


def _api_key(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    key = ""
    if scheme.lower() == "bearer":
        key = credentials.strip()
    elif scheme.lower() == "basic":
        try:
            key = base64.b64decode(credentials).decode().split(":", 1)[0]
        except ValueError:
            key = ""
    if not key:
        raise authentication(
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
            "YOUR_SECRET_KEY')."
        )
    if not _KEY.match(key):
        masked = key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if len(key) > 12 else key
        raise authentication(f"Invalid API Key provided: {masked}")
    return key


async def handle(emulator: Emulator, request: Request) -> Response:
    method = request.method.upper()
    path = "/v1/" + request.path_params["rest"]
    idem_key = request.headers.get("idempotency-key") or None
    entry = emulator.requests.record(method, path, idem_key)
    req_id = request_id()
    version = request.headers.get("stripe-version") or emulator.state.config.api_version
    headers = {"Request-Id": req_id, "Stripe-Version": version}
    if idem_key:
        headers["Idempotency-Key"] = idem_key

    fault = emulator.faults.take(method, path)
    if fault is not None:
        entry.fault = fault.kind
    if fault is not None and fault.when == "before":
        response = await _fault(fault, request, headers, executed=None)
        entry.status = response.status_code
        return response

    body = await request.body()
    status, payload, extra_headers, replayed = _execute(
        emulator, request, method, path, body, idem_key, req_id, version
    )
    headers.update(extra_headers)
    entry.replayed = replayed
    response = _json_response(status, payload, headers)
    if fault is not None:
        response = await _fault(fault, request, headers, executed=response)
    entry.status = response.status_code
    return response


def _execute(
    emulator: Emulator,
    request: Request,
    method: str,
    path: str,
    body: bytes,
    idem_key: str | None,
    req_id: str,
    version: str,
) -> tuple[int, JSON | bytes, dict[str, str], bool]:
    cache: IdempotencyCache = emulator.idempotency
    try:
        api_key = _api_key(request)
        if version != emulator.state.config.api_version:
            # Stripe's answer to a version it never published; the emulator's own to one it
            # does not render.
            reference.api_version(version, param=None)
        raw = body.decode() if method == "POST" else request.url.query
        if method == "DELETE" and body:
            raw = body.decode()
        pairs = parse_pairs(raw)
        fingerprint = cache.fingerprint(method, path, pairs)
        if method == "POST" and idem_key:
            saved = cache.lookup(api_key, idem_key, fingerprint)
            if saved is not None:
                return (
                    saved.status,
                    saved.body,
                    {"Idempotent-Replayed": "true", "Original-Request": saved.request_id},
                    True,
                )
        data = decode(pairs)
        expansions = _expansions(data)
        resolved = emulator.router.resolve(method, path)
        if resolved is None:
            raise unrecognized_url(method, path)
        route, path_params = resolved
        ctx = Ctx(
            emulator.state,
            request_id=req_id,
            idempotency_key=idem_key if method == "POST" else None,
            base_url=root_url(request),
        )
        with emulator.state.lock:
            store = emulator.state.store
            savepoint = store.savepoint() if method != "GET" else None
            try:
                result = snapshot(route.call(ctx, Params(data), path_params))
                expand.apply(ctx, result, expansions)
                status, payload, extra = 200, json.dumps(result, indent=2).encode(), {}
            except StripeError as error:
                # A failed write changes nothing, except a card decline: Stripe records the
                # failed charge and the PaymentIntent's last_payment_error before answering 402.
                if savepoint is not None and error.status != 402:
                    store.rollback(savepoint)
                status, payload = error.status, json.dumps(error.envelope(), indent=2).encode()
                extra = dict(error.headers)
            except Exception:
                logger.exception("emulator handler failed method=%s path=%s", method, path)
                if savepoint is not None:
                    store.rollback(savepoint)
                failure = api_error(500, "An unexpected error occurred in the Stripe emulator.")
                status, payload, extra = 500, json.dumps(failure.envelope()).encode(), {}
        if method == "POST" and idem_key:
            cache.save(api_key, idem_key, SavedResponse(fingerprint, status, payload, req_id))
        return status, payload, extra, False
    except StripeError as error:
        # Failed before executing (auth, version, idempotency mismatch, unknown URL): not saved.
        return error.status, error.envelope(), dict(error.headers), False


def _expansions(data: dict[str, Any]) -> list[str]:
    raw = data.pop("expand", [])
    values = raw if isinstance(raw, list) else [raw]
    return [str(v) for v in values if isinstance(v, str) and v]


async def _fault(
    fault: Fault, request: Request, headers: dict[str, str], executed: Response | None
) -> Response:
    if fault.should_retry is not None:
        headers = {**headers, "Stripe-Should-Retry": "true" if fault.should_retry else "false"}
    if fault.kind in ("500", "503"):
        error = api_error(int(fault.kind), "An error occurred with our connection to Stripe.")
        return _json_response(error.status, error.envelope(), headers)
    if fault.kind == "409":
        conflict = StripeError(
            409,
            "idempotency_error",
            "There is currently another in-progress request using this Idempotent Key (that "
            "probably means you submitted twice, and the other request is still going "
            "through). Please retry this request later.",
        )
        return _json_response(409, conflict.envelope(), headers)
    if fault.kind == "429":
        error = rate_limited(fault.rate_limited_reason)
        return _json_response(429, error.envelope(), {**headers, **error.headers})
    if fault.kind == "timeout":
        await request.body()
        deadline = time.monotonic() + fault.hang_seconds
        while time.monotonic() < deadline:
            if await request.is_disconnected():
                break
            await asyncio.sleep(0.02)
        if executed is not None:
            return executed
        error = api_error(500, "Request timed out (emulated).")
        return _json_response(500, error.envelope(), headers)
    # "reset": drop the TCP connection without a response.
    if await _abort_connection(request):
        return Response(status_code=500)
    raise ConnectionResetError("emulated connection reset")


async def _abort_connection(request: Request) -> bool:
    """Abort the client's TCP connection (RST) when the server exposes its transport."""
    raw_send = request.scope.get(RAW_SEND)
    transport = getattr(getattr(raw_send, "__self__", None), "transport", None)
    if transport is None:
        return False
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # SO_LINGER 0 turns the close into a reset, like a load balancer dropping the request.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    await asyncio.sleep(0)  # let the server notice the disconnect before anything is sent
    return True
