"""The closed table that turns Stripe SDK errors into domain errors.

Only the errors listed here are translated; anything else (authentication, permission, an SDK
error we have not classified) re-raises unchanged and is masked for the client, because it
means a bug or a misconfiguration, not something the caller can act on.
"""

from __future__ import annotations

import stripe

from revenue_engine import errors


def is_timestamp_refusal(exc: BaseException | None) -> bool:
    """Is ``exc`` Stripe refusing a meter event's timestamp? A 400 on ``param: timestamp``, or
    with the codes its error reports use for it, or — Stripe documents neither — its message
    "The event timestamp cannot be more than 35 days in past"."""
    if not isinstance(exc, stripe.InvalidRequestError):
        return False
    if exc.param == "timestamp" or exc.code in ("timestamp_too_far_in_past", "timestamp_in_future"):
        return True
    message = (exc.user_message or str(exc)).lower()
    return "timestamp" in message and ("in past" in message or "in the future" in message)


def is_duplicate_identifier(exc: BaseException | None) -> bool:
    """Is ``exc`` Stripe refusing a meter event because its identifier was used already?
    Stripe documents no code for it; integrations record ``400 invalid_request_error`` "An
    event already exists with identifier <id>." without a code (the emulator adds ``param:
    identifier``). Also taken: ``resource_already_exists``, Stripe's code for "an object with
    this id exists"."""
    if not isinstance(exc, stripe.InvalidRequestError):
        return False
    if exc.code == "resource_already_exists":
        return True
    message = (exc.user_message or str(exc)).lower()
    return (
        exc.param in (None, "identifier")
        and "identifier" in message
        and ("already exists" in message or "duplicate" in message)
    )


def rate_limited(exc: stripe.RateLimitError) -> errors.RateLimited:
    """Stripe's 429, with its ``Retry-After`` (one second when absent or unreadable)."""
    retry_after = 1.0
    if exc.headers and exc.headers.get("retry-after"):
        try:
            retry_after = float(exc.headers["retry-after"])
        except ValueError:
            retry_after = 1.0
    return errors.RateLimited("Stripe is rate limiting requests; retry later", retry_after)


def translate(exc: stripe.StripeError) -> errors.DomainError | None:
    """The domain error for ``exc``, or ``None`` when it is not in the table (caller re-raises)."""
    if isinstance(exc, stripe.CardError):
        decline = getattr(exc.error, "decline_code", None) if exc.error else None
        return errors.PaymentDeclined(exc.user_message or "the card was declined", decline)
    if isinstance(exc, stripe.RateLimitError):
        return rate_limited(exc)
    if isinstance(exc, stripe.IdempotencyError):
        return errors.IdempotencyConflict()
    if isinstance(exc, stripe.APIConnectionError):
        return errors.ServiceUnavailable("the payment provider is unreachable; retry later")
    if isinstance(exc, stripe.APIError) or (exc.http_status or 0) >= 500:
        return errors.ServiceUnavailable("the payment provider failed; retry later")
    if isinstance(exc, stripe.InvalidRequestError):
        if exc.code == "resource_missing":
            return errors.StripeNotFound(exc.param, exc.user_message)
        if exc.code == "idempotency_key_in_use" or exc.http_status == 409:
            return errors.ServiceUnavailable("the same request is in progress; retry shortly")
        return errors.PaymentProviderRejected(
            exc.user_message or "the payment provider rejected the request", exc.param
        )
    return None
