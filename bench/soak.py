"""kill -9 soak: a real teller paying ERC-20 tokens on anvil is SIGKILLed again and again.

The teller runs as a subprocess (``teller run``) with the dummy BTC scanner and the ERC-20
sender; a driver binds buyers (distinct ETH addresses) and injects BTC deposits through the
public and dummy HTTP APIs while a timer SIGKILLs the teller at random moments (seeded RNG,
printed) and the driver restarts it on the same data directory. At the end every deposit must
be ``done`` and the chain must agree: each buyer received exactly its amount in exactly one
Transfer from the hot wallet, no other transfers, the hot wallet's nonces are gapless and
unique, and /api/accounting ``sent`` equals the chain total.

    .venv/bin/python bench/soak.py --deposits 300 --kills 20 [--seed N]

prints ``kills survived``, ``deposits``, ``double-pays`` (must be 0), ``losses`` (must be 0)
and the wall time. ``tests/test_sender_soak.py`` runs a bounded version in the suite; the
ERC-20 tests reuse ``setup_chain``, ``SoakTeller`` and ``transfers_from``.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: make the project importable
    sys.path.insert(0, str(REPO))

from eth_account import Account  # noqa: E402
from eth_account.signers.local import LocalAccount  # noqa: E402
from eth_utils import to_checksum_address  # noqa: E402

from addrs.derive import deriver_from_seed  # noqa: E402
from common.units import format_units  # noqa: E402
from exchanger.amounts import payout_amount  # noqa: E402
from tests.support.nodes import AnvilNode  # noqa: E402
from tests.support.process import TellerProcess  # noqa: E402
from tests.support.wait import wait_until  # noqa: E402
from tools.contracts import deploy_test_token  # noqa: E402

log = logging.getLogger("bench.soak")

MNEMONIC = " ".join(["abandon"] * 11 + ["about"])  # public BIP39 test vector
RATE = "1000"  # TUSD per BTC
TOKEN_DECIMALS = 6
KEY_PASSWORD = "soak-test-password"


@dataclass
class ChainSetup:
    """anvil with the project's token deployed and a funded hot wallet."""

    node: AnvilNode
    token: Any  # web3 Contract
    hot: LocalAccount
    deployer: str


def setup_chain(node: AnvilNode, *, tokens: int, eth_wei: int) -> ChainSetup:
    """Deploy TestToken (TUSD, 6 decimals) and fund a fresh hot wallet with tokens and ETH."""
    w3 = node.w3
    deployer = node.accounts[0]
    token = deploy_test_token(w3, deployer, mine=node.mine)
    hot = Account.create()
    token.functions.transfer(hot.address, tokens).transact({"from": deployer})
    w3.eth.send_transaction({"from": deployer, "to": hot.address, "value": eth_wei})
    node.mine(1)
    return ChainSetup(node=node, token=token, hot=hot, deployer=deployer)


def transfers_from(chain: ChainSetup, sender: str) -> list[dict[str, Any]]:
    """Every token Transfer from ``sender`` on chain, in order, with its txid and nonce."""
    logs = chain.token.events.Transfer().get_logs(
        from_block=0, to_block="latest", argument_filters={"from": sender})
    out = []
    for entry in logs:
        txid = entry["transactionHash"].to_0x_hex()
        tx = chain.node.w3.eth.get_transaction(txid)
        out.append({"to": entry["args"]["to"], "value": entry["args"]["value"], "txid": txid,
                    "nonce": tx["nonce"], "block": entry["blockNumber"]})
    return out


class SoakTeller(TellerProcess):
    """``teller run`` with the ERC-20 sender on anvil, restartable on one data dir."""

    def __init__(self, root: Path, chain: ChainSetup, *, confirmations: int = 1,
                 btc_addresses: int = 20) -> None:
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        keystore = Account.encrypt(chain.hot.key, KEY_PASSWORD, kdf="pbkdf2", iterations=1024)
        for name, text in (("hot-key.json", json.dumps(keystore)),
                           ("hot-key.password", KEY_PASSWORD + "\n")):
            (root / name).write_text(text)
            (root / name).chmod(0o600)  # as an operator keeps them: no permission warning
        deriver, _ = deriver_from_seed("BTC", MNEMONIC)
        super().__init__(root, deriver.addresses(0, btc_addresses), config={
            "": {"debug": False},
            "sky_exchanger": {"sky_btc_exchange_rate": RATE,
                              "tx_confirmation_check_wait": "200ms"},
            "sender": {"backend": "erc20", "dead_after": "1h"},
            "erc20_sender": {"url": chain.node.url, "token": chain.token.address,
                             "key_file": "hot-key.json", "password_file": "hot-key.password",
                             "confirmations_required": confirmations,
                             "max_gas_price_gwei": "500"},
            "dummy": {"sender": False}})

    def start(self, failpoints: str = "", wait: bool = True, timeout: float = 30) -> None:
        super().start(failpoints, wait, timeout)


# -- the soak ---------------------------------------------------------------------------------


@dataclass
class PlannedDeposit:
    buyer: str
    value: int  # satoshi
    tx: str
    expected: int  # token base units
    deposit_address: str = ""
    injected: bool = False


@dataclass
class SoakResult:
    seed: int
    deposits: int
    kills: int = 0
    kills_survived: int = 0
    double_pays: int = 0
    losses: int = 0
    extra_transfers: int = 0
    nonce_problems: list[str] = field(default_factory=list)
    accounting_ok: bool = False
    not_done: int = 0
    wall_time: float = 0.0
    chain_total: int = 0

    @property
    def ok(self) -> bool:
        return (self.double_pays == 0 and self.losses == 0 and self.extra_transfers == 0
                and not self.nonce_problems and self.accounting_ok and self.not_done == 0
                and self.kills_survived == self.kills)

    def report(self) -> str:
        return "\n".join([
            f"seed               {self.seed}",
            f"kills survived     {self.kills_survived}/{self.kills}",
            f"deposits           {self.deposits}",
            f"double-pays        {self.double_pays}",
            f"losses             {self.losses}",
            f"extra transfers    {self.extra_transfers}",
            f"nonce problems     {len(self.nonce_problems)}",
            f"accounting matches {self.accounting_ok}",
            f"chain total        {format_units(self.chain_total, TOKEN_DECIMALS)} TUSD",
            f"wall time          {self.wall_time:.1f} s",
        ])


def _plan(rng: random.Random, count: int) -> list[PlannedDeposit]:
    plan = []
    for i in range(count):
        buyer = to_checksum_address("0x" + rng.randbytes(20).hex())
        value = rng.randrange(10_000, 2_000_000, 1_000)
        plan.append(PlannedDeposit(buyer, value, f"{rng.getrandbits(256):064x}",
                                   payout_amount(value, 8, RATE, 3, TOKEN_DECIMALS)))
        assert plan[-1].expected > 0, i
    return plan


def _inject(teller: SoakTeller, item: PlannedDeposit) -> bool:
    """Bind (if not yet) and inject one deposit; False if the teller died meanwhile."""
    try:
        if not item.deposit_address:
            item.deposit_address = teller.bind(item.buyer)
        teller.deposit(item.deposit_address, item.value, item.tx)
    except (requests.RequestException, AssertionError):
        deadline = time.monotonic() + 3.0  # a SIGKILL may be on its way: let it land
        while teller.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if teller.alive():
            raise
        return False
    item.injected = True
    return True


def run_soak(node: AnvilNode, workdir: Path, *, deposits: int = 300, kills: int = 20,
             seed: int | None = None, confirmations: int = 2, block_time: int = 1,
             done_timeout: float = 300.0,
             say: Callable[[str], None] = print) -> SoakResult:
    seed = random.randrange(2**32) if seed is None else seed
    say(f"soak: seed {seed}, {deposits} deposits, {kills} kills")
    rng = random.Random(seed)
    started = time.monotonic()
    plan = _plan(rng, deposits)
    total = sum(p.expected for p in plan)
    chain = setup_chain(node, tokens=total + 10**9, eth_wei=100 * 10**18)
    node.request("evm_setIntervalMining", [block_time])
    teller = SoakTeller(workdir, chain, confirmations=confirmations,
                        btc_addresses=deposits + kills + 10)
    result = SoakResult(seed=seed, deposits=deposits)
    try:
        teller.start()
        queue = list(plan)
        per_cycle = max(1, deposits // max(1, kills))
        for cycle in range(kills):
            killer = threading.Timer(rng.uniform(0.05, 1.5), teller.kill)
            killer.start()
            budget = per_cycle if cycle < kills - 1 else len(queue)
            while queue and budget and teller.alive():
                if not _inject(teller, queue[0]):
                    break
                queue.pop(0)
                budget -= 1
            killer.join()
            teller.kill()
            result.kills += 1
            teller.start()
            result.kills_survived += 1
            say(f"  kill {result.kills}: {deposits - len(queue)} deposits injected")
        while queue:
            if not _inject(teller, queue[0]):
                teller.start()
                continue
            queue.pop(0)

        def all_done() -> bool:
            review = teller.deposits("needs_review")
            if review:
                raise AssertionError(f"deposits need review: {review[:3]}")
            return len(teller.deposits("done")) == deposits

        wait_until(all_done, timeout=done_timeout, interval=0.5,
                   message=f"all {deposits} deposits done")
        _verify(chain, teller, plan, result)
    finally:
        teller.kill()
        result.wall_time = time.monotonic() - started
    return result


def _verify(chain: ChainSetup, teller: SoakTeller, plan: list[PlannedDeposit],
            result: SoakResult) -> None:
    transfers = transfers_from(chain, chain.hot.address)
    paid: dict[str, list[int]] = defaultdict(list)
    for t in transfers:
        paid[t["to"]].append(t["value"])
    buyers = {p.buyer: p for p in plan}
    result.extra_transfers = sum(len(v) for k, v in paid.items() if k not in buyers)
    for buyer, item in buyers.items():
        got = paid.get(buyer, [])
        if len(got) > 1:
            result.double_pays += len(got) - 1
        if item.expected not in got:
            result.losses += 1
    result.chain_total = sum(t["value"] for t in transfers)
    nonces = sorted(t["nonce"] for t in transfers)
    duplicates = [n for n, c in Counter(nonces).items() if c > 1]
    if duplicates:
        result.nonce_problems.append(f"nonces used twice: {duplicates[:10]}")
    if nonces != list(range(len(nonces))):
        result.nonce_problems.append("nonces are not 0..N-1 without gaps")
    mined = chain.node.w3.eth.get_transaction_count(chain.hot.address)
    if mined != len(transfers):
        result.nonce_problems.append(f"{mined} transactions from the hot wallet, "
                                     f"{len(transfers)} transfers (a failed or stray tx)")
    sent = teller.accounting()["sent"]
    result.accounting_ok = sent == format_units(result.chain_total, TOKEN_DECIMALS) and \
        result.chain_total == sum(p.expected for p in plan)
    records = teller.deposits()
    result.not_done = sum(1 for r in records if r["status"] != "done")
    by_buyer = {r["sky_address"]: r for r in records}
    if any(by_buyer.get(b, {}).get("sky_sent") != p.expected for b, p in buyers.items()):
        result.accounting_ok = False  # a record disagrees with what its buyer should get


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deposits", type=int, default=300)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--confirmations", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep data, logs and config here (default: a temp dir)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="teller-soak-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        node = AnvilNode(workdir / "anvil")
        node.start()
        try:
            result = run_soak(node, workdir / "teller", deposits=args.deposits,
                              kills=args.kills, seed=args.seed,
                              confirmations=args.confirmations)
        finally:
            node.stop()
    print(result.report())
    print("PASS" if result.ok else "FAIL")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
