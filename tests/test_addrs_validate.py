"""Deposit and receive address validation against published vectors (BIP173/350, EIP-55)."""

from __future__ import annotations

import hashlib

import pytest
from bip_utils import (
    Base58Decoder,
    Base58Encoder,
    P2PKHAddrEncoder,
    P2SHAddrEncoder,
    P2WPKHAddrEncoder,
)

from addrs.validate import (
    InvalidAddress,
    normalize_deposit_address,
    validate_eth_address,
    validate_skycoin_address,
)

# BIP84 / BIP44 / BIP49 first receive addresses of "abandon ... about" (published vectors).
BTC_P2WPKH = "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"
BTC_P2PKH = "1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA"
BTC_P2SH = "37VucYSaXLCAsxYyAPfbSi9eh4iEcbShgf"
BTC_TESTNET_P2SH = "2Mww8dCYPUpKHofjgcXcBCEGmniw9CoaiD2"  # BIP49 testnet vector
# BIP84 vector's first receive public key; litecoin forms built from it with bip_utils encoders.
PUBKEY = bytes.fromhex("0330d54fd0dd420a6e5f8d3624f5f3482cae350f79d5f0753bf5beef9c2d91af3c")


def ltc(kind: str, network: str) -> str:
    versions = {"mainnet": (b"\x30", b"\x32", "ltc"), "testnet": (b"\x6f", b"\x3a", "tltc"),
                "regtest": (b"\x6f", b"\x3a", "rltc")}[network]
    if kind == "p2pkh":
        return P2PKHAddrEncoder.EncodeKey(PUBKEY, net_ver=versions[0])
    if kind == "p2sh":
        return P2SHAddrEncoder.EncodeKey(PUBKEY, net_ver=versions[1])
    return P2WPKHAddrEncoder.EncodeKey(PUBKEY, hrp=versions[2])


def test_encoders_agree_with_the_bip84_vector() -> None:
    # Cross-check of the route used for the LTC forms: the same encoder gives the BIP84 address.
    assert P2WPKHAddrEncoder.EncodeKey(PUBKEY, hrp="bc") == BTC_P2WPKH


# BIP350 valid segwit addresses (v0 bech32, v1+ bech32m).
BIP350_VALID = [
    ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "mainnet"),
    ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7", "testnet"),
    ("bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y", "mainnet"),
    ("BC1SW50QGDZ25J", "mainnet"),
    ("bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs", "mainnet"),
    ("tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy", "testnet"),
    ("tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c", "testnet"),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0", "mainnet"),
]


@pytest.mark.parametrize(("address", "network"), BIP350_VALID)
def test_bip350_valid_segwit_addresses_are_accepted_lower_cased(address: str, network: str) -> None:
    assert normalize_deposit_address("BTC", address, network) == address.lower()


# BIP350 invalid addresses, with the words our message must contain.
BIP350_INVALID = [
    ("tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut", "testnet", "prefix"),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd", "mainnet",
     "v1 address must use bech32m"),
    ("tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf", "testnet",
     "v2 address must use bech32m"),
    ("BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL", "mainnet",
     "v16 address must use bech32m"),
    ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh", "mainnet", "v0 address must use bech32,"),
    ("tb1q0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq24jc47", "testnet",
     "v0 address must use bech32,"),
    ("bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4", "mainnet",
     "invalid character"),
    ("BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R", "mainnet",
     "witness version"),
    ("bc1pw5dgrnzv", "mainnet", "invalid length"),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav", "mainnet",
     "invalid length"),
    ("BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P", "mainnet", "invalid length"),
    ("tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq", "testnet", "mixes"),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf", "mainnet",
     "invalid segwit address"),
    ("tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j", "testnet",
     "invalid segwit address"),
    ("bc1gmk9yu", "mainnet", "invalid"),
]


@pytest.mark.parametrize(("address", "network", "why"), BIP350_INVALID)
def test_bip350_invalid_segwit_addresses_are_refused(address: str, network: str, why: str) -> None:
    with pytest.raises(InvalidAddress, match=why):
        normalize_deposit_address("BTC", address, network)


def test_btc_base58_mainnet_addresses_are_kept_as_given() -> None:
    assert normalize_deposit_address("BTC", BTC_P2PKH) == BTC_P2PKH
    assert normalize_deposit_address("BTC", BTC_P2SH) == BTC_P2SH
    assert normalize_deposit_address("BTC", f"  {BTC_P2PKH}\n") == BTC_P2PKH


def test_bad_base58_checksum() -> None:
    flipped = BTC_P2PKH[:-1] + ("B" if BTC_P2PKH[-1] != "B" else "C")
    with pytest.raises(InvalidAddress, match="^invalid checksum$"):
        normalize_deposit_address("BTC", flipped)


def test_bad_bech32_checksum() -> None:
    flipped = BTC_P2WPKH[:-1] + ("q" if BTC_P2WPKH[-1] != "q" else "p")
    with pytest.raises(InvalidAddress, match="^invalid checksum$"):
        normalize_deposit_address("BTC", flipped)


def test_invalid_character_and_length() -> None:
    with pytest.raises(InvalidAddress, match="invalid character '0'"):
        normalize_deposit_address("BTC", "10vBMSEYstWetqTFn5Au4m4GFg7xJaNVN2")
    with pytest.raises(InvalidAddress, match="invalid length"):
        normalize_deposit_address("BTC", BTC_P2PKH[:-3])
    with pytest.raises(InvalidAddress, match="empty"):
        normalize_deposit_address("BTC", "   ")


def test_testnet_address_on_mainnet_is_wrong_network() -> None:
    with pytest.raises(InvalidAddress, match="wrong network: testnet/regtest address on mainnet"):
        normalize_deposit_address("BTC", BTC_TESTNET_P2SH, "mainnet")
    with pytest.raises(InvalidAddress, match="wrong network: testnet address on mainnet"):
        normalize_deposit_address("BTC", BIP350_VALID[1][0], "mainnet")
    with pytest.raises(InvalidAddress, match="wrong network: mainnet address on testnet"):
        normalize_deposit_address("BTC", BTC_P2WPKH, "testnet")


def test_base58_testnet_addresses_serve_testnet_and_regtest() -> None:
    # Bitcoin Core uses the same base58 versions on testnet and regtest.
    assert normalize_deposit_address("BTC", BTC_TESTNET_P2SH, "testnet") == BTC_TESTNET_P2SH
    assert normalize_deposit_address("BTC", BTC_TESTNET_P2SH, "regtest") == BTC_TESTNET_P2SH


def test_regtest_hrps() -> None:
    bcrt = P2WPKHAddrEncoder.EncodeKey(PUBKEY, hrp="bcrt")
    assert normalize_deposit_address("BTC", bcrt.upper(), "regtest") == bcrt
    with pytest.raises(InvalidAddress, match="wrong network: regtest address on testnet"):
        normalize_deposit_address("BTC", bcrt, "testnet")
    rltc = ltc("p2wpkh", "regtest")
    assert rltc.startswith("rltc1q")
    assert normalize_deposit_address("LTC", rltc, "regtest") == rltc
    with pytest.raises(InvalidAddress, match="wrong network: regtest address on mainnet"):
        normalize_deposit_address("LTC", rltc, "mainnet")


@pytest.mark.parametrize("network", ["mainnet", "testnet", "regtest"])
@pytest.mark.parametrize("kind", ["p2pkh", "p2sh", "p2wpkh"])
def test_litecoin_addresses_per_network(kind: str, network: str) -> None:
    address = ltc(kind, network)
    assert normalize_deposit_address("LTC", address, network) == address


def test_litecoin_prefixes() -> None:
    assert ltc("p2pkh", "mainnet")[0] == "L"
    assert ltc("p2sh", "mainnet")[0] == "M"
    assert ltc("p2sh", "regtest")[0] == "Q"
    assert ltc("p2wpkh", "mainnet").startswith("ltc1q")
    assert ltc("p2wpkh", "testnet").startswith("tltc1q")


def test_ltc_address_for_btc_and_btc_address_for_ltc() -> None:
    with pytest.raises(InvalidAddress, match="wrong network: LTC mainnet address, expected BTC"):
        normalize_deposit_address("BTC", ltc("p2pkh", "mainnet"))
    with pytest.raises(InvalidAddress, match="wrong network: LTC mainnet address, expected BTC"):
        normalize_deposit_address("BTC", ltc("p2wpkh", "mainnet"))
    with pytest.raises(InvalidAddress, match="wrong network: BTC mainnet address, expected LTC"):
        normalize_deposit_address("LTC", BTC_P2WPKH)
    with pytest.raises(InvalidAddress, match="wrong network: BTC mainnet address, expected LTC"):
        normalize_deposit_address("LTC", BTC_P2PKH)


def test_litecoin_deprecated_p2sh_form_is_refused_with_advice() -> None:
    with pytest.raises(InvalidAddress, match="deprecated litecoin P2SH .*M…"):
        normalize_deposit_address("LTC", BTC_P2SH, "mainnet")
    with pytest.raises(InvalidAddress, match="deprecated litecoin P2SH"):
        normalize_deposit_address("LTC", BTC_TESTNET_P2SH, "regtest")


# EIP-55 examples from the EIP.
EIP55 = [
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
]


@pytest.mark.parametrize("address", EIP55)
def test_eip55_vectors(address: str) -> None:
    assert normalize_deposit_address("ETH", address) == address.lower()
    assert validate_eth_address(address.lower()) == address
    assert validate_eth_address(address) == address
    assert normalize_deposit_address("ETH", "0x" + address[2:].upper()) == address.lower()


@pytest.mark.parametrize("address", EIP55)
def test_eip55_bad_checksum(address: str) -> None:
    body = address[2:]
    index = next(i for i, c in enumerate(body) if c.isalpha())
    swapped = "0x" + body[:index] + body[index].swapcase() + body[index + 1 :]
    with pytest.raises(InvalidAddress, match="invalid checksum"):
        normalize_deposit_address("ETH", swapped)
    with pytest.raises(InvalidAddress, match="^Invalid ethereum address: bad checksum$"):
        validate_eth_address(swapped)


def test_eth_shape_errors() -> None:
    with pytest.raises(InvalidAddress, match="must start with 0x"):
        normalize_deposit_address("ETH", EIP55[0][2:])
    with pytest.raises(InvalidAddress, match="invalid length"):
        normalize_deposit_address("ETH", EIP55[0][:-1])
    with pytest.raises(InvalidAddress, match="invalid character 'g'"):
        normalize_deposit_address("ETH", "0x" + "g" * 40)
    with pytest.raises(InvalidAddress, match="^Invalid ethereum address: invalid length"):
        validate_eth_address("0x1234")


def test_unknown_coin_or_network_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unsupported coin"):
        normalize_deposit_address("DOGE", BTC_P2PKH)
    with pytest.raises(ValueError, match="unknown network"):
        normalize_deposit_address("BTC", BTC_P2PKH, "signet")


# Skycoin: messages are cipher's own strings.
SKY_VALID = ["2Wbi4wvxC4fkTYMsS2f6HaFfW4pafDjXcQW", "2GgFvqoyk9RjwVzj8tqfcXVXB4orBwoc9qv"]


@pytest.mark.parametrize("address", SKY_VALID)
def test_skycoin_valid(address: str) -> None:
    assert validate_skycoin_address(f" \t{address}\n") == address


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("bad", "Invalid address length"),
        ("", "Invalid base58 string"),
        (" \n", "Invalid base58 string"),
        ("2Wbi4wvxC4fkTYMsS2f6HaFfW4pafDjXcQ0", "Invalid base58 character"),
        ("2Wbi4wvxC4fkTYMsS2f6HaFfW4pafDjXcQX", "Invalid checksum"),
        # A BTC address: 25 bytes, but Bitcoin's checksum is not Skycoin's.
        (BTC_P2PKH, "Invalid checksum"),
    ],
)
def test_skycoin_errors(address: str, message: str) -> None:
    with pytest.raises(InvalidAddress) as info:
        validate_skycoin_address(address)
    assert str(info.value) == message


def test_skycoin_version_must_be_zero() -> None:
    raw = bytearray(Base58Decoder.Decode(SKY_VALID[0]))
    raw[20] = 1
    raw[21:] = hashlib.sha256(bytes(raw[:21])).digest()[:4]
    with pytest.raises(InvalidAddress) as info:
        validate_skycoin_address(Base58Encoder.Encode(bytes(raw)))
    assert str(info.value) == "Address version invalid"


def test_huge_inputs_are_refused_before_decoding() -> None:
    """A 100 kB "address" must cost a length check, not seconds of base58 big-int maths."""
    import time

    started = time.perf_counter()
    for text, message in (("x" * 100_000, "Invalid address length"),
                          ("1" + "z" * 99_999, "Invalid address length"),
                          ("0" * 100_000, "Invalid base58 character")):
        with pytest.raises(InvalidAddress, match=message):
            validate_skycoin_address(text)
    for coin in ("BTC", "LTC", "ETH"):
        with pytest.raises(InvalidAddress, match="invalid length"):
            normalize_deposit_address(coin, "z" * 100_000)
    assert time.perf_counter() - started < 5.0  # the quadratic decode took > 30 s
