"""The Stripe Billing Meter of each metered feature, shared by every plan that meters it.

A meter is named by its event name, ``f"{settings.meter_event_prefix}.{feature}"``; it sums the
``value`` of the meter events sent for a customer (payload key ``stripe_customer_id``). Found
in order: our ``BillingMeter`` row; else among Stripe's meters by event name (a meter made by
an earlier run whose row is gone, or by another deployment of the same account and prefix) —
reactivated when it was deactivated, since Stripe keeps an event name to one meter for good,
deactivated ones included; else created, with an idempotency key derived from the event
name, so two instances creating it at the same moment get one meter. The row's unique index
on ``event_name`` keeps one row per meter whoever stores it first.
"""

from __future__ import annotations

import logging
from typing import Any

from pymongo.errors import DuplicateKeyError

from revenue_engine.documents import BillingMeter
from revenue_engine.errors import ServiceUnavailable
from revenue_engine.gateway import CatalogCalls, idempotency_key
from revenue_engine.settings import Settings

log = logging.getLogger(__name__)

#: The "organization" of catalog objects' idempotency keys (as in ``services.catalog``).
CATALOG = "catalog"
#: The meter event payload keys (``services.meter_reports`` sends them).
CUSTOMER_KEY = "stripe_customer_id"
VALUE_KEY = "value"


def event_name(settings: Settings, feature: str) -> str:
    return f"{settings.meter_event_prefix}.{feature}"


def meter_params(name: str, feature: str) -> dict[str, Any]:
    """What a feature's meter is: the sum of its events' values, per Stripe customer id."""
    return {
        "display_name": feature,
        "event_name": name,
        "default_aggregation": {"formula": "sum"},
        "customer_mapping": {"event_payload_key": CUSTOMER_KEY, "type": "by_id"},
        "value_settings": {"event_payload_key": VALUE_KEY},
    }


async def stored_meter(settings: Settings, feature: str) -> BillingMeter | None:
    return await BillingMeter.find_one({"event_name": event_name(settings, feature)})


async def ensure_meter(gateway: CatalogCalls, settings: Settings, feature: str) -> BillingMeter:
    """The feature's meter: stored, else found at Stripe, else created (see the module)."""
    stored = await stored_meter(settings, feature)
    if stored is not None:
        return stored
    name = event_name(settings, feature)
    found = next((m for m in await gateway.list_meters() if m.event_name == name), None)
    if found is not None and found.status != "active":
        found = await gateway.reactivate_meter(
            found.id, key=idempotency_key(CATALOG, "meter.reactivate", name, found.id)
        )
        log.warning("stripe meter reactivated event_name=%s meter=%s", name, found.id)
    if found is None:
        found = await gateway.create_meter(
            meter_params(name, feature), key=idempotency_key(CATALOG, "meter.create", name)
        )
        log.info("stripe meter created event_name=%s meter=%s", name, found.id)
    meter = BillingMeter(feature=feature, event_name=name, stripe_meter_id=found.id)
    try:
        await meter.insert()
    except DuplicateKeyError:
        # Another instance stored it first: theirs is the row (the same Stripe meter, by the
        # shared idempotency key or the listing).
        stored = await stored_meter(settings, feature)
        if stored is None:
            raise ServiceUnavailable(f"meter {name!r} kept changing; retry") from None
        return stored
    return meter
