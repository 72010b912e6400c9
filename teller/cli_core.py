"""`teller core ...`: run the exchange core, force snapshots, prune the operation log.

The maintainer registers `core_group` under the main `teller` command.
"""

from __future__ import annotations

import gc
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from alerts.center import AlertCenter
    from matchengine.config import CoreConfig, WsConfig

log = logging.getLogger("teller.core")

DEFAULT_DIR = "~/.teller-core"

core_group = click.Group(
    "core",
    help="The viabtc-compatible exchange core: order books, balances, durable operation log, "
         "history and market data behind an HTTP JSON-RPC API.",
)


def _data_dir(value: str) -> Path:
    return Path(value).expanduser()


@core_group.command("run")
@click.option("-c", "--config", "config_path", default="core.toml", show_default=True,
              type=click.Path(dir_okay=False),
              help="Core config file (TOML): [core], [[assets]], [[markets]].")
@click.option("-d", "--dir", "data_dir", default=DEFAULT_DIR, show_default=True,
              help="Data directory (LMDB: operation log, snapshots, history).")
@click.option("--http-addr", default=None,
              help="Override [core] http_addr, e.g. 127.0.0.1:8080 (port 0 = any free port).")
@click.option("--ws-addr", default=None,
              help="Override [ws] addr of the WebSocket push server (\"\" = none; port 0 = any "
                   "free port).")
def run_command(config_path: str, data_dir: str, http_addr: str | None,
                ws_addr: str | None) -> None:
    """Serve the exchange core until SIGTERM/SIGINT.

    Loads the newest snapshot, replays the operation log after it (refusing to start on a gap
    or corruption), then serves JSON-RPC. Every write is on disk before its reply. On
    SIGTERM/SIGINT it drains queued requests, commits them and exits.
    """
    from matchengine.config import ConfigError, load

    # Requests hop between the HTTP loop, writer and committer threads; the default 5 ms GIL
    # switch interval turns each hop into a wait under load.
    sys.setswitchinterval(0.0005)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load(config_path)
    except ConfigError as exc:
        raise config_usage_error(exc.problems, config_path) from None
    try:
        center = core_alerts(config, config_path)
    except ConfigError as exc:
        raise config_usage_error(exc.problems, config_path) from None
    try:
        _serve(config, data_dir, http_addr, ws_addr)
    finally:
        logging.getLogger().removeHandler(center[1])
        center[0].close()


def config_usage_error(problems: list[str], path: str) -> click.UsageError:
    """The teller's style for a config that cannot run: every problem, exit 2."""
    from .cli import ConfigUsageError
    from .config import ConfigError as TellerConfigError

    return ConfigUsageError(str(TellerConfigError(problems, path)))


def core_alerts(config: CoreConfig, config_path: str) -> tuple[AlertCenter, logging.Handler]:
    """The core's alert center from core.toml's [alerts]; its handler on the root logger."""
    import alerts
    from alerts.config import build_center, read_secrets
    from alerts.handler import AlertHandler
    from matchengine.config import ConfigError

    settings = config.alerts
    secrets, problems = read_secrets(settings, Path(config_path).parent)
    if problems:
        raise ConfigError(problems)
    center = build_center(settings, secrets, service="core")
    handler = AlertHandler(center)
    logging.getLogger().addHandler(handler)
    alerts.install(center)
    return center, handler


FULL_PASS_EVERY = 1000  # middle (generation-1) passes between full ones; CPython's default: 10


def settle_heap() -> None:
    """Keep what start-up built out of the collector's full passes, and make those rare.

    The recovered book and balances live as long as the process: frozen, they are never
    rescanned (with 500,000 resting orders a full pass took 270 ms in the middle of matching).
    What grows after start-up (connections, resting orders) still triggers full passes, after
    as few as 10 middle passes by default, and each one stalls every thread for as long as it
    takes to scan the live heap: with 1,000 WebSocket connections, 150-470 ms under load here,
    in two of five bench runs (push p99 53-65 ms there instead of 40-47). One full pass per
    FULL_PASS_EVERY middle passes removed them from the bench. The price is memory: the
    cycles of closed connections wait for the next full pass (~7 MB per 1,000 connections
    closed, measured; freed when it comes, as the allocations that drive it keep coming).
    """
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_PASS_EVERY)


def _serve(config: CoreConfig, data_dir: str, http_addr: str | None,
           ws_addr: str | None) -> None:
    from exchangecore import CoreNode, ListenError
    from matchengine.service import RecoveryError

    addr = http_addr or config.http_addr
    host, _, port = addr.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise click.ClickException(f"--http-addr must be host:port, got {addr!r}")
    ws_config = _ws_config(config.ws, ws_addr)
    try:
        node = CoreNode(config, _data_dir(data_dir), host.strip("[]"), int(port), ws_config)
    except RecoveryError as exc:
        log.error("cannot start the exchange core: %s notice=WATCH", exc)  # -> alert sinks
        raise click.ClickException(f"{exc} notice=WATCH") from None
    except ListenError as exc:
        raise click.ClickException(str(exc.strerror)) from None
    settle_heap()
    server, gateway = node.server, node.gateway

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    click.echo(f"exchange core listening on http://{host}:{server.port}", err=True)
    if gateway is not None:
        _echo_gateway(gateway, ws_config)
    try:
        node.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        node.stop()
        click.echo("exchange core stopped", err=True)


def _ws_config(ws: WsConfig, ws_addr: str | None) -> WsConfig:
    """[ws] with the --ws-addr override, checked like the file's keys."""
    import dataclasses

    from matchengine.config import addr_ok

    if ws_addr is None:
        return ws
    if ws_addr and not addr_ok(ws_addr):
        raise click.ClickException(f"--ws-addr must be host:port or \"\", got {ws_addr!r}")
    return dataclasses.replace(ws, addr=ws_addr)


def _echo_gateway(gateway: Any, ws_config: WsConfig) -> None:
    if ws_config.addr:
        host = ws_config.addr.rpartition(":")[0]
        click.echo(f"WebSocket push listening on ws://{host}:{gateway.port}/ (viabtc) and "
                   f"/connmix", err=True)
    if ws_config.events_addr:
        host = ws_config.events_addr.rpartition(":")[0]
        click.echo(f"core event stream on ws://{host}:{gateway.events_port}/", err=True)


@core_group.command("ws")
@click.option("-c", "--config", "config_path", default="core.toml", show_default=True,
              type=click.Path(dir_okay=False), help="Core config file; its [ws] section is used.")
@click.option("--core-url", default=None,
              help="The core's HTTP JSON-RPC URL (default: http://[core] http_addr/).")
@click.option("--events-url", default=None,
              help="The core's event stream (default: ws://[ws] events_addr/).")
@click.option("--ws-addr", default=None, help="Override [ws] addr (port 0 = any free port).")
def ws_command(config_path: str, core_url: str | None, events_url: str | None,
               ws_addr: str | None) -> None:
    """Serve WebSocket push alone, for a core running elsewhere (scale-out).

    Queries and order entry go to the core over HTTP; pushes follow the core's event stream,
    which the core serves when its [ws] events_addr is set (loopback only: it carries every
    user's orders). The gateway waits for the core and reconnects to it.
    """
    import dataclasses

    from matchengine.config import ConfigError, load
    from wsgateway import standalone

    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    ws_config = _ws_config(config.ws, ws_addr)
    if not ws_config.addr:
        raise click.ClickException("[ws] addr (or --ws-addr) must be set for teller core ws")
    core_url = core_url or f"http://{config.http_addr}/"
    if events_url is None:
        if not config.ws.events_addr:
            raise click.ClickException("the core's event stream is needed: set [ws] events_addr "
                                       "(in the core's config too) or pass --events-url")
        events_url = f"ws://{config.ws.events_addr}/"
    # this process serves no event stream of its own
    ws_config = dataclasses.replace(ws_config, events_addr="")

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    click.echo(f"waiting for the core at {core_url}", err=True)
    try:
        gateway = standalone(ws_config, core_url, events_url)
        settle_heap()
    except OSError as exc:
        raise click.ClickException(f"cannot start the WebSocket server on {ws_config.addr}: "
                                   f"{exc.strerror or exc}") from None
    except KeyboardInterrupt:
        return
    _echo_gateway(gateway, ws_config)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        gateway.stop()
        click.echo("WebSocket gateway stopped", err=True)


@core_group.command("snapshot")
@click.option("-d", "--dir", "data_dir", default=DEFAULT_DIR, show_default=True,
              help="Data directory of the core (running or not).")
def snapshot_command(data_dir: str) -> None:
    """Write a snapshot of balances, open orders and id counters now.

    Works whether or not the core is running: the snapshot is rebuilt from the newest
    snapshot plus the operation log, using the config the core last started with.
    """
    from matchengine.config import ConfigError, from_dict
    from matchengine.service import RecoveryError, make_snapshot
    from matchengine.store import Store

    path = _data_dir(data_dir)
    if not (path / "data.mdb").exists():
        raise click.ClickException(f"{path} holds no exchange-core data")
    store = Store(path)
    try:
        stored = store.get_meta("config")
        if stored is None:
            raise click.ClickException(f"{path} has no recorded config; start the core once")
        try:
            config = from_dict(stored)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
        try:
            oper_id = make_snapshot(store, config)
        except RecoveryError as exc:
            raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    click.echo(f"snapshot written at operation {oper_id}")


@core_group.command("prune")
@click.option("-d", "--dir", "data_dir", default=DEFAULT_DIR, show_default=True,
              help="Data directory of the core (safe while it runs).")
@click.option("--yes", is_flag=True,
              help="Do not ask before deleting (needed without a terminal: cron, scripts).")
def prune_command(data_dir: str, yes: bool) -> None:
    """Delete operation-log entries no kept snapshot needs, to bound the log's growth.

    Start-up replays the log after the newest snapshot; this deletes the entries up to the
    oldest of the kept snapshots (3 are kept), so a start from an older snapshot stays possible
    as well. History tables and idempotency keys are not touched. Safe while the core runs;
    LMDB reuses the freed pages, the file does not shrink. The log is also the record of every
    write: copy the data directory first (`mdb_copy`) if it must be archived.
    """
    from matchengine.store import Store

    path = _data_dir(data_dir)
    if not (path / "data.mdb").exists():
        raise click.ClickException(f"{path} holds no exchange-core data")
    store = Store(path)
    try:
        snapshots = store.snapshot_ids()
        first = store.first_oper_id()
        if not snapshots or not first or first > snapshots[0]:
            click.echo("nothing to prune: no kept snapshot covers the oldest log entry "
                       f"(log starts at operation {first}, snapshots {snapshots or 'none'})")
            return
        upto = snapshots[0]
        count = upto - first + 1
        if not yes:
            question = (f"delete the log entries of operations {first}..{upto} "
                        f"({count} entries) from {path}?")
            try:
                agreed = click.confirm(question)
            except click.Abort:  # end of input: run from cron or a script, no terminal
                raise click.ClickException(
                    "nothing deleted: no answer to the confirmation (no terminal?); run "
                    "`teller core prune --yes` to prune without asking") from None
            if not agreed:
                raise click.ClickException("nothing deleted")
        deleted = 0
        with click.progressbar(length=count, label="pruning the operation log",
                               file=sys.stderr) as bar:
            for done in store.prune_log(upto):
                deleted += done
                bar.update(done)
    finally:
        store.close()
    click.echo(f"deleted {deleted} log entries (operations {first}..{upto}); "
               f"replay starts after snapshot {snapshots[-1]}")
