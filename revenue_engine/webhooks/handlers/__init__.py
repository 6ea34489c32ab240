"""Webhook handlers, one module per Stripe object family. Each is
``async def handler(event: StripeEvent, context: HandlerContext) -> None`` and is registered
in ``webhooks.dispatch.HANDLERS``; it validates its object, calls one service, and raises from
``webhooks.errors`` for outcomes other than "applied"."""
