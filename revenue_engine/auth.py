"""Who is calling: a ``Principal`` built from a verified bearer JWT (or, in development only,
from the ``x-organization-id`` / ``x-customer-email`` headers).

Algorithms are fixed by configuration, never taken from the token: HS256 with
``AUTH_JWT_SECRET``, RS256 with keys from ``AUTH_JWKS_URL``. ``exp``, ``aud`` and (when set)
``iss`` are required and checked. A token that fails any check raises ``InvalidToken``
(HTTP 401); a valid token without the organization claim raises ``MissingOrganization`` (403).
When the keys cannot be fetched (the JWKS endpoint is unreachable, drops the connection, is
slow past ``AUTH_JWKS_TIMEOUT_SECONDS``, answers an error, or answers something that is not a
JWK set with a signing key) the token cannot be judged: ``KeysUnavailable`` (503,
``UNAVAILABLE``), so clients retry instead of signing in again. A token signed by a key the
set does not list is the token's fault (401).

A verified token is remembered (``TokenCache``) until it expires, and for at most a minute: an
SPA sends the same token with every request, and verifying it again costs more than the rest of
a small query. Only tokens that passed every check are remembered.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt

from revenue_engine.clock import unix_now
from revenue_engine.settings import Settings

log = logging.getLogger(__name__)

_ORG_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: every tenant query filters by ``organization_id``."""

    organization_id: str
    email: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    subject: str | None = None

    def has_role(self, role: str) -> bool:
        return role in self.roles


class AuthError(Exception):
    """A credential was presented and rejected."""

    status_code = 401
    code = "UNAUTHENTICATED"
    #: Seconds a client should wait before retrying (answers that are not about the credential).
    retry_after: float | None = None


class InvalidToken(AuthError):
    pass


class KeysUnavailable(AuthError):
    """The signing keys could not be fetched: the token was not judged."""

    status_code = 503
    code = "UNAVAILABLE"
    retry_after = 5.0


class MissingOrganization(AuthError):
    status_code = 403
    code = "FORBIDDEN"


LEEWAY_SECONDS = 30


class _KeySetUnusable(jwt.PyJWKClientConnectionError):
    """Fetching the JWK set failed, or what came back holds no usable signing key."""


class _KeyClient(jwt.PyJWKClient):
    """``PyJWKClient`` whose every failure while fetching the key set is ``_KeySetUnusable``
    (PyJWT wraps only some: a connection reset while reading the body escapes as ``OSError``,
    and JSON that is not a key set raises the same errors as a bad token). Afterwards the
    only PyJWT errors left are the token's: malformed, or a ``kid`` the set does not list."""

    def fetch_data(self) -> Any:
        try:
            data = super().fetch_data()
            keys = jwt.PyJWKSet.from_dict(data).keys  # PyJWKSetError: no usable key
            if not any(k.key_id and k.public_key_use in ("sig", None) for k in keys):
                raise jwt.PyJWKClientError("the JWK set holds no signing key with a kid")
        except (OSError, ValueError, jwt.PyJWKClientError, jwt.PyJWKSetError) as exc:
            if self.jwk_set_cache is not None:
                self.jwk_set_cache.put(None)  # never serve a set we refused from the cache
            raise _KeySetUnusable(f"{type(exc).__name__}: {exc}") from exc
        return data


class TokenCache:
    """Principals of recently verified tokens, each until ``min(exp, verified + max_age)``;
    least recently used first out when ``size`` is reached."""

    def __init__(self, size: int = 4096, max_age: float = 60.0) -> None:
        self.size = size
        self.max_age = max_age
        self._entries: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def get(self, token: str, now: float | None = None) -> Principal | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        principal, until = entry
        if (unix_now() if now is None else now) >= until:
            del self._entries[token]
            return None
        self._entries.move_to_end(token)
        return principal

    def put(
        self, token: str, principal: Principal, expires: float, now: float | None = None
    ) -> None:
        now = unix_now() if now is None else now
        self._entries[token] = (principal, min(expires + LEEWAY_SECONDS, now + self.max_age))
        self._entries.move_to_end(token)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


class Authenticator:
    """Turns request headers into a ``Principal`` (or ``None`` for an anonymous caller)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._secret = (
            settings.auth_jwt_secret.get_secret_value() if settings.auth_jwt_secret else None
        )
        self._jwks = (
            _KeyClient(settings.auth_jwks_url, timeout=settings.auth_jwks_timeout_seconds)
            if settings.auth_jwks_url
            else None
        )
        self.verified = TokenCache()

    async def authenticate(self, headers: Mapping[str, str]) -> Principal | None:
        authorization = headers.get("authorization")
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise InvalidToken("expected 'Authorization: Bearer <token>'")
            return await self._from_token(token.strip())
        if self._settings.dev_headers_enabled:
            org = headers.get("x-organization-id")
            if org:
                if not _ORG_ID.match(org):
                    raise InvalidToken("invalid x-organization-id")
                roles = frozenset(
                    r.strip() for r in headers.get("x-roles", "").split(",") if r.strip()
                )
                return Principal(
                    organization_id=org, email=headers.get("x-customer-email"), roles=roles
                )
        return None

    async def _key_for(self, token: str) -> tuple[Any, str]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc
        alg = header.get("alg")
        if alg == "HS256" and self._secret is not None:
            return self._secret, "HS256"
        if alg == "RS256" and self._jwks is not None:
            jwks = self._jwks
            try:
                signing_key = await asyncio.to_thread(jwks.get_signing_key_from_jwt, token)
            except (jwt.PyJWKClientConnectionError, OSError) as exc:
                # Unreachable, reset, timed out, an HTTP error, not a key set: not the token's
                # fault (see ``_KeyClient``).
                cause = exc.__cause__ or exc
                log.warning("jwks keys unavailable error=%s", type(cause).__name__)
                raise KeysUnavailable("the signing keys are unavailable; retry") from exc
            except jwt.PyJWTError as exc:
                raise InvalidToken("unknown signing key") from exc
            return signing_key.key, "RS256"
        # alg "none", HS/RS confusion, or an algorithm we are not configured for.
        raise InvalidToken("token algorithm not accepted")

    async def _from_token(self, token: str) -> Principal:
        cached = self.verified.get(token)
        if cached is not None:
            return cached
        principal, expires = await self._verify(token)
        self.verified.put(token, principal, expires)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        key, algorithm = await self._key_for(token)
        settings = self._settings
        required = ["exp", "aud"] + (["iss"] if settings.auth_issuer else [])
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=settings.auth_audience,
                issuer=settings.auth_issuer,
                options={"require": required},
                leeway=LEEWAY_SECONDS,
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken("invalid token") from exc
        org = claims.get(settings.auth_org_claim)
        if not isinstance(org, str) or not _ORG_ID.match(org):
            raise MissingOrganization(f"token has no valid {settings.auth_org_claim!r} claim")
        raw_roles = claims.get(settings.auth_roles_claim) or []
        roles = (
            frozenset(r for r in raw_roles if isinstance(r, str))
            if isinstance(raw_roles, list)
            else frozenset()
        )
        email = claims.get("email")
        principal = Principal(
            organization_id=org,
            email=email if isinstance(email, str) else None,
            roles=roles,
            subject=claims.get("sub") if isinstance(claims.get("sub"), str) else None,
        )
        return principal, float(claims["exp"])


def issue_token(
    settings: Settings,
    organization_id: str,
    *,
    email: str | None = None,
    roles: list[str] | None = None,
    ttl_seconds: int = 3600,
) -> str:
    """Sign an HS256 token with ``AUTH_JWT_SECRET`` (development and tests; the CLI's ``token``)."""
    if settings.auth_jwt_secret is None:
        raise ValueError("AUTH_JWT_SECRET is not set")
    now = int(unix_now())
    claims: dict[str, Any] = {
        "sub": email or organization_id,
        settings.auth_org_claim: organization_id,
        settings.auth_roles_claim: roles or [],
        "aud": settings.auth_audience,
        "iat": now,
        "exp": now + ttl_seconds,
    }
    if email:
        claims["email"] = email
    if settings.auth_issuer:
        claims["iss"] = settings.auth_issuer
    return jwt.encode(claims, settings.auth_jwt_secret.get_secret_value(), algorithm="HS256")
