"""Domain exceptions: what services raise for callers to act on, in one tree.

The tree (catch the narrowest you can handle)::

    DomainError                      code             expected; reaches clients as a union member
    ├── ValidationFailed             VALIDATION       bad input; nothing was written
    ├── BadUserInput                 BAD_USER_INPUT   a request's text is not valid Unicode, or
    │                                                 its variables are too many: refused before
    │                                                 the request is parsed or run
    ├── NotFound                     NOT_FOUND        missing, or another organization's
    │   └── StripeNotFound           NOT_FOUND        Stripe has no such object (resource_missing)
    ├── AlreadyExists                ALREADY_EXISTS   a unique thing exists already
    │   └── DuplicateMeterEvent      ALREADY_EXISTS   Stripe counted a meter event with this
    │                                                 identifier already (delivered, for the sender)
    ├── Unauthenticated              UNAUTHENTICATED  no (valid) principal
    ├── Forbidden                    FORBIDDEN        principal lacks a role
    ├── ResponseTooLarge             RESPONSE_TOO_LARGE the answer would exceed
    │                                                 GRAPHQL_MAX_RESPONSE_BYTES: ask for less
    ├── ServiceUnavailable           UNAVAILABLE      the store or Stripe is down: retry later
    ├── RateLimited                  RATE_LIMITED     too many requests: retry after a pause
    │   └── Busy                     BUSY             another purchase of the organization is
    │                                                 under way: retry after a pause
    ├── PaymentDeclined              PAYMENT_DECLINED the card was declined (``decline_code``)
    ├── IdempotencyConflict          IDEMPOTENCY_CONFLICT same operation, different parameters
    ├── PaymentProviderRejected      PROVIDER_REJECTED Stripe refused the request as invalid
    │   └── MeterEventTimestampRefused PROVIDER_REJECTED a meter event's timestamp is outside
    │                                                 Stripe's window (35 days back, 5 min ahead)
    ├── PromotionCodeRejected        INVALID_PROMOTION_CODE the code cannot be used (``reason``:
    │                                                 UNKNOWN, EXPIRED, INACTIVE, …); nothing
    │                                                 was written
    ├── UsageRejected                (its reason)     a usage event was refused, nothing recorded:
    │   │                                             INVALID_QUANTITY, UNKNOWN_FEATURE, …
    │   └── QuotaExceeded            QUOTA_EXCEEDED   beyond the included quantity, overage off
    ├── UnknownOrganization          UNKNOWN_ORGANIZATION a Stripe subscription's customer is no
    │                                                 organization's (yet): webhooks retry it
    ├── MalformedStripeObject        MALFORMED_OBJECT a Stripe object is not one we can read
    └── BillingStateError            (subclasses)     the request does not fit the current state
        ├── AlreadySubscribed        ALREADY_SUBSCRIBED a live subscription exists
        ├── NoActiveSubscription     NO_SUBSCRIPTION  nothing to cancel / resume / change
        ├── NotScheduledToCancel     NOT_SCHEDULED_TO_CANCEL nothing to resume
        ├── NoPaymentMethod          NO_PAYMENT_METHOD the customer has no default payment method
        ├── PaymentMethodInUse       PAYMENT_METHOD_IN_USE the live subscription pays with it
        ├── PlanArchived             PLAN_ARCHIVED    the plan is no longer for sale
        ├── OverageNotOffered        OVERAGE_NOT_OFFERED the plan sells no overage for a feature
        └── NotPerSeat               NOT_PER_SEAT     seats asked of a plan not priced per seat

Anything that is not a ``DomainError`` is unexpected: it is logged with the request id and the
client sees a masked message.

Who turns these into answers, each in one table:

* GraphQL: ``schema.errors.ERROR_TABLE`` maps each class to the error type of a mutation's result
  union (a mutation's union lists the types it can answer; an error outside it becomes a
  top-level error with ``extensions.code``, see ``schema.error_policy``);
* webhooks: ``webhooks.errors.OUTCOMES`` maps each class to a delivery's outcome (failed with a
  reason, retried with a 503, or ignored);
* ``POST /v1/usage`` answers ``UsageRejected`` codes per event (``usage_endpoint``).

Not domain errors, so not here (each is caught where it is raised, or is the driver's):

* ``db.StoreError`` — the database driver's own error class (``PyMongoError``): the store is
  down or refused; this module is a leaf and knows no driver. Answered as retryable everywhere.
* ``auth.AuthError`` and its subclasses — a rejected credential, answered by the HTTP layer
  (401/403/503) before any resolver runs.
* ``webhooks.errors`` — the webhook handlers' signals to the dispatcher (``WebhookError``,
  ``IgnoredEvent``, ``TransientWebhookError``) and the endpoint's 400s (``InvalidSignature``,
  ``MalformedEvent``); ``webhooks.body``'s request-body errors.
* ``json_input.JsonTooLarge`` / ``JsonTooDeep`` (parser limits), ``settings.SettingsError``
  (configuration at start-up), ``invariants.InvariantError`` (a bug), and the private
  ``transport._TooLarge`` / ``usage_endpoint._Refused`` (early HTTP answers).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One invalid input field: a dotted path (``prices.0.amount``) and what is wrong."""

    field: str
    message: str


class DomainError(Exception):
    """An expected failure with a stable machine-readable ``code``."""

    code = "ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationFailed(DomainError):
    code = "VALIDATION"

    def __init__(self, message: str, problems: list[FieldProblem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class BadUserInput(DomainError):
    """A GraphQL request refused before it runs (``request_checks``); the message names the
    place, never the text."""

    code = "BAD_USER_INPUT"


class NotFound(DomainError):
    code = "NOT_FOUND"

    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"{kind} {key!r} was not found")
        self.kind = kind
        self.key = key


class StripeNotFound(NotFound):
    """Stripe has no such object (``resource_missing``)."""

    def __init__(self, param: str | None, detail: str | None = None) -> None:
        super().__init__("stripe object", param or "-")
        #: Stripe's own words, naming the object (``No such customer: 'cus_…'``), if given.
        self.detail = detail


class AlreadyExists(DomainError):
    code = "ALREADY_EXISTS"

    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"{kind} {key!r} already exists")
        self.kind = kind
        self.key = key


class DuplicateMeterEvent(AlreadyExists):
    """Stripe already has a meter event with this ``identifier``: it counted the first one, so
    for the sender the report is delivered."""

    def __init__(self, identifier: str) -> None:
        super().__init__("meter event", identifier)


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"

    def __init__(self, message: str = "authentication required") -> None:
        super().__init__(message)


class Forbidden(DomainError):
    code = "FORBIDDEN"

    def __init__(self, message: str = "this operation needs the admin role") -> None:
        super().__init__(message)


class ResponseTooLarge(DomainError):
    """The response would exceed its byte budget; the whole answer is replaced by this error."""

    code = "RESPONSE_TOO_LARGE"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the response would exceed {limit} bytes; ask for fewer items or fewer fields"
        )
        self.limit = limit


#: What a client is told when the database failed mid-request, and when to retry.
STORE_UNAVAILABLE_MESSAGE = "the database is temporarily unavailable; retry"
STORE_RETRY_AFTER_SECONDS = 1.0


class ServiceUnavailable(DomainError):
    code = "UNAVAILABLE"

    def __init__(self, message: str = "the service is temporarily unavailable; retry") -> None:
        super().__init__(message)


class RateLimited(DomainError):
    code = "RATE_LIMITED"

    def __init__(self, message: str = "too many requests; retry later", retry_after: float = 1.0):
        super().__init__(message)
        self.retry_after = retry_after


class Busy(RateLimited):
    code = "BUSY"


class PaymentDeclined(DomainError):
    code = "PAYMENT_DECLINED"

    def __init__(self, message: str, decline_code: str | None = None) -> None:
        super().__init__(message)
        self.decline_code = decline_code


class IdempotencyConflict(DomainError):
    code = "IDEMPOTENCY_CONFLICT"

    def __init__(
        self,
        message: str = "the same operation was already requested with different parameters",
    ) -> None:
        super().__init__(message)


class PaymentProviderRejected(DomainError):
    code = "PROVIDER_REJECTED"

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class MeterEventTimestampRefused(PaymentProviderRejected):
    """Stripe refuses a meter event's ``timestamp``: it takes one "within the past 35 calendar
    days or up to 5 minutes in the future" of its now (a test clock's time for a customer on
    one). The same event dated otherwise may be taken."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "timestamp")


class UnknownOrganization(DomainError):
    """A Stripe subscription's customer belongs to no organization we know (the customer
    document may be written a moment later by the mutation that created it)."""

    code = "UNKNOWN_ORGANIZATION"


class MalformedStripeObject(DomainError):
    """Stripe's object is not one the engine can read (permanent)."""

    code = "MALFORMED_OBJECT"


class BillingStateError(DomainError):
    """The request is valid but does not fit the organization's billing state."""


class AlreadySubscribed(BillingStateError):
    code = "ALREADY_SUBSCRIBED"

    def __init__(self, subscription_id: str, status: str) -> None:
        super().__init__(
            f"the organization already has a live subscription (status {status}); "
            "use changeSubscriptionPlan to switch plans"
        )
        self.subscription_id = subscription_id
        self.status = status


class NoActiveSubscription(BillingStateError):
    code = "NO_SUBSCRIPTION"

    def __init__(self, message: str = "the organization has no live subscription") -> None:
        super().__init__(message)


class NotScheduledToCancel(BillingStateError):
    code = "NOT_SCHEDULED_TO_CANCEL"

    def __init__(self) -> None:
        super().__init__("the subscription is not scheduled to cancel; nothing to resume")


class PlanArchived(BillingStateError):
    code = "PLAN_ARCHIVED"

    def __init__(self, uid: str) -> None:
        super().__init__(f"plan {uid!r} is archived and cannot be bought")


class NoPaymentMethod(BillingStateError):
    code = "NO_PAYMENT_METHOD"

    def __init__(
        self, message: str = "the customer has no default payment method; use checkout instead"
    ) -> None:
        super().__init__(message)


class UsageRejected(DomainError):
    """A usage event was refused and nothing was recorded; ``code`` is the reason the batch
    route answers for it too (``INVALID_QUANTITY``, ``UNKNOWN_FEATURE``, ``TIMESTAMP_TOO_OLD``…)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class QuotaExceeded(UsageRejected):
    """The event would take ``feature`` past its included quantity while overage is off."""

    def __init__(self, feature: str, included: int, used: int, message: str | None = None) -> None:
        super().__init__(
            "QUOTA_EXCEEDED",
            message
            or f"the event would exceed the included quantity of {feature!r} "
            f"({used} of {included} used this period) and overage is off",
        )
        self.feature = feature
        self.included = included
        self.used = used


class OverageNotOffered(BillingStateError):
    code = "OVERAGE_NOT_OFFERED"

    def __init__(self, feature: str) -> None:
        super().__init__(f"the plan offers no overage for {feature!r}")
        self.feature = feature


class PromotionCodeProblem(enum.StrEnum):
    """Why a promotion code cannot be used (``PromotionCodeRejected.reason``)."""

    UNKNOWN = "UNKNOWN"
    INACTIVE = "INACTIVE"
    EXPIRED = "EXPIRED"
    EXHAUSTED = "EXHAUSTED"
    NOT_APPLICABLE = "NOT_APPLICABLE"
    MINIMUM_NOT_MET = "MINIMUM_NOT_MET"
    FIRST_TIME_ONLY = "FIRST_TIME_ONLY"
    #: Passed the engine's check, refused by Stripe when used.
    REFUSED = "REFUSED"


class PromotionCodeRejected(DomainError):
    """A promotion code that cannot be used for this purchase, as Stripe would judge it
    (``reason``: UNKNOWN, INACTIVE, EXPIRED, EXHAUSTED, NOT_APPLICABLE, MINIMUM_NOT_MET,
    FIRST_TIME_ONLY). Raised before anything is written."""

    code = "INVALID_PROMOTION_CODE"

    def __init__(self, promotion_code: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.promotion_code = promotion_code
        self.reason = reason


class NotPerSeat(BillingStateError):
    code = "NOT_PER_SEAT"

    def __init__(self, plan_uid: str | None) -> None:
        super().__init__(
            f"the subscription's plan {plan_uid!r} is not priced per seat; its seats do not change"
        )
        self.plan_uid = plan_uid


class PaymentMethodInUse(BillingStateError):
    """Detaching the payment method a live subscription's renewals would charge."""

    code = "PAYMENT_METHOD_IN_USE"

    def __init__(self, payment_method_id: str) -> None:
        super().__init__(
            f"payment method {payment_method_id!r} pays for the live subscription; make another "
            "one the default first"
        )
        self.payment_method_id = payment_method_id
