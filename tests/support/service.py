"""An in-process teller for tests: real ``Service``, real HTTP servers (granian), real LMDB.

``start_teller(tmp_path)`` writes a BTC (and ETH) address file and a config with the shipped
``config.toml``'s semantics — dummy scanner, dummy sender, every HTTP surface on
``127.0.0.1:0`` — starts a ``Service`` on ``tmp_path/data`` and returns a ``TellerHarness``
that speaks to it over HTTP the way a wallet or an operator would. ``toml_overrides`` is TOML
merged over the base config (tables merge key by key), so a test states only what it changes.

The ``teller`` fixture (a running dummy-mode teller with this base config) is registered for
every test by ``tests/conftest.py`` (tests/support/fixtures.py).
"""

from __future__ import annotations

import hashlib
import logging
import tomllib
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
from bip_utils import Base58Encoder

from teller.config import load_config
from teller.service import Service
from tests.support.wait import wait_until

log = logging.getLogger("tests.teller")

# The Go teller's example receive address (reference/teller-transcript.md) and its first two
# pool addresses, then BIP44 vectors of the public "abandon ... about" mnemonic.
SKY_ADDR = "2Wbi4wvxC4fkTYMsS2f6HaFfW4pafDjXcQW"
BTC_ADDRESSES = [
    "1PZ63K3G4gZP6A6E2TTbBwxT5bFQGL2TLB",
    "14FG8vQnmK6B7YbLSr6uC5wfGY78JFNCYg",
    "1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA",
    "1Ak8PffB2meyfYnbXZR9EGfLfFZVpzJvQP",
    "1MNF5RSaabFwcbtJirJwKnDytsXXEsVsNb",
    "1MVGa13XFvvpKGZdX389iU8b3qwtmAyrsJ",
    "1Gka4JdwhLxRwXaC6oLNH4YuEogeeSwqW7",
    "19a7HGg32ecPQo49rDeM2NSFJHPqrwSJto",
    "1GuMEkKyqqRz3jKZJPNxZNoJv72rRDm88o",
    "1B1wDxGPrfqWSi4qvQvaPdunD6kon3CeDG",
]
ETH_ADDRESSES = [
    "0x9858EfFD232B4033E47d90003D41EC34EcaEda94",
    "0x6Fac4D18c912343BF86fa7049364Dd4E424Ab9C0",
    "0xb6716976A3ebe8D39aCEB04372f22Ff8e6802D7A",
]

# Base config: dummy mode on free loopback ports, fast polling, no throttling (the throttle
# tests turn it on), max_bound_addrs 2 and rate 500 as in the transcript's recording.
BASE_CONFIG: dict[str, Any] = {
    "debug": False,
    "logfile": "",
    "btc_addresses": "btc_addresses.txt",
    "eth_addresses": "eth_addresses.txt",
    "teller": {"max_bound_addrs": 2, "bind_enabled": True, "addr_low_water": 0},
    "sky_exchanger": {
        "sky_btc_exchange_rate": "500",
        "sky_eth_exchange_rate": "100",
        "sky_sky_exchange_rate": "1",
        "max_decimals": 3,
        "tx_confirmation_check_wait": "100ms",
        "send_enabled": True,
        "buy_method": "direct",
    },
    "sender": {"retry_max_wait": "1s"},
    "btc_scanner": {"enabled": True},
    "eth_scanner": {"enabled": False},
    "web": {
        "http_addr": "127.0.0.1:0",
        "static_dir": "web",
        "throttle_max": 0,
        "throttle_duration": "60s",
        "behind_proxy": False,
        "cors_allowed": [],
    },
    "admin_panel": {"host": "127.0.0.1:0"},
    "dummy": {"scanner": True, "sender": True, "http_addr": "127.0.0.1:0",
              "sender_coins": "100", "sender_hours": 100},
}


def sky_address(index: int) -> str:
    """A valid Skycoin address, different for each ``index`` (version 0, cipher's checksum)."""
    key = hashlib.sha256(f"test receive address {index}".encode()).digest()[:20]
    payload = key + b"\x00"
    return Base58Encoder.Encode(payload + hashlib.sha256(payload).digest()[:4])


# -- config writing ----------------------------------------------------------------------------


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` into a copy of ``base`` (tables key by key, values replaced)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def to_toml(data: dict[str, Any], prefix: str = "") -> str:
    """TOML text for ``data`` (scalars, lists, tables, arrays of tables): enough for configs."""
    lines: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []
    arrays: list[tuple[str, list[dict[str, Any]]]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            arrays.append((key, value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for key, table in tables:
        lines.append(f"\n[{prefix}{key}]")
        lines.append(to_toml(table, f"{prefix}{key}."))
    for key, items in arrays:
        for item in items:
            lines.append(f"\n[[{prefix}{key}]]")
            lines.append(to_toml(item, f"{prefix}{key}."))
    return "\n".join(line for line in lines if line) + "\n"


def write_config(directory: Path, toml_overrides: str = "") -> Path:
    data = merge(BASE_CONFIG, tomllib.loads(toml_overrides, parse_float=Decimal))
    path = directory / "teller.toml"
    path.write_text(to_toml(data))
    return path


def write_address_files(directory: Path, btc: Iterable[str] | None = None,
                        eth: Iterable[str] | None = None) -> None:
    btc_lines = list(BTC_ADDRESSES[:5] if btc is None else btc)
    eth_lines = list(ETH_ADDRESSES if eth is None else eth)
    (directory / "btc_addresses.txt").write_text("".join(f"{a}\n" for a in btc_lines))
    (directory / "eth_addresses.txt").write_text("".join(f"{a}\n" for a in eth_lines))


# -- the harness -------------------------------------------------------------------------------


class TellerHarness:
    """One teller on a data directory; stop/start/restart keep the directory."""

    def __init__(self, root: Path, config_path: Path) -> None:
        self.root = root
        self.config_path = config_path
        self.data_dir = root / "data"
        self.service: Service | None = None
        self.http = requests.Session()

    # lifecycle ---------------------------------------------------------------------------

    def start(self) -> TellerHarness:
        assert self.service is None, "already running"
        service = Service(load_config(self.config_path), self.data_dir)
        try:
            service.start()
        except BaseException:
            service.stop()
            raise
        self.service = service
        return self

    def stop(self) -> None:
        if self.service is not None:
            service, self.service = self.service, None
            service.stop()

    def restart(self, toml_overrides: str | None = None) -> TellerHarness:
        """Stop, optionally rewrite the config, and start a new Service on the same dir."""
        self.stop()
        if toml_overrides is not None:
            write_config(self.root, toml_overrides)
        return self.start()

    def close(self) -> None:
        self.stop()
        self.http.close()

    # URLs --------------------------------------------------------------------------------

    def _url(self, name: str) -> str:
        assert self.service is not None, "teller is not running"
        return self.service.server(name).url

    @property
    def public(self) -> str:
        return self._url("public")

    @property
    def admin(self) -> str:
        return self._url("admin")

    @property
    def dummy(self) -> str:
        return self._url("dummy")

    # HTTP helpers ------------------------------------------------------------------------

    def get(self, base: str, path: str, **kw: Any) -> requests.Response:
        return self.http.get(base + path, timeout=10, **kw)

    def post_json(self, base: str, path: str, body: Any, **kw: Any) -> requests.Response:
        return self.http.post(base + path, json=body, timeout=10, **kw)

    def bind(self, skyaddr: str, coin: str = "BTC") -> str:
        """Bind and return the deposit address (fails the test on any non-200)."""
        resp = self.post_json(self.public, "/api/bind", {"skyaddr": skyaddr, "coin_type": coin})
        assert resp.status_code == 200, f"bind failed: {resp.status_code} {resp.text!r}"
        return resp.json()["deposit_address"]

    def deposit(self, addr: str, value: int, tx: str, n: int = 0, height: int = 1,
                coin: str = "BTC") -> None:
        """Inject a deposit through the dummy scanner (persisted when this returns)."""
        resp = self.get(self.dummy, "/dummy/scanner/deposit", params={
            "addr": addr, "value": value, "tx": tx, "n": n, "height": height, "coin": coin})
        assert resp.status_code == 200, f"deposit failed: {resp.status_code} {resp.text!r}"

    def broadcasts(self) -> list[dict[str, Any]]:
        resp = self.get(self.dummy, "/dummy/sender/broadcasts")
        assert resp.status_code == 200, resp.text
        return resp.json()

    def confirm(self, txid: str) -> None:
        resp = self.get(self.dummy, "/dummy/sender/confirm", params={"txid": txid})
        assert resp.status_code == 200, f"confirm failed: {resp.status_code} {resp.text!r}"

    def statuses(self, skyaddr: str) -> list[str]:
        resp = self.get(self.public, "/api/status", params={"skyaddr": skyaddr})
        assert resp.status_code == 200, resp.text
        return [entry["status"] for entry in resp.json().get("statuses", [])]

    def wait_status(self, skyaddr: str, expected: list[str],
                    timeout: float = 10.0) -> list[str]:
        """Poll /api/status until its statuses, in seq order, are exactly ``expected``."""
        try:
            wait_until(lambda: self.statuses(skyaddr) == expected, timeout,
                       message=f"statuses of {skyaddr} == {expected}")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}; last: {self._last_statuses(skyaddr)}") from None
        return expected

    def _last_statuses(self, skyaddr: str) -> str:
        try:
            return repr(self.statuses(skyaddr))
        except Exception as exc:  # noqa: BLE001 - only for the timeout message
            return repr(exc)

    def wait_broadcasts(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Poll until exactly ``count`` payouts have been broadcast; return them."""
        wait_until(lambda: len(self.broadcasts()) >= count, timeout,
                   message=f"{count} broadcast(s)")
        found = self.broadcasts()
        assert len(found) == count, found
        return found

    def deposits(self, status: str | None = None) -> list[dict[str, Any]]:
        params = {"status": status} if status else None
        resp = self.get(self.admin, "/api/deposits", params=params)
        assert resp.status_code == 200, resp.text
        return resp.json()["deposits"]


def assert_api_error(resp: requests.Response, status: int, message: str) -> None:
    """A documented error: exactly this status and plain-text body (message + newline)."""
    assert (resp.status_code, resp.text) == (status, message + "\n"), \
        f"expected {status} {message!r}, got {resp.status_code} {resp.text!r}"
    assert resp.headers["Content-Type"].startswith("text/plain"), resp.headers["Content-Type"]


def assert_json(resp: requests.Response, expected: Any = None) -> Any:
    """A 200 JSON answer (pretty-printed, as the Go teller sends); equal to ``expected`` if given."""
    assert resp.status_code == 200, f"{resp.status_code} {resp.text!r}"
    assert resp.headers["Content-Type"] == "application/json", resp.headers["Content-Type"]
    body = resp.json()
    if body:
        assert resp.text.startswith(("{\n    ", "[\n    ")), "not pretty-printed (4 spaces)"
    if expected is not None:
        assert body == expected
    return body


def start_teller(tmp_path: Path, toml_overrides: str = "", *,
                 btc_addresses: Iterable[str] | None = None,
                 eth_addresses: Iterable[str] | None = None,
                 start: bool = True) -> TellerHarness:
    """Write the address files and config into ``tmp_path`` and (by default) start a teller."""
    write_address_files(tmp_path, btc_addresses, eth_addresses)
    harness = TellerHarness(tmp_path, write_config(tmp_path, toml_overrides))
    if start:
        harness.start()
    return harness


def btcsim_scanner(sim: Any, confirmations: int = 0) -> str:
    """TOML for a real bitcoind scanner of BTC against the block simulator ``sim``
    (tools.btcsim), polled every 100 ms from height 0, the dummy scanner keeping ETH only;
    ``confirmations`` > 0 sets ``confirmations_required``."""
    required = f"confirmations_required = {confirmations}\n" if confirmations else ""
    return f"""
[btc_scanner]
enabled = true
network = "regtest"
scan_period = "100ms"
{required}initial_scan_height = 0
[btc_rpc]
server = "127.0.0.1:{sim.port}"
user = "{sim.user}"
pass = "{sim.password}"
[dummy]
scanner_coins = ["ETH"]
"""
