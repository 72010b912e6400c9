"""Exchange-core throughput and latency on an exchange-core-like mix.

One market (BTCUSDT), 1,000 funded accounts, ~1,000 resting orders over ~750 price levels,
then a stream of 9 % new limit orders, 3 % market orders, 6 % cancels and 82 % replaces
(cancel + new limit at a new price; one replace counts as one order). Prints orders/s and
per-order latency p50/p99 for:

  1. in-process, no durability: parse + match + reply formatting on the pure engine, in one
     thread with viabtc's decimal context set once (as the core's writer thread does);
  2. acknowledged-durable, in-process: CoreService, every reply after its group-commit fsync,
     256 orders in flight from 8 client threads (32 each), then from one client thread (the
     GIL hand-offs between 8 threads cost ~10 us per order);
  3. HTTP single: one JSON-RPC request per round trip to a `teller core run` process (its
     event-loop server, matchengine.rpcserver);
  4. HTTP batched: arrays of 100 requests per round trip.

The HTTP load comes from separate client processes speaking raw keep-alive HTTP/1.1 on one
socket each (a `requests` client cost more CPU per call than the server on 2 cores). The
mix generator's own time is inside the wall-clock throughput of every phase; latencies time
the calls only. Each process freezes its start-up objects out of the garbage collector, as
`teller core run` does, and latencies are kept in arrays, which the collector does not scan
(a list of a million floats is rescanned by every full collection).

Run: .venv/bin/python bench/core.py [--quick] [--seconds S] [--phases engine,durable,http]
"""

from __future__ import annotations

import argparse
import decimal
import gc
import json
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from common.decimals import CTX  # noqa: E402
from exchangecore import open_core  # noqa: E402
from matchengine import methods  # noqa: E402
from matchengine.config import load  # noqa: E402
from matchengine.engine import Engine  # noqa: E402
from matchengine.errors import CoreError  # noqa: E402

MARKET = "BTCUSDT"
MID = 10000
ACCOUNTS = 1000


class Workload:
    """Generates the mix for a set of users and tracks their resting orders.

    The random draws (rolls, sides, prices, amounts, picks) are made up front into cycles of
    `DRAWS` entries, so generating an order costs ~1 µs of the measured time instead of the
    ~6.5 µs that `random` calls and string formatting cost per order: the figures are the
    core's, not the load generator's. The orders still depend on the replies (ids to cancel).

    The book stays near the seeded size: cancels of orders that others' orders filled find
    nothing while their replacements rest, so the book would grow without end (to ~6,000
    orders in 10 s); while more orders than seeded are resting, a new limit order crosses the
    spread and takes liquidity instead.
    """

    DRAWS = 1 << 16
    FEES = ("0.002", "0.001", "bench")

    def __init__(self, seed: int, users: list[int]) -> None:
        rng = random.Random(seed)
        self.users = users
        self.resting: list[tuple[int, int]] = []  # (user, order id)
        self.limits = [self._draw_limit(rng) for _ in range(self.DRAWS)]
        self.takers = [self._draw_limit(rng, cross=True) for _ in range(self.DRAWS)]
        self.target = 0  # resting orders to keep: what seed_book placed
        self.rolls = [rng.random() for _ in range(self.DRAWS)]
        self.picks = [rng.getrandbits(30) for _ in range(self.DRAWS)]
        self.sides = [rng.choice((0, 1)) for _ in range(self.DRAWS)]
        self.markets = [("order.put_market", [0, MARKET, 1, "0.05", "0.002", "bench"]),
                        ("order.put_market", [0, MARKET, 2, "500", "0.002", "bench"])]
        self.i = 0

    @staticmethod
    def _draw_limit(rng: random.Random, cross: bool = False) -> tuple[int, str, str]:
        side = rng.choice((1, 2))
        offset = rng.randint(1, 375)
        if cross or rng.random() < 0.05:  # a few cross the spread and trade
            offset = -rng.randint(0, 3)
        price = MID + offset if side == 1 else MID - offset
        return side, f"{rng.randint(1, 100) / 1000:.3f}", f"{price}.00"

    def _limit(self, user: int, draw: tuple[int, str, str]) -> tuple[str, list]:
        side, amount, price = draw
        return "order.put_limit", [user, MARKET, side, amount, price, *self.FEES]

    def seed_book(self, n: int) -> list[tuple[str, list]]:
        self.target = n
        calls = []
        for _ in range(n):
            i = self.i = (self.i + 1) & (self.DRAWS - 1)
            calls.append(self._limit(self.users[self.picks[i] % len(self.users)],
                                     self.limits[i]))
        return calls

    def next_calls(self) -> list[tuple[str, list]]:
        """One order of the mix (one draw index: its roll, pick, side and limit order are
        independent draws). A replace is the cancel and the new limit order."""
        i = self.i = (self.i + 1) & (self.DRAWS - 1)
        roll, resting = self.rolls[i], self.resting
        if roll < 0.88 and resting:
            pick = self.picks[i] % len(resting)
            resting[pick], resting[-1] = resting[-1], resting[pick]
            user, order_id = resting.pop()
            cancel = ("order.cancel", [user, MARKET, order_id])
            return [cancel, self._limit(user, self.limits[i])] if roll < 0.82 else [cancel]
        user = self.users[self.picks[i] % len(self.users)]
        if roll < 0.91:
            method, params = self.markets[self.sides[i]]
            return [(method, [user, *params[1:]])]
        crossing = len(resting) > self.target
        return [self._limit(user, (self.takers if crossing else self.limits)[i])]

    def observe(self, calls: list, results: list) -> None:
        for (method, params), result in zip(calls, results, strict=True):
            if method == "order.put_limit" and isinstance(result, dict):
                left = result["left"]  # "0" or "0e-8" once filled
                if left != "0" and not left.startswith("0e"):
                    self.resting.append((params[0], result["id"]))


def funding() -> list[tuple[str, list]]:
    calls = []
    for user in range(1, ACCOUNTS + 1):
        calls.append(("balance.update", [user, "BTC", "deposit", 1, "1000", {}]))
        calls.append(("balance.update", [user, "USDT", "deposit", 1, "100000000", {}]))
    return calls


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1e6 if values else 0.0


def report(name: str, orders: int, seconds: float, latencies: list[float]) -> None:
    print(f"{name:<38} {orders / seconds:>10,.0f} orders/s   p50 {pct(latencies, .5):>8,.0f} µs"
          f"   p99 {pct(latencies, .99):>9,.0f} µs   ({orders} orders, {seconds:.1f} s)",
          flush=True)


def cpu_seconds(pid: int | str = "self", tid: int | None = None, system: bool = False) -> float:
    """User + system (or only system) CPU seconds of a process or one of its threads."""
    path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    with open(path) as stat:
        fields = stat.read().rpartition(")")[2].split()
    ticks = int(fields[12]) + (0 if system else int(fields[11]))
    return ticks / os.sysconf("SC_CLK_TCK")


def report_cpu(label: str, orders: int, seconds: float, system: float | None = None) -> None:
    kernel = "" if system is None else f" ({system / max(orders, 1) * 1e6:,.0f} in the kernel)"
    print(f"{'':<38} {label}: {seconds / max(orders, 1) * 1e6:,.0f} µs CPU per order{kernel}",
          flush=True)


def bench_engine(config, seconds: float) -> None:
    decimal.setcontext(CTX)
    engine = Engine(config)
    def call(method, params):
        try:
            return methods.apply_write(engine, methods.parse_write(engine, method, params), 1.0)
        except CoreError as exc:
            return exc
    for method, params in funding():
        call(method, params)
    work = Workload(1, list(range(1, ACCOUNTS + 1)))
    for method, params in work.seed_book(1000):
        work.observe([(method, params)], [call(method, params)])
    latencies = array("d")
    gc.freeze()
    clock = time.perf_counter
    orders = 0
    cpu0 = time.process_time()
    start = clock()
    deadline = start + seconds
    while True:
        calls = work.next_calls()
        t0 = clock()
        results = [call(m, p) for m, p in calls]
        latencies.append(clock() - t0)
        work.observe(calls, results)
        orders += 1
        if orders % 256 == 0 and clock() > deadline:
            break
    elapsed = clock() - start
    cpu = time.process_time() - cpu0
    levels = len(engine.markets[MARKET].asks.prices) + len(engine.markets[MARKET].bids.prices)
    report("in-process, no durability", orders, elapsed, latencies)
    report_cpu("engine + mix generator", orders, cpu)
    print(f"{'':<38} book at end: {len(engine.markets[MARKET].orders)} orders on {levels} "
          f"levels, {engine.deal_id} deals")


def run_threads(n: int, seconds: float, body) -> tuple[int, float, list[float]]:
    counts = [0] * n
    lats = [array("d") for _ in range(n)]
    stop = time.perf_counter() + seconds

    def worker(i: int) -> None:
        counts[i] = body(i, stop, lats[i])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts), time.perf_counter() - start, [x for lat in lats for x in lat]


def partitions(n: int) -> list[list[int]]:
    return [list(range(1 + i, ACCOUNTS + 1, n)) for i in range(n)]


def bench_durable(config, seconds: float, threads: int = 8, chunk: int = 32) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        service = open_core(config, tmp)
        service.call_many(funding())
        works = [Workload(10 + i, users) for i, users in enumerate(partitions(threads))]
        for work in works:
            calls = work.seed_book(1000 // threads)
            work.observe(calls, service.call_many(calls))

        gc.freeze()

        def body(i: int, stop: float, lat: array) -> int:
            work, done = works[i], 0
            while time.perf_counter() < stop:
                groups = [work.next_calls() for _ in range(chunk)]
                calls = [c for g in groups for c in g]
                t0 = time.perf_counter()
                results = service.call_many(calls)
                lat.extend([time.perf_counter() - t0] * len(groups))
                work.observe(calls, results)
                done += len(groups)
            return done

        writer = service._writer.native_id
        cpu0, writer0, sys0 = cpu_seconds(), cpu_seconds(tid=writer), cpu_seconds(system=True)
        orders, elapsed, lat = run_threads(threads, seconds, body)
        report(f"acknowledged-durable ({threads}x{chunk} in flight)", orders, elapsed, lat)
        report_cpu("writer thread", orders, cpu_seconds(tid=writer) - writer0)
        report_cpu("whole process (with the clients)", orders, cpu_seconds() - cpu0,
                   cpu_seconds(system=True) - sys0)
        service.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RawHttp:
    """One keep-alive HTTP/1.1 connection that POSTs JSON and reads Content-Length replies."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.head = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        self.buf = b""

    def post(self, body: object) -> object:
        data = json.dumps(body, separators=(",", ":")).encode()
        self.sock.sendall(b"%sContent-Length: %d\r\n\r\n%s" % (self.head, len(data), data))
        buf = self.buf
        while (end := buf.find(b"\r\n\r\n")) < 0:
            buf += self._recv()
        head = buf[:end + 2].lower()  # every header line ends with \r\n
        start = head.index(b"content-length:") + 15
        length = int(head[start:head.index(b"\r\n", start)])
        end += 4
        while len(buf) < end + length:
            buf += self._recv()
        self.buf = buf[end + length:]
        return json.loads(buf[end:end + length])

    def _recv(self) -> bytes:
        chunk = self.sock.recv(262144)
        if not chunk:
            raise ConnectionError("server closed the connection")
        return chunk

    def close(self) -> None:
        self.sock.close()


def http_client(port: int, seed: int, users: list[int], resting: list | None, seconds: float,
                per_trip: int, start_at: float, out) -> None:
    """One client process: seed its share of the book (or take over `resting`, its orders
    left by the previous phase), wait for the common start, then run the mix for `seconds`,
    `per_trip` orders per round trip (1 = one request per call)."""
    conn = RawHttp(port)
    work = Workload(seed, users)

    def batch(calls: list) -> list:
        body = [{"id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
        return [item["result"] if item["error"] is None else None for item in conn.post(body)]

    if resting is None:
        calls = work.seed_book(1000 * len(users) // ACCOUNTS)
        work.observe(calls, batch(calls))
    else:
        work.resting = resting
        work.target = 1000 * len(users) // ACCOUNTS
    while time.time() < start_at:
        time.sleep(0.005)
    clock = time.perf_counter
    stop = clock() + seconds
    lat = array("d")
    gc.freeze()
    done = 0
    while clock() < stop:
        if per_trip == 1:
            calls = work.next_calls()
            t0 = clock()
            results = [conn.post({"id": 1, "method": m, "params": p})["result"]
                       for m, p in calls]
            lat.append(clock() - t0)
            work.observe(calls, results)
            done += 1
        else:
            groups = [work.next_calls() for _ in range(per_trip)]
            calls = [c for g in groups for c in g]
            t0 = clock()
            results = batch(calls)
            lat.extend([clock() - t0] * len(groups))
            work.observe(calls, results)
            done += len(groups)
    conn.close()
    out.send((done, lat, work.resting))
    out.close()


def run_http_phase(port: int, clients: int, seconds: float, per_trip: int, seed: int,
                   resting: list[list] | None) -> tuple[int, float, list[float], list[list]]:
    """Run `clients` client processes; returns orders, seconds, latencies and each client's
    resting orders (handed to the next phase, so the book stays ~1,000 orders)."""
    ctx = multiprocessing.get_context("fork")
    start_at = time.time() + 1.0
    pipes, procs = [], []
    for i, users in enumerate(partitions(clients)):
        receive, send = ctx.Pipe(duplex=False)
        mine = None if resting is None else resting[i]
        proc = ctx.Process(target=http_client, args=(port, seed + i, users, mine, seconds,
                                                     per_trip, start_at, send), daemon=True)
        proc.start()
        pipes.append(receive)
        procs.append(proc)
    total, lat, left = 0, [], []
    for receive in pipes:
        done, lats, still_resting = receive.recv()
        total += done
        lat.extend(lats)
        left.append(still_resting)
    for proc in procs:
        proc.join(30)
    return total, seconds, lat, left


def bench_http(seconds: float, clients: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        proc = subprocess.Popen(
            [sys.executable, "-c", "from teller.cli_core import core_group; core_group()", "run",
             "-c", str(ROOT / "core.toml"), "-d", tmp, "--http-addr", f"127.0.0.1:{port}",
             "--ws-addr", ""],  # the engine alone (bench/ws.py measures WebSocket push)
            cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), stderr=subprocess.DEVNULL)
        try:
            session = requests.Session()
            for _ in range(300):
                try:
                    session.post(url, json={"id": 1, "method": "asset.list", "params": []})
                    break
                except requests.ConnectionError:
                    time.sleep(0.05)
            funds = funding()
            for i in range(0, len(funds), 500):
                body = [{"id": j, "method": m, "params": p}
                        for j, (m, p) in enumerate(funds[i:i + 500])]
                session.post(url, json=body, timeout=30).raise_for_status()
            session.close()
            resting = None
            for label, per_trip, seed in (("single", 1, 20), ("batched x100", 100, 40)):
                cpu0, sys0 = cpu_seconds(proc.pid), cpu_seconds(proc.pid, system=True)
                orders, elapsed, lat, resting = run_http_phase(port, clients, seconds, per_trip,
                                                               seed, resting)
                report(f"HTTP {label} ({clients} clients)", orders, elapsed, lat)
                report_cpu("server process", orders, cpu_seconds(proc.pid) - cpu0,
                           cpu_seconds(proc.pid, system=True) - sys0)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per phase")
    parser.add_argument("--phases", default="engine,durable,http",
                        help="comma-separated subset of engine,durable,http")
    args = parser.parse_args()
    seconds = args.seconds or (2.0 if args.quick else 10.0)
    phases = set(args.phases.split(","))
    config = load(ROOT / "core.toml")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, {seconds:.0f} s per phase, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    if "engine" in phases:
        bench_engine(config, seconds)
    if "durable" in phases:
        bench_durable(config, seconds)  # 8 client threads, each with 32 orders in flight
        bench_durable(config, seconds, threads=1, chunk=256)  # one client, as many in flight
    if "http" in phases:
        bench_http(seconds, clients=8)


if __name__ == "__main__":
    main()
