"""Crash tests: SIGKILL the teller at each payout boundary and prove nothing is paid twice or lost.

Each scenario arms a named failpoint, lets the process kill itself there, checks from the data
directory that the crash really happened where intended (as Bitcoin Core's feature_dbcrash.py
insists), restarts the teller, and asserts what a user would see: exactly one payout
transaction, with the txid persisted before the crash, and the deposit ``done``.
"""

from __future__ import annotations

import logging
import random
from decimal import Decimal
from pathlib import Path

import pytest

from addrs.derive import deriver_from_seed
from tests.support.process import TellerProcess
from tests.support.wait import wait_until

log = logging.getLogger(__name__)

MNEMONIC = " ".join(["abandon"] * 11 + ["about"])
BUYER = "2Wbi4wvxC4fkTYMsS2f6HaFfW4pafDjXcQW"
TX = "edb29a9b561a8d6a6118eb1f724c87f853bf471d7e4f0e9ccb9e1d340235687b"

pytestmark = pytest.mark.slow


def btc_addresses(count: int) -> list[str]:
    deriver, _ = deriver_from_seed("BTC", MNEMONIC)
    return deriver.addresses(0, count)


@pytest.fixture
def teller_proc(tmp_path: Path):
    proc = TellerProcess(tmp_path, btc_addresses(50))
    yield proc
    proc.kill()


@pytest.mark.parametrize("failpoint, status_at_crash", [
    ("after_payout_persisted", "signed"),  # signed tx + txid stored, nothing broadcast yet
    ("after_broadcast", "signed"),  # the node has it, our record does not know yet
])
def test_crash_at_payout_boundary_pays_once(teller_proc: TellerProcess, failpoint: str,
                                            status_at_crash: str) -> None:
    log.info("bind, then deposit with the %s failpoint armed", failpoint)
    teller_proc.start(failpoints=failpoint)
    address = teller_proc.bind(BUYER)
    teller_proc.deposit(address, 100_000, TX)
    assert teller_proc.wait_exit() == -9, teller_proc.log_tail()
    assert (teller_proc.dir / f"failpoint-{failpoint}").exists(), "the crash path did not run"

    log.info("the dead process left exactly one persisted payout")
    payouts = teller_proc.persisted_payouts()
    assert len(payouts) == 1
    assert payouts[0]["status"] == status_at_crash
    txid = payouts[0]["signed"]["txid"]

    log.info("restart: the same signed transaction goes out, once")
    teller_proc.start()
    broadcasts = wait_until(teller_proc.broadcasts, timeout=10, message="a broadcast")
    assert [b["txid"] for b in broadcasts] == [txid]
    assert broadcasts[0]["outputs"] == [{"address": BUYER, "coins": "0.500000"}]
    wait_until(lambda: teller_proc.deposits("waiting_confirm"), timeout=10,
               message="waiting_confirm")
    teller_proc.confirm(txid)
    done = wait_until(lambda: teller_proc.deposits("done"), timeout=10, message="done")
    assert done[0]["txid"] == txid and done[0]["sky_sent"] == 500_000
    assert len(teller_proc.broadcasts()) == 1
    assert {d["txid"] for d in teller_proc.deposits()} == {txid}


def test_deposit_replayed_after_a_crash_is_recorded_and_paid_once(
        teller_proc: TellerProcess) -> None:
    log.info("SIGKILL in the middle of paying; the scanner then reports the deposit again")
    teller_proc.start(failpoints="after_payout_persisted")
    address = teller_proc.bind(BUYER)
    teller_proc.deposit(address, 100_000, TX)
    teller_proc.wait_exit()
    teller_proc.start()
    log.info("the scanner replays the same deposit after the restart: recorded once")
    teller_proc.deposit(address, 100_000, TX)
    wait_until(lambda: len(teller_proc.broadcasts()) == 1, timeout=10, message="one broadcast")
    assert len(teller_proc.deposits()) == 1


def test_random_sigkills_during_a_burst(teller_proc: TellerProcess) -> None:
    """Deposits keep arriving while the teller is killed at random moments."""
    rng = random.Random(20261122)
    deposits = 40
    kills = 6
    teller_proc.start()
    addresses = [teller_proc.bind(BUYER) for _ in range(deposits)]
    sent = 0
    for round_no in range(kills):
        for i in range(sent, min(deposits, sent + deposits // kills + 1)):
            teller_proc.deposit(addresses[i], 10_000 * (i + 1), f"{i:064x}")
            sent = i + 1
        # confirm whatever went out so far, then die somewhere in the middle of the work
        for b in teller_proc.broadcasts():
            if not b["confirmed"] and rng.random() < 0.5:
                teller_proc.confirm(b["txid"])
        teller_proc.kill()
        log.info("kill %d after %d deposits", round_no + 1, sent)
        teller_proc.start()
    for i in range(sent, deposits):
        teller_proc.deposit(addresses[i], 10_000 * (i + 1), f"{i:064x}")

    def all_confirmed() -> bool:
        for b in teller_proc.broadcasts():
            if not b["confirmed"]:
                teller_proc.confirm(b["txid"])
        return len(teller_proc.deposits("done")) == deposits

    wait_until(all_confirmed, timeout=30, message="every deposit done")
    broadcasts = teller_proc.broadcasts()
    paid = sorted(o["coins"] for b in broadcasts for o in b["outputs"])
    # 10_000 sat * (i + 1) at 500 SKY/BTC = 0.05 * (i + 1) SKY, each paid exactly once
    expected = sorted(format(Decimal("0.05") * (i + 1), ".6f") for i in range(deposits))
    assert paid == expected
    assert len({b["txid"] for b in broadcasts}) == len(broadcasts) == deposits


@pytest.mark.parametrize("failpoint", ["after_payout_persisted", "after_broadcast"])
def test_crash_with_a_batch_of_payouts_pays_each_once(teller_proc: TellerProcess,
                                                      failpoint: str) -> None:
    """Several payouts persisted in one commit (build_ahead), then a SIGKILL: each goes out once."""
    count = 3
    log.info("send disabled: %d deposits wait together in waiting_send", count)
    config = teller_proc.config.read_text()
    teller_proc.config.write_text(config.replace("max_decimals = 3\n",
                                                 "max_decimals = 3\nsend_enabled = false\n", 1))
    teller_proc.start()
    addresses = [teller_proc.bind(BUYER) for _ in range(count)]
    for i, address in enumerate(addresses):
        teller_proc.deposit(address, 100_000 * (i + 1), f"{i:064x}")
    wait_until(lambda: len(teller_proc.deposits("waiting_send")) == count, timeout=10,
               message="every deposit waiting_send")
    teller_proc.terminate()

    log.info("send enabled with %s armed: one pass persists the whole batch, then dies",
             failpoint)
    teller_proc.config.write_text(config)
    teller_proc.start(failpoints=failpoint, wait=False)
    assert teller_proc.wait_exit() == -9, teller_proc.log_tail()
    assert (teller_proc.dir / f"failpoint-{failpoint}").exists(), "the crash path did not run"
    payouts = teller_proc.persisted_payouts()
    assert len(payouts) == count, "the batch was persisted in one commit"
    assert {p["status"] for p in payouts} == {"signed"}
    txids = {p["signed"]["txid"] for p in payouts}

    log.info("restart: the same %d signed transactions go out, each once", count)
    teller_proc.start()
    wait_until(lambda: len(teller_proc.deposits("waiting_confirm")) == count, timeout=10,
               message="every deposit waiting_confirm")
    broadcasts = teller_proc.broadcasts()
    assert sorted(b["txid"] for b in broadcasts) == sorted(txids)
    for txid in txids:
        teller_proc.confirm(txid)
    done = wait_until(lambda: len(teller_proc.deposits("done")) == count and
                      teller_proc.deposits("done"), timeout=10, message="every deposit done")
    assert {d["txid"] for d in done} == txids
    assert sorted(d["sky_sent"] for d in done) == [500_000, 1_000_000, 1_500_000]
    assert sorted(o["coins"] for b in teller_proc.broadcasts() for o in b["outputs"]) == \
        ["0.500000", "1.000000", "1.500000"]
    teller_proc.terminate()
    assert sorted(p["status"] for p in teller_proc.persisted_payouts()) == \
        ["confirmed"] * count
