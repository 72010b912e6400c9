"""The server side of the web pages, over HTTP against a real teller (no browser).

Where the pages are served (and the console never by the public app), the QR code, the payout
txids, deposit paging/filter/search, the detail view, the CSV download, the per-day totals,
and the review audit log (written with the decision, kept in LMDB across a restart).
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

import pytest

from ledger.query import DepositFilter, DepositQuery
from ledger.status import Status
from tests.support.service import (
    BTC_ADDRESSES,
    SKY_ADDR,
    TellerHarness,
    assert_api_error,
    assert_json,
    sky_address,
    start_teller,
)
from tests.support.web import pay

log = logging.getLogger(__name__)

TX = "edb29a9b561a8d6a6118eb1f724c87f853bf471d7e4f0e9ccb9e1d340235687b"


def test_pages_are_served_where_the_readme_says(web_teller: TellerHarness) -> None:
    t = web_teller
    page = t.get(t.public, "/")
    assert page.status_code == 200 and "buyer.js" in page.text
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert t.get(t.public, "/buyer.js").headers["Content-Type"].startswith("text/javascript")
    log.info("the console's files are not on the public app")
    assert_api_error(t.get(t.public, "/admin/index.html"), 404, "404 page not found")
    assert_api_error(t.get(t.public, "/admin/console.js"), 404, "404 page not found")
    console = t.get(t.admin, "/")
    assert console.status_code == 200 and "/console/console.js" in console.text
    assert "connect-src 'self'" in console.headers["Content-Security-Policy"]
    for name in ("console.js", "api.js", "chart.js", "console.css"):
        assert t.get(t.admin, f"/console/{name}").status_code == 200, name
    assert_api_error(t.get(t.admin, "/console/missing.js"), 404, "404 page not found")
    assert_api_error(t.get(t.admin, "/console/../config.toml"), 404, "404 page not found")


def test_without_the_web_folder_slash_is_a_404_and_says_why(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    harness = start_teller(tmp_path, '[web]\nstatic_dir = "no-such-dir"\n')
    try:
        assert_api_error(harness.get(harness.public, "/"), 404, "404 page not found")
        assert_api_error(harness.get(harness.admin, "/"), 404, "404 page not found")
        assert "is not a directory: the buyer page is not served" in caplog.text
        assert "the operator console is not served" in caplog.text
        log.info("the API itself is unaffected")
        assert harness.get(harness.public, "/api/config").status_code == 200
    finally:
        harness.close()


def test_qr_code_is_svg_of_the_address(web_teller: TellerHarness) -> None:
    t = web_teller
    resp = t.get(t.public, "/api/qr.svg", params={"data": BTC_ADDRESSES[0]})
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "image/svg+xml"
    assert resp.text.startswith("<svg") and f"<title>{BTC_ADDRESSES[0]}</title>" in resp.text
    for bad in ("", "<script>", "x" * 129):
        assert_api_error(t.get(t.public, "/api/qr.svg", params={"data": bad}), 400,
                         "Invalid data: a deposit address is expected")


def test_payout_txids_by_status_seq(web_teller: TellerHarness) -> None:
    t = web_teller
    assert_json(t.get(t.public, "/api/status/payouts", params={"skyaddr": SKY_ADDR}),
                {"payouts": []})
    t.bind(SKY_ADDR)  # seq 0 stays waiting_deposit
    addr = t.bind(SKY_ADDR)
    t.deposit(addr, 100_000, TX)
    txid = t.wait_broadcasts(1)[0]["txid"]
    t.confirm(txid)
    t.wait_status(SKY_ADDR, ["waiting_deposit", "done"])
    assert_json(t.get(t.public, "/api/status/payouts", params={"skyaddr": SKY_ADDR}),
                {"payouts": [{"seq": 1, "txid": txid}]})
    log.info("/api/status keeps the Go teller's entry shape (no txid)")
    entries = t.get(t.public, "/api/status", params={"skyaddr": SKY_ADDR}).json()["statuses"]
    assert [sorted(e) for e in entries] == [["coin_type", "seq", "status", "updated_at"]] * 2
    log.info("bad addresses get /api/status's own messages")
    for raw in ("", "bogus"):
        expected = t.get(t.public, "/api/status", params={"skyaddr": raw})
        resp = t.get(t.public, "/api/status/payouts", params={"skyaddr": raw})
        assert (resp.status_code, resp.text) == (expected.status_code, expected.text)
        assert resp.status_code == 400


def test_deposit_paging_filter_and_search(web_teller: TellerHarness) -> None:
    t = web_teller
    txids = {}
    for i in range(4):
        txids[i] = pay(t, sky_address(i), 10_000 * (i + 1), f"{i:02x}" * 32)
    addr = t.bind(SKY_ADDR)
    assert t.service is not None
    t.service.exchanger.stop()  # keep the next deposit in waiting_decide
    t.deposit(addr, 1_000, "ff" * 32)
    log.info("without the new parameters the Go shape stays: every deposit, oldest first")
    body = assert_json(t.get(t.admin, "/api/deposits"))
    assert list(body) == ["deposits"] and [d["seq"] for d in body["deposits"]] == [1, 2, 3, 4, 5]

    page = assert_json(t.get(t.admin, "/api/deposits", params={"limit": 2}))
    assert (page["total"], page["offset"], page["limit"]) == (5, 0, 2)
    assert [d["seq"] for d in page["deposits"]] == [5, 4], "newest first"
    assert page["deposits"][1]["deposit_value_text"] == "0.00040000"
    page = assert_json(t.get(t.admin, "/api/deposits", params={"limit": 2, "offset": 4}))
    assert [d["seq"] for d in page["deposits"]] == [1]
    page = assert_json(t.get(t.admin, "/api/deposits", params={"status": "done", "limit": 10}))
    assert page["total"] == 4 and [d["seq"] for d in page["deposits"]] == [4, 3, 2, 1]
    page = assert_json(t.get(t.admin, "/api/deposits",
                             params={"status": "waiting_decide", "coin_type": "BTC"}))
    assert page["total"] == 1 and page["deposits"][0]["deposit_id"] == f"{'ff' * 32}:0"
    assert assert_json(t.get(t.admin, "/api/deposits", params={"coin_type": "ETH"}))[
        "total"] == 0

    log.info("search: receive address, deposit address (exact), deposit txid (prefix)")
    def search(q: str, **extra: str) -> list[int]:
        found = assert_json(t.get(t.admin, "/api/deposits", params={"q": q, **extra}))
        assert found["total"] == len(found["deposits"])
        return [d["seq"] for d in found["deposits"]]

    assert search(sky_address(2)) == [3]
    assert search(addr) == [5]
    assert search("03" * 4) == [4]
    assert search("03" * 2) == [], "a txid prefix under 6 characters matches nothing"
    assert search(sky_address(2), status="waiting_send") == []
    assert search("nothing-like-this") == []

    for params, message in [({"offset": "-1"}, "Invalid offset: an integer 0..1000000000 is "
                             "expected"),
                            ({"limit": "x"}, "Invalid limit: an integer 0..500 is expected"),
                            ({"limit": "501"}, "Invalid limit: an integer 0..500 is expected"),
                            ({"coin_type": "DOGE"}, "Invalid coin_type"),
                            ({"limit": "5", "status": "bogus"}, "Invalid status"),
                            ({"q": "x" * 201}, "Invalid q: at most 200 characters")]:
        assert_api_error(t.get(t.admin, "/api/deposits", params=params), 400, message)


def test_detail_csv_and_daily(web_teller: TellerHarness) -> None:
    t = web_teller
    txid = pay(t, SKY_ADDR, 100_000, TX)
    ident = {"coin_type": "BTC", "deposit_id": f"{TX}:0"}
    detail = assert_json(t.get(t.admin, "/api/deposits/detail", params=ident))
    assert detail["deposit"]["txid"] == txid and detail["payout"]["signed"]["txid"] == txid
    assert detail["payout"]["status"] == "confirmed" and detail["audit"] == []
    assert_api_error(t.get(t.admin, "/api/deposits/detail",
                           params={"coin_type": "BTC", "deposit_id": "nope:0"}),
                     404, "Deposit not found")

    resp = t.get(t.admin, "/api/deposits.csv", params={"status": "done"})
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert 'attachment; filename="teller-deposits-' in resp.headers["Content-Disposition"]
    [row] = list(csv.DictReader(io.StringIO(resp.text)))
    assert (row["deposit_id"], row["deposit_value"], row["sky_sent"], row["txid"]) == \
        (f"{TX}:0", "0.00100000", "0.500000", txid)
    assert list(csv.reader(io.StringIO(t.get(t.admin, "/api/deposits.csv",
                                             params={"status": "cancelled"}).text)))[1:] == []
    assert_api_error(t.get(t.admin, "/api/deposits.csv", params={"coin_type": "X"}), 400,
                     "Invalid coin_type")

    days = assert_json(t.get(t.admin, "/api/deposits/daily"))
    [day] = days["days"]
    assert (day["received"], day["received_text"], day["sent"], day["sent_text"]) == \
        (1, {"BTC": "0.00100000"}, 1, "0.500000")
    assert days["token"] == "SKY"


def test_review_actions_are_audited_and_kept(web_teller: TellerHarness) -> None:
    t = web_teller
    pay(t, SKY_ADDR, 100_000, TX)
    assert t.service is not None
    t.service.store.orphan_deposits("BTC", ["dummy-1"], "block dummy-1 reorged")
    t.wait_status(SKY_ADDR, ["needs_review"])
    ident = {"coin_type": "BTC", "deposit_id": f"{TX}:0"}
    key = f"BTC/{TX}:0"

    log.info("a refused retry is recorded as refused and changes nothing else")
    resp = t.post_json(t.admin, "/api/deposits/review",
                       {**ident, "action": "retry", "note": "dead?", "operator": "bob"})
    assert resp.status_code == 409
    log.info("a decision is recorded with it, in the same transaction")
    done = assert_json(t.post_json(t.admin, "/api/deposits/review",
                                   {**ident, "action": "mark_done", "note": "seen on chain",
                                    "operator": "alice"}))
    assert done["status"] == "done"
    resp = t.post_json(t.admin, "/api/deposits/review", {**ident, "action": "cancel"})
    assert resp.status_code == 409
    log.info("bad requests are not actions: nothing is recorded")
    assert t.post_json(t.admin, "/api/deposits/review", {**ident, "action": "x"}).status_code \
        == 400
    assert t.post_json(t.admin, "/api/deposits/review",
                       {**ident, "operator": 7, "action": "cancel"}).status_code == 400

    def audit() -> list[dict]:
        body = assert_json(t.get(t.admin, "/api/audit"))
        assert body["total"] == len(body["entries"])
        return body["entries"]

    entries = audit()
    assert [(e["seq"], e["action"], e["outcome"], e["who"]["operator"]) for e in entries] == [
        (3, "cancel", "refused", "unnamed"), (2, "mark_done", "done", "alice"),
        (1, "retry", "refused", "bob")]
    assert entries[1]["detail"] == "status is now done" and entries[1]["note"] == "seen on chain"
    assert entries[1]["who"]["remote_addr"] == "127.0.0.1" and entries[1]["deposit"] == key
    assert "is confirmed" in entries[2]["detail"]
    assert entries[0]["detail"] == f"deposit {key} is done, expected needs_review"
    assert isinstance(entries[1]["at"], int)
    page = assert_json(t.get(t.admin, "/api/audit", params={"limit": 1, "offset": 1}))
    assert (page["total"], [e["seq"] for e in page["entries"]]) == (3, [2])
    assert assert_json(t.get(t.admin, "/api/audit", params={"deposit": "BTC/x:0"}))[
        "entries"] == []
    detail = assert_json(t.get(t.admin, "/api/deposits/detail", params=ident))
    assert [e["seq"] for e in detail["audit"]] == [3, 2, 1]

    log.info("the log is in the data dir's LMDB: a restart keeps it")
    t.restart()
    assert audit() == entries
    assert_api_error(t.get(t.admin, "/api/audit", params={"limit": "-2"}), 400,
                     "Invalid limit: an integer 0..500 is expected")


def test_query_merges_statuses_newest_first(web_teller: TellerHarness) -> None:
    t = web_teller
    """Pages from the index walk equal the full sorted list, at every offset and filter."""
    assert t.service is not None
    t.service.exchanger.stop()  # the statuses below are set by hand through the store
    store = t.service.store
    addr = t.bind(SKY_ADDR)
    for i in range(60):
        t.deposit(addr, 1_000 + i, f"{i:064x}")
    keys = [f"BTC/{i:064x}:0" for i in range(60)]
    store.transition_many(keys[::3], Status.WAITING_DECIDE, Status.WAITING_SEND)
    store.transition_many(keys[::6], Status.WAITING_SEND, Status.NEEDS_REVIEW)
    query = DepositQuery(t.service.storage, store)
    everything = sorted(store.all_deposits(), key=lambda r: -r["seq"])
    for status in (None, Status.WAITING_DECIDE, Status.WAITING_SEND, Status.NEEDS_REVIEW):
        expected = [r["seq"] for r in everything if status is None or r["status"] == status]
        flt = DepositFilter(status=status)
        got: list[int] = []
        for offset in range(0, 70, 7):
            page = query.page(flt, offset, 7)
            assert page["total"] == len(expected)
            got.extend(r["seq"] for r in page["deposits"])
        assert got == expected, status
        assert [r["seq"] for r in query.iter_all(flt, chunk=8)] == expected
    log.info("a coin filter walks the merged index; a search sorts its matches the same way")
    seqs = [r["seq"] for r in everything]
    assert [r["seq"] for r in query.page(DepositFilter(coin_type="BTC"), 5, 10)["deposits"]] \
        == seqs[5:15]
    assert query.page(DepositFilter(coin_type="ETH"), 0, 10) == {
        "deposits": [], "total": 0, "offset": 0, "limit": 10}
    found = query.page(DepositFilter(q=addr), 50, 20)
    assert found["total"] == 60 and [r["seq"] for r in found["deposits"]] == seqs[50:]
    review = DepositFilter(status=Status.NEEDS_REVIEW, q=SKY_ADDR)
    assert [r["seq"] for r in query.iter_all(review)] == \
        [r["seq"] for r in everything if r["status"] == Status.NEEDS_REVIEW]
