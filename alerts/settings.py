"""The ``[alerts]`` section, the same in config.toml and core.toml: its keys and their checks.

Pure (no sinks, no network), so both configs can parse it without loading the sinks. Checked at
start-up with every problem listed (the callers add them to their own config errors).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any


@dataclass
class AlertSettings:
    redis_addr: str = ""  # host:port of a Redis server; "" = no Redis sink
    redis_key: str = "alert:message"  # the list viabtc's alertcenter mailer pops
    redis_password_env: str = ""  # environment variable holding the Redis password
    webhook_url: str = ""  # POST target; "" = no webhook
    webhook_secret_file: str = ""  # file holding the HMAC-SHA256 key
    webhook_secret_env: str = ""  # or an environment variable holding it
    webhook_timeout: Decimal = Decimal(5)  # seconds per attempt
    retries: int = 5  # delivery attempts after the first, with backoff 0.5 s, 1 s, 2 s, ...
    min_interval: Decimal = Decimal(60)  # seconds: at most one message per kind this often
    log: bool = True  # every alert also as one log line (logger "alerts")
    scanner_behind_blocks: int = 6  # teller: lag beyond confirmations this many blocks alerts
    check_period: Decimal = Decimal(5)  # teller: seconds between condition checks

    @property
    def enabled(self) -> bool:
        return bool(self.redis_addr or self.webhook_url)


_TYPES = {f.name: f.type for f in fields(AlertSettings)}


def parse_alerts(table: Any, where: str = "alerts") -> tuple[AlertSettings, list[str]]:
    """``[alerts]`` as parsed TOML → settings, plus every problem found (empty = usable)."""
    settings = AlertSettings()
    problems: list[str] = []
    if not isinstance(table, dict):
        return settings, [f"{where}: expected an [{where}] table"]
    for key, value in table.items():
        kind = _TYPES.get(key)
        name = f"{where}.{key}"
        if kind is None:
            problems.append(f"{name}: unknown key")
        elif kind == "bool" and not isinstance(value, bool):
            problems.append(f"{name}: expected true or false")
        elif kind == "str" and not isinstance(value, str):
            problems.append(f"{name}: expected a string")
        elif kind == "int" and (isinstance(value, bool) or not isinstance(value, int)
                                or value < 0):
            problems.append(f"{name}: expected an integer >= 0")
        elif kind == "Decimal":
            number = _seconds(value)
            if number is None:
                problems.append(f"{name}: expected seconds > 0, such as 5 or \"0.5\"")
            else:
                setattr(settings, key, number)
        else:
            setattr(settings, key, value)
    if settings.redis_addr and not _hostport(settings.redis_addr):
        problems.append(f"{where}.redis_addr: {settings.redis_addr!r} is not host:port")
    if settings.webhook_url:
        if not re.match(r"https?://[^/\s]+", settings.webhook_url):
            problems.append(f"{where}.webhook_url: {settings.webhook_url!r} is not an http(s) URL")
        if not (settings.webhook_secret_file or settings.webhook_secret_env):
            problems.append(f"{where}: set webhook_secret_file or webhook_secret_env "
                            "(the webhook's messages are signed)")
    if not settings.redis_key:
        problems.append(f"{where}.redis_key: must not be empty")
    return settings, problems


def _seconds(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal | float):
        return None
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return None
    return number if number.is_finite() and number > 0 else None


def _hostport(value: str) -> tuple[str, int] | None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        return None
    return host.strip("[]"), int(port)
