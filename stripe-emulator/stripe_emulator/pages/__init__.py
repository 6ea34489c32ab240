"""Hosted pages: Checkout, the billing portal, invoices and receipts.

Plain HTML forms, no JavaScript, so a person can click through them in a browser and a test can
drive them with any HTTP client (GET the page, POST the form, follow the 303). All links and form
actions are relative, so the pages work wherever the emulator is mounted.

* ``GET  /checkout/{id}`` — plan, amount and interval; test-card choice; Pay / Cancel.
* ``POST /checkout/{id}/pay`` (``card``, ``email``, ``name``) — 303 to ``success_url`` with
  ``{CHECKOUT_SESSION_ID}`` filled in; a decline re-renders the page (HTTP 402) and changes nothing.
* ``POST|GET /checkout/{id}/cancel`` — 303 to ``cancel_url``; the session stays open.
* ``GET  /billing_portal/{id}`` and ``POST …/cancel|renew|payment_method`` (``subscription``,
  ``card``) — portal actions, then 303 back (or to the flow's redirect).
* ``GET  /setup/{id}?client_secret=…&return_url=…`` (+ ``POST …/confirm``, ``card``) — save a
  test card for a SetupIntent, then 303 to ``return_url`` as Stripe.js's ``confirmSetup`` does.
* ``GET  /invoices/{id}`` (+ ``POST …/pay``), ``GET /invoices/{id}/pdf``, ``GET /receipts/{id}``.
"""

from stripe_emulator.pages.checkout_page import checkout_routes
from stripe_emulator.pages.invoice_page import invoice_routes
from stripe_emulator.pages.portal_page import portal_routes
from stripe_emulator.pages.setup_page import setup_routes

__all__ = ["checkout_routes", "invoice_routes", "portal_routes", "setup_routes"]
