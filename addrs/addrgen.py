"""Logic behind ``teller tool``'s address commands: generate address lists and check files.

Kept apart from the click layer so it can be driven (and timed) directly; the CLI adds the
progress bar, the warnings and the output files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from addrs.derive import DerivationError, ReceiveAddressDeriver, account_path, deriver_from_seed
from addrs.files import scan_address_file

T = TypeVar("T")
ProgressCallback = Callable[[int], None]
PROGRESS_CHUNK = 1000  # addresses between two progress callbacks
# Addresses per run: a run holds its list in memory and takes ~2.5 min per million, so a typo
# such as -n 1000000000 is refused at once instead of running for days; --start continues.
MAX_COUNT = 1_000_000


@dataclass
class Generated:
    """A generated address list and how it was derived (for the operator's records)."""

    addresses: list[str]
    coin: str
    network: str
    script_type: str
    start: int
    key_name: str  # xpub / ypub / zpub / tpub ...
    key_depth: int
    account_xpub: str | None = None  # seed route: the account key that gives the same addresses
    account_path: str | None = None  # seed route: where that key sits under the seed


def _range_problems(start: int, count: int) -> list[str]:
    """Every reason why receive indexes ``start .. start+count-1`` cannot be generated."""
    problems: list[str] = []
    if count < 1:
        problems.append(f"-n {count}: must be at least 1")
    elif count > MAX_COUNT:
        problems.append(
            f"-n {count}: at most {MAX_COUNT:,} addresses per run; generate the series in "
            f"parts with --start (next part: --start {start + MAX_COUNT})"
        )
    if start < 0 or start + count > 2**31:
        problems.append(
            f"indexes {start}..{start + count - 1} out of range 0..2**31-1 (BIP32 non-hardened)"
        )
    return problems


def _checked(start: int, count: int, make: Callable[[], T]) -> T:
    """``make()``'s result, or one DerivationError listing the range's and the key's problems."""
    problems = _range_problems(start, count)
    try:
        made = make()
    except DerivationError as exc:
        problems.append(str(exc))
    if problems:
        raise DerivationError("; ".join(problems))
    return made


def _run(
    deriver: ReceiveAddressDeriver, start: int, count: int, progress: ProgressCallback | None
) -> list[str]:
    addresses: list[str] = []
    pending = 0
    for address in deriver.addresses(start, count):
        addresses.append(address)
        pending += 1
        if progress is not None and pending == PROGRESS_CHUNK:
            progress(pending)
            pending = 0
    if progress is not None and pending:
        progress(pending)
    return addresses


def generate_from_xpub(
    coin: str,
    xpub: str,
    count: int,
    start: int = 0,
    script_type: str | None = None,
    network: str | None = None,
    progress: ProgressCallback | None = None,
) -> Generated:
    """Receive addresses ``start .. start+count-1`` of an account-level extended public key.

    ``progress`` is called with the number of addresses done since its last call.
    Raises addrs.derive.DerivationError listing every problem of the key, the options and the
    index range (at most MAX_COUNT addresses per run).
    """
    deriver = _checked(
        start, count, lambda: ReceiveAddressDeriver(coin, xpub, script_type, network)
    )
    addresses = _run(deriver, start, count, progress)
    return Generated(
        addresses, coin, deriver.network, deriver.script_type, start,
        deriver.key_version.name, deriver.depth,
    )


def generate_from_seed(
    coin: str,
    seed: str,
    count: int,
    start: int = 0,
    script_type: str = "p2pkh",
    network: str = "mainnet",
    progress: ProgressCallback | None = None,
) -> Generated:
    """Receive addresses of the seed's standard BIP44/49/84 account (see addrs.derive).

    For tests and demos: whoever has the seed has the private keys of these addresses.
    """
    deriver, xpub = _checked(
        start, count, lambda: deriver_from_seed(coin, seed, script_type, network)
    )
    addresses = _run(deriver, start, count, progress)
    return Generated(
        addresses, coin, deriver.network, deriver.script_type, start,
        deriver.key_version.name, deriver.depth,
        account_xpub=xpub, account_path=account_path(coin, script_type, network),
    )


@dataclass
class CheckReport:
    """Outcome of checking an address file: the good addresses and every problem found."""

    path: str
    good: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def used_addresses_in_data_dir(data_dir: str | Path, coin: str,
                               db_name: str = "teller.db") -> set[str]:
    """Normalised deposit addresses of ``coin`` already handed out in the teller's data dir.

    Reads the LMDB address pool without taking the teller's lock, so it works while the teller
    runs. A directory without a teller database is an error, not an empty set.
    """
    from addrs.pool import AddressPool
    from common.storage import Storage

    if not (Path(data_dir).expanduser() / db_name / "data.mdb").exists():
        raise FileNotFoundError(f"no teller database in {data_dir} (expected {db_name}/)")
    storage = Storage(data_dir, db_name=db_name, exclusive=False)
    try:
        return AddressPool(storage).used(coin)
    finally:
        storage.close()


def check_address_file(
    path: str | Path, coin: str, network: str = "mainnet", data_dir: str | Path | None = None
) -> CheckReport:
    """Validate an address file and, with ``data_dir``, flag addresses already used there.

    Raises addrs.files.AddressFileError when the file as a whole is unusable, and
    FileNotFoundError when ``data_dir`` holds no teller database.
    """
    entries, problems = scan_address_file(path, coin, network)
    report = CheckReport(str(path), problems=list(problems))
    used = used_addresses_in_data_dir(data_dir, coin) if data_dir is not None else set()
    for line, address in entries:
        if address in used:
            report.problems.append(f"{path}:{line}: {address}: already used in the data dir")
        else:
            report.good.append(address)
    report.problems.sort(key=_problem_line)
    return report


def _problem_line(problem: str) -> int:
    """Sort key: the LINE of a "path:LINE: ..." problem (0 when absent)."""
    parts = problem.split(":")
    for part in parts[1:]:
        if part.isdigit():
            return int(part)
    return 0
