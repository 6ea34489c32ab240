"""The command line, run as a user runs it (a subprocess of the installed entry point)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt

from revenue_engine.dev_secret import DEV_SECRET_FILE, with_development_secret
from revenue_engine.schema import export_sdl
from tests.conftest import make_settings
from tests.wire import free_port


def clean_env(env: dict[str, str] | None = None) -> dict[str, str]:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "MONGODB_", "AUTH_"))
    }
    return {**base, **(env or {})}


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "revenue_engine", *args],
        capture_output=True,
        text=True,
        env=clean_env(env),
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_export_schema_prints_the_sdl() -> None:
    result = run("export-schema")
    assert result.returncode == 0, result.stderr
    assert result.stdout == export_sdl()


def test_plans_check_accepts_the_demo_and_rejects_a_bad_file(tmp_path: Path) -> None:
    ok = run("plans", "check")
    assert ok.returncode == 0
    assert "4 plans" in ok.stdout
    assert "priced per seat: business" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "plans:\n  - {uid: x, name: X, prices: [{interval: month, amount: -1, currency: usd}]}\n"
    )
    result = run("plans", "check", str(bad))
    assert result.returncode == 1
    assert "plans.0.prices.0.amount" in result.stderr


def test_plans_check_tells_an_old_file_what_each_add_on_must_say(tmp_path: Path) -> None:
    old = tmp_path / "old.yaml"
    old.write_text(
        """plans:
  - uid: pro
    name: Pro
    entitlements: {api_calls: 250000, sso: true}
    prices: [{interval: month, amount: 4900, currency: usd}]
    overages:
      - key: api_calls
        name: Extra API calls
        prices: [{interval: month, amount: 1500, currency: usd}]
      - key: sso
        name: SSO pack
        kind: pack
        feature: sso
        pack_size: 1
        prices: [{interval: month, amount: 100, currency: usd}]
"""
    )
    result = run("plans", "check", str(old))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: plans file old.yaml is invalid",
        "  plans.0.overages.0.kind: say what this add-on does: `kind: pack` with `feature` and "
        "`pack_size` (raises the limit by pack_size per unit bought) or `kind: metered` with "
        "`feature` and `package_size` (bills usage beyond the included quantity); the feature "
        "must be listed in `metered`",
        "  plans.0.overages.1.feature: feature 'sso' is a switch (true or false); an add-on "
        "acts on a quantity",
    ]


def test_plans_check_refuses_seat_bounds_that_cannot_be_sold(tmp_path: Path) -> None:
    bad = tmp_path / "seats.yaml"
    bad.write_text(
        """plans:
  - uid: team
    name: Team
    per_seat: true
    min_seats: 10
    max_seats: 5
    entitlements: {seats: 10}
    prices: [{interval: month, amount: 1200, currency: usd}]
  - uid: solo
    name: Solo
    min_seats: 2
    prices: [{interval: month, amount: 900, currency: usd}]
"""
    )
    result = run("plans", "check", str(bad))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: plans file seats.yaml is invalid",
        "  plans.0.entitlements.seats: a per-seat plan's seats are the number bought: leave "
        "`seats` out of its entitlements",
        "  plans.0.max_seats: max_seats must be between min_seats and 10000",
        "  plans.1.min_seats: min_seats is for per-seat plans (per_seat: true)",
    ]


def test_plans_load_into_the_memory_store() -> None:
    result = run("plans", "load")
    assert result.returncode == 0, result.stderr
    assert "loaded 4 plans: starter, pro, business, enterprise" in result.stdout


def test_token_is_signed_with_the_configured_secret() -> None:
    secret = "z" * 40
    result = run("token", "--org", "org_7", "--admin", env={"AUTH_JWT_SECRET": secret})
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(
        result.stdout.strip(), secret, algorithms=["HS256"], audience="revenue-engine"
    )
    assert claims["org_id"] == "org_7"
    assert claims["roles"] == ["admin"]
    # Outside development nothing stands in for a missing secret.
    missing = run("token", "--org", "org_7", env={"ENVIRONMENT": "test"})
    assert missing.returncode == 1
    assert "set AUTH_JWT_SECRET" in missing.stderr


def test_a_token_printed_in_development_is_accepted_by_the_served_engine(tmp_path: Path) -> None:
    """`make run`, then `revenue-engine token` in the same directory, nothing configured: the
    server accepts the token (both use the development secret), and refuses a forged one."""
    port = free_port()
    env = clean_env({"ENVIRONMENT": "development", "LOG_LEVEL": "INFO"})
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "revenue_engine", "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the engine did not start"
            time.sleep(0.2)
        printed = run(
            "token", "--org", "org_dev", "--email", "me@example.com",
            env={"ENVIRONMENT": "development"}, cwd=tmp_path,
        )  # fmt: skip
        assert printed.returncode == 0, printed.stderr
        token = printed.stdout.strip()
        query = {"query": "{ subscriptionStatus { status isActive } }"}
        answer = httpx.post(
            f"{base}/graphql", json=query, headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 200, answer.text
        assert "errors" not in answer.json(), answer.text
        assert answer.json()["data"]["subscriptionStatus"]["isActive"] is False
        forged = jwt.encode(
            {**jwt.decode(token, options={"verify_signature": False}), "org_id": "org_other"},
            "f" * 48,
            algorithm="HS256",
        )
        refused = httpx.post(
            f"{base}/graphql", json=query, headers={"Authorization": f"Bearer {forged}"}
        )
        assert refused.status_code == 401
    finally:
        server.terminate()
        server.wait(timeout=30)
    secret_file = tmp_path / DEV_SECRET_FILE
    assert secret_file.stat().st_mode & 0o777 == 0o600
    secret = secret_file.read_text().strip()
    assert len(secret) >= 32
    # The server says where the secret is, never what it is.
    text = log.read_text()
    assert str(DEV_SECRET_FILE) in text
    assert secret not in text


def test_the_development_secret_is_never_used_outside_development(tmp_path: Path) -> None:
    configured = make_settings(environment="development", auth_jwt_secret="c" * 40)
    assert with_development_secret(configured, tmp_path / "s") is configured
    jwks = make_settings(environment="development", auth_jwt_secret=None, auth_jwks_url="https://x")
    assert with_development_secret(jwks, tmp_path / "s") is jwks
    testing = make_settings(environment="test", auth_jwt_secret=None)
    assert with_development_secret(testing, tmp_path / "s") is testing
    assert not (tmp_path / "s").exists()
    bare = make_settings(environment="development", auth_jwt_secret=None)
    first = with_development_secret(bare, tmp_path / "s").auth_jwt_secret
    again = with_development_secret(bare, tmp_path / "s").auth_jwt_secret
    assert first is not None
    assert again is not None
    assert first.get_secret_value() == again.get_secret_value()
    # A file too short to sign with is replaced, not trusted.
    (tmp_path / "short").write_text("abc")
    replaced = with_development_secret(bare, tmp_path / "short").auth_jwt_secret
    assert replaced is not None
    assert len(replaced.get_secret_value()) >= 32


def test_help_is_plain_text() -> None:
    """`--help` and every command's `--help` read as text: no reStructuredText markup, and
    each command says what it does."""
    top = run("--help")
    assert top.returncode == 0, top.stderr
    assert top.stdout.startswith("usage: revenue-engine")
    assert "a GraphQL subscription-billing API on Stripe" in top.stdout
    commands = [
        ["serve"], ["emulator"], ["export-schema"], ["plans"], ["token"], ["events"],
        ["events", "replay"], ["events", "backfill"], ["reconcile"], ["usage"],
    ]  # fmt: skip
    texts = [top.stdout]
    for name in commands:
        assert name[-1] in top.stdout or name[0] == "events"
        shown = run(*name, "--help")
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.startswith(f"usage: revenue-engine {' '.join(name)}")
        # The paragraph after the usage block is the command's own description.
        description = shown.stdout.split("\n\n")[1]
        assert description[:1].isupper(), shown.stdout
        assert description.endswith("."), shown.stdout
        texts.append(shown.stdout)
    for text in texts:
        for markup in ("``", ":func:", ":data:", ":class:", ".. "):
            assert markup not in text, text


def test_unsafe_configuration_is_refused_with_a_clear_message() -> None:
    result = run("plans", "check", env={"ENVIRONMENT": "production"})
    assert result.returncode == 2
    assert "STRIPE_SECRET_KEY is required" in result.stderr


def test_serve_with_a_bad_plans_file_lists_the_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "plans:\n  - {uid: x, name: X, prices: [{interval: month, amount: -1, currency: usd}]}\n"
    )
    result = run("serve", "--port", "9", env={"PLANS_FILE": str(bad)})
    assert result.returncode == 1
    assert "error: plans file bad.yaml is invalid" in result.stderr
    assert "plans.0.prices.0.amount: amount must not be negative" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_log_level_is_refused_at_start() -> None:
    result = run("serve", "--port", "9", env={"LOG_LEVEL": "LOUD"})
    assert result.returncode == 2
    assert "log_level" in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_report_runs_one_pass() -> None:
    result = run("usage", "report")
    assert result.returncode == 0, result.stderr
    assert "0 counters, 0 meter events, 0 units reported, 0 failures" in result.stdout
