"""The embedded default's wiring: the built-in Stripe emulator mounted in the engine, and the
engine's webhook route registered with it so events flow back as they would from Stripe.

Only used when no Stripe key and no API base are configured (``Settings.embedded_emulator``);
with real keys nothing here runs and the engine talks to Stripe.
"""

from __future__ import annotations

import logging

import httpx

from revenue_engine.emulator import Emulator
from revenue_engine.gateway import EMULATOR_API_KEY, EMULATOR_MOUNT
from revenue_engine.settings import Settings
from revenue_engine.webhooks.dispatch import MAX_ATTEMPTS

log = logging.getLogger(__name__)


def build_emulator(settings: Settings) -> Emulator:
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
