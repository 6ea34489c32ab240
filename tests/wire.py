"""The wire-protocol test backend: ``MONGODB_URI`` when set, else the bundled jongodb server
from the npm package ``@jongodb/memory-server-bin-linux-x64-gnu`` (``npm install`` puts it in
``node_modules``), started on a free loopback port and stopped after the session."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

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
