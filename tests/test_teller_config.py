"""config.toml: the Go teller's keys and defaults load, with its two wrong defaults fixed;
validation lists every problem (unknown keys included) in one ConfigError."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from teller.config import Config, ConfigError, load_config, parse_config, parse_duration

# A config in the Go teller's format, every key it knew (reference/teller.md §7).
GO_CONFIG = """
debug = true
profile = false
logfile = "./teller.log"
dbfile = "teller.db"
pidfile = ""
btc_addresses = "btc_addresses.json"
eth_addresses = "eth_addresses.txt"
sky_addresses = ""

[teller]
max_bound_addrs = 5
bind_enabled = true

[sky_rpc]
address = "127.0.0.1:6430"

[btc_rpc]
server = "127.0.0.1:8334"
user = "rpcuser"
pass = "rpcpass"
cert = "btcd.cert"

[eth_rpc]
server = "127.0.0.1"
port = 8545

[btc_scanner]
enabled = true
scan_period = "20s"
initial_scan_height = 492478
confirmations_required = 1

[eth_scanner]
enabled = false
scan_period = "5s"
initial_scan_height = 4654259
confirmations_required = 1

[sky_scanner]
enabled = false
scan_period = "5s"
initial_scan_height = 17000
confirmations_required = 0

[sky_exchanger]
sky_btc_exchange_rate = "500"
sky_eth_exchange_rate = "100"
sky_sky_exchange_rate = "1"
max_decimals = 3
tx_confirmation_check_wait = "5s"
wallet = "example.wlt"
send_enabled = true
buy_method = "direct"

[sky_exchanger.c2cx]
key = ""
secret = ""
request_failure_wait = "10s"
ratelimit_wait = "30s"
check_order_wait = "2s"
btc_minimum_volume = 0.005

[web]
behind_proxy = false
http_addr = "127.0.0.1:7071"
https_addr = ""
static_dir = "./web/build"
throttle_max = 60
throttle_duration = "60s"
auto_tls_host = ""
tls_cert = ""
tls_key = ""
cors_allowed = []

[admin_panel]
host = "127.0.0.1:7711"

[dummy]
scanner = true
sender = true
http_addr = "127.0.0.1:4121"
"""

MINIMAL = """
btc_addresses = "btc.txt"
[sky_exchanger]
sky_btc_exchange_rate = "500"
[dummy]
scanner = true
sender = true
"""


@pytest.fixture
def in_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in a directory holding the address files the configs name."""
    for name in ("btc.txt", "btc_addresses.json", "eth_addresses.txt"):
        (tmp_path / name).write_text("")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return info.value.problems


def test_a_go_teller_config_loads(in_dir: Path) -> None:
    config = parse_config(GO_CONFIG)
    assert config.btc_rpc.password == "rpcpass" and config.btc_rpc.cert == "btcd.cert"
    assert config.eth_rpc.endpoint == "http://127.0.0.1:8545"
    assert config.btc_scanner.scan_period == 20 and config.eth_scanner.scan_period == 5
    assert config.sky_exchanger.tx_confirmation_check_wait == 5
    assert config.sky_exchanger.c2cx.btc_minimum_volume == Decimal("0.005")
    assert config.sky_exchanger.c2cx.ratelimit_wait == 30
    assert config.web.static_dir == "./web/build"
    assert config.sender_backend == "dummy"


def test_defaults_are_the_go_teller_ones_with_two_fixes(in_dir: Path) -> None:
    config = parse_config(MINIMAL)
    log_defaults = (config.debug, config.logfile, config.dbfile, config.pidfile)
    assert log_defaults == (True, "./teller.log", "teller.db", "")
    log_fixed = (config.teller.max_bound_addrs, config.sky_exchanger.send_enabled)
    assert log_fixed == (5, True)  # Go: 0 (unlimited) and false, both by a wrong key
    assert config.teller.bind_enabled is True
    ex = config.sky_exchanger
    assert (ex.max_decimals, ex.tx_confirmation_check_wait, ex.buy_method) == (3, 5, "direct")
    assert (ex.c2cx.request_failure_wait, ex.c2cx.ratelimit_wait, ex.c2cx.check_order_wait) == \
        (10, 30, 2)
    assert ex.c2cx.btc_minimum_volume == Decimal("0.005")
    btc, eth, sky = config.btc_scanner, config.eth_scanner, config.sky_scanner
    assert (btc.enabled, btc.scan_period, btc.initial_scan_height,
            btc.confirmations_required) == (True, 20, 492478, 1)
    assert (eth.enabled, eth.scan_period, eth.initial_scan_height,
            eth.confirmations_required) == (False, 5, 4654259, 1)
    assert (sky.enabled, sky.scan_period, sky.initial_scan_height,
            sky.confirmations_required) == (False, 5, 17000, 0)
    web = config.web
    assert (web.http_addr, web.behind_proxy, web.throttle_max, web.throttle_duration,
            web.cors_allowed) == ("127.0.0.1:7071", False, 60, 60, [])
    assert config.admin_panel.host == "127.0.0.1:7711"
    assert config.dummy.http_addr == "127.0.0.1:4121"
    assert config.sky_rpc.address == "127.0.0.1:6430"


def test_the_shipped_config_loads() -> None:
    config = load_config(Path(__file__).resolve().parents[1] / "config.toml")
    assert config.dummy.scanner and config.dummy.sender
    assert config.teller.max_bound_addrs == 5 and config.sky_exchanger.send_enabled


@pytest.mark.parametrize(("written", "rate"), [
    ('"500"', "500"),
    ("500", "500"),
    ('"0.5"', "0.5"),
    ("0.5", "0.5"),
    ('"2/3"', "2/3"),
])
def test_rates_int_decimal_or_rational(in_dir: Path, written: str, rate: str) -> None:
    text = MINIMAL.replace('sky_btc_exchange_rate = "500"', f"sky_btc_exchange_rate = {written}")
    assert parse_config(text).rate_for("BTC") == rate


@pytest.mark.parametrize(("text", "seconds"), [
    ("20s", 20), ("1m30s", 90), ("500ms", 0.5), ("1h", 3600), ("1.5s", 1.5), (7, 7),
])
def test_go_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "20", "1x", "s", "1m 30s", True])
def test_bad_durations(text: str | bool) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_every_problem_is_listed_at_once(in_dir: Path) -> None:
    text = """
btc_addresses = "missing.txt"
bogus_top = 1
[teller]
max_bound_addrs = -1
[sky_exchanger]
sky_btc_exchange_rate = "0"
max_decimals = 7
buy_method = "barter"
[btc_scanner]
confirmations_required = -2
scan_period = "soon"
[web]
throttle_max = "many"
colour = "blue"
[dummy]
scanner = true
sender = true
"""
    problems = problems_of(text)
    for expected in [
        "bogus_top: unknown key",
        "web.colour: unknown key",
        "teller.max_bound_addrs: must be >= 0 (0 = unlimited)",
        "sky_exchanger.max_decimals: must be between 0 and 3",
        "sky_exchanger.buy_method: 'barter' is not one of direct, passthrough",
        "btc_scanner.confirmations_required: must be >= 0",
        "web.throttle_max: expected an integer",
        "btc_addresses: file 'missing.txt' does not exist",
    ]:
        assert any(p.startswith(expected) for p in problems), (expected, problems)
    assert any(p.startswith("btc_scanner.scan_period: invalid duration") for p in problems)
    assert any(p.startswith("sky_exchanger.sky_btc_exchange_rate:") for p in problems)
    assert len(problems) >= 10
    message = str(ConfigError(problems))
    assert message.startswith(f"{len(problems)} problem(s):")
    assert all(f"  - {p}" in message for p in problems)


def test_cross_field_rules(in_dir: Path) -> None:
    problems = problems_of("""
btc_addresses = "btc.txt"
[sky_exchanger]
sky_btc_exchange_rate = "500"
[eth_scanner]
enabled = true
[web]
https_addr = "0.0.0.0:443"
http_addr = "nowhere"
""")
    assert "eth_addresses: required while eth_scanner is enabled (a .json or .txt file of " \
        "deposit addresses)" in problems
    assert "sky_exchanger.sky_eth_exchange_rate: required while eth_scanner is enabled" \
        in problems
    assert "btc_rpc: set user and pass, or cookie_file" in problems
    assert any(p.startswith("eth_rpc: set url, or server and port") for p in problems)
    assert any(p.startswith("web.https_addr/auto_tls_host/tls_cert/tls_key") for p in problems)
    assert "web.http_addr: 'nowhere' is not host:port" in problems
    assert any(p.startswith("sky_rpc.wallet_id: required with the skycoin sender")
               for p in problems)


def test_sections_must_be_tables_and_toml_must_parse(in_dir: Path) -> None:
    assert "web: expected a [web] table" in problems_of("web = 5\n" + MINIMAL)
    [problem] = problems_of("this is = not toml =")
    assert problem.startswith("invalid TOML:")


def test_load_config_reports_the_file_and_accepts_a_missing_suffix(in_dir: Path) -> None:
    (in_dir / "mine.toml").write_text(MINIMAL)
    assert isinstance(load_config(in_dir / "mine"), Config)
    with pytest.raises(ConfigError) as info:
        load_config(in_dir / "absent.toml")
    assert str(in_dir / "absent.toml") in str(info.value)
    assert info.value.problems[0].startswith("cannot read config file")


def test_address_files_resolve_relative_to_the_config(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    (conf_dir / "btc.txt").write_text("")
    (conf_dir / "teller.toml").write_text(MINIMAL)
    monkeypatch.chdir(tmp_path)
    assert load_config(conf_dir / "teller.toml").btc_addresses == "btc.txt"


@pytest.mark.parametrize(("toml", "problem"), [
    ("[dummy]\nsender_coins = \"nan\"\n", "dummy.sender_coins: expected a number, not 'nan'"),
    ("[erc20_sender]\nmax_gas_price_gwei = \"abc\"\n",
     "erc20_sender.max_gas_price_gwei: expected a number, not 'abc'"),
    ("[erc20_sender]\nmax_gas_price_gwei = inf\n",
     "erc20_sender.max_gas_price_gwei: expected a number, not Decimal('Infinity')"),
    ("[web]\nthrottle_duration = nan\n",
     'web.throttle_duration: expected a duration such as "20s", not NaN'),
    ("[btc_scanner]\nscan_period = inf\n",
     'btc_scanner.scan_period: expected a duration such as "20s", not Infinity'),
    ("[sender]\nretry_max_wait = -5\n",
     'sender.retry_max_wait: expected a duration such as "20s", not -5'),
    ("[sender]\ndead_after = \"9999999999h\"\n",
     "sender.dead_after: invalid duration '9999999999h' (use e.g. \"500ms\", \"20s\", \"1m30s\")"),
])
def test_non_finite_and_negative_values_are_listed_problems(toml: str, problem: str) -> None:
    """NaN compared with < raised decimal.InvalidOperation (a traceback); nan, inf and negative
    durations were accepted and reached sleep()/wait()."""
    with pytest.raises(ConfigError) as info:
        parse_config("bogus = 1\n" + toml)
    assert problem in info.value.problems
    assert "bogus: unknown key" in info.value.problems  # still every problem at once


def test_config_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "teller.toml"
    path.write_bytes(b'logfile = "\xff"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems == [
        "cannot read config file: not UTF-8 text (invalid start byte at byte 11)"]
