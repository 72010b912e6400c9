"""BIP32 watch-only derivation against published vectors (BIP32, BIP44, BIP49, BIP84, ETH)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from bip_utils import (
    Bip32KeyNetVersions,
    Bip32Secp256k1,
    Bip44,
    Bip44Changes,
    Bip44Coins,
    EthAddrEncoder,
    P2PKHAddrEncoder,
    P2SHAddrEncoder,
    P2WPKHAddrEncoder,
)

from addrs.derive import (
    DerivationError,
    ReceiveAddressDeriver,
    account_path,
    deriver_from_seed,
    key_version,
    seed_bytes,
)
from addrs.validate import normalize_deposit_address

MNEMONIC = " ".join(["abandon"] * 11 + ["about"])
# Account keys of MNEMONIC as published (BIP44 / BIP49 (SLIP-132 ypub) / BIP84 / BIP49 testnet).
XPUB_44 = ("xpub6BosfCnifzxcFwrSzQiqu2DBVTshkCXacvNsWGYJVVhhawA7d4R5WSWGFNbi8Aw6ZRc1brxMyWMzG3D"
           "SSSSoekkudhUd9yLb6qx39T9nMdj")
YPUB_49 = ("ypub6Ww3ibxVfGzLrAH1PNcjyAWenMTbbAosGNB6VvmSEgytSER9azLDWCxoJwW7Ke7icmizBMXrzBx9979"
           "FfaHxHcrArf3zbeJJJUZPf663zsP")
ZPUB_84 = ("zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvU"
           "UkgDKf31mGDtKsAYz2oz2AGutZYs")
UPUB_49 = ("upub5EFU65HtV5TeiSHmZZm7FUffBGy8UKeqp7vw43jYbvZPpoVsgU93oac7Wk3u6moKegAEWtGNF8Dehrn"
           "Htv21XXEMYRUocHqguyjknFHYfgY")
ZPRV_84 = ("zprvAdG4iTXWBoARxkkzNpNh8r6Qag3irQB8PzEMkAFeTRXxHpbF9z4QgEvBRmfvqWvGp42t42nvgGpNgYS"
           "JA9iefm1yYNZKEm7z6qUWCroSQnE")

BIP84_RECEIVE = ["bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu",
                 "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"]
BIP44_RECEIVE = ["1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA", "1Ak8PffB2meyfYnbXZR9EGfLfFZVpzJvQP",
                 "1MNF5RSaabFwcbtJirJwKnDytsXXEsVsNb"]
BIP49_RECEIVE = ["37VucYSaXLCAsxYyAPfbSi9eh4iEcbShgf", "3LtMnn87fqUeHBUG414p9CWwnoV6E2pNKS"]
BIP49_TESTNET_RECEIVE = "2Mww8dCYPUpKHofjgcXcBCEGmniw9CoaiD2"
ETH_RECEIVE_0 = "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"

# BIP32 test vector 1 (seed 000102...0f) and 2 (seed fffcf9...42), extended public keys.
V1_M_0H_1_2H = ("xpub6D4BDPcP2GT577Vvch3R8wDkScZWzQzMMUm3PWbmWvVJrZwQY4VUNgqFJPMM3No2dFDFGTsxx"
                "pG5uJh7n7epu4trkrX7x7DogT5Uv6fcLW5")
V1_M_0H_1_2H_2 = ("xpub6FHa3pjLCk84BayeJxFW2SP4XRrFd1JYnxeLeU8EqN3vDfZmbqBqaGJAyiLjTAwm6ZLRQUMv1"
                  "ZACTj37sR62cfN7fe5JnJ7dh8zL4fiyLHV")
V1_M_0H_1_2H_2_1E9 = ("xpub6H1LXWLaKsWFhvm6RVpEL9P4KfRZSW7abD2ttkWP3SSQvnyA8FSVqNTEcYFgJS2UaFcxu"
                      "pHiYkro49S8yGasTvXEYBVPamhGW6cFJodrTHy")
V2_M = ("xpub661MyMwAqRbcFW31YEwpkMuc5THy2PSt5bDMsktWQcFF8syAmRUapSCGu8ED9W6oDMSgv6Zz8idoc4a6mr8"
        "BDzTJY47LJhkJ8UB7WEGuduB")
V2_M_0 = ("xpub69H7F5d8KSRgmmdJg2KhpAK8SR3DjMwAdkxj3ZuxV27CprR9LgpeyGmXUbC6wb7ERfvrnKZjXoUmmDznez"
          "pbZb7ap6r1D3tgFxHmwMkQTPH")


def test_bip32_vector1_public_derivation() -> None:
    # The vector's non-hardened steps below m/0H/1/2H, by public derivation only: the same
    # primitive (ChildKey on a public-only key) the deriver uses for <account>/0/i.
    parent = Bip32Secp256k1.FromExtendedKey(V1_M_0H_1_2H)
    assert parent.IsPublicOnly()
    two = parent.ChildKey(2)
    assert two.PublicKey().ToExtended() == V1_M_0H_1_2H_2
    assert two.ChildKey(1_000_000_000).PublicKey().ToExtended() == V1_M_0H_1_2H_2_1E9
    # And the deriver accepts a depth-5 key, reporting its depth for the CLI warning.
    assert ReceiveAddressDeriver("BTC", V1_M_0H_1_2H_2_1E9).depth == 5


def test_bip32_vector2_change_key() -> None:
    deriver = ReceiveAddressDeriver("BTC", V2_M)
    assert deriver.depth == 0
    assert deriver.change_key() == V2_M_0


def test_bip84_zpub_receive_addresses() -> None:
    deriver = ReceiveAddressDeriver("BTC", ZPUB_84)
    assert deriver.script_type == "p2wpkh"
    assert deriver.network == "mainnet"
    assert deriver.depth == 3
    assert list(deriver.addresses(0, 2)) == BIP84_RECEIVE


def test_bip49_ypub_and_upub() -> None:
    assert list(ReceiveAddressDeriver("BTC", YPUB_49).addresses(0, 2)) == BIP49_RECEIVE
    testnet = ReceiveAddressDeriver("BTC", UPUB_49)
    assert (testnet.network, testnet.script_type) == ("testnet", "p2sh-p2wpkh")
    assert testnet.address(0) == BIP49_TESTNET_RECEIVE
    # Same key on regtest: base58 versions are shared with testnet.
    assert ReceiveAddressDeriver("BTC", UPUB_49, network="regtest").address(0) == (
        BIP49_TESTNET_RECEIVE
    )


def test_bip44_xpub_and_start_index() -> None:
    deriver = ReceiveAddressDeriver("BTC", XPUB_44)
    assert list(deriver.addresses(0, 3)) == BIP44_RECEIVE
    assert list(deriver.addresses(1, 2)) == BIP44_RECEIVE[1:]


def test_type_overrides_the_prefix_default() -> None:
    # An xpub forced to p2wpkh gives bech32 addresses of the same keys.
    deriver = ReceiveAddressDeriver("BTC", XPUB_44, script_type="p2wpkh")
    assert deriver.address(0).startswith("bc1q")


def test_seed_route_matches_published_vectors() -> None:
    d44, x44 = deriver_from_seed("BTC", MNEMONIC, "p2pkh")
    d49, y49 = deriver_from_seed("BTC", MNEMONIC, "p2sh-p2wpkh")
    d84, z84 = deriver_from_seed("BTC", MNEMONIC, "p2wpkh")
    assert (x44, y49, z84) == (XPUB_44, YPUB_49, ZPUB_84)
    assert d44.address(0) == BIP44_RECEIVE[0]
    assert d49.address(0) == BIP49_RECEIVE[0]
    assert list(d84.addresses(0, 2)) == BIP84_RECEIVE
    d_test, u49 = deriver_from_seed("BTC", MNEMONIC, "p2sh-p2wpkh", "testnet")
    assert u49 == UPUB_49
    assert d_test.address(0) == BIP49_TESTNET_RECEIVE


def test_eth_from_seed_and_from_its_xpub() -> None:
    deriver, xpub = deriver_from_seed("ETH", MNEMONIC)
    assert deriver.address(0) == ETH_RECEIVE_0
    watch_only = ReceiveAddressDeriver("ETH", xpub)
    assert list(watch_only.addresses(0, 3)) == list(deriver.addresses(0, 3))
    # Second route: bip_utils' own BIP44 class for Ethereum.
    bip44 = Bip44.FromSeed(seed_bytes(MNEMONIC), Bip44Coins.ETHEREUM).Purpose().Coin()
    chain = bip44.Account(0).Change(Bip44Changes.CHAIN_EXT)
    assert [chain.AddressIndex(i).PublicKey().ToAddress() for i in range(3)] == list(
        watch_only.addresses(0, 3)
    )


def test_ltc_addresses_are_valid_for_the_network() -> None:
    for script, network in [("p2pkh", "mainnet"), ("p2sh-p2wpkh", "mainnet"),
                            ("p2wpkh", "mainnet"), ("p2wpkh", "regtest"), ("p2pkh", "testnet")]:
        deriver, _ = deriver_from_seed("LTC", MNEMONIC, script, network)
        address = deriver.address(0)
        assert normalize_deposit_address("LTC", address, network) == address
    regtest, _ = deriver_from_seed("LTC", MNEMONIC, "p2wpkh", "regtest")
    assert regtest.address(0).startswith("rltc1q")
    # Litecoin's BIP44 coin type 2' gives the same keys as bip_utils' Litecoin BIP44 class.
    ltc44, _ = deriver_from_seed("LTC", MNEMONIC)
    chain = (Bip44.FromSeed(seed_bytes(MNEMONIC), Bip44Coins.LITECOIN).Purpose().Coin()
             .Account(0).Change(Bip44Changes.CHAIN_EXT))
    assert ltc44.address(0) == chain.AddressIndex(0).PublicKey().ToAddress()


def test_seed_paths() -> None:
    assert account_path("BTC", "p2pkh", "mainnet") == "m/44'/0'/0'"
    assert account_path("BTC", "p2sh-p2wpkh", "regtest") == "m/49'/1'/0'"
    assert account_path("LTC", "p2wpkh", "mainnet") == "m/84'/2'/0'"
    assert account_path("ETH", "p2pkh", "testnet") == "m/44'/60'/0'"


def test_private_keys_are_refused() -> None:
    with pytest.raises(DerivationError, match="PRIVATE key \\(zprv\\).*zpub"):
        ReceiveAddressDeriver("BTC", ZPRV_84)


def test_bad_keys_and_combinations() -> None:
    with pytest.raises(DerivationError, match="invalid checksum"):
        ReceiveAddressDeriver("BTC", ZPUB_84[:-1] + ("a" if ZPUB_84[-1] != "a" else "b"))
    with pytest.raises(DerivationError, match="invalid base58"):
        ReceiveAddressDeriver("BTC", "0" + ZPUB_84[1:])
    with pytest.raises(DerivationError, match="zpub key is not usable for ETH"):
        ReceiveAddressDeriver("ETH", ZPUB_84)
    with pytest.raises(DerivationError, match="not testnet"):
        ReceiveAddressDeriver("BTC", ZPUB_84, network="testnet")
    with pytest.raises(DerivationError, match="not mainnet"):
        ReceiveAddressDeriver("BTC", UPUB_49, network="mainnet")
    with pytest.raises(DerivationError, match="does not apply to ETH"):
        ReceiveAddressDeriver("ETH", XPUB_44, script_type="p2wpkh")
    with pytest.raises(DerivationError, match="out of range"):
        list(ReceiveAddressDeriver("BTC", XPUB_44).addresses(2**31 - 1, 2))


def test_key_version_names() -> None:
    assert key_version(XPUB_44).name == "xpub"
    assert key_version(ZPUB_84).script_type == "p2wpkh"
    assert key_version(UPUB_49).testnet


def test_seed_forms() -> None:
    assert seed_bytes("000102030405060708090a0b0c0d0e0f") == bytes(range(16))
    assert seed_bytes(f"  {MNEMONIC.replace(' ', '  ')} ") == seed_bytes(MNEMONIC)
    with pytest.raises(DerivationError, match="invalid BIP39 mnemonic"):
        seed_bytes(" ".join(["abandon"] * 12))  # bad checksum word
    with pytest.raises(DerivationError, match="hex seed of 16 to 64 bytes"):
        seed_bytes("a1b2c3")
    with pytest.raises(DerivationError, match="hex seed"):
        seed_bytes("myseed")


@pytest.mark.parametrize(
    ("coin", "key", "encode"),
    [
        ("BTC", ZPUB_84, lambda k: P2WPKHAddrEncoder.EncodeKey(k, hrp="bc")),
        ("BTC", YPUB_49, lambda k: P2SHAddrEncoder.EncodeKey(k, net_ver=b"\x05")),
        ("BTC", XPUB_44, lambda k: P2PKHAddrEncoder.EncodeKey(k, net_ver=b"\x00")),
        ("LTC", XPUB_44, lambda k: P2PKHAddrEncoder.EncodeKey(k, net_ver=b"\x30")),
        ("ETH", XPUB_44, EthAddrEncoder.EncodeKey),
    ],
)
def test_fast_leaf_derivation_equals_bip_utils_child_key(
    coin: str, key: str, encode: Callable[[object], str]
) -> None:
    deriver = ReceiveAddressDeriver(coin, key)
    change = Bip32Secp256k1.FromExtendedKey(key, _net_versions(key)).ChildKey(0)
    indexes = [*range(150), 1_000_000_000, 2**31 - 2, 2**31 - 1]
    expected = [encode(change.ChildKey(i).PublicKey().KeyObject()) for i in indexes]
    assert [deriver.address(i) for i in indexes] == expected


def _net_versions(key: str) -> Bip32KeyNetVersions:
    version = key_version(key)
    return Bip32KeyNetVersions(version.public, version.private)


def test_every_option_problem_is_listed_at_once() -> None:
    with pytest.raises(DerivationError) as info:
        ReceiveAddressDeriver("ETH", ZPUB_84, script_type="p2wpkh")
    assert "zpub key is not usable for ETH" in str(info.value)
    assert "--type p2wpkh does not apply to ETH" in str(info.value)
    with pytest.raises(DerivationError) as info:
        ReceiveAddressDeriver("BTC", ZPUB_84, script_type="p2tr", network="testnet")
    assert "unknown address type 'p2tr'" in str(info.value)
    assert "a zpub key is for mainnet, not testnet" in str(info.value)
