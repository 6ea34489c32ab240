"""``json_input``: the nesting measure and the text walk, against plain reference versions."""

from __future__ import annotations

import json
import random
import sys
from typing import Any

import pytest

from revenue_engine.json_input import (
    MAX_JSON_DEPTH,
    BadText,
    JsonTooDeep,
    find_bad_text,
    is_unicode_text,
    loads,
    lone_surrogate_at,
    may_decode_to_bad_text,
    nesting_depth,
    nests_deeper_than,
)


def reference_depth(text: bytes) -> int:
    """The deepest level a JSON parser reaches: a character-by-character scan that stops
    where a parser would fail at once (a backslash outside a string)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text.decode("utf-8", "surrogatepass"):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == "\\":
            break
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def random_value(rng: random.Random, levels: int) -> Any:
    if levels == 0 or rng.random() < 0.3:
        return rng.choice([1, None, True, "x[", "]}", '\\"[', "\\", '"{', "\ud83d\ude00"])
    if rng.random() < 0.5:
        return [random_value(rng, levels - 1) for _ in range(rng.randint(0, 3))]
    return {f'k{i}[\\"': random_value(rng, levels - 1) for i in range(rng.randint(0, 3))}


def test_the_depth_of_json_is_exact() -> None:
    rng = random.Random(11)
    for _ in range(2_000):
        text = json.dumps(random_value(rng, rng.randint(0, 12))).encode()
        assert nesting_depth(text) == reference_depth(text), text
        assert nesting_depth(text.decode()) == reference_depth(text)


def test_the_depth_of_text_that_is_not_json_is_never_underestimated() -> None:
    rng = random.Random(12)
    for _ in range(5_000):
        text = "".join(rng.choice('[]{}"\\a') for _ in range(rng.randint(0, 40))).encode()
        assert nesting_depth(text) >= reference_depth(text), text


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        (b"", 0),
        (b"1", 0),
        (b"[]", 1),
        (b'{"a": [{"b": []}]}', 4),
        (b'["[[[[", "\\"[[[", "\\\\", [1]]', 2),
        (b'"unterminated [[[[', 0),
        (b"]]]][", 0),  # a parser fails at the first bracket
        (b"[" * 100_000, 100_000),
    ],
)
def test_depth_examples(text: bytes, depth: int) -> None:
    assert nesting_depth(text) == depth


def test_nests_deeper_than_is_the_limit_check() -> None:
    assert not nests_deeper_than(b"[" * 64 + b"]" * 64, 64)
    assert nests_deeper_than(b"[" * 65 + b"]" * 65, 64)
    # Many brackets, all shallow: the full measure decides, not the count.
    assert not nests_deeper_than(b"[" + b"[]," * 10_000 + b"[]]", 64)


def test_loads_applies_the_depth_limit_and_strict_utf8() -> None:
    assert loads(b'{"a": [1]}') == {"a": [1]}
    with pytest.raises(JsonTooDeep):
        loads(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))
    with pytest.raises(JsonTooDeep):
        loads(b"[" * (sys.getrecursionlimit() * 100))
    with pytest.raises(UnicodeDecodeError):
        loads(b'"\xed\xa0\x80"')  # a surrogate encoded as UTF-8 bytes is not UTF-8
    with pytest.raises(ValueError, match="Expecting"):
        loads(b"[1,")
    # The escape decodes: the walk, not the decoder, refuses it.
    assert loads(b'"\\ud800"') == "\ud800"


def test_unicode_text() -> None:
    assert is_unicode_text("plain")
    assert is_unicode_text("Grüße \U0001f600")
    assert not is_unicode_text("a\ud800b")
    assert not is_unicode_text("\udfff")
    assert lone_surrogate_at("ab\udc00") == 2
    assert lone_surrogate_at("Grüße") == -1


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ("ok", None),
        (5, None),
        ({"a": ["b", {"c": "ok \U0001f600"}]}, None),
        ("x\ud800", BadText(())),
        ({"a": ["b", {"c": "x\ud800"}]}, BadText(("a", 1, "c"))),
        ({"a": {"k\udc00": 1}}, BadText(("a",), key=True)),
        ({"\ud800": 1}, BadText((), key=True)),
        ([[[], ["x", "\ud800"]]], BadText((0, 1, 1))),
    ],
)
def test_find_bad_text(value: object, found: BadText | None) -> None:
    assert find_bad_text(value) == found


def test_find_bad_text_is_iterative() -> None:
    value: Any = "a\ud800"
    levels = sys.getrecursionlimit() * 2  # deeper than the C encoder goes
    for level in range(levels):
        value = [value] if level % 2 else {"k": value}
    found = find_bad_text(value)
    assert found is not None
    assert len(found.path) == levels


def test_the_place_is_looked_for_within_a_budget() -> None:
    from revenue_engine.json_input import WALK_BUDGET

    # A bad string behind more containers than the walk visits: found, not placed.
    value = {"z": {"y": "a\ud800"}, "x": [[] for _ in range(WALK_BUDGET)]}
    found = find_bad_text(value)
    assert found == BadText((), placed=False)
    assert found.describe() == "a place not looked for (the body is too large)"
    assert find_bad_text({"x": [[] for _ in range(WALK_BUDGET)], "z": "ok"}) is None


def test_places_are_written_as_graphql_writes_input_paths() -> None:
    assert BadText(("input", "metadata", 0, "value")).dotted() == "input.metadata[0].value"
    assert BadText(("input", "metadata", 0)).describe() == "'input.metadata[0]'"
    assert BadText(("input",), key=True).describe() == "a key of 'input'"
    assert BadText(()).describe() == "the top level"


@pytest.mark.parametrize(
    ("text", "maybe"),
    [
        (b'{"a": "plain", "b": "Gr\xc3\xbc\xc3\x9fe"}', False),
        (b'{"a": "\\u0041 \\u00e9 \\uD7FF \\uE000"}', False),
        (b'{"a": "\\ud800"}', True),
        (b'{"a": "\\uDFFF"}', True),
        (b'{"a": "\\ud83d\\ude00"}', True),  # a valid pair: the walk decides
        ('{"a": "x"}', False),
        ('{"a": "x\ud800"}', True),  # a str that already holds one
    ],
)
def test_the_walk_is_skipped_only_when_no_surrogate_can_come_out(
    text: str | bytes, maybe: bool
) -> None:
    assert may_decode_to_bad_text(text) is maybe


def test_every_decoded_surrogate_is_announced_by_the_raw_text() -> None:
    rng = random.Random(13)
    alphabet = ["a", "\\", '\\"', "\\ud800", "\\uDC00", "\\ud83d\\ude00", "\\u0041"]
    for _ in range(2_000):
        text = '"' + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8))) + '"'
        try:
            value = json.loads(text)
        except ValueError:
            continue
        if find_bad_text(value) is not None:
            assert may_decode_to_bad_text(text.encode()), text


def test_holds_more_values_than_counts_containers_and_scalars_not_keys() -> None:
    from revenue_engine.json_input import holds_more_values_than

    value = {"a": [1, 2, {"b": None}], "c": "x"}  # root, list, 1, 2, object, None, "x"
    assert not holds_more_values_than(value, 7)
    assert holds_more_values_than(value, 6)
    assert not holds_more_values_than(None, 1)
    deep: object = 1
    for _ in range(100_000):  # iterative: no recursion limit
        deep = [deep]
    assert holds_more_values_than(deep, 99_999)
