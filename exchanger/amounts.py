"""Amount maths: exchange rates and what a deposit buys, in integer base units.

Pure functions, no I/O. The rules are the Go teller's (``reference/teller.md`` §2.7) so the same
deposit buys the same amount: a rate is an integer, a decimal or ``a/b`` (a rational is turned
into a decimal with 8 fractional digits, halves rounded away from zero, as ``big.Rat.FloatString``
does); the deposit is converted to whole coins exactly, multiplied by the rate, truncated to
``max_decimals`` and expressed in the payout token's base units (droplets for SKY: 10^6).
"""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, ROUND_HALF_UP, Context, Decimal, InvalidOperation, localcontext

from common.units import SKY_DECIMALS, format_units

# Enough digits that no realistic value (wei amounts, 36-decimal tokens) is ever rounded.
_CONTEXT = Context(prec=120, rounding=ROUND_DOWN)

_DECIMAL_RE = re.compile(r"^\d+(\.\d+)?$")
_RATIONAL_RE = re.compile(r"^(\d+)/(\d+)$")



class AmountError(ValueError):
    """A rate or amount that cannot be used."""


def parse_rate(text: str) -> Decimal:
    """Parse an exchange rate (tokens per whole deposit coin). Must be > 0."""
    text = str(text).strip()
    match = _RATIONAL_RE.match(text)
    if match:
        num, den = int(match.group(1)), int(match.group(2))
        if den == 0:
            raise AmountError(f"invalid rate {text!r}: division by zero")
        with localcontext(_CONTEXT):
            rate = (Decimal(num) / Decimal(den)).quantize(Decimal("1e-8"), rounding=ROUND_HALF_UP)
    elif _DECIMAL_RE.match(text):
        try:
            rate = Decimal(text)
        except InvalidOperation:  # pragma: no cover - the regex already guarantees a number
            raise AmountError(f"invalid rate {text!r}") from None
    else:
        raise AmountError(f"invalid rate {text!r}: use an integer, a decimal or a/b")
    if rate <= 0:
        raise AmountError(f"invalid rate {text!r}: must be greater than 0")
    return rate


def to_coins(base_units: int, decimals: int) -> Decimal:
    """Exact conversion of base units (satoshi, wei, ...) to whole coins."""
    with localcontext(_CONTEXT):
        return Decimal(base_units).scaleb(-decimals)


def truncate(value: Decimal, decimals: int) -> Decimal:
    with localcontext(_CONTEXT):
        return value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_DOWN)


def payout_amount(deposit_value: int, deposit_decimals: int, rate: str, max_decimals: int,
                  payout_decimals: int = SKY_DECIMALS) -> int:
    """Base units of the payout token bought by ``deposit_value`` base units of the deposit coin.

    ``payout_amount(12_345_678, 8, "512", 3) == 63_209_000`` (0.12345678 BTC at 512 SKY/BTC buys
    63.209 SKY with 3 decimals, as in the Go teller's table tests).
    """
    if deposit_value < 0:
        raise AmountError("deposit value cannot be negative")
    if max_decimals < 0 or max_decimals > payout_decimals:
        raise AmountError(f"max_decimals must be between 0 and {payout_decimals}")
    with localcontext(_CONTEXT):
        bought = truncate(to_coins(deposit_value, deposit_decimals) * parse_rate(rate),
                          max_decimals)
        return int(bought.scaleb(payout_decimals))


def fixed_rate_display(rate: str, max_decimals: int, payout_decimals: int = SKY_DECIMALS) -> str:
    """What exactly one deposit coin buys, as ``/api/config`` shows it ("500.000000")."""
    bought = payout_amount(1, 0, rate, max_decimals, payout_decimals)
    return format_units(bought, payout_decimals)

