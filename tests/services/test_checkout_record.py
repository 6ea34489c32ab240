"""Recording a Checkout session's outcome never moves it backwards, whatever read comes last."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from revenue_engine.db import Database
from revenue_engine.documents import BillingInterval, CheckoutSession, CheckoutStatus
from revenue_engine.gateway.models.customer import StripeCheckoutSession, parse_checkout_session
from revenue_engine.services.checkout import record_session

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def read(**fields: str) -> StripeCheckoutSession:
    """The session as the gateway reads it from Stripe."""
    return parse_checkout_session({"id": "cs_test_1", "object": "checkout.session", **fields})


async def session_doc(status: CheckoutStatus, payment_status: str) -> CheckoutSession:
    doc = CheckoutSession(
        stripe_session_id="cs_test_1",
        organization_id="org_a",
        stripe_customer_id="cus_1",
        plan_uid="starter",
        interval=BillingInterval.MONTH,
        status=status,
        payment_status=payment_status,
        completed_at=T0 if status is CheckoutStatus.COMPLETED else None,
    )
    await doc.insert()
    return doc


async def stored() -> tuple[str, str]:
    doc = await CheckoutSession.find_one({"stripe_session_id": "cs_test_1"})
    assert doc is not None
    return doc.status.value, doc.payment_status


@pytest.mark.parametrize(
    ("stale", "status"),
    [
        ({"status": "complete", "payment_status": "unpaid"}, "completed"),
        ({"status": "open", "payment_status": "unpaid"}, "completed"),
    ],
)
async def test_an_older_read_does_not_undo_paid(
    database: Database, stale: dict[str, str], status: str
) -> None:
    doc = await session_doc(CheckoutStatus.COMPLETED, "paid")
    await record_session(doc, read(**stale), reference=None, observed_at=T0)
    assert await stored() == (status, "paid")


async def test_a_concurrent_later_write_is_kept(database: Database) -> None:
    stale_copy = await session_doc(CheckoutStatus.PENDING, "unpaid")
    # Another reader recorded the paid session after our copy was loaded.
    await CheckoutSession.find_one({"_id": stale_copy.id}).update(
        {"$set": {"status": "completed", "payment_status": "paid"}}
    )
    await record_session(
        stale_copy,
        read(status="complete", payment_status="unpaid"),
        reference=None,
        observed_at=T0,
    )
    assert await stored() == ("completed", "paid")


async def test_forward_moves_are_recorded(database: Database) -> None:
    doc = await session_doc(CheckoutStatus.PENDING, "unpaid")
    await record_session(
        doc,
        read(status="complete", payment_status="paid"),
        reference=None,
        observed_at=T0,
    )
    assert await stored() == ("completed", "paid")


@pytest.mark.parametrize(
    ("kept", "payment", "other"),
    [
        (CheckoutStatus.COMPLETED, "paid", "expired"),
        (CheckoutStatus.EXPIRED, "unpaid", "complete"),
    ],
)
async def test_an_ended_session_keeps_its_end(
    database: Database, kept: CheckoutStatus, payment: str, other: str
) -> None:
    """Completed and expired are both final: neither is written over the other."""
    doc = await session_doc(kept, payment)
    await record_session(
        doc,
        read(status=other, payment_status=payment),
        reference=None,
        observed_at=T0,
    )
    assert await stored() == (kept.value, payment)
    # Nor by a writer whose copy was loaded before the session ended.
    stale_copy = doc.model_copy(update={"status": CheckoutStatus.PENDING})
    await record_session(
        stale_copy,
        read(status=other, payment_status=payment),
        reference=None,
        observed_at=T0,
    )
    assert await stored() == (kept.value, payment)
