"""The embedded default's wiring: the built-in Stripe emulator mounted in the engine, and the
engine's webhook route registered with it so events flow back as they would from Stripe.

Only used when no Stripe key and no API base are configured (``Settings.embedded_emulator``);
with real keys nothing here runs and the engine talks to Stripe.

The emulator is a distribution of its own, ``stripe-emulator`` (the ``embedded`` extra, which
``make run`` installs); production installs do not have it. Without it the embedded default
stops at start with :class:`EmulatorNotInstalled`, whose message says what to install.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import TYPE_CHECKING

import httpx

from revenue_engine.gateway import EMULATOR_API_KEY, EMULATOR_MOUNT
from revenue_engine.settings import Settings
from revenue_engine.webhooks.dispatch import MAX_ATTEMPTS

if TYPE_CHECKING:
    from stripe_emulator import Emulator as Emulator  # re-exported: app.py names the type

log = logging.getLogger(__name__)

#: What to install; the embedded default adds that a Stripe key does without.
INSTALL_HINT = (
    "pip install ./stripe-emulator '.[embedded]' from the repository (what `make run` does)"
)
EMBEDDED_HINT = f"{INSTALL_HINT}, or set STRIPE_SECRET_KEY to use Stripe"


class EmulatorNotInstalled(RuntimeError):
    """The ``stripe_emulator`` package is missing: the ``embedded`` extra is not installed."""

    def __init__(self, hint: str = INSTALL_HINT) -> None:
        super().__init__(f"the embedded Stripe emulator is not installed: {hint}")


def require_emulator(hint: str = INSTALL_HINT) -> None:
    """Raise :class:`EmulatorNotInstalled` unless ``stripe_emulator`` can be imported."""
    if importlib.util.find_spec("stripe_emulator") is None:
        raise EmulatorNotInstalled(hint)


def build_emulator(settings: Settings) -> Emulator:
    """The emulator of the embedded default, mounted at ``PUBLIC_BASE_URL + EMULATOR_MOUNT``."""
    require_emulator(EMBEDDED_HINT)
    from stripe_emulator import Emulator

    emulator = Emulator(settings.public_base_url.rstrip("/") + EMULATOR_MOUNT)
    # Deliver as often as the engine keeps retrying: its MAX_ATTEMPTS-th failing attempt parks
    # the event as ``failed``, so no event is left ``processing`` when the emulator gives up.
    emulator.configure_deliveries(max_attempts=MAX_ATTEMPTS)
    return emulator


async def register_webhook_endpoint(
    emulator: Emulator, settings: Settings, enabled_events: list[str]
) -> str:
    """Register ``PUBLIC_BASE_URL + STRIPE_WEBHOOK_PATH`` with the emulator, as an operator
    registers the endpoint at Stripe; returns its signing secret. Runs in-process (the server
    is not accepting connections yet while the app starts)."""
    url = settings.public_base_url.rstrip("/") + settings.stripe_webhook_path
    transport = httpx.ASGITransport(app=emulator.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as client:
        response = await client.post(
            "/v1/webhook_endpoints",
            headers={"authorization": f"Bearer {EMULATOR_API_KEY}"},
            data={"url": url, "enabled_events[]": enabled_events},
        )
    response.raise_for_status()
    endpoint = response.json()
    log.info("emulator webhook endpoint registered endpoint=%s url=%s", endpoint["id"], url)
    secret: str = endpoint["secret"]
    return secret
