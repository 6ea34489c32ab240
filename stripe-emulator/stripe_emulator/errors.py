"""Errors in Stripe's wire envelope.

Every failure the emulated API reports is a :class:`StripeError`; the HTTP layer turns it into
``{"error": {"type", "code", "message", "param", "decline_code"?, ...}}`` with Stripe's status
code, so the real SDK maps it onto the same exception classes it raises against Stripe::

    StripeError (status, type)
    ├── 400 invalid_request_error   parameter_missing / parameter_unknown / resource_missing …
    ├── 400 idempotency_error       same key, different parameters
    ├── 401 invalid_request_error   missing or malformed API key
    ├── 402 card_error              card_declined (+ decline_code), expired_card …
    ├── 404 invalid_request_error   resource_missing, unrecognised URL
    ├── 409 idempotency_error       same key while the first request is still running
    ├── 429 invalid_request_error   rate_limit (fault injection only)
    └── 5xx api_error               fault injection only
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]


class StripeError(Exception):
    """An API error carrying everything needed to render Stripe's error envelope."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        extra: JSON | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.extra = extra or {}
        self.headers = headers or {}

    def envelope(self) -> JSON:
        """The JSON body Stripe sends for this error."""
        error: JSON = {"type": self.type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param is not None:
            error["param"] = self.param
        if self.decline_code is not None:
            error["decline_code"] = self.decline_code
        error.update(self.extra)
        return {"error": error}


def invalid_request(
    message: str, *, param: str | None = None, code: str | None = None, status: int = 400
) -> StripeError:
    return StripeError(status, "invalid_request_error", message, code=code, param=param)


#: An intent's Stripe name and its error codes' prefix, by ``object``.
_INTENTS = {"setup_intent": "SetupIntent", "payment_intent": "PaymentIntent"}
#: What a succeeded or canceled intent still accepts on update.
_FINAL_UPDATABLE = frozenset({"metadata", "description", "expand"})


def unexpected_state(intent: dict[str, Any], action: str) -> StripeError:
    """Stripe's refusal to ``action`` a Setup/PaymentIntent in its current status."""
    kind = str(intent["object"])
    return invalid_request(
        f"You cannot {action} this {_INTENTS[kind]} because it has a status of {intent['status']}.",
        code=f"{kind}_unexpected_state",
    )


def check_updatable(intent: dict[str, Any], params: dict[str, Any]) -> None:
    """A succeeded or canceled intent takes only metadata and a description (as Stripe)."""
    if intent["status"] in ("succeeded", "canceled") and set(params) - _FINAL_UPDATABLE:
        raise unexpected_state(intent, "update")


def parameter_missing(param: str) -> StripeError:
    return invalid_request(
        f"Missing required param: {param}.", param=param, code="parameter_missing"
    )


def parameter_unknown(param: str) -> StripeError:
    return invalid_request(
        f"Received unknown parameter: {param}", param=param, code="parameter_unknown"
    )


def parameter_invalid(param: str, message: str, *, code: str = "parameter_invalid") -> StripeError:
    return invalid_request(message, param=param, code=code)


def unsupported(param: str, detail: str = "") -> StripeError:
    """A parameter Stripe honours and the emulator cannot: refused rather than ignored."""
    return invalid_request(f"{param} is not supported by the emulator{detail}.", param=param)


def resource_missing(label: str, object_id: str, *, param: str = "id") -> StripeError:
    return invalid_request(
        f"No such {label}: '{object_id}'", param=param, code="resource_missing", status=404
    )


def unrecognized_url(method: str, path: str) -> StripeError:
    return invalid_request(
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
        "or we can help at https://support.stripe.com/.",
        status=404,
    )


def authentication(message: str) -> StripeError:
    return StripeError(401, "invalid_request_error", message)


def idempotency_mismatch(key: str) -> StripeError:
    return StripeError(
        400,
        "idempotency_error",
        "Keys for idempotent requests can only be used with the same parameters they were "
        f"first used with. Try using a key other than '{key}' if you meant to execute a "
        "different request.",
    )


def card_error(
    code: str,
    message: str,
    *,
    decline_code: str | None,
    extra: JSON | None = None,
    param: str | None = None,
) -> StripeError:
    return StripeError(
        402,
        "card_error",
        message,
        code=code,
        decline_code=decline_code,
        param=param,
        extra=extra,
    )


def api_error(status: int, message: str) -> StripeError:
    return StripeError(status, "api_error", message)


def rate_limited(reason: str) -> StripeError:
    return StripeError(
        429,
        "invalid_request_error",
        "Request rate limit exceeded. Learn more about rate limits here "
        "https://stripe.com/docs/rate-limits.",
        code="rate_limit",
        headers={"Stripe-Rate-Limited-Reason": reason},
    )
