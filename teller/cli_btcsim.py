"""`teller tool btcsim`: run the bitcoind-compatible block simulator in the foreground.

The simulator itself lives in ``tools.btcsim`` (its module docstring documents the JSON-RPC
dialect and the control API); this module only parses options, serves it and waits for
SIGINT/SIGTERM, so demos and benchmarks can run it as a separate process.
"""

from __future__ import annotations

import signal
import threading

import click


@click.command("btcsim")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port", default=18443, show_default=True, type=click.IntRange(0, 65535),
    help="Port for JSON-RPC and /control/* (0 = a free port, printed at start).",
)
@click.option("--user", default="user", show_default=True, help="JSON-RPC basic-auth user.")
@click.option(
    "--password", default="pass", show_default=True, help="JSON-RPC basic-auth password."
)
@click.option(
    "--core-version", default=22, show_default=True, type=click.IntRange(0, 99),
    help="Block shape: >= 22 is Bitcoin Core 22+ (scriptPubKey.address, fee); "
    "21 is 0.21 (scriptPubKey.addresses, reqSigs).",
)
@click.option(
    "--start-height", default=0, show_default=True, type=click.IntRange(0, 10_000_000),
    help="Height of the simulator's first block; lower heights do not exist.",
)
def btcsim_command(
    host: str, port: int, user: str, password: str, core_version: int, start_height: int
) -> None:
    """Serve a bitcoind-compatible block simulator (JSON-RPC + control API) until stopped.

    Mine with e.g. curl -X POST http://HOST:PORT/control/mine -d
    '{"txs": [[{"address": "bcrt1q...", "value": 100000}]]}' (values in satoshi).
    """
    from tools.btcsim import start_simulator

    try:
        handle = start_simulator(
            host=host, port=port, user=user, password=password,
            core_version=core_version, start_height=start_height,
        )
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot start btcsim: {exc}") from exc
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    click.echo(
        f"btcsim: JSON-RPC on http://{host}:{handle.port} (user {user!r}), "
        f"control on {handle.url}/control/state, core_version {core_version}, "
        f"height {handle.simulator.height}",
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        handle.stop()
    click.echo("btcsim: stopped")
