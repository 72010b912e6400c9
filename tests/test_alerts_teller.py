"""Alerts from a running teller (real Service, real redis-server) and from `teller core run`."""

from __future__ import annotations

import subprocess
import sys

from exchangecore import open_core
from matchengine.store import Store, u64
from tests.support.core import ROOT, core_config
from tests.support.service import BTC_ADDRESSES, btcsim_scanner, start_teller
from tests.support.wait import wait_until


def _kinds(server):
    return [(m["kind"], m["state"]) for m in server.messages()]


def test_pool_low_fires_once_and_resolves_when_refilled(tmp_path, redis_server):
    t = start_teller(tmp_path, f"""
[teller]
addr_low_water = 4
[alerts]
redis_addr = "{redis_server.addr}"
check_period = 0.05
""", btc_addresses=BTC_ADDRESSES[:3])
    try:
        wait_until(lambda: ("pool.BTC.low", "firing") in _kinds(redis_server),
                   message="the low-pool alert")
        message = next(m for m in redis_server.messages() if m["kind"] == "pool.BTC.low")
        assert message["service"] == "teller"
        assert "BTC deposit address pool has 3 free addresses" in message["message"]
        t.service.pool.add("BTC", BTC_ADDRESSES[3:6])  # refilled: 6 free >= 4
        wait_until(lambda: ("pool.BTC.low", "resolved") in _kinds(redis_server),
                   message="the resolved message")
        # the notice=WATCH log line and the watched condition are one alert, not two
        assert _kinds(redis_server).count(("pool.BTC.low", "firing")) == 1
    finally:
        t.close()


def test_error_lines_reach_redis_rate_limited(tmp_path, redis_server):
    import logging

    t = start_teller(tmp_path, f"""
[alerts]
redis_addr = "{redis_server.addr}"
min_interval = 3600
""")
    try:
        for i in range(5):
            logging.getLogger("exchanger.processor").error("payout %s rejected", i)
        wait_until(lambda: redis_server.messages(), message="an alert")
        assert _kinds(redis_server) == [("log:exchanger.processor:payout %s rejected", "firing")]
    finally:
        t.close()
    assert t.service is None


def test_teller_refuses_bad_alerts_config_listing_every_problem(tmp_path):
    from tests.support.service import write_address_files, write_config

    write_address_files(tmp_path)
    config = write_config(tmp_path, """
[alerts]
redis_addr = "nohost"
webhook_url = "http://127.0.0.1:9/hook"
mystery = 1
""")
    result = subprocess.run([sys.executable, "-c", "from teller.cli import main; main()", "run",
                             "-c", str(config), "-d", str(tmp_path / "d")],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 2, result.stderr
    for problem in ("alerts.redis_addr: 'nohost' is not host:port", "alerts.mystery: unknown key",
                    "alerts: set webhook_secret_file or webhook_secret_env"):
        assert problem in result.stderr


def test_core_recovery_error_goes_to_the_same_sinks(tmp_path, redis_server):
    data = tmp_path / "core"
    service = open_core(core_config(), data)
    for i in range(3):
        service.call("balance.update", [1, "BTC", "deposit", i, "1", {}])
    service.stop()
    store = Store(data)
    with store.env.begin(write=True, db=store.db["oplog"]) as txn:
        txn.delete(u64(2))  # a gap: the core must refuse to start
    store.close()
    config = tmp_path / "core.toml"
    config.write_text((ROOT / "core.toml").read_text() +
                      f'\n[alerts]\nredis_addr = "{redis_server.addr}"\n')
    result = subprocess.run([sys.executable, "-c", "from teller.cli import main; main()", "core",
                             "run", "-c", str(config), "-d", str(data), "--http-addr",
                             "127.0.0.1:0"], capture_output=True, text=True, timeout=60,
                            cwd=ROOT)
    assert result.returncode == 1, result.stderr
    messages = redis_server.messages()
    assert len(messages) == 1, messages
    assert messages[0]["service"] == "core" and messages[0]["state"] == "firing"
    assert "gap in the operation log" in messages[0]["message"]


def test_core_config_errors_have_the_teller_style(tmp_path):
    config = tmp_path / "core.toml"
    config.write_text((ROOT / "core.toml").read_text() + '\n[alerts]\nredis_addr = "x"\n')
    result = subprocess.run([sys.executable, "-c", "from teller.cli import main; main()", "core",
                             "run", "-c", str(config), "-d", str(tmp_path / "d")],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 2, result.stderr
    assert f"1 problem(s) in {config}:\n  - alerts.redis_addr: 'x' is not host:port" \
        in result.stderr


def test_scanner_outage_fires_and_resolves(tmp_path, redis_server, btcsim):
    """A real bitcoind scanner against the block simulator: the node refuses connections,
    then comes back on the same port."""
    from tests.test_scanner_bitcoind_sim import regtest_address

    t = start_teller(tmp_path, btcsim_scanner(btcsim) + f"""
[alerts]
redis_addr = "{redis_server.addr}"
check_period = 0.05
min_interval = 0.1
""", btc_addresses=[regtest_address(1)])
    try:
        btcsim.control.generate(1)
        wait_until(lambda: t.service.scanners["BTC"].health()["node_reachable"],
                   message="the scanner at the node")
        btcsim.pause()  # connection refused
        wait_until(lambda: ("scanner.BTC.unreachable", "firing") in _kinds(redis_server),
                   message="the unreachable alert")
        btcsim.resume()
        wait_until(lambda: ("scanner.BTC.unreachable", "resolved") in _kinds(redis_server),
                   message="the resolved message")
        firing = next(m for m in redis_server.messages()
                      if m["kind"] == "scanner.BTC.unreachable")
        assert firing["message"].startswith("BTC node")
    finally:
        t.close()


def test_sender_sold_out_fires(tmp_path, redis_server):
    from tests.support.service import SKY_ADDR

    t = start_teller(tmp_path, f"""
[dummy]
sender_coins = "0.1"
[alerts]
redis_addr = "{redis_server.addr}"
check_period = 0.05
""")
    try:
        t.deposit(t.bind(SKY_ADDR), 100_000, "5e" * 32)  # 0.5 SKY owed, 0.1 in the wallet
        wait_until(lambda: ("sender.error", "firing") in _kinds(redis_server),
                   message="the sold-out alert")
        [alert] = [m for m in redis_server.messages() if m["kind"] == "sender.error"]
        assert "sold out" in alert["message"], alert
    finally:
        t.close()


def test_core_failed_commit_alerts(tmp_path, redis_server):
    """The operation log cannot be written (its LMDB environment is gone): the core stops
    acknowledging writes, and the alert reaches Redis through the log handler."""
    import logging

    from alerts.center import AlertCenter
    from alerts.handler import AlertHandler
    from alerts.sinks import RedisSink
    from matchengine.errors import CoreError

    center = AlertCenter([RedisSink("127.0.0.1", redis_server.port, "alert:message")],
                         service="core")
    handler = AlertHandler(center)
    logging.getLogger().addHandler(handler)
    service = open_core(core_config(), tmp_path / "core")
    try:
        service.call("balance.update", [1, "BTC", "deposit", 1, "1", {}])
        service.store.env.close()  # a disk that went away, as far as LMDB can tell
        try:
            service.call("balance.update", [1, "BTC", "deposit", 2, "1", {}])
        except CoreError as exc:
            assert exc.code == 2
        wait_until(lambda: redis_server.messages(), message="the commit alert")
        [alert] = redis_server.messages()
        assert alert["service"] == "core" and alert["state"] == "firing"
        assert "operation log commit failed after operation 1" in alert["message"]
    finally:
        logging.getLogger().removeHandler(handler)
        center.close()
        try:
            service.stop()
        except Exception:  # noqa: BLE001 - its store is closed under it on purpose
            pass
