"""The closed table that turns Stripe SDK errors into domain errors.

Only the errors listed here are translated; anything else (authentication, permission, an SDK
error we have not classified) re-raises unchanged and is masked for the client, because it
means a bug or a misconfiguration, not something the caller can act on.
"""

from __future__ import annotations

import stripe

from revenue_engine import errors


class StripeNotFound(errors.NotFound):
    """Stripe has no such object (``resource_missing``)."""

    def __init__(self, param: str | None) -> None:
        super().__init__("stripe object", param or "-")


def translate(exc: stripe.StripeError) -> errors.DomainError | None:
    """The domain error for ``exc``, or ``None`` when it is not in the table (caller re-raises)."""
    if isinstance(exc, stripe.CardError):
        decline = getattr(exc.error, "decline_code", None) if exc.error else None
        return errors.PaymentDeclined(exc.user_message or "the card was declined", decline)
    if isinstance(exc, stripe.RateLimitError):
        retry_after = 1.0
        if exc.headers and exc.headers.get("retry-after"):
            try:
                retry_after = float(exc.headers["retry-after"])
            except ValueError:
                retry_after = 1.0
        return errors.RateLimited("Stripe is rate limiting requests; retry later", retry_after)
    if isinstance(exc, stripe.IdempotencyError):
        return errors.IdempotencyConflict()
    if isinstance(exc, stripe.APIConnectionError):
        return errors.ServiceUnavailable("the payment provider is unreachable; retry later")
    if isinstance(exc, stripe.APIError) or (exc.http_status or 0) >= 500:
        return errors.ServiceUnavailable("the payment provider failed; retry later")
    if isinstance(exc, stripe.InvalidRequestError):
        if exc.code == "resource_missing":
            return StripeNotFound(exc.param)
        if exc.code == "idempotency_key_in_use" or exc.http_status == 409:
            return errors.ServiceUnavailable("the same request is in progress; retry shortly")
        return errors.PaymentProviderRejected(
            exc.user_message or "the payment provider rejected the request", exc.param
        )
    return None
