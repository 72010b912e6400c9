"""core.toml loading: the shipped file is valid and a bad file lists every problem."""

from __future__ import annotations

from decimal import Decimal

import pytest

from matchengine.config import ConfigError, from_dict, load
from tests.support.core import ROOT


def test_shipped_core_toml_loads():
    config = load(ROOT / "core.toml")
    assert config.http_addr == "127.0.0.1:8080"
    assert [a.name for a in config.assets] == ["BTC", "ETH", "LTC", "SKY", "USDT"]
    assert [m.name for m in config.markets] == ["SKYBTC", "SKYETH", "BTCUSDT", "ETHUSDT"]
    assert config.markets[2].min_amount == Decimal("0.0001")


def test_every_problem_is_listed_including_viabtc_precision_checks():
    data = {
        "core": {"http_addr": "nowhere", "snapshot_interval": -1, "typo": 1},
        "assets": [{"name": "BTC", "prec_save": 8, "prec_show": 10},
                   {"name": "USDT", "prec_save": 6}],
        "markets": [{"name": "BTCUSDT", "stock": "BTC", "stock_prec": 6, "money": "USDT",
                     "money_prec": 2, "fee_prec": 4, "min_amount": "x"},
                    {"name": "ETHUSDT", "stock": "ETH", "stock_prec": 8, "money": "USDT",
                     "money_prec": 2}],
    }
    with pytest.raises(ConfigError) as err:
        from_dict(data)
    text = "\n".join(err.value.problems)
    for expected in ["core.http_addr", "core.snapshot_interval", "core.typo",
                     "prec_show (BTC) 10 exceeds prec_save 8",
                     "stock_prec + money_prec (6+2) exceeds prec_save of USDT (6)",
                     "stock_prec + fee_prec (6+4) exceeds prec_save of BTC (8)",
                     "min_amount",
                     "stock 'ETH' is not a configured asset"]:
        assert expected in text, expected
    assert len(err.value.problems) >= 8


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[core\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(bad)


def test_malformed_sections_and_tables_are_listed():
    data = {"assets": [{"name": "BTC", "prec_save": 8, "colour": "red"}, "USDT"],
            "markets": {"name": "BTCUSDT"}, "extra": {}}
    with pytest.raises(ConfigError) as err:
        from_dict(data)
    assert err.value.problems == [
        "assets[0] (BTC).colour: unknown key",
        "assets[1] must be a table",
        "[[markets]] must be an array of tables",
        "[extra] is not a known section",
    ]
    with pytest.raises(ConfigError) as err:
        from_dict({"assets": []})
    assert err.value.problems == ["[[assets]] must list at least one asset"]
