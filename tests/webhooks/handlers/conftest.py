"""Fixtures of the handler tests: the real app with a webhook signing secret (on mongomock; a
test module that runs on both stores brings its own ``client``), and the answers of Stripe that
a test decides (``stripe``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from revenue_engine.documents import WebhookEvent
from revenue_engine.gateway import StripeGateway, parse_subscription
from revenue_engine.gateway.models.customer import parse_checkout_session, parse_customer
from revenue_engine.gateway.models.payment import parse_payment_intent
from revenue_engine.settings import Settings
from tests.conftest import make_settings
from tests.stripe_events import post, with_secrets

#: The gateway's reads that handlers make.
READS = (
    "retrieve_subscription",
    "retrieve_checkout_session",
    "retrieve_customer",
    "retrieve_customer_defaults",
    "retrieve_payment_intent",
    "list_saved_methods",
)


@pytest.fixture
async def client(client_for: Callable[[Settings], Any]) -> httpx.AsyncClient:
    settings = with_secrets(make_settings(mongodb_database=f"t_{uuid.uuid4().hex[:12]}"))
    started: httpx.AsyncClient = await client_for(settings)
    return started


class Stripe:
    """Stripe's answers to the handlers' reads (``READS``) for one test: ``answers[read]`` is
    returned, or raised if it is an exception; a read without an answer fails the test.
    ``calls`` lists the reads made, in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        self.answers: dict[str, Any] = {}
        for name in READS:
            monkeypatch.setattr(StripeGateway, name, self._read(name))

    def _read(self, name: str) -> Callable[..., Any]:
        async def read(gateway: StripeGateway, object_id: str) -> Any:
            self.calls.append(name)
            if name not in self.answers:
                pytest.fail(f"the handler asked Stripe: {name}({object_id})")
            answer = self.answers[name]
            if isinstance(answer, Exception):
                raise answer
            # The gateway answers its read models.
            if name == "retrieve_subscription":
                return parse_subscription(answer)
            if name == "retrieve_payment_intent":
                return parse_payment_intent(answer)
            if name == "retrieve_checkout_session":
                return parse_checkout_session(answer)
            if name == "retrieve_customer":
                return parse_customer(answer)
            return answer

        return read


@pytest.fixture
def stripe(monkeypatch: pytest.MonkeyPatch) -> Stripe:
    return Stripe(monkeypatch)


async def row(event_id: str) -> WebhookEvent:
    found = await WebhookEvent.find_one({"event_id": event_id})
    assert found is not None
    return found


async def answered(client: httpx.AsyncClient, payload: dict[str, Any], status: str) -> WebhookEvent:
    """Deliver ``payload`` signed; it is answered 200 with ``status``. Returns its ledger row."""
    response = await post(client, payload)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == status
    stored = await row(payload["id"])
    assert stored.status.value == status
    return stored
