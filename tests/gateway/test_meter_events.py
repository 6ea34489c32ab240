"""``create_meter_event`` through the real SDK against a stand-in Stripe answering as Stripe
answers: a refused duplicate identifier becomes ``DuplicateMeterEvent`` (the report is at
Stripe), any other refusal stays ``PaymentProviderRejected``, a 5xx ``ServiceUnavailable``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from stripe_emulator.server import UvicornThread

from revenue_engine import errors
from revenue_engine.errors import DuplicateMeterEvent, MeterEventTimestampRefused
from revenue_engine.gateway import StripeGateway
from revenue_engine.gateway.errors import is_duplicate_identifier, is_timestamp_refusal
from revenue_engine.settings import STRIPE_API_VERSION

#: What the stand-in answers next: (status, error body) or None for success.
ANSWERS: list[tuple[int, dict[str, Any]] | None] = []
RECEIVED: list[dict[str, str]] = []


async def meter_events(request: Request) -> JSONResponse:
    form = await request.form()
    RECEIVED.append({k: str(v) for k, v in form.items()})
    answer = ANSWERS.pop(0) if ANSWERS else None
    if answer is None:
        return JSONResponse({"object": "billing.meter_event", "identifier": form.get("identifier")})
    status, error = answer
    return JSONResponse({"error": error}, status_code=status)


@pytest.fixture(scope="module")
def stripe_url() -> Iterator[str]:
    app = Starlette(routes=[Route("/v1/billing/meter_events", meter_events, methods=["POST"])])
    with UvicornThread(app) as server:
        yield server.url


@pytest.fixture
async def gateway(stripe_url: str) -> Any:
    ANSWERS.clear()
    RECEIVED.clear()
    gw = StripeGateway(
        "sk_test_meter",
        api_version=STRIPE_API_VERSION,
        timeout=5,
        max_network_retries=0,
        api_base=stripe_url,
    )
    yield gw
    await gw.close()


PARAMS = {
    "event_name": "revenue_engine.api_calls",
    "payload": {"stripe_customer_id": "cus_1", "value": "500"},
    "identifier": "re_abc",
    "timestamp": 1_800_000_000,
}


def invalid(code: str | None, message: str, param: str | None) -> tuple[int, dict[str, Any]]:
    return 400, {"type": "invalid_request_error", "code": code, "message": message, "param": param}


async def test_the_event_is_sent_with_its_identifier_and_key(gateway: StripeGateway) -> None:
    answer = await gateway.create_meter_event(PARAMS, key="re-meter_event-1")
    assert answer.identifier == "re_abc"
    [form] = RECEIVED
    assert form["identifier"] == "re_abc"
    assert form["payload[value]"] == "500"


@pytest.mark.parametrize(
    "answer",
    [
        invalid("resource_already_exists", "A meter event with this identifier exists.", None),
        invalid(None, "An event already exists with identifier re_abc.", None),  # Stripe
        invalid(None, "An event already exists with identifier re_abc.", "identifier"),
        invalid("parameter_invalid", "Duplicate identifier: re_abc.", "identifier"),
    ],
)
async def test_a_refused_duplicate_identifier_is_delivered(
    gateway: StripeGateway, answer: tuple[int, dict[str, Any]]
) -> None:
    ANSWERS.append(answer)
    with pytest.raises(DuplicateMeterEvent) as raised:
        await gateway.create_meter_event(PARAMS, key="re-meter_event-1")
    assert raised.value.key == "re_abc"


async def test_other_refusals_and_outages_keep_their_meaning(gateway: StripeGateway) -> None:
    ANSWERS.append(invalid("parameter_invalid", "Timestamp too far in the past.", "timestamp"))
    with pytest.raises(errors.PaymentProviderRejected) as rejected:
        await gateway.create_meter_event(PARAMS, key="re-meter_event-1")
    assert not isinstance(rejected.value, DuplicateMeterEvent)
    ANSWERS.append((500, {"type": "api_error", "message": "boom"}))
    with pytest.raises(errors.ServiceUnavailable):
        await gateway.create_meter_event(PARAMS, key="re-meter_event-1")


def test_only_invalid_requests_can_be_duplicates() -> None:
    assert not is_duplicate_identifier(None)
    assert not is_duplicate_identifier(stripe.APIError("already exists", http_status=500))
    assert not is_duplicate_identifier(
        stripe.InvalidRequestError("already exists", "payload", code="parameter_invalid")
    )
    assert not is_duplicate_identifier(
        stripe.InvalidRequestError("The event timestamp cannot be more than 35 days in past.", None)
    )


@pytest.mark.parametrize(
    "answer",
    [
        invalid(  # Stripe's message, with neither code nor param
            None,
            "The event timestamp cannot be more than 35 days in past. Expected a timestamp "
            "greater than or equal to 1797000000.",
            None,
        ),
        invalid("timestamp_too_far_in_past", "Too old.", "timestamp"),  # the emulator's
        invalid(
            "timestamp_in_future",
            "The event timestamp cannot be more than 5 minutes in the future.",
            "timestamp",
        ),
        invalid("parameter_invalid", "Timestamp too far in the past.", "timestamp"),
    ],
)
async def test_a_refused_timestamp_says_so(
    gateway: StripeGateway, answer: tuple[int, dict[str, Any]]
) -> None:
    ANSWERS.append(answer)
    with pytest.raises(MeterEventTimestampRefused) as refused:
        await gateway.create_meter_event(PARAMS, key="re-meter_event-1")
    assert isinstance(refused.value, errors.PaymentProviderRejected)  # still a refusal
    assert refused.value.param == "timestamp"
    assert not is_timestamp_refusal(
        stripe.InvalidRequestError("An event already exists with identifier re_abc.", None)
    )
