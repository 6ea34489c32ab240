"""``POST /v1/usage``: a product backend reports a batch of usage events (plain Starlette, no
GraphQL). The recording itself is ``services.usage.record_usage``; this module owns the HTTP
contract:

* **credential** — ``Authorization: Bearer <key>`` equal to one of ``USAGE_API_KEYS``
  (compared in constant time, every key), or a bearer JWT (verified as for GraphQL) with the
  ``usage`` or admin role: either may report for any organization. Outside production with
  ``AUTH_DEV_HEADERS`` on, the development headers stand in for a token (``x-roles: usage``).
  None → 401; a rejected one → 401; a token without the role → 403.
* **request** — ``application/json`` (else 415), within ``HTTP_MAX_BODY_BYTES`` (else 413, by
  the middleware), through the same JSON checks as GraphQL: nesting, container count and
  UTF-8 (400 ``BAD_REQUEST``), lone surrogates in any string (400 ``BAD_USER_INPUT``).
* **batch** — ``{"events": [...]}`` with 1-1,000 objects of ``id``, ``organization_id``,
  ``feature``, ``quantity`` and an optional ``timestamp`` (RFC 3339, or unix seconds). A body
  of another shape — not an object, other keys, ``events`` not a list, too many events, an
  event that is not an object or holds other keys — is 400 and nothing is recorded.
* **answer** — 200 ``{"results": [{"id", "status", "reason"?, "message"?}], "accepted",
  "duplicates", "rejected"}`` in input order; 503 (``Retry-After``) while the store is not
  ready or does not answer — retrying the same batch is safe: each id counts once.

Errors are ``{"errors": [{"message", "extensions": {"code"}}]}``, as everywhere else.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from cross_web import HTTPException
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from revenue_engine import store_timeouts
from revenue_engine.auth import Authenticator, AuthError, Principal
from revenue_engine.db import StoreError
from revenue_engine.errors import (
    STORE_RETRY_AFTER_SECONDS,
    STORE_UNAVAILABLE_MESSAGE,
    ServiceUnavailable,
)
from revenue_engine.json_input import find_bad_text, may_decode_to_bad_text
from revenue_engine.request_checks import decode_request_json
from revenue_engine.services.usage import MAX_BATCH, record_usage
from revenue_engine.settings import Settings

log = logging.getLogger(__name__)

PATH = "/v1/usage"
#: The role a bearer token needs (besides the admin role) to report usage.
USAGE_ROLE = "usage"
_EVENT_KEYS = frozenset({"id", "organization_id", "feature", "quantity", "timestamp"})


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return JSONResponse(body, status_code=status, headers=headers)


class _Refused(Exception):
    def __init__(self, response: JSONResponse) -> None:
        self.response = response


def _malformed(message: str) -> _Refused:
    return _Refused(_error(400, "BAD_REQUEST", message))


class UsageEndpoint:
    """The route (see the module docstring)."""

    def __init__(self, settings: Settings, authenticator: Authenticator) -> None:
        self.settings = settings
        self.authenticator = authenticator
        self._keys = [k.get_secret_value().encode() for k in settings.usage_api_keys]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            with store_timeouts.request_scope():
                response = await self._respond(request)
        except _Refused as refused:
            response = refused.response
        except ClientDisconnect:
            return  # the client went away mid-body: nothing was recorded, no one to answer
        except (StoreError, TimeoutError, ServiceUnavailable) as exc:
            log.warning(
                "usage batch unavailable request_id=%s error=%s",
                _request_id(scope),
                type(exc).__name__,
            )
            message = exc.message if isinstance(exc, ServiceUnavailable) else None
            response = _error(
                503,
                "UNAVAILABLE",
                message or STORE_UNAVAILABLE_MESSAGE,
                {"retry-after": str(round(STORE_RETRY_AFTER_SECONDS))},
            )
        await response(scope, receive, send)

    async def _respond(self, request: Request) -> JSONResponse:
        if request.method != "POST":
            return _error(405, "METHOD_NOT_ALLOWED", "method not allowed", {"allow": "POST"})
        await self._authorize(request.headers)
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            return _error(415, "UNSUPPORTED_MEDIA_TYPE", "expected application/json")
        events = _events(await request.body())
        if not _ready(request):
            raise ServiceUnavailable("the engine is starting; retry")
        batch = await record_usage(events, grace_seconds=self.settings.usage_late_grace_seconds)
        return JSONResponse(batch.as_json())

    async def _authorize(self, headers: Headers) -> None:
        authorization = headers.get("authorization")
        if authorization and self._is_service_key(authorization):
            return
        try:
            principal = await self.authenticator.authenticate(headers)
        except AuthError as exc:
            extra = {"www-authenticate": "Bearer"} if exc.status_code == 401 else {}
            if exc.retry_after is not None:
                extra["retry-after"] = str(round(exc.retry_after))
            raise _Refused(_error(exc.status_code, exc.code, str(exc), extra)) from None
        if principal is None:
            raise _Refused(
                _error(
                    401,
                    "UNAUTHENTICATED",
                    "a usage API key or a bearer token with the usage role is required",
                    {"www-authenticate": "Bearer"},
                )
            )
        if not self._may_report(principal):
            raise _Refused(_error(403, "FORBIDDEN", "reporting usage needs the usage role"))

    def _is_service_key(self, authorization: str) -> bool:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not self._keys:
            return False
        presented = token.strip().encode("latin-1", "replace")
        # Every key is compared, in constant time: how long it takes tells nothing.
        matches = [hmac.compare_digest(presented, key) for key in self._keys]
        return any(matches)

    def _may_report(self, principal: Principal) -> bool:
        return principal.has_role(USAGE_ROLE) or principal.has_role(self.settings.auth_admin_role)


def _events(body: bytes) -> list[dict[str, Any]]:
    """The batch's events, or ``_Refused`` (400) when the body is not a well-formed batch."""
    try:
        value = decode_request_json(body)
    except HTTPException as exc:
        raise _malformed(exc.reason) from None
    except json.JSONDecodeError:
        raise _malformed("the body is not JSON") from None
    if may_decode_to_bad_text(body):
        bad = find_bad_text(value)
        if bad is not None:
            raise _Refused(
                _error(
                    400,
                    "BAD_USER_INPUT",
                    f"the body holds text that is not valid Unicode (a lone surrogate) at "
                    f"{bad.describe()}",
                )
            )
    if not isinstance(value, dict):
        raise _malformed('the body must be an object {"events": [...]}')
    extra = sorted(set(value) - {"events"})
    if extra:
        raise _malformed(f"unknown keys in the body: {', '.join(extra)[:200]}")
    events = value.get("events")
    if not isinstance(events, list):
        raise _malformed('"events" must be a list of events')
    if not 1 <= len(events) <= MAX_BATCH:
        raise _malformed(f'"events" must hold 1 to {MAX_BATCH:,} events, not {len(events):,}')
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise _malformed(f"events[{index}] is not an object")
        if not event.keys() <= _EVENT_KEYS:
            unknown = ", ".join(sorted(set(event) - _EVENT_KEYS))[:200]
            raise _malformed(f"events[{index}] holds unknown keys: {unknown}")
    return events


def _request_id(scope: Scope) -> str:
    state: dict[str, Any] = scope.get("state", {})
    return str(state.get("request_id", "-"))


def _ready(request: Request) -> bool:
    runtime = getattr(request.app.state, "runtime", None)
    ready = getattr(runtime, "ready", None)
    return bool(ready is not None and ready.is_set())
