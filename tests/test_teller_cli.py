"""The ``teller`` command: help for every command, bad config as a usage error (exit 2) listing
every problem, and ``teller run`` serving until SIGTERM."""

from __future__ import annotations

import logging
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import requests
from click.testing import CliRunner

from teller.cli import cli
from teller.cli_tool import tool_group
from tests.support.service import start_teller, write_address_files, write_config
from tests.support.wait import scaled, wait_until

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def runner() -> Iterator[CliRunner]:
    """A CliRunner; root logging is restored afterwards (``teller run`` configures it)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield CliRunner()
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def invoke(runner: CliRunner, *args: str) -> click.testing.Result:
    return runner.invoke(cli, list(args), prog_name="teller")


def option_names(command: click.Command) -> list[str]:
    return [opt for p in command.params if isinstance(p, click.Option) for opt in p.opts]


def test_top_level_help(runner: CliRunner) -> None:
    result = invoke(runner, "--help")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: teller [OPTIONS] COMMAND [ARGS]...")
    for command in ("run", "tool", "core"):
        assert re.search(rf"^  {command}\s", result.output, re.M), command
    assert invoke(runner, "-h").output == result.output


def test_run_help_names_its_options(runner: CliRunner) -> None:
    result = invoke(runner, "run", "--help")
    assert result.exit_code == 0
    for text in ("-c, --config FILE", "[default: config.toml]", "-d, --dir",
                 "[default: ~/.teller]"):
        assert text in result.output


@pytest.mark.parametrize("name", sorted(tool_group.commands))
def test_every_tool_help_mentions_its_options(runner: CliRunner, name: str) -> None:
    result = invoke(runner, "tool", name, "--help")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: teller tool {name} ")
    options = option_names(tool_group.commands[name])
    assert options, name
    for option in options:
        assert option in result.output, (name, option)


def test_tool_help_lists_every_tool(runner: CliRunner) -> None:
    output = invoke(runner, "tool", "--help").output
    for name in tool_group.commands:
        assert re.search(rf"^  {name}\s", output, re.M), name
    for expected in ("addaddresses", "checkaddresses", "newaddresses", "newbtcaddress",
                     "newethaddress", "newltcaddress", "btcsim"):
        assert expected in tool_group.commands


def test_bad_config_is_exit_2_listing_every_problem(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("""
mystery = 1
[teller]
max_bound_addrs = -1
[sky_exchanger]
max_decimals = 9
[web]
throttle_max = "lots"
""")
    result = invoke(runner, "run", "-c", str(config), "-d", str(tmp_path / "data"))
    assert result.exit_code == 2, result.output
    count = int(re.search(rf"Error: (\d+) problem\(s\) in {re.escape(str(config))}:",
                          result.output).group(1))
    assert count == result.output.count("\n  - ") >= 5
    for problem in ("mystery: unknown key", "teller.max_bound_addrs: must be >= 0",
                    "sky_exchanger.max_decimals: must be between 0 and 3",
                    "web.throttle_max: expected an integer",
                    "sky_exchanger.sky_btc_exchange_rate: required while btc_scanner is enabled"):
        assert f"  - {problem}" in result.output, problem
    assert "Traceback" not in result.output
    assert not (tmp_path / "data").exists()  # nothing was created


def test_missing_config_file_is_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    result = invoke(runner, "run", "-c", str(tmp_path / "nope.toml"), "-d", str(tmp_path))
    assert result.exit_code == 2
    assert "cannot read config file" in result.output


def test_bad_address_file_is_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    write_address_files(tmp_path, btc=["1BadAddress", "1PZ63K3G4gZP6A6E2TTbBwxT5bFQGL2TLB"])
    config = write_config(tmp_path)
    result = invoke(runner, "run", "-c", str(config), "-d", str(tmp_path / "data"))
    assert result.exit_code == 2, result.output
    assert f"{tmp_path / 'btc_addresses.txt'}:1: 1BadAddress:" in result.output


def test_data_dir_in_use_is_a_clear_error(runner: CliRunner, tmp_path: Path) -> None:
    t = start_teller(tmp_path)
    try:
        result = invoke(runner, "run", "-c", str(t.config_path), "-d", str(t.data_dir))
        assert result.exit_code == 1, result.output
        assert "is in use by another teller process" in result.output
    finally:
        t.close()


def test_teller_run_serves_until_sigterm(tmp_path: Path) -> None:
    write_address_files(tmp_path)
    config = write_config(tmp_path, "debug = true\n")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from teller.cli import main; main()", "run", "-c", str(config),
         "-d", str(tmp_path / "data")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None

        def running_line() -> str | None:
            line = proc.stdout.readline()
            lines.append(line)
            if proc.poll() is not None and not line:
                raise AssertionError("teller exited:\n" + "".join(lines))
            return line if "teller running (" in line else None

        line = wait_until(running_line, timeout=20, interval=0, message="teller running")
        public = re.search(r"public (http://\S+?),", line).group(1)
        resp = requests.get(public + "/api/health", timeout=5)
        assert resp.status_code == 200 and resp.json()["status"] == "OK"
        log.info("SIGTERM: clean stop, exit 0, lock released")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=scaled(10)) == 0
        rest = proc.stdout.read()
        assert "teller stopped" in rest, "".join(lines) + rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


SEED = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"


def test_unwritable_output_or_data_dir_is_a_clear_error(runner: CliRunner, tmp_path: Path) -> None:
    """OSError from -o into a missing directory, or -d naming a file, was a traceback."""
    result = invoke(runner, "tool", "newbtcaddress", SEED, "1",
                    "-o", str(tmp_path / "missing" / "a.txt"))
    assert result.exit_code == 1, result.output
    assert f"Error: cannot write {tmp_path / 'missing' / 'a.txt'}: No such file" in result.output
    afile = tmp_path / "a.txt"
    afile.write_text("1PZ63K3G4gZP6A6E2TTbBwxT5bFQGL2TLB\n")
    result = invoke(runner, "tool", "addaddresses", str(afile), "--coin", "BTC",
                    "-d", str(afile))
    assert result.exit_code == 1, result.output
    assert f"Error: cannot open the data directory {afile}" in result.output
    write_address_files(tmp_path)
    config = write_config(tmp_path)
    result = invoke(runner, "run", "-c", str(config), "-d", str(afile))
    assert result.exit_code == 1, result.output
    assert f"Error: cannot use the data directory {afile}" in result.output
