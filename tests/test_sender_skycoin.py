"""The Skycoin REST sender against a stubbed node (``responses``): no Skycoin node runs here.

Bodies follow skycoin/skycoin ``src/api/README.md`` and the handlers' error paths
(``wh.Error400`` → "400 Bad Request - <why>", API-set guard → 403 "Endpoint is disabled",
CSRF guard → 403 "invalid CSRF token"). Storage is real LMDB; the exchanger's persist step is
reproduced with ``commit_built`` inside a real write transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import responses
from responses import matchers

from addrs.pool import AddressPool
from common.storage import Storage
from common.units import SKY_DECIMALS
from exchanger.processor import Exchanger, ExchangerSettings
from ledger.status import Status
from ledger.store import Deposit, DepositStore
from sender.base import (
    BroadcastRejected,
    InsufficientFunds,
    NodeUnavailable,
    PayoutOutput,
    SenderError,
    TxState,
)
from sender.skycoin import SkycoinSender
from teller.config import ConfigError, parse_config
from tests.support.wait import wait_until

NODE = "http://127.0.0.1:6420"
WALLET = "hot.wlt"
PASSWORD = "correct horse"
BUYER_A = "2Huip6Eizrq1uWYqfQEh4ymibLysJmXnWXS"
BUYER_B = "fznGedkc87a8SsW94dBowEv6J7zLGAjT17"
BUYER_C = "7cpQ7t3PZZXvjTst8G7Uvs7XH4LeM8fBPD"
CHANGE = "uvcDrKc8rHTjxLrU4mPN56Hyh2tR6RvCvw"
TXID = "5f060918d2da468a784ff440fbba80674c829caca355a27ae067f465d0a5e43e"
RAW = ("010100000097dd062820314c46da0fc18c8c6c10bfab1d5da80c30adc79bbe72e90bfab11d0100000061"
       "20acebfa61ba4d3970dec5665c3c952374f5d9bbf327674a0b240de62b202b319f61182e2a262b2ca5ef")
UXID = "7068bfd0f0f914ea3682d0e5cb3231b75cb9f0776bf9013d79b998d96c93ce2b"
OTHER_TX = "ccfbb51e94cb58a619a82502bc986fb028f632df299ce189c2ff2932574a03e7"


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    st = Storage(tmp_path / "data")
    yield st
    st.close()


@pytest.fixture
def node() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def make_sender(storage: Storage, **kw) -> SkycoinSender:
    return SkycoinSender(storage, address="127.0.0.1:6420", wallet_id=WALLET, password=PASSWORD,
                         **{"max_outputs": 5, **kw})


def csrf(node: responses.RequestsMock, token: str = "tok-1") -> None:
    node.add(responses.GET, f"{NODE}/api/v1/csrf", json={"csrf_token": token})


def balance_body(coins: int, hours: int = 1873147, predicted: int | None = None) -> dict:
    pred = coins if predicted is None else predicted
    return {"confirmed": {"coins": coins, "hours": hours},
            "predicted": {"coins": pred, "hours": hours},
            "addresses": {CHANGE: {"confirmed": {"coins": coins, "hours": hours},
                                   "predicted": {"coins": pred, "hours": hours}}}}


def created_body(outputs: list[tuple[str, str]], txid: str = TXID,
                 inputs: tuple[str, ...] = (UXID,)) -> dict:
    """A /api/v1/wallet/transaction answer: destinations plus a change output."""
    return {
        "transaction": {
            "length": 257, "type": 0, "txid": txid,
            "inner_hash": "97dd062820314c46da0fc18c8c6c10bfab1d5da80c30adc79bbe72e90bfab11d",
            "fee": "437691", "sigs": ["6120acebfa61ba4d" + "00" * 57],
            "inputs": [{"uxid": u, "address": CHANGE, "coins": "10.000000", "hours": "853667",
                        "calculated_hours": "862290", "timestamp": 1524242826, "block": 23575,
                        "txid": OTHER_TX} for u in inputs],
            "outputs": [{"uxid": f"{i:064x}", "address": a, "coins": c, "hours": "22253"}
                        for i, (a, c) in enumerate(outputs)]
            + [{"uxid": "f" * 64, "address": CHANGE, "coins": "8.990000", "hours": "200046"}],
        },
        "encoded_transaction": RAW,
    }


def tx_status(confirmed: bool, txid: str = TXID) -> dict:
    return {"status": {"confirmed": confirmed, "unconfirmed": not confirmed,
                       "height": 1 if confirmed else 0, "block_seq": 1178 if confirmed else 0},
            "time": 1494275231,
            "txn": {"txid": txid, "inputs": [UXID], "outputs": [], "sigs": [], "length": 183,
                    "type": 0, "inner_hash": "0" * 64, "timestamp": 1494275231}}


def persist(storage: Storage, sender: SkycoinSender, signed) -> None:
    """What the exchanger does between build and broadcast (one LMDB write transaction)."""
    with storage.write() as txn:
        storage.put(txn, "payouts", "p1", signed.to_json())
        sender.commit_built(storage, txn, signed)


OUT_A = PayoutOutput(BUYER_A, 1_000_000, "BTC/aa:0")


# -- the happy path -----------------------------------------------------------------------------


def test_payout_builds_without_injecting_then_injects_and_confirms(storage, node) -> None:
    sender = make_sender(storage)
    node.add(responses.GET, f"{NODE}/api/v1/wallet/balance",
             match=[matchers.query_param_matcher({"id": WALLET})],
             json=balance_body(210_400_000))
    assert sender.balance().coins == 210_400_000

    csrf(node)
    create = node.add(responses.POST, f"{NODE}/api/v1/wallet/transaction",
                      match=[matchers.header_matcher({"X-CSRF-Token": "tok-1"})],
                      json=created_body([(BUYER_A, "1.000000")]))
    signed = sender.build([OUT_A], "p1")
    assert (signed.txid, signed.raw) == (TXID, RAW)
    assert signed.meta["inputs"] == [UXID]
    body = json.loads(create.calls[0].request.body)
    assert body == {
        "hours_selection": {"type": "auto", "mode": "share", "share_factor": "0.5"},
        "wallet_id": WALLET, "password": PASSWORD, "ignore_unconfirmed": True,
        "to": [{"address": BUYER_A, "coins": "1.000000"}],
    }
    assert not any("injectTransaction" in c.request.url for c in node.calls), "build injected"

    persist(storage, sender, signed)
    node.replace(responses.GET, f"{NODE}/api/v1/wallet/balance", json=balance_body(210_400_000))
    assert sender.balance().coins == 209_400_000, "a signed, unsent payout is reserved"

    inject = node.add(responses.POST, f"{NODE}/api/v1/injectTransaction", json=TXID)
    sender.broadcast(signed)
    assert json.loads(inject.calls[0].request.body) == {"rawtx": RAW}
    assert inject.calls[0].request.headers["X-CSRF-Token"] == "tok-1"
    assert sender.balance().coins == 210_400_000, "the node's balance now counts it"

    lookup = node.add(responses.GET, f"{NODE}/api/v1/transaction",
                      match=[matchers.query_param_matcher({"txid": TXID})],
                      json=tx_status(False))
    assert sender.tx_state(signed) == TxState.PENDING
    node.replace(responses.GET, f"{NODE}/api/v1/transaction", json=tx_status(True))
    assert sender.tx_state(signed) == TxState.CONFIRMED
    assert lookup.call_count == 1


def test_batch_pays_several_deposits_in_one_transaction(storage, node) -> None:
    sender = make_sender(storage)
    outs = [PayoutOutput(BUYER_A, 1_000_000, "BTC/a:0"), PayoutOutput(BUYER_B, 2_500_000, "BTC/b:0"),
            PayoutOutput(BUYER_A, 1_000_000, "BTC/c:1")]
    csrf(node)
    create = node.add(responses.POST, f"{NODE}/api/v1/wallet/transaction",
                      json=created_body([(BUYER_A, "2.000000"), (BUYER_B, "2.500000")]))
    signed = sender.build(outs, "p1")
    sent = json.loads(create.calls[0].request.body)["to"]
    # the node refuses two identical outputs: one buyer's two deposits become one output
    assert sent == [{"address": BUYER_A, "coins": "2.000000"},
                    {"address": BUYER_B, "coins": "2.500000"}]
    assert [o.deposit_key for o in signed.outputs] == ["BTC/a:0", "BTC/b:0", "BTC/c:1"]


def test_node_answer_that_does_not_pay_the_request_is_not_used(storage, node) -> None:
    sender = make_sender(storage)
    csrf(node)
    node.add(responses.POST, f"{NODE}/api/v1/wallet/transaction",
             json=created_body([(BUYER_A, "0.900000")]))
    with pytest.raises(SenderError, match="does not pay exactly"):
        sender.build([OUT_A], "p1")


def test_more_decimals_than_the_node_accepts_is_refused_before_asking(storage, node) -> None:
    sender = make_sender(storage, max_decimals=3)
    with pytest.raises(SenderError, match="at most 3 decimals"):
        sender.build([PayoutOutput(BUYER_A, 1_000_100, "BTC/a:0")], "p1")
    assert len(node.calls) == 0


# -- CSRF, API sets, node down ------------------------------------------------------------------


def test_csrf_token_refused_once_is_fetched_again(storage, node) -> None:
    sender = make_sender(storage)
    node.add(responses.GET, f"{NODE}/api/v1/csrf", json={"csrf_token": "stale"})
    node.add(responses.GET, f"{NODE}/api/v1/csrf", json={"csrf_token": "fresh"})
    node.add(responses.POST, f"{NODE}/api/v1/wallet/transaction",
             match=[matchers.header_matcher({"X-CSRF-Token": "stale"})],
             status=403, body="403 Forbidden - invalid CSRF token\n")
    node.add(responses.POST, f"{NODE}/api/v1/wallet/transaction",
             match=[matchers.header_matcher({"X-CSRF-Token": "fresh"})],
             json=created_body([(BUYER_A, "1.000000")]))
    assert sender.build([OUT_A], "p1").txid == TXID


def test_csrf_refused_twice_is_an_error_not_a_loop(storage, node) -> None:
    sender = make_sender(storage)
    csrf(node)
    post = node.add(responses.POST, f"{NODE}/api/v1/wallet/transaction", status=403,
                    body="403 Forbidden - invalid CSRF token\n")
    with pytest.raises(SenderError, match="refused two fresh CSRF tokens"):
        sender.build([OUT_A], "p1")
    assert post.call_count == 2


def test_disabled_api_set_names_the_node_flag(storage, node) -> None:
    sender = make_sender(storage)
    node.add(responses.GET, f"{NODE}/api/v1/wallet/balance", status=403,
             body="403 Forbidden - Endpoint is disabled\n")
    with pytest.raises(SenderError, match="-enable-api-sets=READ,TXN,WALLET") as exc:
        sender.balance()
    assert "Endpoint is disabled" in str(exc.value)
    assert not isinstance(exc.value, NodeUnavailable)


def test_csrf_disabled_node_gets_no_header(storage, node) -> None:
    sender = make_sender(storage)
    node.add(responses.GET, f"{NODE}/api/v1/csrf", status=404, body="404 Not Found\n")
    post = node.add(responses.POST, f"{NODE}/api/v1/injectTransaction", json=TXID)
    signed = _signed(storage, sender, node)
    sender.broadcast(signed)
    assert "X-CSRF-Token" not in post.calls[0].request.headers


def test_node_down_is_node_unavailable_everywhere(storage, node) -> None:
    sender = make_sender(storage)
    down = requests.ConnectionError("connection refused")
    for method, path in [(responses.GET, "/api/v1/wallet/balance"),
                         (responses.GET, "/api/v1/csrf"),
                         (responses.GET, "/api/v1/transaction")]:
        node.add(method, NODE + path, body=down)
    with pytest.raises(NodeUnavailable, match="unreachable"):
        sender.balance()
    with pytest.raises(NodeUnavailable):
        sender.build([OUT_A], "p1")
    signed = _fake_signed()
    with pytest.raises(NodeUnavailable):
        sender.broadcast(signed)
    with pytest.raises(NodeUnavailable):
        sender.tx_state(signed)
    node.replace(responses.GET, f"{NODE}/api/v1/wallet/balance", status=503,
                 body="503 Service Unavailable\n")
    with pytest.raises(NodeUnavailable):
        sender.balance()


def test_password_is_never_in_an_error(storage, node) -> None:
    sender = make_sender(storage)
    csrf(node)
    node.add(responses.POST, f"{NODE}/api/v1/wallet/transaction", status=400,
             body="400 Bad Request - invalid password\n")
    with pytest.raises(SenderError) as exc:
        sender.build([OUT_A], "p1")
    assert "password" in str(exc.value) and PASSWORD not in str(exc.value)
    assert PASSWORD not in repr(sender)


# -- funds ----------------------------------------------------------------------------------------


def test_insufficient_balance_is_insufficient_funds(storage, node) -> None:
    sender = make_sender(storage)
    csrf(node)
    node.add(responses.POST, f"{NODE}/api/v1/wallet/transaction", status=400,
             body="400 Bad Request - balance is not sufficient\n")
    with pytest.raises(InsufficientFunds, match="balance is not sufficient"):
        sender.build([OUT_A], "p1")


def test_balance_is_the_smaller_of_confirmed_and_predicted(storage, node) -> None:
    sender = make_sender(storage)
    node.add(responses.GET, f"{NODE}/api/v1/wallet/balance",
             json=balance_body(5_000_000, hours=77, predicted=3_000_000))
    balance = sender.balance()
    assert (balance.coins, balance.hours) == (3_000_000, 77)


# -- idempotent inject, dead payouts --------------------------------------------------------------


def _fake_signed():
    from sender.base import SignedPayout

    return SignedPayout(TXID, RAW, (OUT_A,), {"inputs": [UXID], "wallet": WALLET})


def _signed(storage: Storage, sender: SkycoinSender, node: responses.RequestsMock):
    node.add(responses.POST, f"{NODE}/api/v1/wallet/transaction",
             json=created_body([(BUYER_A, "1.000000")]))
    signed = sender.build([OUT_A], "p1")
    persist(storage, sender, signed)
    return signed


def test_inject_of_a_txid_the_node_has_pending_is_success(storage, node) -> None:
    sender = make_sender(storage)
    csrf(node)
    signed = _signed(storage, sender, node)
    inject = node.add(responses.POST, f"{NODE}/api/v1/injectTransaction", json=TXID)
    sender.broadcast(signed)
    sender.broadcast(signed)  # after a crash: the same bytes again; the pool already has it
    assert inject.call_count == 2


def test_inject_of_an_already_confirmed_txid_is_success(storage, node) -> None:
    sender = make_sender(storage)
    csrf(node)
    signed = _signed(storage, sender, node)
    node.add(responses.POST, f"{NODE}/api/v1/injectTransaction", status=400,
             body=f"400 Bad Request - Transaction violates hard constraint: unspent output "
                  f"of {UXID} does not exist\n")
    node.add(responses.GET, f"{NODE}/api/v1/transaction", json=tx_status(True))
    sender.broadcast(signed)
    assert sender.tx_state(signed) == TxState.CONFIRMED


def test_inputs_spent_elsewhere_is_rejected_and_conflicted(storage, node) -> None:
    sender = make_sender(storage)
    csrf(node)
    signed = _signed(storage, sender, node)
    node.add(responses.POST, f"{NODE}/api/v1/injectTransaction", status=400,
             body="400 Bad Request - Transaction violates hard constraint: unspent output "
                  f"of {UXID} does not exist\n")
    node.add(responses.GET, f"{NODE}/api/v1/transaction", status=404, body="404 Not Found\n")
    node.add(responses.GET, f"{NODE}/api/v1/uxout",
             match=[matchers.query_param_matcher({"uxid": UXID})],
             json={"uxid": UXID, "time": 1524242826, "src_block_seq": 23575,
                   "src_tx": OTHER_TX, "owner_address": CHANGE, "coins": 10_000_000,
                   "hours": 853667, "spent_block_seq": 23580, "spent_tx": "ab" * 32})
    with pytest.raises(BroadcastRejected, match="does not exist"):
        sender.broadcast(signed)
    assert sender.tx_state(signed) == TxState.CONFLICTED


def test_unknown_transaction_with_unspent_inputs_is_unknown(storage, node) -> None:
    sender = make_sender(storage)
    node.add(responses.GET, f"{NODE}/api/v1/transaction", status=404, body="404 Not Found\n")
    node.add(responses.GET, f"{NODE}/api/v1/uxout",
             json={"uxid": UXID, "spent_tx": "0" * 64, "spent_block_seq": 0})
    assert sender.tx_state(_fake_signed()) == TxState.UNKNOWN


def test_no_second_build_may_spend_an_unsent_payouts_inputs(storage, node) -> None:
    sender = make_sender(storage)
    csrf(node)
    first = _signed(storage, sender, node)  # persisted, inject not yet accepted
    node.replace(responses.POST, f"{NODE}/api/v1/wallet/transaction",
                 json=created_body([(BUYER_B, "1.000000")], txid="e" * 64))
    with pytest.raises(SenderError, match=f"outputs of payout {first.txid}"):
        sender.build([PayoutOutput(BUYER_B, 1_000_000, "BTC/b:0")], "p2")
    node.add(responses.POST, f"{NODE}/api/v1/injectTransaction", json=TXID)
    sender.broadcast(first)
    assert sender.build([PayoutOutput(BUYER_B, 1_000_000, "BTC/b:0")], "p2").txid == "e" * 64


# -- through the exchanger ----------------------------------------------------------------------


def test_exchanger_batches_pending_deposits_into_one_multi_output_payout(storage, node) -> None:
    sender = make_sender(storage, max_outputs=3)
    pool = AddressPool(storage)
    pool.add("BTC", ["1PZ63K3G4gZP6A6E2TTbBwxT5bFQGL2TLB", "14FG8vQnmK6B7YbLSr6uC5wfGY78JFNCYg",
                     "1LqBGSKuX5yYUonjxT5qGfpUsXKYYWeabA"])
    store = DepositStore(storage, pool)
    buyers = [BUYER_A, BUYER_B, BUYER_C]
    for i, buyer in enumerate(buyers):
        binding = store.bind("BTC", buyer, pool_coin="BTC", buy_method="direct", max_bound=0)
        store.record_deposit(Deposit("BTC", binding["address"], 200_000, 1, f"{i:064x}", 0),
                             "500")
    node.add(responses.GET, f"{NODE}/api/v1/wallet/balance", json=balance_body(100_000_000))
    csrf(node)
    create = node.add(responses.POST, f"{NODE}/api/v1/wallet/transaction",
                      json=created_body([(b, "1.000000") for b in buyers]))
    node.add(responses.POST, f"{NODE}/api/v1/injectTransaction", json=TXID)
    node.add(responses.GET, f"{NODE}/api/v1/transaction", json=tx_status(True))
    exchanger = Exchanger(store, sender, ExchangerSettings(check_wait=0.05, retry_base=0.05))
    exchanger.start()
    try:
        wait_until(lambda: len(store.in_status(Status.DONE)) == 3, timeout=10,
                   message="three deposits done")
    finally:
        exchanger.stop()
    assert create.call_count == 1, "one transaction for the three deposits"
    assert [t["coins"] for t in json.loads(create.calls[0].request.body)["to"]] == \
        ["1.000000"] * 3
    assert {r["txid"] for r in store.in_status(Status.DONE)} == {TXID}
    assert sum(r["sky_sent"] for r in store.in_status(Status.DONE)) == 3 * 10**SKY_DECIMALS


# -- factory --------------------------------------------------------------------------------------


SKY_CONFIG = """
[sender]
backend = "skycoin"
max_outputs = 4
[sky_rpc]
address = "127.0.0.1:6420"
wallet_id = "hot.wlt"
{secret}
[btc_scanner]
enabled = false
"""


def test_factory_reads_the_password_from_env_or_file(storage, tmp_path, monkeypatch) -> None:
    from teller.backends import create_sender

    monkeypatch.setenv("SKY_WALLET_PASSWORD", PASSWORD)
    cfg = parse_config(SKY_CONFIG.format(secret='password_env = "SKY_WALLET_PASSWORD"'))
    sender = create_sender(cfg, storage)
    assert isinstance(sender, SkycoinSender) and sender.max_outputs == 4
    assert sender._password == PASSWORD

    (tmp_path / "pw").write_text(PASSWORD + "\n")
    cfg = parse_config(SKY_CONFIG.format(secret=f'password_file = "{tmp_path / "pw"}"'))
    assert create_sender(cfg, storage)._password == PASSWORD


def test_factory_lists_a_missing_secret_without_starting(storage, tmp_path) -> None:
    from teller.backends import create_sender

    cfg = parse_config(SKY_CONFIG.format(secret='password_env = "NO_SUCH_VARIABLE_FOR_TELLER"'))
    with pytest.raises(ConfigError, match="NO_SUCH_VARIABLE_FOR_TELLER is not set"):
        create_sender(cfg, storage)
    cfg = parse_config(SKY_CONFIG.format(secret=f'password_file = "{tmp_path / "missing"}"'))
    with pytest.raises(ConfigError, match="cannot read"):
        create_sender(cfg, storage)


# -- node answers that are not what the API promises (review 2026-11-22) -------------------------


def test_balance_answer_with_non_integer_droplets_is_node_unavailable(storage, node) -> None:
    """Droplets are integers: a fraction is not rounded and Infinity is no crash."""
    sender = make_sender(storage)
    good = json.dumps(balance_body(5_000_000))
    for bad in (good.replace("5000000", "Infinity", 1), good.replace("5000000", "4999999.5", 1),
                good.replace("5000000", "NaN", 1), good.replace("5000000", "true", 1)):
        node.upsert(responses.GET, f"{NODE}/api/v1/wallet/balance", body=bad,
                    content_type="application/json")
        with pytest.raises(NodeUnavailable, match="balance answer|not JSON"):
            sender.balance()


def test_build_answer_with_garbage_outputs_is_node_unavailable(storage, node) -> None:
    sender = make_sender(storage)
    csrf(node)
    body = created_body([(BUYER_A, "1.000000")])
    for outputs in (["not an object"], [{"address": BUYER_A, "coins": "1.0000005"}],
                    [{"address": BUYER_A, "coins": "Infinity"}]):
        body["transaction"]["outputs"] = outputs
        node.upsert(responses.POST, f"{NODE}/api/v1/wallet/transaction", json=body)
        with pytest.raises(NodeUnavailable, match="unexpected answer"):
            sender.build([OUT_A], "p1")


def test_coins_as_json_numbers_are_read_exactly(storage, node) -> None:
    """A node (or proxy) that writes coins as JSON numbers: parsed as Decimal, never float."""
    sender = make_sender(storage)
    csrf(node)
    big = PayoutOutput(BUYER_A, 12_345_678_901_234_567_000, "BTC/aa:0")  # 17 digits: no float
    raw = json.dumps(created_body([(BUYER_A, "@COINS@")])).replace(
        '"@COINS@"', "12345678901234.567")
    node.add(responses.POST, f"{NODE}/api/v1/wallet/transaction", body=raw,
             content_type="application/json")
    assert sender.build([big], "p1").txid == TXID


def test_conflicted_payout_no_longer_holds_back_balance_or_inputs(storage, node) -> None:
    """Inputs spent by another transaction: the payout can never be mined, so its coins stop
    counting as in flight and a new build may use the wallet's outputs again."""
    sender = make_sender(storage)
    csrf(node)
    signed = _signed(storage, sender, node)  # persisted, the node refused the inject
    node.add(responses.GET, f"{NODE}/api/v1/wallet/balance", json=balance_body(5_000_000))
    assert sender.balance().coins == 4_000_000, "held back while it could still be sent"
    node.add(responses.GET, f"{NODE}/api/v1/transaction", status=404, body="404 Not Found\n")
    node.add(responses.GET, f"{NODE}/api/v1/uxout",
             json={"uxid": UXID, "spent_tx": "ab" * 32, "spent_block_seq": 23580})
    assert sender.tx_state(signed) == TxState.CONFLICTED
    assert sender.balance().coins == 5_000_000
    node.replace(responses.POST, f"{NODE}/api/v1/wallet/transaction",
                 json=created_body([(BUYER_B, "1.000000")], txid="e" * 64))
    assert sender.build([PayoutOutput(BUYER_B, 1_000_000, "BTC/b:0")], "p2").txid == "e" * 64
