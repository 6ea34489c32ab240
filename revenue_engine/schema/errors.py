"""Typed errors in the schema: the ``UserError`` interface, its members, and the handlers that
turn a raised ``DomainError`` into the matching union member (``strawberry.ExceptionHandler``).

A handler only applies to fields whose return union lists its error type; elsewhere the domain
error surfaces as a top-level error with ``extensions.code`` (see ``schema.extensions``).
"""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types.field import StrawberryField

from revenue_engine import errors


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
