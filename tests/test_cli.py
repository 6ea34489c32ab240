"""The command line, run as a user runs it (a subprocess of the installed entry point)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jwt

from revenue_engine.schema import export_sdl


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "MONGODB_", "AUTH_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "revenue_engine", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
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
    missing = run("token", "--org", "org_7")
    assert missing.returncode == 1


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
