"""The ERC-20 sender against a real Ethereum node (anvil, no automine) and the project's token.

Blocks are mined by hand (``anvil_node.mine``), so confirmation counting is exact. Storage is
real LMDB; the exchanger's persist step (payout record + ``commit_built`` in one write
transaction) is reproduced by ``persist``. The last tests run whole tellers: in process with
the dummy scanner and this sender, and as a subprocess killed by the
``after_payout_persisted`` failpoint.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode
from eth_utils import keccak

from bench.soak import ChainSetup, SoakTeller, setup_chain, transfers_from
from common.storage import Storage
from sender.base import (
    BroadcastRejected,
    InsufficientFunds,
    PayoutOutput,
    SenderError,
    SignedPayout,
    TxState,
)
from sender.erc20 import ERC20Sender
from tests.support.nodes import AnvilNode
from tests.support.service import start_teller
from tests.support.wait import wait_until

pytestmark = pytest.mark.slow

BUYER = "0x6Fac4D18c912343BF86fa7049364Dd4E424Ab9C0"
BUYER_2 = "0xb6716976A3ebe8D39aCEB04372f22Ff8e6802D7A"
BALANCE_SLOT = 3  # TestToken: name, symbol, totalSupply, balanceOf (decimals/owner immutable)


@pytest.fixture
def chain(anvil_node: AnvilNode) -> ChainSetup:
    return setup_chain(anvil_node, tokens=1_000_000_000, eth_wei=10**18)


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    st = Storage(tmp_path / "data")
    yield st
    st.close()


def make_sender(storage: Storage, chain: ChainSetup, **kw: Any) -> ERC20Sender:
    return ERC20Sender(storage, chain.hot, url=chain.node.url,
                       token_address=chain.token.address,
                       **{"confirmations_required": 3, **kw})


def persist(storage: Storage, sender: ERC20Sender, signed: SignedPayout) -> None:
    with storage.write() as txn:
        storage.put(txn, "payouts", signed.txid, signed.to_json())
        sender.commit_built(storage, txn, signed)


def pay(storage: Storage, sender: ERC20Sender, amount: int, to: str = BUYER,
        key: str = "BTC/aa:0") -> SignedPayout:
    signed = sender.build([PayoutOutput(to, amount, key)], key)
    persist(storage, sender, signed)
    return signed


def next_nonce(storage: Storage, sender: ERC20Sender) -> int | None:
    with storage.read() as txn:
        return storage.get(txn, "sender", f"erc20/{sender.address}/next_nonce")


def test_reads_token_symbol_and_decimals_from_the_contract(storage, chain) -> None:
    sender = make_sender(storage, chain)
    assert sender.probe() == []
    assert (sender.token, sender.decimals) == ("TUSD", 6)
    assert sender.balance().coins == 1_000_000_000
    assert sender.validate_address(BUYER.lower()) == BUYER


def test_payout_confirms_after_n_blocks(storage, chain) -> None:
    node = chain.node
    sender = make_sender(storage, chain)
    signed = pay(storage, sender, 12_345_000)
    assert signed.meta["nonce"] == 0 and next_nonce(storage, sender) == 1
    assert sender.tx_state(signed) == TxState.UNKNOWN, "built and persisted, not broadcast"
    assert sender.balance().coins == 1_000_000_000 - 12_345_000, "in-flight payout reserved"

    sender.broadcast(signed)
    assert sender.tx_state(signed) == TxState.PENDING  # in the pool
    node.mine(1)
    assert sender.tx_state(signed) == TxState.PENDING  # 1 confirmation of 3
    node.mine(1)
    assert sender.tx_state(signed) == TxState.PENDING  # 2 of 3
    node.mine(1)
    assert sender.tx_state(signed) == TxState.CONFIRMED
    assert chain.token.functions.balanceOf(BUYER).call() == 12_345_000
    assert sender.balance().coins == 1_000_000_000 - 12_345_000
    receipt = node.w3.eth.get_transaction_receipt(signed.txid)
    assert receipt["status"] == 1 and receipt["gasUsed"] <= int(signed.meta["gas"])


def test_restart_with_broadcast_unconfirmed_payout_sends_the_same_tx_once(storage, chain) -> None:
    node = chain.node
    first = make_sender(storage, chain)
    signed = pay(storage, first, 5_000_000)
    first.broadcast(signed)

    restarted = make_sender(storage, chain)  # a new process on the same data directory
    restarted.broadcast(SignedPayout.from_json(signed.to_json()))  # "already imported"
    node.mine(1)
    restarted.broadcast(signed)  # mined: "nonce too low" for our own txid
    node.mine(2)
    assert restarted.tx_state(signed) == TxState.CONFIRMED
    logs = transfers_from(chain, first.address)
    assert [(t["to"], t["value"], t["txid"]) for t in logs] == [(BUYER, 5_000_000, signed.txid)]
    assert pay(storage, restarted, 1_000, key="BTC/bb:0").meta["nonce"] == 1


def test_pipelined_payouts_take_consecutive_nonces(storage, chain) -> None:
    sender = make_sender(storage, chain, confirmations_required=1)
    payouts = [pay(storage, sender, 1_000_000 * (i + 1), key=f"BTC/{i:02x}:0") for i in range(4)]
    for signed in payouts:
        sender.broadcast(signed)
    assert [p.meta["nonce"] for p in payouts] == [0, 1, 2, 3]
    assert sender.balance().coins == 1_000_000_000 - 10_000_000
    chain.node.mine(1)
    assert [sender.tx_state(p) for p in payouts] == [TxState.CONFIRMED] * 4
    assert chain.token.functions.balanceOf(BUYER).call() == 10_000_000


def test_insufficient_token_balance_then_refill(storage, chain) -> None:
    sender = make_sender(storage, chain)
    assert sender.balance().coins == 1_000_000_000
    with pytest.raises(InsufficientFunds, match="balance is short"):
        sender.build([PayoutOutput(BUYER, 1_500_000_000, "BTC/aa:0")], "p")
    assert next_nonce(storage, sender) is None, "a refused build leaves no nonce gap"
    chain.token.functions.mint(chain.hot.address, 600_000_000).transact(
        {"from": chain.deployer})
    chain.node.mine(1)
    signed = pay(storage, sender, 1_500_000_000)
    assert signed.meta["nonce"] == 0
    sender.broadcast(signed)
    chain.node.mine(3)
    assert sender.tx_state(signed) == TxState.CONFIRMED
    assert chain.token.functions.balanceOf(BUYER).call() == 1_500_000_000


def test_insufficient_eth_for_gas_then_refill_confirms_the_same_txid(storage, anvil_node) -> None:
    chain = setup_chain(anvil_node, tokens=1_000_000, eth_wei=10**12)  # far too little gas
    sender = make_sender(storage, chain)
    with pytest.raises(InsufficientFunds, match="not enough ETH for gas"):
        sender.balance()
    signed = pay(storage, sender, 250_000)
    with pytest.raises(InsufficientFunds, match="not enough ETH for gas"):
        sender.broadcast(signed)
    anvil_node.w3.eth.send_transaction({"from": chain.deployer, "to": chain.hot.address,
                                        "value": 10**18})
    anvil_node.mine(1)
    assert sender.balance().coins == 1_000_000 - 250_000
    sender.broadcast(signed)  # the very same bytes
    anvil_node.mine(3)
    assert sender.tx_state(signed) == TxState.CONFIRMED
    assert [t["txid"] for t in transfers_from(chain, chain.hot.address)] == [signed.txid]


def test_reverted_transfer_is_failed_not_confirmed(storage, chain) -> None:
    node = chain.node
    sender = make_sender(storage, chain)
    signed = pay(storage, sender, 10_000)
    # the hot wallet's tokens vanish between signing and mining: the transfer reverts
    slot = keccak(encode(["address", "uint256"], [chain.hot.address, BALANCE_SLOT]))
    node.request("anvil_setStorageAt", [chain.token.address, "0x" + slot.hex(), "0x" + "00" * 32])
    assert chain.token.functions.balanceOf(chain.hot.address).call() == 0
    sender.broadcast(signed)
    node.mine(5)
    assert node.w3.eth.get_transaction_receipt(signed.txid)["status"] == 0
    assert sender.tx_state(signed) == TxState.FAILED


def test_nonce_taken_by_another_transaction_is_conflicted(storage, chain) -> None:
    sender = make_sender(storage, chain)
    signed = pay(storage, sender, 10_000)
    # someone uses the hot key by hand with the same nonce before our payout goes out
    other = chain.hot.sign_transaction({
        "to": BUYER_2, "value": 1, "gas": 21_000, "gasPrice": 10**10, "nonce": 0,
        "chainId": chain.node.chain_id})
    chain.node.w3.eth.send_raw_transaction(other.raw_transaction)
    chain.node.mine(1)
    with pytest.raises(BroadcastRejected, match="nonce 0 was used by another transaction"):
        sender.broadcast(signed)
    assert sender.tx_state(signed) == TxState.CONFLICTED
    # the next payout does not collide with the hand-made transaction
    assert pay(storage, sender, 1, key="BTC/bb:0").meta["nonce"] == 1


def test_a_payout_to_a_non_ethereum_address_is_a_sender_error(storage, chain) -> None:
    """A SKY address stored before the backend was switched: that deposit waits with a clear
    error (the exchanger handles SenderError per deposit), it does not crash every pass."""
    sender = make_sender(storage, chain)
    with pytest.raises(SenderError, match="not an ethereum address"):
        sender.build([PayoutOutput("2GgFvqoyk9RjwVzj8tqfcXVXB4orBwoc9qv", 1_000, "BTC/aa:0")],
                     "p")
    assert next_nonce(storage, sender) is None


def test_key_never_appears_in_repr_or_errors(storage, chain) -> None:
    sender = make_sender(storage, chain)
    secret = chain.hot.key.hex()
    assert secret not in repr(sender)
    with pytest.raises(InsufficientFunds) as exc:
        sender.build([PayoutOutput(BUYER, 10**18, "BTC/aa:0")], "p")
    assert secret not in str(exc.value)


# -- whole tellers -----------------------------------------------------------------------------


def teller_overrides(chain: ChainSetup, key_env: str, confirmations: int = 1) -> str:
    return f"""
[dummy]
sender = false
[sender]
backend = "erc20"
[erc20_sender]
url = "{chain.node.url}"
token = "{chain.token.address}"
key_env = "{key_env}"
confirmations_required = {confirmations}
[sky_exchanger]
sky_btc_exchange_rate = "1000"
max_decimals = 3
"""


def test_teller_pays_eth_addresses_and_a_sold_out_payout_does_not_block(
        tmp_path, anvil_node, monkeypatch) -> None:
    chain = setup_chain(anvil_node, tokens=3_000_000, eth_wei=10**18)  # 3 TUSD
    anvil_node.request("evm_setAutomine", [True])
    monkeypatch.setenv("TELLER_TEST_HOT_KEY", chain.hot.key.hex())
    harness = start_teller(tmp_path, teller_overrides(chain, "TELLER_TEST_HOT_KEY"))
    try:
        health = harness.get(harness.public, "/api/health").json()["exchange"]
        assert health["balance"] == {"coins": "3.000000", "hours": "", "token": "TUSD"}
        bad = harness.post_json(harness.public, "/api/bind",
                                {"skyaddr": BUYER.lower()[:-1] + "x", "coin_type": "BTC"})
        assert bad.status_code == 400 and bad.text.startswith("Invalid ethereum address: ")
        mixed = BUYER[:3] + BUYER[3].swapcase() + BUYER[4:]
        bad = harness.post_json(harness.public, "/api/bind", {"address": mixed,
                                                              "coin_type": "BTC"})
        assert bad.status_code == 400 and "checksum" in bad.text
        big = harness.bind(BUYER)
        small = harness.bind(BUYER_2.lower())
        harness.deposit(big, 500_000, "aa" * 32)  # 0.005 BTC -> 5 TUSD: sold out
        harness.deposit(small, 100_000, "bb" * 32)  # 0.001 BTC -> 1 TUSD: paid
        done = wait_until(lambda: harness.deposits("done"), timeout=20, message="small paid")
        assert [d["sky_address"] for d in done] == [BUYER_2]
        # the big one is retried with backoff and keeps reporting itself sold out
        wait_until(lambda: "sold out" in harness.get(
            harness.public, "/api/health").json()["exchange"]["sender_error"], timeout=10,
            message="sold out in /api/health sender_error")
        assert chain.token.functions.balanceOf(BUYER_2).call() == 1_000_000
        chain.token.functions.mint(chain.hot.address, 10_000_000).transact(
            {"from": chain.deployer})
        wait_until(lambda: len(harness.deposits("done")) == 2, timeout=30,
                   message="the big payout after the refill")
        assert chain.token.functions.balanceOf(BUYER).call() == 5_000_000
        accounting = harness.get(harness.admin, "/api/accounting").json()
        assert accounting["sent"] == "6.000000" and accounting["sent_token"] == "TUSD"
    finally:
        harness.close()


def test_killed_after_persist_restart_broadcasts_the_same_txid_once(tmp_path, anvil_node) -> None:
    chain = setup_chain(anvil_node, tokens=10**9, eth_wei=10**18)
    anvil_node.request("evm_setAutomine", [True])
    teller = SoakTeller(tmp_path, chain, confirmations=1)
    try:
        teller.start(failpoints="after_payout_persisted")
        deposit_address = teller.bind(BUYER)
        teller.deposit(deposit_address, 100_000, "cc" * 32)
        assert teller.wait_exit() == -9, teller.log_tail()
        assert (teller.dir / "failpoint-after_payout_persisted").exists()
        assert transfers_from(chain, chain.hot.address) == [], "died before any broadcast"
        payouts = teller.persisted_payouts()
        assert len(payouts) == 1 and payouts[0]["status"] == "signed"
        txid = payouts[0]["signed"]["txid"]

        teller.start()
        wait_until(lambda: teller.deposits("done"), timeout=30, message="deposit done")
        logs = transfers_from(chain, chain.hot.address)
        assert [(t["to"], t["value"], t["txid"]) for t in logs] == [(BUYER, 1_000_000, txid)]
    finally:
        teller.kill()



def test_killed_after_a_replacement_is_persisted_the_restart_sends_it(
        tmp_path, anvil_node) -> None:
    """The crash point between persisting a replacement and sending it: after the restart
    the persisted replacement goes out, and the buyer is paid once."""
    chain = setup_chain(anvil_node, tokens=10**9, eth_wei=10**18)  # no automine: stays stuck
    teller = SoakTeller(tmp_path, chain, confirmations=1)
    teller.config.write_text(teller.config.read_text().replace(
        'dead_after = "1h"', 'dead_after = "1h"\nreplace_after = "1s"'))
    try:
        teller.start(failpoints="after_replacement_persisted")
        teller.deposit(teller.bind(BUYER), 100_000, "dd" * 32)
        assert teller.wait_exit() == -9, teller.log_tail()
        assert (teller.dir / "failpoint-after_replacement_persisted").exists()
        payouts = teller.persisted_payouts()
        assert len(payouts) == 1 and len(payouts[0]["candidates"]) == 1
        replacement = payouts[0]["candidates"][0]["txid"]
        assert not _known(anvil_node, replacement), "died before sending the replacement"

        # The restart must send *this* replacement; with replace_after still 1 s it would at
        # once persist and send a newer one that evicts it from the pool before it is seen.
        teller.config.write_text(teller.config.read_text().replace(
            'replace_after = "1s"', 'replace_after = "1h"'))
        teller.start()
        wait_until(lambda: _known(anvil_node, replacement), timeout=20,
                   message="the persisted replacement sent after the restart")
        anvil_node.mine(1)
        wait_until(lambda: teller.deposits("done"), timeout=30, message="deposit done")
        logs = transfers_from(chain, chain.hot.address)
        assert [(t["to"], t["value"]) for t in logs] == [(BUYER, 1_000_000)]
    finally:
        teller.kill()


def _known(node: AnvilNode, txid: str) -> bool:
    try:
        return node.w3.eth.get_transaction(txid) is not None
    except Exception:  # noqa: BLE001 - TransactionNotFound: not (yet) known
        return False

# -- factory and keys ---------------------------------------------------------------------------


def erc20_config(chain_url: str, token: str, secret: str) -> str:
    return f"""
[dummy]
sender = false
[sender]
backend = "erc20"
[erc20_sender]
url = "{chain_url}"
token = "{token}"
{secret}
[btc_scanner]
enabled = false
"""


def test_factory_loads_a_keystore_and_reports_key_problems(storage, chain, tmp_path,
                                                           monkeypatch) -> None:
    from eth_account import Account

    from teller.backends import create_sender
    from teller.config import ConfigError, parse_config

    keystore = Account.encrypt(chain.hot.key, "pw", kdf="pbkdf2", iterations=1024)
    (tmp_path / "key.json").write_text(json.dumps(keystore))
    (tmp_path / "pw").write_text("pw\n")
    (tmp_path / "bad-pw").write_text("nope\n")
    url, token = chain.node.url, chain.token.address

    def config(secret: str) -> Any:
        return parse_config(erc20_config(url, token, secret))

    sender = create_sender(config(f'key_file = "{tmp_path / "key.json"}"\n'
                                  f'password_file = "{tmp_path / "pw"}"'), storage)
    assert sender.address == chain.hot.address and sender.token == "TUSD"

    with pytest.raises(ConfigError, match="wrong password") as exc:
        create_sender(config(f'key_file = "{tmp_path / "key.json"}"\n'
                             f'password_file = "{tmp_path / "bad-pw"}"'), storage)
    assert "nope" not in str(exc.value)
    with pytest.raises(ConfigError, match="cannot read"):
        create_sender(config(f'key_file = "{tmp_path / "missing.json"}"\n'
                             f'password_file = "{tmp_path / "pw"}"'), storage)
    monkeypatch.setenv("TELLER_TEST_KEY", "0x1234")
    with pytest.raises(ConfigError, match="64 hex digits") as exc:
        create_sender(config('key_env = "TELLER_TEST_KEY"'), storage)
    assert "0x1234" not in str(exc.value)
    monkeypatch.setenv("TELLER_TEST_KEY", chain.hot.key.hex())
    assert create_sender(config('key_env = "TELLER_TEST_KEY"'), storage).address == \
        chain.hot.address

    not_a_contract = "0x" + "12" * 20
    with pytest.raises(ConfigError, match="no contract at"):
        create_sender(parse_config(erc20_config(url, not_a_contract,
                                                'key_env = "TELLER_TEST_KEY"')), storage)


def test_unreachable_node_at_start_is_not_fatal(storage, chain, monkeypatch) -> None:
    from sender.base import NodeUnavailable
    from teller.backends import create_sender
    from teller.config import parse_config
    from tests.support.nodes import free_port

    monkeypatch.setenv("TELLER_TEST_KEY", chain.hot.key.hex())
    dead = f"http://127.0.0.1:{free_port()}"
    sender = create_sender(parse_config(erc20_config(dead, chain.token.address,
                                                     'key_env = "TELLER_TEST_KEY"')), storage)
    with pytest.raises(NodeUnavailable, match="unreachable"):
        sender.balance()
    assert sender.decimals == 18 and sender.token == "?"  # unknown until the node answers


def test_stuck_payout_is_replaced_with_the_same_nonce_and_pays_once(
        tmp_path, anvil_node, monkeypatch) -> None:
    """Nothing is mined for a while: the teller persists and sends fee-bumped replacements
    with the same nonce; once a block comes, exactly one of them pays the buyer."""
    chain = setup_chain(anvil_node, tokens=10_000_000, eth_wei=10**18)
    monkeypatch.setenv("TELLER_TEST_HOT_KEY", chain.hot.key.hex())
    overrides = teller_overrides(chain, "TELLER_TEST_HOT_KEY").replace(
        'backend = "erc20"', 'backend = "erc20"\nreplace_after = "1s"')
    nonce_before = anvil_node.w3.eth.get_transaction_count(chain.hot.address)
    harness = start_teller(tmp_path, overrides)
    try:
        address = harness.bind(BUYER)
        harness.deposit(address, 100_000, "cc" * 32)  # 0.001 BTC at 1000 -> 1 TUSD

        def replaced() -> list[str]:
            records = harness.deposits("waiting_confirm")
            return records[0].get("replacement_txids", []) if records else []

        replacements = wait_until(replaced, timeout=20, message="a persisted replacement")
        original = harness.deposits("waiting_confirm")[0]["txid"]
        assert original not in replacements
        anvil_node.mine(1)
        done = wait_until(lambda: harness.deposits("done"), timeout=20, message="paid")
        paid_txid = done[0]["txid"]
        # the node kept the best-paying candidate: a replacement, not the original
        assert paid_txid != original and paid_txid in done[0]["replacement_txids"]
        receipt = anvil_node.w3.eth.get_transaction_receipt(paid_txid)
        assert receipt["status"] == 1
        assert chain.token.functions.balanceOf(BUYER).call() == 1_000_000
        assert anvil_node.w3.eth.get_transaction_count(chain.hot.address) == nonce_before + 1
        transfers = [t for t in transfers_from(chain, chain.hot.address) if t["to"] == BUYER]
        assert len(transfers) == 1
    finally:
        harness.close()


def test_retry_of_a_forgotten_payout_waits_until_its_nonce_is_spent(
        tmp_path, anvil_node, monkeypatch) -> None:
    """A payout held as dead because the node forgot it stays valid: anyone holding its bytes
    can still get it mined while its nonce is unused. An operator's retry (a new payout with a
    new nonce) is refused until another transaction has spent that nonce; then it pays once."""
    chain = setup_chain(anvil_node, tokens=10_000_000, eth_wei=10**18)
    monkeypatch.setenv("TELLER_TEST_HOT_KEY", chain.hot.key.hex())
    harness = start_teller(tmp_path, teller_overrides(chain, "TELLER_TEST_HOT_KEY"))
    try:
        address = harness.bind(BUYER)
        harness.deposit(address, 100_000, "dd" * 32)  # 0.001 BTC at 1000 -> 1 TUSD
        [record] = wait_until(lambda: harness.deposits("waiting_confirm"), timeout=20,
                              message="the payout broadcast")
        service = harness.service
        assert service is not None
        service.store.mark_needs_review(record["payout_id"], "not seen by the node for 6 h")
        anvil_node.request("anvil_dropTransaction", [record["txid"]])
        ident = {"coin_type": "BTC", "deposit_id": record["deposit_id"], "action": "retry"}

        resp = harness.post_json(harness.admin, "/api/deposits/review", ident)
        assert resp.status_code == 409 and "can still be mined" in resp.text, resp.text
        assert [d["status"] for d in harness.deposits()] == ["needs_review"]

        # the operator spends the nonce with a transfer to itself: now the retry pays
        w3 = anvil_node.w3
        spend = chain.hot.sign_transaction({
            "to": chain.hot.address, "value": 0, "gas": 21_000, "gasPrice": 10**10,
            "nonce": w3.eth.get_transaction_count(chain.hot.address),
            "chainId": anvil_node.chain_id})
        w3.eth.send_raw_transaction(spend.raw_transaction)
        anvil_node.mine(1)
        resp = harness.post_json(harness.admin, "/api/deposits/review", ident)
        assert resp.status_code == 200, resp.text

        def paid() -> list[dict[str, Any]]:
            anvil_node.mine(1)
            return harness.deposits("done")

        [done] = wait_until(paid, timeout=20, message="paid once")
        assert done["txid"] != record["txid"]
        assert chain.token.functions.balanceOf(BUYER).call() == 1_000_000
        assert len([t for t in transfers_from(chain, chain.hot.address) if t["to"] == BUYER]) == 1
    finally:
        harness.close()
