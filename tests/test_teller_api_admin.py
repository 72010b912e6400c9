"""The admin API: the Go teller's monitor routes (with its bugs fixed), /metrics, backups and
the operator's review of held deposits."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import lmdb
import requests

from common.storage import loads
from sender.dummy import DummySender
from tests.support.service import (
    BTC_ADDRESSES,
    ETH_ADDRESSES,
    SKY_ADDR,
    TellerHarness,
    assert_api_error,
    assert_json,
    sky_address,
    start_teller,
)

log = logging.getLogger(__name__)

TX = "edb29a9b561a8d6a6118eb1f724c87f853bf471d7e4f0e9ccb9e1d340235687b"
EMPTY_PASSTHROUGH = {
    "deposit_value_spent": 0, "exchange_name": "", "requested_amount": "", "sky_bought": 0,
    "order": {"completed_amount": "", "customer_id": "", "final": False, "order_id": "",
              "original": "", "price": "", "status": ""},
}


def paid_and_confirmed(t: TellerHarness, skyaddr: str, addr: str, value: int, tx: str,
                       height: int = 1) -> dict[str, Any]:
    """Run one deposit to ``done`` and return its broadcast."""
    count = len(t.broadcasts()) + 1
    t.deposit(addr, value, tx, height=height)
    payout = t.wait_broadcasts(count)[-1]
    t.confirm(payout["txid"])
    t.wait_status(skyaddr, ["done"])
    return payout


def test_deposit_addresses_per_coin(teller: TellerHarness) -> None:
    t = teller
    t.bind(SKY_ADDR)
    t.bind(sky_address(1))
    body = assert_json(t.get(t.admin, "/api/deposit-addresses"))
    assert body["BTC"] == {"address_manager_enabled": True, "remaining_addresses": 3,
                           "scanning_addresses": sorted(BTC_ADDRESSES[:2]),
                           "scanning_enabled": False}
    log.info("each coin lists its own addresses (the Go teller showed BTC's everywhere)")
    for coin in ("ETH", "SKY", "LTC"):
        assert body[coin] == {"address_manager_enabled": False, "remaining_addresses": 0,
                              "scanning_addresses": [], "scanning_enabled": False}


def test_deposits_listing_and_filter(teller: TellerHarness) -> None:
    t = teller
    assert_json(t.get(t.admin, "/api/deposits"), {"deposits": []})
    addr = t.bind(SKY_ADDR)
    payout = paid_and_confirmed(t, SKY_ADDR, addr, 100_000, TX, height=494713)
    [record] = assert_json(t.get(t.admin, "/api/deposits", params={"status": "done"}))["deposits"]
    log.info("the transcript's DepositInfo fields, values as the Go teller recorded them")
    assert isinstance(record["updated_at"], int)
    expected = {
        "buy_method": "direct", "coin_type": "BTC", "conversion_rate": "500",
        "deposit_address": addr, "deposit_id": f"{TX}:0", "deposit_value": 100_000,
        "error": "", "passthrough": EMPTY_PASSTHROUGH, "seq": 1, "sky_address": SKY_ADDR,
        "sky_sent": 500_000, "status": "done", "txid": payout["txid"],
    }
    assert {k: record[k] for k in expected} == expected
    deposit = {k: v for k, v in record["deposit"].items() if k != "processed"}
    assert deposit == {"address": addr, "coin_type": "BTC", "height": 494713, "n": 0,
                       "tx": TX, "value": 100_000}
    assert_json(t.get(t.admin, "/api/deposits", params={"status": "waiting_send"}),
                {"deposits": []})
    assert [d["deposit_id"] for d in t.deposits()] == [f"{TX}:0"]
    assert_api_error(t.get(t.admin, "/api/deposits", params={"status": "bogus"}), 400,
                     "Invalid status")
    assert_api_error(t.get(t.admin, "/api/deposits", params={"status": "waiting_deposit"}),
                     400, "Invalid status")


def test_errored_deposits(teller: TellerHarness) -> None:
    t = teller
    addr = t.bind(SKY_ADDR)
    assert_json(t.get(t.admin, "/api/deposits/errored"), {"deposits": []})
    t.deposit(addr, 1, "dd" * 32)  # 1 satoshi buys 0 SKY
    t.wait_status(SKY_ADDR, ["done"])
    [record] = assert_json(t.get(t.admin, "/api/deposits/errored"))["deposits"]
    assert (record["status"], record["error"], record["error_kind"]) == \
        ("done", "Skycoin send amount is 0", "zero_amount")
    assert record["sky_sent"] == 0 and record["txid"] == ""


def test_accounting_per_coin(tmp_path: Path) -> None:
    t = start_teller(tmp_path, "[eth_scanner]\nenabled = true\n")
    try:
        assert_json(t.get(t.admin, "/api/accounting"), {
            "received": {"BTC": "0.00000000", "ETH": "0.000000000000000000", "SKY": "0.000000"},
            "sent": "0.000000", "sent_token": "SKY"})
        btc = t.bind(SKY_ADDR)
        eth = t.bind(sky_address(1), coin="ETH")
        assert eth == ETH_ADDRESSES[0].lower()  # the stored normal form
        log.info("0.001 BTC -> 0.5 SKY; 0.25 ETH in wei -> 25 SKY")
        t.deposit(btc, 100_000, "ee" * 32)
        log.info("the scanner reports the EIP-55 form; it matches the stored lower-case one")
        t.deposit(ETH_ADDRESSES[0], 250_000_000_000_000_000, "0x" + "ff" * 32, coin="ETH")
        t.wait_broadcasts(2)
        assert_json(t.get(t.admin, "/api/accounting"), {
            "received": {"BTC": "0.00100000", "ETH": "0.250000000000000000", "SKY": "0.000000"},
            "sent": "25.500000", "sent_token": "SKY"})
    finally:
        t.close()


def test_backup_is_an_lmdb_copy_that_opens(teller: TellerHarness, tmp_path: Path) -> None:
    t = teller
    addr = t.bind(SKY_ADDR)
    t.deposit(addr, 100_000, TX)
    t.wait_status(SKY_ADDR, ["waiting_confirm"])
    resp = t.get(t.admin, "/api/backup")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/octet-stream"
    assert re.fullmatch(r'attachment; filename="teller-\d+\.mdb"',
                        resp.headers["Content-Disposition"])
    assert int(resp.headers["Content-Length"]) == len(resp.content) > 0
    restored = tmp_path / "restored"
    restored.mkdir()
    (restored / "data.mdb").write_bytes(resp.content)
    log.info("open the copy with lmdb and read the deposit back")
    env = lmdb.open(str(restored), readonly=True, lock=False, max_dbs=32)
    try:
        deposits = env.open_db(b"deposits", create=False)
        meta = env.open_db(b"meta", create=False)
        with env.begin() as txn:
            record = loads(txn.get(f"BTC/{TX}:0".encode(), db=deposits))
            version = loads(txn.get(b"schema_version", db=meta))
    finally:
        env.close()
    assert record["status"] == "waiting_confirm" and record["sky_address"] == SKY_ADDR
    assert version == 1


PROM_LINE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? '
                       r"-?\d+(\.\d+)?$")


def test_metrics_in_prometheus_text_format(teller: TellerHarness) -> None:
    t = teller
    addr = t.bind(SKY_ADDR)
    paid_and_confirmed(t, SKY_ADDR, addr, 100_000, TX)
    resp = t.get(t.admin, "/metrics")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    lines = resp.text.splitlines()
    for line in lines:
        assert line.startswith(("# HELP ", "# TYPE ")) or PROM_LINE.match(line), line
    types = {line.split()[2] for line in lines if line.startswith("# TYPE")}
    helps = {line.split()[2] for line in lines if line.startswith("# HELP")}
    assert types == helps
    samples = dict(line.rsplit(" ", 1) for line in lines if not line.startswith("#"))
    assert samples['teller_deposits{coin="BTC",status="done"}'] == "1"
    assert samples['teller_deposits{coin="BTC",status="waiting_send"}'] == "0"
    assert samples["teller_payouts_broadcast_total"] == "1"
    assert samples["teller_payouts_confirmed_total"] == "1"
    assert samples["teller_payouts_open"] == "0"
    assert samples['teller_sender_balance{token="SKY"}'] == "99.500000"
    assert samples['teller_address_pool_remaining{coin="BTC"}'] == "4"


def review(t: TellerHarness, body: Any) -> requests.Response:
    return t.post_json(t.admin, "/api/deposits/review", body)


def test_review_actions_on_a_held_deposit(teller: TellerHarness) -> None:
    t = teller
    addr = t.bind(SKY_ADDR)
    paid_and_confirmed(t, SKY_ADDR, addr, 100_000, TX)
    log.info("a reorg removes the block of a paid deposit: it is held for review")
    assert t.service is not None
    assert t.service.store.orphan_deposits("BTC", ["dummy-1"], "block dummy-1 reorged") == \
        [f"BTC/{TX}:0"]
    t.wait_status(SKY_ADDR, ["needs_review"])
    ident = {"coin_type": "BTC", "deposit_id": f"{TX}:0"}

    log.info("bad review requests change nothing")
    resp = t.http.post(t.admin + "/api/deposits/review", data="{}", timeout=10,
                       headers={"Content-Type": "text/plain"})
    assert_api_error(resp, 415, "Invalid content type")
    resp = t.http.post(t.admin + "/api/deposits/review", data="{", timeout=10,
                       headers={"Content-Type": "application/json"})
    assert_api_error(resp, 400, "Invalid json request body: unexpected EOF")
    assert_api_error(review(t, {**ident, "action": "pay_twice"}), 400,
                     "Invalid action: use one of cancel, mark_done, retry")
    assert_api_error(review(t, {"coin_type": "BTC", "deposit_id": "nope:0",
                                "action": "mark_done"}), 404, "Deposit not found")
    assert t.statuses(SKY_ADDR) == ["needs_review"]

    log.info("retry is refused: the payout confirmed, paying again would pay twice")
    resp = review(t, {**ident, "action": "retry", "note": "tx dead?"})
    assert resp.status_code == 409 and "is confirmed" in resp.text
    assert t.statuses(SKY_ADDR) == ["needs_review"] and len(t.broadcasts()) == 1

    log.info("mark_done and cancel both finish a held deposit without paying")
    done = assert_json(review(t, {**ident, "action": "mark_done", "note": "seen on chain"}))
    assert done["status"] == "done"
    log.info("a deposit that is not held cannot be reviewed: 409")
    resp = review(t, {**ident, "action": "mark_done"})
    assert resp.status_code == 409 and "expected needs_review" in resp.text
    t.service.store.orphan_deposits("BTC", ["dummy-1"], "reorged again")
    cancelled = assert_json(review(t, {**ident, "action": "cancel", "note": "refunded"}))
    assert (cancelled["status"], cancelled["error"], cancelled["error_kind"]) == \
        ("cancelled", "refunded", "cancelled_by_operator")
    assert len(t.broadcasts()) == 1


def test_retry_pays_again_only_when_the_old_payout_is_dead(teller: TellerHarness) -> None:
    t = teller
    tx = "ab" * 32
    addr = t.bind(SKY_ADDR)
    t.deposit(addr, 100_000, tx)
    first = t.wait_broadcasts(1)[0]
    key = f"BTC/{tx}:0"
    ident = {"coin_type": "BTC", "deposit_id": f"{tx}:0"}
    assert t.service is not None
    payout_id = t.service.store.get(key)["payout_id"]

    log.info("while the payout is in flight a retry is refused (it may still confirm)")
    t.service.store.orphan_deposits("BTC", ["dummy-1"], "block dummy-1 reorged")
    resp = review(t, {**ident, "action": "retry"})
    assert resp.status_code == 409 and "is broadcast" in resp.text

    log.info("held as dead while the chain still has it pending: retry is refused")
    t.service.store.mark_needs_review(payout_id, "dropped by the node")
    resp = review(t, {**ident, "action": "retry"})
    assert resp.status_code == 409 and "is pending on chain" in resp.text
    assert t.statuses(SKY_ADDR) == ["needs_review"]

    log.info("the dummy chain really drops it: retry pays again, once")
    assert isinstance(t.service.sender, DummySender) and t.service.sender.drop(first["txid"])
    updated = assert_json(review(t, {**ident, "action": "retry", "note": "tx dead"}))
    assert updated["status"] == "waiting_send" and updated["review_note"] == "retry: tx dead"
    second = t.wait_broadcasts(2)[-1]
    assert second["txid"] != first["txid"]
    t.confirm(second["txid"])
    t.wait_status(SKY_ADDR, ["done"])
    assert len(t.broadcasts()) == 2


def test_admin_errors_are_plain_text(teller: TellerHarness) -> None:
    t = teller
    resp = t.http.post(t.admin + "/api/deposits", timeout=10)
    assert_api_error(resp, 405, "Method Not Allowed")
    assert "GET" in resp.headers["Allow"]
    assert_api_error(t.get(t.admin, "/api/nothing"), 404, "404 page not found")
    assert_api_error(t.get(t.admin, "/api/deposits/review"), 405, "Method Not Allowed")


def test_review_of_a_lone_surrogate_id_is_404_not_500(teller: TellerHarness) -> None:
    """"\ud800" could not be encoded as an LMDB key: UnicodeEncodeError, 500."""
    t = teller
    resp = t.post_json(t.admin, "/api/deposits/review",
                       {"coin_type": "BTC", "deposit_id": "\ud800:0", "action": "cancel"})
    assert_api_error(resp, 404, "Deposit not found")
    resp = t.http.post(t.admin + "/api/deposits/review", data=b"[" * 100_000,
                       headers={"Content-Type": "application/json"}, timeout=10)
    assert_api_error(resp, 400,
                     "Invalid json request body: invalid character '[' exceeded max depth")
