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

from common.jsonguard import too_deep

_LITERALS = {"t": "true", "f": "false", "n": "null"}
_VALUE_START = set('{["-0123456789tfn')
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

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
    except ValueError:  # an integer past int()'s 4,300-digit limit (issue 14: it was a 500)
        raise BodyError("number too long") from None
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
