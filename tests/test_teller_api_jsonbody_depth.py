"""The nesting check that runs before every JSON body is decoded: the cheap bound agrees with
the exact scan, on deep, shallow, mixed, string-laden and malformed bodies."""

from __future__ import annotations

import json
import random

import pytest

from common.jsonguard import MAX_DEPTH, too_deep


def nested(depth: int, mixed: bool) -> str:
    value: object = 0
    for level in range(depth):
        value = {"k[": value} if mixed and level % 2 else [value, ']\\"[{']
    return json.dumps(value)


@pytest.mark.parametrize("depth", [1, 2, 99, 100, 101, 199, 200, 201, 300])
@pytest.mark.parametrize("mixed", [False, True])
def test_the_limit_is_exact(depth, mixed):
    opener = too_deep(nested(depth, mixed))
    assert bool(opener) == (depth > MAX_DEPTH)
    if opener:
        assert opener in "[{"


def test_brackets_in_strings_never_count_and_malformed_bodies_are_still_caught():
    assert too_deep(json.dumps(["[" * 5000, "{" * 5000])) == ""
    assert too_deep('["' + '\\"[' * 400 + '"]') == ""
    assert too_deep("[" * 100_000) == "["
    assert too_deep('{"a":' * 300) == "{"
    assert too_deep('["unterminated' + "[" * 300) == ""  # all inside the string
    assert too_deep("[]" * 300 + "[" * 201) == "["
    assert too_deep("]" * 300 + "[" * 300) == ""  # never 201 deep: the decoder stops at "]"


def test_random_shallow_batches_pass():
    rng = random.Random(5)

    def value(depth: int) -> object:
        if depth and rng.random() < 0.6:
            if rng.random() < 0.5:
                return [value(depth - 1) for _ in range(rng.randint(0, 3))]
            return {f'k{rng.randint(0, 9)}[{{"\\': value(depth - 1)
                    for _ in range(rng.randint(0, 3))}
        return rng.choice([1, "a]b", 'x\\"[', None, "{{", "\\\\"])

    for _ in range(200):
        assert too_deep(json.dumps([value(8) for _ in range(80)])) == ""
