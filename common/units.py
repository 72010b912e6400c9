"""Coin units: how many decimals each coin's base unit has, and printing base units.

Every layer counts money in integer base units (satoshi, wei, droplet); this is the one place
that says how many of them make a coin.
"""

from __future__ import annotations

SKY_DECIMALS = 6  # 1 SKY = 10^6 droplets
COIN_DECIMALS = {"BTC": 8, "LTC": 8, "ETH": 18, "SKY": 6}


def format_units(base_units: int, decimals: int) -> str:
    """Base units as a fixed-point string with exactly ``decimals`` places: 150000000, 8 -> "1.50000000"."""
    sign = "-" if base_units < 0 else ""
    digits = str(abs(base_units)).rjust(decimals + 1, "0")
    if decimals == 0:
        return sign + digits
    return f"{sign}{digits[:-decimals]}.{digits[-decimals:]}"
