"""Loading and validating ``config.toml``.

The keys and defaults are the Go teller's (``reference/teller.md`` §7), so an existing config
loads unchanged, with its two wrong defaults fixed (``max_bound_addrs`` 5, ``send_enabled``
true). New features live in new sections (``[ltc_rpc]``, ``[[eth_tokens]]``, ``[sender]``,
``[erc20_sender]``, ...). Validation collects every problem, including unknown keys, and
``load_config`` raises one ``ConfigError`` listing them all, so an operator fixes a config in
one pass instead of one error per restart.

Durations are Go-style strings (``"20s"``, ``"1m30s"``) or plain seconds. Exchange rates and
other money-like values are parsed as ``Decimal`` (TOML floats included) or kept as the
string the operator wrote.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import tomllib
import typing
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from alerts.settings import AlertSettings, parse_alerts

COINS = ("BTC", "ETH", "SKY", "LTC")
BUY_METHODS = ("direct", "passthrough")
SENDER_BACKENDS = ("dummy", "skycoin", "erc20")
NETWORKS = ("mainnet", "testnet", "regtest")


class ConfigError(ValueError):
    """A config that cannot run; ``problems`` lists every reason."""

    def __init__(self, problems: list[str], path: str | None = None) -> None:
        self.problems = problems
        where = f" in {path}" if path else ""
        super().__init__(f"{len(problems)} problem(s){where}:\n  - " + "\n  - ".join(problems))


class Duration(float):
    """Seconds, parsed from Go duration strings such as ``"1m30s"``."""


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_MAX_DURATION = threading.TIMEOUT_MAX  # a wait this long is forever (Go's limit is ~292 years)
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: Any) -> Duration:
    if isinstance(value, bool):
        raise ValueError("expected a duration such as \"20s\"")
    if isinstance(value, int | Decimal):
        if not Decimal(value).is_finite() or not 0 <= value <= _MAX_DURATION:  # nan, inf, -5
            raise ValueError(f"expected a duration such as \"20s\", not {value}")
        return Duration(value)
    if not isinstance(value, str) or not value:
        raise ValueError("expected a duration such as \"20s\"")
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(value):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(value) or total > _MAX_DURATION:
        raise ValueError(f"invalid duration {value!r} (use e.g. \"500ms\", \"20s\", \"1m30s\")")
    return Duration(total)


def parse_rate(value: Any) -> str:
    """A rate as written: an integer, a decimal or ``a/b``; must be > 0. Returns its string."""
    from exchanger.amounts import parse_rate as _parse  # the one rate parser

    text = str(value).strip() if not isinstance(value, bool) else ""
    _parse(text)
    return text


# -- sections ---------------------------------------------------------------------------------


@dataclass
class TellerSection:
    max_bound_addrs: int = 5
    bind_enabled: bool = True
    addr_low_water: int = 10  # new: notice=WATCH when a pool has fewer free addresses


@dataclass
class SkyRPCSection:
    address: str = "127.0.0.1:6430"
    wallet_id: str = ""  # new: the wallet loaded in the node (REST API sender)
    password_file: str = ""  # new: file holding the wallet password
    password_env: str = ""  # new: environment variable holding the wallet password


@dataclass
class BTCRPCSection:
    server: str = "127.0.0.1:8332"
    user: str = ""
    # "pass" is a Python keyword: the TOML key is mapped in _KEY_ALIASES.
    password: str = ""
    cert: str = ""  # accepted for old configs; bitcoind's HTTP JSON-RPC does not use it
    cookie_file: str = ""


@dataclass
class LTCRPCSection(BTCRPCSection):
    server: str = "127.0.0.1:9332"


@dataclass
class ETHRPCSection:
    server: str = ""
    port: int = 0
    url: str = ""

    @property
    def endpoint(self) -> str:
        if self.url:
            return self.url
        if self.server:
            host = self.server if "://" in self.server else f"http://{self.server}"
            return f"{host}:{self.port}" if self.port else host
        return ""


@dataclass
class ScannerSection:
    enabled: bool = False
    scan_period: Duration = Duration(20)
    initial_scan_height: int = 0
    confirmations_required: int = 1
    network: str = "mainnet"


@dataclass
class TokenSection:
    symbol: str = ""
    address: str = ""
    decimals: int = 18
    rate: str = ""


@dataclass
class C2CXSection:
    key: str = ""
    secret: str = ""
    request_failure_wait: Duration = Duration(10)
    ratelimit_wait: Duration = Duration(30)
    check_order_wait: Duration = Duration(2)
    btc_minimum_volume: Decimal = Decimal("0.005")


@dataclass
class PassthroughCoreSection:
    """``[passthrough.core]``: our exchange core (`teller core run`) over its JSON-RPC."""

    url: str = "http://127.0.0.1:8080"
    user_id: int = 0  # the teller's own account on the core (required, > 0)
    taker_fee: Decimal = Decimal("0.001")  # the fee rate the order is placed with
    credit_deposits: bool = True  # balance.update the deposit into the account before buying
    timeout: Duration = Duration(10)  # one JSON-RPC call


@dataclass
class PassthroughCcxtSection:
    """``[passthrough.ccxt]``: an external exchange through ccxt. The credentials are read from
    the environment or from files, never from this config, and never logged."""

    exchange: str = ""  # a ccxt exchange id, e.g. "binance"
    key_env: str = ""
    secret_env: str = ""
    key_file: str = ""
    secret_file: str = ""
    sandbox: bool = False  # the exchange's testnet, where ccxt knows one
    api_url: str = ""  # override of the REST base URL (testnets, proxies, tests)


@dataclass
class PassthroughSection:
    """``[passthrough]``: where ``buy_method = "passthrough"`` deposits buy the token."""

    venue: str = ""  # "core" | "ccxt"; "" = no [passthrough] section
    markets: dict[str, str] = field(default_factory=dict)  # coin -> market on the venue
    minimum_volume: dict[str, str] = field(default_factory=dict)  # coin -> decimal string
    # After a place whose outcome is unknown (timeout), the order is looked up by its client
    # id this long before it may be placed again (a request still queued could land later).
    settle_wait: Duration = Duration(60)
    check_order_wait: Duration = Duration(2)  # polling of an open order (ccxt)
    core: PassthroughCoreSection = field(default_factory=PassthroughCoreSection)
    ccxt: PassthroughCcxtSection = field(default_factory=PassthroughCcxtSection)

    def minimum_for(self, coin: str) -> Decimal:
        """The minimum deposit (whole coins) a passthrough buy is tried for; 0 = none."""
        text = self.minimum_volume.get(coin, "0")
        number = _decimal(text)
        return number if number is not None and number.is_finite() else Decimal(0)


@dataclass
class ExchangerSection:
    sky_btc_exchange_rate: str = ""
    sky_eth_exchange_rate: str = ""
    sky_sky_exchange_rate: str = ""
    sky_ltc_exchange_rate: str = ""
    max_decimals: int = 3
    tx_confirmation_check_wait: Duration = Duration(5)
    wallet: str = ""
    send_enabled: bool = True
    buy_method: str = "direct"
    c2cx: C2CXSection = field(default_factory=C2CXSection)

    def rate_for(self, coin: str) -> str:
        return getattr(self, f"sky_{coin.lower()}_exchange_rate", "")


@dataclass
class SenderSection:
    backend: str = ""  # "" = dummy when [dummy] sender = true, else skycoin
    max_outputs: int = 1  # outputs per payout transaction (batching where the chain allows)
    retry_max_wait: Duration = Duration(300)  # cap of the exponential retry backoff
    dead_after: Duration = Duration(6 * 3600)  # unconfirmed this long -> needs_review
    replace_after: Duration = Duration(600)  # pending this long -> fee-bumped replacement
    # with the same nonce (ERC-20); "0s" never replaces


@dataclass
class ERC20SenderSection:
    url: str = ""
    token: str = ""
    key_file: str = ""
    password_file: str = ""
    key_env: str = ""
    confirmations_required: int = 1
    max_gas_price_gwei: Decimal = Decimal("200")
    max_gas: int = 200_000


@dataclass
class WebSection:
    behind_proxy: bool = False
    http_addr: str = "127.0.0.1:7071"
    https_addr: str = ""
    static_dir: str = "./web"
    throttle_max: int = 60
    throttle_duration: Duration = Duration(60)
    auto_tls_host: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    cors_allowed: list[str] = field(default_factory=list)


@dataclass
class AdminSection:
    host: str = "127.0.0.1:7711"
    token_file: str = ""  # new: a file holding the admin token (teller/access.py)
    allowed_hosts: list[str] = field(default_factory=list)  # new: names the Host header may
    # carry (empty = the bound host, localhost, 127.0.0.1, ::1)


@dataclass
class DummySection:
    scanner: bool = False
    sender: bool = False
    http_addr: str = "127.0.0.1:4121"
    sender_coins: Decimal = Decimal("100")  # new: the dummy wallet's starting SKY
    sender_hours: int = 100  # new: the dummy wallet's starting coin hours
    sender_autoconfirm: bool = False  # new: every broadcast confirms at once
    scanner_coins: list[str] = field(default_factory=list)  # new: coins the dummy scanner
    # serves when scanner = true (empty = every coin); the others use their real scanners


def _btc_scanner() -> ScannerSection:
    return ScannerSection(enabled=True, initial_scan_height=492478)


def _eth_scanner() -> ScannerSection:
    return ScannerSection(scan_period=Duration(5), initial_scan_height=4654259)


def _sky_scanner() -> ScannerSection:
    return ScannerSection(scan_period=Duration(5), initial_scan_height=17000,
                          confirmations_required=0)


@dataclass
class Config:
    debug: bool = True
    profile: bool = False
    logfile: str = "./teller.log"
    dbfile: str = "teller.db"
    pidfile: str = ""
    btc_addresses: str = ""
    eth_addresses: str = ""
    sky_addresses: str = ""
    ltc_addresses: str = ""
    teller: TellerSection = field(default_factory=TellerSection)
    sky_rpc: SkyRPCSection = field(default_factory=SkyRPCSection)
    btc_rpc: BTCRPCSection = field(default_factory=BTCRPCSection)
    ltc_rpc: LTCRPCSection = field(default_factory=LTCRPCSection)
    eth_rpc: ETHRPCSection = field(default_factory=ETHRPCSection)
    btc_scanner: ScannerSection = field(default_factory=_btc_scanner)
    ltc_scanner: ScannerSection = field(default_factory=ScannerSection)
    eth_scanner: ScannerSection = field(default_factory=_eth_scanner)
    sky_scanner: ScannerSection = field(default_factory=_sky_scanner)
    eth_tokens: list[TokenSection] = field(default_factory=list)
    sky_exchanger: ExchangerSection = field(default_factory=ExchangerSection)
    sender: SenderSection = field(default_factory=SenderSection)
    erc20_sender: ERC20SenderSection = field(default_factory=ERC20SenderSection)
    web: WebSection = field(default_factory=WebSection)
    admin_panel: AdminSection = field(default_factory=AdminSection)
    dummy: DummySection = field(default_factory=DummySection)
    passthrough: PassthroughSection = field(default_factory=PassthroughSection)
    alerts: AlertSettings = field(default_factory=AlertSettings)  # new: alerts/config.py
    source: str = ""  # the file this config came from (not a TOML key)

    # -- derived views used by the rest of the code --------------------------------------

    @property
    def sender_backend(self) -> str:
        if self.dummy.sender:
            return "dummy"
        return self.sender.backend or "skycoin"

    def dummy_scanner_for(self, coin: str) -> bool:
        coin = self.pool_coin(coin)
        return self.dummy.scanner and (not self.dummy.scanner_coins
                                       or coin in self.dummy.scanner_coins)

    def scanner_for(self, coin: str) -> ScannerSection:
        section: ScannerSection = getattr(self, f"{coin.lower()}_scanner")
        return section

    def address_file_for(self, coin: str) -> str:
        path: str = getattr(self, f"{coin.lower()}_addresses")
        return path

    def coin_enabled(self, coin: str) -> bool:
        """A coin is bindable when its scanner is enabled (real or dummy), as in the Go teller."""
        if coin in self.token_symbols():
            return self.eth_scanner.enabled
        return coin in COINS and self.scanner_for(coin).enabled

    def token_symbols(self) -> list[str]:
        return [t.symbol for t in self.eth_tokens]

    def deposit_coins(self) -> list[str]:
        """Every coin_type a buyer may name in /api/bind, enabled or not."""
        return [*COINS, *self.token_symbols()]

    def pool_coin(self, coin: str) -> str:
        """ERC-20 deposits go to the ETH address pool (a token is received at an ETH address)."""
        return "ETH" if coin in self.token_symbols() else coin

    def network_for(self, coin: str) -> str:
        coin = self.pool_coin(coin)
        return self.scanner_for(coin).network if coin in ("BTC", "LTC") else "mainnet"

    def rate_for(self, coin: str) -> str:
        for token in self.eth_tokens:
            if token.symbol == coin:
                return token.rate
        return self.sky_exchanger.rate_for(coin)


# TOML keys that are not Python identifiers.
_KEY_ALIASES = {"pass": "password"}


def _convert(type_name: str, value: Any, where: str, problems: list[str]) -> Any:
    try:
        if type_name == "bool":
            if not isinstance(value, bool):
                raise ValueError("expected true or false")
            return value
        if type_name == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError("expected an integer")
            return value
        if type_name == "str":
            if not isinstance(value, str):
                raise ValueError("expected a string")
            return value
        if type_name == "Duration":
            return parse_duration(value)
        if type_name == "Decimal":
            number = None if isinstance(value, bool) else _decimal(value)
            if number is None or not number.is_finite():
                raise ValueError(f"expected a number, not {value!r}")
            return number
        if type_name == "dict[str, str]":
            if not isinstance(value, dict) or not all(
                    isinstance(v, str | int | Decimal) and not isinstance(v, bool)
                    for v in value.values()):
                raise ValueError("expected a table of strings, e.g. { BTC = \"SKYBTC\" }")
            return {str(k): str(v) for k, v in value.items()}
        if type_name == "list[str]":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError("expected a list of strings")
            return value
    except (ValueError, InvalidOperation) as exc:
        problems.append(f"{where}: {exc}")
        return None
    raise AssertionError(f"no converter for {type_name}")


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _fill(obj: Any, data: dict[str, Any], prefix: str, problems: list[str]) -> None:
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)} - {"source"}
    for raw_key, value in data.items():
        key = _KEY_ALIASES.get(raw_key, raw_key)
        where = f"{prefix}{raw_key}"
        if key not in names:
            problems.append(f"{where}: unknown key")
            continue
        hint = hints[key]
        current = getattr(obj, key)
        if key == "alerts" and obj.__class__ is Config:  # shared with core.toml: its own parser
            settings, found = parse_alerts(value, where)
            problems.extend(found)
            setattr(obj, key, settings)
        elif dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                problems.append(f"{where}: expected a [{where}] table")
                continue
            _fill(current, value, f"{where}.", problems)
        elif key == "eth_tokens":
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                problems.append(f"{where}: expected [[eth_tokens]] tables")
                continue
            tokens = []
            for i, item in enumerate(value):
                token = TokenSection()
                _fill(token, item, f"eth_tokens[{i}].", problems)
                tokens.append(token)
            setattr(obj, key, tokens)
        else:
            type_name = getattr(hint, "__name__", None) or str(hint)
            if typing.get_origin(hint) is list:
                type_name = "list[str]"
            elif typing.get_origin(hint) is dict:
                type_name = "dict[str, str]"
            if key.endswith("_exchange_rate") or key == "rate":
                converted = str(value) if isinstance(value, int | str | Decimal) and \
                    not isinstance(value, bool) else None
                if converted is None:
                    problems.append(f"{where}: expected a rate such as \"500\" or \"2/3\"")
            else:
                converted = _convert(type_name, value, where, problems)
            if converted is not None:
                setattr(obj, key, converted)


def parse_config(text: str, source: str = "") -> Config:
    """Parse TOML text into a validated Config; raise ConfigError listing every problem."""
    try:
        data = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"invalid TOML: {exc}"], source) from None
    config = Config(source=source)
    problems: list[str] = []
    _fill(config, data, "", problems)
    problems.extend(validate(config))
    if problems:
        raise ConfigError(problems, source)
    return config


def load_config(path: str | Path) -> Config:
    """Read and validate a config file (``.toml`` may be omitted, as the Go teller allowed)."""
    path = Path(path).expanduser()
    if not path.exists() and path.suffix != ".toml" and path.with_suffix(".toml").exists():
        path = path.with_suffix(".toml")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"cannot read config file: {exc.strerror}"], str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"cannot read config file: not UTF-8 text ({exc.reason} at byte "
                           f"{exc.start})"], str(path)) from None
    return parse_config(text, str(path))


def _resolve(config: Config, relative: str) -> Path:
    """Paths in the config are relative to the config file's directory, else to the cwd."""
    path = Path(relative).expanduser()
    if path.is_absolute() or not config.source:
        return path
    candidate = Path(config.source).parent / path
    return candidate if candidate.exists() or not path.exists() else path


def resolve_path(config: Config, relative: str) -> Path:
    return _resolve(config, relative)


def _check_hostport(value: str, where: str, problems: list[str], *, required: bool) -> None:
    if not value:
        if required:
            problems.append(f"{where}: required (host:port)")
        return
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        problems.append(f"{where}: {value!r} is not host:port")


def validate(config: Config) -> list[str]:
    """Cross-field checks. Returns every problem found (empty list = runnable)."""
    problems: list[str] = []
    ex = config.sky_exchanger
    if not 0 <= ex.max_decimals <= 3:
        problems.append("sky_exchanger.max_decimals: must be between 0 and 3 "
                        "(the Skycoin network rejects more decimals)")
    if ex.buy_method not in BUY_METHODS:
        problems.append(f"sky_exchanger.buy_method: {ex.buy_method!r} is not one of "
                        f"{', '.join(BUY_METHODS)}")
    elif ex.buy_method == "passthrough" and not config.passthrough.venue:
        problems.append("sky_exchanger.buy_method: \"passthrough\" needs a [passthrough] section "
                        "(venue = \"core\" or \"ccxt\", markets, and [passthrough.core] or "
                        "[passthrough.ccxt]); the Go teller's [sky_exchanger.c2cx] keys are read "
                        "but no longer used (C2CX is gone)")
    if config.passthrough.venue:
        problems.extend(_validate_passthrough(config))
    if config.teller.max_bound_addrs < 0:
        problems.append("teller.max_bound_addrs: must be >= 0 (0 = unlimited)")
    if config.teller.addr_low_water < 0:
        problems.append("teller.addr_low_water: must be >= 0")

    for coin in ("BTC", "ETH", "LTC", "SKY"):
        scanner = config.scanner_for(coin)
        section = f"{coin.lower()}_scanner"
        if scanner.confirmations_required < 0:
            problems.append(f"{section}.confirmations_required: must be >= 0")
        if scanner.initial_scan_height < 0:
            problems.append(f"{section}.initial_scan_height: must be >= 0")
        if scanner.scan_period <= 0:
            problems.append(f"{section}.scan_period: must be > 0")
        if scanner.network not in NETWORKS:
            problems.append(f"{section}.network: {scanner.network!r} is not one of "
                            f"{', '.join(NETWORKS)}")
        if not scanner.enabled:
            continue
        if coin == "SKY":
            problems.append("sky_scanner.enabled: SKY deposits are not supported "
                            "(the Go teller never finished them either); set it to false")
            continue
        rate = ex.rate_for(coin)
        key = f"sky_exchanger.sky_{coin.lower()}_exchange_rate"
        if not rate and ex.buy_method == "passthrough":
            pass  # bought at the market; a rate, if given, serves direct-bound deposits
        elif not rate:
            problems.append(f"{key}: required while {section} is enabled")
        else:
            try:
                parse_rate(rate)
            except ValueError as exc:
                problems.append(f"{key}: {exc}")
        if not config.address_file_for(coin):
            problems.append(f"{coin.lower()}_addresses: required while {section} is enabled "
                            f"(a .json or .txt file of deposit addresses)")
        elif not _resolve(config, config.address_file_for(coin)).exists():
            problems.append(f"{coin.lower()}_addresses: file "
                            f"{config.address_file_for(coin)!r} does not exist")
        if not config.dummy_scanner_for(coin):
            if coin in ("BTC", "LTC"):
                rpc = getattr(config, f"{coin.lower()}_rpc")
                if not rpc.server:
                    problems.append(f"{coin.lower()}_rpc.server: required while {section} is "
                                    "enabled")
                if not rpc.cookie_file and not (rpc.user and rpc.password):
                    problems.append(f"{coin.lower()}_rpc: set user and pass, or cookie_file")
            if coin == "ETH" and not config.eth_rpc.endpoint:
                problems.append("eth_rpc: set url, or server and port, while eth_scanner is "
                                "enabled")

    seen_symbols: set[str] = set()
    for i, token in enumerate(config.eth_tokens):
        where = f"eth_tokens[{i}]"
        if not re.fullmatch(r"[A-Z0-9]{2,12}", token.symbol or ""):
            problems.append(f"{where}.symbol: {token.symbol!r} must be 2-12 upper-case "
                            "letters/digits")
        elif token.symbol in COINS or token.symbol in seen_symbols:
            problems.append(f"{where}.symbol: {token.symbol!r} is already a coin type")
        seen_symbols.add(token.symbol)
        if not re.fullmatch(r"0x[0-9a-fA-F]{40}", token.address or ""):
            problems.append(f"{where}.address: {token.address!r} is not a contract address")
        if not 0 <= token.decimals <= 36:
            problems.append(f"{where}.decimals: must be between 0 and 36")
        try:
            parse_rate(token.rate)
        except ValueError as exc:
            problems.append(f"{where}.rate: {exc}")

    backend = config.sender.backend
    if backend and backend not in SENDER_BACKENDS:
        problems.append(f"sender.backend: {backend!r} is not one of {', '.join(SENDER_BACKENDS)}")
    if config.sender.replace_after < 0:
        problems.append("sender.replace_after: must be >= 0 (0 = never replace)")
    if config.sender.max_outputs < 1:
        problems.append("sender.max_outputs: must be >= 1")
    if config.sender_backend == "erc20":
        erc = config.erc20_sender
        if not erc.url:
            problems.append("erc20_sender.url: required with sender.backend = \"erc20\"")
        if not re.fullmatch(r"0x[0-9a-fA-F]{40}", erc.token or ""):
            problems.append("erc20_sender.token: the token contract address is required")
        if not erc.key_env and not (erc.key_file and erc.password_file):
            problems.append("erc20_sender: set key_env, or key_file and password_file")
        if erc.confirmations_required < 1:
            problems.append("erc20_sender.confirmations_required: must be >= 1")
    elif config.sender_backend == "skycoin":
        if not config.sky_rpc.address:
            problems.append("sky_rpc.address: required with the skycoin sender")
        if not config.sky_rpc.wallet_id:
            problems.append("sky_rpc.wallet_id: required with the skycoin sender "
                            "(the wallet loaded in the Skycoin node)")

    web = config.web
    if not web.http_addr:
        problems.append("web.http_addr: required")
    _check_hostport(web.http_addr, "web.http_addr", problems, required=False)
    if web.https_addr or web.auto_tls_host or web.tls_cert or web.tls_key:
        problems.append("web.https_addr/auto_tls_host/tls_cert/tls_key: teller serves plain "
                        "HTTP; terminate TLS in a reverse proxy and set web.behind_proxy = true")
    if web.throttle_max < 0:
        problems.append("web.throttle_max: must be >= 0 (0 disables throttling)")
    if web.throttle_duration <= 0:
        problems.append("web.throttle_duration: must be > 0")
    _check_hostport(config.admin_panel.host, "admin_panel.host", problems, required=True)
    from .access import access_problems  # the admin token's rules live with the guard

    problems.extend(access_problems(config))
    if config.dummy.scanner or config.dummy.sender:
        _check_hostport(config.dummy.http_addr, "dummy.http_addr", problems, required=True)
    for coin in config.dummy.scanner_coins:
        if coin not in ("BTC", "ETH", "LTC"):
            problems.append(f"dummy.scanner_coins: {coin!r} is not one of BTC, ETH, LTC")
    if config.dummy.sender_coins < 0 or config.dummy.sender_hours < 0:
        problems.append("dummy.sender_coins/sender_hours: must be >= 0")
    return problems


PASSTHROUGH_VENUES = ("core", "ccxt")


def _validate_passthrough(config: Config) -> list[str]:
    """``[passthrough]`` and its venue's subsection (only when a venue is configured)."""
    problems: list[str] = []
    pt = config.passthrough
    if pt.venue not in PASSTHROUGH_VENUES:
        problems.append(f"passthrough.venue: {pt.venue!r} is not one of "
                        f"{', '.join(PASSTHROUGH_VENUES)}")
    coins = config.deposit_coins()
    for coin, market in pt.markets.items():
        if coin not in coins:
            problems.append(f"passthrough.markets.{coin}: not a deposit coin "
                            f"({', '.join(coins)})")
        elif not market.strip():
            problems.append(f"passthrough.markets.{coin}: empty market name")
    for coin in coins:
        if coin != "SKY" and config.coin_enabled(coin) and coin not in pt.markets:
            problems.append(f"passthrough.markets: no market for {coin} (its scanner is "
                            f"enabled), e.g. markets = {{ {coin} = \"SKY{coin}\" }}")
    for coin, text in pt.minimum_volume.items():
        number = _decimal(text)
        if coin not in coins:
            problems.append(f"passthrough.minimum_volume.{coin}: not a deposit coin")
        elif number is None or not number.is_finite() or number < 0:
            problems.append(f"passthrough.minimum_volume.{coin}: {text!r} is not a number >= 0")
    if pt.settle_wait <= 0 or pt.check_order_wait <= 0:
        problems.append("passthrough.settle_wait/check_order_wait: must be > 0")
    if pt.venue == "core":
        core = pt.core
        if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", core.url or ""):
            problems.append(f"passthrough.core.url: {core.url!r} is not an http(s) URL of the "
                            "core's JSON-RPC (e.g. \"http://127.0.0.1:8080\")")
        if not 0 < core.user_id < 2 ** 32:
            problems.append("passthrough.core.user_id: required, the teller's account on the "
                            "core (1 .. 4294967295)")
        if not 0 <= core.taker_fee < 1:
            problems.append("passthrough.core.taker_fee: must be >= 0 and < 1 (a rate)")
        if core.timeout <= 0:
            problems.append("passthrough.core.timeout: must be > 0")
    elif pt.venue == "ccxt":
        ccxt = pt.ccxt
        if not re.fullmatch(r"[a-z0-9_]+", ccxt.exchange or ""):
            problems.append(f"passthrough.ccxt.exchange: {ccxt.exchange!r} is not a ccxt "
                            "exchange id (e.g. \"binance\")")
        for what in ("key", "secret"):
            env, path = getattr(ccxt, f"{what}_env"), getattr(ccxt, f"{what}_file")
            if bool(env) == bool(path):
                problems.append(f"passthrough.ccxt: set exactly one of {what}_env or "
                                f"{what}_file (the API {what} is never written in the config)")
        if ccxt.api_url and not re.fullmatch(r"https?://\S+", ccxt.api_url):
            problems.append(f"passthrough.ccxt.api_url: {ccxt.api_url!r} is not an http(s) URL")
    return problems


def redacted(config: Config) -> dict[str, Any]:
    """The config as a dict with secrets hidden, for logging at start-up."""
    data = dataclasses.asdict(config)
    for section in ("btc_rpc", "ltc_rpc"):
        if data[section]["password"]:
            data[section]["password"] = "<redacted>"
    for key in ("key", "secret"):
        if data["sky_exchanger"]["c2cx"][key]:
            data["sky_exchanger"]["c2cx"][key] = "<redacted>"
    return data
