"""Without the ``embedded`` extra (the ``stripe-emulator`` distribution), as in a production
install: the engine imports and serves with a Stripe key, and the embedded default and
``revenue-engine emulator`` stop at start with one line saying what to install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from revenue_engine.embedded import EmulatorNotInstalled, build_emulator, require_emulator
from tests.conftest import make_settings
from tests.test_cli import clean_env

#: Run first in the child: ``import stripe_emulator`` fails there as if it were not installed.
WITHOUT_EMULATOR = "import sys; sys.modules['stripe_emulator'] = None\n"
MESSAGE = "error: the embedded Stripe emulator is not installed: pip install ./stripe-emulator"


def run_without_emulator(
    code: str, tmp_path: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_EMULATOR + code],
        capture_output=True,
        text=True,
        env=clean_env(env),
        cwd=tmp_path,  # no .env file
        timeout=60,
        check=False,
    )


def cli(*args: str) -> str:
    return f"from revenue_engine.cli import main\nraise SystemExit(main({list(args)!r}))\n"


def test_serve_on_the_embedded_default_says_what_to_install(tmp_path: Path) -> None:
    result = run_without_emulator(cli("serve", "--port", "9"), tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(MESSAGE)
    assert result.stderr.rstrip("\n").endswith("or set STRIPE_SECRET_KEY to use Stripe")
    assert result.stderr.count("\n") == 1  # one line, no traceback
    assert result.stdout == ""


def test_the_emulator_command_says_what_to_install(tmp_path: Path) -> None:
    result = run_without_emulator(cli("emulator", "--port", "9"), tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(MESSAGE)
    assert result.stderr.count("\n") == 1


def test_with_a_stripe_key_the_whole_engine_runs_without_the_emulator(tmp_path: Path) -> None:
    """Every module imports (the embedded wiring too: it imports the emulator only when it
    builds one), and the app starts and answers with a Stripe key configured."""
    code = """
import asyncio, importlib, pkgutil
import httpx
import revenue_engine
from revenue_engine.app import create_app
from revenue_engine.settings import Settings

names = [
    m.name for m in pkgutil.walk_packages(revenue_engine.__path__, "revenue_engine.")
    if m.name != "revenue_engine.__main__"  # runs the command line
]
for name in names:
    importlib.import_module(name)
assert "stripe_emulator" not in {n.split(".")[0] for n in sys.modules if sys.modules[n]}

async def main():
    settings = Settings(
        _env_file=None, environment="test", auth_jwt_secret="t" * 40,
        stripe_secret_key="sk_test_no_emulator", stripe_api_base="http://127.0.0.1:9",
    )
    app = create_app(settings)
    assert app.state.emulator is None
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://engine") as client:
            health = await client.get("/healthz")
            mount = await client.get("/stripe-emulator/v1/customers")
    print(len(names), health.status_code, mount.status_code)

asyncio.run(main())
"""
    result = run_without_emulator(code, tmp_path)
    assert result.returncode == 0, result.stderr
    modules, health, mount = (int(word) for word in result.stdout.split())
    assert modules > 100
    assert (health, mount) == (200, 404)


def test_the_check_and_the_factory_raise_the_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    require_emulator()  # installed here: no error
    monkeypatch.setitem(sys.modules, "stripe_emulator", None)
    with pytest.raises(EmulatorNotInstalled, match=r"^the embedded Stripe emulator is not"):
        require_emulator()
    with pytest.raises(EmulatorNotInstalled, match=r"or set STRIPE_SECRET_KEY to use Stripe$"):
        build_emulator(make_settings())


def test_the_production_profile_still_refuses_the_embedded_default(tmp_path: Path) -> None:
    result = run_without_emulator(
        cli("serve", "--port", "9"), tmp_path, {"ENVIRONMENT": "production"}
    )
    assert result.returncode == 2
    assert "STRIPE_SECRET_KEY is required" in result.stderr
    assert "emulator is not installed" not in result.stderr
