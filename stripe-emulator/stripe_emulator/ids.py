"""Object ids with Stripe's prefixes, and the prefix → object type table used to resolve them.

Ids are random (not sequential) so tests cannot come to depend on their order; ordering comes from
the store's insertion sequence, as Stripe's lists are newest-first.
"""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits

# Prefix → Stripe object type. Longest prefixes first so "cs_test_" is not mistaken for "cs_".
PREFIXES: dict[str, str] = {
    "cs_test_": "checkout.session",
    "mtr_test_": "billing.meter",
    "mtrusg_": "billing.meter_event_summary",
    "clock_": "test_helpers.test_clock",
    "cus_": "customer",
    "prod_": "product",
    "price_": "price",
    "sub_": "subscription",
    "si_": "subscription_item",
    "in_": "invoice",
    "il_": "line_item",
    "ii_": "invoiceitem",
    "inpay_": "invoice_payment",
    "pi_": "payment_intent",
    "ch_": "charge",
    "pm_": "payment_method",
    "card_": "payment_method",  # a saved source, usable as a PaymentMethod
    "seti_": "setup_intent",
    "setatt_": "setup_attempt",
    "re_": "refund",
    "bps_": "billing_portal.session",
    "bpc_": "billing_portal.configuration",
    "evt_": "event",
    "we_": "webhook_endpoint",
    "li_": "item",
    "promo_": "promotion_code",
    "di_": "discount",
}


def new_id(prefix: str, length: int = 24) -> str:
    """A fresh id such as ``cus_Qx3…``."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def request_id() -> str:
    return new_id("req_", 14)


def webhook_secret() -> str:
    return "whsec_" + "".join(secrets.choice(_ALPHABET) for _ in range(32))


def client_secret(object_id: str) -> str:
    return f"{object_id}_secret_{new_id('', 25)}"
