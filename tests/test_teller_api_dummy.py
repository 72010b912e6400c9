"""The dummy API: the Go teller's parameters, validation messages and answers; deposits that
are persisted before the 200, and broadcasts that survive a restart."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.support.service import (
    BTC_ADDRESSES,
    SKY_ADDR,
    TellerHarness,
    assert_api_error,
    assert_json,
    sky_address,
    start_teller,
)

log = logging.getLogger(__name__)

TX = "edb29a9b561a8d6a6118eb1f724c87f853bf471d7e4f0e9ccb9e1d340235687b"
GOOD = {"addr": BTC_ADDRESSES[0], "value": "100000", "height": "494713", "tx": TX, "n": "0"}


@pytest.mark.parametrize(("change", "message"), [
    ({"addr": None}, "addr required"),
    ({"addr": "  "}, "addr required"),
    ({"addr": "notanaddr"}, "invalid addr"),
    ({"addr": BTC_ADDRESSES[0][:-1] + "C"}, "invalid addr"),
    ({"value": None}, "value required"),
    ({"value": "-1"}, "invalid value"),
    ({"value": "1.5"}, "invalid value"),
    ({"value": "abc"}, "invalid value"),
    ({"height": None}, "height required"),
    ({"height": "x"}, "invalid height"),
    ({"height": "-3"}, "invalid height"),
    ({"tx": None}, "tx required"),
    ({"n": "x"}, "invalid n"),
    ({"n": "-1"}, "invalid n"),
    ({"n": str(2**32)}, "n too large"),
    ({"coin": "DOGE"}, "invalid coin"),
    ({"coin": "ETH"}, "ETH is not served by the dummy scanner"),
    ({"addr": BTC_ADDRESSES[4]}, "addr is not a bound deposit address"),
])
def test_scanner_deposit_validation(teller: TellerHarness, change: dict, message: str) -> None:
    teller.bind(SKY_ADDR)
    params = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    resp = teller.get(teller.dummy, "/dummy/scanner/deposit", params=params)
    assert_api_error(resp, 400, message)
    assert teller.deposits() == []


def test_scanner_deposit_get_and_post_persist_before_answering(teller: TellerHarness) -> None:
    t = teller
    t.bind(SKY_ADDR)
    t.bind(sky_address(1))
    resp = t.get(t.dummy, "/dummy/scanner/deposit", params=GOOD)
    assert (resp.status_code, resp.text) == (200, "")
    log.info("the 200 means it is already recorded")
    [record] = t.deposits()
    assert record["deposit_id"] == f"{TX}:0" and record["deposit"]["height"] == 494713
    log.info("POST with form fields works too; n defaults to 0 (a new tx here)")
    resp = t.http.post(t.dummy + "/dummy/scanner/deposit", timeout=10, data={
        "addr": BTC_ADDRESSES[1], "value": "5", "height": "7", "tx": "ab" * 32})
    assert (resp.status_code, resp.text) == (200, "")
    assert [d["deposit_id"] for d in t.deposits()] == [f"{TX}:0", f"{'ab' * 32}:0"]


def test_replayed_deposit_is_recorded_and_paid_once(teller: TellerHarness) -> None:
    t = teller
    addr = t.bind(SKY_ADDR)
    for _ in range(3):
        t.deposit(addr, 100_000, TX, height=10)
    t.wait_status(SKY_ADDR, ["waiting_confirm"])
    [payout] = t.wait_broadcasts(1)
    log.info("replayed again after the payout went out: still one record, one payout")
    t.deposit(addr, 100_000, TX, height=10)
    t.confirm(payout["txid"])
    t.wait_status(SKY_ADDR, ["done"])
    assert len(t.deposits()) == 1
    assert len(t.broadcasts()) == 1


def test_broadcasts_and_confirm(teller: TellerHarness) -> None:
    t = teller
    assert_json(t.get(t.dummy, "/dummy/sender/broadcasts"), [])
    addr = t.bind(SKY_ADDR)
    t.deposit(addr, 100_000, TX)
    t.wait_status(SKY_ADDR, ["waiting_confirm"])
    [payout] = assert_json(t.get(t.dummy, "/dummy/sender/broadcasts"))
    assert payout == {"confirmed": False, "txid": payout["txid"],
                      "outputs": [{"address": SKY_ADDR, "coins": "0.500000"}]}
    log.info("every documented confirm error")
    assert_api_error(t.get(t.dummy, "/dummy/sender/confirm"), 400, "txid or seq required")
    assert_api_error(t.get(t.dummy, "/dummy/sender/confirm", params={"seq": "x"}), 400,
                     "invalid seq")
    assert_api_error(t.get(t.dummy, "/dummy/sender/confirm", params={"txid": "ab" * 32}), 404,
                     "txn not found")
    assert_api_error(t.get(t.dummy, "/dummy/sender/confirm", params={"seq": "99"}), 404,
                     "txn not found")
    log.info("confirm by txid: 200, empty body, the deposit finishes")
    resp = t.get(t.dummy, "/dummy/sender/confirm", params={"txid": payout["txid"]})
    assert (resp.status_code, resp.text) == (200, "")
    t.wait_status(SKY_ADDR, ["done"])
    assert t.broadcasts()[0]["confirmed"] is True


def test_confirm_by_seq(teller: TellerHarness) -> None:
    t = teller
    t.deposit(t.bind(SKY_ADDR), 100_000, TX)
    t.wait_broadcasts(1)
    log.info("seq counts broadcasts from 1, in broadcast order")
    resp = t.http.post(t.dummy + "/dummy/sender/confirm", data={"seq": "1"}, timeout=10)
    assert (resp.status_code, resp.text) == (200, "")
    t.wait_status(SKY_ADDR, ["done"])


def test_broadcasts_and_balance_survive_a_restart(tmp_path: Path) -> None:
    t = start_teller(tmp_path)
    try:
        t.deposit(t.bind(SKY_ADDR), 100_000, TX)
        t.deposit(t.bind(sky_address(1)), 200_000, TX, n=1)
        first, second = t.wait_broadcasts(2)
        t.confirm(first["txid"])
        t.wait_status(SKY_ADDR, ["done"])
        before = t.broadcasts()
        log.info("restart: the dummy chain is in the data dir")
        t.restart()
        assert t.broadcasts() == before
        assert [b["confirmed"] for b in before] == [True, False]
        health = assert_json(t.get(t.public, "/api/health"))
        assert health["exchange"]["balance"]["coins"] == "98.500000"
        t.confirm(second["txid"])
        t.wait_status(sky_address(1), ["done"])
        assert len(t.broadcasts()) == 2
    finally:
        t.close()


def test_dummy_routes_only_when_enabled(tmp_path: Path) -> None:
    t = start_teller(tmp_path, "[dummy]\nscanner = false\n[btc_scanner]\nenabled = false\n"
                               "[eth_scanner]\nenabled = false\n")
    try:
        assert_api_error(t.get(t.dummy, "/dummy/scanner/deposit", params=GOOD), 404,
                         "404 page not found")
        assert_json(t.get(t.dummy, "/dummy/sender/broadcasts"), [])
    finally:
        t.close()


def test_numbers_must_be_ascii_and_fit_go_integers(teller) -> None:
    """Python's int() takes "٣" and unbounded digits; Go's strconv does not, nor do we."""
    address = teller.bind(SKY_ADDR)
    base = {"addr": address, "value": "1", "height": "1", "tx": "ab", "n": "0"}
    for field, bad, message in (("value", "\u0663", "invalid value"),
                                ("value", str(2**64), "invalid value"),
                                ("height", "\u0663", "invalid height"),
                                ("n", "\u0663", "invalid n"),
                                ("n", str(2**32), "n too large")):
        r = teller.get(teller.dummy, "/dummy/scanner/deposit", params={**base, field: bad})
        assert_api_error(r, 400, message)
    r = teller.get(teller.dummy, "/dummy/sender/confirm", params={"seq": "\u0663"})
    assert_api_error(r, 400, "invalid seq")
    assert teller.deposits() == []


def test_huge_numbers_and_ids_are_400_and_record_nothing(teller) -> None:
    """int() refuses more than 4300 digits and LMDB keys hold 511 bytes: both were a 500."""
    address = teller.bind(SKY_ADDR)
    base = {"addr": address, "value": "1", "height": "1", "tx": "ab", "n": "0"}
    for field, bad, message in (("value", "9" * 5000, "invalid value"),
                                ("height", "1" * 5000, "invalid height"),
                                ("n", "7" * 5000, "invalid n"),
                                ("tx", "x" * 60_000, "invalid tx")):
        r = teller.get(teller.dummy, "/dummy/scanner/deposit", params={**base, field: bad})
        assert_api_error(r, 400, message)
    log.info("a URL past 64 KiB is refused by the HTTP layer itself (414), as granian does")
    r = teller.get(teller.dummy, "/dummy/scanner/deposit", params={**base, "tx": "x" * 100_000})
    assert r.status_code == 414
    r = teller.get(teller.dummy, "/dummy/sender/confirm", params={"seq": "9" * 5000})
    assert_api_error(r, 400, "invalid seq")
    assert teller.deposits() == []
    log.info("leading zeros are fine, as in strconv.ParseUint; a 256-byte tx is accepted")
    long_tx = "f" * 256
    r = teller.get(teller.dummy, "/dummy/scanner/deposit",
                   params={**base, "value": "0" * 5000 + "7", "tx": long_tx})
    assert r.status_code == 200, r.text
    [deposit] = teller.deposits()
    assert (deposit["deposit_value"], deposit["deposit_id"]) == (7, f"{long_tx}:0")
