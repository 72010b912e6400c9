"""WebSocket push under load: subscribers on one market's depth and deals, orders over HTTP.

A `teller core run` process (HTTP + its WebSocket gateway) is started on free ports.
Subscribers (viabtc dialect: `depth.subscribe [BTCUSDT, 20, "0"]` and `deals.subscribe
[BTCUSDT]`; raw sockets with a hand-made handshake, frames parsed by the bench, pings
answered; the tests use real `websockets` clients) come in two kinds, in separate processes:
- probes, one in `--probe-every`, in one process: each read is timed as the data arrives,
  and the probe notes when each ask price first appears in a depth diff;
- light subscribers, in `--procs` processes: whatever arrived is read every `--light-poll`
  seconds (10 ms) and its frames counted. They stand for clients on other machines, so they
  run at `--light-nice` 19 and take the CPU the server leaves: on this 2-core machine the
  receiving side of 1,000 loopback connections costs about as much kernel time as the
  sending side (~17 us per frame batched, ~24 us read eagerly).
16 order threads send limit asks over keep-alive HTTP at a fixed total rate, each at a new
best price, and every 4th order a bid of 0.25 that trades with the best ask (a deal, so
`deals.update` too). Latency = the first time a probe sees the ask's price in a
`depth.update` minus the time the HTTP reply to that ask arrived (both `time.monotonic()`, one
machine); a push that beats the HTTP reply counts as 0. An ask a probe never saw (it left the
top 20 before a push showed it: a stall) counts until the first later push that probe got.

1. the target step, `--repeat` times (3; the machine's noise moves p99 by ±10 ms from run to
   run): `--subscribers` (1,000) at `--rate` (500 orders/s): p50/p90/p99/p99.9/max, pushes/s
   received over all connections, asks a probe never saw, connections the gateway dropped;
2. the ramp (unless --no-ramp): connections and rate stepped up until the first step where
   p99 > 100 ms or a connection is dropped (the breaking point), at most `--max-steps` steps.

Everything shares the machine: the core's writer, the gateway's event loop, the receivers and
the order threads. Run: .venv/bin/python bench/ws.py [--seconds S] [--no-ramp]
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing as mp
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.nodes import free_port  # noqa: E402
from tests.support.wscore import WsCore  # noqa: E402

M = "BTCUSDT"
BREAK_P99 = 0.100


# -- receivers (separate processes) --------------------------------------------------------

def _masked(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126
                                     else bytes([0x80 | 126]) + n.to_bytes(2, "big"))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


DIFF = b'{"method":"depth.update","params":[false'


def receiver(url: str, count: int, probe: bool, poll: float, nice: int,
             conn: mp.connection.Connection) -> None:
    """`count` subscribers on raw sockets (a hand-made handshake, frames parsed here, pings
    answered). Probes read as soon as data arrives, take the time at the read and note when
    each ask price first appears in a depth diff; light subscribers read whatever arrived
    every `poll` seconds and only count frames (an eager reader per frame would take the
    cores the gateway needs)."""
    import selectors

    os.nice(nice)
    host, port = url.split("//")[1].split("/")[0].split(":")
    subscribe = b"".join(_masked(1, json.dumps(m).encode()) for m in (
        {"id": 1, "method": "depth.subscribe", "params": [M, 20, "0"]},
        {"id": 2, "method": "deals.subscribe", "params": [M]}))
    sel = selectors.DefaultSelector()
    seen: list[dict[str, float]] = []  # per probe: ask price -> first receipt
    for _ in range(count):
        sock = socket.create_connection((host, int(port)), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall((f"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                      f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
        buf = bytearray()
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(4096)
        assert buf.startswith(b"HTTP/1.1 101"), bytes(buf[:200])
        del buf[:buf.find(b"\r\n\r\n") + 4]
        sock.sendall(subscribe)
        sock.setblocking(False)
        mine: dict[str, float] = {}
        seen.append(mine)
        sel.register(sock, selectors.EVENT_READ, (buf, mine))
    sel.register(conn.fileno(), selectors.EVENT_READ, None)
    frames = dropped = 0
    conn.send("ready")
    while True:
        for key, _ in sel.select(None if probe else 0):
            if key.data is None:  # a command from the bench
                if conn.recv() == "count":
                    conn.send(frames)
                    continue
                conn.send({"frames": frames, "dropped": dropped,
                           "probes": [list(mine.items()) for mine in seen] if probe else []})
                for other in list(sel.get_map().values()):
                    if other.data is not None:
                        other.fileobj.close()
                return
            sock, (buf, mine) = key.fileobj, key.data
            try:
                data = sock.recv(1 << 18)
            except BlockingIOError:
                continue
            now = time.monotonic()
            if not data:
                dropped += 1
                sel.unregister(sock)
                sock.close()
                continue
            buf += data
            at, size = 0, len(buf)
            while size - at >= 2:
                n, head = buf[at + 1] & 0x7F, 2
                if n == 126:
                    if size - at < 4:
                        break
                    n, head = int.from_bytes(buf[at + 2:at + 4], "big"), 4
                elif n == 127:
                    if size - at < 10:
                        break
                    n, head = int.from_bytes(buf[at + 2:at + 10], "big"), 10
                if size - at < head + n:
                    break
                opcode = buf[at] & 0x0F
                payload = buf[at + head:at + head + n]
                if opcode == 1:
                    frames += 1
                    if probe and payload.startswith(DIFF):
                        for price, _ in json.loads(payload)["params"][1].get("asks", ()):
                            mine.setdefault(price, now)
                elif opcode == 9:
                    sock.send(_masked(10, bytes(payload)))
                at += head + n
            del buf[:at]
        if not probe:
            time.sleep(poll)


# -- orders over keep-alive HTTP ----------------------------------------------------------

class Http:
    """Raw keep-alive HTTP/1.1 JSON-RPC (a requests call costs more CPU than the core's)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def call(self, method: str, params: list) -> dict:
        body = json.dumps({"id": 1, "method": method, "params": params}).encode()
        self.sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(65536)
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        while len(rest) < length:
            rest += self.sock.recv(65536)
        self.buf = rest[length:]
        return json.loads(rest[:length])


def place_orders(port: int, rate: float, seconds: float, start_price: int,
                 threads: int = 16) -> tuple[dict[str, float], int, float]:
    """Asks at falling prices (cents below `start_price`), every 4th order a bid, from
    `threads` keep-alive connections (each reply waits for its group commit's fsync, so one
    connection alone manages only ~1/fsync orders/s). Order i is due at i/rate seconds.
    Returns ({ask price: reply time}, orders sent, seconds taken)."""
    replies: dict[str, float] = {}
    total = int(rate * seconds)
    begin = time.monotonic() + 0.05
    sent = [0]
    lock = threading.Lock()

    def run(first: int) -> None:
        http = Http(port)
        for i in range(first, total, threads):
            delay = begin + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            cents = start_price * 100 - i
            price = f"{cents // 100}.{cents % 100:02d}".rstrip("0").rstrip(".")
            if i % 4 == 3:
                # 0.25: an ask outlives the bids of one push slice, so each ask is seen
                reply = http.call("order.put_limit", [2, M, 2, "0.25", price, "0", "0", "b"])
            else:
                reply = http.call("order.put_limit", [1, M, 1, "1", price, "0", "0", "b"])
                replies[price] = time.monotonic()
            assert reply["error"] is None, reply
            with lock:
                sent[0] += 1

    workers = [threading.Thread(target=run, args=(t,), daemon=True) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return replies, sent[0], time.monotonic() - begin


# -- one step ------------------------------------------------------------------------------

def step(core: WsCore, push: WsCore, subscribers: int, rate: float, seconds: float, procs: int,
         probe_every: int, start_price: int, light_poll: float, light_nice: int) -> dict:
    pipes, children = [], []
    probes = max(1, subscribers // probe_every)
    lights = subscribers - probes
    per = [lights // procs + (1 if i < lights % procs else 0) for i in range(procs)]
    ctx = mp.get_context("spawn")
    jobs = [(push.ws_url(), probes, True, 0.0, 0)]
    jobs += [(push.ws_url(), count, False, light_poll, light_nice) for count in per if count]
    for args in jobs:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=receiver, args=(*args, child), daemon=True)
        proc.start()
        pipes.append(parent)
        children.append(proc)
    for pipe in pipes:
        assert pipe.recv() == "ready"
    time.sleep(1.0)  # snapshots delivered
    for pipe in pipes:
        pipe.send("count")
    before = sum(pipe.recv() for pipe in pipes)
    started = time.monotonic()
    replies, sent, took = place_orders(core.http_port, rate, seconds, start_price)
    elapsed = time.monotonic() - started
    last, quiet_since = -1, time.monotonic()
    while time.monotonic() - quiet_since < 1.0 and time.monotonic() - started < seconds + 30:
        time.sleep(0.25)  # the tail: until no connection receives anything for 1 s
        for pipe in pipes:
            pipe.send("count")
        now = sum(pipe.recv() for pipe in pipes)
        if now != last:
            last, quiet_since = now, time.monotonic()
            elapsed = time.monotonic() - started
    for pipe in pipes:
        pipe.send("stop")
    results = [pipe.recv() for pipe in pipes]
    for proc in children:
        proc.join(10)
    latencies, missing = [], 0
    asks = sorted(replies.items(), key=lambda item: item[1])  # by reply time
    for result in results:
        for probe in result["probes"]:
            got = dict(probe)
            # An ask that a probe never saw left the top 20 before a push showed it: the first
            # later push that did arrive (showing a newer ask) is when the probe caught up.
            caught_up = float("inf")
            for price, t in reversed(asks):
                seen = got.get(price)
                if seen is None:
                    missing += 1
                    latencies.append(max(0.0, caught_up - t))
                else:
                    latencies.append(max(0.0, seen - t))
                    caught_up = min(caught_up, seen)
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else 0.0

    frames = sum(r["frames"] for r in results) - before
    return {"subscribers": subscribers, "rate": rate, "orders_per_s": sent / took,
            "pushes_per_s": frames / elapsed, "p50": pct(0.50), "p90": pct(0.90),
            "p99": pct(0.99), "p999": pct(0.999),
            "max": latencies[-1] if latencies else 0.0, "samples": len(latencies) - missing,
            "missing": missing, "dropped": sum(r["dropped"] for r in results)}


def show(row: dict) -> str:
    return (f"{row['subscribers']:>6} subs {row['rate']:>6.0f} orders/s target "
            f"({row['orders_per_s']:>4.0f} sent): push p50 {row['p50'] * 1000:5.1f} ms  "
            f"p90 {row['p90'] * 1000:5.1f}  p99 {row['p99'] * 1000:5.1f}  "
            f"p99.9 {row['p999'] * 1000:5.1f}  max {row['max'] * 1000:5.1f} ms  "
            f"{row['pushes_per_s']:>8.0f} pushes/s  samples {row['samples']}  "
            f"missing {row['missing']}  dropped {row['dropped']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--procs", type=int, default=2,
                        help="processes for the light subscribers (the probes get one more)")
    parser.add_argument("--probe-every", type=int, default=40)
    parser.add_argument("--light-poll", type=float, default=0.01,
                        help="seconds between the light subscribers' reads")
    parser.add_argument("--light-nice", type=int, default=19,
                        help="niceness of the light subscribers' processes (0: compete with "
                             "the server as equals)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the target step")
    parser.add_argument("--no-ramp", action="store_true")
    parser.add_argument("--max-steps", type=int, default=6)
    parser.add_argument("--standalone", action="store_true",
                        help="push from a `teller core ws` process following the core's "
                             "event stream instead of the core's own gateway thread")
    parser.add_argument("--push-interval", type=float, default=None,
                        help="[ws] push_interval seconds (default: the config default)")
    args = parser.parse_args()
    ws = {"max_connections_per_ip": 100_000, "max_connections": 100_000, "out_queue": 4096}
    if args.push_interval is not None:
        ws["push_interval"] = args.push_interval
    with tempfile.TemporaryDirectory() as tmp:
        gateway = None
        if args.standalone:
            events = {"events_addr": f"127.0.0.1:{free_port()}"}
            core = WsCore(Path(tmp) / "core", ws={**ws, **events, "addr": ""})
            gateway = WsCore(Path(tmp) / "gw", ws={**ws, **events}, command="ws",
                             http_port=core.http_port)
            core.start()
            gateway.start()
            subscribe_to = gateway
        else:
            core = WsCore(Path(tmp), ws=ws)
            core.start()
            subscribe_to = core
        try:
            core.deposit(1, "BTC", "100000000")
            core.deposit(2, "USDT", "100000000000")
            price = 90000
            print(f"machine: {os.cpu_count()} CPUs, shared with other work (load average "
                  f"{os.getloadavg()[0]:.1f}); {args.procs} light-subscriber processes "
                  f"(nice {args.light_nice}), probes 1 in {args.probe_every}, "
                  f"push_interval {ws.get('push_interval', 'default')}, "
                  f"gateway {'standalone' if gateway else 'in the core process'}")
            p99s = []
            for run in range(args.repeat):
                row = step(core, subscribe_to, args.subscribers, args.rate, args.seconds,
                           args.procs, args.probe_every, price, args.light_poll, args.light_nice)
                print(f"target {run + 1}:", show(row), flush=True)
                p99s.append(row["p99"])
                price -= 200
            print(f"target p99 over {len(p99s)} runs: median "
                  f"{sorted(p99s)[len(p99s) // 2] * 1000:.1f} ms, worst {max(p99s) * 1000:.1f} ms"
                  , flush=True)
            if args.no_ramp:
                return
            subs, rate = max(250, args.subscribers // 4), max(100.0, args.rate / 4)
            for n in range(args.max_steps):
                price -= 200  # below every earlier ask: each new ask is the best one
                row = step(core, subscribe_to, subs, rate, args.seconds, args.procs, args.probe_every,
                           price, args.light_poll, args.light_nice)
                print(f"ramp {n + 1}:", show(row), flush=True)
                if row["p99"] > BREAK_P99 or row["dropped"]:
                    print(f"breaking point: {subs} subscribers at {rate:.0f} orders/s "
                          f"(p99 {row['p99'] * 1000:.1f} ms, {row['dropped']} dropped)")
                    return
                subs, rate = subs * 2, rate * 2
            print(f"no breaking point within {args.max_steps} steps")
        finally:
            if gateway is not None:
                gateway.stop()
            core.stop()


if __name__ == "__main__":
    threading.current_thread().name = "bench-ws"
    main()
