"""The ``teller`` command: one click group, commands named ``<verb>_command``.

``teller run`` starts the service; ``teller tool ...`` holds the operator tools (address
files, the block simulator); ``teller core ...`` runs the exchange core. Bad config is a usage
error listing every problem (exit 2), never a traceback.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path

import click

from .cli_addresses import addaddresses_command
from .config import ConfigError, load_config, redacted

log = logging.getLogger("teller")

DEFAULT_DIR = "~/.teller"


class ConfigUsageError(click.UsageError):
    """A config that cannot run; shown as a usage error so the exit code is 2."""


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``--version``: the package version and the git commit, as /api/health shows it."""
    if not value or ctx.resilient_parsing:
        return
    from .service import _git_version

    click.echo(f"teller, version {_git_version()}")
    ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_print_version, help="Show the version (with the git commit) and exit.")
def cli() -> None:
    """teller: sell a token for BTC, ETH or LTC deposits, with exactly-once payouts.

    A buyer binds the address where they want the token (POST /api/bind) and gets a deposit
    address; scanners see the deposit, the exchanger decides what it buys and the sender pays
    it. Start with `teller run -c config.toml`; see `teller COMMAND --help`.
    """


@cli.command("run")
@click.option("-c", "--config", "config_path", default="config.toml", show_default=True,
              type=click.Path(dir_okay=False), help="TOML config file (Go teller keys).")
@click.option("-d", "--dir", "data_dir", default=DEFAULT_DIR, show_default=True,
              help="Data directory: the LMDB database, lock file and dummy chain live here.")
def run_command(config_path: str, data_dir: str) -> None:
    """Run the teller: scanners, exchanger, sender and the public, admin and dummy APIs.

    Stops cleanly on SIGINT or SIGTERM; SIGHUP reopens the log file. Only one teller may run
    on a data directory at a time.
    """
    from common.storage import StorageError

    from .logs import reopen, setup_logging
    from .service import Service

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise ConfigUsageError(str(exc)) from None
    handler = setup_logging(config.debug, config.logfile or None)
    log.info("starting teller with %s", config_path)
    log.debug("config: %s", redacted(config))
    try:
        service = Service(config, Path(data_dir).expanduser())
    except ConfigError as exc:
        raise ConfigUsageError(str(exc)) from None
    except StorageError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:  # the data directory cannot be created or opened
        raise click.ClickException(f"cannot use the data directory {data_dir}: {exc}") from None
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, lambda *_: reopen(handler))
    pidfile = Path(config.pidfile) if config.pidfile else None
    try:
        if pidfile:  # before any server answers: whoever sees the APIs up finds the pidfile
            pidfile.write_text(f"{os.getpid()}\n")
        service.start()
        urls = ", ".join(f"{s.name} {s.url}" for s in service.servers)
        log.info("teller running (%s)", urls)
        while not stop.wait(1.0):
            pass
    except OSError as exc:
        log.error("cannot start: %s", exc)
        service.stop()
        raise click.ClickException(f"cannot start: {exc}") from None
    finally:
        service.stop()
        if pidfile and pidfile.exists():
            pidfile.unlink()


def _register_commands() -> None:
    """Command groups that live in their own modules."""
    from .cli_admin import admin_group
    from .cli_btcsim import btcsim_command
    from .cli_core import core_group
    from .cli_tool import tool_group

    tool_group.add_command(addaddresses_command, "addaddresses")
    tool_group.add_command(btcsim_command, "btcsim")
    cli.add_command(tool_group, "tool")
    cli.add_command(core_group, "core")
    cli.add_command(admin_group, "admin")


_register_commands()


def main() -> None:
    cli(prog_name="teller")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())  # type: ignore[func-returns-value]  # click exits itself
