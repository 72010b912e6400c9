"""Runtime settings on a running teller: validated as at start-up, applied to the live config.

``ledger/settings.py`` keeps the overrides and their audit log; this module decides whether a
set of overrides can run — the config file's values with the overrides on top must pass
``teller.config.validate`` and every overridden rate ``parse_rate`` (the one rate parser) —
and applies them: to the shared ``Config`` the APIs and scanners read (``rate_for`` is read at
each deposit's first sight, so a new rate applies to deposits recorded from then on and never
to those already recorded), and to the exchanger's and sender's copies of ``send_enabled`` and
``max_decimals``. All changes of one request are checked together, committed in one LMDB
transaction and applied under one lock.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import ledger.settings as registry
from ledger.settings import SettingsError, SettingsStore, lookup

from .config import Config, ConfigError, parse_rate, validate


def _target(config: Config, key: str) -> tuple[Any, str] | None:
    """The object and attribute that hold ``key`` in ``config`` (None: no such token)."""
    parts = key.split(".")
    if parts[0] == "eth_tokens":
        token = next((t for t in config.eth_tokens if t.symbol == parts[1]), None)
        return (token, parts[2]) if token is not None else None
    holder: Any = config
    for part in parts[:-1]:  # "section.key", or deeper ("sky_exchanger.c2cx.key")
        holder = getattr(holder, part)
    return holder, parts[-1]


def _get(holder: Any, name: str) -> Any:
    """An attribute of a section, or an entry of a table (``passthrough.minimum_volume``)."""
    return holder.get(name) if isinstance(holder, dict) else getattr(holder, name)


def _set(holder: Any, name: str, value: Any) -> None:
    if isinstance(holder, dict):
        holder[name] = value
    else:
        setattr(holder, name, value)


def config_value(config: Config, key: str) -> Any:
    """The value of ``key`` in ``config``, JSON-ready (a Decimal as its string)."""
    target = _target(config, key)
    value = _get(*target) if target else None
    return str(value) if isinstance(value, Decimal) else value


def _apply(config: Config, values: dict[str, Any]) -> list[str]:
    problems = []
    for key, value in values.items():
        target = _target(config, key)
        if target is None:
            problems.append(f"{key}: no such [[eth_tokens]] symbol in the config")
            continue
        current = _get(*target)
        # "decimal" settings are stored as strings (JSON); the config holds a Decimal (or, in a
        # table of strings such as passthrough.minimum_volume, the string itself)
        _set(target[0], target[1], Decimal(value) if isinstance(current, Decimal) else value)
    return problems


def check_overrides(file_config: Config, values: dict[str, Any]) -> list[str]:
    """Every problem of ``file_config`` with ``values`` applied: the start-up checks."""
    candidate = copy.deepcopy(file_config)
    problems = _apply(candidate, values)
    for key, value in values.items():
        setting = lookup(key)
        if setting is not None and setting.kind == "rate":
            try:
                parse_rate(value)
            except ValueError as exc:
                problems.append(f"{key}: {exc}")
    problems.extend(p for p in validate(candidate) if p not in problems)
    return problems


class RuntimeSettings:
    """The effective settings of one teller: its file config plus the persisted overrides."""

    def __init__(self, config: Config, store: SettingsStore) -> None:
        self.config = config  # the live object every part reads
        self.file_config = copy.deepcopy(config)  # as loaded from the file
        self.store = store
        self._lock = threading.Lock()
        self.on_apply: list[Callable[[Config], None]] = []
        values = store.values()
        problems = check_overrides(self.file_config, values)
        if problems:
            keys = ", ".join(sorted(values))
            raise ConfigError([*problems, f"runtime settings ({keys}) are stored in the data "
                                          "directory: fix the file, or `teller admin reset KEY`"],
                              config.source)
        _apply(self.config, values)

    def keys(self) -> list[str]:
        names = [s.key for s in registry.SETTINGS if "*" not in s.key]
        names += [f"eth_tokens.{t.symbol}.rate" for t in self.file_config.eth_tokens]
        if self.file_config.passthrough.venue:  # a teller that buys at the market
            names += [f"passthrough.minimum_volume.{coin}"
                      for coin in self.file_config.deposit_coins() if coin != "SKY"]
        return names

    def view(self, *, public: bool = False) -> dict[str, dict[str, Any]]:
        """key -> effective value, its source ("file" or "runtime"), the file's value, when/who.

        ``public``: without ``set_by`` (an operator's address and user@host are nobody else's
        business).
        """
        overrides = self.store.overrides()
        result = {}
        for key in self.keys():
            entry: dict[str, Any] = {"value": config_value(self.config, key),
                                     "source": "runtime" if key in overrides else "file",
                                     "file_value": config_value(self.file_config, key)}
            if key in overrides:
                entry["set_at"] = overrides[key]["at"]
                if not public:
                    entry["set_by"] = overrides[key]["by"]
            result[key] = entry
        return result

    def change(self, changes: dict[str, Any], by: str) -> list[dict[str, Any]]:
        """Validate, persist and apply ``changes`` (None = reset); SettingsError if refused."""
        unknown = [k for k in changes if k not in self.keys()]
        if unknown:
            raise SettingsError([f"{k}: not a runtime setting of this teller (one of "
                                 f"{', '.join(self.keys())})" for k in unknown])
        with self._lock:
            entries = self.store.change(
                changes, by=by, check=lambda values: check_overrides(self.file_config, values),
                file_value=lambda key: config_value(self.file_config, key))
            effective = {k: config_value(self.file_config, k) for k in changes}
            effective.update({k: v for k, v in self.store.values().items() if k in changes})
            _apply(self.config, effective)
            for hook in self.on_apply:
                hook(self.config)
        return entries
