"""The wire-protocol test backend: ``MONGODB_URI`` when set, else the bundled jongodb server
from the npm package ``@jongodb/memory-server-bin-linux-x64-gnu`` (``npm install`` puts it in
``node_modules``), started on a free loopback port and stopped after the session."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "node_modules/@jongodb/memory-server-bin-linux-x64-gnu/bin/jongodb"


@dataclass
class WireServer:
    uri: str
    process: subprocess.Popen[str] | None = None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _unavailable(reason: str) -> None:
    # CI must run the wire tests: there, a missing server is a failure, not a skip.
    if os.environ.get("CI"):
        pytest.fail(f"wire backend unavailable in CI: {reason}", pytrace=False)


def start_wire_server(external_uri: str | None) -> WireServer | None:
    if external_uri:
        return WireServer(uri=external_uri)
    if not BINARY.exists():
        _unavailable(f"{BINARY.relative_to(ROOT)} is missing (run `npm install`)")
        return None
    port = free_port()
    process = subprocess.Popen(
        [str(BINARY), "--host=127.0.0.1", f"--port={port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    ready = threading.Event()
    lines: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("JONGODB_URI="):
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + 60
    while not ready.wait(0.1):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            _unavailable("jongodb did not start: " + "".join(lines[-5:]))
            return None
    return WireServer(uri=f"mongodb://127.0.0.1:{port}/", process=process)


class _Link:
    """One relayed connection: the client's socket, ours to the server, and whether the
    partition lets its bytes through."""

    def __init__(self, client: socket.socket, server: socket.socket, *, flowing: bool) -> None:
        self.client = client
        self.server = server
        self.flowing = threading.Event()
        if flowing:
            self.flowing.set()

    def close(self, *, reset: bool = False) -> None:
        for sock in (self.client, self.server):
            if reset:
                with contextlib.suppress(OSError):
                    # Linger on, zero seconds: close sends RST, as a failing network does.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()


class Relay:
    """A TCP relay on 127.0.0.1 in front of ``upstream`` (``host:port``) that fails like a
    network does:

    * ``pass_traffic()`` forwards both ways (and, after a reset, listens again);
    * ``reset()`` resets every connection (RST) and refuses new ones (nothing listens);
    * ``blackhole()`` is a silent partition: connections — old and new — are accepted and
      kept, but not a byte goes through either way. ``pass_traffic()`` heals it: by default
      what was held back then flows (as TCP retransmits once a partition heals);
      ``pass_traffic(strand=True)`` leaves the connections that lived through the partition
      silent for good (a middlebox that lost their state) and only new ones flow.

    Threads, not the test's event loop, carry the bytes, so a busy loop cannot pass for a
    stalled driver. ``close()`` stops everything and closes every socket."""

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.rpartition(":")
        self.upstream = (host, int(port))
        self.port = free_port()
        self._partitioned = False
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._listen()

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def pass_traffic(self, *, strand: bool = False) -> None:
        with self._lock:
            self._partitioned = False
            links = list(self._links)
        if not strand:
            for link in links:
                link.flowing.set()
        if self._listener is None:
            self._listen()

    def blackhole(self) -> None:
        with self._lock:
            self._partitioned = True
            for link in self._links:
                link.flowing.clear()
        if self._listener is None:
            self._listen()

    def reset(self) -> None:
        """Reset every connection (RST, not FIN) and stop listening: connects are refused."""
        listener, self._listener = self._listener, None
        if listener is not None:
            # Wake its accept thread and wait for it: until accept() returns, the kernel
            # keeps the port bound and listening.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
            if self._acceptor is not None:
                self._acceptor.join(timeout=5)
        with self._lock:
            self._partitioned = False
            links, self._links = self._links, []
        for link in links:
            link.close(reset=True)

    def close(self) -> None:
        self._closed = True
        self.reset()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(64)
        except OSError:
            listener.close()
            raise
        listener.settimeout(0.2)
        self._listener = listener
        self._acceptor = self._spawn(self._accept, listener)

    def _spawn(self, target: Any, *args: Any) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)
        thread.start()
        return thread

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.settimeout(None)
            with self._lock:
                link = _Link(client, server, flowing=not self._partitioned)
                self._links.append(link)
            self._spawn(self._pump, link, client, server)
            self._spawn(self._pump, link, server, client)

    def _pump(self, link: _Link, source: socket.socket, target: socket.socket) -> None:
        """Copy ``source`` to ``target`` while the link flows; hold still while it does not
        (read nothing, so the sender's bytes wait in its buffers)."""
        try:
            while not self._closed:
                if not link.flowing.wait(0.2):
                    continue
                readable, _, _ = select.select([source], [], [], 0.2)
                if not readable:
                    continue
                data = source.recv(65536)
                if not data:
                    break
                while not link.flowing.wait(0.2):
                    if self._closed:
                        return
                target.sendall(data)
        except (OSError, ValueError):
            pass  # reset or closed, here or by the peer
        finally:
            with self._lock:
                if link in self._links:
                    self._links.remove(link)
            link.close()
