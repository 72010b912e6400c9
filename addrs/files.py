"""Deposit-address files: read and validate them, write them atomically, format them for stdout.

Formats are the Go teller's, so existing files load unchanged:
- JSON: ``{"btc_addresses": [...]}`` (``ltc_addresses`` / ``eth_addresses`` for the other coins);
- text: one address per line, blank lines and ``#`` comments skipped.

Either may start with a UTF-8 byte-order mark and use CRLF line ends (files saved by Windows
editors and spreadsheets); both are accepted.

Loading reports every problem of a file at once (with its line, or the 1-based entry index for
JSON) so an operator fixes the file in one pass instead of one error per restart.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from addrs.validate import InvalidAddress, normalize_deposit_address


class AddressFileError(ValueError):
    """An address file that cannot be used; ``problems`` lists each as "path:LINE: address: why"."""

    def __init__(self, path: str | Path, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = list(problems)
        count = len(self.problems)
        summary = f"{self.path}: {count} problem{'s' if count != 1 else ''}"
        super().__init__("\n".join([summary, *self.problems]))


def json_key(coin: str) -> str:
    """The JSON key holding ``coin``'s addresses, e.g. ``btc_addresses``."""
    return f"{coin.lower()}_addresses"


def _entries(path: Path, coin: str) -> list[tuple[int, object]]:
    """(line-or-index, raw entry) pairs; raises AddressFileError for an unreadable file."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a leading BOM is not part of line 1
    except (OSError, UnicodeDecodeError) as exc:
        raise AddressFileError(path, [f"{path}: cannot read: {exc}"]) from None
    if path.suffix.lower() != ".json":
        entries: list[tuple[int, object]] = []
        for number, line in enumerate(text.splitlines(), start=1):
            stripped = line.strip()
            if stripped and not stripped.startswith("#"):
                entries.append((number, stripped))
        return entries
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AddressFileError(path, [f"{path}:{exc.lineno}: invalid JSON: {exc.msg}"]) from None
    key = json_key(coin)
    if not isinstance(document, dict) or key not in document:
        raise AddressFileError(path, [f"{path}: expected a JSON object with key {key!r}"])
    items = document[key]
    if not isinstance(items, list):
        raise AddressFileError(path, [f"{path}: {key!r} must be a list of addresses"])
    return list(enumerate(items, start=1))


_SHOWN_MAX = 100  # characters of a bad entry quoted in a problem


def _shown(raw: object) -> str:
    """A bad entry as quoted in a problem: stripped, and cut short when it is long (a wrong
    file can hold lines of any length; the problem should still fit on a screen line)."""
    text = raw.strip() if isinstance(raw, str) else repr(raw)
    if len(text) <= _SHOWN_MAX:
        return text
    return f"{text[:_SHOWN_MAX - 20]}… ({len(text)} characters)"


def scan_address_file(
    path: str | Path, coin: str, network: str = "mainnet"
) -> tuple[list[tuple[int, str]], list[str]]:
    """Validate every entry of an address file without stopping at the first problem.

    Returns (good entries as (line, normalised address) in file order, problems as
    "path:LINE: address: why"). Raises AddressFileError only when the file as a whole is
    unusable (unreadable, not JSON, wrong JSON key).
    """
    path = Path(path)
    problems: list[str] = []
    first_seen: dict[str, int] = {}
    good: list[tuple[int, str]] = []
    for line, raw in _entries(path, coin):
        if not isinstance(raw, str):
            problems.append(f"{path}:{line}: {_shown(raw)}: not a string")
            continue
        try:
            address = normalize_deposit_address(coin, raw, network)
        except InvalidAddress as exc:
            problems.append(f"{path}:{line}: {_shown(raw)}: {exc}")
            continue
        if address in first_seen:
            problems.append(
                f"{path}:{line}: {_shown(raw)}: duplicate of line {first_seen[address]}"
            )
            continue
        first_seen[address] = line
        good.append((line, address))
    return good, problems


def load_address_file(path: str | Path, coin: str, network: str = "mainnet") -> list[str]:
    """Read, validate and normalise a deposit-address file; return the addresses in file order.

    Raises AddressFileError listing every bad entry (checksum, wrong network, duplicate naming
    the line of its first occurrence, ...). An empty file is returned as an empty list: whether
    an empty pool is acceptable is the caller's decision.
    """
    good, problems = scan_address_file(path, coin, network)
    if problems:
        raise AddressFileError(path, problems)
    return [address for _, address in good]


def format_addresses(coin: str, addresses: list[str], as_json: bool) -> str:
    """The file content for ``addresses``: Go-teller JSON (indented) or one per line."""
    if as_json:
        return json.dumps({json_key(coin): list(addresses)}, indent=4) + "\n"
    return "".join(f"{address}\n" for address in addresses)


def write_address_file(path: str | Path, coin: str, addresses: list[str], as_json: bool) -> None:
    """Write an address file atomically: temp file in the same directory, fsync, os.replace.

    A reader (or a crash) sees either the old file or the complete new one, never a prefix.
    """
    path = Path(path)
    content = format_addresses(coin, addresses, as_json)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        os.fchmod(fd, mode)  # mkstemp makes 0600; addresses are public, keep the usual mode
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
