"""``teller tool``: deposit-address files for operators (generate from an xpub or seed, check).

Output formats are the Go teller's: JSON ``{"btc_addresses": [...]}`` (``eth_addresses``,
``ltc_addresses``) or text, one address per line. Addresses go to stdout or, with ``-o FILE``,
to a file written atomically; progress, warnings and summaries go to stderr so stdout stays a
clean address file.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click

from addrs.addrgen import (
    Generated,
    ProgressCallback,
    check_address_file,
    generate_from_seed,
    generate_from_xpub,
)
from addrs.derive import SCRIPT_TYPES, DerivationError
from addrs.files import AddressFileError, format_addresses, write_address_file
from addrs.validate import NETWORKS

PROGRESS_THRESHOLD = 1000  # show a progress bar above this many addresses

_COIN = click.Choice(["BTC", "LTC", "ETH"], case_sensitive=False)
_TYPE = click.Choice(list(SCRIPT_TYPES))
_NETWORK = click.Choice(list(NETWORKS))

SEED_WARNING = (
    "WARNING: this SEED holds the private keys of every address printed. Use seed-derived "
    "addresses for tests and demos only; for real deposits derive them from an account xpub "
    "with `teller tool newaddresses` and keep the seed offline."
)

tool_group = click.Group(
    "tool",
    help=(
        "Deposit-address helpers: derive address files from a watch-only BIP32 extended public "
        "key (newaddresses), from a seed for tests and demos (newbtcaddress, newltcaddress, "
        "newethaddress), check an address file (checkaddresses) and add one to a data "
        "directory's pool (addaddresses); and a bitcoind-compatible block simulator for tests "
        "and benchmarks (btcsim)."
    ),
)


def _output_format(output: Path | None, as_json: bool) -> bool:
    """JSON or text for this run; the teller reads a file as JSON only when it ends in .json."""
    if output is None:
        return as_json
    is_json_name = output.suffix.lower() == ".json"
    if as_json and not is_json_name:
        raise click.UsageError(
            "--json output must go to a file ending in .json (the teller reads address files "
            "by their suffix)"
        )
    return as_json or is_json_name


def _generate(count: int, run: Callable[[ProgressCallback | None], Generated]) -> Generated:
    """Run a generation with a progress bar on stderr when ``count`` is large."""
    try:
        if count <= PROGRESS_THRESHOLD:
            return run(None)
        with click.progressbar(
            length=count, label="deriving addresses", file=sys.stderr, show_pos=True
        ) as bar:
            return run(bar.update)
    except DerivationError as exc:
        raise click.ClickException(str(exc)) from None


def _emit(generated: Generated, output: Path | None, as_json: bool) -> None:
    coin = generated.coin
    if output is None:
        click.echo(format_addresses(coin, generated.addresses, as_json), nl=False)
        return
    try:
        write_address_file(output, coin, generated.addresses, as_json)
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror}") from None
    click.echo(
        f"wrote {len(generated.addresses)} {coin} {generated.script_type} addresses "
        f"({generated.network}) to {output}",
        err=True,
    )


_count_type = click.IntRange(min=1)
_start_type = click.IntRange(min=0, max=2**31 - 1)


@tool_group.command("newaddresses")
@click.option("--coin", type=_COIN, required=True, help="BTC, LTC or ETH.")
@click.option(
    "--xpub", required=True, metavar="XPUB",
    help="Account-level extended PUBLIC key (xpub/ypub/zpub, tpub/upub/vpub, Ltub/Mtub/ttub); "
    "for ETH an xpub of m/44'/60'/0'. Private keys (xprv...) are refused.",
)
@click.option(
    "--type", "script_type", type=_TYPE, default=None,
    help="Address script; default from the key prefix: xpub/tpub/Ltub -> p2pkh, "
    "ypub/upub/Mtub -> p2sh-p2wpkh, zpub/vpub -> p2wpkh. Not used for ETH.",
)
@click.option(
    "--network", type=_NETWORK, default=None,
    help="Network of the addresses; default mainnet for mainnet keys, testnet for testnet "
    "keys (use regtest for bcrt1/rltc1 bech32 addresses).",
)
@click.option("--start", type=_start_type, default=0, show_default=True,
              help="First receive index i.")
@click.option("-n", "count", type=_count_type, required=True, help="Number of addresses.")
@click.option("--json", "as_json", is_flag=True,
              help='Print JSON named after the coin: {"btc_addresses": [...]}, '
                   '{"ltc_addresses": ...} or {"eth_addresses": ...}.')
@click.option("-o", "output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to FILE atomically instead of stdout (.json suffix => JSON).")
def newaddresses_command(
    coin: str, xpub: str, script_type: str | None, network: str | None, start: int, count: int,
    as_json: bool, output: Path | None,
) -> None:
    """Derive N receive addresses m/0/i (relative to the account key) from an extended public
    key. The private side of the key never needs to be on this machine."""
    coin = coin.upper()
    as_json = _output_format(output, as_json)
    generated = _generate(
        count,
        lambda progress: generate_from_xpub(
            coin, xpub, count, start, script_type, network, progress
        ),
    )
    if generated.key_depth != 3:
        click.echo(
            f"warning: the {generated.key_name} is at depth {generated.key_depth}, not an "
            "account-level key (depth 3, e.g. m/84'/0'/0'); addresses are <key>/0/i",
            err=True,
        )
    _emit(generated, output, as_json)


def _seed_command(coin: str) -> Callable[..., None]:
    """The callback (with its arguments and options) of new<coin>address."""
    lower = coin.lower()

    @click.argument("seed", metavar="SEED")
    @click.argument("count", metavar="N", type=_count_type)
    @click.option(
        "--type", "script_type", type=_TYPE, default="p2pkh", show_default=True,
        help="Script and BIP path: p2pkh (BIP44), p2sh-p2wpkh (BIP49), p2wpkh (BIP84)."
        + (" Only p2pkh for ETH." if coin == "ETH" else ""),
    )
    @click.option("--network", type=_NETWORK, default="mainnet", show_default=True,
                  help="Network (coin type 1' on testnet/regtest)." if coin != "ETH"
                  else "Ignored for ETH (same addresses on every network).")
    @click.option("--start", type=_start_type, default=0, show_default=True,
                  help="First receive index i.")
    @click.option("--json", "as_json", is_flag=True,
                  help=f'Print {{"{lower}_addresses": [...]}} JSON.')
    @click.option("-o", "output", type=click.Path(dir_okay=False, path_type=Path), default=None,
                  help="Write to FILE atomically instead of stdout (.json suffix => JSON).")
    def command(
        seed: str, count: int, script_type: str, network: str, start: int, as_json: bool,
        output: Path | None,
    ) -> None:
        click.echo(SEED_WARNING, err=True)
        as_json = _output_format(output, as_json)
        generated = _generate(
            count,
            lambda progress: generate_from_seed(
                coin, seed, count, start, script_type, network, progress
            ),
        )
        click.echo(
            f"account {generated.account_path}: {generated.account_xpub} "
            "(give this to `teller tool newaddresses --xpub` for the same addresses)",
            err=True,
        )
        _emit(generated, output, as_json)

    command.__doc__ = (
        f"Derive N {coin} receive addresses from SEED, for tests and demos.\n\n"
        "SEED is a BIP39 mnemonic (quote the words; empty passphrase) or a hex seed of 16-64 "
        "bytes. Addresses are m/PURPOSE'/COIN'/0'/0/i (BIP44/49/84; ETH m/44'/60'/0'/0/i). "
        "NOT compatible with the Go teller's newbtcaddress, which used Skycoin's own key chain. "
        "The seed holds the private keys: prefer newaddresses with an xpub."
    )
    command.__name__ = f"new{lower}address_command"
    return command


newbtcaddress_command = tool_group.command("newbtcaddress")(_seed_command("BTC"))
newltcaddress_command = tool_group.command("newltcaddress")(_seed_command("LTC"))
newethaddress_command = tool_group.command("newethaddress")(_seed_command("ETH"))


@tool_group.command("checkaddresses")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--coin", type=_COIN, required=True, help="BTC, LTC or ETH.")
@click.option("--network", type=_NETWORK, default="mainnet", show_default=True,
              help="Network the teller is configured for.")
@click.option("-d", "--dir", "data_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Teller data dir: also report addresses already used there.")
def checkaddresses_command(
    file: Path, coin: str, network: str, data_dir: Path | None
) -> None:
    """Validate an address FILE (.json or text): report every bad line with its number and why
    (checksum, wrong network, duplicate, already used). Exit 1 if any, 0 when clean."""
    coin = coin.upper()
    try:
        report = check_address_file(file, coin, network, data_dir)
    except AddressFileError as exc:
        for problem in exc.problems:
            click.echo(problem)
        raise SystemExit(1) from None
    except FileNotFoundError as exc:
        raise click.ClickException(f"--dir: {exc}") from None
    for problem in report.problems:
        click.echo(problem)
    if report.problems:
        click.echo(
            f"{file}: {len(report.problems)} problem(s), {len(report.good)} good {coin} "
            f"address(es) for {network}",
            err=True,
        )
        raise SystemExit(1)
    click.echo(f"{file}: {len(report.good)} {coin} addresses, all valid for {network}")
