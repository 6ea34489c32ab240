"""Stripe's form encoding: decoding bracket keys and reading typed parameters.

Stripe's v1 API takes ``application/x-www-form-urlencoded`` bodies (and query strings) whose keys
nest with brackets: ``metadata[org]=acme``, ``items[0][price]=price_1``, ``expand[]=customer``.
The official SDKs send arrays with explicit indexes (``expand[0]=…``); curl users send ``[]``.
:func:`decode` turns either into plain dicts and lists of strings, and :class:`Params` reads them
with Stripe's own validation messages (``Missing required param``, ``Invalid integer``,
``Received unknown parameter``) so a client mistake looks the same here as on api.stripe.com.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from stripe_emulator.errors import (
    parameter_invalid,
    parameter_missing,
    parameter_unknown,
)

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")
_APPEND = object()


def parse_pairs(raw: str) -> list[tuple[str, str]]:
    """Split a query string or form body into (key, value) pairs, keeping blank values."""
    return parse_qsl(raw, keep_blank_values=True)


def decode(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Nest bracket-encoded pairs: ``a[b][0]=x`` → ``{"a": {"b": ["x"]}}``."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if match is None:
            raise parameter_invalid(key, f"Invalid parameter name: {key}")
        path: list[Any] = [match.group(1)]
        path.extend(seg if seg != "" else _APPEND for seg in _SEGMENT.findall(match.group(2)))
        _assign(root, path, value, key)
    return _listify(root)  # type: ignore[no-any-return]


def _assign(node: dict[str, Any], path: list[Any], value: str, raw_key: str) -> None:
    for position, segment in enumerate(path):
        last = position == len(path) - 1
        if segment is _APPEND:
            # "[]" appends: the next free numeric slot at this level.
            segment = str(sum(1 for k in node if k.isdigit()))
        if last:
            node[segment] = value
            return
        child = node.get(segment)
        if not isinstance(child, dict):
            # A scalar followed by a nested key (``metadata=`` then ``metadata[a]=b``): the
            # nested form wins, as it does on Stripe.
            child = {}
            node[segment] = child
        node = child


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and all(k.isdigit() for k in converted):
        return [converted[k] for k in sorted(converted, key=int)]
    return converted


_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


class Params:
    """Typed, validated access to one level of decoded parameters.

    ``name`` is the path of this level in bracket form (``items[0]``) so errors point at the exact
    parameter, as Stripe's ``param`` field does.
    """

    def __init__(self, data: dict[str, Any], name: str = "") -> None:
        self.data = data
        self.name = name

    def path(self, key: str) -> str:
        return f"{self.name}[{key}]" if self.name else key

    def has(self, key: str) -> bool:
        return key in self.data

    def is_blank(self, key: str) -> bool:
        """Stripe uses an empty string to unset a field (``default_payment_method=``)."""
        return self.data.get(key) == ""

    def only(self, allowed: Iterable[str]) -> None:
        """Reject parameters this endpoint does not know, like Stripe does."""
        known = set(allowed)
        for key in self.data:
            if key not in known:
                raise parameter_unknown(self.path(key))

    def string(
        self,
        key: str,
        *,
        required: bool = False,
        choices: Iterable[str] | None = None,
        max_length: int = 5000,
    ) -> str | None:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise parameter_missing(self.path(key))
            return None
        if not isinstance(value, str):
            raise parameter_invalid(self.path(key), f"Invalid string: {self.path(key)}")
        if len(value) > max_length:
            raise parameter_invalid(
                self.path(key),
                f"Invalid string: {value[:20]}...; must be at most {max_length} characters",
            )
        if choices is not None:
            options = list(choices)
            if value not in options:
                raise parameter_invalid(
                    self.path(key),
                    f"Invalid {self.path(key)}: must be one of {', '.join(options)}",
                )
        return value

    def integer(
        self,
        key: str,
        *,
        required: bool = False,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise parameter_missing(self.path(key))
            return None
        if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value):
            raise parameter_invalid(
                self.path(key),
                f"Invalid integer: {value}",
                code="parameter_invalid_integer",
            )
        number = int(value)
        if minimum is not None and number < minimum:
            raise parameter_invalid(
                self.path(key),
                f"This value must be greater than or equal to {minimum}.",
                code="parameter_invalid_integer",
            )
        if maximum is not None and number > maximum:
            raise parameter_invalid(
                self.path(key),
                f"This value must be less than or equal to {maximum}.",
                code="parameter_invalid_integer",
            )
        return number

    def boolean(self, key: str, *, default: bool | None = None) -> bool | None:
        value = self.data.get(key)
        if value is None or value == "":
            return default
        if isinstance(value, str) and value.lower() in _TRUE:
            return True
        if isinstance(value, str) and value.lower() in _FALSE:
            return False
        raise parameter_invalid(self.path(key), f"Invalid boolean: {value}")

    def timestamp_or_now(self, key: str, now: int) -> int | None:
        """Fields like ``trial_end`` accept a unix time or the literal ``now``."""
        if self.data.get(key) == "now":
            return now
        return self.integer(key, minimum=0)

    def sub(self, key: str, *, required: bool = False) -> Params | None:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise parameter_missing(self.path(key))
            return None
        if not isinstance(value, dict):
            raise parameter_invalid(self.path(key), f"Invalid hash: {self.path(key)}")
        return Params(value, self.path(key))

    def array(self, key: str, *, required: bool = False) -> list[Any]:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise parameter_missing(self.path(key))
            return []
        if isinstance(value, dict):
            raise parameter_invalid(self.path(key), f"Invalid array: {self.path(key)}")
        if not isinstance(value, list):
            return [value]
        return value

    def strings(self, key: str, *, required: bool = False) -> list[str]:
        values = self.array(key, required=required)
        for index, item in enumerate(values):
            if not isinstance(item, str):
                raise parameter_invalid(f"{self.path(key)}[{index}]", "Invalid string")
        return values

    def hashes(self, key: str, *, required: bool = False) -> list[Params]:
        result: list[Params] = []
        for index, item in enumerate(self.array(key, required=required)):
            if not isinstance(item, dict):
                raise parameter_invalid(f"{self.path(key)}[{index}]", "Invalid hash")
            result.append(Params(item, f"{self.path(key)}[{index}]"))
        return result

    def metadata(self, key: str = "metadata") -> dict[str, str] | None:
        """Metadata updates: ``None`` = untouched; blank clears; ``""`` values delete a key."""
        if key not in self.data:
            return None
        value = self.data[key]
        if value == "":
            return {}
        if not isinstance(value, dict):
            raise parameter_invalid(self.path(key), f"Invalid hash: {self.path(key)}")
        if len(value) > 50:
            raise parameter_invalid(self.path(key), "Metadata can have at most 50 keys.")
        for meta_key, meta_value in value.items():
            if not isinstance(meta_value, str):
                raise parameter_invalid(f"{self.path(key)}[{meta_key}]", "Invalid string")
            if len(meta_key) > 40:
                raise parameter_invalid(
                    self.path(key), "Metadata keys can be at most 40 characters long."
                )
            if len(meta_value) > 500:
                raise parameter_invalid(
                    f"{self.path(key)}[{meta_key}]",
                    "Metadata values can be at most 500 characters long.",
                )
        return dict(value)


def merge_metadata(
    current: dict[str, str], update: dict[str, str] | None, *, replace: bool
) -> dict[str, str]:
    """Apply a metadata parameter the way Stripe does.

    On update, keys merge and an empty value deletes a key; ``metadata=`` (an empty hash) clears
    everything. On create (``replace``) the given hash is the whole metadata.
    """
    if update is None:
        return dict(current)
    if replace or not update:
        return {k: v for k, v in update.items() if v != ""}
    merged = dict(current)
    for key, value in update.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged
