"""What an invoice says, as the hosted invoice page and its PDF both show it.

``facts`` (number, status, dates, billing period, who is billed), ``rows`` (each line with its
period, quantity, unit price and amount), ``totals`` (subtotal, discount, tax, total, paid,
remaining) and ``ways_back`` (the customer's billing portal and the app's return URL). One
source for both renderings, so the page and the PDF cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from stripe_emulator.pages.layout import date, money
from stripe_emulator.state import Ctx
from stripe_emulator.store import JSON

DASH = "\u2013"  # between the ends of a period


@dataclass(frozen=True)
class Row:
    description: str
    period: str
    quantity: str
    unit_price: str
    amount: str


def _period(start: int | None, end: int | None) -> str:
    if not start and not end:
        return "—"
    return date(start) if start == end else f"{date(start)} {DASH} {date(end)}"


def _is_proration(line: JSON) -> bool:
    parent = line.get("parent") or {}
    details = parent.get("subscription_item_details") or parent.get("invoice_item_details") or {}
    return bool(details.get("proration"))


def billing_period(inv: JSON) -> str:
    """The service period the lines cover (an invoice's own ``period_*`` is the period whose
    usage it collects, which for a subscription's first invoice is a single instant)."""
    periods = [line["period"] for line in inv["lines"]["data"] if line.get("period")]
    if not periods:
        return _period(inv["period_start"], inv["period_end"])
    return _period(min(p["start"] for p in periods), max(p["end"] for p in periods))


def facts(inv: JSON) -> list[tuple[str, str]]:
    transitions = inv.get("status_transitions") or {}
    issued = transitions.get("finalized_at") or inv["created"]
    name, email = inv.get("customer_name"), inv.get("customer_email")
    billed = " ".join(filter(None, [name, f"<{email}>" if name and email else email]))
    shown = [
        ("Invoice number", str(inv["number"] or inv["id"])),
        ("Status", str(inv["status"])),
        ("Date of issue", date(issued)),
        ("Date due", date(inv["due_date"] or issued)),
    ]
    if transitions.get("paid_at"):
        shown.append(("Paid on", date(transitions["paid_at"])))
    if transitions.get("voided_at"):
        shown.append(("Voided on", date(transitions["voided_at"])))
    shown += [("Billing period", billing_period(inv)), ("Billed to", billed or inv["customer"])]
    return shown


def _unit_price(ctx: Ctx, inv: JSON, line: JSON) -> str:
    pricing = line.get("pricing") or {}
    if _is_proration(line) or pricing.get("unit_amount_decimal") is None:
        return "—"  # a proration's amount is a share of the period, not quantity times price
    try:
        unit = Decimal(str(pricing["unit_amount_decimal"]))
    except InvalidOperation:
        return "—"
    price_id = (pricing.get("price_details") or {}).get("price")
    price = ctx.store.get("price", price_id) if price_id else None
    rule = (price or {}).get("transform_quantity")
    per = f" per {int(rule['divide_by']):,}" if rule else ""
    return money(unit, inv["currency"]) + per


def rows(ctx: Ctx, inv: JSON) -> list[Row]:
    return [
        Row(
            description=str(line["description"] or ""),
            period=_period(line["period"]["start"], line["period"]["end"]),
            quantity="—" if line.get("quantity") is None else f"{int(line['quantity']):,}",
            unit_price=_unit_price(ctx, inv, line),
            amount=money(int(line["amount"]), inv["currency"]),
        )
        for line in inv["lines"]["data"]
    ]


def totals(inv: JSON) -> list[tuple[str, str]]:
    currency = inv["currency"]
    discount = sum(int(d["amount"]) for d in inv.get("total_discount_amounts") or [])
    tax = sum(int(t["amount"]) for t in inv.get("total_taxes") or [])
    return [
        ("Subtotal", money(int(inv["subtotal"]), currency)),
        ("Discount", money(-discount, currency)),
        ("Tax", money(tax, currency)),
        ("Total", money(int(inv["total"]), currency)),
        ("Amount paid", money(int(inv["amount_paid"]), currency)),
        ("Amount remaining", money(int(inv["amount_remaining"]), currency)),
    ]


def ways_back(ctx: Ctx, inv: JSON) -> list[tuple[str, str]]:
    """Links out of the page: the customer's latest billing portal session, and the app's
    return URL it carries. Only URLs the emulator stored, never one taken from the request."""
    sessions = ctx.store.all("billing_portal.session", lambda s: s["customer"] == inv["customer"])
    if not sessions:
        return []
    latest = sessions[0]  # newest first
    links = [("Billing portal", str(latest["url"]))]
    if latest["return_url"]:
        links.append(("Return to the app", str(latest["return_url"])))
    return links
