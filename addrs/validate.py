"""Address validation: deposit addresses (BTC, LTC, ETH) per network, and buyers' receive addresses.

Owns the rules for what a deposit address file may contain and the normal form an address is
stored in, so that the pool, the bind API and the scanners compare like with like:

- BTC / LTC: base58check P2PKH / P2SH with the version bytes of the configured coin and network,
  or segwit bech32 (witness v0) / bech32m (v1+, BIP350) with the network's HRP. Bech32 is stored
  lower-cased; base58 is case-sensitive and kept as given.
- ETH: ``0x`` + 40 hex digits; a mixed-case address must pass EIP-55; stored lower-cased (the
  scanners compare recipients lower-cased).
- Skycoin receive addresses are checked exactly as Skycoin's ``cipher`` package does, with its
  error strings, because wallets and scripts match on them.

The encodings come from bip_utils (bech32/bech32m, base58) and eth_utils (EIP-55 keccak); only
the tables of version bytes and HRPs live here.
"""

from __future__ import annotations

import hashlib

from bip_utils import Base58Decoder
from bip_utils.bech32 import Bech32ChecksumError, SegwitBech32Decoder
from bip_utils.bech32.bech32 import Bech32Encodings, Bech32Utils
from bip_utils.bech32.bech32_base import Bech32BaseConst
from eth_utils import to_checksum_address

NETWORKS = ("mainnet", "testnet", "regtest")
DEPOSIT_COINS = ("BTC", "LTC", "ETH")

_BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_CHARS = frozenset(_BASE58_ALPHABET)
_HEX_CHARS = frozenset("0123456789abcdefABCDEF")
_BECH32_MAX_LEN = 90  # BIP173

# Segwit human-readable parts: (coin, network) -> hrp (BIP173 / SLIP-173, litecoin chainparams).
SEGWIT_HRPS: dict[tuple[str, str], str] = {
    ("BTC", "mainnet"): "bc",
    ("BTC", "testnet"): "tb",
    ("BTC", "regtest"): "bcrt",
    ("LTC", "mainnet"): "ltc",
    ("LTC", "testnet"): "tltc",
    ("LTC", "regtest"): "rltc",
}
_HRP_OWNER = {hrp: key for key, hrp in SEGWIT_HRPS.items()}

# Base58 version bytes (first decoded byte) that each coin's node prints for P2PKH / P2SH.
# Testnet and regtest share them. Litecoin's deprecated P2SH forms (0x05 "3…" and 0xc4 "2…")
# are refused: litecoind reports scripts in the M…/Q… form, so a deposit in the old form would
# never match what the scanner sees.
BASE58_VERSIONS: dict[tuple[str, str], dict[int, str]] = {
    ("BTC", "mainnet"): {0x00: "p2pkh", 0x05: "p2sh"},
    ("BTC", "testnet"): {0x6F: "p2pkh", 0xC4: "p2sh"},
    ("BTC", "regtest"): {0x6F: "p2pkh", 0xC4: "p2sh"},
    ("LTC", "mainnet"): {0x30: "p2pkh", 0x32: "p2sh"},
    ("LTC", "testnet"): {0x6F: "p2pkh", 0x3A: "p2sh"},
    ("LTC", "regtest"): {0x6F: "p2pkh", 0x3A: "p2sh"},
}
_LTC_DEPRECATED_P2SH = {0x05: "mainnet", 0xC4: "testnet"}


class InvalidAddress(ValueError):
    """An address that must not be used; ``str(e)`` is the message shown to a person."""


def _check_coin_network(coin: str, network: str) -> None:
    if coin not in DEPOSIT_COINS:
        raise ValueError(f"unsupported coin {coin!r}: expected one of {', '.join(DEPOSIT_COINS)}")
    if network not in NETWORKS:
        raise ValueError(f"unknown network {network!r}: expected one of {', '.join(NETWORKS)}")


# 25 bytes are at most 35 base58 characters; anything longer is refused before decoding, so
# a hostile 100 kB "address" costs a length check, not a quadratic big-integer conversion.
_MAX_BASE58_LEN = 40
_MAX_ADDRESS_LEN = 90  # BIP173's limit for a whole bech32 string


def normalize_deposit_address(coin: str, address: str, network: str = "mainnet") -> str:
    """Validate a deposit address for ``coin`` on ``network`` and return its stored normal form.

    Raises InvalidAddress naming the problem (invalid checksum, wrong network, invalid length,
    invalid character, ...). ValueError (not InvalidAddress) for an unknown coin or network,
    which is a programming or configuration error rather than a bad address.
    """
    _check_coin_network(coin, network)
    if not isinstance(address, str):
        raise InvalidAddress(f"not a string: {address!r}")
    address = address.strip()
    if not address:
        raise InvalidAddress("empty address")
    if len(address) > _MAX_ADDRESS_LEN:
        raise InvalidAddress(f"invalid length: {len(address)} characters")
    if coin == "ETH":
        return _normalize_eth(address)
    hrp = _bech32_hrp(address)
    if hrp is not None:
        return _normalize_segwit(coin, network, address, hrp)
    return _normalize_base58(coin, network, address)


# --- ETH -------------------------------------------------------------------------------------


def _eth_problem(address: str) -> str | None:
    """Why ``address`` is not an ETH address, or None when it is (EIP-55 included)."""
    if not address.startswith("0x"):
        return "must start with 0x"
    body = address[2:]
    if len(body) != 40:
        return f"invalid length: {len(body)} hex digits, expected 40"
    bad = sorted({c for c in body if c not in _HEX_CHARS})
    if bad:
        return f"invalid character {bad[0]!r}"
    if body != body.lower() and body != body.upper():
        if to_checksum_address(address) != address:
            return "invalid checksum (mixed-case address fails EIP-55)"
    return None


def _normalize_eth(address: str) -> str:
    problem = _eth_problem(address)
    if problem:
        raise InvalidAddress(problem)
    return address.lower()


def validate_eth_address(address: str) -> str:
    """Validate a buyer's ETH receive address; return its EIP-55 checksummed form."""
    if not isinstance(address, str):
        raise InvalidAddress(f"Invalid ethereum address: not a string: {address!r}")
    address = address.strip()
    if not address:
        raise InvalidAddress("Invalid ethereum address: empty")
    problem = _eth_problem(address)
    if problem:
        if problem.startswith("invalid checksum"):
            problem = "bad checksum"
        raise InvalidAddress(f"Invalid ethereum address: {problem}")
    return to_checksum_address(address)


# --- BTC / LTC segwit ------------------------------------------------------------------------


def _bech32_hrp(address: str) -> str | None:
    """The known segwit HRP ``address`` starts with (case-insensitive), else None."""
    lowered = address.lower()
    sep = lowered.rfind("1")
    if sep <= 0:
        return None
    hrp = lowered[:sep]
    return hrp if hrp in _HRP_OWNER else None


def _describe(coin: str, network: str) -> str:
    return f"{coin} {network}"


def _wrong_network(coin: str, network: str, owners: list[tuple[str, str]]) -> InvalidAddress:
    same_coin = [net for c, net in owners if c == coin]
    if same_coin:
        return InvalidAddress(f"wrong network: {'/'.join(same_coin)} address on {network}")
    other = ", ".join(_describe(c, n) for c, n in owners)
    return InvalidAddress(f"wrong network: {other} address, expected {_describe(coin, network)}")


def _normalize_segwit(coin: str, network: str, address: str, hrp: str) -> str:
    if len(address) > _BECH32_MAX_LEN:
        raise InvalidAddress(f"invalid length: {len(address)} characters, bech32 allows 90")
    if address != address.lower() and address != address.upper():
        raise InvalidAddress("invalid character: bech32 address mixes upper and lower case")
    lowered = address.lower()
    data_part = lowered[len(hrp) + 1 :]
    bad = sorted({c for c in data_part if c not in Bech32BaseConst.CHARSET})
    if bad:
        raise InvalidAddress(f"invalid character {bad[0]!r}")
    if hrp != SEGWIT_HRPS[(coin, network)]:
        raise _wrong_network(coin, network, [_HRP_OWNER[hrp]])
    try:
        witver, program = SegwitBech32Decoder.Decode(hrp, lowered)
    except Bech32ChecksumError:
        raise InvalidAddress(_bech32_checksum_problem(hrp, data_part)) from None
    except ValueError as exc:
        kind = "invalid length" if "length" in str(exc) else "invalid segwit address"
        raise InvalidAddress(f"{kind}: {exc}") from None
    if witver == 0 and len(program) not in (20, 32):  # the library checks this; keep it explicit
        raise InvalidAddress(f"invalid length: witness v0 program of {len(program)} bytes")
    return lowered


def _bech32_checksum_problem(hrp: str, data_part: str) -> str:
    """Explain a failed checksum, spelling out BIP350's bech32-vs-bech32m rule when it applies."""
    if len(data_part) < 7:
        return "invalid length: bech32 data part too short"
    values = [Bech32BaseConst.CHARSET.find(c) for c in data_part]
    witver = values[0]
    if witver == 0 and Bech32Utils.VerifyChecksum(hrp, values, Bech32Encodings.BECH32M):
        return "invalid checksum: witness v0 address must use bech32, not bech32m"
    if witver != 0 and Bech32Utils.VerifyChecksum(hrp, values, Bech32Encodings.BECH32):
        return f"invalid checksum: witness v{witver} address must use bech32m, not bech32"
    return "invalid checksum"


# --- BTC / LTC base58 ------------------------------------------------------------------------


def _normalize_base58(coin: str, network: str, address: str) -> str:
    bad = sorted({c for c in address if c not in _BASE58_CHARS})
    if bad:
        sep = address.rfind("1")
        if sep > 0 and address[:sep].isalpha() and address[:sep].lower() == address[:sep]:
            expected = SEGWIT_HRPS[(coin, network)]
            raise InvalidAddress(
                f"unknown bech32 prefix {address[:sep]!r}: expected {expected} for {coin} {network}"
            )
        raise InvalidAddress(f"invalid character {bad[0]!r}")
    if len(address) > _MAX_BASE58_LEN:  # cannot be 25 bytes; base58 decoding is quadratic
        raise InvalidAddress(f"invalid length: {len(address)} characters")
    raw = Base58Decoder.Decode(address)
    if len(raw) != 25:
        raise InvalidAddress(f"invalid length: {len(raw)} bytes decoded, expected 25")
    payload, checksum = raw[:21], raw[21:]
    if hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] != checksum:
        raise InvalidAddress("invalid checksum")
    version = payload[0]
    if version in BASE58_VERSIONS[(coin, network)]:
        return address
    family = "mainnet" if network == "mainnet" else "testnet"
    if coin == "LTC" and _LTC_DEPRECATED_P2SH.get(version) == family:
        raise InvalidAddress(
            f"deprecated litecoin P2SH version 0x{version:02x}: litecoind reports this script "
            "in the M… (mainnet) / Q… (testnet, regtest) form; convert the address"
        )
    owners = _base58_owners(version)
    if not owners:
        raise InvalidAddress(f"unknown address version 0x{version:02x} for {coin}")
    raise _wrong_network(coin, network, owners)


def _base58_owners(version: int) -> list[tuple[str, str]]:
    """(coin, network) pairs whose nodes print base58 addresses with this version byte."""
    return [key for key, versions in BASE58_VERSIONS.items() if version in versions]


# --- Skycoin ---------------------------------------------------------------------------------


def validate_skycoin_address(address: str) -> str:
    """Validate a buyer's Skycoin receive address; return it stripped of surrounding whitespace.

    Mirrors skycoin ``cipher.DecodeBase58Address``: base58 of key(20) + version(1) + checksum(4),
    checksum = sha256(key + version)[:4], version 0. The messages are cipher's own strings; the
    HTTP layer prefixes them with "Invalid skycoin address: " as the Go teller does.
    """
    if not isinstance(address, str):
        raise InvalidAddress("Invalid base58 string")
    address = address.strip(" \t\n")
    if address in _VALID_SKYCOIN:
        return address
    problem = _skycoin_address_problem(address)
    if problem:
        raise InvalidAddress(problem)
    if len(_VALID_SKYCOIN) >= _VALID_SKYCOIN_MAX:
        _VALID_SKYCOIN.clear()
    _VALID_SKYCOIN[address] = None
    return address


# Addresses that passed, so wallets polling /api/status with the same address skip the base58
# decode. Only accepted ones: a valid address is at most 35 characters, so the cache is bounded
# in bytes too (caching every refused string let 1 MB garbage "addresses" grow the teller by
# 500 MB, issue 14). Cleared when full; a dict's get/set are atomic under the GIL.
_VALID_SKYCOIN: dict[str, None] = {}
_VALID_SKYCOIN_MAX = 65536


def _skycoin_address_problem(address: str) -> str:
    """Why ``address`` is not a Skycoin address ("" if it is)."""
    if not address:
        return "Invalid base58 string"
    if not _BASE58_CHARS.issuperset(address):
        return "Invalid base58 character"
    if len(address) > _MAX_BASE58_LEN:  # cannot be 25 bytes; base58 decoding is quadratic
        return "Invalid address length"
    raw = Base58Decoder.Decode(address)
    if len(raw) != 25:
        return "Invalid address length"
    if hashlib.sha256(raw[:21]).digest()[:4] != raw[21:]:
        return "Invalid checksum"
    if raw[20] != 0:
        return "Address version invalid"
    return ""
