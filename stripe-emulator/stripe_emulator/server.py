"""Serving the emulator over real HTTP: in a background thread, or blocking for the CLI.

:class:`UvicornThread` runs any ASGI app under uvicorn on a loopback port (``port=0`` picks a free
one) in a daemon thread with its own event loop; :class:`EmulatorServer` does that for an
:class:`Emulator` and, if the emulator has no ``public_url`` yet, gives it the server's URL
before the first request so hosted-page links point at the right place.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Self

import uvicorn
from starlette.types import ASGIApp

from stripe_emulator.emulator import Emulator


class UvicornThread:
    """An ASGI app served by uvicorn in a background thread (context manager)."""

    def __init__(
        self,
        app: ASGIApp,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        log_level: str = "warning",
        startup_timeout: float = 10.0,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.log_level = log_level
        self.startup_timeout = startup_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        if self._socket is None:
            raise RuntimeError("server not started")
        return f"http://{self.host}:{self.port}"

    def _bind(self) -> None:
        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto
        # says TCP, and without it every small response waits ~40 ms for a delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._socket = sock

    def start(self) -> str:
        self._bind()
        config = uvicorn.Config(
            self.app,
            lifespan="on",
            log_level=self.log_level,
            log_config=None,
            access_log=False,
            http="h11",
            loop="asyncio",
            ws="none",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        assert self._socket is not None
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"uvicorn:{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"uvicorn did not start on {self.host}:{self.port}")
            time.sleep(0.005)
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class EmulatorServer(UvicornThread):
    """``with EmulatorServer(Emulator()) as srv: srv.url`` — a live emulator on a free port."""

    def __init__(self, emulator: Emulator, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(emulator.app, host, port)
        self.emulator = emulator

    def _bind(self) -> None:
        super()._bind()
        if not self.emulator.public_url:
            self.emulator.public_url = self.url


def run_standalone(
    host: str = "127.0.0.1", port: int = 12111, public_url: str | None = None
) -> None:
    """Serve a fresh emulator until interrupted (``stripe-emulator --port 12111``)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - display only
    emulator = Emulator(public_url or f"http://{shown}:{port}")
    uvicorn.run(
        emulator.app,
        host=host,
        port=port,
        log_config=None,
        lifespan="on",
        ws="none",
        server_header=False,
    )
