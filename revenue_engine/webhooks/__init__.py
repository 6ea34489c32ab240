"""The Stripe webhook backchannel: verify → ledger → dispatch.

Modules, in the order a delivery meets them::

    endpoint.py   the ASGI route: method, content type, size limit, answers
    body.py       reading the raw body under the size limit
    signature.py  Stripe-Signature against every configured secret, timestamp window
    event.py      StripeEvent: the envelope handlers see
    ledger.py     WebhookEvent rows: claim-by-insert, lease, finish / release, listing
    dispatch.py   HANDLERS (event type → handler) and outcome → ledger status
    handlers/     one module per Stripe object family
    replay.py     re-dispatching stored payloads (admin mutation, CLI)
    errors.py     what handlers raise, and what each answers
"""
