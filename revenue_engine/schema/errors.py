"""Typed errors in the schema: the ``UserError`` interface, its members, and the handlers that
turn a raised ``DomainError`` into the matching union member (``strawberry.ExceptionHandler``).

A handler only applies to fields whose return union lists its error type; elsewhere the domain
error surfaces as a top-level error with ``extensions.code`` (see ``schema.extensions``).
"""

from __future__ import annotations

import logging
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


class ValidationHandler(strawberry.ExceptionHandler[errors.ValidationFailed, ValidationError]):
    def handle(
        self, exception: errors.ValidationFailed, *, field: StrawberryField, info: Any
    ) -> ValidationError:
        return ValidationError(
            message=exception.message,
            code=exception.code,
            fields=[FieldError(field=p.field, message=p.message) for p in exception.problems],
        )


class NotFoundHandler(strawberry.ExceptionHandler[errors.NotFound, NotFoundError]):
    def handle(
        self, exception: errors.NotFound, *, field: StrawberryField, info: Any
    ) -> NotFoundError:
        return NotFoundError(
            message=exception.message, code=exception.code, kind=exception.kind, key=exception.key
        )


class AlreadyExistsHandler(strawberry.ExceptionHandler[errors.AlreadyExists, AlreadyExistsError]):
    def handle(
        self, exception: errors.AlreadyExists, *, field: StrawberryField, info: Any
    ) -> AlreadyExistsError:
        return AlreadyExistsError(
            message=exception.message, code=exception.code, kind=exception.kind, key=exception.key
        )


EXCEPTION_HANDLERS: tuple[strawberry.ExceptionHandler[Any, Any], ...] = (
    ValidationHandler(),
    NotFoundHandler(),
    AlreadyExistsHandler(),
)

#: Concrete error types every schema registers (so unions can list them).
ERROR_TYPES: tuple[type, ...] = (ValidationError, NotFoundError, AlreadyExistsError)


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


class PaymentDeclinedHandler(
    strawberry.ExceptionHandler[errors.PaymentDeclined, PaymentDeclinedError]
):
    def handle(
        self, exception: errors.PaymentDeclined, *, field: StrawberryField, info: Any
    ) -> PaymentDeclinedError:
        return PaymentDeclinedError(
            message=exception.message, code=exception.code, decline_code=exception.decline_code
        )


class RetryableHandler(
    strawberry.ExceptionHandler[errors.RateLimited | errors.ServiceUnavailable, RetryableError]
):
    def handle(
        self,
        exception: errors.RateLimited | errors.ServiceUnavailable,
        *,
        field: StrawberryField,
        info: Any,
    ) -> RetryableError:
        retry_after = exception.retry_after if isinstance(exception, errors.RateLimited) else None
        return RetryableError(
            message=exception.message, code=exception.code, retry_after_seconds=retry_after
        )


class StoreUnavailableHandler(strawberry.ExceptionHandler[StoreError, RetryableError]):
    """The database failed mid-request: nothing half-done is exposed, the client retries
    (every Stripe write is keyed, so the retry completes the work without a duplicate)."""

    def handle(self, exception: StoreError, *, field: StrawberryField, info: Any) -> RetryableError:
        code = getattr(exception, "code", None)  # set when the server answered with an error
        if code is not None:
            # Reachable but refusing (an unsupported operator, a lost write, a bad query): a
            # bug or a server to look at, not an outage; the client still just retries.
            log.error(
                "store refused an operation field=%s error=%s code=%s",
                field.python_name,
                type(exception).__name__,
                code,
            )
        else:
            log.warning(
                "store error field=%s error=%s", field.python_name, type(exception).__name__
            )
        return RetryableError(
            message=errors.STORE_UNAVAILABLE_MESSAGE,
            code=errors.ServiceUnavailable.code,
            retry_after_seconds=errors.STORE_RETRY_AFTER_SECONDS,
        )


class IdempotencyConflictHandler(
    strawberry.ExceptionHandler[errors.IdempotencyConflict, IdempotencyConflictError]
):
    def handle(
        self, exception: errors.IdempotencyConflict, *, field: StrawberryField, info: Any
    ) -> IdempotencyConflictError:
        return IdempotencyConflictError(message=exception.message, code=exception.code)


class ProviderRejectedHandler(
    strawberry.ExceptionHandler[errors.PaymentProviderRejected, ProviderRejectedError]
):
    def handle(
        self, exception: errors.PaymentProviderRejected, *, field: StrawberryField, info: Any
    ) -> ProviderRejectedError:
        return ProviderRejectedError(
            message=exception.message, code=exception.code, param=exception.param
        )


class AlreadySubscribedHandler(
    strawberry.ExceptionHandler[errors.AlreadySubscribed, AlreadySubscribedError]
):
    def handle(
        self, exception: errors.AlreadySubscribed, *, field: StrawberryField, info: Any
    ) -> AlreadySubscribedError:
        return AlreadySubscribedError(
            message=exception.message,
            code=exception.code,
            subscription_id=exception.subscription_id,
            status=exception.status,
        )


class BillingStateHandler(strawberry.ExceptionHandler[errors.BillingStateError, BillingStateError]):
    def handle(
        self, exception: errors.BillingStateError, *, field: StrawberryField, info: Any
    ) -> BillingStateError | None:
        if isinstance(exception, errors.AlreadySubscribed):
            return None  # AlreadySubscribedHandler answers it where the union lists it
        return BillingStateError(message=exception.message, code=exception.code)


EXCEPTION_HANDLERS = (
    *EXCEPTION_HANDLERS,
    PaymentDeclinedHandler(),
    RetryableHandler(),
    StoreUnavailableHandler(),
    IdempotencyConflictHandler(),
    ProviderRejectedHandler(),
    AlreadySubscribedHandler(),
    BillingStateHandler(),
)
ERROR_TYPES = (
    *ERROR_TYPES,
    PaymentDeclinedError,
    RetryableError,
    IdempotencyConflictError,
    ProviderRejectedError,
    AlreadySubscribedError,
    BillingStateError,
)


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


class QuotaExceededHandler(strawberry.ExceptionHandler[errors.QuotaExceeded, QuotaExceededError]):
    def handle(
        self, exception: errors.QuotaExceeded, *, field: StrawberryField, info: Any
    ) -> QuotaExceededError:
        return QuotaExceededError(
            message=exception.message,
            code=exception.code,
            feature=exception.feature,
            included=Count(exception.included),
            used=Count(exception.used),
        )


class UsageRejectedHandler(strawberry.ExceptionHandler[errors.UsageRejected, UsageRejectedError]):
    def handle(
        self, exception: errors.UsageRejected, *, field: StrawberryField, info: Any
    ) -> UsageRejectedError:
        return UsageRejectedError(message=exception.message, code=exception.code)


# First match wins: the quota handler goes before the one of its base class.
EXCEPTION_HANDLERS = (*EXCEPTION_HANDLERS, QuotaExceededHandler(), UsageRejectedHandler())
ERROR_TYPES = (*ERROR_TYPES, QuotaExceededError, UsageRejectedError)


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


class PromotionCodeHandler(
    strawberry.ExceptionHandler[errors.PromotionCodeRejected, PromotionCodeError]
):
    def handle(
        self, exception: errors.PromotionCodeRejected, *, field: StrawberryField, info: Any
    ) -> PromotionCodeError:
        return PromotionCodeError(
            message=exception.message,
            code=exception.code,
            promotion_code=exception.promotion_code,
            reason=errors.PromotionCodeProblem(exception.reason),
        )


EXCEPTION_HANDLERS = (*EXCEPTION_HANDLERS, PromotionCodeHandler())
ERROR_TYPES = (*ERROR_TYPES, PromotionCodeError)
