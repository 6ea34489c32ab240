"""Untrusted JSON: decoded under a nesting limit, and searched for text that is not Unicode.

Two rules for every JSON body the engine reads (GraphQL requests, Stripe webhooks):

* **nesting** — at most ``MAX_JSON_DEPTH`` levels of arrays and objects. ``nesting_depth``
  measures the raw text *before* it is decoded (``json`` recurses once per level, so a body
  nested 100,000 deep would end in ``RecursionError``) with a few linear C-level passes: no
  recursion, no Python loop per character;
* **size** — at most ``max_containers`` arrays and objects, where the caller sets one, also
  counted before decoding: a 1 MiB body of 340,000 empty arrays costs the decoder 100 ms of the
  event loop, and whatever walks the result more;
* **text** — every string, object keys included, must be encodable as UTF-8. JSON can spell a
  lone surrogate (``"a\\ud800b"``: valid JSON) that decodes to a Python ``str`` which no UTF-8
  encoder accepts (BSON, the Stripe SDK's form encoding, a log handler): ``find_bad_text`` finds
  the first such string, iteratively, and says where it is; ``may_decode_to_bad_text`` tells
  from the raw text, with one regex search, when that walk can be skipped.

``loads`` is the decoder that applies the first rule (and strict UTF-8 for bytes); callers apply
the second where they know how to name the place (a GraphQL variable, an event field).
"""

from __future__ import annotations

import json
import operator
import re
from dataclasses import dataclass
from itertools import accumulate, count
from typing import Any

#: Levels of arrays and objects a JSON body may nest. GraphQL variables and Stripe events use
#: about ten; 64 leaves room for any honest input and stays far below the interpreter's limit.
MAX_JSON_DEPTH = 64


class JsonTooLarge(ValueError):
    """The JSON text holds more arrays and objects than allowed."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"holds more than {limit:,} objects and arrays")
        self.limit = limit


class JsonTooDeep(ValueError):
    """The JSON text nests arrays and objects deeper than allowed."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"nested more than {limit} levels deep")
        self.limit = limit


_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
# An opening bracket weighs 2 and a closing one 0: after the i-th bracket the running sum
# minus i is the depth there.
_WEIGHTS = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")


def nesting_depth(text: str | bytes) -> int:
    """How deep JSON ``text`` nests arrays and objects (brackets inside strings do not count).

    Exact for JSON; for text that is not JSON, at least the depth a parser reaches before it
    fails. A handful of C-level passes over the text (replace, split, translate, accumulate).
    """
    return _depth(_outside_strings(text))


def _outside_strings(text: str | bytes) -> bytes:
    """The bytes of JSON ``text`` outside its strings (C-level passes)."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if b"\\" in raw:
        # In JSON a backslash only starts an escape inside a string; dropping the escaped
        # backslashes first, then the escaped quotes, pairs them as a left-to-right scan does.
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Now every quote opens or closes a string: the even pieces are outside strings (the text
    # after an unterminated quote is inside one, as for a parser).
    return b"".join(raw.split(b'"')[::2])


def _depth(outside: bytes) -> int:
    weights = outside.translate(_WEIGHTS, _NOT_BRACKETS)
    return max(0, max(map(operator.sub, accumulate(weights), count(1)), default=0))


def nests_deeper_than(text: str | bytes, limit: int) -> bool:
    """Whether JSON ``text`` nests deeper than ``limit`` (see ``nesting_depth``)."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False  # the common case: fewer brackets than levels allowed
    return nesting_depth(raw) > limit


def loads(
    text: str | bytes, *, max_depth: int = MAX_JSON_DEPTH, max_containers: int | None = None
) -> Any:
    """Decode JSON ``text``; bytes must be UTF-8.

    Raises ``JsonTooDeep`` past ``max_depth`` levels and ``JsonTooLarge`` past
    ``max_containers`` arrays and objects (both checked before decoding),
    ``UnicodeDecodeError`` for bytes that are not UTF-8 and ``json.JSONDecodeError`` for text
    that is not JSON (all are ``ValueError``).
    """
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    brackets = raw.count(b"[") + raw.count(b"{")  # strings included: an upper bound
    limit = max_depth if max_containers is None else min(max_depth, max_containers)
    if brackets > limit:  # else the common case: fewer brackets than either limit
        outside = _outside_strings(raw)
        if _depth(outside) > max_depth:
            raise JsonTooDeep(max_depth)
        containers = outside.count(b"[") + outside.count(b"{")
        if max_containers is not None and containers > max_containers:
            raise JsonTooLarge(max_containers)
    # Strict UTF-8: ``json.loads(bytes)`` would also guess UTF-16/32 and let encoded
    # surrogates through.
    return json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)


_SURROGATE = re.compile("[\ud800-\udfff]")


def is_unicode_text(text: str) -> bool:
    """Whether ``text`` can be encoded as UTF-8 (it holds no lone surrogate)."""
    return text.isascii() or _SURROGATE.search(text) is None


# Decoded from strict UTF-8, JSON yields a surrogate only from an escape ``\uD800``-``\uDFFF``.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def may_decode_to_bad_text(text: str | bytes) -> bool:
    """False when decoding JSON ``text`` cannot yield a lone surrogate, so ``find_bad_text``
    may be skipped: one regex search instead of a walk over every string. (A valid escaped
    pair, ``\\ud83d\\ude00``, also says True; the walk then finds nothing.)"""
    if isinstance(text, str):
        if not is_unicode_text(text):
            return True
        text = text.encode("utf-8")
    return _SURROGATE_ESCAPE.search(text) is not None


def lone_surrogate_at(text: str) -> int:
    """The index of the first lone surrogate in ``text``, or -1."""
    found = None if text.isascii() else _SURROGATE.search(text)
    return -1 if found is None else found.start()


JsonPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class BadText:
    """Where a string that is not Unicode text sits: ``path`` from the root (object keys and
    list indexes); ``key`` when the string is a key of the object at ``path``."""

    path: JsonPath
    key: bool = False
    #: False when the value was too large to look for the place (``WALK_BUDGET``).
    placed: bool = True

    def dotted(self) -> str:
        """``path`` written as graphql-core writes input paths: ``input.metadata[0].value``."""
        out = ""
        for step in self.path:
            out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
        return out

    def describe(self) -> str:
        """``'input.name'`` or ``a key of 'input.metadata[0]'`` (never the bad text itself)."""
        if not self.placed:
            return "a place not looked for (the body is too large)"
        where = f"'{self.dotted()}'" if self.path else "the top level"
        return f"a key of {where}" if self.key else where


#: Strings, keys and containers the walk that names a bad string's place visits at most
#: (about 1 us each): past it the place is not named, ``BadText.placed`` is False.
WALK_BUDGET = 10_000


def find_bad_text(value: object) -> BadText | None:
    """The first string (or object key) in the decoded JSON ``value`` that is not Unicode
    text, or ``None``. One C-level pass says whether there is one; naming its place walks at
    most ``WALK_BUDGET`` items, at any depth."""
    try:
        # The common answer in one C-level pass: it all encodes, so nothing is bad.
        json.dumps(value, ensure_ascii=False, check_circular=False).encode("utf-8")
        return None
    except UnicodeEncodeError:
        pass
    except (RecursionError, TypeError, ValueError):
        pass  # deeper than the C encoder recurses, or not JSON-shaped: the walk decides
    return _walk(value)


def _walk(value: object) -> BadText | None:
    """``find_bad_text`` by an explicit stack: no recursion, whatever the depth."""
    if isinstance(value, str):
        return None if is_unicode_text(value) else BadText(())
    if not isinstance(value, (dict, list)):
        return None
    budget = WALK_BUDGET
    # Each container visited gets a node (its parent's node and its key in the parent), so a
    # path is only built for the one string that is reported.
    nodes: list[tuple[int, str | int]] = [(-1, "")]
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(value, 0)]
    while stack:
        container, node = stack.pop()
        budget -= len(container) + 1
        if budget < 0:
            return BadText((), placed=False)
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, item in items:
            if isinstance(key, str) and not is_unicode_text(key):
                return BadText(_path(nodes, node), key=True)
            if isinstance(item, str):
                if not is_unicode_text(item):
                    return BadText((*_path(nodes, node), key))
            elif isinstance(item, (dict, list)):
                nodes.append((node, key))
                stack.append((item, len(nodes) - 1))
    return None


def _path(nodes: list[tuple[int, str | int]], node: int) -> JsonPath:
    steps: list[str | int] = []
    while node > 0:
        node, key = nodes[node]
        steps.append(key)
    return tuple(reversed(steps))


def holds_more_values_than(value: object, limit: int) -> bool:
    """Whether decoded JSON ``value`` holds more than ``limit`` values (objects, arrays and
    scalars, the root included; keys are not counted). Iterative; stops once over."""
    count = 0
    stack = [value]
    while stack:
        item = stack.pop()
        count += 1
        if count > limit:
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
