"""The development signing secret: bearer tokens on ``make run`` with nothing configured.

In development (``ENVIRONMENT=development``, the default) with neither ``AUTH_JWT_SECRET`` nor
``AUTH_JWKS_URL`` set, ``revenue-engine serve`` and ``revenue-engine token`` share one random
HS256 secret kept in ``.dev-jwt-secret`` in the current directory: created on first use by
whichever runs first (mode 0600, git-ignored), read by the other, so a token ``token`` prints
is one ``serve`` accepts. Never in test or production settings, and never when a secret or a
JWKS is configured. The secret itself is never printed or logged.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from pydantic import SecretStr

from revenue_engine.settings import Environment, Settings

DEV_SECRET_FILE = Path(".dev-jwt-secret")
_MIN_LENGTH = 32


def wants_development_secret(settings: Settings) -> bool:
    """Development, and no signing configuration of its own."""
    return (
        settings.environment is Environment.DEVELOPMENT
        and settings.auth_jwt_secret is None
        and not settings.auth_jwks_url
    )


def with_development_secret(settings: Settings, path: Path = DEV_SECRET_FILE) -> Settings:
    """``settings`` with ``auth_jwt_secret`` from ``path`` (created if missing) when
    :func:`wants_development_secret`; otherwise ``settings`` unchanged."""
    if not wants_development_secret(settings):
        return settings
    return settings.model_copy(update={"auth_jwt_secret": SecretStr(read_or_create(path))})


def read_or_create(path: Path) -> str:
    """The secret in ``path``; a new random one written there first when it is missing or too
    short to sign with."""
    try:
        existing = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        existing = ""
    if len(existing) >= _MIN_LENGTH:
        return existing
    # Written to a private temporary file and then linked into place, so a server and a
    # `token` command starting at the same moment never read a half-written secret: the one
    # whose link loses reads the winner's.
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(secrets.token_urlsafe(48) + "\n")
        if existing:  # present but unusable: replace it
            os.replace(temporary, path)
        else:
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path.read_text(encoding="utf-8").strip()
