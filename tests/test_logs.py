"""S6 and structured logs: a resolver exception whose text holds secrets reaches the client as a
masked message with the request id, and the engine's log output (as ``configure_logging``
writes it, in either format) has the request id and none of the secrets."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from revenue_engine.auth import issue_token
from revenue_engine.logs import JsonFormatter, KeyValueFormatter, configure_logging, scrub
from revenue_engine.settings import Settings
from tests.test_app_production import production

Start = Callable[[Settings], Any]

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
SECRETS = {
    "stripe key": "sk_live_51HsecretKEYvalue",
    "restricted key": "rk_test_51HrestrictedVALUE",
    "webhook secret": "whsec_0123456789abcdefSECRET",
    "dsn password": "hunter2-db-pass",
    "jwt": JWT,
    "password field": "pa55-w0rd-value",
}
LEAK = (
    f"connect failed uri=mongodb+srv://admin:{SECRETS['dsn password']}@cluster0.example.net/prod "
    f"key={SECRETS['stripe key']} rk={SECRETS['restricted key']} "
    f"wh={SECRETS['webhook secret']} token={SECRETS['jwt']} "
    f"password={SECRETS['password field']}"
)


@pytest.fixture
def engine_logging() -> Iterator[Callable[[str], None]]:
    """``configure_logging`` for the test (writing to the captured stderr), undone after."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)

    def configure(log_format: str) -> None:
        configure_logging("INFO", log_format)

    yield configure
    root.handlers[:], level = saved
    root.setLevel(level)


@pytest.mark.parametrize("log_format", ["kv", "json"])
async def test_s6_secrets_in_an_exception_are_masked_and_scrubbed(
    client_for: Start,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    engine_logging: Callable[[str], None],
    log_format: str,
) -> None:
    from revenue_engine.services import subscriptions

    async def broken(*_: object, **__: object) -> None:
        raise RuntimeError(LEAK)

    monkeypatch.setattr(subscriptions, "current_subscription", broken)
    settings = production(log_format=log_format)
    client: httpx.AsyncClient = await client_for(settings)
    engine_logging(log_format)
    token = issue_token(settings, "org_s6")
    response = await client.post(
        "/graphql",
        json={"query": "{ subscriptionStatus { status } }"},
        headers={"authorization": f"Bearer {token}", "x-request-id": "req-s6"},
    )
    error = response.json()["errors"][0]
    assert error["message"] == "Unexpected error (request id req-s6)."
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": "req-s6"}
    output = capsys.readouterr().err
    assert "req-s6" in output
    assert "RuntimeError" in output  # the traceback is logged, scrubbed
    for name, secret in {**SECRETS, "bearer token": token}.items():
        assert secret not in response.text, name
        assert secret not in output, name
    lines = [line for line in output.splitlines() if "req-s6" in line]
    assert lines
    if log_format == "json":
        record = json.loads(lines[0])
        assert record["level"] == "ERROR"
        assert record["request_id"] == "req-s6"
        assert record["logger"] == "revenue_engine.graphql"
        assert "Traceback" in record["exc"]
    else:
        assert lines[0].startswith("ts=")
        assert "level=ERROR" in lines[0]
        assert "request_id=req-s6" in lines[0]


def record(message: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord(
        "revenue_engine.x", logging.WARNING, __file__, 1, message, args, exc_info
    )


def test_json_lines_carry_the_message_pairs_as_fields() -> None:
    line = JsonFormatter().format(
        record("webhook unavailable event_id=%s type=%s error=%s", "evt_1", "price.created", "X")
    )
    data = json.loads(line)
    assert data["msg"] == "webhook unavailable event_id=evt_1 type=price.created error=X"
    assert (data["event_id"], data["type"], data["error"]) == ("evt_1", "price.created", "X")
    assert data["level"] == "WARNING"
    assert data["ts"].endswith("Z")


@pytest.mark.parametrize("formatter", [KeyValueFormatter(), JsonFormatter()])
def test_both_formats_scrub_messages_and_tracebacks(formatter: logging.Formatter) -> None:
    try:
        raise ValueError(LEAK)
    except ValueError as exc:
        line = formatter.format(record("failed with %s", LEAK, exc=exc))
    for name, secret in SECRETS.items():
        assert secret not in line, name
    assert "ValueError" in line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("AUTH_JWT_SECRET=abc123", "AUTH_JWT_SECRET=***"),
        ('{"password": "x1"}', '{"password": "***"}'),
        ("Authorization: Bearer abc.def", "Authorization: Bearer ***"),
        ("mongodb://u:p4ss@h:27017/db", "mongodb://u:***@h:27017/db"),
        ("event_id=evt_1 status=processed tokens=20", "event_id=evt_1 status=processed tokens=20"),
    ],
)
def test_scrub(text: str, expected: str) -> None:
    assert scrub(text) == expected


def test_a_store_that_refuses_an_operation_is_logged_as_an_error_with_its_code(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from types import SimpleNamespace

    from pymongo.errors import NetworkTimeout, OperationFailure

    from revenue_engine.db import StoreError
    from revenue_engine.schema.errors import EXCEPTION_HANDLERS

    [handler] = [h for h in EXCEPTION_HANDLERS if h.exception_type is StoreError]
    field: Any = SimpleNamespace(python_name="refund_payment")
    with caplog.at_level("WARNING", logger="revenue_engine"):
        refused = handler.handle(OperationFailure("unsupported", code=14), field=field, info=None)
        down = handler.handle(NetworkTimeout("timed out"), field=field, info=None)
    assert refused.code == down.code == "UNAVAILABLE"  # the client just retries, either way
    [error, warning] = caplog.records
    assert (error.levelname, warning.levelname) == ("ERROR", "WARNING")
    assert "code=14" in error.getMessage()
    assert "refused" in error.getMessage()
    assert "NetworkTimeout" in warning.getMessage()
