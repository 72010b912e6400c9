"""``teller admin``: read and change runtime settings, and read their audit log.

Against a running teller through its admin API (``--url``, default the shipped
``http://127.0.0.1:7711``; with ``Authorization: Bearer`` from ``$TELLER_ADMIN_TOKEN`` or
``--token-file`` when set), or, with ``-d DIR``, straight in a stopped teller's data
directory (``-c`` names its config, which the change is validated against). Either way the
change is checked exactly as at start-up and recorded in the audit log with who made it.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from common.storage import Storage

    from .runtime_settings import RuntimeSettings

DEFAULT_URL = "http://127.0.0.1:7711"

admin_group = click.Group(
    "admin",
    help="Runtime settings of a teller (rates, bind_enabled, send_enabled, max_bound_addrs, "
         "max_decimals): get, set, reset, and the audit log of every change. Settings set here "
         "win over config.toml until reset.",
)


def _actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "?"
    return f"cli {user}@{socket.gethostname()}"


class _Target:
    """Where the command acts: the admin API of a running teller, or a data directory."""

    def __init__(self, url: str, data_dir: str | None, config_path: str,
                 token_file: str | None) -> None:
        self.url = url.rstrip("/")
        self.data_dir = data_dir
        self.config_path = config_path
        self.token_file = token_file

    # -- over HTTP ---------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"X-Teller-Actor": _actor()}
        token = os.environ.get("TELLER_ADMIN_TOKEN", "")
        if self.token_file:
            try:
                token = Path(self.token_file).expanduser().read_text().strip()
            except OSError as exc:
                raise click.ClickException(f"cannot read --token-file {self.token_file}: "
                                           f"{exc.strerror}") from None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def http(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        import requests

        try:
            resp = requests.request(method, self.url + path, json=body, timeout=15,
                                    headers=self._headers())
        except requests.RequestException as exc:
            raise click.ClickException(
                f"cannot reach the admin API at {self.url}: {exc.__class__.__name__}; is the "
                "teller running? (or use -d DIR on a stopped teller's data directory)") from None
        if resp.status_code != 200:
            raise click.ClickException(f"{resp.status_code}: {resp.text.strip()}")
        answer: dict[str, Any] = resp.json()
        return answer

    # -- on the data directory -----------------------------------------------------------------

    def local(self) -> tuple[RuntimeSettings, Storage]:
        """(RuntimeSettings, Storage) on the data directory; the caller closes the storage."""
        from common.storage import Storage, StorageError
        from ledger.settings import SettingsStore

        from .config import ConfigError, load_config
        from .runtime_settings import RuntimeSettings

        try:
            config = load_config(self.config_path)
        except ConfigError as exc:
            raise click.UsageError(str(exc)) from None
        data_dir = Path(self.data_dir or "").expanduser()
        if not (data_dir / config.dbfile).exists():  # a typo must not create a data dir
            raise click.ClickException(f"{data_dir} holds no teller data ({config.dbfile})")
        try:
            storage = Storage(data_dir, db_name=config.dbfile)
        except StorageError as exc:
            raise click.ClickException(f"{exc} (a running teller: drop -d to use its admin "
                                       "API)") from None
        try:
            return RuntimeSettings(config, SettingsStore(storage)), storage
        except ConfigError as exc:
            storage.close()
            raise click.UsageError(str(exc)) from None

    def change(self, changes: dict[str, Any]) -> dict[str, Any]:
        from ledger.settings import RESET, SettingsError, resolve_key

        if self.data_dir is None:
            key, value = next(iter(changes.items()))
            if value is RESET:
                return self.http("POST", "/api/settings/reset", {"key": key})
            return self.http("POST", "/api/settings", {"key": key, "value": value})
        settings, storage = self.local()
        try:
            changes = {resolve_key(k): v for k, v in changes.items()}
            entries = settings.change(changes, by=f"{_actor()} (data dir)")
            return {"changed": entries, "settings": settings.view()}
        except SettingsError as exc:
            raise click.ClickException("Invalid setting: " + "; ".join(exc.problems)) from None
        finally:
            storage.close()

    def view(self) -> dict[str, Any]:
        if self.data_dir is None:
            found: dict[str, Any] = self.http("GET", "/api/settings")["settings"]
            return found
        settings, storage = self.local()
        try:
            return settings.view()
        finally:
            storage.close()

    def audit(self, limit: int) -> list[dict[str, Any]]:
        if self.data_dir is None:
            entries: list[dict[str, Any]] = self.http(
                "GET", f"/api/settings/audit?limit={limit}")["entries"]
            return entries
        settings, storage = self.local()
        try:
            return settings.store.audit(limit)
        finally:
            storage.close()


def _target_options(fn: Any) -> Any:
    options = [
        click.option("--url", default=lambda: os.environ.get("TELLER_ADMIN_URL", DEFAULT_URL),
                     show_default=f"$TELLER_ADMIN_URL or {DEFAULT_URL}",
                     help="Admin API of the running teller."),
        click.option("-d", "--dir", "data_dir", default=None,
                     help="Work on this (stopped) teller's data directory instead of the API."),
        click.option("-c", "--config", "config_path", default="config.toml", show_default=True,
                     help="With -d: the teller's config file (changes are checked against it)."),
        click.option("--token-file", default=None,
                     help="File holding the admin API token (else $TELLER_ADMIN_TOKEN)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _show(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


@admin_group.command("get")
@click.argument("key", required=False)
@_target_options
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
def get_command(key: str | None, url: str, data_dir: str | None, config_path: str,
                token_file: str | None, as_json: bool) -> None:
    """Show every runtime setting (or KEY): effective value, and whether the file or a runtime
    change set it."""
    from ledger.settings import SettingsError, resolve_key

    view = _Target(url, data_dir, config_path, token_file).view()
    if key:
        try:
            full = resolve_key(key)
        except SettingsError as exc:
            raise click.ClickException("; ".join(exc.problems)) from None
        if full not in view:
            raise click.ClickException(f"{key}: not a runtime setting of this teller")
        view = {full: view[full]}
    if as_json:
        click.echo(json.dumps(view, indent=4))
        return
    for name, entry in view.items():
        line = f"{name} = {_show(entry['value'])}  ({entry['source']}"
        if entry["source"] == "runtime":
            line += f"; file: {_show(entry['file_value'])}; set by {entry['set_by']}"
        click.echo(line + ")")


@admin_group.command("set")
@click.argument("key")
@click.argument("value")
@_target_options
def set_command(key: str, value: str, url: str, data_dir: str | None, config_path: str,
                token_file: str | None) -> None:
    """Set KEY to VALUE, e.g. `sky_btc_exchange_rate 600` or `bind_enabled false`.

    Checked as at start-up; applied at once and kept across restarts until `teller admin reset
    KEY`. A new rate applies to deposits first seen from now on, never to recorded ones.
    """
    result = _Target(url, data_dir, config_path, token_file).change({key: value})
    for entry in result["changed"]:
        click.echo(f"{entry['key']}: {_show(entry['old'])} -> {_show(entry['new'])}")


@admin_group.command("reset")
@click.argument("key")
@_target_options
def reset_command(key: str, url: str, data_dir: str | None, config_path: str,
                  token_file: str | None) -> None:
    """Drop the runtime value of KEY: the config file's value applies again."""
    result = _Target(url, data_dir, config_path, token_file).change({key: None})
    if not result["changed"]:
        click.echo(f"{key}: no runtime value; the file's value applies")
    for entry in result["changed"]:
        click.echo(f"{entry['key']}: {_show(entry['old'])} -> {_show(entry['new'])} (file)")


@admin_group.command("audit")
@_target_options
@click.option("-n", "--limit", default=50, show_default=True, help="Newest N entries.")
def audit_command(url: str, data_dir: str | None, config_path: str, token_file: str | None,
                  limit: int) -> None:
    """The audit log of runtime-setting changes: when, key, old -> new, by whom."""
    import time

    for e in _Target(url, data_dir, config_path, token_file).audit(limit):
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e["at"]))
        click.echo(f"{when}Z {e['action']} {e['key']}: {_show(e['old'])} -> {_show(e['new'])}"
                   f"  by {e['by']}")
