"""tools.btcsim driven through python-bitcoinrpc (the client the BTC scanner uses) and raw HTTP."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from bitcoinrpc.authproxy import AuthServiceProxy, JSONRPCException
from click.testing import CliRunner

from teller.cli_btcsim import btcsim_command
from tests.support.wait import scaled, wait_until
from tools.btcsim import (
    SimulatorError,
    SimulatorHandle,
    multisig_output,
    output,
    start_simulator,
)

REPO = Path(__file__).resolve().parents[1]
BECH32 = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
LEGACY = "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn"
P2SH = "2MzQwSSnBHWHqSAqtTVQ6v47XtaisrJa1Vc"


def rpc_of(handle: SimulatorHandle, timeout: float = 10) -> AuthServiceProxy:
    return AuthServiceProxy(handle.rpc_url, timeout=timeout)


def raw_post(
    handle: SimulatorHandle, body: Any, auth: str | None = "user:pass", path: str = "/"
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", handle.port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    conn.request("POST", path, data, headers)
    resp = conn.getresponse()
    out = resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    conn.close()
    return out


def rpc_error(call: Any, *args: Any) -> dict[str, Any]:
    with pytest.raises(JSONRPCException) as info:
        call(*args)
    return info.value.error


# ----------------------------------------------------------------------------- RPC surface


def test_every_rpc_method_answers_like_bitcoind(btcsim: SimulatorHandle) -> None:
    rpc = rpc_of(btcsim)
    assert rpc.getblockcount() == 0
    genesis = rpc.getblockhash(0)
    assert rpc.getbestblockhash() == genesis
    btcsim.control.generate(3)
    assert rpc.getblockcount() == 3
    tip = rpc.getbestblockhash()
    assert tip == rpc.getblockhash(3) != genesis

    info = rpc.getblockchaininfo()
    assert info["chain"] == "regtest"
    assert info["blocks"] == info["headers"] == 3
    assert info["bestblockhash"] == tip
    assert info["initialblockdownload"] is False

    header = rpc.getblockheader(tip)
    assert header["height"] == 3 and header["confirmations"] == 1
    assert header["previousblockhash"] == rpc.getblockhash(2)
    assert "tx" not in header
    raw_header = bytes.fromhex(rpc.getblockheader(tip, False))
    assert len(raw_header) == 80
    assert hashlib.sha256(hashlib.sha256(raw_header).digest()).digest()[::-1].hex() == tip

    assert rpc.getnetworkinfo()["version"] == 220000

    block = rpc.getblock(tip)  # default verbosity 1: txids
    assert block["hash"] == tip and block["height"] == 3 and block["nTx"] == 1
    assert isinstance(block["tx"][0], str) and len(block["tx"][0]) == 64
    assert "nextblockhash" not in block
    assert rpc.getblock(rpc.getblockhash(2))["nextblockhash"] == tip
    # bitcoind also takes a bool verbosity
    assert rpc.getblock(tip, True)["tx"] == block["tx"]
    assert isinstance(rpc.getblock(tip, False), str)


def test_mined_outputs_get_real_vout_index_and_exact_decimal_values(
    btcsim: SimulatorHandle,
) -> None:
    rpc = rpc_of(btcsim)
    mined = btcsim.control.mine(
        [
            [output(BECH32, 12_345_678), output(LEGACY, 1), output(P2SH, 2_099_999_999_999_999)],
            {"outputs": [output(BECH32, 50_000)], "fee": 2_500},
        ]
    )
    txs = mined["blocks"][0]["txs"]
    assert [o["n"] for o in txs[0]["outputs"]] == [0, 1, 2]
    block = rpc.getblock(mined["tip"], 2)
    assert block["confirmations"] == 1
    assert [t["txid"] for t in block["tx"][1:]] == [t["txid"] for t in txs]
    tx = block["tx"][1]
    assert "coinbase" in block["tx"][0]["vin"][0]
    assert [(o["n"], o["value"], o["scriptPubKey"]["address"]) for o in tx["vout"]] == [
        (0, Decimal("0.12345678"), BECH32),
        (1, Decimal("0.00000001"), LEGACY),
        (2, Decimal("20999999.99999999"), P2SH),
    ]
    assert [o["scriptPubKey"]["type"] for o in tx["vout"]] == [
        "witness_v0_keyhash", "pubkeyhash", "scripthash",
    ]
    assert all("addresses" not in o["scriptPubKey"] for o in tx["vout"])
    assert tx["fee"] == Decimal("0.00001000")
    assert block["tx"][2]["fee"] == Decimal("0.00002500")
    assert "fee" not in block["tx"][0]
    # the raw tx hashes to its txid, as in Bitcoin
    raw = bytes.fromhex(tx["hex"])
    assert hashlib.sha256(hashlib.sha256(raw).digest()).digest()[::-1].hex() == tx["txid"]
    # the exact JSON text has 8 decimals (what Core writes)
    status, _, body = raw_post(
        btcsim, {"method": "getblock", "params": [mined["tip"], 2], "id": 1}
    )
    assert status == 200
    assert b'"value":0.12345678' in body and b'"value":0.00000001' in body
    # verbosity 0: the header is the first 80 bytes and hashes to the block hash
    block_hex = rpc.getblock(mined["tip"], 0)
    header = bytes.fromhex(block_hex[:160])
    assert hashlib.sha256(hashlib.sha256(header).digest()).digest()[::-1].hex() == mined["tip"]
    assert tx["hex"] in block_hex


def test_old_core_shape_per_simulator_and_per_output() -> None:
    with start_simulator(core_version=21) as old:
        rpc = rpc_of(old)
        mined = old.control.mine([[output(BECH32, 100), multisig_output([LEGACY, P2SH], 7, 2)]])
        tx = rpc.getblock(mined["tip"], 2)["tx"][1]
        spk = tx["vout"][0]["scriptPubKey"]
        assert spk["addresses"] == [BECH32] and spk["reqSigs"] == 1 and "address" not in spk
        ms = tx["vout"][1]["scriptPubKey"]
        assert ms["type"] == "multisig" and ms["addresses"] == [LEGACY, P2SH]
        assert ms["reqSigs"] == 2 and ms["asm"].endswith("2 OP_CHECKMULTISIG")
        assert "fee" not in tx
        assert rpc.getnetworkinfo()["version"] == 210000
    with start_simulator(core_version=22) as new:
        mined = new.control.mine(
            [[output(BECH32, 100, core_version=21), output(LEGACY, 200)]]
        )
        tx = rpc_of(new).getblock(mined["tip"], 2)["tx"][1]
        assert tx["vout"][0]["scriptPubKey"]["addresses"] == [BECH32]
        assert tx["vout"][1]["scriptPubKey"]["address"] == LEGACY


def test_multisig_and_nulldata_outputs_carry_no_single_address(
    btcsim: SimulatorHandle,
) -> None:
    mined = btcsim.control.mine(
        [[multisig_output([BECH32, LEGACY, P2SH], 5_000, 2), {"nulldata": "cafe", "value": 0},
          output(LEGACY, 6_000)]]
    )
    summary = mined["blocks"][0]["txs"][0]["outputs"]
    assert summary[0]["addresses"] == [BECH32, LEGACY, P2SH] and summary[2]["n"] == 2
    vout = rpc_of(btcsim).getblock(mined["tip"], 2)["tx"][1]["vout"]
    assert vout[0]["scriptPubKey"]["type"] == "multisig"
    assert "address" not in vout[0]["scriptPubKey"]
    assert "addresses" not in vout[0]["scriptPubKey"]
    assert vout[1]["scriptPubKey"] == {"asm": "OP_RETURN cafe", "hex": "6a02cafe",
                                       "type": "nulldata"}
    assert vout[2]["scriptPubKey"]["address"] == LEGACY and vout[2]["n"] == 2


def test_batch_requests_as_python_bitcoinrpc_sends_them(btcsim: SimulatorHandle) -> None:
    rpc = rpc_of(btcsim)
    btcsim.control.generate(2)
    h1, h2 = rpc.getblockhash(1), rpc.getblockhash(2)
    count, got1, got2, block = rpc.batch_(
        [["getblockcount"], ["getblockhash", 1], ["getblockhash", 2], ["getblock", h2, 2]]
    )
    assert (count, got1, got2, block["hash"]) == (2, h1, h2, h2)
    # python-bitcoinrpc raises on the first element with an error
    error = rpc_error(rpc.batch_, [["getblockcount"], ["getblockhash", 99]])
    assert error["code"] == -8
    # on the wire: HTTP 200, one envelope per element, ids echoed, errors per element
    status, headers, body = raw_post(
        btcsim,
        [
            {"jsonrpc": "2.0", "method": "getblockcount", "params": [], "id": 7},
            {"jsonrpc": "2.0", "method": "nosuch", "params": [], "id": "x"},
            42,
        ],
    )
    assert status == 200 and headers["content-type"] == "application/json"
    replies = json.loads(body)
    assert replies[0] == {"result": 2, "error": None, "id": 7}
    assert replies[1]["error"] == {"code": -32601, "message": "Method not found"}
    assert replies[1]["id"] == "x" and replies[1]["result"] is None
    assert replies[2]["error"]["code"] == -32600


def test_core_28_answers_json_rpc_2_requests_strictly() -> None:
    """Bitcoin Core >= 28: a request marked "jsonrpc": "2.0" gets result or error (never both)
    and HTTP 200; a legacy request keeps the legacy envelope and status."""
    with start_simulator(core_version=28) as sim:
        status, _, body = raw_post(sim, [
            {"jsonrpc": "2.0", "method": "getblockcount", "params": [], "id": 1},
            {"jsonrpc": "2.0", "method": "getblockhash", "params": [5], "id": 2},
            {"method": "getblockcount", "params": [], "id": 3},
        ])
        assert status == 200
        assert json.loads(body) == [
            {"jsonrpc": "2.0", "result": 0, "id": 1},
            {"jsonrpc": "2.0", "error": {"code": -8, "message": "Block height out of range"},
             "id": 2},
            {"result": 0, "error": None, "id": 3},
        ]
        status, _, body = raw_post(sim, {"jsonrpc": "2.0", "method": "nosuch", "id": 4})
        assert status == 200 and "result" not in json.loads(body)
        status, _, body = raw_post(sim, {"method": "nosuch", "id": 5})
        assert status == 404 and json.loads(body)["result"] is None
        # python-bitcoinrpc's batch_ reads response["error"] and fails on Core 28's replies
        with pytest.raises(KeyError):
            rpc_of(sim).batch_([["getblockcount"], ["getblockhash", 0]])


def test_auth_failure_and_wrong_http_method(btcsim: SimulatorHandle) -> None:
    bad = AuthServiceProxy(btcsim.rpc_url.replace(":pass@", ":wrong@"), timeout=5)
    error = rpc_error(bad.getblockcount)
    assert error["code"] == -342 and "401" in error["message"]
    status, headers, body = raw_post(btcsim, {"method": "getblockcount", "id": 1}, auth=None)
    assert status == 401 and body == b"" and "basic" in headers["www-authenticate"].lower()
    status, _, _ = raw_post(btcsim, {"method": "getblockcount", "id": 1}, auth="user:pas")
    assert status == 401
    conn = http.client.HTTPConnection("127.0.0.1", btcsim.port, timeout=5)
    conn.request("GET", "/")
    assert conn.getresponse().status == 405
    conn.close()


def test_rpc_errors_use_bitcoind_codes_and_http_statuses(btcsim: SimulatorHandle) -> None:
    rpc = rpc_of(btcsim)
    assert rpc_error(rpc.getblockhash, 1) == {"code": -8, "message": "Block height out of range"}
    assert rpc_error(rpc.getblockhash, -1)["code"] == -8
    assert rpc_error(rpc.getblock, "00" * 32) == {"code": -5, "message": "Block not found"}
    assert rpc_error(rpc.getblock, "abc")["message"] == (
        "blockhash must be of length 64 (not 3, for 'abc')"
    )
    assert rpc_error(rpc.getblock, "zz" * 32)["code"] == -8
    assert rpc_error(rpc.nosuchmethod)["code"] == -32601
    assert rpc_error(rpc.getblockhash)["code"] == -1  # missing param: usage text
    assert rpc_error(rpc.getblockhash, "1")["code"] == -1  # wrong type
    # a hash is case-insensitive, like a uint256
    assert rpc.getblock(rpc.getblockhash(0).upper())["height"] == 0

    status, headers, body = raw_post(btcsim, {"method": "getblockhash", "params": [5], "id": 3})
    assert status == 500 and headers["content-type"] == "application/json"
    assert json.loads(body) == {
        "result": None, "error": {"code": -8, "message": "Block height out of range"}, "id": 3,
    }
    status, _, body = raw_post(btcsim, {"method": "nosuch", "params": [], "id": 4})
    assert status == 404 and json.loads(body)["error"]["code"] == -32601
    status, _, body = raw_post(btcsim, b"{not json")
    assert status == 500 and json.loads(body)["error"]["code"] == -32700
    # named params work too
    status, _, body = raw_post(btcsim, {"method": "getblockhash", "params": {"height": 0},
                                        "id": 5})
    assert status == 200 and json.loads(body)["result"] == rpc.getblockhash(0)


def test_start_height_and_unknown_parent() -> None:
    with start_simulator(start_height=492_478) as sim:
        rpc = rpc_of(sim)
        assert rpc.getblockcount() == 492_478
        assert rpc_error(rpc.getblockhash, 492_477)["code"] == -8
        first = rpc.getblock(rpc.getblockhash(492_478))
        assert rpc_error(rpc.getblock, first["previousblockhash"])["code"] == -5
        sim.control.generate(1)
        assert rpc.getblock(rpc.getblockhash(492_479))["previousblockhash"] == first["hash"]


def test_hashes_are_deterministic() -> None:
    tips = []
    for _ in range(2):
        with start_simulator() as sim:
            sim.control.mine([[output(BECH32, 1)]], count=2)
            tips.append(sim.control.state()["tip"])
    assert tips[0] == tips[1]


# ----------------------------------------------------------------------------- reorgs


def test_reorg_replaces_blocks_and_recomputes_confirmations(btcsim: SimulatorHandle) -> None:
    rpc = rpc_of(btcsim)
    deposit = btcsim.control.mine([[output(BECH32, 10_000), output(LEGACY, 20_000)]])
    txid = deposit["blocks"][0]["txs"][0]["txid"]
    btcsim.control.generate(2)
    old = {h: rpc.getblockhash(h) for h in (1, 2, 3)}
    assert rpc.getblock(old[1])["confirmations"] == 3

    result = btcsim.control.reorg(3)  # drop the deposit: 3 empty replacement blocks
    assert result["orphaned"] == [old[1], old[2], old[3]]
    assert rpc.getblockcount() == 3
    new = {h: rpc.getblockhash(h) for h in (1, 2, 3)}
    assert all(new[h] != old[h] for h in (1, 2, 3))
    stale = rpc.getblock(old[1], 2)
    assert stale["confirmations"] == -1 and "nextblockhash" not in stale
    assert stale["tx"][1]["txid"] == txid  # still fetchable by hash, as in Core
    assert all(txid not in rpc.getblock(new[h])["tx"] for h in (1, 2, 3))
    assert btcsim.control.state()["stale_blocks"] == 3

    # "same tx re-mined": the orphaned tx comes back one block later on a longer branch
    again = btcsim.control.reorg(
        3, blocks=[{}, {"reinclude": [txid]}], new_blocks=4
    )
    assert again["blocks"][1]["txs"][0]["txid"] == txid
    assert rpc.getblockcount() == 4
    block = rpc.getblock(rpc.getblockhash(2), 2)
    assert block["confirmations"] == 3
    assert [o["n"] for o in block["tx"][1]["vout"]] == [0, 1]
    assert block["tx"][1]["txid"] == txid
    with pytest.raises(SimulatorError):  # already on the active chain
        btcsim.control.mine(reinclude=[txid])

    # dropped by one reorg, mined again by a later plain mine
    btcsim.control.reorg(3)
    assert btcsim.control.mine(reinclude=True)["blocks"][0]["txs"][0]["txid"] == txid


def test_reorg_with_new_txs_and_shorter_chain(btcsim: SimulatorHandle) -> None:
    rpc = rpc_of(btcsim)
    btcsim.control.mine([[output(BECH32, 1_000)]], count=3)
    result = btcsim.control.reorg(2, blocks=[{"txs": [[output(LEGACY, 9_999)]]}], new_blocks=1)
    assert rpc.getblockcount() == 2
    assert result["blocks"][0]["txs"][0]["outputs"] == [
        {"n": 0, "value": 9_999, "address": LEGACY}
    ]


def test_bad_control_input_is_rejected_and_changes_nothing(btcsim: SimulatorHandle) -> None:
    ctl = btcsim.control
    ctl.mine([[output(BECH32, 1)]], count=2)
    before = ctl.state()
    bad_calls = [
        lambda: ctl.mine([[{"address": BECH32, "value": "0.1"}]]),  # BTC strings are not sats
        lambda: ctl.mine([[{"address": BECH32}]]),
        lambda: ctl.mine([[{"address": BECH32, "value": 1, "colour": "red"}]]),
        lambda: ctl.mine([[{"addresses": [BECH32, LEGACY], "value": 1}]]),  # multisig missing
        lambda: ctl.mine([[output(BECH32, 1)], []]),  # second tx has no outputs
        lambda: ctl.mine([[output(BECH32, -1)]]),
        lambda: ctl.reorg(2, blocks=[{"reinclude": ["ab" * 32]}]),
        lambda: ctl.reorg(3),  # would replace the first block
        lambda: ctl.filler(0, 10),
        lambda: ctl.set_outage("sideways"),
    ]
    for call in bad_calls:
        with pytest.raises(SimulatorError):
            call()
    with pytest.raises(TypeError):
        ctl.mine([[output(BECH32, Decimal("0.1"))]])  # type: ignore[arg-type]
    assert ctl.state() == before


# ----------------------------------------------------------------------------- filler, outages


def test_filler_blocks_are_fast_and_well_formed(btcsim: SimulatorHandle) -> None:
    started = time.perf_counter()
    result = btcsim.control.filler(blocks=20, outputs=3_000, outputs_per_tx=3, seed=1)
    elapsed = time.perf_counter() - started
    # 200 x 3,000 takes ~12 s on the build machine; 20 x 3,000 must stay far below that
    assert elapsed < scaled(10), f"filler too slow: {elapsed:.1f}s"
    assert result["outputs"] == 60_000 and result["height"] == 20
    block = rpc_of(btcsim).getblock(rpc_of(btcsim).getblockhash(7), 2)
    assert block["nTx"] == 1_001
    vouts = [o for tx in block["tx"][1:] for o in tx["vout"]]
    assert len(vouts) == 3_000
    assert all(isinstance(o["value"], Decimal) and o["scriptPubKey"]["address"] for o in vouts)


def test_outage_modes(btcsim: SimulatorHandle) -> None:
    rpc = rpc_of(btcsim, timeout=5)
    btcsim.control.set_outage("error")
    assert rpc_error(rpc.getblockcount) == {"code": -28, "message": "Loading block index..."}
    status, _, _ = raw_post(btcsim, {"method": "getblockcount", "id": 1})
    assert status == 500
    assert rpc_error(rpc.batch_, [["getblockcount"], ["getbestblockhash"]])["code"] == -28

    btcsim.control.set_outage("http503")
    error = rpc_error(rpc.getblockcount)
    assert error["code"] == -342 and "503" in error["message"]
    # python-bitcoinrpc does not read a non-JSON body: that proxy's connection is unusable now
    rpc = rpc_of(btcsim, timeout=5)

    btcsim.control.set_outage("hang", 0.4)
    started = time.monotonic()
    assert rpc_of(btcsim, timeout=5).getblockcount() == 0
    assert time.monotonic() - started >= 0.35

    btcsim.control.clear_outage()
    assert rpc.getblockcount() == 0

    btcsim.pause()
    with pytest.raises(ConnectionRefusedError):
        rpc_of(btcsim).getblockcount()
    btcsim.resume()
    assert rpc_of(btcsim).getblockcount() == 0

    btcsim.control.set_outage("refuse", 30)
    wait_until(lambda: _refused(btcsim), timeout=5, message="socket closed")
    btcsim.resume()  # ends a refuse early
    assert wait_until(lambda: rpc_of(btcsim).getblockcount() == 0, timeout=5,
                      message="socket reopened")


def _refused(handle: SimulatorHandle) -> bool:
    try:
        rpc_of(handle, timeout=2).getblockcount()
    except ConnectionRefusedError:
        return True
    return False


# ----------------------------------------------------------------------------- CLI


def test_cli_help_lists_options() -> None:
    result = CliRunner().invoke(btcsim_command, ["--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--user", "--password", "--core-version",
                   "--start-height"):
        assert option in result.output


@pytest.mark.slow
def test_cli_serves_until_sigterm() -> None:
    code = "from teller.cli_btcsim import btcsim_command; btcsim_command()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--port", "0", "--user", "u", "--password", "p",
         "--start-height", "100"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert "JSON-RPC on http://127.0.0.1:" in line, line + (proc.stderr.read() if
                                                                proc.stderr else "")
        port = int(line.split("http://127.0.0.1:")[1].split(" ")[0])
        rpc = AuthServiceProxy(f"http://u:p@127.0.0.1:{port}", timeout=5)
        assert rpc.getblockcount() == 100
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=scaled(10)) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
