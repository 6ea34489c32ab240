"""One-time payments and refunds end to end: duplicate guard, declines, refund bounds, and
whose payment method may pay for an intent."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import stripe
from stripe_emulator import Emulator
from stripe_emulator.server import EmulatorServer

from revenue_engine.documents import Payment
from revenue_engine.settings import Settings
from tests.e2e.conftest import engine_settings
from tests.e2e.ops import (
    CANCEL_PI,
    CONFIRM_PI,
    CREATE_CUSTOMER,
    CREATE_PI,
    REFUND,
    call,
    only,
)

ORDER = {"amount": 2900, "currency": "usd", "metadata": [{"key": "order", "value": "o-1"}]}


async def create(
    engine: httpx.AsyncClient, *, org: str = "org_a", **overrides: object
) -> dict[str, Any]:
    return only(await call(engine, CREATE_PI, {"input": {**ORDER, **overrides}}, org=org))


async def test_pay_and_refund_partially_then_fully(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    created = await create(engine)
    assert created["__typename"] == "PaymentIntentPayload"
    assert created["clientSecret"].startswith(created["paymentIntent"]["id"])
    pid = created["paymentIntent"]["id"]
    confirmed = only(await call(engine, CONFIRM_PI, {"id": pid, "pm": "pm_card_visa"}))
    assert confirmed["paymentIntent"]["status"] == "succeeded"

    partial = only(await call(engine, REFUND, {"id": pid, "amount": 900}, admin=True))
    assert partial["paymentIntent"]["amountRefunded"] == 900
    too_much = only(await call(engine, REFUND, {"id": pid, "amount": 2001}, admin=True))
    assert too_much["__typename"] == "ValidationError"
    assert too_much["fields"] == [{"field": "amount", "message": "must be between 1 and 2000"}]
    rest = only(await call(engine, REFUND, {"id": pid, "amount": None}, admin=True))
    assert rest["paymentIntent"]["amountRefunded"] == 2900
    assert [r["amount"] for r in emulator.objects("refund")] == [2000, 900]
    nothing_left = only(await call(engine, REFUND, {"id": pid, "amount": None}, admin=True))
    assert nothing_left["__typename"] == "ValidationError"
    assert len(emulator.objects("refund")) == 2


async def test_a_metadata_key_holding_nul_is_a_validation_error(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    # BSON field names cannot hold NUL: the store refused the document after Stripe had made
    # the intent (INTERNAL_SERVER_ERROR); now nothing is made.
    result = await create(engine, metadata=[{"key": "a\x00b", "value": "x"}])
    assert result["__typename"] == "ValidationError"
    assert result["fields"] == [
        {"field": "metadata", "message": "keys must not contain the NUL character"}
    ]
    assert emulator.objects("payment_intent") == []
    assert await Payment.find_all().count() == 0


async def test_identical_requests_within_the_window_return_the_same_intent(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    first, second = await asyncio.gather(create(engine), create(engine))
    third = await create(engine)
    ids = {r["paymentIntent"]["id"] for r in (first, second, third)}
    assert len(ids) == 1
    assert len(emulator.objects("payment_intent")) == 1
    other = await create(engine, amount=3000)
    assert other["paymentIntent"]["id"] not in ids
    assert await Payment.find_all().count() == 2


async def test_ten_identical_requests_of_a_new_organization_make_one_intent(
    client_for: Callable[[Settings], Any], emulator_server: EmulatorServer, emulator: Emulator
) -> None:
    # The organization has no customer yet: while one request makes it at Stripe, another may
    # insert its payment; each still counts the identical payments before anything else, so
    # all ten share one idempotency key (two or three intents were made before). No rate
    # limit: its store round trip spaced the requests out enough to hide the race.
    engine: httpx.AsyncClient = await client_for(
        engine_settings(emulator_server, rate_limit_stripe_mutations=0)
    )
    await asyncio.gather(*(create(engine, org="org_warm") for _ in range(10)))  # warm caches
    results = await asyncio.gather(*(create(engine, org="org_new") for _ in range(10)))
    assert {r["__typename"] for r in results} == {"PaymentIntentPayload"}
    assert len({r["paymentIntent"]["id"] for r in results}) == 1
    assert len(emulator.objects("payment_intent")) == 2  # org_warm's and org_new's
    assert await Payment.find({"organization_id": "org_new"}).count() == 1


async def test_window_zero_turns_the_guard_off(
    client_for: Callable[[Settings], Any], emulator_server: EmulatorServer, emulator: Emulator
) -> None:
    engine: httpx.AsyncClient = await client_for(
        engine_settings(emulator_server, payment_dedup_window_seconds=0)
    )
    await create(engine)
    await create(engine)
    assert len(emulator.objects("payment_intent")) == 2


async def test_declined_confirmation_is_typed_and_recorded(engine: httpx.AsyncClient) -> None:
    pid = (await create(engine))["paymentIntent"]["id"]
    declined = only(await call(engine, CONFIRM_PI, {"id": pid, "pm": "pm_card_chargeDeclined"}))
    assert declined["__typename"] == "PaymentDeclinedError"
    assert declined["declineCode"] == "generic_decline"
    payment = await Payment.find_one({"stripe_payment_intent_id": pid})
    assert payment is not None
    assert payment.status == "requires_payment_method"
    assert payment.failure_reason
    canceled = only(await call(engine, CANCEL_PI, {"id": pid}))
    assert canceled["paymentIntent"]["status"] == "canceled"
    not_paid = only(await call(engine, REFUND, {"id": pid, "amount": None}, admin=True))
    assert not_paid["__typename"] == "ValidationError"


async def test_another_organizations_payment_is_not_found(engine: httpx.AsyncClient) -> None:
    pid = (await create(engine))["paymentIntent"]["id"]
    query = "query($id: ID!) { paymentIntent(id: $id) { id } }"
    assert await call(engine, query, {"id": pid}, org="org_b") == {"paymentIntent": None}
    for op, variables in (
        (CONFIRM_PI, {"id": pid, "pm": "pm_card_visa"}),
        (CANCEL_PI, {"id": pid}),
        (REFUND, {"id": pid, "amount": 1}),
    ):
        result = only(await call(engine, op, variables, org="org_b", admin=True))
        assert result["__typename"] == "NotFoundError"
    payment = await Payment.find_one({"stripe_payment_intent_id": pid})
    assert payment is not None
    assert payment.status == "requires_payment_method"


async def test_refunds_need_the_admin_role(engine: httpx.AsyncClient, emulator: Emulator) -> None:
    pid = (await create(engine))["paymentIntent"]["id"]
    await call(engine, CONFIRM_PI, {"id": pid, "pm": "pm_card_visa"})
    response = await engine.post(
        "/graphql",
        json={"query": REFUND, "variables": {"id": pid, "amount": None}},
        headers={"x-organization-id": "org_a"},
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert emulator.objects("refund") == []


@pytest.mark.parametrize("outcome", ["succeeded", "canceled"])
async def test_an_intent_spent_at_stripe_before_its_webhook_is_not_handed_out_again(
    engine: httpx.AsyncClient,
    emulator: Emulator,
    stripe_client: stripe.StripeClient,
    outcome: str,
) -> None:
    # Paid (by Stripe.js) or canceled at Stripe; no webhook has told the engine yet.
    first = (await create(engine))["paymentIntent"]["id"]
    if outcome == "succeeded":
        await stripe_client.v1.payment_intents.confirm_async(
            first, params={"payment_method": "pm_card_visa"}
        )
    else:
        await stripe_client.v1.payment_intents.cancel_async(first)
    stale = await Payment.find_one({"stripe_payment_intent_id": first})
    assert stale is not None
    assert stale.status == "requires_payment_method"

    again = await create(engine)
    assert again["__typename"] == "PaymentIntentPayload"
    second = again["paymentIntent"]["id"]
    assert second != first
    assert again["paymentIntent"]["status"] == "requires_payment_method"
    assert again["clientSecret"].startswith(second)
    synced = await Payment.find_one({"stripe_payment_intent_id": first})
    assert synced is not None
    assert synced.status == outcome
    assert len(emulator.objects("payment_intent")) == 2
    keys = emulator.idempotency_keys("POST", "/v1/payment_intents")
    assert len(keys) == 2  # a new key: not Stripe's replay of the first creation
    # The new intent is the one handed out from now on.
    assert (await create(engine))["paymentIntent"]["id"] == second
    assert len(emulator.objects("payment_intent")) == 2


async def test_double_submitted_cancel_cancels_once(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    pid = (await create(engine))["paymentIntent"]["id"]
    results = await asyncio.gather(*(call(engine, CANCEL_PI, {"id": pid}) for _ in range(2)))
    first, second = (only(r) for r in results)
    assert first == second
    assert first["paymentIntent"]["status"] == "canceled"
    assert len(emulator.idempotency_keys("POST", "/v1/payment_intents/*/cancel")) == 1
    [intent] = emulator.objects("payment_intent")
    assert intent["status"] == "canceled"
    payment = await Payment.find_one({"stripe_payment_intent_id": pid})
    assert payment is not None
    assert payment.status == "canceled"


async def saved_card(
    engine: httpx.AsyncClient, stripe_client: stripe.StripeClient, org: str
) -> str:
    """A card saved to the organization's customer at Stripe (as Stripe.js would save it)."""
    customer_id = only(await call(engine, CREATE_CUSTOMER, org=org))["customer"]["id"]
    card = await stripe_client.v1.payment_methods.attach_async(
        "pm_card_visa", params={"customer": customer_id}
    )
    assert card.customer == customer_id
    return str(card.id)


def intent_at_stripe(emulator: Emulator, intent_id: str) -> dict[str, Any]:
    [intent] = [pi for pi in emulator.objects("payment_intent") if pi["id"] == intent_id]
    return intent


async def test_another_organizations_saved_card_is_not_found_before_stripe_is_asked(
    engine: httpx.AsyncClient, emulator: Emulator, stripe_client: stripe.StripeClient
) -> None:
    a_card = await saved_card(engine, stripe_client, "org_a")
    await saved_card(engine, stripe_client, "org_b")  # B has a customer (and a card) of its own
    b_intent = (await create(engine, amount=1200, org="org_b"))["paymentIntent"]["id"]

    answers = []
    for pm in (a_card, "pm_" + "x" * 24):  # A's card, and an id that exists nowhere
        answer = only(await call(engine, CONFIRM_PI, {"id": b_intent, "pm": pm}, org="org_b"))
        assert answer["__typename"] == "NotFoundError", answer
        assert answer["code"] == "NOT_FOUND"
        answers.append(answer["message"].replace(pm, "<id>"))
    assert answers[0] == answers[1]  # nothing tells A's card from no card at all
    # Stripe was never asked to confirm, and B's intent is as it was.
    assert emulator.request_count("POST", "/v1/payment_intents/*/confirm") == 0
    intent = intent_at_stripe(emulator, b_intent)
    assert (intent["status"], intent["payment_method"], intent["latest_charge"]) == (
        "requires_payment_method",
        None,
        None,
    )
    assert emulator.objects("charge") == []
    payment = await Payment.find_one({"stripe_payment_intent_id": b_intent})
    assert payment is not None
    assert (payment.status, payment.declines) == ("requires_payment_method", 0)

    # A's saved card pays for A's intents, again and again.
    for amount in (700, 800):
        mine = (await create(engine, amount=amount))["paymentIntent"]["id"]
        paid = only(await call(engine, CONFIRM_PI, {"id": mine, "pm": a_card}))
        assert paid["paymentIntent"]["status"] == "succeeded", paid


async def test_a_card_another_organization_used_without_saving_cannot_pay_again(
    engine: httpx.AsyncClient, emulator: Emulator
) -> None:
    # A pays with a card Stripe.js collected (not saved to A's customer): the card is used up.
    a_intent = (await create(engine))["paymentIntent"]["id"]
    paid = only(await call(engine, CONFIRM_PI, {"id": a_intent, "pm": "pm_card_visa"}))
    assert paid["paymentIntent"]["status"] == "succeeded"
    used = intent_at_stripe(emulator, a_intent)["payment_method"]
    assert used.startswith("pm_")

    b_intent = (await create(engine, amount=1200, org="org_b"))["paymentIntent"]["id"]
    answer = only(await call(engine, CONFIRM_PI, {"id": b_intent, "pm": used}, org="org_b"))
    # Stripe refuses it; the engine's answer is typed, not a masked internal error.
    assert answer["__typename"] == "ProviderRejectedError", answer
    assert answer["code"] == "PROVIDER_REJECTED"
    assert "may not be used again" in answer["message"]
    intent = intent_at_stripe(emulator, b_intent)
    assert (intent["status"], intent["latest_charge"]) == ("requires_payment_method", None)
    assert len(emulator.objects("charge")) == 1  # A's payment only
    payment = await Payment.find_one({"stripe_payment_intent_id": b_intent})
    assert payment is not None
    assert payment.status == "requires_payment_method"
