"""Settings: safe production, key/environment checks, env parsing, .env.example in step."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from revenue_engine.settings import DEMO_PLANS_FILE, Settings, get_settings
from tests.conftest import make_settings

PROD: dict[str, Any] = {
    "environment": "production",
    "public_base_url": "https://billing.example.com",
    "mongodb_uri": "mongodb://db.internal:27017/",
    "stripe_secret_key": "sk_live_" + "a1" * 12,
    "stripe_webhook_secrets": ["whsec_" + "b2" * 12],
    "plans_file": DEMO_PLANS_FILE,
    "auth_jwt_secret": "s3" * 20,
}


def test_safe_production_settings_are_accepted() -> None:
    settings = make_settings(**PROD)
    assert settings.is_production
    assert settings.livemode
    assert not settings.graphiql_enabled
    assert not settings.dev_headers_enabled
    assert not settings.uses_emulator


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"stripe_secret_key": None}, "STRIPE_SECRET_KEY is required"),
        ({"stripe_secret_key": "sk_test_" + "c" * 20}, "test Stripe key is refused"),
        ({"stripe_webhook_secrets": []}, "STRIPE_WEBHOOK_SECRET is required"),
        ({"mongodb_uri": None}, "MONGODB_URI"),
        ({"mongodb_uri": "mongomock://x"}, "MONGODB_URI"),
        ({"auth_jwt_secret": None}, "AUTH_JWT_SECRET or AUTH_JWKS_URL"),
        ({"auth_jwt_secret": "short"}, "at least 32"),
        ({"auth_jwt_secret": "change-me-" + "x" * 30}, "placeholder"),
        ({"stripe_webhook_secrets": ["whsec_change-me"]}, "placeholder"),
        ({"usage_api_keys": ["short-usage-key"]}, "USAGE_API_KEYS key must be at least 32"),
        ({"usage_api_keys": ["usage-key-change-me-" + "x" * 20]}, "placeholder"),
        ({"plans_file": None}, "PLANS_FILE is required"),
        ({"public_base_url": "http://billing.example.com"}, "PUBLIC_BASE_URL must be an https"),
        ({"public_base_url": "https://localhost:8443"}, "PUBLIC_BASE_URL must be an https"),
        ({"public_base_url": "https://127.0.0.1"}, "PUBLIC_BASE_URL must be an https"),
        ({"public_base_url": "https://[::1]:8443/api"}, "PUBLIC_BASE_URL must be an https"),
    ],
)
def test_unsafe_production_settings_are_refused(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        make_settings(**{**PROD, **change})


def test_members_report_their_own_usage_outside_production_only() -> None:
    assert make_settings().usage_self_report_enabled
    assert not make_settings(**PROD).usage_self_report_enabled
    assert make_settings(**PROD, usage_self_report=True).usage_self_report_enabled
    assert not make_settings(usage_self_report=False).usage_self_report_enabled


def test_test_key_in_production_needs_explicit_consent() -> None:
    settings = make_settings(
        **{**PROD, "stripe_secret_key": "sk_test_" + "d" * 20},
        stripe_allow_test_key_in_production=True,
    )
    assert not settings.livemode


@pytest.mark.parametrize("environment", ["development", "test"])
def test_live_key_is_refused_outside_production(environment: str) -> None:
    with pytest.raises(ValidationError, match="live Stripe key is refused"):
        make_settings(environment=environment, stripe_secret_key="sk_live_" + "e" * 20)


def test_malformed_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="must start with"):
        make_settings(stripe_secret_key="pk_test_123")


def test_development_defaults_are_the_embedded_mode() -> None:
    settings = make_settings(environment="development")
    assert settings.uses_emulator
    assert settings.uses_memory_store
    assert settings.graphiql_enabled
    assert settings.dev_headers_enabled
    assert not make_settings(environment="test").dev_headers_enabled


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_one, whsec_two")
    monkeypatch.setenv("MONGODB_TIMEOUT_MS", "1500")
    monkeypatch.setenv("GRAPHIQL", "false")
    settings = get_settings(_env_file=None)
    assert [s.get_secret_value() for s in settings.stripe_webhook_secrets] == [
        "whsec_one",
        "whsec_two",
    ]
    assert settings.mongodb_timeout_ms == 1500
    assert not settings.graphiql_enabled


def test_secrets_do_not_show_in_repr() -> None:
    settings = make_settings(stripe_secret_key="sk_test_" + "f" * 20)
    assert "ffff" not in repr(settings)


def test_env_example_lists_every_setting_in_field_order() -> None:
    text = (Path(__file__).parent.parent / ".env.example").read_text(encoding="utf-8")
    names = re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE)
    expected = [
        "STRIPE_WEBHOOK_SECRET" if name == "stripe_webhook_secrets" else name.upper()
        for name in Settings.model_fields
    ]
    assert names == expected
    # each variable has a comment line right above it
    lines = text.splitlines()
    for name in expected:
        index = next(i for i, line in enumerate(lines) if re.match(rf"^#?\s*{name}=", line))
        assert lines[index - 1].startswith("# "), name


def test_dev_headers_default_only_on_the_embedded_setup() -> None:
    assert make_settings(environment="development").dev_headers_enabled
    real_key = make_settings(environment="development", stripe_secret_key="sk_test_" + "g" * 20)
    assert not real_key.dev_headers_enabled
    real_db = make_settings(environment="development", mongodb_uri="mongodb://db:27017/")
    assert not real_db.dev_headers_enabled
    assert make_settings(
        environment="development", mongodb_uri="mongodb://db:27017/", auth_dev_headers=True
    ).dev_headers_enabled


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("https://billing.example.com/", "https://billing.example.com"),
        ("https://example.com:8443/billing/", "https://example.com:8443/billing"),
        ("http://[::1]:8000", "http://[::1]:8000"),
    ],
)
def test_public_base_url_is_an_http_address(value: str, expected: str) -> None:
    assert make_settings(public_base_url=value).public_base_url == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "billing.example.com",
        "ftp://billing.example.com",
        "https://",
        "https://billing.example.com?x=1",
        "https://billing.example.com/#top",
        "https://user:pw@billing.example.com",
        "https://billing.example.com:99999",
        "https://billing example.com",
    ],
)
def test_a_malformed_public_base_url_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="PUBLIC_BASE_URL"):
        make_settings(public_base_url=value)


def test_a_production_base_url_may_have_a_path_prefix() -> None:
    settings = make_settings(**{**PROD, "public_base_url": "https://example.com/billing"})
    assert settings.public_base_url == "https://example.com/billing"


def test_log_level_is_one_of_the_known_levels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "debug")
    assert get_settings(_env_file=None).log_level == "DEBUG"
    monkeypatch.setenv("LOG_LEVEL", "LOUD")
    with pytest.raises(ValidationError, match="log_level") as caught:
        get_settings(_env_file=None)
    assert "'DEBUG', 'INFO', 'WARNING' or 'ERROR'" in str(caught.value)
