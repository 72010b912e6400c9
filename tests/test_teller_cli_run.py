"""``teller run`` as an operator runs it: signals, pidfile, log reopening, one process per dir."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from addrs.derive import deriver_from_seed
from tests.support.process import REPO, TellerProcess
from tests.support.wait import wait_until

MNEMONIC = " ".join(["abandon"] * 11 + ["about"])

pytestmark = pytest.mark.slow


@pytest.fixture
def proc(tmp_path: Path):
    deriver, _ = deriver_from_seed("BTC", MNEMONIC)
    teller = TellerProcess(tmp_path, deriver.addresses(0, 5), config={"": {
        "pidfile": str(tmp_path / "teller.pid"), "logfile": str(tmp_path / "teller-file.log")}})
    yield teller
    teller.kill()


def test_sigterm_stops_cleanly_and_removes_the_pidfile(proc: TellerProcess,
                                                        tmp_path: Path) -> None:
    proc.start()
    pidfile = tmp_path / "teller.pid"
    assert pidfile.read_text().strip() == str(proc.proc.pid)
    assert proc.terminate() == 0
    assert not pidfile.exists()
    assert "teller stopped" in proc.log_tail()


def test_a_second_teller_on_the_same_data_dir_fails_clearly(proc: TellerProcess) -> None:
    proc.start()
    second = subprocess.run(
        [sys.executable, "-c", "from teller.cli import main; main()", "run",
         "-c", str(proc.config), "-d", str(proc.dir)],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    assert "is in use by another teller process" in second.stderr
    assert proc.ready(), "the first teller keeps running"


def test_sighup_reopens_the_log_file(proc: TellerProcess, tmp_path: Path) -> None:
    proc.start()
    logfile = tmp_path / "teller-file.log"
    wait_until(lambda: logfile.exists() and logfile.stat().st_size > 0, message="log written")
    rotated = tmp_path / "teller-file.log.1"
    os.rename(logfile, rotated)  # what logrotate does
    proc.proc.send_signal(signal.SIGHUP)
    proc.bind("2Wbi4wvxC4fkTYMsS2f6HaFfW4pafDjXcQW")  # something to log
    wait_until(lambda: logfile.exists() and "bound BTC" in logfile.read_text(),
               message="new log file after SIGHUP")


def test_bad_config_exits_2_listing_every_problem(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('bogus = 1\n[teller]\nmax_bound_addrs = -1\n'
                      '[sky_exchanger]\nmax_decimals = 9\n')
    result = subprocess.run(
        [sys.executable, "-c", "from teller.cli import main; main()", "run",
         "-c", str(config), "-d", str(tmp_path / "data")],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    for problem in ("bogus: unknown key", "teller.max_bound_addrs: must be >= 0",
                    "sky_exchanger.max_decimals: must be between 0 and 3",
                    "sky_exchanger.sky_btc_exchange_rate: required"):
        assert problem in result.stderr
    assert "Traceback" not in result.stderr
