"""Amount maths, as the Go teller's table tests (``calculate_test.go``) pin it down."""

from __future__ import annotations

from decimal import Decimal

import pytest

from exchanger.amounts import (
    AmountError,
    fixed_rate_display,
    format_units,
    parse_rate,
    payout_amount,
)

BTC, ETH = 8, 18


@pytest.mark.parametrize(("satoshis", "rate", "max_decimals", "droplets"), [
    (12_345_678, "512", 3, 63_209_000),  # 0.12345678 BTC at 512 -> 63.20927... -> 63.209
    (12_345_678, "512", 2, 63_200_000),
    (12_345_678, "512", 0, 63_000_000),
    (100_000_000, "1/2", 0, 0),  # 1 BTC at 1/2 with no decimals -> 0 (done with an error)
    (100_000_000, "1/2", 1, 500_000),
    (100_000_000, "2/3", 3, 666_000),  # 2/3 -> 0.66666667 (8 places, rounded) -> 0.666
    (300_000_000, "2/3", 3, 2_000_000),  # 3 x 0.66666667 = 2.00000001 -> 2.000
    (100_000, "500", 3, 500_000),  # the transcript's deposit
    (1, "500", 3, 0),  # dust
    (200, "500", 3, 1_000),  # the smallest payable deposit at 500: 0.001 SKY
    (199, "500", 3, 0),
    (100_000_000, "0.0001", 3, 0),
    (100_000_000, "123.4567", 3, 123_456_000),
    (2_100_000_000_000_000, "1", 3, 21_000_000_000_000),  # every bitcoin there will ever be
    (0, "500", 3, 0),
])
def test_btc_table(satoshis: int, rate: str, max_decimals: int, droplets: int) -> None:
    assert payout_amount(satoshis, BTC, rate, max_decimals) == droplets


@pytest.mark.parametrize(("wei", "rate", "max_decimals", "droplets"), [
    (10**18, "100", 3, 100_000_000),
    (1, "100", 3, 0),  # 1 wei: no Gwei truncation, just too small
    (123_456_789_123_456_789, "100", 3, 12_345_000),  # 0.1234567891... ETH -> 12.345
    (999_999_999, "1000000000", 3, 999_000),  # sub-Gwei amounts count (the Go teller lost them)
    (10**18, "2/3", 2, 660_000),
    (10**30, "1", 0, 10**18),  # no overflow: Python ints
])
def test_eth_table(wei: int, rate: str, max_decimals: int, droplets: int) -> None:
    assert payout_amount(wei, ETH, rate, max_decimals) == droplets


def test_erc20_payout_decimals() -> None:
    """A token paid out with 18 decimals: max_decimals still truncates whole-token fractions."""
    assert payout_amount(12_345_678, BTC, "512", 3, payout_decimals=18) == 63_209 * 10**15


@pytest.mark.parametrize(("text", "value"), [
    ("500", Decimal("500")),
    (" 500 ", Decimal("500")),
    ("0.5", Decimal("0.5")),
    ("2/3", Decimal("0.66666667")),
    ("1/3", Decimal("0.33333333")),
    ("1/8", Decimal("0.12500000")),
    ("5/1", Decimal("5.00000000")),
])
def test_parse_rate(text: str, value: Decimal) -> None:
    assert parse_rate(text) == value


@pytest.mark.parametrize("text", ["0", "0.0", "0/5", "1/0", "-1", "abc", "", "1e3", "1/2/3",
                                  "1.5/2"])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(AmountError):
        parse_rate(text)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(AmountError):
        payout_amount(-1, BTC, "500", 3)
    with pytest.raises(AmountError):
        payout_amount(1, BTC, "500", 7)


@pytest.mark.parametrize(("units", "decimals", "text"), [
    (150_000_000, 8, "1.50000000"),
    (1, 8, "0.00000001"),
    (0, 18, "0.000000000000000000"),
    (500_000, 6, "0.500000"),
    (-5, 2, "-0.05"),
    (42, 0, "42"),
])
def test_format_units(units: int, decimals: int, text: str) -> None:
    assert format_units(units, decimals) == text


@pytest.mark.parametrize(("rate", "max_decimals", "text"), [
    ("500", 3, "500.000000"),
    ("2/3", 3, "0.666000"),
    ("123.4567", 2, "123.450000"),
    ("1/2", 0, "0.000000"),
])
def test_fixed_rate_display(rate: str, max_decimals: int, text: str) -> None:
    assert fixed_rate_display(rate, max_decimals) == text
