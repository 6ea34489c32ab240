"""Webhook signatures exactly as Stripe computes them.

``Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`` — the whole
``whsec_…`` string is the HMAC key, so ``stripe.Webhook.construct_event`` verifies our payloads.
"""

from __future__ import annotations

import hashlib
import hmac


def signature(secret: str, timestamp: int, payload: str) -> str:
    signed = f"{timestamp}.{payload}".encode()
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secrets: list[str], timestamp: int, payload: str) -> str:
    """One ``v1`` per active secret, as Stripe sends during a secret roll."""
    parts = [f"t={timestamp}"]
    parts.extend(f"v1={signature(secret, timestamp, payload)}" for secret in secrets)
    return ",".join(parts)
