"""btcsim: a bitcoind-compatible block simulator for tests, demos and benchmarks.

Bitcoin Core cannot be installed here, so the BTC scanner is driven against this server with the
real client library (python-bitcoinrpc). It owns three things:

* a chain model (``Simulator``): blocks with real Bitcoin serialisation (80-byte header, merkle
  root, txid = sha256d of the raw tx), deterministic hashes (the header covers the parent, the
  contents and a nonce that counts every block ever built, so a reorged replacement always gets a
  new hash), stale blocks kept after a reorg;
* a WSGI app speaking bitcoind's JSON-RPC dialect plus a JSON control API on the same port;
* ``start_simulator()``, which serves it with waitress in a thread, and ``SimulatorControl``, a
  small client for the control API.

JSON-RPC (POST any path except ``/control/...``; HTTP basic auth required)
-------------------------------------------------------------------------
Methods: ``getblockcount``, ``getblockhash height``, ``getblock hash [verbosity=1]`` (0 hex,
1 txids, 2 full txs; a bool is accepted as Core does), ``getbestblockhash``,
``getblockchaininfo``, ``getblockheader hash [verbose=true]``, ``getnetworkinfo``. Params may be a
list or an object of named params.

Wire format is Bitcoin Core 22–27 "legacy" JSON-RPC: every reply is ``{"result","error","id"}``
(also for batch elements, even when they carry ``"jsonrpc": "2.0"`` as python-bitcoinrpc's
``batch_()`` sends them). With ``core_version >= 28`` a request (or batch element) marked
``"jsonrpc": "2.0"`` is answered as Core 28 does: ``{"jsonrpc": "2.0", "result"|"error", "id"}``
(one of the two, never both) with HTTP 200 even for errors; unmarked requests stay legacy. Single-request errors use Core's HTTP statuses: 400 for -32600 (invalid
request), 404 for -32601 (method not found), 500 for everything else, always with a JSON body and
``Content-Type: application/json``. A batch is answered 200 with per-element errors. Bad or
missing credentials get 401 with an empty body (python-bitcoinrpc reports that as code -342); a
GET gets 405. Error codes: -1 wrong param count/type (Core 22 messages), -5 "Block not found",
-8 invalid parameter ("Block height out of range", bad hash), -28 in warm-up (outage mode
``error``), -32600, -32601, -32700 parse error.

Amounts are JSON numbers with exactly 8 decimals, written from integer satoshi (never floats), so
python-bitcoinrpc's ``parse_float=Decimal`` yields exact values.

Block shape: ``core_version >= 22`` (default) gives Core 22's shape: ``scriptPubKey.address``
(singular, absent for multisig/nulldata) and a ``fee`` (BTC) on every non-coinbase tx in
verbosity 2. ``core_version < 22`` gives the 0.21 shape (litecoind 0.21 too):
``scriptPubKey.addresses`` (list) and ``reqSigs``, no ``fee``. A single output may override the
simulator's shape with its own ``core_version``. Blocks carry hash, confirmations (tip - height
+ 1; -1 for a stale block fetched by hash after a reorg), height, version, versionHex,
merkleroot, time, mediantime, nonce, bits, difficulty, chainwork, nTx, previousblockhash,
nextblockhash (only when known), strippedsize, size, weight, tx. Each block starts with a
coinbase tx (``vin[0].coinbase``) paying subsidy + fees to ``miner_address``.

The chain starts with one coinbase-only block at ``start_height``; heights below it do not exist
(``getblockhash`` says out of range). The first block's ``previousblockhash`` is omitted at height
0 and otherwise names a parent that ``getblock`` does not know.

Control API (JSON over HTTP on the same port, no auth; errors are 400 ``{"error": "..."}`` and
change nothing)
--------------------------------------------------------------------------------------------
Amounts in the control API are **int satoshi** (``value``, ``fee``); anything else is rejected.

``GET /control/state`` →
    ``{"height", "tip", "start_height", "core_version", "chain", "outage", "blocks_built",
    "stale_blocks", "recent": [[height, hash], ...last 10]}``

``POST /control/mine`` ``{"txs": [TX...], "count": 1, "time": null, "reinclude": null}`` →
    mines ``count`` blocks; the txs go into the first one, after the re-included ones
    (``reinclude``: txids of txs in stale blocks and not on the active chain, or true for all
    of them — "dropped by a reorg, mined again later"). Answer: ``{"height", "tip", "blocks": [BLOCK...]}`` where
    BLOCK is ``{"height", "hash", "txs": [{"txid", "outputs": [{"n", "value", "address"|
    "addresses"}]}]}`` (coinbase not listed).

    TX is a list of OUTPUTs or ``{"outputs": [OUTPUT...], "vin": [{"txid", "vout"}],
    "fee": 1000, "locktime": 0}``; without ``vin`` the tx spends a unique made-up outpoint.
    Two txs with the same ``vin`` are a double spend (same vin + same outputs = same txid).
    OUTPUT is one of
      ``{"address": "bcrt1q...", "value": 12345, "type": null, "core_version": null}``
          (type is guessed from the string: bech32 prefixes → witness_v0_keyhash /
          witness_v0_scripthash / witness_v1_taproot, leading 2/3/M/Q → scripthash,
          else pubkeyhash; any string is accepted as an address);
      ``{"addresses": ["a", "b", ...], "multisig": true, "required": 1, "value": ...}``
          (bare multisig: old shape lists the addresses, new shape has no address);
      ``{"nulldata": "68656c6c6f", "value": 0}`` (OP_RETURN, no address).
    Outputs get their real index ``n`` in the order given.

``POST /control/filler`` ``{"blocks": K, "outputs": M, "outputs_per_tx": 2, "seed": 0}`` → K
    blocks of M random outputs each (random address strings, bech32/P2PKH/P2SH-looking mix).
    Answer: ``{"height", "tip", "blocks": K, "outputs": K*M, "seconds"}``.

``POST /control/reorg`` ``{"depth": K, "blocks": [BLOCKSPEC...], "new_blocks": N}`` → orphans
    the top K blocks and mines N new ones on the fork point (default ``max(K, len(blocks))``;
    N may be smaller than K, which shortens the chain like ``invalidateblock``). BLOCKSPEC is
    ``{"txs": [TX...], "reinclude": ["txid", ...] | true, "time": null}``: ``reinclude`` puts
    the very same txs (same txid) into that block: any tx of a stale block (this reorg's or an
    earlier one's) not on the kept chain; true = all txs this reorg orphans. For "same tx
    re-mined" tests. Answer: ``{"height", "tip", "orphaned": [hash...],
    "blocks": [BLOCK...]}``.

``POST /control/outage`` ``{"mode": MODE, "seconds": S}`` with MODE one of
      ``null``/``"off"``: normal service;
      ``"error"``: every RPC answers HTTP 500 with JSON error -28 "Loading block index...";
      ``"http503"``: every RPC answers 503 with a non-JSON body (a proxy in front of a dead
      node);
      ``"hang"``: every RPC waits S seconds (or until the outage is cleared), then answers;
      ``"refuse"``: the listening socket closes for S seconds (connections refused; the control
      API is unreachable too), then reopens on the same port with the same chain. Only with
      ``start_simulator``/the CLI, which own the socket.
    Answer: the state.

Code layout: ``tools.btcsim_chain`` (chain model, serialisation, control validation),
``tools.btcsim_rpc`` (JSON-RPC dispatch + WSGI app), this module (public API, control client,
waitress serving). Import everything from here.

Python: ``start_simulator(...)`` returns a ``SimulatorHandle`` (``.rpc_url``, ``.url``,
``.control``, ``.simulator``, ``.stop()``, ``.pause()``/``.resume()`` for a real
connection-refused outage). ``SimulatorControl(url)`` wraps the control API.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tools.btcsim_chain import (
    ADDRESS_TYPES,
    DEFAULT_MINER_ADDRESS,
    MAX_MONEY_SAT,
    OUTAGE_MODES,
    SAT_PER_BTC,
    RPCError,
    Simulator,
    SimulatorError,
    btc_to_sat,
    format_btc,
    guess_address_type,
)
from tools.btcsim_rpc import SimulatorApp, call_method

__all__ = [
    "ADDRESS_TYPES",
    "DEFAULT_MINER_ADDRESS",
    "MAX_MONEY_SAT",
    "OUTAGE_MODES",
    "SAT_PER_BTC",
    "RPCError",
    "Simulator",
    "SimulatorApp",
    "SimulatorControl",
    "SimulatorError",
    "SimulatorHandle",
    "btc_to_sat",
    "call_method",
    "format_btc",
    "guess_address_type",
    "multisig_output",
    "output",
    "start_simulator",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- control client


class SimulatorControl:
    """Client for the control API. ``url`` is the server root, e.g. ``http://127.0.0.1:18443``."""

    def __init__(self, url: str, timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _request(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None
        if body is not None:
            data = json.dumps({k: v for k, v in body.items() if v is not None},
                              default=_reject_non_int).encode()
        req = urllib.request.Request(
            f"{self.url}/control/{path}",
            data=data,
            method="POST" if body is not None else "GET",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read(), parse_float=Decimal)
        except urllib.error.HTTPError as exc:
            text = exc.read().decode("utf-8", "replace")
            try:
                message = json.loads(text)["error"]
            except (ValueError, KeyError, TypeError):
                message = text
            raise SimulatorError(f"btcsim {path}: HTTP {exc.code}: {message}") from None

    def state(self) -> dict[str, Any]:
        return self._request("state")

    def mine(
        self,
        txs: Iterable[Any] | None = None,
        count: int = 1,
        time: int | None = None,
        reinclude: list[str] | bool | None = None,
    ) -> dict[str, Any]:
        """Mine ``count`` blocks with ``txs`` (TX specs, see module doc) and the re-included
        stale txids in the first."""
        return self._request(
            "mine",
            {"txs": list(txs) if txs is not None else None, "count": count, "time": time,
             "reinclude": reinclude},
        )

    def generate(self, count: int = 1) -> dict[str, Any]:
        """Mine ``count`` coinbase-only blocks."""
        return self.mine(None, count)

    def filler(
        self, blocks: int, outputs: int, outputs_per_tx: int = 2, seed: int | None = None
    ) -> dict[str, Any]:
        return self._request(
            "filler",
            {"blocks": blocks, "outputs": outputs, "outputs_per_tx": outputs_per_tx, "seed": seed},
        )

    def reorg(
        self,
        depth: int,
        blocks: list[dict[str, Any]] | None = None,
        new_blocks: int | None = None,
    ) -> dict[str, Any]:
        return self._request(
            "reorg", {"depth": depth, "blocks": blocks, "new_blocks": new_blocks}
        )

    def set_outage(self, mode: str | None, seconds: float | None = None) -> dict[str, Any]:
        return self._request("outage", {"mode": mode or "off", "seconds": seconds})

    def clear_outage(self) -> dict[str, Any]:
        return self.set_outage(None)


def _reject_non_int(o: Any) -> Any:
    raise TypeError(
        f"btcsim control values are int satoshi / plain JSON; got {type(o).__name__} {o!r}"
    )


def output(address: str, value: int, **extra: Any) -> dict[str, Any]:
    """An OUTPUT spec paying ``value`` satoshi to ``address``."""
    return {"address": address, "value": value, **extra}


def multisig_output(
    addresses: Sequence[str], value: int, required: int = 1, **extra: Any
) -> dict[str, Any]:
    """A bare-multisig OUTPUT spec (scanners must ignore these)."""
    return {"addresses": list(addresses), "multisig": True, "required": required,
            "value": value, **extra}


# --------------------------------------------------------------------------- serving


class _Server:
    """waitress in a daemon thread; can close and re-open its socket on the same port."""

    def __init__(self, app: Any, host: str, port: int, threads: int = 4) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.threads = threads
        self._lock = threading.Lock()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        import waitress  # local: importing the module must stay cheap

        logging.getLogger("waitress.queue").setLevel(logging.ERROR)
        with self._lock:
            if self._server is not None:
                return
            server = waitress.create_server(
                self.app, host=self.host, port=self.port, threads=self.threads,
                ident="btcsim", clear_untrusted_proxy_headers=True,
                asyncore_loop_timeout=0.2,  # how soon stop() is noticed
            )
            self.port = server.effective_port
            thread = threading.Thread(target=server.run, name=f"btcsim:{self.port}", daemon=True)
            thread.start()
            self._server, self._thread = server, thread

    def stop(self) -> None:
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        # Close the listener and every keep-alive channel from inside the loop thread (closing
        # them from here races select()); an empty map ends run().
        def close_all() -> None:
            for channel in list(server._map.values()):
                try:
                    channel.close()
                except OSError:
                    pass

        server.trigger.pull_trigger(close_all)
        if thread is not None:
            thread.join(timeout=5)
        server.task_dispatcher.shutdown(timeout=5)

    def refuse_for(self, seconds: float, sim: Simulator) -> None:
        """Close the socket now (after this reply is out), re-open after ``seconds``."""

        def run() -> None:
            time.sleep(0.05)
            self.stop()
            sim.outage_cleared.wait(seconds)
            self.start()
            sim.set_outage(None)

        threading.Thread(target=run, name="btcsim-refuse", daemon=True).start()


@dataclass
class SimulatorHandle:
    """A running simulator. ``rpc_url`` carries the credentials, as python-bitcoinrpc wants."""

    simulator: Simulator
    host: str
    user: str
    password: str
    _server: _Server
    control: SimulatorControl = field(init=False)

    def __post_init__(self) -> None:
        self.control = SimulatorControl(self.url)

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def rpc_url(self) -> str:
        # python-bitcoinrpc sends userinfo without percent-decoding: keep it literal.
        return f"http://{self.user}:{self.password}@{self.host}:{self.port}"

    def pause(self) -> None:
        """Close the listening socket and open connections: clients get connection refused."""
        self._server.stop()

    def resume(self) -> None:
        """Listen again on the same port, same chain."""
        self.simulator.set_outage(None)
        self._server.start()

    def stop(self) -> None:
        self.simulator.set_outage(None)  # release hanging requests
        self._server.stop()

    def __enter__(self) -> SimulatorHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_simulator(
    host: str = "127.0.0.1",
    port: int = 0,
    user: str = "user",
    password: str = "pass",
    core_version: int = 22,
    start_height: int = 0,
    chain: str = "regtest",
    miner_address: str = DEFAULT_MINER_ADDRESS,
    threads: int = 4,
) -> SimulatorHandle:
    """Serve a new simulator with waitress in a thread (port 0 = a free port)."""
    for name, value in (("user", user), ("password", password)):
        if not value or any(c in value for c in ":@/?#"):
            raise ValueError(f"{name} must be non-empty and free of : @ / ? #")
    sim = Simulator(
        core_version=core_version, start_height=start_height, chain=chain,
        miner_address=miner_address,
    )
    holder: dict[str, _Server] = {}
    app = SimulatorApp(
        sim, user, password,
        refuse=lambda seconds: holder["server"].refuse_for(seconds, sim),
    )
    server = _Server(app, host, port, threads=threads)
    holder["server"] = server
    server.start()
    log.info("btcsim serving on %s:%s (core_version %s)", host, server.port, core_version)
    return SimulatorHandle(sim, host, user, password, server)
