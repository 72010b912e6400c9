"""GET /api/config and /api/health: the transcript's shapes, and health as the outage signal."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from tests.support.service import (
    SKY_ADDR,
    TellerHarness,
    assert_api_error,
    assert_json,
    sky_address,
    start_teller,
)
from tests.support.wait import wait_until

log = logging.getLogger(__name__)

TRANSCRIPT_CONFIG = {
    "buy_method": "direct",
    "deposits": {
        "btc": {"confirmations_required": 1, "enabled": True,
                "fixed_exchange_rate": "500.000000", "passthrough_minimum_volume": "0.005"},
        "eth": {"confirmations_required": 1, "enabled": False,
                "fixed_exchange_rate": "100.000000", "passthrough_minimum_volume": "0"},
        "sky": {"confirmations_required": 0, "enabled": False,
                "fixed_exchange_rate": "1", "passthrough_minimum_volume": "0"},
    },
    "enabled": True,
    "max_bound_addrs": 2,
    "max_decimals": 3,
}


def test_config_matches_the_transcript(teller: TellerHarness) -> None:
    body = assert_json(teller.get(teller.public, "/api/config"))
    log.info("the Go teller's keys are all there with its values; additions are new keys only")
    deposits = body.pop("deposits")
    assert {k: body[k] for k in TRANSCRIPT_CONFIG if k != "deposits"} == \
        {k: v for k, v in TRANSCRIPT_CONFIG.items() if k != "deposits"}
    assert {c: deposits[c] for c in ("btc", "eth", "sky")} == TRANSCRIPT_CONFIG["deposits"]
    assert body["payout_token"] == "SKY"


def test_config_shows_the_truncated_rate_and_bind_switch(tmp_path: Path) -> None:
    t = start_teller(tmp_path, """
[teller]
bind_enabled = false
max_bound_addrs = 7
[sky_exchanger]
sky_btc_exchange_rate = "2/3"
sky_eth_exchange_rate = "123.4567"
max_decimals = 2
[eth_scanner]
enabled = true
confirmations_required = 12
""")
    try:
        body = assert_json(t.get(t.public, "/api/config"))
        assert body["enabled"] is False
        assert body["max_bound_addrs"] == 7
        assert body["max_decimals"] == 2
        assert body["deposits"]["btc"]["fixed_exchange_rate"] == "0.660000"
        assert body["deposits"]["eth"] == {
            "enabled": True, "confirmations_required": 12,
            "fixed_exchange_rate": "123.450000", "passthrough_minimum_volume": "0"}
    finally:
        t.close()


def test_health_shape(teller: TellerHarness) -> None:
    body = assert_json(teller.get(teller.public, "/api/health"))
    assert re.fullmatch(r"(\d+h)?(\d+m)?(\d+(\.\d+)?s|\d+ms)", body.pop("uptime"))
    assert body.pop("version")
    assert body["status"] == "OK"
    assert body["application"] == "teller"
    assert body["exchange"] == {
        "balance": {"coins": "100.000000", "hours": "100", "token": "SKY"},
        "buy_method": "direct", "deposit_error_count": 0,
        "processor_error": "", "sender_error": ""}
    assert body["address_pools"] == {"BTC": 5}
    assert body["warnings"] == []


def test_sold_out_shows_in_health_and_does_not_block_a_smaller_deposit(tmp_path: Path) -> None:
    t = start_teller(tmp_path, '[dummy]\nsender_coins = "1"\n[teller]\nmax_bound_addrs = 0\n')
    try:
        big, small = t.bind(SKY_ADDR), t.bind(sky_address(2))
        log.info("0.01 BTC buys 5 SKY; the hot wallet holds 1: sold out")
        t.deposit(big, 1_000_000, "aa" * 32)
        sender_error = wait_until(
            lambda: assert_json(t.get(t.public, "/api/health"))["exchange"]["sender_error"],
            message="sender_error set")
        assert "sold out" in sender_error
        log.info("a later 0.001 BTC deposit (0.5 SKY) is paid anyway")
        t.deposit(small, 100_000, "bb" * 32)
        t.wait_status(sky_address(2), ["waiting_confirm"])
        log.info("the big one is still held, and health still says why")
        health = assert_json(t.get(t.public, "/api/health"))
        assert "sold out" in health["exchange"]["sender_error"]
        assert any("sold out" in w for w in health["warnings"])
        assert health["exchange"]["balance"]["coins"] == "0.500000"
        [payout] = t.broadcasts()
        assert payout["outputs"] == [{"address": sky_address(2), "coins": "0.500000"}]
        assert t.statuses(SKY_ADDR) == ["waiting_send"]
        [held] = t.deposits("waiting_send")
        assert held["last_error"].startswith("sold out") and held["attempts"] >= 1
    finally:
        t.close()


def test_zero_amount_counts_as_deposit_error(teller: TellerHarness) -> None:
    addr = teller.bind(SKY_ADDR)
    log.info("1 satoshi at 500 SKY/BTC is 0.000005 SKY: 0 with max_decimals 3")
    teller.deposit(addr, 1, "cc" * 32)
    teller.wait_status(SKY_ADDR, ["done"])
    health = assert_json(teller.get(teller.public, "/api/health"))
    assert health["exchange"]["deposit_error_count"] == 1
    assert teller.broadcasts() == []


def test_non_api_methods_and_paths_get_plain_text_errors(teller: TellerHarness) -> None:
    t = teller
    resp = t.http.post(t.public + "/api/config", timeout=10)
    assert_api_error(resp, 405, "Invalid request method")
    assert "GET" in resp.headers["Allow"]
    assert_api_error(t.http.delete(t.public + "/api/health", timeout=10), 405,
                     "Invalid request method")
    assert_api_error(t.get(t.public, "/api/nope"), 404, "404 page not found")
