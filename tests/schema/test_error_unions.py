"""Each mutation's result union lists exactly the errors its code path can answer, the one error
table answers them, and a front end written against the old, shared unions keeps working."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLUnionType,
    Undefined,
    parse,
    validate,
)
from pymongo.errors import AutoReconnect

from revenue_engine import errors
from revenue_engine.context import Context
from revenue_engine.db import StoreError
from revenue_engine.schema import build_schema
from revenue_engine.schema.errors import ERROR_TABLE, row_for
from revenue_engine.settings import Settings

ROOT = Path(__file__).parent.parent.parent
SCHEMA = build_schema()
GRAPHQL = SCHEMA._schema

#: Every mutation that reaches Stripe: the rate limit (RateLimited), the purchase lease (Busy),
#: Stripe or the store down (ServiceUnavailable, StoreError), and Stripe refusing the request.
_STRIPE = (
    errors.RateLimited,
    errors.ServiceUnavailable,
    StoreError,
    errors.PaymentProviderRejected,
)
#: ... and writing to it: every write is keyed, so Stripe may find the key used differently.
_WRITE = (*_STRIPE, errors.IdempotencyConflict)

#: What each field's code path can raise for its caller, read from its service (and the
#: gateway's table, ``gateway.errors.translate``). Unauthenticated, Forbidden and unmapped
#: errors are top-level errors everywhere and are not listed.
RAISES: dict[str, tuple[type[Exception], ...]] = {
    # plan_store: an invalid spec or taken lookup key; create_only on an existing uid.
    "upsertPlan": (errors.ValidationFailed, errors.AlreadyExists),
    "archivePlan": (errors.NotFound,),
    "replayWebhookEvent": (errors.NotFound,),
    # customers.get_or_create_customer: email/name checked, then a keyed create.
    "createCustomer": (errors.ValidationFailed, *_WRITE),
    # ... update: no customer yet, or Stripe has none (StripeNotFound).
    "updateCustomer": (errors.ValidationFailed, errors.NotFound, *_WRITE),
    # ... delete: no customer; refused while a subscription is live.
    "deleteCustomer": (errors.NotFound, errors.AlreadySubscribed, *_WRITE),
    # checkout: input problems, unknown plan, archived plan, live subscription, the code.
    "createCheckoutSession": (
        errors.ValidationFailed,
        errors.NotFound,
        errors.PlanArchived,
        errors.AlreadySubscribed,
        errors.Busy,
        errors.PromotionCodeRejected,
        *_WRITE,
    ),
    # another organization's session is not found; the card adoption writes (keyed).
    "verifyCheckoutSession": (errors.NotFound, *_WRITE),
    # direct subscription: as checkout, and no default payment method, and the card declined.
    "createSubscription": (
        errors.ValidationFailed,
        errors.NotFound,
        errors.PlanArchived,
        errors.AlreadySubscribed,
        errors.NoPaymentMethod,
        errors.Busy,
        errors.PaymentDeclined,
        errors.PromotionCodeRejected,
        *_WRITE,
    ),
    # no live subscription; Stripe no longer has it (a cancel's twin re-reads it).
    "cancelSubscription": (errors.NoActiveSubscription, errors.StripeNotFound, *_WRITE),
    "resumeSubscription": (
        errors.NoActiveSubscription,
        errors.NotScheduledToCancel,
        errors.StripeNotFound,
        *_WRITE,
    ),
    # an update with Stripe's default payment_behavior (allow_incomplete) is never declined.
    "changeSubscriptionPlan": (
        errors.ValidationFailed,
        errors.NoActiveSubscription,
        errors.NotFound,
        errors.PlanArchived,
        errors.NotPerSeat,
        errors.PromotionCodeRejected,
        *_WRITE,
    ),
    "updateSeats": (
        errors.ValidationFailed,
        errors.NoActiveSubscription,
        errors.NotPerSeat,
        *_WRITE,
    ),
    # a preview writes nothing: no key to conflict on.
    "previewSubscriptionChange": (
        errors.ValidationFailed,
        errors.NoActiveSubscription,
        errors.NotFound,
        errors.PromotionCodeRejected,
        *_STRIPE,
    ),
    # payments: bad amount/currency/metadata; Stripe no longer has the stored customer.
    "createPaymentIntent": (errors.ValidationFailed, errors.StripeNotFound, *_WRITE),
    "confirmPaymentIntent": (
        errors.ValidationFailed,
        errors.NotFound,
        errors.PaymentDeclined,
        *_WRITE,
    ),
    "cancelPaymentIntent": (errors.NotFound, *_WRITE),
    "refundPayment": (errors.ValidationFailed, errors.NotFound, *_WRITE),
    "createBillingPortalSession": (errors.ValidationFailed, errors.NotFound, *_WRITE),
    "createSetupIntent": (errors.ValidationFailed, *_WRITE),
    "setDefaultPaymentMethod": (errors.NotFound, *_WRITE),
    "detachPaymentMethod": (errors.NotFound, errors.PaymentMethodInUse, *_WRITE),
    # usage: refused events, the quota, and the store (the batch route's retry).
    "recordUsage": (errors.UsageRejected, errors.QuotaExceeded, errors.ServiceUnavailable),
    "setOverage": (
        errors.ValidationFailed,
        errors.NoActiveSubscription,
        errors.OverageNotOffered,
        errors.StripeNotFound,
        *_WRITE,
    ),
}

#: The unions before each mutation got its own: what an old front end was written against.
OLD_SHARED = [
    "ValidationError",
    "NotFoundError",
    "AlreadySubscribedError",
    "BillingStateError",
    "PaymentDeclinedError",
    "RetryableError",
    "IdempotencyConflictError",
    "ProviderRejectedError",
]
OLD_UNIONS: dict[str, list[str]] = {
    "upsertPlan": ["ValidationError", "AlreadyExistsError"],
    "archivePlan": ["NotFoundError"],
    "replayWebhookEvent": ["NotFoundError"],
    **{
        name: OLD_SHARED
        for name in (
            "createCustomer",
            "updateCustomer",
            "deleteCustomer",
            "verifyCheckoutSession",
            "createPaymentIntent",
            "confirmPaymentIntent",
            "cancelPaymentIntent",
            "refundPayment",
            "createBillingPortalSession",
        )
    },
    **{
        name: [*OLD_SHARED, "PromotionCodeError"]
        for name in (
            "createCheckoutSession",
            "createSubscription",
            "cancelSubscription",
            "resumeSubscription",
            "changeSubscriptionPlan",
        )
    },
    "updateSeats": [
        "ValidationError",
        "BillingStateError",
        "PaymentDeclinedError",
        "RetryableError",
        "IdempotencyConflictError",
        "ProviderRejectedError",
    ],
    "previewSubscriptionChange": [
        "ValidationError",
        "NotFoundError",
        "BillingStateError",
        "RetryableError",
        "ProviderRejectedError",
        "PromotionCodeError",
    ],
    "createSetupIntent": [
        "ValidationError",
        "RetryableError",
        "IdempotencyConflictError",
        "ProviderRejectedError",
    ],
    **{
        name: [
            "ValidationError",
            "NotFoundError",
            "BillingStateError",
            "RetryableError",
            "IdempotencyConflictError",
            "ProviderRejectedError",
        ]
        for name in ("setDefaultPaymentMethod", "detachPaymentMethod", "setOverage")
    },
    "recordUsage": ["QuotaExceededError", "UsageRejectedError", "RetryableError"],
}

#: The code each old error type answered with, by the domain error that produced it.
OLD_CODES: list[tuple[Exception, str, str]] = [
    (errors.ValidationFailed("bad"), "ValidationError", "VALIDATION"),
    (errors.NotFound("plan", "p"), "NotFoundError", "NOT_FOUND"),
    (errors.StripeNotFound("id"), "NotFoundError", "NOT_FOUND"),
    (errors.AlreadyExists("plan", "p"), "AlreadyExistsError", "ALREADY_EXISTS"),
    (errors.AlreadySubscribed("sub_1", "active"), "AlreadySubscribedError", "ALREADY_SUBSCRIBED"),
    (errors.NoActiveSubscription(), "BillingStateError", "NO_SUBSCRIPTION"),
    (errors.NotScheduledToCancel(), "BillingStateError", "NOT_SCHEDULED_TO_CANCEL"),
    (errors.NoPaymentMethod(), "BillingStateError", "NO_PAYMENT_METHOD"),
    (errors.PaymentMethodInUse("pm_1"), "BillingStateError", "PAYMENT_METHOD_IN_USE"),
    (errors.PlanArchived("p"), "BillingStateError", "PLAN_ARCHIVED"),
    (errors.OverageNotOffered("api"), "BillingStateError", "OVERAGE_NOT_OFFERED"),
    (errors.NotPerSeat("p"), "BillingStateError", "NOT_PER_SEAT"),
    (
        errors.PaymentDeclined("no", "insufficient_funds"),
        "PaymentDeclinedError",
        "PAYMENT_DECLINED",
    ),
    (errors.RateLimited(), "RetryableError", "RATE_LIMITED"),
    (errors.Busy(), "RetryableError", "BUSY"),
    (errors.ServiceUnavailable(), "RetryableError", "UNAVAILABLE"),
    (AutoReconnect("reset"), "RetryableError", "UNAVAILABLE"),
    (errors.IdempotencyConflict(), "IdempotencyConflictError", "IDEMPOTENCY_CONFLICT"),
    (errors.PaymentProviderRejected("no", "x"), "ProviderRejectedError", "PROVIDER_REJECTED"),
    (errors.MeterEventTimestampRefused("old"), "ProviderRejectedError", "PROVIDER_REJECTED"),
    (
        errors.PromotionCodeRejected("SAVE", "EXPIRED", "expired"),
        "PromotionCodeError",
        "INVALID_PROMOTION_CODE",
    ),
    (errors.QuotaExceeded("api", 10, 10), "QuotaExceededError", "QUOTA_EXCEEDED"),
    (errors.UsageRejected("UNKNOWN_FEATURE", "no"), "UsageRejectedError", "UNKNOWN_FEATURE"),
]

#: One instance of every domain error (and a store error), mapped or not.
SAMPLES: list[Exception] = [
    *(exc for exc, _, _ in OLD_CODES),
    errors.DuplicateMeterEvent("evt"),
    errors.UnknownOrganization("nobody"),
    errors.MalformedStripeObject("not a subscription"),
    errors.BadUserInput("bad text"),
    errors.ResponseTooLarge(10),
    errors.Unauthenticated(),
    errors.Forbidden(),
]


def _unwrap(field: GraphQLField) -> Any:
    kind = field.type
    return kind.of_type if isinstance(kind, GraphQLNonNull) else kind


def union_fields() -> dict[str, GraphQLUnionType]:
    found = {}
    for root in (GRAPHQL.mutation_type, GRAPHQL.query_type):
        assert root is not None
        for name, field in root.fields.items():
            kind = _unwrap(field)
            if isinstance(kind, GraphQLUnionType):
                found[name] = kind
    return found


def error_members(union: GraphQLUnionType) -> set[str]:
    return {t.name for t in union.types if any(i.name == "UserError" for i in t.interfaces)}


def test_every_domain_error_class_is_sampled() -> None:
    def subclasses(cls: type) -> set[type]:
        return {cls, *(s for sub in cls.__subclasses__() for s in subclasses(sub))}

    abstract = {errors.DomainError, errors.BillingStateError}
    sampled = {type(e) for e in SAMPLES if isinstance(e, errors.DomainError)}
    assert subclasses(errors.DomainError) - abstract == sampled


def test_every_union_field_has_a_derivation() -> None:
    assert set(union_fields()) == set(RAISES)
    for name in union_fields():
        assert name in OLD_UNIONS, f"{name}: a new union field needs its old members here too"


def nearest_type(cls: type[Exception]) -> str:
    """The GraphQL type of the table's row for ``cls`` (its nearest class with a row)."""
    rows = {row.exception: row for row in ERROR_TABLE}
    return next(rows[c].error_type.__name__ for c in cls.__mro__ if c in rows)


@pytest.mark.parametrize("name", sorted(RAISES))
def test_each_union_lists_exactly_the_errors_its_code_path_answers(name: str) -> None:
    expected = {nearest_type(cls) for cls in RAISES[name]}
    assert error_members(union_fields()[name]) == expected


@pytest.mark.parametrize("name", sorted(OLD_UNIONS))
def test_an_old_front_end_meets_no_type_it_did_not_know(name: str) -> None:
    """Each union only lost members: every ``__typename`` an error can have now, the old
    union listed too, so a front end's switch on it still covers every answer."""
    assert error_members(union_fields()[name]) <= set(OLD_UNIONS[name])


@pytest.mark.parametrize(("exc", "type_name", "code"), OLD_CODES, ids=lambda v: str(v)[:30])
def test_the_old_type_names_and_codes_still_resolve(
    exc: Exception, type_name: str, code: str
) -> None:
    row = row_for(exc)
    assert row is not None
    answer = row.build(exc)
    assert type(answer).__name__ == type_name
    assert answer.code == code
    kind = GRAPHQL.get_type(type_name)
    assert kind is not None
    assert "code" in kind.fields  # type: ignore[attr-defined]


def test_the_schema_file_shows_each_mutations_own_union() -> None:
    text = (ROOT / "schema.graphql").read_text(encoding="utf-8")
    for name, union in union_fields().items():
        assert re.search(rf"\b{name}\([^)]*\): {union.name}!|\b{name}: {union.name}!", text), name
        line = re.search(rf"^union {union.name} = (.*)$", text, re.M)
        assert line is not None, union.name
        assert {m.strip() for m in line.group(1).split("|")} == {t.name for t in union.types}
    mutations = [n for n in union_fields() if n in GRAPHQL.mutation_type.fields]  # type: ignore[union-attr]
    shared = {union_fields()[n].name for n in mutations}
    # Mutations share a union only where they answer the same (none do today).
    assert len(shared) == len(mutations)


# --- raising each error from each field -------------------------------------------------
def _literal(kind: GraphQLInputType) -> str:
    if isinstance(kind, GraphQLNonNull):
        return _literal(kind.of_type)
    if isinstance(kind, GraphQLList):
        return "[]"
    if isinstance(kind, GraphQLEnumType):
        return next(iter(kind.values))
    if isinstance(kind, GraphQLInputObjectType):
        required = [
            f"{n}: {_literal(f.type)}"
            for n, f in kind.fields.items()
            if isinstance(f.type, GraphQLNonNull) and f.default_value is Undefined
        ]
        return "{" + ", ".join(required) + "}"
    assert isinstance(kind, GraphQLScalarType)
    return {"Int": "1", "Float": "1", "Boolean": "true", "Count": "1"}.get(kind.name, '"x"')


def _operation(name: str) -> str:
    mutation = GRAPHQL.mutation_type
    assert mutation is not None
    root, field = (
        ("mutation", mutation.fields[name])
        if name in mutation.fields
        else (
            "query",
            GRAPHQL.query_type.fields[name],  # type: ignore[union-attr]
        )
    )
    args = [
        f"{n}: {_literal(a.type)}"
        for n, a in field.args.items()
        if isinstance(a.type, GraphQLNonNull) and a.default_value is Undefined
    ]
    call = f"{name}({', '.join(args)})" if args else name
    return f"{root} {{ {call} {{ __typename ... on UserError {{ code }} }} }}"


@pytest.mark.parametrize("name", sorted(RAISES))
async def test_raising_each_error_answers_a_member_or_a_top_level_error(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every resolver asks for its caller first: raising there stands for the service raising
    later on the same path. A mapped error whose type the union lists is that member, with its
    code; any other is a top-level error carrying the very exception (coded or masked by
    ``schema.error_policy``)."""
    members = error_members(union_fields()[name])
    context = Context(
        request=None,  # type: ignore[arg-type]
        response=None,  # type: ignore[arg-type]
        settings=Settings(),
        gateway=None,  # type: ignore[arg-type]
        principal=None,  # the rate limit passes anonymous calls to the resolver
        request_id="req_1",
    )
    for exc in SAMPLES:

        def refuse(self: Context, exc: Exception = exc) -> Any:
            raise exc

        monkeypatch.setattr(Context, "require_principal", refuse)
        monkeypatch.setattr(Context, "require_admin", refuse)
        result = await SCHEMA.execute(_operation(name), context_value=context)
        row = row_for(exc)
        if row is not None and row.error_type.__name__ in members:
            assert result.errors is None, (name, exc, result.errors)
            assert result.data is not None
            answer = result.data[name]
            assert answer["__typename"] == row.error_type.__name__
            expected = "UNAVAILABLE" if isinstance(exc, StoreError) else exc.code  # type: ignore[attr-defined]
            assert answer["code"] == expected
        else:
            assert result.data is None, (name, exc, result.data)
            assert result.errors is not None
            assert result.errors[0].original_error is exc


# --- the SPA ----------------------------------------------------------------------------
def test_every_operation_the_spa_sends_is_valid() -> None:
    """The SPA's error fragment names error types inside ``... on UserError``, valid on every
    union whichever of them it lists."""
    source = (ROOT / "revenue_engine" / "web" / "app.js").read_text(encoding="utf-8")
    constants = {
        m.group(1): m.group(2)[1:-1]
        for m in re.finditer(r'^const (\w+) = (`[^`]*`|"[^"]*");$', source, re.M)
    }

    def expand(text: str) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            return expand(constants[name]) if name in constants else f"@{name}@"

        return re.sub(r"\$\{(\w+)\}", one, text)

    acts = re.findall(r'act\("([^"]+)"', source)
    operations = [expand(op) for op in re.findall(r"`((?:mutation|query)\b[^`]*)`", source)]
    assert len(operations) >= 10
    assert acts
    for operation in operations:
        filled = [operation.replace("@mutation@", act) for act in acts]
        for text in filled if "@mutation@" in operation else [operation]:
            assert "@" not in text, text[:80]
            problems = validate(GRAPHQL, parse(text))
            assert problems == [], (text[:120], problems)


def test_the_api_docs_list_each_fields_union_and_errors() -> None:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)`(?: \(query\))? \| `(\w+)` \| (.*) \|$", text, re.M)
    assert {name for name, _, _ in rows} == set(union_fields())
    common = {"RetryableError", "ProviderRejectedError", "IdempotencyConflictError"}
    for name, union, cell in rows:
        assert union_fields()[name].name == union, name
        named = set(re.findall(r"`(\w+Error)`", cell))
        members = error_members(union_fields()[name])
        assert named <= members, name
        assert members - common <= named, name
