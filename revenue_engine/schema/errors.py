"""Typed errors in the schema: the ``UserError`` interface, its members, and ``ERROR_TABLE``,
the one table that turns a raised domain error into the matching union member.

=================================  ============================  ===============================
raised (``revenue_engine.errors``)  GraphQL type                  its fields besides message, code
=================================  ============================  ===============================
``ValidationFailed``               ``ValidationError``           ``fields``
``NotFound`` (``StripeNotFound``)  ``NotFoundError``             ``kind``, ``key``
``AlreadyExists``                  ``AlreadyExistsError``        ``kind``, ``key``
``PaymentDeclined``                ``PaymentDeclinedError``      ``declineCode``
``RateLimited`` (``Busy``)         ``RetryableError``            ``retryAfterSeconds``
``ServiceUnavailable``             ``RetryableError``            ``retryAfterSeconds`` (null)
``db.StoreError``                  ``RetryableError``            ``retryAfterSeconds``; message
                                                                 and code of ``UNAVAILABLE``
``IdempotencyConflict``            ``IdempotencyConflictError``
``PaymentProviderRejected``        ``ProviderRejectedError``     ``param``
``AlreadySubscribed``              ``AlreadySubscribedError``    ``subscriptionId``, ``status``
other ``BillingStateError``        ``BillingStateError``         (``code`` says which)
``QuotaExceeded``                  ``QuotaExceededError``        ``feature``, ``included``, ``used``
other ``UsageRejected``            ``UsageRejectedError``        (``code`` says why)
``PromotionCodeRejected``          ``PromotionCodeError``        ``promotionCode``, ``reason``
=================================  ============================  ===============================

An error is answered by the row of its nearest class in the table (``row_for``). A row only
applies to fields whose result union lists its type, and each mutation's union lists the types
it can answer; any other error, and one whose row's type the field does not list, surfaces as a
top-level error with ``extensions.code`` (``schema.error_policy``). Strawberry asks the
handlers that apply to a field in order, takes the first whose class matches, and asks no other
when it declines. So ``EXCEPTION_HANDLERS`` puts a subclass's row before its base's (on
``recordUsage`` a ``QuotaExceeded`` meets the ``QuotaExceededError`` row first), and a row's
handler declines an error whose nearest row is another (an ``AlreadySubscribed`` on a field
that lists ``BillingStateError`` but not ``AlreadySubscribedError`` stays top-level).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import strawberry
from strawberry.types.field import StrawberryField

from revenue_engine import errors
from revenue_engine.db import StoreError
from revenue_engine.schema.scalars import Count

log = logging.getLogger(__name__)


@strawberry.interface(description="An expected failure the client can switch on by `code`.")
class UserError:
    message: str
    code: str


@strawberry.type(description="One invalid input field.")
class FieldError:
    field: str
    message: str


@strawberry.type(description="The input was invalid; nothing was written.")
class ValidationError(UserError):
    fields: list[FieldError]


@strawberry.type(description="The object does not exist or belongs to another organization.")
class NotFoundError(UserError):
    kind: str
    key: str


@strawberry.type(description="An object with this key exists already.")
class AlreadyExistsError(UserError):
    kind: str
    key: str


@strawberry.type(description="The card was declined; `declineCode` says why when Stripe tells.")
class PaymentDeclinedError(UserError):
    decline_code: str | None


@strawberry.type(description="Try again later: the provider or the store is busy or down.")
class RetryableError(UserError):
    retry_after_seconds: float | None


@strawberry.type(description="The same operation was already sent with different parameters.")
class IdempotencyConflictError(UserError):
    pass


@strawberry.type(description="Stripe refused the request as invalid.")
class ProviderRejectedError(UserError):
    param: str | None


@strawberry.type(description="A live subscription exists: change it with changeSubscriptionPlan.")
class AlreadySubscribedError(UserError):
    subscription_id: str
    status: str


@strawberry.type(
    description="The request does not fit the billing state (no subscription, no payment "
    "method, archived plan, …); `code` says which."
)
class BillingStateError(UserError):
    pass


# --- usage -------------------------------------------------------------------------------
@strawberry.type(
    description="The usage event was refused and nothing was recorded; `code` says why "
    "(INVALID_ID, INVALID_QUANTITY, INVALID_TIMESTAMP, UNKNOWN_FEATURE, UNKNOWN_ORGANIZATION, "
    "NO_LIVE_SUBSCRIPTION, TIMESTAMP_TOO_OLD, TIMESTAMP_IN_FUTURE)."
)
class UsageRejectedError(UserError):
    pass


@strawberry.type(
    description="QUOTA_EXCEEDED: the event would pass the feature's included quantity while "
    "overage is off; nothing was recorded (block the action, or switch overage on)."
)
class QuotaExceededError(UserError):
    feature: str
    included: Count = strawberry.field(description="Included in the current period.")
    used: Count = strawberry.field(description="Used in the current period so far.")


# --- promotion codes ---------------------------------------------------------------------
# The domain's enum, exposed as it is (strawberry.enum registers it on the class).
strawberry.enum(errors.PromotionCodeProblem, description="Why a promotion code cannot be used.")


@strawberry.type(
    description="INVALID_PROMOTION_CODE: the code cannot be used for this purchase (`reason` "
    "says why, as Stripe judges it); nothing was written."
)
class PromotionCodeError(UserError):
    promotion_code: str
    reason: errors.PromotionCodeProblem


# --- the table ---------------------------------------------------------------------------
def _validation(exc: errors.ValidationFailed) -> ValidationError:
    fields = [FieldError(field=p.field, message=p.message) for p in exc.problems]
    return ValidationError(message=exc.message, code=exc.code, fields=fields)


def _not_found(exc: errors.NotFound) -> NotFoundError:
    return NotFoundError(message=exc.message, code=exc.code, kind=exc.kind, key=exc.key)


def _already_exists(exc: errors.AlreadyExists) -> AlreadyExistsError:
    return AlreadyExistsError(message=exc.message, code=exc.code, kind=exc.kind, key=exc.key)


def _declined(exc: errors.PaymentDeclined) -> PaymentDeclinedError:
    return PaymentDeclinedError(message=exc.message, code=exc.code, decline_code=exc.decline_code)


def _rate_limited(exc: errors.RateLimited) -> RetryableError:
    return RetryableError(message=exc.message, code=exc.code, retry_after_seconds=exc.retry_after)


def _unavailable(exc: errors.ServiceUnavailable) -> RetryableError:
    return RetryableError(message=exc.message, code=exc.code, retry_after_seconds=None)


def _store_unavailable(exc: StoreError) -> RetryableError:
    """The database failed mid-request: nothing half-done is exposed, the client retries
    (every Stripe write is keyed, so the retry completes the work without a duplicate)."""
    return RetryableError(
        message=errors.STORE_UNAVAILABLE_MESSAGE,
        code=errors.ServiceUnavailable.code,
        retry_after_seconds=errors.STORE_RETRY_AFTER_SECONDS,
    )


def _log_store_error(exc: StoreError, field: str) -> None:
    code = getattr(exc, "code", None)  # set when the server answered with an error
    if code is not None:
        # Reachable but refusing (an unsupported operator, a lost write, a bad query): a bug
        # or a server to look at, not an outage; the client still just retries.
        log.error(
            "store refused an operation field=%s error=%s code=%s",
            field,
            type(exc).__name__,
            code,
        )
    else:
        log.warning("store error field=%s error=%s", field, type(exc).__name__)


def _conflict(exc: errors.IdempotencyConflict) -> IdempotencyConflictError:
    return IdempotencyConflictError(message=exc.message, code=exc.code)


def _rejected(exc: errors.PaymentProviderRejected) -> ProviderRejectedError:
    return ProviderRejectedError(message=exc.message, code=exc.code, param=exc.param)


def _subscribed(exc: errors.AlreadySubscribed) -> AlreadySubscribedError:
    return AlreadySubscribedError(
        message=exc.message,
        code=exc.code,
        subscription_id=exc.subscription_id,
        status=exc.status,
    )


def _billing_state(exc: errors.BillingStateError) -> BillingStateError:
    return BillingStateError(message=exc.message, code=exc.code)


def _quota(exc: errors.QuotaExceeded) -> QuotaExceededError:
    return QuotaExceededError(
        message=exc.message,
        code=exc.code,
        feature=exc.feature,
        included=Count(exc.included),
        used=Count(exc.used),
    )


def _usage_rejected(exc: errors.UsageRejected) -> UsageRejectedError:
    return UsageRejectedError(message=exc.message, code=exc.code)


def _promotion(exc: errors.PromotionCodeRejected) -> PromotionCodeError:
    return PromotionCodeError(
        message=exc.message,
        code=exc.code,
        promotion_code=exc.promotion_code,
        reason=errors.PromotionCodeProblem(exc.reason),
    )


@dataclass(frozen=True, slots=True)
class ErrorRow:
    """Raised ``exception`` (and its subclasses without a row of their own) is answered as
    ``error_type``, built by ``build``."""

    exception: type[Exception]
    error_type: type
    build: Callable[[Any], Any]
    #: Called with the error and the field's name before it is answered (or None).
    log: Callable[[Any, str], None] | None = None


#: The one mapping of raised errors to GraphQL error types (the module docstring's table).
ERROR_TABLE: tuple[ErrorRow, ...] = (
    ErrorRow(errors.ValidationFailed, ValidationError, _validation),
    ErrorRow(errors.NotFound, NotFoundError, _not_found),
    ErrorRow(errors.AlreadyExists, AlreadyExistsError, _already_exists),
    ErrorRow(errors.PaymentDeclined, PaymentDeclinedError, _declined),
    ErrorRow(errors.RateLimited, RetryableError, _rate_limited),
    ErrorRow(errors.ServiceUnavailable, RetryableError, _unavailable),
    ErrorRow(StoreError, RetryableError, _store_unavailable, _log_store_error),
    ErrorRow(errors.IdempotencyConflict, IdempotencyConflictError, _conflict),
    ErrorRow(errors.PaymentProviderRejected, ProviderRejectedError, _rejected),
    ErrorRow(errors.AlreadySubscribed, AlreadySubscribedError, _subscribed),
    ErrorRow(errors.BillingStateError, BillingStateError, _billing_state),
    ErrorRow(errors.QuotaExceeded, QuotaExceededError, _quota),
    ErrorRow(errors.UsageRejected, UsageRejectedError, _usage_rejected),
    ErrorRow(errors.PromotionCodeRejected, PromotionCodeError, _promotion),
)

_ROWS = {row.exception: row for row in ERROR_TABLE}


def row_for(exc: BaseException) -> ErrorRow | None:
    """The row of the nearest class of ``exc`` that has one; None for an unmapped error."""
    for cls in type(exc).__mro__:
        row = _ROWS.get(cls)
        if row is not None:
            return row
    return None


class _RowHandler:
    """One row as a ``strawberry.ExceptionHandler`` (``exception_type`` and ``error_type``
    tell Strawberry which errors and which fields). It declines an error whose nearest row is
    another one: that row's type is not in the field's union (see the module docstring)."""

    def __init__(self, row: ErrorRow) -> None:
        self.row = row
        self.exception_type = row.exception
        self.error_type = row.error_type

    def handle(self, exception: Exception, *, field: StrawberryField, info: Any) -> Any:
        if row_for(exception) is not self.row:
            return None
        if self.row.log is not None:
            self.row.log(exception, field.python_name)
        return self.row.build(exception)


#: The table as handlers, a subclass's row before its base's (a longer MRO sorts first).
EXCEPTION_HANDLERS: tuple[strawberry.ExceptionHandler[Any, Any], ...] = tuple(
    _RowHandler(row) for row in sorted(ERROR_TABLE, key=lambda r: -len(r.exception.__mro__))
)

#: Concrete error types every schema registers (so unions can list them).
ERROR_TYPES: tuple[type, ...] = tuple(dict.fromkeys(row.error_type for row in ERROR_TABLE))
