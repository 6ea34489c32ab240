"""Structured logging: one line per record — ``key=value`` text (``LOG_FORMAT=kv``) or a JSON
object (``LOG_FORMAT=json``) — with UTC timestamps and secrets scrubbed in either."""

from __future__ import annotations

import json
import logging
import re
import time

# (pattern, replacement): Stripe keys, webhook secrets, JWTs, bearer tokens, URI credentials,
# and values of password / secret / token / api key fields.
_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(?:sk|rk|pk)_(?:test|live)_[A-Za-z0-9]+"), "***"),
    (re.compile(r"\bwhsec_[A-Za-z0-9]+"), "***"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "***"),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1***"),
    (re.compile(r"(://[^:/@\s]+:)[^@\s]+(@)"), r"\1***\2"),
    (
        # password=…, AUTH_JWT_SECRET=…, "api_key": "…", access_token: …
        re.compile(
            r"(?i)\b([\w-]*(?:password|passwd|pwd|secret|api[_-]?key|token))"
            r"([\"']?\s*[=:]\s*[\"']?)[^\s&,;\"']+"
        ),
        r"\1\2***",
    ),
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


# ``key=value`` pairs in a message (``event_id=evt_1 status=processed``) become JSON fields.
_PAIR = re.compile(r"\b([a-z][a-z0-9_]*)=([^\s=]+)(?=\s|$)")
_RESERVED = frozenset({"ts", "level", "logger", "msg", "exc"})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg``, the message's
    ``key=value`` pairs as fields, and ``exc`` (the traceback) when there is one."""

    def __init__(self) -> None:
        super().__init__(datefmt="%Y-%m-%dT%H:%M:%SZ")
        self.converter = _gmtime

    def format(self, record: logging.LogRecord) -> str:
        message = scrub(record.getMessage())
        line: dict[str, object] = {
            "ts": self.formatTime(record, self.datefmt),
            "level": record.levelname,
            "logger": record.name,
            "msg": message,
        }
        for key, value in _PAIR.findall(message):
            if key not in _RESERVED:
                line.setdefault(key, value)
        if record.exc_info:
            line["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


def configure_logging(level: str = "INFO", log_format: str = "kv") -> None:
    """Route the engine's and uvicorn's records through the scrubbing formatter."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # One line per outgoing HTTP request is noise at INFO: the gateway logs what matters.
    for name in ("httpx", "stripe"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
