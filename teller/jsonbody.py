"""Decoding JSON request bodies with the Go teller's error messages.

Existing clients and scripts match on the plain-text errors of Go's ``encoding/json``
(``Invalid json request body: EOF``, ``invalid character 'o' in literal null (expecting
'u')``), so the common cases are reproduced here; rarer syntax errors get an equally specific
message in the same style.
"""

from __future__ import annotations

import json
import re
from typing import Any

_LITERALS = {"t": "true", "f": "false", "n": "null"}
_VALUE_START = set('{["-0123456789tfn')
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_JSON_SPECIAL = re.compile(r'[\[\]{}"\\]')

# Arrays and objects nested deeper than this are refused before decoding. Python's decoder
# recurses once per level, and importing web3 raises the interpreter's recursion limit to
# 100,000: a body of 100,000 "[" would overflow a server thread's C stack and kill the whole
# process, not raise RecursionError. Every request body here is a flat object.
MAX_DEPTH = 200


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def _shallow(text: str, limit: int) -> bool:
    """True when ``text`` certainly nests at most ``limit`` levels, found at C speed: with the
    strings removed and only brackets kept, peeling the innermost pairs empties it within
    ``limit // 2`` passes (a pass peels at most two levels). A batch of a few hundred calls
    took milliseconds of Python in the exact scan below."""
    # without a backslash every quote opens or closes a string: split instead of a regex
    outside = "".join(text.split('"')[::2]) if "\\" not in text else _STRING.sub("", text)
    brackets = _NOT_BRACKET.sub("", outside)
    for _ in range(limit // 2):
        if not brackets:
            return True
        peeled = brackets.replace("[]", "").replace("{}", "")
        if peeled == brackets:
            return False  # unbalanced or malformed: let the exact scan decide
        brackets = peeled
    return not brackets


def too_deep(text: str, limit: int = MAX_DEPTH) -> str:
    """The bracket that takes ``text`` past ``limit`` levels of nesting, or "" (brackets in
    strings do not count). Cheap for ordinary bodies: it only scans when there are enough
    brackets to go that deep, and a cheap bound has not already ruled it out."""
    if text.count("[") + text.count("{") <= limit or _shallow(text, limit):
        return ""
    depth, in_string, skip = 0, False, -1
    for match in _JSON_SPECIAL.finditer(text):
        char, pos = match.group(), match.start()
        if in_string:
            if pos == skip:
                continue  # escaped by the backslash just before it
            if char == "\\":
                skip = pos + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return char
        elif char in "]}":
            depth -= 1
    return ""


class BodyError(ValueError):
    """The body is not a JSON value of the expected shape; str() is the Go-style reason."""


def _go_char(ch: str) -> str:
    return "'\\''" if ch == "'" else f"'{ch}'"


def _go_syntax_error(text: str) -> str:
    stripped = text.lstrip(" \t\r\n")
    if not stripped:
        return "EOF"
    first = stripped[0]
    if first not in _VALUE_START:
        return f"invalid character {_go_char(first)} looking for beginning of value"
    if first in _LITERALS:
        literal = _LITERALS[first]
        for i, ch in enumerate(stripped[: len(literal)]):
            if ch != literal[i]:
                return (f"invalid character {_go_char(ch)} in literal {literal} "
                        f"(expecting {_go_char(literal[i])})")
        if len(stripped) < len(literal):
            return "unexpected EOF"
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            return "unexpected EOF"
        ch = text[exc.pos]
        return f"invalid character {_go_char(ch)} {_describe(exc.msg)}"
    return "invalid JSON"


def _describe(msg: str) -> str:
    if "Expecting property name" in msg:
        return "looking for beginning of object key string"
    if "Expecting ',' delimiter" in msg:
        return "after object key:value pair"
    if "Expecting ':' delimiter" in msg:
        return "after object key"
    if "Extra data" in msg:
        return "after top-level value"
    return "looking for beginning of value"


def decode_object(raw: bytes) -> dict[str, Any]:
    """Decode a JSON object body, raising BodyError with a Go-compatible reason."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError("invalid UTF-8 in request body") from None
    opener = too_deep(text)
    if opener:  # Go's wording (its limit is 10000 levels)
        raise BodyError(f"invalid character {_go_char(opener)} exceeded max depth")
    try:
        value = json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
        raise BodyError(_go_syntax_error(text)) from None
    if value is None and not text.strip():
        raise BodyError("EOF")
    if not isinstance(value, dict):
        kind = {list: "array", str: "string", bool: "bool", int: "number", float: "number",
                type(None): "null"}.get(type(value), "value")
        if value is None:  # Go decodes null into a struct as a no-op: an empty request
            return {}
        raise BodyError(f"json: cannot unmarshal {kind} into Go value of type object")
    return _valid_strings(value)


def _valid_strings(body: dict[str, Any]) -> dict[str, Any]:
    """Lone UTF-16 surrogates (``"\\ud800"``) in the top-level keys and string values become
    U+FFFD, as Go's decoder makes them: kept, they cannot be encoded as UTF-8 and fail later as
    a database key or a log line. Nested values are never read as fields."""
    def fix(text: str) -> str:
        return _LONE_SURROGATE.sub("\ufffd", text)
    return {fix(k): fix(v) if isinstance(v, str) else v for k, v in body.items()}


def string_field(body: dict[str, Any], name: str) -> str:
    """A string field ("" when absent); other JSON types are a decode error, as in Go."""
    value = body.get(name, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        kind = "number" if isinstance(value, int | float) and not isinstance(value, bool) else \
            {bool: "bool", list: "array", dict: "object"}.get(type(value), "value")
        raise BodyError(f"json: cannot unmarshal {kind} into Go struct field .{name} "
                        f"of type string")
    return value
