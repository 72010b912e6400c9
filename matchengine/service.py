"""The running exchange core: one writer thread owns the engine, durability by group commit.

Callers (HTTP handlers, in-process clients) enqueue requests. The writer takes everything
queued, applies it to the engine in order and hands the batch's operation-log entries, history
rows and idempotency keys to the committer thread, which writes them (together with any other
batches waiting) in one LMDB transaction (fsync) and only then releases the replies: an
acknowledged operation is on disk, and many operations share one fsync. The writer goes on with
the next batch while the committer waits for the disk; batches commit in order, and after a
failed commit nothing later is acknowledged (the core stops taking requests). When nothing is
waiting for the disk, the writer releases read-only batches at once and, if no new request is
queued, commits a batch itself (saves a thread hop per request under light load).

A history thread moves the staged history rows into their per-user databases every
INDEX_INTERVAL (history reads do it first themselves, so they never miss a row).

Start-up loads the newest snapshot and replays the log after it with the logged parameters and
times, refusing to start on a gap or a corrupt entry. Snapshots are captured by the writer
between batches (a cheap copy of references) and encoded and written by another thread; none is
taken once an operation failed half-way (memory may then be ahead of the log).
"""

from __future__ import annotations

import decimal
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from decimal import localcontext
from pathlib import Path
from typing import Any

from common.decimals import CTX
from matchengine import methods
from matchengine.bus import EventBus
from matchengine.config import CoreConfig, from_dict
from matchengine.engine import Engine, Sink
from matchengine.errors import CoreError
from matchengine.history import HistoryReader, HistoryWriter
from matchengine.methods import MarketReads
from matchengine.store import Rows, Store, dumps

log = logging.getLogger(__name__)

QUEUE_MAX = 200_000
BATCH_MAX = 5_000
REPLY_TIMEOUT = 30.0
MARKETDATA_DAYS = 7
INDEX_INTERVAL = 0.5  # seconds between moves of staged history rows (see matchengine.store)


class RecoveryError(RuntimeError):
    """The data directory cannot be loaded safely; the message says why and what to check."""


def now() -> float:
    """viabtc's current_timestamp(): seconds with microseconds."""
    return int(time.time() * 1_000_000) / 1_000_000


Done = Callable[[list[Any]], None]


class _Group:
    """The engine calls of one `submit`, queued as one item and released with one callback
    (a queue put and an Event per call cost more than the call itself)."""

    __slots__ = ("calls", "out", "done")

    def __init__(self, calls: list[tuple[int, str, list[Any]]], out: list[Any], done: Done) -> None:
        self.calls = calls  # (slot in out, method, params)
        self.out = out
        self.done = done  # called with `out` once every write of the group is on disk


class CommitStats:
    """Operation-log commits (each one LMDB fsync): count, total and slowest seconds."""

    __slots__ = ("count", "seconds", "max_seconds")

    def __init__(self) -> None:
        self.count, self.seconds, self.max_seconds = 0, 0.0, 0.0

    def add(self, seconds: float) -> None:
        self.count += 1
        self.seconds += seconds
        self.max_seconds = max(self.max_seconds, seconds)


class _Commit:
    """One writer batch waiting for the disk: its log entries, keys, rows and callers."""

    __slots__ = ("oplog", "idem", "rows", "groups", "last_oper", "events")

    def __init__(self, oplog: list[tuple[int, bytes]], idem: list[tuple[bytes, int]],
                 rows: Rows | None, groups: list[_Group],
                 last_oper: int, events: list[Any] | None = None) -> None:
        self.oplog = oplog
        self.idem = idem
        self.rows = rows
        self.groups = groups
        self.last_oper = last_oper
        self.events = events  # (topic, message) published by this batch, for durable listeners


def config_to_dict(config: CoreConfig) -> dict[str, Any]:
    return {
        "core": {"http_addr": config.http_addr, "snapshot_interval": config.snapshot_interval},
        "assets": [{"name": a.name, "prec_save": a.prec_save, "prec_show": a.prec_show}
                   for a in config.assets],
        "markets": [{"name": m.name, "stock": m.stock, "stock_prec": m.stock_prec,
                     "money": m.money, "money_prec": m.money_prec, "fee_prec": m.fee_prec,
                     "min_amount": str(m.min_amount)} for m in config.markets],
    }


def recover(config: CoreConfig, store: Store, sink: Sink | None = None) -> tuple[Engine, int]:
    """Rebuild the engine from the newest snapshot plus the log after it."""
    engine = Engine(config)
    snapshot = store.latest_snapshot()
    last = 0
    if snapshot is not None:
        last, raw = snapshot
        try:
            state = json.loads(raw)
            engine.restore(state)
        except Exception as exc:  # any failure (e.g. decimal.InvalidOperation) is a refusal
            raise RecoveryError(f"snapshot at operation {last} in {store.path} is unreadable "
                                f"or does not match the configured markets/assets: {exc!r}") from exc
    for oper_id, raw in store.oplog_from(last + 1):
        if oper_id != last + 1:
            raise RecoveryError(f"gap in the operation log of {store.path}: after operation "
                                f"{last} the next entry is {oper_id}; refusing to start")
        try:
            name, t, args = json.loads(raw)
            op = methods.decode_op(name, args)
        except Exception as exc:
            raise RecoveryError(f"operation log entry {oper_id} in {store.path} is corrupt "
                                f"({exc!r}); refusing to start") from exc
        try:
            methods.apply_write(engine, op, t)
        except Exception as exc:  # CoreError, or e.g. a decimal overflow
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
                 clock: Callable[[], float] = now, market: MarketReads | None = None) -> None:
        self.config = config
        self.data_dir = Path(data_dir)
        self.clock = clock
        self.bus = EventBus()
        self.history_writer = HistoryWriter(self.bus)
        try:
            self.store = Store(self.data_dir)
        except ValueError as exc:  # staged history rows that cannot be read back
            raise RecoveryError(str(exc)) from exc
        stored = self.store.get_meta("config")
        if stored is not None and stored["markets"] != config_to_dict(config)["markets"]:
            log.warning("market configuration differs from the one last used with %s",
                        self.data_dir)
        self.engine, self.oper_id = recover(config, self.store)
        self.engine.attach(self.bus)
        self.store.put_meta("config", config_to_dict(config))
        self.history = HistoryReader(self.store)
        self._history_stop = threading.Event()
        self._indexer = threading.Thread(target=self._index_loop, name="core-history",
                                         daemon=True)
        # Market data is a consumer of the deals events, composed in by `exchangecore`: it is
        # seeded with the recent stored deals, then follows the bus.
        self.marketdata = market
        if market is not None:
            for deal in self.history.recent_deals(time.time() - MARKETDATA_DAYS * 86400,
                                                  [m.name for m in config.markets]):
                market.on_deal(deal)
            self.bus.subscribe("deals", market.on_deal)
        self._queue: queue.Queue[_Group | None] = queue.Queue(QUEUE_MAX)
        # Bus messages of the batch being applied (writer thread only) and the listeners that
        # get them once the batch is on disk (see subscribe_durable).
        self._batch_events: list[tuple[str, Any]] = []
        self._durable_listeners: list[Callable[[list[tuple[str, Any]]], None]] = []
        self._durable_topics: set[str] = set()
        self._stopping = False
        self._failed: str | None = None
        self._last_snapshot = time.monotonic()
        self.snapshot_written_at: float | None = None  # wall time of this process's last one
        self.commit_stats = CommitStats()
        self._snapshot_wanted = threading.Event()
        self._snapshot_lock = threading.Lock()
        self._snapshot_done: threading.Event | None = None
        self._closed = False
        self._commits: queue.SimpleQueue[_Commit | None] = queue.SimpleQueue()
        self._durable = threading.Condition()
        self._durable_oper = self.oper_id  # highest operation known to be on disk
        # Batches handed to the committer and batches it finished; each counter has a single
        # writing thread, so equality means no batch is waiting for the disk.
        self._handed_over = 0
        self._committed = 0
        self._committer = threading.Thread(target=self._commit_loop, name="core-commit",
                                           daemon=True)
        self._committer.start()
        self._writer = threading.Thread(target=self._run, name="core-writer", daemon=True)
        self._writer.start()
        self._indexer.start()
        log.info("exchange core ready in %s at operation %d", self.data_dir, self.oper_id)

    # -- public -------------------------------------------------------------------------------

    def call(self, method: str, params: list[Any]) -> Any:
        """Run one JSON-RPC method; raises CoreError. Returns after the write is durable."""
        return self.call_many([(method, params)])[0]

    def call_many(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Run several calls in order (one batch when possible). Each element of the result is
        the method's result or a CoreError instance. A history read that follows other calls
        runs once they are on disk, so it sees them."""
        reads = methods.HISTORY_READS
        cuts = [i for i in range(1, len(calls))
                if calls[i][0] in reads and calls[i - 1][0] not in reads]
        if cuts:
            results: list[Any] = []
            for start, end in zip([0, *cuts], [*cuts, len(calls)], strict=True):
                results += self._call_segment(calls[start:end])
            return results
        return self._call_segment(calls)

    def _call_segment(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        finished = threading.Event()
        out, queued = self._enqueue(calls, lambda results: finished.set())
        if not finished.wait(REPLY_TIMEOUT):
            # Nothing of the group is released before its commit: all of it timed out.
            timed_out = list(out)
            for index in queued:
                timed_out[index] = CoreError(5, "service timeout")
            return timed_out
        return out

    def submit(self, calls: list[tuple[str, list[Any]]], done: Done) -> None:
        """Queue several calls and return at once; `done(results)` is called once every write
        among them is on disk: in the writer or committer thread, or in this one when nothing
        needed queueing. History reads among them run at once, in this thread, before the
        writes: calls with a history read go through `call_many` (see `needs_thread`)."""
        self._enqueue(calls, done)

    def _enqueue(self, calls: list[tuple[str, list[Any]]],
                 done: Done) -> tuple[list[Any], list[int]]:
        """The results list (complete when `done` is called) and the indexes queued."""
        out: list[Any] = [None] * len(calls)
        queued: list[tuple[int, str, list[Any]]] = []
        all_methods, history_reads = methods.ALL_METHODS, methods.HISTORY_READS
        for index, (method, params) in enumerate(calls):
            if method not in all_methods:
                out[index] = CoreError(4, "method not found")
            elif not isinstance(params, list):
                out[index] = CoreError(1, "invalid argument")
            elif method in history_reads:
                out[index] = self._history_read(method, params)
            elif self._stopping or self._failed:
                out[index] = CoreError(3, "service unavailable")
            else:
                queued.append((index, method, params))
        if queued:
            try:
                self._queue.put_nowait(_Group(queued, out, done))
                return out, [index for index, _, _ in queued]
            except queue.Full:
                for index, _, _ in queued:
                    out[index] = CoreError(3, "service unavailable")
        done(out)
        return out, []

    def subscribe_durable(self, topics: tuple[str, ...],
                          listener: Callable[[list[tuple[str, Any]]], None]) -> None:
        """Deliver the bus messages of `topics` as `listener([(topic, message), ...])` once the
        operations that published them are on disk (a push never announces an operation a
        crash could undo), one call per committed batch, in publish order. It runs in the
        writer or committer thread: it must only hand the list over (never block). Call it
        before requests arrive. Messages of a batch in which the core stopped are dropped."""
        for topic in topics:
            if topic not in self._durable_topics:
                self._durable_topics.add(topic)
                self.bus.subscribe(topic, self._batch_event_sink(topic))
        self._durable_listeners.append(listener)

    def _batch_event_sink(self, topic: str) -> Callable[[Any], None]:
        """A bus subscriber that keeps ``topic``'s messages for the batch being applied (the
        list is swapped for a new one per batch, so it is looked up at each call)."""

        def sink(message: Any) -> None:
            self._batch_events.append((topic, message))

        return sink

    @staticmethod
    def needs_thread(calls: list[tuple[str, list[Any]]]) -> bool:
        """Whether `calls` include a history read, which may wait for the disk (it indexes the
        staged rows first): run those through `call_many` in a thread of their own."""
        reads = methods.HISTORY_READS
        return any(method in reads for method, _ in calls)

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
        self._commits.put(None)
        self._committer.join(60)
        self._history_stop.set()
        self._indexer.join(60)
        with self._snapshot_lock:
            self._closed = True
            self.store.close()
        log.info("exchange core stopped at operation %d", self.oper_id)

    # -- internals ----------------------------------------------------------------------------

    def _history_read(self, method: str, params: list[Any]) -> Any:
        try:
            with localcontext(CTX):
                return methods.HISTORY_READS[method](self.engine, self.history, params)
        except CoreError as exc:
            return exc
        except Exception:  # e.g. the store could not index staged rows: no partial answer
            log.exception("history read %s failed notice=WATCH", method)
            return CoreError(2, "internal error")

    def _index_loop(self) -> None:
        """Move staged history rows every INDEX_INTERVAL, and once more after the last commit."""
        while True:
            stopping = self._history_stop.wait(INDEX_INTERVAL)
            try:
                self.store.index_history()
            except Exception:  # the rows stay staged and durable; the next pass retries
                log.exception("indexing staged history rows failed notice=WATCH")
            if stopping:
                return

    def _run(self) -> None:
        decimal.setcontext(CTX)  # the engine then skips a per-operation localcontext
        get, get_nowait = self._queue.get, self._queue.get_nowait
        while True:
            first = get()
            batch = [first] if first is not None else []
            size = len(first.calls) if first is not None else 0
            while size < BATCH_MAX:
                try:
                    item = get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    batch.append(item)
                    size += len(item.calls)
            if batch:
                self._process(batch)
            if self._snapshot_wanted.is_set() or (
                    self.config.snapshot_interval
                    and time.monotonic() - self._last_snapshot >= self.config.snapshot_interval):
                self._take_snapshot()
            if self._stopping and self._queue.empty():
                return

    def _process(self, batch: list[_Group]) -> None:
        engine = self.engine
        oplog: list[tuple[int, bytes]] = []
        idem: list[tuple[bytes, int]] = []
        writer = self.history_writer
        clock = self.clock
        write_methods, engine_reads = methods.WRITE_METHODS, methods.ENGINE_READS
        parse_write, apply_write = methods.parse_write, methods.apply_write
        for group in batch:
            out = group.out
            for index, method, params in group.calls:
                applying = False
                try:
                    if self._failed:
                        raise CoreError(3, "service unavailable")
                    if method in write_methods:
                        op = parse_write(engine, method, params)
                        applying = True  # from here a failure may leave memory half-changed
                        t = clock()
                        writer.begin(self.oper_id + 1)
                        out[index] = apply_write(engine, op, t)
                        self.oper_id += 1
                        oplog.append((self.oper_id, methods.encode_log_entry(op, t)))
                        if op[0] == "update_balance":
                            idem.append((dumps(list(op[1][:4])), self.oper_id))
                    elif method in engine_reads:
                        out[index] = engine_reads[method](engine, params)
                    else:
                        out[index] = methods.market_read(engine, self.marketdata, method,
                                                         params)
                except CoreError as exc:
                    out[index] = exc
                except Exception:
                    # A bug. A write that failed while being applied may have left memory
                    # half-changed and unlogged: stop taking requests rather than diverge from
                    # the log. One that failed while being parsed changed nothing.
                    log.exception("request %s failed notice=WATCH", method)
                    out[index] = CoreError(2, "internal error")
                    if applying:
                        writer.rollback()  # its history rows are not logged either
                        self._failed = method + " raised"
        if not oplog:
            writer.discard()
        events = None
        if self._batch_events:
            events, self._batch_events = self._batch_events, []
            if self._failed:
                events = None  # may hold a half-applied operation's messages
        item = _Commit(oplog, idem, writer.take() if oplog else None, batch, self.oper_id,
                       events)
        if self._handed_over == self._committed:
            # Nothing older is waiting for the disk: reads are released at once, and with no
            # new work queued the writer commits itself (one thread hop less per request).
            if not oplog or self._queue.empty():
                self._commit([item])
                return
        self._handed_over += 1
        self._commits.put(item)

    def _commit_loop(self) -> None:
        """Commit handed-over batches in order, several per transaction, then release them."""
        get = self._commits.get
        while True:
            item = get()
            if item is None:
                return
            items = [item]
            stop = False
            while True:
                try:
                    item = self._commits.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                items.append(item)
            self._commit(items)
            self._committed += len(items)
            if stop:
                return

    def _commit(self, items: list[_Commit]) -> None:
        oplog = [entry for item in items for entry in item.oplog]
        if oplog and self._failed != "commit failed":
            try:
                started = time.perf_counter()
                self.store.commit(oplog, [k for item in items for k in item.idem],
                                  [item.rows for item in items if item.rows is not None])
                self.commit_stats.add(time.perf_counter() - started)  # /metrics: fsync latency
            except Exception:
                # State in memory is ahead of disk: stop accepting anything.
                self._failed = "commit failed"
                log.exception("operation log commit failed after operation %d; core stopped "
                              "accepting requests notice=WATCH", oplog[0][0] - 1)
        if self._failed == "commit failed":
            for item in items:
                for group in item.groups:
                    for index, _, _ in group.calls:
                        group.out[index] = CoreError(2, "internal error")
        else:
            with self._durable:
                self._durable_oper = items[-1].last_oper
                self._durable.notify_all()
            for listener in self._durable_listeners:
                for item in items:
                    if item.events:
                        try:
                            listener(item.events)
                        except Exception:  # a listener's bug must not stop the replies
                            log.exception("durable event listener failed notice=WATCH")
        for item in items:
            for group in item.groups:
                try:
                    group.done(group.out)
                except Exception:  # a caller's callback: never let it stop the committer
                    log.exception("reply callback failed")

    def _wait_durable(self, oper_id: int, timeout: float = 60.0) -> bool:
        with self._durable:
            return self._durable.wait_for(
                lambda: self._durable_oper >= oper_id or self._failed == "commit failed",
                timeout) and self._durable_oper >= oper_id

    def _take_snapshot(self) -> None:
        self._last_snapshot = time.monotonic()
        self._snapshot_wanted.clear()
        done, self._snapshot_done = self._snapshot_done, None
        if self._failed:
            # Memory may hold a half-applied operation that is not in the log: persisting it
            # would make the next start-up diverge from the log.
            log.error("snapshot skipped: the core stopped (%s) notice=WATCH", self._failed)
            if done is not None:
                done.set()
            return
        captured = self.engine.capture()
        oper_id = self.oper_id

        def write() -> None:
            try:
                if not self._wait_durable(oper_id):
                    log.error("snapshot at operation %d skipped: the operations it includes "
                              "are not on disk notice=WATCH", oper_id)
                    return
                value = dumps(Engine.encode(captured))
                with self._snapshot_lock:
                    if self._closed:
                        return
                    self.store.put_snapshot(oper_id, value)
                self.snapshot_written_at = time.time()
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


def load_service_config(data: dict[str, Any]) -> CoreConfig:
    return from_dict(data)
