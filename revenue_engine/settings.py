"""Configuration: one ``Settings`` class read from the environment (and ``.env``).

Every variable is documented in ``.env.example`` in the same order as the fields below.
There is no module-level singleton: ``create_app(settings)`` takes an instance, the CLI calls
``get_settings()``, and tests build ``Settings(...)`` directly.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

#: The Stripe API version every request and every webhook payload is pinned to.
STRIPE_API_VERSION = "2026-10-28.endive"

#: Demo plans shipped with the package; used when ``PLANS_FILE`` is not set.
DEMO_PLANS_FILE = Path(__file__).parent / "data" / "demo_plans.yaml"

# Substrings that mark a secret as a placeholder copied from .env.example.
_PLACEHOLDER_MARKERS = ("change-me", "changeme", "placeholder", "replace-me", "xxxx", "example")


# The webhook route: an absolute path of plain segments, not one of the API's own routes.
_WEBHOOK_PATH = re.compile(r"^(/[A-Za-z0-9._~-]+)+$")
_RESERVED_PATHS = frozenset({"/graphql", "/healthz", "/readyz", "/v1/usage"})


class Environment(enum.StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class LogFormat(enum.StrEnum):
    KV = "kv"
    JSON = "json"


class LogLevel(enum.StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


# PUBLIC_BASE_URL: scheme://host[:port] and an optional path prefix of plain segments.
_BASE_URL = re.compile(
    r"(?P<scheme>https?)://(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:(?P<port>[0-9]{1,5}))?"
    r"(?P<path>(/[A-Za-z0-9._~-]+)*)/?"
)


def _is_loopback(host: str) -> bool:
    """localhost, 127.0.0.0/8, ::1 or the unspecified address: not reachable by Stripe or
    browsers from elsewhere."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


# A CORS origin: scheme://host[:port], nothing after it.
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


class SettingsError(ValueError):
    """Raised when the configuration is unsafe or inconsistent."""


def _is_placeholder(value: str) -> bool:
    lowered = value.lower()
    return any(marker in lowered for marker in _PLACEHOLDER_MARKERS)


class Settings(BaseSettings):
    """All configuration of the engine. Field order matches ``.env.example``."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    # --- runtime -------------------------------------------------------------------------
    environment: Environment = Environment.DEVELOPMENT
    log_level: LogLevel = LogLevel.INFO
    public_base_url: str = "http://127.0.0.1:8000"
    graphiql: bool | None = None  # None: on outside production
    demo_spa: bool | None = None  # None: on outside production

    # --- MongoDB -------------------------------------------------------------------------
    mongodb_uri: SecretStr | None = None  # None or mongomock://… -> in-memory store
    mongodb_database: str = "revenue_engine"
    # Every operation, from its submission (store_timeouts): an outage answers within ~this.
    mongodb_timeout_ms: int = Field(default=3000, ge=100, le=60_000)

    # --- Stripe --------------------------------------------------------------------------
    stripe_secret_key: SecretStr | None = None  # None -> the built-in emulator
    stripe_webhook_secrets: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        validation_alias=AliasChoices("stripe_webhook_secret", "stripe_webhook_secrets"),
    )
    stripe_api_version: str = STRIPE_API_VERSION
    stripe_allow_test_key_in_production: bool = False
    stripe_timeout_seconds: float = Field(default=8.0, gt=0, le=10)
    stripe_max_network_retries: int = Field(default=2, ge=0, le=5)
    stripe_api_base: str | None = None  # None: api.stripe.com, or the emulator without a key

    # --- billing rules -------------------------------------------------------------------
    past_due_grace_days: int = Field(default=7, ge=0, le=60)
    payment_dedup_window_seconds: int = Field(default=300, ge=0, le=86_400)

    # --- usage-based billing -------------------------------------------------------------
    # Service credentials for POST /v1/usage (bearer keys), comma-separated for rotation.
    usage_api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    usage_self_report: bool | None = None  # None: members may report own usage outside production
    usage_late_grace_seconds: int = Field(default=3600, ge=0, le=7 * 86_400)
    meter_event_prefix: str = Field(default="revenue_engine", pattern=r"^[a-z][a-z0-9_]{0,39}$")
    usage_report_interval_seconds: float = Field(default=5.0, gt=0, le=3600)
    usage_report_batch: int = Field(default=100, ge=1, le=1000)
    # POST /v1/usage's body limit: a batch of 1,000 events with 200-character ids passes 256 KiB.
    usage_max_body_bytes: int = Field(default=1_048_576, ge=65_536, le=16_777_216)  # else 413

    # --- webhooks ------------------------------------------------------------------------
    stripe_webhook_path: str = "/webhooks/stripe"  # the URL registered on the Stripe endpoint
    webhook_max_body_bytes: int = Field(default=1_048_576, ge=1024, le=16_777_216)  # else 413

    # --- plans ---------------------------------------------------------------------------
    plans_file: Path | None = None  # None -> the demo plans; required in production

    # --- auth ----------------------------------------------------------------------------
    auth_jwt_secret: SecretStr | None = None  # HS256
    auth_jwks_url: str | None = None  # RS256
    auth_jwks_timeout_seconds: float = Field(default=3.0, gt=0, le=10)
    auth_audience: str = "revenue-engine"
    auth_issuer: str | None = None
    auth_org_claim: str = "org_id"
    auth_roles_claim: str = "roles"
    auth_admin_role: str = "admin"
    auth_dev_headers: bool | None = None  # None: on in development only; never in production

    # --- HTTP, logs and limits -----------------------------------------------------------
    log_format: LogFormat = LogFormat.KV
    http_max_body_bytes: int = Field(default=262_144, ge=1024, le=16_777_216)  # else 413
    # Largest GraphQL answer; above it the answer is one RESPONSE_TOO_LARGE error.
    graphql_max_response_bytes: int = Field(default=4_194_304, ge=65_536, le=268_435_456)
    # Seconds a browser or CDN may reuse a catalog answer to a GraphQL GET (Cache-Control max-age).
    catalog_cache_seconds: int = Field(default=30, ge=0, le=86_400)
    cors_allow_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    cors_allow_credentials: bool = False
    server_timing: bool = True
    rate_limit_stripe_mutations: int = Field(default=20, ge=0, le=1_000_000)  # 0: no limit
    rate_limit_window_seconds: int = Field(default=60, ge=1, le=86_400)

    @field_validator("stripe_webhook_secrets", "usage_api_keys", mode="before")
    @classmethod
    def _split_secrets(cls, value: Any) -> Any:
        # STRIPE_WEBHOOK_SECRET may list several secrets (rotation), comma-separated.
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("cors_allow_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
        return value

    @field_validator("cors_allow_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not _ORIGIN.match(origin):
                raise SettingsError(
                    f"CORS_ALLOW_ORIGINS: {origin!r} is not an origin like https://app.example.com"
                )
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("public_base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        match = _BASE_URL.fullmatch(value)
        port = match.group("port") if match else None
        if match is None or (port is not None and not 0 < int(port) < 65536):
            raise SettingsError(
                f"PUBLIC_BASE_URL: {value!r} is not an http(s) address like "
                "https://billing.example.com (an optional path prefix; no query or fragment)"
            )
        return value.rstrip("/")

    @field_validator("stripe_webhook_path")
    @classmethod
    def _check_webhook_path(cls, value: str) -> str:
        dots = any(segment in {".", ".."} for segment in value.split("/"))
        if not _WEBHOOK_PATH.match(value) or dots or value in _RESERVED_PATHS:
            raise SettingsError(
                "STRIPE_WEBHOOK_PATH must be an absolute path such as /webhooks/stripe, "
                "different from the API's own routes"
            )
        return value

    @model_validator(mode="after")
    def _check_safety(self) -> Settings:
        if self.cors_allow_credentials and "*" in self.cors_allow_origins:
            raise SettingsError("CORS_ALLOW_CREDENTIALS needs explicit origins, not '*'")
        key = self.stripe_secret_key.get_secret_value() if self.stripe_secret_key else None
        live_key = bool(key and key.startswith(("sk_live_", "rk_live_")))
        test_key = bool(key and key.startswith(("sk_test_", "rk_test_")))
        if key is not None and not (live_key or test_key):
            raise SettingsError("STRIPE_SECRET_KEY must start with sk_test_, sk_live_ or rk_…")
        if self.environment is not Environment.PRODUCTION:
            if live_key:
                raise SettingsError("a live Stripe key is refused outside ENVIRONMENT=production")
            return self
        # Production: no embedded fallbacks, no placeholders, no dev conveniences.
        problems: list[str] = []
        if key is None:
            problems.append("STRIPE_SECRET_KEY is required")
        elif test_key and not self.stripe_allow_test_key_in_production:
            problems.append(
                "a test Stripe key is refused in production "
                "(set STRIPE_ALLOW_TEST_KEY_IN_PRODUCTION=true to allow it)"
            )
        if not self.stripe_webhook_secrets:
            problems.append("STRIPE_WEBHOOK_SECRET is required")
        if self.mongodb_uri is None or self.mongodb_uri.get_secret_value().startswith(
            "mongomock://"
        ):
            problems.append("MONGODB_URI must point at a real MongoDB")
        if self.auth_jwt_secret is None and not self.auth_jwks_url:
            problems.append("AUTH_JWT_SECRET or AUTH_JWKS_URL is required")
        if self.auth_jwt_secret is not None and len(self.auth_jwt_secret.get_secret_value()) < 32:
            problems.append("AUTH_JWT_SECRET must be at least 32 characters")
        if any(len(k.get_secret_value()) < 32 for k in self.usage_api_keys):
            problems.append("every USAGE_API_KEYS key must be at least 32 characters")
        secrets = [
            self.stripe_secret_key,
            self.auth_jwt_secret,
            *self.stripe_webhook_secrets,
            *self.usage_api_keys,
        ]
        if any(s is not None and _is_placeholder(s.get_secret_value()) for s in secrets):
            problems.append("a placeholder secret from .env.example is still set")
        if self.plans_file is None:
            problems.append("PLANS_FILE is required (the demo plans are not loaded in production)")
        base = _BASE_URL.fullmatch(self.public_base_url)
        if base is None or base.group("scheme") != "https" or _is_loopback(base.group("host")):
            problems.append("PUBLIC_BASE_URL must be an https address other than localhost")
        if problems:
            raise SettingsError("unsafe production settings: " + "; ".join(problems))
        return self

    # --- derived -------------------------------------------------------------------------
    @property
    def is_production(self) -> bool:
        return self.environment is Environment.PRODUCTION

    @property
    def graphiql_enabled(self) -> bool:
        if self.graphiql is None:
            return not self.is_production
        return self.graphiql

    @property
    def demo_spa_enabled(self) -> bool:
        if self.demo_spa is None:
            return not self.is_production
        return self.demo_spa

    @property
    def usage_self_report_enabled(self) -> bool:
        """May organization members report their own usage (GraphQL ``recordUsage``)?"""
        if self.usage_self_report is None:
            return not self.is_production
        return self.usage_self_report

    @property
    def embedded_emulator(self) -> bool:
        """No Stripe key and no API base: the engine serves the emulator itself."""
        return self.stripe_secret_key is None and self.stripe_api_base is None

    @property
    def dev_headers_enabled(self) -> bool:
        """``x-organization-id`` headers: never in production; by default only in development on
        the embedded setup (no Stripe key, in-memory store), so a staging copy of .env.example
        with real keys or a real database does not trust headers unless told to."""
        if self.is_production:
            return False
        if self.auth_dev_headers is None:
            return (
                self.environment is Environment.DEVELOPMENT
                and self.uses_emulator
                and self.uses_memory_store
            )
        return self.auth_dev_headers

    @property
    def uses_emulator(self) -> bool:
        """True when no Stripe key is configured: the built-in emulator stands in for Stripe."""
        return self.stripe_secret_key is None

    @property
    def livemode(self) -> bool:
        key = self.stripe_secret_key.get_secret_value() if self.stripe_secret_key else ""
        return key.startswith(("sk_live_", "rk_live_"))

    @property
    def uses_memory_store(self) -> bool:
        return self.mongodb_uri is None or self.mongodb_uri.get_secret_value().startswith(
            "mongomock://"
        )

    @property
    def plans_path(self) -> Path:
        return self.plans_file or DEMO_PLANS_FILE


def get_settings(**overrides: Any) -> Settings:
    """Read settings from the environment (and ``.env``); keyword overrides win."""
    return Settings(**overrides)
