"""ledger/settings.py on a real LMDB: registry, types, one-transaction changes, the audit log."""

from __future__ import annotations

import pytest

from common.storage import Storage
from ledger.settings import RESET, SettingsError, SettingsStore, coerce, lookup, resolve_key

FILE = {"teller.max_bound_addrs": 5, "sky_exchanger.sky_btc_exchange_rate": "500"}


def no_problems(_values):
    return []


def test_registry_names_types_and_short_names():
    assert lookup("eth_tokens.TUSD.rate").kind == "rate"
    assert lookup("eth_tokens.A.B.rate") is None and lookup("web.http_addr") is None
    assert resolve_key("max_decimals") == "sky_exchanger.max_decimals"
    with pytest.raises(SettingsError, match="rate: not a runtime setting"):
        resolve_key("rate")  # only the token rates end so, and they need their symbol
    setting = lookup("teller.bind_enabled")
    assert coerce(setting, "False") is False and coerce(setting, True) is True
    with pytest.raises(ValueError):
        coerce(setting, 1)
    assert coerce(lookup("teller.max_bound_addrs"), " 7 ") == 7
    with pytest.raises(ValueError):
        coerce(lookup("teller.max_bound_addrs"), 7.0)
    with pytest.raises(ValueError):
        coerce(lookup("sky_exchanger.sky_btc_exchange_rate"), 0.5)  # never a float


def test_changes_are_all_or_nothing_and_audited(tmp_path):
    with Storage(tmp_path) as storage:
        store = SettingsStore(storage, clock=lambda: 1_700_000_000)
        entries = store.change({"teller.max_bound_addrs": "3",
                                "sky_exchanger.sky_btc_exchange_rate": "600"},
                               by="test", check=no_problems, file_value=FILE.get)
        assert [(e["key"], e["old"], e["new"]) for e in entries] == [
            ("teller.max_bound_addrs", 5, 3), ("sky_exchanger.sky_btc_exchange_rate", "500", "600")]
        seen = []

        def refuse(values):
            seen.append(values)
            return ["teller.max_bound_addrs: must be >= 0 (0 = unlimited)"]

        with pytest.raises(SettingsError) as err:
            store.change({"teller.max_bound_addrs": -1, "teller.bind_enabled": False},
                         by="test", check=refuse, file_value=FILE.get)
        assert err.value.problems == ["teller.max_bound_addrs: must be >= 0 (0 = unlimited)"]
        assert seen == [{"teller.max_bound_addrs": -1, "teller.bind_enabled": False,
                         "sky_exchanger.sky_btc_exchange_rate": "600"}]  # checked as a whole
        assert store.values() == {"teller.max_bound_addrs": 3,
                                  "sky_exchanger.sky_btc_exchange_rate": "600"}
        assert store.change({"teller.bind_enabled": RESET}, by="t", check=no_problems,
                            file_value=FILE.get) == []  # nothing to reset: no entry
        store.change({"teller.max_bound_addrs": RESET}, by="cli", check=no_problems,
                     file_value=FILE.get)
    with Storage(tmp_path) as storage:  # persisted
        store = SettingsStore(storage)
        assert store.values() == {"sky_exchanger.sky_btc_exchange_rate": "600"}
        audit = store.audit()
        assert [(e["seq"], e["action"], e["key"], e["old"], e["new"], e["by"]) for e in audit] == [
            (1, "set", "teller.max_bound_addrs", 5, 3, "test"),
            (2, "set", "sky_exchanger.sky_btc_exchange_rate", "500", "600", "test"),
            (3, "reset", "teller.max_bound_addrs", 3, 5, "cli")]
        assert store.audit(limit=1) == audit[-1:]
