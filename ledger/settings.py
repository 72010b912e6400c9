"""Runtime settings: operator overrides of a few config keys, persisted, with an audit log.

The registry ``SETTINGS`` names what may change while the teller runs (rates, binding and
sending switches, limits); adding one is one entry. Overrides live in the data directory's
LMDB (named database ``settings``) and win over the config file until reset. Every change is
appended to an audit log — when, key, old → new, from where — that is never rewritten.

This module knows keys, value types and storage. Whether a value can run is the config's
question: ``SettingsStore.change`` takes a ``check`` callable (the teller passes one that runs
its start-up validation over the config with the overrides applied) and commits nothing
unless it returns no problems. The check runs inside the write transaction, so two concurrent
changes cannot both pass against the same old state; it does no I/O.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from common.storage import Storage

DB = "settings"
RESET = None  # the "new value" of a reset in ``change``


@dataclass(frozen=True)
class Setting:
    key: str  # the config key, as written in config.toml ("section.key"); may hold one "*"
    kind: str  # "rate" | "bool" | "int" | "decimal" (stored as its string, e.g. a minimum)
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("sky_exchanger.sky_btc_exchange_rate", "rate", "payout tokens per BTC"),
    Setting("sky_exchanger.sky_eth_exchange_rate", "rate", "payout tokens per ETH"),
    Setting("sky_exchanger.sky_ltc_exchange_rate", "rate", "payout tokens per LTC"),
    Setting("eth_tokens.*.rate", "rate", "payout tokens per unit of a configured ERC-20 token"),
    Setting("teller.bind_enabled", "bool", "false: /api/bind answers 403"),
    Setting("sky_exchanger.send_enabled", "bool", "false: payable deposits wait"),
    Setting("teller.max_bound_addrs", "int", "deposit addresses per buyer (0 = unlimited)"),
    Setting("sky_exchanger.max_decimals", "int", "decimals kept in a payout amount (0..3)"),
    Setting("passthrough.minimum_volume.*", "decimal",
            "passthrough: smallest deposit of a coin that is bought (whole coins)"),
)


class SettingsError(ValueError):
    """A change that cannot be applied; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@functools.cache
def _pattern(key: str) -> re.Pattern[str]:
    return re.compile("[^.]+".join(re.escape(part) for part in key.split("*")))


def lookup(key: str) -> Setting | None:
    """The registry entry for ``key`` ("*" stands for one dotted part, e.g. a token symbol)."""
    for setting in SETTINGS:
        if _pattern(setting.key).fullmatch(key):
            return setting
    return None


def resolve_key(name: str) -> str:
    """A full key from a full key or a unique last part (``sky_btc_exchange_rate``)."""
    if lookup(name) is not None:
        return name
    matches = [s.key for s in SETTINGS if "*" not in s.key and s.key.split(".")[-1] == name]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(s.key for s in SETTINGS)
    raise SettingsError([f"{name}: not a runtime setting (one of {known})"])


def coerce(setting: Setting, value: Any) -> Any:
    """The stored form of ``value`` (JSON or command-line text); ValueError if the type is wrong."""
    if setting.kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise ValueError("expected true or false")
    if setting.kind == "int":
        if isinstance(value, bool):
            raise ValueError("expected an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value.strip())
        raise ValueError("expected an integer")
    if setting.kind == "decimal":
        try:
            number = Decimal(str(value).strip())
        except ArithmeticError:
            number = None
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal) \
                or number is None or not number.is_finite():
            raise ValueError("expected a decimal number such as \"0.005\"")
        return str(number)
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal) \
            or not str(value).strip():
        raise ValueError("expected a rate such as \"500\", \"0.5\" or \"2/3\"")
    return str(value).strip()  # a rate stays as written; the check parses it


class SettingsStore:
    """Overrides and the audit log in LMDB; ``overrides()`` is cached between changes."""

    def __init__(self, storage: Storage, *, clock: Callable[[], float] = time.time) -> None:
        self.storage = storage
        self.clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, dict[str, Any]] | None = None

    def overrides(self) -> dict[str, dict[str, Any]]:
        """key -> {"value", "at", "by"} for every key set at run time."""
        with self._lock:
            if self._cache is None:
                with self.storage.read() as txn:
                    self._cache = {k.removeprefix("value/"): v
                                   for k, v in self.storage.items(txn, DB, "value/")}
            return dict(self._cache)

    def values(self) -> dict[str, Any]:
        return {key: entry["value"] for key, entry in self.overrides().items()}

    def change(self, changes: dict[str, Any], *, by: str,
               check: Callable[[dict[str, Any]], list[str]],
               file_value: Callable[[str], Any]) -> list[dict[str, Any]]:
        """Set (or, with ``RESET``, remove) overrides in one transaction; the audit entries.

        ``check(values)`` gets every override as it would be after the change and returns the
        problems; any problem and nothing is written (SettingsError). ``file_value(key)`` is
        the config file's value, the "old" or "new" side of an entry when no override is.
        """
        problems: list[str] = []
        typed: dict[str, Any] = {}
        for key, value in changes.items():
            setting = lookup(key)
            if setting is None:
                problems.append(f"{key}: not a runtime setting")
            elif value is RESET:
                typed[key] = RESET
            else:
                try:
                    typed[key] = coerce(setting, value)
                except ValueError as exc:
                    problems.append(f"{key}: {exc}")
        if problems:
            raise SettingsError(problems)
        st = self.storage
        now = int(self.clock())

        def write(txn: Any) -> list[dict[str, Any]]:
            current = {k.removeprefix("value/"): v for k, v in st.items(txn, DB, "value/")}
            after = {k: v["value"] for k, v in current.items()}
            for key, value in typed.items():
                if value is RESET:
                    after.pop(key, None)
                else:
                    after[key] = value
            found = check(after)
            if found:
                raise SettingsError(found)
            entries = []
            for key, value in typed.items():
                old = current[key]["value"] if key in current else file_value(key)
                new = value if value is not RESET else file_value(key)
                if value is RESET:
                    if key not in current:
                        continue  # nothing to reset: no entry
                    st.delete(txn, DB, f"value/{key}")
                else:
                    st.put(txn, DB, f"value/{key}", {"value": value, "at": now, "by": by})
                seq = st.next_counter(txn, "settings_audit_seq")
                entry = {"seq": seq, "at": now, "key": key, "old": old, "new": new,
                         "action": "reset" if value is RESET else "set", "by": by}
                st.put(txn, DB, f"audit/{seq:016x}", entry)
                entries.append(entry)
            return entries

        with self._lock:
            with st.write() as txn:
                entries = write(txn)
            self._cache = None
        return entries

    def audit(self, limit: int = 1000) -> list[dict[str, Any]]:
        """The newest ``limit`` audit entries, oldest first."""
        with self.storage.read() as txn:
            entries = [entry for _, entry in self.storage.items(txn, DB, "audit/")]
        return entries[-limit:] if limit else entries
