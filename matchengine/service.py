"""The running exchange core: one writer thread owns the engine, durability by group commit.

Callers (HTTP handlers, in-process clients) enqueue requests. The writer takes everything
queued, applies it to the engine in order, writes the batch's operation-log entries, history
rows and idempotency keys in one LMDB transaction (fsync), and only then releases the replies:
an acknowledged operation is on disk, and many operations share one fsync.

Start-up loads the newest snapshot and replays the log after it with the logged parameters and
times, refusing to start on a gap or a corrupt entry. Snapshots are captured by the writer
between batches (a cheap copy of references) and encoded and written by another thread.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from decimal import localcontext
from pathlib import Path
from typing import Any

from matchengine import methods
from matchengine.bus import EventBus
from matchengine.config import CoreConfig, from_dict
from matchengine.decimals import CTX
from matchengine.engine import Engine
from matchengine.errors import CoreError
from matchengine.history import HistoryReader, HistoryWriter
from matchengine.store import Store, dumps

log = logging.getLogger(__name__)

QUEUE_MAX = 200_000
BATCH_MAX = 5_000
REPLY_TIMEOUT = 30.0
MARKETDATA_DAYS = 7


class RecoveryError(RuntimeError):
    """The data directory cannot be loaded safely; the message says why and what to check."""


def now() -> float:
    """viabtc's current_timestamp(): seconds with microseconds."""
    return int(time.time() * 1_000_000) / 1_000_000


class _Request:
    __slots__ = ("method", "params", "result", "error", "done")

    def __init__(self, method: str, params: list) -> None:
        self.method = method
        self.params = params
        self.result: Any = None
        self.error: CoreError | None = None
        self.done = threading.Event()


def config_to_dict(config: CoreConfig) -> dict:
    return {
        "core": {"http_addr": config.http_addr, "snapshot_interval": config.snapshot_interval},
        "assets": [{"name": a.name, "prec_save": a.prec_save, "prec_show": a.prec_show}
                   for a in config.assets],
        "markets": [{"name": m.name, "stock": m.stock, "stock_prec": m.stock_prec,
                     "money": m.money, "money_prec": m.money_prec, "fee_prec": m.fee_prec,
                     "min_amount": str(m.min_amount)} for m in config.markets],
    }


def recover(config: CoreConfig, store: Store, sink: Callable | None = None) -> tuple[Engine, int]:
    """Rebuild the engine from the newest snapshot plus the log after it."""
    engine = Engine(config)
    snapshot = store.latest_snapshot()
    last = 0
    if snapshot is not None:
        last, raw = snapshot
        try:
            state = json.loads(raw)
            engine.restore(state)
        except (ValueError, KeyError, TypeError) as exc:
            raise RecoveryError(f"snapshot at operation {last} in {store.path} is unreadable "
                                f"or does not match the configured markets/assets: {exc!r}") from exc
    for oper_id, raw in store.oplog_from(last + 1):
        if oper_id != last + 1:
            raise RecoveryError(f"gap in the operation log of {store.path}: after operation "
                                f"{last} the next entry is {oper_id}; refusing to start")
        try:
            name, t, args = json.loads(raw)
            op = methods.decode_op(name, args)
        except (ValueError, KeyError, TypeError) as exc:
            raise RecoveryError(f"operation log entry {oper_id} in {store.path} is corrupt "
                                f"({exc!r}); refusing to start") from exc
        try:
            methods.apply_write(engine, op, t)
        except (CoreError, KeyError, TypeError) as exc:
            raise RecoveryError(f"operation log entry {oper_id} ({name}) failed on replay "
                                f"({exc}); the log does not match the snapshot or config") from exc
        last = oper_id
    for key in store.idem_keys():
        user, asset, business, business_id = json.loads(key)
        engine.update_keys.add((user, asset, business, business_id))
    engine.sink = sink
    return engine, last


def make_snapshot(store: Store, config: CoreConfig) -> int:
    """Offline snapshot (safe while a server runs: the state is a function of the log)."""
    engine, last = recover(config, store)
    store.put_snapshot(last, dumps(Engine.encode(engine.capture())))
    return last


class CoreService:
    """The exchange core: engine + durable log + history + market data, behind `call()`."""

    def __init__(self, config: CoreConfig, data_dir: str | Path,
                 clock: Callable[[], float] = now) -> None:
        self.config = config
        self.data_dir = Path(data_dir)
        self.clock = clock
        self.bus = EventBus()
        self.history_writer = HistoryWriter(self.bus)
        self.store = Store(self.data_dir)
        stored = self.store.get_meta("config")
        if stored is not None and stored["markets"] != config_to_dict(config)["markets"]:
            log.warning("market configuration differs from the one last used with %s",
                        self.data_dir)
        self.engine, self.oper_id = recover(config, self.store, sink=self.bus.publish)
        self.store.put_meta("config", config_to_dict(config))
        self.history = HistoryReader(self.store)
        from marketdata import MarketData

        self.marketdata = MarketData(markets=[m.name for m in config.markets], clock=time.time)
        for deal in self.history.recent_deals(time.time() - MARKETDATA_DAYS * 86400,
                                              [m.name for m in config.markets]):
            self.marketdata.on_deal(deal)
        self.bus.subscribe("deals", self.marketdata.on_deal)
        self._queue: queue.Queue[_Request | None] = queue.Queue(QUEUE_MAX)
        self._stopping = False
        self._failed: str | None = None
        self._last_snapshot = time.monotonic()
        self._snapshot_wanted = threading.Event()
        self._snapshot_lock = threading.Lock()
        self._snapshot_done: threading.Event | None = None
        self._closed = False
        self._writer = threading.Thread(target=self._run, name="core-writer", daemon=True)
        self._writer.start()
        log.info("exchange core ready in %s at operation %d", self.data_dir, self.oper_id)

    # -- public -------------------------------------------------------------------------------

    def call(self, method: str, params: list) -> Any:
        """Run one JSON-RPC method; raises CoreError. Returns after the write is durable."""
        return self.call_many([(method, params)])[0]

    def call_many(self, calls: list[tuple[str, list]]) -> list[Any]:
        """Run several calls in order (one batch when possible). Each element of the result is
        the method's result or a CoreError instance."""
        requests = []
        out: list[Any] = [None] * len(calls)
        for index, (method, params) in enumerate(calls):
            if method not in methods.ALL_METHODS:
                out[index] = CoreError(4, "method not found")
                continue
            if not isinstance(params, list):
                out[index] = CoreError(1, "invalid argument")
                continue
            if method in methods.HISTORY_READS:
                out[index] = self._history_read(method, params)
                continue
            request = _Request(method, params)
            if self._stopping or self._failed:
                out[index] = CoreError(3, "service unavailable")
                continue
            try:
                self._queue.put_nowait(request)
            except queue.Full:
                out[index] = CoreError(3, "service unavailable")
                continue
            requests.append((index, request))
        for index, request in requests:
            if not request.done.wait(REPLY_TIMEOUT):
                out[index] = CoreError(5, "service timeout")
            else:
                out[index] = request.error if request.error is not None else request.result
        return [r for r in out]

    def snapshot(self) -> None:
        """Ask the writer for a snapshot at the next batch boundary and wait for it."""
        done = threading.Event()
        self._snapshot_done = done
        self._snapshot_wanted.set()
        self._queue.put(None)
        done.wait(60)

    def stop(self) -> None:
        """Drain queued requests, commit them, stop the writer, close the store."""
        if self._stopping:
            return
        self._stopping = True
        self._queue.put(None)
        self._writer.join(60)
        with self._snapshot_lock:
            self._closed = True
            self.store.close()
        log.info("exchange core stopped at operation %d", self.oper_id)

    # -- internals ----------------------------------------------------------------------------

    def _history_read(self, method: str, params: list) -> Any:
        try:
            with localcontext(CTX):
                return methods.HISTORY_READS[method](self.engine, self.history, params)
        except CoreError as exc:
            return exc

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            batch = [first] if first is not None else []
            while len(batch) < BATCH_MAX:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    batch.append(item)
            if batch:
                self._process(batch)
            if self._snapshot_wanted.is_set() or (
                    self.config.snapshot_interval
                    and time.monotonic() - self._last_snapshot >= self.config.snapshot_interval):
                self._take_snapshot()
            if self._stopping and self._queue.empty():
                return

    def _process(self, batch: list[_Request]) -> None:
        engine = self.engine
        oplog: list[tuple[int, bytes]] = []
        idem: list[tuple[bytes, int]] = []
        done: list[_Request] = []
        first_oper = self.oper_id
        writer = self.history_writer
        with localcontext(CTX):
            for request in batch:
                method, params = request.method, request.params
                try:
                    if self._failed:
                        raise CoreError(3, "service unavailable")
                    if method in methods.WRITE_METHODS:
                        op = methods.parse_write(engine, method, params)
                        t = self.clock()
                        writer.begin(self.oper_id + 1)
                        request.result = methods.apply_write(engine, op, t)
                        self.oper_id += 1
                        name, args = methods.encode_op(op)
                        oplog.append((self.oper_id, dumps([name, t, args])))
                        if name == "update_balance":
                            idem.append((dumps(list(op[1][:4])), self.oper_id))
                    elif method in methods.ENGINE_READS:
                        request.result = methods.ENGINE_READS[method](engine, params)
                    else:
                        request.result = methods.market_read(engine, self.marketdata, method,
                                                             params)
                except CoreError as exc:
                    request.error = exc
                except Exception:
                    # A bug. After a failed write the memory state may be half-changed and
                    # unlogged, so stop taking requests rather than diverge from the log.
                    log.exception("request %s failed notice=WATCH", method)
                    request.error = CoreError(2, "internal error")
                    if method in methods.WRITE_METHODS:
                        self._failed = method + " raised"
                done.append(request)
        if oplog:
            try:
                self.store.commit(oplog, idem, writer.take())
            except Exception:
                # State in memory is ahead of disk: stop accepting anything.
                self._failed = "commit failed"
                log.exception("operation log commit failed after operation %d; core stopped "
                              "accepting requests notice=WATCH", first_oper)
                for request in done:
                    request.result, request.error = None, CoreError(2, "internal error")
        else:
            writer.discard()
        for request in done:
            request.done.set()

    def _take_snapshot(self) -> None:
        self._last_snapshot = time.monotonic()
        self._snapshot_wanted.clear()
        captured = self.engine.capture()
        oper_id = self.oper_id
        done, self._snapshot_done = self._snapshot_done, None

        def write() -> None:
            try:
                value = dumps(Engine.encode(captured))
                with self._snapshot_lock:
                    if self._closed:
                        return
                    self.store.put_snapshot(oper_id, value)
                log.info("snapshot at operation %d (%d bytes)", oper_id, len(value))
            except Exception:
                log.exception("snapshot at operation %d failed notice=WATCH", oper_id)
            finally:
                if done is not None:
                    done.set()

        if self._stopping:
            write()
        else:
            threading.Thread(target=write, name="core-snapshot", daemon=True).start()


def load_service_config(data: dict) -> CoreConfig:
    return from_dict(data)
