"""Domain exceptions: what services raise and what the schema turns into typed results.

The tree (catch the narrowest you can handle)::

    DomainError                      code             expected; reaches clients as a union member
    ├── ValidationFailed             VALIDATION       bad input; nothing was written
    ├── NotFound                     NOT_FOUND        missing, or another organization's
    ├── AlreadyExists                ALREADY_EXISTS   a unique thing exists already
    ├── Unauthenticated              UNAUTHENTICATED  no (valid) principal
    ├── Forbidden                    FORBIDDEN        principal lacks a role
    └── ServiceUnavailable           UNAVAILABLE      the store is down: retry later

Anything that is not a ``DomainError`` is unexpected: it is logged with the request id and the
client sees a masked message. Later modules (gateway, billing) extend the tree below these roots.
"""

from __future__ import annotations

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


class NotFound(DomainError):
    code = "NOT_FOUND"

    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"{kind} {key!r} was not found")
        self.kind = kind
        self.key = key


class AlreadyExists(DomainError):
    code = "ALREADY_EXISTS"

    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"{kind} {key!r} already exists")
        self.kind = kind
        self.key = key


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"

    def __init__(self, message: str = "authentication required") -> None:
        super().__init__(message)


class Forbidden(DomainError):
    code = "FORBIDDEN"

    def __init__(self, message: str = "this operation needs the admin role") -> None:
        super().__init__(message)


class ServiceUnavailable(DomainError):
    code = "UNAVAILABLE"

    def __init__(self, message: str = "the service is temporarily unavailable; retry") -> None:
        super().__init__(message)
