"""Reorgs of passthrough deposits: no order placed -> cancelled; an order placed (or maybe) -> review.

A real teller (in-process) buys on a real `teller core run`; the dummy scanner records each
deposit from block ``dummy-<height>``; the test then reports that block orphaned through the
ledger's intake, as a chain scanner would, and checks what the operator sees.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tests.support.core_process import CoreProcess, MarketMaker
from tests.support.service import TellerHarness, assert_json, sky_address, start_teller
from tests.support.wait import wait_until
from tests.test_exchanger_passthrough_core import TELLER_USER, passthrough_config, tx

log = logging.getLogger(__name__)


def only(t: TellerHarness) -> dict:
    [record] = t.deposits()
    return record


def orphan(t: TellerHarness, height: int) -> list[str]:
    assert t.service is not None
    return t.service.intake.orphan("BTC", [f"dummy-{height}"], "block left the chain")


def review(t: TellerHarness, record: dict, action: str) -> tuple[int, str]:
    resp = t.post_json(t.admin, "/api/deposits/review", {
        "coin_type": "BTC", "deposit_id": record["deposit_id"], "action": action,
        "note": "test"})
    return resp.status_code, resp.text


def test_waiting_on_an_empty_book_is_cancelled(tmp_path: Path, core: CoreProcess) -> None:
    t = start_teller(tmp_path, passthrough_config(core.url))
    try:
        buyer = sky_address(1)
        t.deposit(t.bind(buyer), 1_000_000, tx(1), height=5)
        wait_until(lambda: "no asks" in only(t)["last_error"], 10, message="the book wait")
        assert orphan(t, 5) == [f"BTC/{tx(1)}:0"]
        record = only(t)
        assert (record["status"], record["error_kind"]) == ("cancelled", "reorged")
        log.info("asks arrive later: the cancelled deposit buys nothing")
        maker = MarketMaker(core)
        maker.fund("1000")
        maker.ask("1000", "0.0001")
        t.service.exchanger.wake()
        assert core.finished_orders(TELLER_USER, "SKYBTC") == []
        assert only(t)["status"] == "cancelled"
    finally:
        t.close()


def test_bought_but_not_paid_goes_to_review(tmp_path: Path, core: CoreProcess) -> None:
    maker = MarketMaker(core)
    maker.fund("1000")
    maker.ask("1000", "0.0001")
    t = start_teller(tmp_path, passthrough_config(core.url, send_enabled=False))
    try:
        t.deposit(t.bind(sky_address(2)), 1_000_000, tx(2), height=6)
        wait_until(lambda: only(t)["status"] == "waiting_send", 10, message="bought")
        assert orphan(t, 6) == [f"BTC/{tx(2)}:0"]
        record = only(t)
        assert (record["status"], record["error_kind"]) == ("needs_review",
                                                            "reorged_after_order")
        assert record["passthrough"]["order"]["final"] is True
        health = assert_json(t.get(t.public, "/api/health"))
        assert "1 deposit(s) need operator review" in health["warnings"]
        log.info("the operator cancels: nothing is paid; the bought SKY stays on the core")
        assert review(t, record, "cancel")[0] == 200
        assert only(t)["status"] == "cancelled"
        assert len(core.finished_orders(TELLER_USER, "SKYBTC")) == 1
    finally:
        t.close()


def test_unknown_order_outcome_goes_to_review_and_retry_is_refused(
        tmp_path: Path, core: CoreProcess) -> None:
    t = start_teller(tmp_path, passthrough_config(core.url))
    try:
        t.deposit(t.bind(sky_address(3)), 1_000_000, tx(3), height=7)
        wait_until(lambda: "no asks" in only(t)["last_error"], 10, message="the book wait")
        log.info("the core goes away: the next place's outcome is unknown (placing_at stays)")
        core.stop()
        wait_until(lambda: "placing the order failed" in only(t)["last_error"], 10,
                   message="the failed place")
        assert only(t)["passthrough"]["placing_at"] > 0
        assert orphan(t, 7) == [f"BTC/{tx(3)}:0"]
        record = only(t)
        assert (record["status"], record["error_kind"]) == ("needs_review",
                                                            "reorged_after_order")
        status, text = review(t, record, "retry")
        assert status == 409 and "not recorded as final" in text
        assert review(t, record, "mark_done")[0] == 200
        assert only(t)["status"] == "done"
    finally:
        t.close()
