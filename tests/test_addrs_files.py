"""Address files: Go-teller formats, every problem reported with its line, atomic writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from addrs.files import (
    AddressFileError,
    format_addresses,
    load_address_file,
    scan_address_file,
    write_address_file,
)

P2PKH = "1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA"  # BIP44 vector
P2SH = "37VucYSaXLCAsxYyAPfbSi9eh4iEcbShgf"  # BIP49 vector
P2WPKH = "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"  # BIP84 vector
TESTNET = "2Mww8dCYPUpKHofjgcXcBCEGmniw9CoaiD2"  # BIP49 testnet vector
ETH = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # EIP-55 vector


def test_text_file_skips_blanks_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "btc.txt"
    path.write_text(f"# deposit addresses\n\n{P2PKH}\n  {P2WPKH.upper()}  \n{P2SH}\n")
    assert load_address_file(path, "BTC") == [P2PKH, P2WPKH, P2SH]


def test_json_file(tmp_path: Path) -> None:
    path = tmp_path / "eth.json"
    path.write_text(json.dumps({"eth_addresses": [ETH]}))
    assert load_address_file(path, "ETH") == [ETH.lower()]


def test_every_problem_is_reported_with_its_line(tmp_path: Path) -> None:
    bad_checksum = P2PKH[:-1] + "B"
    path = tmp_path / "btc.txt"
    path.write_text(
        "\n".join(["# header", P2PKH, bad_checksum, TESTNET, "", P2WPKH, P2PKH, P2WPKH.upper()])
        + "\n"
    )
    with pytest.raises(AddressFileError) as info:
        load_address_file(path, "BTC", "mainnet")
    assert info.value.problems == [
        f"{path}:3: {bad_checksum}: invalid checksum",
        f"{path}:4: {TESTNET}: wrong network: testnet/regtest address on mainnet",
        f"{path}:7: {P2PKH}: duplicate of line 2",
        f"{path}:8: {P2WPKH.upper()}: duplicate of line 6",
    ]
    assert "4 problems" in str(info.value)


def test_json_problems_use_the_entry_index(tmp_path: Path) -> None:
    path = tmp_path / "btc.json"
    path.write_text(json.dumps({"btc_addresses": [P2PKH, 7, P2PKH]}))
    with pytest.raises(AddressFileError) as info:
        load_address_file(path, "BTC")
    assert info.value.problems == [
        f"{path}:2: 7: not a string",
        f"{path}:3: {P2PKH}: duplicate of line 1",
    ]


def test_wrong_json_key_and_bad_json(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"btc_addresses": [P2PKH]}))
    with pytest.raises(AddressFileError, match="'eth_addresses'"):
        load_address_file(path, "ETH")
    path.write_text("{not json")
    with pytest.raises(AddressFileError, match="invalid JSON"):
        load_address_file(path, "BTC")
    with pytest.raises(AddressFileError, match="cannot read"):
        load_address_file(tmp_path / "missing.txt", "BTC")


def test_scan_returns_good_entries_and_problems(tmp_path: Path) -> None:
    path = tmp_path / "btc.txt"
    path.write_text(f"{P2PKH}\nnope\n{P2SH}\n")
    good, problems = scan_address_file(path, "BTC")
    assert good == [(1, P2PKH), (3, P2SH)]
    assert len(problems) == 1 and problems[0].startswith(f"{path}:2: nope: ")


def test_empty_file_gives_empty_list(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("# nothing yet\n")
    assert load_address_file(path, "BTC") == []


@pytest.mark.parametrize("as_json", [True, False])
def test_write_then_load_round_trip(tmp_path: Path, as_json: bool) -> None:
    path = tmp_path / ("ltc.json" if as_json else "ltc.txt")
    addresses = ["ltc1qjmxnz78nmc8nq77wuxh25n2es7rzm5c2rkk4wh"]
    write_address_file(path, "LTC", addresses, as_json)
    assert load_address_file(path, "LTC") == addresses
    assert path.read_text() == format_addresses("LTC", addresses, as_json)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind


def test_formats_match_the_go_teller() -> None:
    assert json.loads(format_addresses("BTC", [P2PKH, P2SH], True)) == {
        "btc_addresses": [P2PKH, P2SH]
    }
    assert format_addresses("ETH", [ETH], False) == ETH + "\n"
    assert format_addresses("BTC", [], False) == ""


def test_write_replaces_atomically_and_keeps_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "btc.txt"
    path.write_text("old\n")
    os.chmod(path, 0o640)
    write_address_file(path, "BTC", [P2PKH], False)
    assert path.read_text() == P2PKH + "\n"
    assert path.stat().st_mode & 0o777 == 0o640
    fresh = tmp_path / "new.txt"
    write_address_file(fresh, "BTC", [P2PKH], False)
    assert fresh.stat().st_mode & 0o777 == 0o644


def test_failed_write_removes_its_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.mkdir()  # os.replace of a file onto a directory fails
    with pytest.raises(OSError):
        write_address_file(target, "BTC", [P2PKH], False)
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]
    assert list(target.iterdir()) == []


def test_bom_crlf_blank_lines_and_duplicates_in_a_text_file(tmp_path: Path) -> None:
    """A file saved by a Windows editor or a spreadsheet: BOM, CRLF, blank and blank-looking
    lines. The BOM is not part of line 1, so line 1 is good and its duplicate is named."""
    path = tmp_path / "btc.txt"
    lines = [P2PKH, "", "   ", P2WPKH, "# comment", P2PKH, ""]
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode())
    good, problems = scan_address_file(path, "BTC")
    assert good == [(1, P2PKH), (4, P2WPKH)]
    assert problems == [f"{path}:6: {P2PKH}: duplicate of line 1"]
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join([P2PKH, P2WPKH, ""]).encode())
    assert load_address_file(path, "BTC") == [P2PKH, P2WPKH]


def test_bom_json_file(tmp_path: Path) -> None:
    path = tmp_path / "btc.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"btc_addresses": [P2PKH]}).encode())
    assert load_address_file(path, "BTC") == [P2PKH]


def test_a_long_bad_line_is_quoted_short(tmp_path: Path) -> None:
    """A wrong file (a CSV export, a key dump) still gives one screen line per problem."""
    path = tmp_path / "btc.txt"
    path.write_text("x" * 5000 + "\n" + P2PKH + "\n")
    good, problems = scan_address_file(path, "BTC")
    assert good == [(2, P2PKH)]
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:1: xxxx")
    assert "… (5000 characters): invalid" in problems[0]
    assert len(problems[0]) < len(str(path)) + 150
