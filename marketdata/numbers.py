"""Decimal context and viabtc-style decimal formatting for market data.

viabtc computes with libmpdec at 34 significant digits, ROUND_DOWN, and prints through
`rstripzero(mpd_to_sci(x))`: trailing zeros and a trailing "." go, unless the string has an
exponent, so a zero with scale 8 prints "0e-8" (lower-case, as mpd does; Python prints "0E-8").
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Context, Decimal, InvalidOperation

CTX = Context(prec=34, rounding=ROUND_DOWN)
ZERO = Decimal(0)


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


def fmt(value: Decimal) -> str:
    """rstripzero(mpd_to_sci(value)): the form every viabtc decimal output takes."""
    text = str(value)
    if "E" in text:
        return text.replace("E", "e")
    if "." in text:
        text = text.rstrip("0")
        if text.endswith("."):
            text = text[:-1]
    return text
