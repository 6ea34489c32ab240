"""Verifying ``Stripe-Signature`` with the SDK, against every configured secret.

Stripe signs ``f"{t}.{raw body}"`` with HMAC-SHA256 and sends ``t=…,v1=…[,v1=…]``; during a
secret rotation there is one ``v1`` per active secret, so a delivery is authentic when any
``v1`` matches any of our secrets. Only ``v1`` counts (``v0`` is Stripe's test scheme).

The SDK rejects timestamps older than the tolerance but accepts any timestamp in the future,
so a captured request signed "far ahead" would stay replayable: we also reject ``t`` more than
``TOLERANCE_SECONDS`` ahead of our clock. The tolerance is never 0 (0 disables the check).
"""

from __future__ import annotations

from collections.abc import Sequence

import stripe

from revenue_engine.clock import unix_now
from revenue_engine.webhooks.errors import InvalidSignature

#: Maximum age (and maximum lead) of a signature's timestamp, in seconds.
TOLERANCE_SECONDS = 300


def _timestamp(header: str) -> int:
    # The same parse as the SDK: the first ``t=`` item of the header.
    for item in header.split(","):
        key, _, value = item.partition("=")
        if key.strip() == "t":
            return int(value)
    raise ValueError("no timestamp")


def verify_signature(body: bytes, header: str | None, secrets: Sequence[str]) -> str:
    """The body as text when ``header`` proves it came from Stripe, else ``InvalidSignature``.

    ``secrets`` are tried in order; the reason of a failure is deliberately not kept.
    """
    if not header or not secrets:
        raise InvalidSignature()
    try:
        text = body.decode("utf-8")
        timestamp = _timestamp(header)
    except (UnicodeDecodeError, ValueError):
        raise InvalidSignature() from None
    if timestamp > unix_now() + TOLERANCE_SECONDS:
        raise InvalidSignature()
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, header, secret, TOLERANCE_SECONDS)
        except stripe.SignatureVerificationError:
            continue
        return text
    raise InvalidSignature()
