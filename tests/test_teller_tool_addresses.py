"""`teller tool` address commands, driven through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from addrs.addrgen import MAX_COUNT, generate_from_xpub
from addrs.files import load_address_file
from teller.cli_tool import SEED_WARNING, tool_group

MNEMONIC = " ".join(["abandon"] * 11 + ["about"])
ZPUB_84 = ("zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvU"
           "UkgDKf31mGDtKsAYz2oz2AGutZYs")
ZPRV_84 = ("zprvAdG4iTXWBoARxkkzNpNh8r6Qag3irQB8PzEMkAFeTRXxHpbF9z4QgEvBRmfvqWvGp42t42nvgGpNgYS"
           "JA9iefm1yYNZKEm7z6qUWCroSQnE")
ETH_XPUB = ("xpub6DCoCpSuQZB2jawqnGMEPS63ePKWkwWPH4TU45Q7LPXWuNd8TMtVxRrgjtEshuqpK3mdhaWHPFsBngh"
            "5GFZaM6si3yZdUsT8ddYM3PwnATt")  # m/44'/60'/0' of MNEMONIC (cross-checked in derive tests)
BIP84_RECEIVE = ["bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu",
                 "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"]
BIP44_0 = "1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA"
ETH_0 = "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"


def run(*args: str) -> Result:
    return CliRunner().invoke(tool_group, list(args))


def test_newaddresses_text_to_stdout() -> None:
    result = run("newaddresses", "--coin", "BTC", "--xpub", ZPUB_84, "-n", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == BIP84_RECEIVE
    assert result.stderr == ""


def test_newaddresses_json_matches_go_format() -> None:
    result = run("newaddresses", "--coin", "btc", "--xpub", ZPUB_84, "-n", "1", "--start", "1",
                 "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"btc_addresses": BIP84_RECEIVE[1:]}


def test_newaddresses_eth_checksummed_and_ltc_bech32() -> None:
    result = run("newaddresses", "--coin", "ETH", "--xpub", ETH_XPUB, "-n", "1", "--json")
    assert json.loads(result.stdout) == {"eth_addresses": [ETH_0]}
    result = run("newaddresses", "--coin", "LTC", "--xpub", ZPUB_84, "-n", "1")
    assert result.stdout.startswith("ltc1q")


def test_newaddresses_to_file_is_loadable(tmp_path: Path) -> None:
    out = tmp_path / "btc.json"
    result = run("newaddresses", "--coin", "BTC", "--xpub", ZPUB_84, "-n", "2", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert f"wrote 2 BTC p2wpkh addresses (mainnet) to {out}" in result.stderr
    assert load_address_file(out, "BTC") == BIP84_RECEIVE
    assert json.loads(out.read_text()) == {"btc_addresses": BIP84_RECEIVE}


def test_json_flag_needs_a_json_file_name(tmp_path: Path) -> None:
    result = run("newaddresses", "--coin", "BTC", "--xpub", ZPUB_84, "-n", "2", "--json",
                 "-o", str(tmp_path / "btc.txt"))
    assert result.exit_code == 2
    assert "must go to a file ending in .json" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_private_key_is_refused() -> None:
    result = run("newaddresses", "--coin", "BTC", "--xpub", ZPRV_84, "-n", "2")
    assert result.exit_code == 1
    assert "PRIVATE key (zprv)" in result.stderr
    assert result.stdout == ""


def test_depth_warning_for_non_account_keys() -> None:
    master = ("xpub661MyMwAqRbcFW31YEwpkMuc5THy2PSt5bDMsktWQcFF8syAmRUapSCGu8ED9W6oDMSgv6Zz8idoc4"
              "a6mr8BDzTJY47LJhkJ8UB7WEGuduB")  # BIP32 test vector 2, chain m
    result = run("newaddresses", "--coin", "BTC", "--xpub", master, "-n", "1")
    assert result.exit_code == 0
    assert "depth 0, not an account-level key" in result.stderr


def test_progress_bar_on_stderr_for_large_n() -> None:
    result = run("newaddresses", "--coin", "BTC", "--xpub", ZPUB_84, "-n", "1200")
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 1200
    assert "deriving addresses" in result.stderr


def test_newbtcaddress_from_mnemonic_warns_and_prints_the_xpub() -> None:
    result = run("newbtcaddress", MNEMONIC, "1", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"btc_addresses": [BIP44_0]}
    assert SEED_WARNING in result.stderr
    assert "account m/44'/0'/0': xpub6BosfCnifzxcFwrSzQiqu2DBV" in result.stderr


def test_newbtcaddress_types_and_networks() -> None:
    result = run("newbtcaddress", MNEMONIC, "2", "--type", "p2wpkh")
    assert result.stdout.splitlines() == BIP84_RECEIVE
    result = run("newbtcaddress", MNEMONIC, "1", "--type", "p2wpkh", "--network", "regtest")
    assert result.stdout.startswith("bcrt1q")


def test_newethaddress_and_newltcaddress() -> None:
    result = run("newethaddress", MNEMONIC, "1", "--json")
    assert json.loads(result.stdout) == {"eth_addresses": [ETH_0]}
    result = run("newltcaddress", MNEMONIC, "1", "--json")
    assert list(json.loads(result.stdout)) == ["ltc_addresses"]
    assert json.loads(result.stdout)["ltc_addresses"][0].startswith("L")


def test_bad_seed_is_a_clear_error() -> None:
    result = run("newbtcaddress", "myseed", "3")
    assert result.exit_code == 1
    assert "SEED must be a BIP39 mnemonic" in result.stderr
    assert result.stdout == ""


def test_checkaddresses_clean(tmp_path: Path) -> None:
    path = tmp_path / "btc.txt"
    path.write_text("\n".join(BIP84_RECEIVE) + "\n")
    result = run("checkaddresses", str(path), "--coin", "BTC")
    assert result.exit_code == 0
    assert result.stdout == f"{path}: 2 BTC addresses, all valid for mainnet\n"


def test_checkaddresses_lists_every_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "btc.txt"
    bad = BIP84_RECEIVE[0][:-1] + "q"
    path.write_text("\n".join([BIP84_RECEIVE[0], bad, "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0g"
                               "dcccefvpysxf3q0sl5k7", BIP84_RECEIVE[0]]) + "\n")
    result = run("checkaddresses", str(path), "--coin", "BTC", "--network", "mainnet")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"{path}:2: {bad}: invalid checksum"
    assert lines[1].startswith(f"{path}:3: tb1q") and "wrong network: testnet address on mainnet" \
        in lines[1]
    assert lines[2] == f"{path}:4: {BIP84_RECEIVE[0]}: duplicate of line 1"
    assert "3 problem(s), 1 good BTC address(es) for mainnet" in result.stderr


def test_checkaddresses_ltc_file_for_btc(tmp_path: Path) -> None:
    text = tmp_path / "ltc.txt"
    assert run("newltcaddress", MNEMONIC, "2", "-o", str(text)).exit_code == 0
    result = run("checkaddresses", str(text), "--coin", "BTC")
    assert result.exit_code == 1
    assert result.stdout.count("wrong network: LTC mainnet address, expected BTC mainnet") == 2
    assert run("checkaddresses", str(text), "--coin", "LTC").exit_code == 0
    # In JSON the key is per coin: an LTC file has no btc_addresses.
    as_json = tmp_path / "ltc.json"
    assert run("newltcaddress", MNEMONIC, "2", "-o", str(as_json)).exit_code == 0
    result = run("checkaddresses", str(as_json), "--coin", "BTC")
    assert result.exit_code == 1
    assert "expected a JSON object with key 'btc_addresses'" in result.stdout


def test_checkaddresses_reports_addresses_used_in_data_dir(tmp_path: Path) -> None:
    from addrs.pool import AddressPool
    from common.storage import Storage
    from ledger.store import DepositStore

    path = tmp_path / "btc.txt"
    path.write_text("\n".join(BIP84_RECEIVE[:2]) + "\n")
    data_dir = tmp_path / "data"
    result = run("checkaddresses", str(path), "--coin", "BTC", "-d", str(data_dir))
    assert result.exit_code == 1
    assert "--dir: no teller database in" in result.stderr
    with Storage(data_dir) as storage:
        pool = AddressPool(storage)
        pool.add("BTC", BIP84_RECEIVE[:2])
        DepositStore(storage, pool).bind("BTC", "2Wbi4wvxC4fkTYMsS2f6HaFfW4pafDjXcQW")
    result = run("checkaddresses", str(path), "--coin", "BTC", "-d", str(data_dir))
    assert result.exit_code == 1
    assert f"{path}:1: {BIP84_RECEIVE[0]}: already used in the data dir" in result.stdout
    assert BIP84_RECEIVE[1] not in result.stdout.split("problem(s)")[0]


def test_large_runs_report_progress_and_stay_unique() -> None:
    """The speed of 100,000 addresses is measured by bench/addresses.py, not asserted here."""
    done: list[int] = []
    generated = generate_from_xpub("BTC", ZPUB_84, 5_000, progress=done.append)
    assert len(set(generated.addresses)) == 5_000
    assert generated.addresses[:2] == BIP84_RECEIVE
    assert sum(done) == 5_000 and len(done) > 1


def test_wrong_key_for_the_coin_lists_every_problem() -> None:
    result = run("newaddresses", "--coin", "ETH", "--xpub", ZPUB_84, "--type", "p2wpkh",
                 "-n", "2")
    assert result.exit_code == 1
    assert "zpub key is not usable for ETH" in result.stderr
    assert "--type p2wpkh does not apply to ETH" in result.stderr
    assert result.stdout == ""
    result = run("newaddresses", "--coin", "BTC", "--xpub", ZPUB_84, "--network", "regtest",
                 "-n", "2")
    assert result.exit_code == 1
    assert "a zpub key is for mainnet, not regtest" in result.stderr


def test_huge_n_is_refused_at_once_with_every_problem() -> None:
    result = run("newaddresses", "--coin", "BTC", "--xpub", ZPUB_84, "-n", str(10**20))
    assert result.exit_code == 1
    assert f"at most {MAX_COUNT:,} addresses per run" in result.stderr
    assert "out of range 0..2**31-1" in result.stderr
    assert result.stdout == ""
    result = run("newbtcaddress", "myseed", str(10**20))
    assert result.exit_code == 1
    assert f"at most {MAX_COUNT:,} addresses per run" in result.stderr
    assert "SEED must be a BIP39 mnemonic" in result.stderr


def test_n_above_the_per_run_limit_is_refused_before_deriving() -> None:
    """Within BIP32's range but more than one run should hold: refused at once, with the
    --start that continues the series (before the fix this derived for minutes)."""
    result = run("newaddresses", "--coin", "BTC", "--xpub", ZPUB_84, "--start", "5",
                 "-n", str(MAX_COUNT + 1))
    assert result.exit_code == 1
    assert f"--start {5 + MAX_COUNT}" in result.stderr
    assert "Traceback" not in result.output


def test_checkaddresses_windows_file_with_bom_and_duplicate(tmp_path: Path) -> None:
    path = tmp_path / "btc.txt"
    lines = [BIP84_RECEIVE[0], "", BIP84_RECEIVE[1], BIP84_RECEIVE[0], ""]
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode())
    result = run("checkaddresses", str(path), "--coin", "BTC")
    assert result.exit_code == 1
    assert result.stdout == f"{path}:4: {BIP84_RECEIVE[0]}: duplicate of line 1\n"
    assert "1 problem(s), 2 good BTC address(es) for mainnet" in result.stderr
