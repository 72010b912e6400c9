"""viabtc's decimal arithmetic: the libmpdec context, parsing with truncation, and printing.

The one decimal module of the exchange core and its market data (both print every amount the
way viabtc does, so they share the context and the formatting).

viabtc computes with libmpdec in an IEEE decimal128 context (34 significant digits) with
ROUND_DOWN. Every decimal parameter is parsed and then rescaled (truncated toward zero) to a
configured number of places, never rejected for extra digits. Output goes through
`rstripzero(mpd_to_sci(x))`: trailing zeros and a trailing "." are dropped unless the string has
an exponent, so a zero carrying scale 8 prints "0e-8". CPython's `decimal` is libmpdec, so the
same context reproduces the same numbers.
"""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, Context, Decimal, DecimalException, InvalidOperation

CTX = Context(prec=34, rounding=ROUND_DOWN, Emax=6144, Emin=-6143, clamp=1)
ZERO = Decimal(0)
ONE = Decimal(1)

# What mpd_qset_string accepts for a finite number (Python's Decimal also takes "_", spaces,
# "nan" and "inf"; viabtc does not, and neither do we).
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_EXPONENTS = [Decimal(1).scaleb(-p) for p in range(0, 40)]
# Parsed values by (text, prec): order streams repeat prices and fee rates, and a Decimal is
# immutable, so a hit returns the same number a fresh parse would. Cleared when full. Only
# accepted numbers are kept (at most 100 characters each): refused input is never repeated by
# an honest client, and keeping it let garbage fill the cache (issue 14).
_PARSED: dict[tuple[str, int], Decimal | None] = {}
_PARSED_MAX = 65536


def exponent(prec: int) -> Decimal:
    """The quantum 10**-prec used to rescale to `prec` places."""
    return _EXPONENTS[prec]


def parse(text: str, prec: int) -> Decimal | None:
    """Parse like viabtc's `decimal(str, prec)`: truncate to `prec` places (prec 0 keeps as given,
    as in viabtc). Returns None for anything that is not a finite number or cannot be rescaled."""
    key = (text, prec)
    try:
        return _PARSED[key]
    except (KeyError, TypeError):
        pass
    value = _parse(text, prec)
    if value is not None:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[key] = value
    return value


def _parse(text: str, prec: int) -> Decimal | None:
    if not isinstance(text, str) or len(text) > 100 or not _NUMBER.fullmatch(text):
        return None
    try:
        value = CTX.create_decimal(text)
        if prec:
            value = value.quantize(_EXPONENTS[prec], rounding=ROUND_DOWN, context=CTX)
    except (DecimalException, IndexError):  # InvalidOperation, Overflow ("1e999999"), ...
        return None
    return value


def rescale(value: Decimal, prec: int) -> Decimal:
    """mpd_rescale(value, -prec) with ROUND_DOWN."""
    return value.quantize(_EXPONENTS[prec], rounding=ROUND_DOWN, context=CTX)


def fmt(value: Decimal) -> str:
    """viabtc's printed form: `rstripzero(mpd_to_sci(value, 0))`."""
    text = str(value)
    if "E" in text:
        return text.lower()
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


_PRINTED: dict[int, tuple[Decimal, str]] = {}
PRINTED_MAX = 1 << 16


def fmt_shared(value: Decimal) -> str:
    """`fmt(value)` for values that many orders share (the checked prices, amounts and fee
    rates of an order stream are the same objects): remembered by identity, holding the value
    so its id is not reused; half the cost of formatting."""
    entry = _PRINTED.get(id(value))
    if entry is not None and entry[0] is value:
        return entry[1]
    text = fmt(value)
    if len(_PRINTED) >= PRINTED_MAX:
        _PRINTED.clear()
    _PRINTED[id(value)] = (value, text)
    return text


def fmt_raw(value: Decimal) -> str:
    """`mpd_to_sci` without stripping (used where viabtc prints unstripped, e.g. market.last)."""
    return str(value).lower()


def parse_positive(text: object, what: str) -> Decimal:
    """Parse a decimal string that must be finite and > 0; raise ValueError naming `what`."""
    if not isinstance(text, str):
        raise ValueError(f"{what} must be a decimal string, got {type(text).__name__}")
    try:
        value = CTX.create_decimal(text)
    except (InvalidOperation, ValueError):
        raise ValueError(f"{what} is not a decimal: {text!r}") from None
    if not value.is_finite() or value <= 0:
        raise ValueError(f"{what} must be a positive finite decimal: {text!r}")
    return value


def sci(value: Decimal) -> str:
    """mpd_to_sci(value, 0): scientific string with a lower-case exponent, no stripping."""
    return str(value).replace("E", "e")
