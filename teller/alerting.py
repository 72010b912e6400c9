"""The teller's alerting: builds the alert center from ``[alerts]`` and watches conditions.

Log lines reach the center through ``alerts.handler.AlertHandler`` on the root logger. The
conditions that have a clear end are checked here every ``check_period`` seconds, so the
operator also gets the "resolved" message: a scanner whose node is unreachable or that is more
than ``scanner_behind_blocks`` past its confirmations behind, an address pool below
``addr_low_water``, a sender error (sold out, no gas, node down). Their kinds are the
``alert_kind`` the code's own log lines carry, so a line and its condition are one alert.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import alerts
from alerts.center import AlertCenter
from alerts.config import build_center, read_secrets
from alerts.handler import AlertHandler

from .config import ConfigError

if TYPE_CHECKING:
    from .service import Service

log = logging.getLogger(__name__)


class TellerAlerts:
    def __init__(self, service: Service) -> None:
        self.service = service
        settings = service.config.alerts
        self.settings = settings
        base = Path(service.config.source).parent if service.config.source else None
        secrets, problems = read_secrets(settings, base)
        if problems:
            raise ConfigError(problems, service.config.source)
        self.center: AlertCenter = build_center(settings, secrets, service="teller")
        self.handler = AlertHandler(self.center)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        alerts.install(self.center)
        logging.getLogger().addHandler(self.handler)
        self._thread = threading.Thread(target=self._run, name="alerts-watch", daemon=True)
        self._thread.start()

    def stop_watching(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def stop(self) -> None:
        """Stop watching, detach from logging and deliver what is queued (bounded wait)."""
        self.stop_watching()
        logging.getLogger().removeHandler(self.handler)
        if alerts.current() is self.center:
            alerts.install(None)
        self.center.close()

    def _run(self) -> None:
        period = float(self.settings.check_period)  # float-ok: seconds
        while not self._stop.wait(period):
            try:
                self.check()
            except Exception:  # noqa: BLE001 - the watcher must outlive any one failure
                log.exception("alert condition check failed")

    def check(self) -> None:
        """Fire or resolve every watched condition once."""
        service, center = self.service, self.center
        for coin, scanner in service.scanners.items():
            info = scanner.health()
            kind = f"scanner.{coin}.unreachable"
            if not info.get("node_reachable", True) and info.get("last_error"):
                center.fire(kind, f"{coin} node unreachable: {info['last_error']}")
            else:
                center.resolve(kind, f"{coin} node reachable again")
            lag = info.get("lag_blocks")
            allowed = max(info.get("confirmations_required", 1) - 1, 0) + \
                self.settings.scanner_behind_blocks
            kind = f"scanner.{coin}.behind"
            if lag is not None and lag > allowed:
                center.fire(kind, f"{coin} scanner is {lag} blocks behind the node's tip")
            else:
                center.resolve(kind, f"{coin} scanner caught up")
        mark = service.config.teller.addr_low_water
        for coin in service.pool_coins():
            remaining = service.pool.remaining(coin)
            kind = f"pool.{coin}.low"
            if remaining < mark:
                center.fire(kind, f"{coin} deposit address pool has {remaining} free addresses "
                                  f"(low-water mark {mark})")
            else:
                center.resolve(kind, f"{coin} deposit address pool has {remaining} free "
                                     "addresses again")
        error = service.exchanger.sender_error
        if error:
            center.fire("sender.error", f"sender: {error}")
        else:
            center.resolve("sender.error", "sender error cleared")
