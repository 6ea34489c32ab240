"""The billing handlers' outcomes other than "applied", through the real app with signed events:
an event that is not about an object of ours is ``ignored`` without asking Stripe; an object
Stripe does not have, or answers in a shape the engine cannot read, is ``failed`` for good
(Stripe stops retrying; the row keeps the reason for a replay); a customer of no organization
yet is answered 503 so Stripe redelivers. Nothing of the billing state is written on any of
them.

Stripe's answers are decided by each test (``stripe`` in this directory's conftest): its
example objects (``tests.stripe_fixtures``), broken where the test says, or a 404. The same
failures against the emulator's own answers are in ``e2e/test_webhook_failures``.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from revenue_engine.documents import (
    AuditEntry,
    BillingInterval,
    CheckoutSession,
    CheckoutStatus,
    Customer,
    Subscription,
    WebhookEventStatus,
)
from revenue_engine.errors import StripeNotFound
from tests.stripe_events import event, post, stripe_object
from tests.stripe_fixtures import subscription
from tests.webhooks.handlers.conftest import Stripe, answered, row

SESSION = "cs_test_handlers_1"


async def nothing_written() -> None:
    assert await Subscription.find_all().count() == 0
    assert await Customer.find_all().count() == 0


async def test_an_invoice_of_no_subscription_is_ignored(
    client: httpx.AsyncClient, stripe: Stripe
) -> None:
    one_off = stripe_object("invoice", parent=None, subscription=None)
    stored = await answered(client, event("invoice.paid", one_off), "ignored")
    assert stored.last_error == "a one-off invoice: no subscription to update"
    assert stripe.calls == []
    await nothing_written()


async def test_a_customer_of_no_organization_is_ignored(
    client: httpx.AsyncClient, stripe: Stripe
) -> None:
    payload = event("customer.updated", stripe_object("customer", id="cus_of_nobody"))
    stored = await answered(client, payload, "ignored")
    assert stored.last_error == "no organization has this customer"
    assert stripe.calls == []
    await nothing_written()


async def test_a_subscription_stripe_answers_without_a_customer_fails_for_good(
    client: httpx.AsyncClient, stripe: Stripe
) -> None:
    stripe.answers["retrieve_subscription"] = subscription(sub_id="sub_unreadable", customer="")
    payload = event("customer.subscription.updated", subscription(sub_id="sub_unreadable"))
    stored = await answered(client, payload, "failed")
    assert stored.last_error == "MALFORMED_OBJECT: subscription sub_unreadable has no customer"
    assert stripe.calls == ["retrieve_subscription"]
    await nothing_written()


async def checkout_document() -> CheckoutSession:
    document = CheckoutSession(
        stripe_session_id=SESSION,
        organization_id="org_a",
        stripe_customer_id="cus_test_1",
        plan_uid="pro",
        interval=BillingInterval.MONTH,
    )
    await document.insert()
    return document


def completed_session(sub: dict[str, Any] | str) -> dict[str, Any]:
    """The session as Stripe answers it (its subscription expanded) or as its event has it."""
    return stripe_object(
        "checkout.session",
        id=SESSION,
        mode="subscription",
        status="complete",
        payment_status="paid",
        customer="cus_test_1",
        client_reference_id="org_a",
        subscription=sub,
    )


async def session_untouched() -> None:
    stored = await CheckoutSession.find_one({"stripe_session_id": SESSION})
    assert stored is not None
    assert (stored.status, stored.payment_status) == (CheckoutStatus.PENDING, "unpaid")
    assert stored.stripe_subscription_id is None
    assert stored.completed_at is None
    await nothing_written()


async def test_a_session_whose_subscription_is_unreadable_fails_for_good(
    client: httpx.AsyncClient, stripe: Stripe
) -> None:
    await checkout_document()
    broken = subscription(sub_id="sub_unreadable", customer="cus_test_1", status="")
    stripe.answers["retrieve_checkout_session"] = completed_session(broken)
    payload = event("checkout.session.completed", completed_session("sub_unreadable"))
    stored = await answered(client, payload, "failed")
    assert stored.last_error == "MALFORMED_OBJECT: not a Stripe subscription object"
    assert stripe.calls == ["retrieve_checkout_session"]
    await session_untouched()


async def test_a_session_of_a_customer_of_no_organization_yet_is_retried(
    client: httpx.AsyncClient, stripe: Stripe
) -> None:
    """The customer document may be written a moment after Stripe's event: 503, and the
    released row waits for the redelivery."""
    await checkout_document()
    orphan = subscription(sub_id="sub_orphan", customer="cus_test_1", org=None)
    stripe.answers["retrieve_checkout_session"] = completed_session(orphan)
    payload = event("checkout.session.completed", completed_session("sub_orphan"))
    response = await post(client, payload)
    assert response.status_code == 503, response.text
    assert response.json() == {"error": "temporarily unavailable; retry later"}
    released = await row(payload["id"])
    assert released.status is WebhookEventStatus.PROCESSING
    assert released.claimed_at is None
    assert released.last_error == (
        "transient: UnknownOrganization: subscription sub_orphan belongs to customer"
        " cus_test_1 of no organization"
    )
    await session_untouched()


async def test_a_session_stripe_does_not_have_fails_for_good(
    client: httpx.AsyncClient, stripe: Stripe
) -> None:
    await checkout_document()
    stripe.answers["retrieve_checkout_session"] = StripeNotFound(
        "id", f"No such checkout.session: '{SESSION}'"
    )
    payload = event("checkout.session.completed", completed_session("sub_none"))
    stored = await answered(client, payload, "failed")
    assert stored.last_error is not None
    assert stored.last_error.startswith("NOT_FOUND: ")
    assert "does not exist at Stripe" in stored.last_error
    assert SESSION in stored.last_error
    await session_untouched()


async def our_customer() -> Customer:
    customer = Customer(organization_id="org_a", stripe_customer_id="cus_test_1", email="a@x.io")
    await customer.insert()
    return customer


async def test_a_customer_deleted_while_stripe_still_has_it_is_ignored(
    client: httpx.AsyncClient, stripe: Stripe
) -> None:
    await our_customer()
    stripe.answers["retrieve_customer"] = stripe_object("customer", id="cus_test_1")
    gone = stripe_object("customer", id="cus_test_1", deleted=True)
    stored = await answered(client, event("customer.deleted", gone), "ignored")
    assert stored.last_error == "the customer still exists at Stripe"
    assert stripe.calls == ["retrieve_customer"]
    kept = await Customer.find_one({"stripe_customer_id": "cus_test_1"})
    assert kept is not None
    assert kept.email == "a@x.io"
    assert await AuditEntry.find_all().count() == 0


async def test_a_customer_stripe_answers_404_for_is_removed(
    client: httpx.AsyncClient, stripe: Stripe
) -> None:
    """Stripe has no such customer (any more): as for its ``deleted`` stub, the organization's
    customer document goes, after an audit row."""
    await our_customer()
    stripe.answers["retrieve_customer"] = StripeNotFound("customer")
    payload = event("customer.updated", stripe_object("customer", id="cus_test_1"))
    await answered(client, payload, "processed")
    assert await Customer.find_all().count() == 0
    [audit] = await AuditEntry.find_all().to_list()
    assert (audit.organization_id, audit.kind, audit.reference) == (
        "org_a",
        "customer.deleted",
        payload["id"],
    )


@pytest.mark.parametrize("type_", ["checkout.session.completed", "checkout.session.expired"])
async def test_a_session_of_ours_that_was_not_recorded_still_applies_its_subscription(
    client: httpx.AsyncClient, stripe: Stripe, type_: str
) -> None:
    """A session this engine started (``client_reference_id``) whose document is missing: its
    subscription is re-read and applied, unthrottled — unless the session expired."""
    stripe.answers["retrieve_subscription"] = subscription(sub_id="sub_lost", org="org_a")
    expired = type_ == "checkout.session.expired"
    session = completed_session("sub_lost")
    if expired:
        session.update(status="expired", payment_status="unpaid")
    await answered(client, event(type_, session), "processed")
    applied = await Subscription.find_all().to_list()
    if expired:
        assert (stripe.calls, applied) == ([], [])
        return
    assert stripe.calls == ["retrieve_subscription"]
    [sub] = applied
    assert (sub.stripe_subscription_id, sub.organization_id) == ("sub_lost", "org_a")
    assert sub.last_event_created is None  # checkout events do not move the watermark
    assert await CheckoutSession.find_all().count() == 0
