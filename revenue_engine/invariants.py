"""Facts the engine relies on, checked explicitly rather than with ``assert`` (which ``-O`` strips).

A broken invariant is a bug, or the store changing under us (a row deleted between two reads),
never bad input: ``InvariantError`` is deliberately not a ``DomainError``, so like any unexpected
exception it is logged with the request id and the client sees a masked message; a webhook
handler that raises it fails the event (Stripe retries). A leaf: it imports nothing internal.
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


class InvariantError(RuntimeError):
    """A fact the code relies on did not hold; the message says which."""


def present(value: T | None, what: str) -> T:
    """``value``, which the caller has established is there; ``InvariantError`` naming ``what``
    when it is ``None`` after all."""
    if value is None:
        raise InvariantError(f"{what} is missing")
    return value
