"""Exchange-core configuration: assets, markets and the server section of core.toml.

Validation mirrors viabtc's start-up checks (`me_config.c`) and reports every problem at once,
so an operator fixes a bad file in one pass. A market is refused unless
stock_prec + money_prec <= prec_save(money), stock_prec + fee_prec <= prec_save(stock) and
money_prec + fee_prec <= prec_save(money): those bounds guarantee that frozen amounts and deal
values are never truncated when they reach a balance.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from alerts.settings import AlertSettings, parse_alerts
from common.decimals import parse

ASSET_NAME_MAX = 15
MARKET_NAME_MAX = 30
MAX_PREC = 30
_NAME = re.compile(r"[A-Za-z0-9_\-]+")


class ConfigError(ValueError):
    """The configuration is invalid; `problems` lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid exchange-core config:\n  - " + "\n  - ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class AssetConfig:
    name: str
    prec_save: int
    prec_show: int


@dataclass(frozen=True)
class MarketConfig:
    name: str
    stock: str
    stock_prec: int
    money: str
    money_prec: int
    fee_prec: int
    min_amount: Decimal


@dataclass(frozen=True)
class WsConfig:
    """[ws]: the WebSocket push gateway (package wsgateway) and its limits."""

    addr: str = "127.0.0.1:8090"  # "" = no WebSocket server
    auth_url: str = ""  # "" = server.auth / CONNMIX auth answer "service unavailable"
    sign_url: str = ""  # "" = server.sign answers "service unavailable"
    auth_timeout: float = 1.0
    auth_cache_seconds: float = 60.0
    events_addr: str = ""  # "" = no event stream for standalone gateways (`teller core ws`)
    max_connections: int = 10000
    max_connections_per_ip: int = 256
    max_subscriptions: int = 100
    max_message: int = 65536
    out_queue: int = 1024
    idle_timeout: float = 3600.0
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    push_interval: float = 0.02
    # The fee rates of orders entered over the WebSocket; "" = the rates the client sends (as
    # the HTTP API, which trusts its caller). Both or neither.
    taker_fee: str = ""
    maker_fee: str = ""


WS_INTS = {"max_connections": (1, 1_000_000), "max_connections_per_ip": (1, 1_000_000),
           "max_subscriptions": (1, 100_000), "max_message": (256, 64 * 1024 * 1024),
           "out_queue": (1, 1_000_000)}
WS_SECONDS = {"auth_timeout": (0.01, 60), "auth_cache_seconds": (0, 86400),
              "idle_timeout": (0.1, 86400 * 7), "ping_interval": (0, 3600),
              "ping_timeout": (0.1, 3600), "push_interval": (0, 10)}

WS_FEES = ("taker_fee", "maker_fee")


def addr_ok(value: Any) -> bool:
    host, sep, port = str(value).rpartition(":")
    return isinstance(value, str) and bool(sep and host and port.isdigit()) and int(port) <= 65535


def ws_from_dict(raw: Any, problems: list[str]) -> WsConfig:
    """The [ws] section (every problem appended to `problems`)."""
    if not isinstance(raw, dict):
        problems.append("[ws] must be a table")
        return WsConfig()
    values: dict[str, Any] = {}
    for key in ("addr", "events_addr"):
        if key in raw:
            if raw[key] != "" and not addr_ok(raw[key]):
                problems.append(f"ws.{key} must be 'host:port' or \"\" (off), got {raw[key]!r}")
            else:
                values[key] = raw[key]
    for key in ("auth_url", "sign_url"):
        if key in raw:
            url = raw[key]
            if not isinstance(url, str) or (url and not re.match(r"https?://[^/\s]+", url)):
                problems.append(f"ws.{key} must be an http(s):// URL or \"\", got {url!r}")
            else:
                values[key] = url
    for key, (lo, hi) in WS_INTS.items():
        if key in raw:
            values[key] = _int(raw[key], f"ws.{key}", problems, lo, hi, WsConfig.__dict__[key])
    for key, (low, high) in WS_SECONDS.items():
        if key in raw:
            value = raw[key]
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not low <= value <= high:
                problems.append(f"ws.{key} must be seconds in {low}..{high}, got {value!r}")
            else:
                values[key] = float(value)  # float-ok: seconds
    for key in WS_FEES:
        if key in raw:
            value = raw[key]
            rate = parse(value, 0) if isinstance(value, str) and value else None
            if value != "" and (rate is None or not 0 <= rate < 1):
                problems.append(f"ws.{key} must be a decimal string in [0, 1), or \"\" for the "
                                f"client's rate, got {value!r}")
            else:
                values[key] = value
    if bool(values.get("taker_fee")) != bool(values.get("maker_fee")):
        problems.append("ws.taker_fee and ws.maker_fee: set both (the rates of orders entered "
                        "over the WebSocket) or neither (the client's rates)")
    known = ("addr", "auth_url", "sign_url", "events_addr", *WS_INTS, *WS_SECONDS, *WS_FEES)
    _unknown_keys(raw, known, "ws", problems)
    return WsConfig(**values)


@dataclass(frozen=True)
class CoreConfig:
    assets: list[AssetConfig]
    markets: list[MarketConfig]
    http_addr: str = "127.0.0.1:8080"
    snapshot_interval: float = 3600.0
    extra: dict[str, Any] = field(default_factory=dict)
    ws: WsConfig = field(default_factory=WsConfig)
    alerts: AlertSettings = field(default_factory=AlertSettings)  # [alerts], as in config.toml


def _int(value: Any, where: str, problems: list[str], lo: int, hi: int, default: int | None = None) -> int:
    if value is None and default is not None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        problems.append(f"{where} must be an integer in {lo}..{hi}, got {value!r}")
        return default if default is not None else lo
    return value


def _name(value: Any, where: str, limit: int, problems: list[str]) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value) or len(value) > limit:
        problems.append(f"{where} must be a name of 1..{limit} letters/digits, got {value!r}")
        return str(value)
    return value


def _tables(data: dict[str, Any], section: str, problems: list[str],
            required: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """The `[[section]]` array of tables as (where, table) pairs; problems for the rest.
    `required`: the problem to report when the array is empty (None: empty is fine)."""
    raw = data.get(section, [])
    if not isinstance(raw, list) or (required and not raw):
        problems.append(required or f"[[{section}]] must be an array of tables")
        return
    for i, table in enumerate(raw):
        where = f"{section}[{i}]"
        if isinstance(table, dict):
            yield where, table
        else:
            problems.append(f"{where} must be a table")


def _unknown_keys(table: dict[str, Any], known: tuple[str, ...], where: str,
                  problems: list[str]) -> None:
    for key in table:
        if key not in known:
            problems.append(f"{where}.{key}: unknown key")  # the teller's wording


def from_dict(data: dict[str, Any]) -> CoreConfig:
    """Build and validate a config from parsed TOML; raise ConfigError listing every problem."""
    problems: list[str] = []
    core = data.get("core", {})
    if not isinstance(core, dict):
        problems.append("[core] must be a table")
        core = {}
    http_addr = core.get("http_addr", "127.0.0.1:8080")
    host, sep, port = str(http_addr).rpartition(":")
    if not isinstance(http_addr, str) or not sep or not host or not port.isdigit() or int(port) > 65535:
        problems.append(f"core.http_addr must be 'host:port', got {http_addr!r}")
    interval = core.get("snapshot_interval", 3600)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval < 0:
        problems.append(f"core.snapshot_interval must be seconds >= 0 (0 = off), got {interval!r}")
        interval = 3600
    _unknown_keys(core, ("http_addr", "snapshot_interval"), "core", problems)

    assets: dict[str, AssetConfig] = {}
    for where, raw in _tables(data, "assets", problems,
                              required="[[assets]] must list at least one asset"):
        name = _name(raw.get("name"), f"{where}.name", ASSET_NAME_MAX, problems)
        prec_save = _int(raw.get("prec_save"), f"{where}.prec_save ({name})", problems, 0, MAX_PREC)
        prec_show = _int(raw.get("prec_show"), f"{where}.prec_show ({name})", problems, 0, MAX_PREC,
                         default=prec_save)
        if prec_show > prec_save:
            problems.append(f"{where}.prec_show ({name}) {prec_show} exceeds prec_save {prec_save}")
        _unknown_keys(raw, ("name", "prec_save", "prec_show"), f"{where} ({name})", problems)
        if name in assets:
            problems.append(f"{where}: asset {name} is defined twice")
        assets[name] = AssetConfig(name, prec_save, prec_show)

    markets: dict[str, MarketConfig] = {}
    for where, raw in _tables(data, "markets", problems):
        name = _name(raw.get("name"), f"{where}.name", MARKET_NAME_MAX, problems)
        where = f"{where} ({name})"
        stock = raw.get("stock")
        money = raw.get("money")
        for role, asset in (("stock", stock), ("money", money)):
            if asset not in assets:
                problems.append(f"{where}.{role} {asset!r} is not a configured asset")
        if stock == money and stock is not None:
            problems.append(f"{where}: stock and money are the same asset")
        stock_prec = _int(raw.get("stock_prec"), f"{where}.stock_prec", problems, 0, MAX_PREC)
        money_prec = _int(raw.get("money_prec"), f"{where}.money_prec", problems, 0, MAX_PREC)
        fee_prec = _int(raw.get("fee_prec"), f"{where}.fee_prec", problems, 0, MAX_PREC, default=4)
        raw_min = raw.get("min_amount", "0.01")
        min_amount = parse(raw_min, 0) if isinstance(raw_min, str) else None
        if min_amount is None or min_amount < 0:
            problems.append(f"{where}.min_amount must be a decimal string >= 0, got {raw_min!r}")
            min_amount = Decimal("0.01")
        _unknown_keys(raw, ("name", "stock", "money", "stock_prec", "money_prec", "fee_prec",
                            "min_amount"), where, problems)
        if stock in assets and money in assets:
            save_stock, save_money = assets[stock].prec_save, assets[money].prec_save
            if stock_prec + money_prec > save_money:
                problems.append(f"{where}: stock_prec + money_prec ({stock_prec}+{money_prec}) "
                                f"exceeds prec_save of {money} ({save_money})")
            if stock_prec + fee_prec > save_stock:
                problems.append(f"{where}: stock_prec + fee_prec ({stock_prec}+{fee_prec}) "
                                f"exceeds prec_save of {stock} ({save_stock})")
            if money_prec + fee_prec > save_money:
                problems.append(f"{where}: money_prec + fee_prec ({money_prec}+{fee_prec}) "
                                f"exceeds prec_save of {money} ({save_money})")
        if name in markets:
            problems.append(f"{where}: market {name} is defined twice")
        markets[name] = MarketConfig(name, str(stock), stock_prec, str(money), money_prec,
                                     fee_prec, min_amount)
    ws = ws_from_dict(data.get("ws", {}), problems)
    alert_settings, alert_problems = parse_alerts(data.get("alerts", {}))
    problems.extend(alert_problems)
    for key in data:
        if key not in ("core", "assets", "markets", "ws", "alerts"):
            problems.append(f"[{key}] is not a known section")
    if problems:
        raise ConfigError(problems)
    return CoreConfig(list(assets.values()), list(markets.values()), http_addr, float(interval),  # float-ok: seconds
                      ws=ws, alerts=alert_settings)


def load(path: str | Path) -> CoreConfig:
    """Read and validate a core.toml file."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError([f"cannot read {path}: {exc.strerror}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path} is not valid TOML: {exc}"]) from exc
    return from_dict(data)
