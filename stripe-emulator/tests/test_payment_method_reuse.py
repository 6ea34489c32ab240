"""A PaymentMethod that is not attached to a Customer is good for one payment, as on Stripe.

Stripe answers a second use of such a PaymentMethod (or of one detached from its customer)
with a 400 ``invalid_request_error`` and no ``code``; a PaymentMethod attached to a Customer
(or saved by ``setup_future_usage``) may be charged again and again.
"""

from __future__ import annotations

import pytest
import stripe

from emulator_helpers import SDK_HTTPX_WARNING, make_customer
from stripe_emulator import Emulator

pytestmark = [SDK_HTTPX_WARNING]

REUSE_MESSAGE = (
    "The provided PaymentMethod was previously used with a PaymentIntent without Customer "
    "attachment, shared with a connected account without Customer attachment, or was detached "
    "from a Customer. It may not be used again. To use a PaymentMethod multiple times, you must "
    "attach it to a Customer first."
)
ATTACH_MESSAGE = (
    "This PaymentMethod was previously used without being attached to a Customer or was "
    "detached from a Customer, and may not be used again."
)


async def _intent(client: stripe.StripeClient, customer: str | None = None) -> stripe.PaymentIntent:
    params: dict[str, object] = {"amount": 1500, "currency": "usd"}
    if customer:
        params["customer"] = customer
    return await client.v1.payment_intents.create_async(params=params)  # type: ignore[arg-type]


async def _card(client: stripe.StripeClient, test_card: str = "tok_visa") -> str:
    pm = await client.v1.payment_methods.create_async(
        params={"type": "card", "card": {"token": test_card}}
    )
    assert pm.customer is None
    return pm.id


def _assert_reuse_refused(error: stripe.InvalidRequestError) -> None:
    assert error.http_status == 400
    assert error.user_message == REUSE_MESSAGE
    assert (error.code, error.param) == (None, None)
    assert error.error is not None
    assert error.error.type == "invalid_request_error"


async def test_a_used_unattached_card_cannot_pay_again(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    owner = await make_customer(client, card=None)
    other = await make_customer(client, card=None, email="other@example.com")
    card = await _card(client)
    first = await _intent(client, owner.id)
    paid = await client.v1.payment_intents.confirm_async(first.id, params={"payment_method": card})
    assert paid.status == "succeeded"

    for customer in (owner.id, other.id, None):  # the same buyer, someone else, a guest
        second = await _intent(client, customer)
        with pytest.raises(stripe.InvalidRequestError) as refused:
            await client.v1.payment_intents.confirm_async(
                second.id, params={"payment_method": card}
            )
        _assert_reuse_refused(refused.value)
        again = await client.v1.payment_intents.retrieve_async(second.id)
        assert (again.status, again.payment_method, again.latest_charge) == (
            "requires_payment_method",
            None,
            None,
        )
    # Creating and confirming in one call is refused the same way, and makes nothing.
    intents = len(emulator.objects("payment_intent"))
    with pytest.raises(stripe.InvalidRequestError) as at_once:
        await client.v1.payment_intents.create_async(
            params={"amount": 900, "currency": "usd", "payment_method": card, "confirm": True}
        )
    _assert_reuse_refused(at_once.value)
    assert len(emulator.objects("payment_intent")) == intents
    assert len(emulator.objects("charge")) == 1
    # Nor can it be saved afterwards.
    with pytest.raises(stripe.InvalidRequestError) as attach:
        await client.v1.payment_methods.attach_async(card, params={"customer": owner.id})
    assert attach.value.http_status == 400
    assert attach.value.error is not None
    assert attach.value.error.message == ATTACH_MESSAGE
    assert (await client.v1.payment_methods.retrieve_async(card)).customer is None


async def test_a_declined_attempt_uses_the_card_up_too(client: stripe.StripeClient) -> None:
    card = await _card(client, "tok_chargeDeclined")
    intent = await _intent(client)
    with pytest.raises(stripe.CardError):
        await client.v1.payment_intents.confirm_async(intent.id, params={"payment_method": card})
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await client.v1.payment_intents.confirm_async(intent.id, params={"payment_method": card})
    _assert_reuse_refused(refused.value)


async def test_a_detached_card_cannot_pay_again(client: stripe.StripeClient) -> None:
    customer = await make_customer(client, card=None)
    card = await _card(client)
    await client.v1.payment_methods.attach_async(card, params={"customer": customer.id})
    await client.v1.payment_methods.detach_async(card)
    intent = await _intent(client, customer.id)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await client.v1.payment_intents.confirm_async(intent.id, params={"payment_method": card})
    _assert_reuse_refused(refused.value)


async def test_an_attached_card_pays_again_and_again(client: stripe.StripeClient) -> None:
    customer = await make_customer(client, card=None)
    card = await _card(client)
    await client.v1.payment_methods.attach_async(card, params={"customer": customer.id})
    for _ in range(3):
        intent = await _intent(client, customer.id)
        paid = await client.v1.payment_intents.confirm_async(
            intent.id, params={"payment_method": card}
        )
        assert paid.status == "succeeded"


async def test_setup_future_usage_saves_the_card_to_the_customer(
    client: stripe.StripeClient, emulator: Emulator
) -> None:
    customer = await make_customer(client, card=None)
    card = await _card(client)
    intent = await client.v1.payment_intents.create_async(
        params={
            "amount": 1500,
            "currency": "usd",
            "customer": customer.id,
            "setup_future_usage": "off_session",
        }
    )
    await client.v1.payment_intents.confirm_async(intent.id, params={"payment_method": card})
    saved = await client.v1.payment_methods.retrieve_async(card)
    assert saved.customer == customer.id
    assert [e["data"]["object"]["id"] for e in emulator.events("payment_method.attached")] == [card]
    again = await _intent(client, customer.id)
    paid = await client.v1.payment_intents.confirm_async(again.id, params={"payment_method": card})
    assert paid.status == "succeeded"


async def test_test_ids_are_a_fresh_card_every_time(client: stripe.StripeClient) -> None:
    # ``pm_card_visa`` names a new PaymentMethod on each use (Stripe clones it), so using it
    # twice is two cards, never a reuse.
    for _ in range(2):
        intent = await _intent(client)
        paid = await client.v1.payment_intents.confirm_async(
            intent.id, params={"payment_method": "pm_card_visa"}
        )
        assert paid.status == "succeeded"
    first = await client.v1.payment_methods.retrieve_async("pm_card_visa")
    second = await client.v1.payment_methods.retrieve_async("pm_card_visa")
    assert first.id != second.id
    assert first.customer is None
