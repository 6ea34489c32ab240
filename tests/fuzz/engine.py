"""The real app (lifespan included) driven from synchronous Hypothesis tests, and the property
every answer must have.

Hypothesis runs each example as a plain function; ``Engine`` keeps the app's event loop between
examples (``asyncio.Runner``), so one started app serves every example of a test. An exception
that escapes the app (Starlette would answer it 500) and an unexpected error the engine logs
are both kept with their traceback, so a failing example says where it broke.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import traceback
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

from revenue_engine.app import create_app
from revenue_engine.settings import Settings

BASE_URL = "http://testserver"
INTERNAL = "INTERNAL_SERVER_ERROR"


@dataclass
class Answer:
    status: int
    text: str
    crash: str | None = None  # the exception that escaped the app, with its traceback
    logged: list[str] = field(default_factory=list)  # tracebacks of errors the engine logged

    def errors(self) -> list[dict[str, Any]]:
        try:
            body = json.loads(self.text)
        except ValueError:
            return []
        errors = body.get("errors") if isinstance(body, dict) else None
        return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []

    def problems(self) -> list[str]:
        """Why this answer breaks "never a 5xx, never INTERNAL_SERVER_ERROR" (empty: it holds)."""
        found: list[str] = []
        if self.crash is not None:
            found.append(f"unhandled exception (answered 500):\n{self.crash}")
        if self.status >= 500:
            found.append(f"HTTP {self.status}: {self.text[:300]}")
        for error in self.errors():
            extensions = error.get("extensions")
            if isinstance(extensions, dict) and extensions.get("code") == INTERNAL:
                found.append(f"{INTERNAL} at {error.get('path')}: {error.get('message')}")
        if found and self.logged:
            found.append("logged by the engine:\n" + "\n".join(self.logged))
        return found

    def summary(self) -> str:
        """One line: what broke and where (the innermost engine frame of the traceback)."""
        problems = self.problems()
        if not problems:
            return "ok"
        traces = [self.crash] if self.crash else self.logged
        cause = ""
        for trace in traces:
            lines = [line for line in trace.strip().splitlines() if line.strip()]
            ours = [f for f in _OURS.findall(trace) if f[0] not in _WRAPPERS]
            frames = ours or _FRAME.findall(trace)
            where = f" ({frames[-1][0]}:{frames[-1][1]} in {frames[-1][2]})" if frames else ""
            cause = f" — {lines[-1][:160]}{where}" if lines else ""
        return problems[0].splitlines()[0][:160] + cause


_OURS = re.compile(r'File "[^"]*?/(revenue_engine/[^"]+)", line (\d+), in (\w+)')
#: Frames that only wrap a call (server timing): the frame that matters is the one before.
_WRAPPERS = frozenset({"revenue_engine/timing.py"})
_FRAME = re.compile(
    r'File "[^"]*?/((?:revenue_engine|strawberry|graphql|starlette)/[^"]+)", line (\d+), in (\w+)'
)


class _Tracebacks(logging.Handler):
    """Keeps the last frames of every error logged with a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.seen.append(record.getMessage() + "\n" + _tail(record.exc_info[1]))


def _tail(error: BaseException) -> str:
    """The traceback's end, headed by the innermost frame of the engine's own code."""
    text = "".join(traceback.format_exception(error))
    ours = [f for f in _OURS.findall(text) if f[0] not in _WRAPPERS]
    head = f"innermost engine frame: {ours[-1][0]}:{ours[-1][1]} in {ours[-1][2]}\n" if ours else ""
    return head + text[-2500:]


class Engine:
    """``with Engine(settings) as engine: engine.post(...)`` — the app started with its lifespan,
    an httpx client through ``ASGITransport``, and a loop that outlives each call."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._runner = asyncio.Runner()
        self._lifespan: Any = None
        self._client: httpx.AsyncClient | None = None
        self._logged = _Tracebacks()

    def __enter__(self) -> Engine:
        self._runner.__enter__()
        logging.getLogger("revenue_engine").addHandler(self._logged)
        self._runner.run(self._start())
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._runner.run(self._stop())
        finally:
            logging.getLogger("revenue_engine").removeHandler(self._logged)
            self._runner.__exit__(kind, error, tb)

    async def _start(self) -> None:
        app = create_app(self.settings)
        self._lifespan = app.router.lifespan_context(app)
        await self._lifespan.__aenter__()
        # Generous: a hostile example may legitimately take a while (the wire store is slow);
        # the property here is "never a 5xx", not a latency bound.
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=BASE_URL, timeout=60
        )

    async def _stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        if self._lifespan is not None:
            await self._lifespan.__aexit__(None, None, None)

    def run(self, coroutine: Any) -> Any:
        """Run ``coroutine`` on the app's loop (setup helpers)."""
        return self._runner.run(coroutine)

    def post(self, path: str, content: bytes, headers: dict[str, str]) -> Answer:
        """POST raw bytes (the caller serialises: httpx's ``json=`` cannot send lone surrogates)."""
        assert self._client is not None
        self._logged.seen.clear()
        try:
            response = self._runner.run(self._client.post(path, content=content, headers=headers))
        except Exception as exc:  # the app raised: Starlette has answered 500
            return Answer(500, "", crash=_tail(exc), logged=list(self._logged.seen))
        return Answer(response.status_code, response.text, logged=list(self._logged.seen))

    def graphql(self, text: str, headers: dict[str, str]) -> Answer:
        """POST a JSON body already written as text (see ``values.dumps``)."""
        content = text.encode("ascii")
        return self.post("/graphql", content, {"content-type": "application/json", **headers})
