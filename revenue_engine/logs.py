"""Structured logging: one ``key=value`` line per record, UTC timestamps, secrets scrubbed."""

from __future__ import annotations

import logging
import re
import time

# (pattern, replacement): Stripe keys, webhook secrets, JWTs, bearer tokens, URI credentials.
_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(?:sk|rk|pk)_(?:test|live)_[A-Za-z0-9]+"), "***"),
    (re.compile(r"\bwhsec_[A-Za-z0-9]+"), "***"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "***"),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1***"),
    (re.compile(r"(://[^:/@\s]+:)[^@\s]+(@)"), r"\1***\2"),
)


def scrub(text: str) -> str:
    """``text`` with anything that looks like a secret replaced by ``***``."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _gmtime(seconds: float | None) -> time.struct_time:
    return time.gmtime(seconds)


class KeyValueFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(
            fmt="ts=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s",
            datefmt="%Y-%m-%dT%H:%M:%SZ",
        )
        self.converter = _gmtime

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def configure_logging(level: str = "INFO") -> None:
    """Route the engine's and uvicorn's records through the scrubbing formatter."""
    handler = logging.StreamHandler()
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
