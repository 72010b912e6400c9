"""Wiring: builds every part of a running teller from a Config and starts/stops them in order.

Start-up order is storage → address pools (configured files loaded and validated) → sender →
deposit store and exchanger → scanners → HTTP servers; shutdown runs the other way. Anything
that cannot work (a bad address file, an unreachable data dir) fails here, before any server
listens, with every problem listed.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from addrs.files import AddressFileError, load_address_file
from addrs.pool import AddressPool
from common import failpoints
from common.storage import Storage
from common.units import COIN_DECIMALS
from exchanger.passthrough import PassthroughBuyer, PassthroughSettings
from exchanger.processor import Exchanger, ExchangerSettings
from ledger.intake import DepositIntake
from ledger.settings import SettingsStore
from ledger.store import DepositStore
from scanner.dummy import DummyScanner
from sender.base import Sender
from sender.dummy import DummySender

from . import __version__
from .alerting import TellerAlerts
from .config import Config, ConfigError, resolve_path
from .http import Server
from .runtime_settings import RuntimeSettings

log = logging.getLogger(__name__)

POOL_COINS = ("BTC", "ETH", "LTC")


def _git_version() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, cwd=Path(__file__).parent, timeout=2, check=False)
    except (OSError, subprocess.SubprocessError):
        return __version__
    sha = commit.stdout.strip()
    return f"{__version__}+{sha}" if commit.returncode == 0 and sha else __version__


class Service:
    """Everything one ``teller run`` holds. The HTTP apps read from it; they own no state."""

    def __init__(self, config: Config, data_dir: str | Path, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.data_dir = Path(data_dir).expanduser()
        self.clock = clock
        self.started_at = time.monotonic()
        self.version = _git_version()
        failpoints.arm_from_env(self.data_dir)
        self.storage = Storage(self.data_dir, db_name=config.dbfile)
        try:
            # Runtime overrides first: everything built below reads the effective config.
            self.settings = RuntimeSettings(config, SettingsStore(self.storage, clock=clock))
            self.pool = AddressPool(self.storage)
            self._load_address_files()
            self.store = DepositStore(self.storage, self.pool, clock=clock,
                                      rate_for=config.rate_for)
            self.intake = DepositIntake(self.store)
            self.sender = self._make_sender()
            self.buyer = self._make_buyer()
            self.exchanger = Exchanger(self.store, self.sender, self._exchanger_settings(),
                                       clock=clock, buyer=self.buyer)
            self.store.on_change = self.exchanger.wake
            self.settings.on_apply.append(self._settings_applied)
            self.dummy_scanner = DummyScanner(self.intake, config.network_for,
                                              config.pool_coin) if config.dummy.scanner else None
            self.scanners: dict[str, Any] = self._make_scanners()
            self.alerts = TellerAlerts(self)
        except Exception:
            self.storage.close()
            raise
        self.servers: list[Server] = []
        self._low_water_warned: set[str] = set()
        self._stopped = threading.Event()

    # -- construction ----------------------------------------------------------------------

    def _load_address_files(self) -> None:
        problems: list[str] = []
        for coin in POOL_COINS:
            path = self.config.address_file_for(coin)
            if not self.config.coin_enabled(coin) or not path:
                continue
            try:
                addresses = load_address_file(resolve_path(self.config, path), coin,
                                              self.config.network_for(coin))
            except AddressFileError as exc:
                problems.extend(exc.problems)
                continue
            except OSError as exc:
                problems.append(f"{coin.lower()}_addresses: cannot read {path}: {exc.strerror}")
                continue
            result = self.pool.add(coin, addresses)
            if result.added:
                log.info("loaded %d new %s deposit addresses from %s", result.added, coin, path)
        if problems:
            raise ConfigError(problems, self.config.source)

    def _make_sender(self) -> Sender:
        backend = self.config.sender_backend
        if backend == "dummy":
            return DummySender(
                self.storage,
                coins_droplets=int(self.config.dummy.sender_coins.scaleb(6)),
                hours=self.config.dummy.sender_hours,
                autoconfirm=self.config.dummy.sender_autoconfirm,
                max_outputs=self.config.sender.max_outputs)
        from teller.backends import create_sender  # real backends: imported only when used

        return create_sender(self.config, self.storage)

    def _make_buyer(self) -> PassthroughBuyer | None:
        """Passthrough buying, when a [passthrough] venue is configured (also under
        buy_method = "direct": deposits bound for passthrough earlier still finish)."""
        pt = self.config.passthrough
        if not pt.venue:
            return None
        from teller.backends import create_venue  # a venue's client: imported only when used

        token_decimals = {t.symbol: t.decimals for t in self.config.eth_tokens}
        settings = PassthroughSettings(
            markets=dict(pt.markets),
            minimum={coin: pt.minimum_for(coin) for coin in pt.minimum_volume},
            settle_wait=float(pt.settle_wait), check_order_wait=float(pt.check_order_wait),
            retry_max_wait=float(self.config.sender.retry_max_wait))
        return PassthroughBuyer(
            self.store, create_venue(self.config), settings,
            coin_decimals=lambda coin: token_decimals.get(coin) or COIN_DECIMALS[coin],
            token_decimals=self.sender.decimals, clock=self.clock)

    def _make_scanners(self) -> dict[str, Any]:
        coins = [c for c in ("BTC", "LTC", "ETH")
                 if self.config.coin_enabled(c) and not self.config.dummy_scanner_for(c)]
        if not coins:
            return {}
        from teller.backends import create_scanners  # real scanners: imported only when used

        return create_scanners(self.config, self.storage, self.intake, coins)

    def _exchanger_settings(self) -> ExchangerSettings:
        ex = self.config.sky_exchanger
        return ExchangerSettings(
            max_decimals=ex.max_decimals, send_enabled=ex.send_enabled,
            check_wait=float(ex.tx_confirmation_check_wait) or 3.0,
            retry_max_wait=float(self.config.sender.retry_max_wait),
            dead_after=float(self.config.sender.dead_after),
            replace_after=float(self.config.sender.replace_after),
            token_decimals={t.symbol: t.decimals for t in self.config.eth_tokens})

    def _settings_applied(self, config: Config) -> None:
        """A runtime setting changed: the parts holding their own copy take the new value."""
        ex = config.sky_exchanger
        self.exchanger.settings.max_decimals = ex.max_decimals
        self.exchanger.settings.send_enabled = ex.send_enabled
        if hasattr(self.sender, "max_decimals"):
            self.sender.max_decimals = ex.max_decimals
        buyer = self.exchanger.buyer
        if buyer is not None:
            pt = config.passthrough
            buyer.settings.minimum = {coin: pt.minimum_for(coin) for coin in pt.minimum_volume}
        self.exchanger.wake()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, *, serve: bool = True) -> None:
        from .app import create_app

        self.alerts.start()
        self.exchanger.start()
        for scanner in self.scanners.values():
            scanner.start()
        if not serve:
            return
        cfg = self.config
        self.servers.append(Server(create_app(cfg, self, "public"), cfg.web.http_addr, "public"))
        self.servers.append(Server(create_app(cfg, self, "admin"), cfg.admin_panel.host, "admin"))
        if cfg.dummy.scanner or cfg.dummy.sender:
            self.servers.append(Server(create_app(cfg, self, "dummy"), cfg.dummy.http_addr,
                                       "dummy"))
        for server in self.servers:
            server.start()
        self.check_pools()

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.alerts.stop_watching()  # no condition checks against parts being stopped
        for server in reversed(self.servers):
            server.stop()
        for scanner in self.scanners.values():
            scanner.stop()
        self.exchanger.stop()
        self.sender.close()
        self.storage.close()
        log.info("teller stopped")
        self.alerts.stop()

    def server(self, name: str) -> Server:
        return next(s for s in self.servers if s.name == name)

    # -- shared views for the APIs -----------------------------------------------------------

    def uptime(self) -> float:
        return time.monotonic() - self.started_at

    def pool_coins(self) -> list[str]:
        # Tokens are received at ETH addresses: the ETH pool is on whenever the ETH scanner is.
        return [c for c in POOL_COINS if self.config.coin_enabled(c)]

    def check_pools(self) -> list[str]:
        """Pools under the low-water mark; each is logged once with notice=WATCH."""
        low = []
        mark = self.config.teller.addr_low_water
        for coin in self.pool_coins():
            remaining = self.pool.remaining(coin)
            if remaining < mark:
                low.append(f"{coin} deposit address pool is low: {remaining} free "
                           f"(teller.addr_low_water = {mark})")
                if coin not in self._low_water_warned:
                    log.warning("notice=WATCH %s deposit address pool has %d free addresses "
                                "(low-water mark %d): add more with `teller tool addaddresses`",
                                coin, remaining, mark)
                    self._low_water_warned.add(coin)
            else:
                self._low_water_warned.discard(coin)
        return low
