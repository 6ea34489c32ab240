"""What a subscription change would cost, before it is made: Stripe's invoice preview.

``preview_subscription_change`` works out the very item changes the change itself would send —
a plan, interval or add-on change as ``changeSubscriptionPlan`` (``subscriptions.plan_change``),
a seat change as ``updateSeats`` (``seats.seat_items``) — and asks Stripe for the invoice that
follows (``invoices.create_preview`` with ``subscription_details``: the items, the proration
behaviour and the proration date). Stripe computes the prorations (credit for the unused time
of what goes, charge for the remaining time of what comes, to the second) and whatever else
its invoice carries (discounts, balance), so the preview says what Stripe will bill.

Nothing is written: no Stripe object changes (a preview is not a write at Stripe) and no
document is stored. One exception is the catalog's own bookkeeping: a plan whose Stripe prices
were never made (nobody bought it yet) gets them made first, as a purchase would — idempotent
and keyed by the catalog, never the customer's subscription. An interval change that would be
refused for this period's reported overage is refused here too (without reporting usage first,
as the change itself does).

The answer:

* ``invoice`` — the next invoice after the change: issued at once when the change invoices
  immediately (``always_invoice`` with prorations, or a new interval of an active
  subscription), else at the period end with the prorations on it;
* ``amount_due_now`` — what the change charges at once (that invoice's amount due), else 0;
* ``proration_amount`` — the net of the proration lines, wherever they are billed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from revenue_engine.auth import Principal
from revenue_engine.clock import unix_now
from revenue_engine.documents import BillingInterval, Subscription
from revenue_engine.errors import FieldProblem, NoActiveSubscription, ValidationFailed
from revenue_engine.gateway import InvoiceCalls, StripeApi
from revenue_engine.gateway.models.catalog import InvoiceLine, StripeInvoicePreview
from revenue_engine.services.purchase import live_subscription
from revenue_engine.services.seats import seat_items
from revenue_engine.services.subscriptions import ProrationBehavior, plan_change
from revenue_engine.settings import Settings


@dataclass(frozen=True, slots=True)
class PreviewLine:
    description: str | None
    amount: int
    quantity: int | None
    period_start: datetime
    period_end: datetime
    proration: bool


@dataclass(frozen=True, slots=True)
class InvoicePreview:
    issued_at: datetime
    currency: str
    subtotal: int
    discount_amount: int
    total: int
    amount_due: int
    lines: list[PreviewLine]


@dataclass(frozen=True, slots=True)
class ChangePreview:
    plan_uid: str
    interval: BillingInterval
    overages: list[str]
    seats: int | None
    proration_behavior: ProrationBehavior
    proration_date: datetime
    amount_due_now: int
    proration_amount: int
    invoice: InvoicePreview


def _at(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value or 0), tz=UTC)


def _line(line: InvoiceLine) -> PreviewLine:
    period = line.period
    return PreviewLine(
        description=line.description,
        amount=line.amount or 0,
        quantity=line.quantity,
        period_start=_at(period.start if period else None),
        period_end=_at(period.end if period else None),
        proration=line.is_proration,
    )


def _invoice(raw: StripeInvoicePreview) -> InvoicePreview:
    return InvoicePreview(
        issued_at=_at(raw.created),
        currency=raw.currency or "",
        subtotal=raw.subtotal or 0,
        discount_amount=raw.discount_amount,
        total=raw.total or 0,
        amount_due=raw.amount_due or 0,
        lines=[_line(line) for line in raw.lines],
    )


async def _now(gateway: InvoiceCalls, live: Subscription) -> int:
    """Now for the subscription at Stripe: its test clock's time, or the wall clock."""
    if live.test_clock:
        return await gateway.test_clock_time(live.test_clock)
    return int(unix_now())


@dataclass(frozen=True, slots=True)
class _PreviewedChange:
    """What a previewed change sends: the subscription items, the add-ons' keys after it, the
    seats (None unless the plan is per seat) and the discounts (None keeps the current)."""

    items: list[dict[str, Any]]
    keys: list[str]
    seats: int | None
    discounts: list[dict[str, str]] | None


async def _preview_change(
    gateway: StripeApi,
    settings: Settings,
    live: Subscription,
    target: str,
    every: BillingInterval,
    *,
    overages: list[str] | None,
    seats: int | None,
    promotion_code: str | None,
) -> _PreviewedChange:
    """The change as the mutation would send it: only the seats (exactly what updateSeats
    sends) when nothing else changes, else the plan change (usage is not reported first)."""
    keys = sorted(set(overages)) if overages is not None else list(live.overages)
    same_plan = (target, every, keys) == (live.plan_uid, live.interval, live.overages)
    if same_plan and seats is not None and promotion_code is None:
        items = await seat_items(live, seats, field="seats")
        if items is None:
            raise ValidationFailed(
                "nothing to change", [FieldProblem("seats", "the subscription holds these seats")]
            )
        return _PreviewedChange(items, keys, seats, None)
    change = await plan_change(
        gateway,
        settings,
        live,
        plan_uid=target,
        interval=every,
        overages=overages,
        seats=seats,
        report_usage=False,
        promotion_code=promotion_code,
    )
    return _PreviewedChange(
        change.items,
        change.keys,
        change.seats if change.plan.per_seat else None,
        change.promotion.discounts() if change.promotion is not None else None,
    )


def _preview_params(
    live: Subscription, change: _PreviewedChange, proration: ProrationBehavior, at: int
) -> dict[str, Any]:
    """Stripe's ``create preview invoice`` parameters for ``change`` of ``live`` at ``at``."""
    params: dict[str, Any] = {
        "customer": live.stripe_customer_id,
        "subscription": live.stripe_subscription_id,
        "subscription_details": {
            "items": change.items,
            "proration_behavior": proration.value,
            "proration_date": at,
        },
    }
    if not change.items:
        del params["subscription_details"]["items"]  # only the code changes
    if change.discounts is not None:
        params["discounts"] = change.discounts
    return params


async def preview_subscription_change(
    gateway: StripeApi,
    settings: Settings,
    principal: Principal,
    *,
    plan_uid: str | None,
    interval: BillingInterval | None,
    overages: list[str] | None,
    seats: int | None,
    proration: ProrationBehavior,
    promotion_code: str | None = None,
) -> ChangePreview:
    """Preview a change of the live subscription (see the module docstring). ``plan_uid`` and
    ``interval`` None keep the current ones, ``overages`` None the current add-ons, ``seats``
    None the seats held. Bad input raises what the change itself would, and sends nothing."""
    live = await live_subscription(principal.organization_id)
    if live is None:
        raise NoActiveSubscription()
    target = plan_uid or live.plan_uid
    every = interval or live.interval
    if target is None or every is None:
        raise ValidationFailed(
            "invalid change preview",
            [FieldProblem("planUid", "the subscription's plan is not in the catalog: name one")],
        )
    change = await _preview_change(
        gateway,
        settings,
        live,
        target,
        every,
        overages=overages,
        seats=seats,
        promotion_code=promotion_code,
    )
    at = await _now(gateway, live)
    params = _preview_params(live, change, proration, at)
    raw = await gateway.preview_invoice(params)
    invoice = _invoice(raw)
    prorations = [line for line in invoice.lines if line.proration]
    # When Stripe invoices a change at once (its docs: a new interval resets the billing cycle
    # and bills now; ``always_invoice`` bills the prorations now) the preview is that invoice.
    now = (every != live.interval and live.status in ("active", "past_due")) or (
        proration is ProrationBehavior.ALWAYS_INVOICE and bool(prorations)
    )
    return ChangePreview(
        plan_uid=target,
        interval=every,
        overages=change.keys,
        seats=change.seats,
        proration_behavior=proration,
        proration_date=_at(at),
        amount_due_now=invoice.amount_due if now else 0,
        proration_amount=sum(line.amount for line in prorations),
        invoice=invoice,
    )
