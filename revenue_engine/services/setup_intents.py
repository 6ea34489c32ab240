"""Adding a card: a SetupIntent for the organization's customer, confirmed by the client.

The client confirms it with Stripe.js (``stripe.confirmSetup`` with the ``client_secret``); the
saved card then shows in ``paymentMethods`` and can be made the default. Against the emulator
(no ``STRIPE_SECRET_KEY``, an API base, outside production) the answer also carries the
emulator's hosted page that does what Stripe.js does, and comes back to ``returnPath``.

One intent at a time: the latest one handed out is handed out again while it is still to be
confirmed; once it succeeded or was canceled the next request makes a new one, keyed by the one
before it, so a double-submit makes one SetupIntent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlencode

from revenue_engine.auth import Principal
from revenue_engine.documents import Customer
from revenue_engine.errors import FieldProblem, StripeNotFound, ValidationFailed
from revenue_engine.gateway import SetupIntentCalls, SetupIntentView, StripeApi, idempotency_key
from revenue_engine.services.customers import get_or_create_customer
from revenue_engine.services.paths import path_problem
from revenue_engine.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_RETURN_PATH = "/billing"
#: A SetupIntent in these states is still the customer's attempt to add a card.
_OPEN = frozenset({"requires_payment_method", "requires_confirmation", "requires_action"})


@dataclass(frozen=True, slots=True)
class SetupGrant:
    setup_intent_id: str
    client_secret: str
    #: The emulator's hosted confirmation page; None against Stripe.
    confirmation_url: str | None


def _confirmation_url(
    gateway: SetupIntentCalls, settings: Settings, seti: SetupIntentView, path: str
) -> str | None:
    if settings.is_production or settings.stripe_secret_key is not None or not gateway.api_base:
        return None
    query = urlencode(
        {
            "client_secret": seti.client_secret,
            "return_url": settings.public_base_url.rstrip("/") + path,
        }
    )
    return f"{gateway.api_base.rstrip('/')}/setup/{seti.id}?{query}"


async def _reusable(
    gateway: SetupIntentCalls, customer: Customer, previous: str | None
) -> SetupIntentView | None:
    if previous is None:
        return None
    try:
        seti = await gateway.retrieve_setup_intent(previous)
    except StripeNotFound:
        return None
    if seti.status in _OPEN and seti.customer == customer.stripe_customer_id:
        return seti
    return None


async def create_setup_intent(
    gateway: StripeApi, settings: Settings, principal: Principal, return_path: str | None
) -> SetupGrant:
    """A SetupIntent for saving a card for off-session payments (renewals); the customer is
    created on first use."""
    path = return_path or DEFAULT_RETURN_PATH
    problem = path_problem(path)
    if problem:
        raise ValidationFailed("invalid return path", [FieldProblem("returnPath", problem)])
    org = principal.organization_id
    customer = await get_or_create_customer(gateway, principal)
    previous = customer.setup_intent_id
    seti = await _reusable(gateway, customer, previous)
    if seti is None:
        seti = await gateway.create_setup_intent(
            {
                "customer": customer.stripe_customer_id,
                "usage": "off_session",
                "payment_method_types": ["card"],
                "metadata": {"organization_id": org},
            },
            key=idempotency_key(org, "setup_intent.create", customer.stripe_customer_id, previous),
        )
        # Conditional: of two different requests racing, the first one stored is kept.
        await Customer.find_one({"_id": customer.id, "setup_intent_id": previous}).update(
            {"$set": {"setup_intent_id": seti.id}}
        )
        log.info("setup intent created organization_id=%s", org)
    return SetupGrant(seti.id, seti.client_secret, _confirmation_url(gateway, settings, seti, path))
