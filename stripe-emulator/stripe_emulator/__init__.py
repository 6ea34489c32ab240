"""An offline, stateful emulator of the Stripe HTTP API, for development and tests.

The real ``stripe`` SDK talks to it over HTTP (``base_addresses={"api": emulator.public_url}``):
customers, products, prices, Checkout Sessions with a hosted checkout page, subscriptions,
invoices, payment methods and intents, refunds, billing portal sessions, billing meters with
meter events and usage-based (metered) prices billed in arrears, events, webhook endpoints with
deliveries signed exactly as Stripe signs them, and test clocks that advance billing through
renewals, trials and failed payments. Object shapes follow Stripe's own fixtures. It imports
nothing of the applications it serves: ``stripe-emulator --port 12111`` (``python -m
stripe_emulator``) serves one on its own, :class:`EmulatorServer` in a thread, and
``Emulator().app`` mounts in any ASGI application (revenue-engine's embedded default does).

Module map: ``emulator`` (the :class:`Emulator`), ``app``/``api``/``control``/``pages`` (HTTP),
``resources/*`` (one module per API resource group), ``billing``/``invoicing`` (subscription
money flows), ``metering`` (counted meter events and their aggregation),
``events``/``delivery``/``signing`` (webhooks), ``faults``/``idempotency`` (reliability testing),
``forms``/``lists``/``expand``/``search`` (wire conventions),
``store``/``state``/``ids``/``periods``/``cards`` (foundations), ``server`` (uvicorn).
"""

from stripe_emulator.emulator import Emulator
from stripe_emulator.server import EmulatorServer, UvicornThread, run_standalone

__all__ = ["Emulator", "EmulatorServer", "UvicornThread", "run_standalone"]
