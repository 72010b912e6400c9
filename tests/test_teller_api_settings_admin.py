"""Runtime settings through the admin API on a real teller: validated, persisted, audited."""

from __future__ import annotations

from tests.support.service import (
    SKY_ADDR,
    assert_api_error,
    assert_json,
    start_teller,
)

RATE = "sky_exchanger.sky_btc_exchange_rate"


def _settings(t):
    return assert_json(t.get(t.admin, "/api/settings"))["settings"]


def _audit(t):
    return assert_json(t.get(t.admin, "/api/settings/audit"))["entries"]


def _btc_rate_display(t):
    return assert_json(t.get(t.public, "/api/config"))["deposits"]["btc"]["fixed_exchange_rate"]


def test_set_rate_applies_and_is_shown_with_its_source(teller):
    assert _settings(teller)[RATE] == {"value": "500", "source": "file", "file_value": "500"}
    body = assert_json(teller.post_json(teller.admin, "/api/settings",
                                        {"key": "sky_btc_exchange_rate", "value": "600"}))
    [entry] = body["changed"]
    assert (entry["key"], entry["old"], entry["new"], entry["action"]) == \
        (RATE, "500", "600", "set")
    assert entry["by"] == "admin API 127.0.0.1"
    assert _btc_rate_display(teller) == "600.000000"  # the Go format, as "500.000000"
    config = assert_json(teller.get(teller.public, "/api/config"))
    assert config["settings"][RATE]["source"] == "runtime"
    assert config["settings"][RATE]["value"] == "600"
    assert config["settings"][RATE]["file_value"] == "500"
    assert [e["new"] for e in _audit(teller)] == ["600"]


def test_rate_change_never_alters_recorded_deposits(teller):
    addr = teller.bind(SKY_ADDR)
    teller.deposit(addr, 100_000, "aa" * 32)  # 0.001 BTC at 500: recorded with rate 500
    assert_json(teller.post_json(teller.admin, "/api/settings",
                                 {"key": RATE, "value": "1000"}))
    teller.deposit(addr, 100_000, "bb" * 32)  # first seen after the change: rate 1000
    teller.deposit(addr, 100_000, "aa" * 32)  # a replay of the first: still 500
    sent = {}
    for b in teller.wait_broadcasts(2):
        teller.confirm(b["txid"])
        sent[b["txid"]] = b["outputs"][0]["coins"]
    teller.wait_status(SKY_ADDR, ["done", "done"])
    records = {d["deposit_id"].split(":")[0]: d for d in teller.deposits()}
    assert records["aa" * 32]["conversion_rate"] == "500"
    assert records["bb" * 32]["conversion_rate"] == "1000"
    assert sorted(r["sky_sent"] for r in records.values()) == [500_000, 1_000_000]


def test_bad_values_are_refused_with_every_problem_and_change_nothing(teller):
    before = _settings(teller)
    resp = teller.post_json(teller.admin, "/api/settings", {"settings": {
        "max_decimals": 9, "sky_btc_exchange_rate": "-1", "max_bound_addrs": "x"}})
    assert resp.status_code == 400
    assert "teller.max_bound_addrs: expected an integer" in resp.text
    resp = teller.post_json(teller.admin, "/api/settings", {"settings": {
        "max_decimals": 9, "sky_btc_exchange_rate": "-1"}})
    assert resp.status_code == 400, resp.text
    assert "sky_exchanger.max_decimals: must be between 0 and 3" in resp.text
    assert "sky_exchanger.sky_btc_exchange_rate:" in resp.text
    assert_api_error(teller.post_json(teller.admin, "/api/settings",
                                      {"key": "web.http_addr", "value": "x"}), 400,
                     "Invalid setting: web.http_addr: not a runtime setting (one of "
                     "sky_exchanger.sky_btc_exchange_rate, sky_exchanger.sky_eth_exchange_rate, "
                     "sky_exchanger.sky_ltc_exchange_rate, eth_tokens.*.rate, "
                     "teller.bind_enabled, sky_exchanger.send_enabled, teller.max_bound_addrs, "
                     "sky_exchanger.max_decimals, passthrough.minimum_volume.*)")
    assert_api_error(teller.post_json(teller.admin, "/api/settings", {"key": RATE}), 400,
                     "Missing key or value")
    assert_api_error(teller.post_json(teller.admin, "/api/settings",
                                      {"key": RATE, "value": 0.5}), 400,
                     f"Invalid setting: {RATE}: expected a rate such as \"500\", \"0.5\" or "
                     "\"2/3\"")
    resp = teller.http.post(teller.admin + "/api/settings", data="{}", timeout=10)
    assert_api_error(resp, 415, "Invalid content type")
    assert _settings(teller) == before and _audit(teller) == []


def test_switches_and_limits_take_effect_at_once(teller):
    assert_json(teller.post_json(teller.admin, "/api/settings", {"settings": {
        "bind_enabled": False, "max_bound_addrs": 1}}))
    assert_api_error(teller.post_json(teller.public, "/api/bind",
                                      {"skyaddr": SKY_ADDR, "coin_type": "BTC"}), 403,
                     "Address binding is disabled")
    assert_json(teller.post_json(teller.admin, "/api/settings",
                                 {"key": "bind_enabled", "value": "true"}))
    addr = teller.bind(SKY_ADDR)
    resp = teller.post_json(teller.public, "/api/bind", {"skyaddr": SKY_ADDR, "coin_type": "BTC"})
    assert resp.status_code == 409  # max_bound_addrs = 1 now
    assert_json(teller.post_json(teller.admin, "/api/settings",
                                 {"key": "send_enabled", "value": False}))
    teller.deposit(addr, 100_000, "cc" * 32)
    teller.wait_status(SKY_ADDR, ["waiting_send"])
    assert teller.broadcasts() == []
    assert_json(teller.post_json(teller.admin, "/api/settings/reset", {"key": "send_enabled"}))
    teller.wait_broadcasts(1)
    config = assert_json(teller.get(teller.public, "/api/config"))
    assert (config["enabled"], config["max_bound_addrs"]) == (True, 1)


def test_overrides_survive_a_restart_until_reset(tmp_path):
    t = start_teller(tmp_path)
    try:
        assert_json(t.post_json(t.admin, "/api/settings", {"settings": {
            "sky_btc_exchange_rate": "2/3", "max_decimals": 2}}))
        t.restart()
        assert _btc_rate_display(t) == "0.660000"
        assert _settings(t)["sky_exchanger.max_decimals"]["source"] == "runtime"
        reset = assert_json(t.post_json(t.admin, "/api/settings/reset", {"key": RATE}))
        assert reset["changed"][0]["old"] == "2/3" and reset["changed"][0]["new"] == "500"
        assert _btc_rate_display(t) == "500.000000"
        again = assert_json(t.post_json(t.admin, "/api/settings/reset", {"key": RATE}))
        assert again["changed"] == []  # nothing left to reset: no audit entry
        t.restart()
        assert _settings(t)[RATE]["source"] == "file"
        assert [(e["key"], e["action"]) for e in _audit(t)] == [
            (RATE, "set"), ("sky_exchanger.max_decimals", "set"), (RATE, "reset")]
        assert [e["seq"] for e in _audit(t)] == [1, 2, 3]
    finally:
        t.close()


def test_token_rates_are_settings_too(tmp_path):
    t = start_teller(tmp_path, """
[eth_scanner]
enabled = true
[[eth_tokens]]
symbol = "TUSD"
address = "0x00000000000000000000000000000000000000aa"
decimals = 6
rate = "3"
""")
    try:
        assert _settings(t)["eth_tokens.TUSD.rate"]["value"] == "3"
        assert_json(t.post_json(t.admin, "/api/settings",
                                {"key": "eth_tokens.TUSD.rate", "value": "4"}))
        config = assert_json(t.get(t.public, "/api/config"))
        assert config["deposits"]["tusd"]["fixed_exchange_rate"] == "4.000000"
        resp = t.post_json(t.admin, "/api/settings", {"key": "eth_tokens.NOPE.rate",
                                                      "value": "4"})
        assert resp.status_code == 400 and "not a runtime setting of this teller" in resp.text
    finally:
        t.close()


def test_a_new_key_is_one_registry_entry(tmp_path, monkeypatch):
    """What the passthrough minimum will be: a decimal key, added by one Setting entry."""
    import ledger.settings as registry

    monkeypatch.setattr(registry, "SETTINGS", (*registry.SETTINGS, registry.Setting(
        "sky_exchanger.c2cx.btc_minimum_volume", "decimal", "test: a Decimal config key")))
    t = start_teller(tmp_path)
    try:
        key = "sky_exchanger.c2cx.btc_minimum_volume"
        assert _settings(t)[key] == {"value": "0.005", "source": "file", "file_value": "0.005"}
        body = assert_json(t.post_json(t.admin, "/api/settings", {"key": key, "value": "0.01"}))
        assert (body["changed"][0]["old"], body["changed"][0]["new"]) == ("0.005", "0.01")
        config = assert_json(t.get(t.public, "/api/config"))
        assert config["deposits"]["btc"]["passthrough_minimum_volume"] == "0.01"
        resp = t.post_json(t.admin, "/api/settings", {"key": key, "value": "lots"})
        assert resp.status_code == 400 and "expected a decimal number" in resp.text
        t.restart()
        assert _settings(t)[key]["value"] == "0.01"
    finally:
        t.close()
