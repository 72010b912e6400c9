"""``teller tool addaddresses``: add deposit addresses to a data directory's pool.

Works whether the teller is running or not: the pool lives in LMDB, which serialises writers
across processes, so a running teller hands the new addresses out on its next bind and
``remaining_addresses`` in the admin API shows them at once. Nothing is lost on restart: the
configured address file is merged into the pool again, and addresses already known (free or
used) are left alone.
"""

from __future__ import annotations

from pathlib import Path

import click

from addrs.files import AddressFileError, load_address_file


@click.command("addaddresses")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--coin", required=True, type=click.Choice(["BTC", "LTC", "ETH"], case_sensitive=False),
              help="Which pool the addresses go to.")
@click.option("--network", default="mainnet", show_default=True,
              type=click.Choice(["mainnet", "testnet", "regtest"]),
              help="Network the addresses must belong to (the coin's scanner network).")
@click.option("-d", "--dir", "data_dir", default="~/.teller", show_default=True,
              help="The teller's data directory.")
@click.option("--dbfile", default="teller.db", show_default=True,
              help="The database name inside the data directory (config key dbfile).")
def addaddresses_command(file: str, coin: str, network: str, data_dir: str, dbfile: str) -> None:
    """Validate FILE (.json or .txt) and append its new addresses to the COIN pool."""
    from addrs.pool import AddressPool
    from common.storage import Storage, StorageError

    try:
        addresses = load_address_file(file, coin, network)
    except AddressFileError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        raise click.ClickException(f"{len(exc.problems)} bad line(s); nothing was added") \
            from None
    try:
        storage = Storage(Path(data_dir).expanduser(), db_name=dbfile, exclusive=False)
    except (OSError, StorageError) as exc:
        raise click.ClickException(f"cannot open the data directory {data_dir}: {exc}") \
            from None
    try:
        pool = AddressPool(storage)
        result = pool.add(coin, addresses)
        remaining = pool.remaining(coin)
    finally:
        storage.close()
    click.echo(f"added {result.added} {coin} address(es); {result.already_known} already "
               f"known; {remaining} free in the pool")
