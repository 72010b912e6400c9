"""``[passthrough]`` config: loads, lists every problem at once, keeps the Go keys, hides secrets."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from teller.backends import create_venue
from teller.config import ConfigError, parse_config, redacted

BASE = """
btc_addresses = "example_btc_addresses.txt"
[btc_scanner]
enabled = true
[btc_rpc]
user = "u"
pass = "p"
[dummy]
sender = true
"""

CORE = BASE + """
[sky_exchanger]
buy_method = "passthrough"
[passthrough]
venue = "core"
markets = { BTC = "SKYBTC", ETH = "SKYETH" }
minimum_volume = { BTC = "0.0005" }
[passthrough.core]
url = "http://127.0.0.1:8080"
user_id = 1
taker_fee = "0.001"
credit_deposits = true
"""

CCXT = BASE + """
[sky_exchanger]
buy_method = "passthrough"
[passthrough]
venue = "ccxt"
markets = { BTC = "SKY/BTC" }
[passthrough.ccxt]
exchange = "binance"
key_env = "TEST_TELLER_CCXT_KEY"
secret_env = "TEST_TELLER_CCXT_SECRET"
sandbox = true
api_url = "http://127.0.0.1:1/api"
"""

ROOT = Path(__file__).resolve().parents[1]


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, str(ROOT / "teller.toml"))
    return info.value.problems


def test_core_section_loads_without_a_fixed_rate() -> None:
    config = parse_config(CORE, str(ROOT / "teller.toml"))
    pt = config.passthrough
    assert (pt.venue, pt.markets) == ("core", {"BTC": "SKYBTC", "ETH": "SKYETH"})
    assert pt.minimum_for("BTC") == Decimal("0.0005") and pt.minimum_for("ETH") == 0
    assert (pt.core.user_id, pt.core.taker_fee, pt.core.credit_deposits) == \
        (1, Decimal("0.001"), True)
    assert config.sky_exchanger.sky_btc_exchange_rate == ""  # bought at the market


def test_passthrough_without_the_section_names_it_and_go_keys_still_load() -> None:
    text = BASE + """
[sky_exchanger]
sky_btc_exchange_rate = "500"
buy_method = "passthrough"
[sky_exchanger.c2cx]
key = "k"
secret = "s"
btc_minimum_volume = 0.005
"""
    [problem] = problems(text)
    assert "needs a [passthrough] section" in problem
    assert "[sky_exchanger.c2cx]" in problem
    direct = parse_config(text.replace('buy_method = "passthrough"', 'buy_method = "direct"'),
                          str(ROOT / "teller.toml"))
    assert direct.sky_exchanger.c2cx.btc_minimum_volume == Decimal("0.005")


def test_every_problem_is_listed_at_once() -> None:
    text = BASE + """
[sky_exchanger]
buy_method = "passthrough"
[passthrough]
venue = "core"
markets = { DOGE = "SKYDOGE" }
minimum_volume = { BTC = "-1" }
surprise = 1
[passthrough.core]
url = "127.0.0.1:8080"
taker_fee = "1.5"
"""
    found = problems(text)
    assert any(p.startswith("passthrough.surprise: unknown key") for p in found)
    assert any(p.startswith("passthrough.markets.DOGE: not a deposit coin") for p in found)
    assert any(p.startswith("passthrough.markets: no market for BTC") for p in found)
    assert any(p.startswith("passthrough.minimum_volume.BTC:") for p in found)
    assert any(p.startswith("passthrough.core.url:") for p in found)
    assert any(p.startswith("passthrough.core.user_id: required") for p in found)
    assert any(p.startswith("passthrough.core.taker_fee:") for p in found)


def test_ccxt_credentials_are_never_in_the_config() -> None:
    config = parse_config(CCXT, str(ROOT / "teller.toml"))
    assert config.passthrough.ccxt.exchange == "binance"
    assert config.passthrough.ccxt.sandbox is True
    both = CCXT.replace('key_env = "TEST_TELLER_CCXT_KEY"',
                        'key_env = "TEST_TELLER_CCXT_KEY"\nkey_file = "key.txt"')
    assert any("set exactly one of key_env or key_file" in p for p in problems(both))
    assert any("unknown key" in p for p in problems(CCXT.replace(
        'sandbox = true', 'sandbox = true\napi_key = "shh"')))
    # the section names where the secrets are, never holds them
    assert set(redacted(config)["passthrough"]["ccxt"]) == {
        "exchange", "key_env", "secret_env", "key_file", "secret_file", "sandbox", "api_url"}


def test_ccxt_venue_with_unset_environment_is_refused_at_start(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_TELLER_CCXT_KEY", raising=False)
    monkeypatch.setenv("TEST_TELLER_CCXT_SECRET", "s3cret-value")
    config = parse_config(CCXT, str(ROOT / "teller.toml"))
    with pytest.raises(ConfigError) as info:
        create_venue(config)
    assert any("TEST_TELLER_CCXT_KEY is not set" in p for p in info.value.problems)
    assert "s3cret-value" not in str(info.value)


def test_core_venue_is_built_from_the_section() -> None:
    venue = create_venue(parse_config(CORE, str(ROOT / "teller.toml")))
    assert venue.name == "core"
    assert (venue.user_id, venue.taker_fee, venue.credit_deposits) == (1, Decimal("0.001"), True)


def test_the_venue_interface_imports_no_io_library() -> None:
    code = ("import json, sys\nimport exchanger.venues.base\n"
            "print(json.dumps(sorted(m for m in ('lmdb', 'flask', 'requests', 'ccxt') "
            "if m in sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    assert json.loads(out) == []
