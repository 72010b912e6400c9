"""The first-run frictions of issue 17, each checked the way a new operator meets it."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys

import requests
from click.testing import CliRunner

from exchangecore import open_core
from teller.cli import cli
from tests.support.core import ROOT, CoreServer, core_config
from tests.support.service import (
    BTC_ADDRESSES,
    SKY_ADDR,
    write_address_files,
    write_config,
)

TELLER = [sys.executable, "-c", "from teller.cli import main; main()"]


def test_version_shows_the_commit_health_shows(teller):
    output = CliRunner().invoke(cli, ["--version"]).output.strip()
    health = requests.get(teller.public + "/api/health", timeout=5).json()
    assert output == f"teller, version {health['version']}"
    sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True, cwd=ROOT).stdout.strip()
    assert output.endswith(f"+{sha}")


def test_tool_help_names_every_subcommand():
    from teller.cli_tool import tool_group

    text = CliRunner().invoke(cli, ["tool", "--help"]).output
    description = text.split("Options:")[0]
    for name in tool_group.commands:
        assert name in description, name


def test_addaddresses_takes_the_coin_in_any_case(tmp_path):
    (tmp_path / "more.txt").write_text(BTC_ADDRESSES[7] + "\n")
    result = CliRunner().invoke(cli, ["tool", "addaddresses", str(tmp_path / "more.txt"),
                                      "--coin", "btc", "-d", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    assert "added 1 BTC address(es)" in result.output


def test_health_lists_the_dummy_scanner(teller):
    health = requests.get(teller.public + "/api/health", timeout=5).json()
    config = requests.get(teller.public + "/api/config", timeout=5).json()
    assert config["deposits"]["btc"]["enabled"] is True
    assert health["scanners"] == {"BTC": {
        "dummy": True, "node_reachable": True, "tip": None, "cursor_height": None,
        "lag_blocks": None, "confirmations_required": 1, "last_error": ""}}


def test_recorded_deposit_says_processed_false_as_go(teller):
    addr = teller.bind(SKY_ADDR)
    teller.deposit(addr, 100_000, "ef" * 32)
    [record] = teller.deposits()
    assert record["deposit"]["processed"] is False


def test_port_in_use_names_the_port(tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        write_address_files(tmp_path)
        config = write_config(tmp_path, f'[web]\nhttp_addr = "127.0.0.1:{port}"\n')
        result = subprocess.run([*TELLER, "run", "-c", str(config), "-d", str(tmp_path / "d")],
                                capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert result.returncode == 1
        assert f"public API cannot listen on 127.0.0.1:{port}: Address already in use" \
            in result.stderr
    finally:
        busy.close()


def test_core_prune_without_a_terminal_says_to_use_yes(tmp_path):
    service = open_core(core_config(), tmp_path)
    for i in range(3):
        service.call("balance.update", [1, "BTC", "deposit", i, "1", {}])
    service.snapshot()
    service.call("balance.update", [1, "BTC", "deposit", 9, "1", {}])
    service.snapshot()
    service.stop()
    asked = subprocess.run([*TELLER, "core", "prune", "-d", str(tmp_path)], capture_output=True,
                           text=True, timeout=60, cwd=ROOT, stdin=subprocess.DEVNULL)
    assert asked.returncode == 1
    assert "run `teller core prune --yes` to prune without asking" in asked.stderr
    done = subprocess.run([*TELLER, "core", "prune", "--yes", "-d", str(tmp_path)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert "deleted" in done.stdout


def test_core_empty_400s_are_logged(tmp_path, caplog):
    core = CoreServer(tmp_path)
    try:
        with caplog.at_level(logging.INFO, logger="matchengine.rpcserver"):
            get = requests.get(core.url, timeout=5)
            junk = requests.post(core.url, data=b"not json", timeout=5)
        assert (get.status_code, get.content, junk.status_code, junk.content) == \
            (400, b"", 400, b"")
        messages = [r.getMessage() for r in caplog.records]
        assert "empty 400 for GET /: only JSON-RPC POSTs (as viabtc)" in messages
        assert "empty 400: the body is not a JSON-RPC request (as viabtc)" in messages
    finally:
        core.close()


def test_no_two_commands_share_a_help_text():
    import click

    helps: dict[str, str] = {}

    def walk(command: click.Command, path: str) -> None:
        text = (command.help or "").strip()
        assert text, f"{path} has no help"
        assert text not in helps, f"{path} repeats the help of {helps.get(text)}"
        helps[text] = path
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(cli, "teller")
    json_help = CliRunner().invoke(cli, ["tool", "newaddresses", "--help"]).output
    assert "eth_addresses" in json_help  # not a copy of newbtcaddress's BTC-only wording
