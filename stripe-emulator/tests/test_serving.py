"""Run modes: mounted under a path prefix inside another app, and standalone (the CLI)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import stripe
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from emulator_helpers import SDK_HTTPX_WARNING, make_plan, sdk_client
from stripe_emulator import Emulator, UvicornThread
from stripe_emulator.__main__ import main

pytestmark = [SDK_HTTPX_WARNING]

PREFIX = "/stripe-emulator"
PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture
def mounted() -> Iterator[tuple[Emulator, str]]:
    """An engine-like host app with the emulator mounted at /stripe-emulator."""
    emulator = Emulator()

    async def home(request: object) -> PlainTextResponse:
        return PlainTextResponse("host app")

    host = Starlette(routes=[Route("/", home), Mount(PREFIX, app=emulator.app)])
    with UvicornThread(host) as served:
        emulator.public_url = served.url + PREFIX
        yield emulator, served.url


async def test_mounted_under_a_prefix(mounted: tuple[Emulator, str]) -> None:
    emulator, host_url = mounted
    async with sdk_client(emulator.public_url) as client:
        price = await make_plan(client, amount=1900)
        session = await client.v1.checkout.sessions.create_async(
            params={
                "mode": "subscription",
                "line_items": [{"price": price.id, "quantity": 1}],
                "success_url": f"{host_url}/?session_id={{CHECKOUT_SESSION_ID}}",
            }
        )
        assert session.url == f"{host_url}{PREFIX}/checkout/{session.id}"
        async with httpx.AsyncClient(follow_redirects=True, timeout=5) as browser:
            page = await browser.get(session.url)
            assert page.status_code == 200
            landed = await browser.post(f"{session.url}/pay", data={"card": "pm_card_visa"})
        assert landed.text == "host app"
        assert landed.url.params["session_id"] == session.id
        done = await client.v1.checkout.sessions.retrieve_async(session.id)
        assert done.status == "complete"
        invoice = await client.v1.invoices.retrieve_async(str(done.invoice))
    assert invoice.hosted_invoice_url == f"{host_url}{PREFIX}/invoices/{invoice.id}"
    async with httpx.AsyncClient(timeout=5) as plain:
        assert (await plain.get(invoice.hosted_invoice_url)).status_code == 200
        state = await plain.get(f"{host_url}{PREFIX}/_emulator/state")
        index = await plain.get(f"{host_url}{PREFIX}/")
    assert state.json()["objects"]["subscription"] == 1
    assert index.status_code == 200
    assert index.json()["api"] == f"{host_url}{PREFIX}/v1/"
    assert index.json()["control"] == f"{host_url}{PREFIX}/_emulator/state"


async def test_mounted_connection_reset_still_reaches_the_client_as_a_failure(
    mounted: tuple[Emulator, str],
) -> None:
    emulator, _ = mounted
    emulator.inject_fault("reset", path="/v1/customers")
    async with sdk_client(emulator.public_url, retries=1) as client:
        customer = await client.v1.customers.create_async(params={"email": "m@example.com"})
    assert [e.fault for e in emulator.requests.entries] == ["reset", None]
    assert [c["id"] for c in emulator.objects("customer")] == [customer.id]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_standalone_server_for_any_stripe_client() -> None:
    """``python -m stripe_emulator --port N`` (the ``stripe-emulator`` command) serves clients."""
    port = _free_port()
    # This project's package first, installed or not.
    path = os.pathsep.join(p for p in (str(PROJECT), os.environ.get("PYTHONPATH", "")) if p)
    process = subprocess.Popen(
        [sys.executable, "-m", "stripe_emulator", "--port", str(port), "--log-level", "warning"],
        env={**os.environ, "PYTHONPATH": path},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                index = httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, "the emulator exited"
                assert time.monotonic() < deadline, "the emulator did not start"
                time.sleep(0.05)
        assert index.json()["emulator"] == "stripe"
        created = httpx.post(
            f"{url}/v1/customers",
            data={"email": "cli@example.com"},
            headers={"Authorization": "Bearer sk_test_cli"},
        )
        assert created.json()["id"].startswith("cus_")
        assert stripe.Customer.construct_from(created.json(), "sk_test_cli").email == (
            "cli@example.com"
        )
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_command_refuses_a_bad_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--port", "twelve"])
    assert exit_info.value.code == 2
    assert "invalid int value: 'twelve'" in capsys.readouterr().err
