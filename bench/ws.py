"""WebSocket push under load: subscribers on one market's depth and deals, orders over HTTP.

A `teller core run` process (HTTP + its WebSocket gateway) is started on free ports. Receiver
processes open the subscriber connections (viabtc dialect: `depth.subscribe [BTCUSDT, 20,
"0"]` and `deals.subscribe [BTCUSDT]`); one in `--probe-every` connections is a probe, a full
`websockets` client that parses every push; the others are light clients (a hand-made
handshake, then every frame is read off the socket and counted, pings answered), because
1,000 full Python clients would need more CPU than the server on this machine.
16 order threads send limit asks over keep-alive HTTP at a fixed total rate, each at a new
best price, and every 4th order a bid of 0.25 that trades with the best ask (a deal, so
`deals.update` too). Latency = the first time a probe sees the ask's price in a `depth.update` minus the time the HTTP reply to that ask
arrived (both `time.monotonic()`, one machine); a push that beats the HTTP reply counts as 0.

1. the target step: `--subscribers` (1,000) at `--rate` (500 orders/s): p50/p99/max, pushes/s
   received over all connections, asks a probe never saw, connections the gateway dropped;
2. the ramp (unless --no-ramp): connections and rate stepped up until the first step where
   p99 > 100 ms or a connection is dropped (the breaking point), at most `--max-steps` steps.

Everything shares the machine: the core's writer, the gateway's event loop, the receivers and
the order thread. Run: .venv/bin/python bench/ws.py [--seconds S] [--no-ramp]
"""

from __future__ import annotations

import argparse
import asyncio
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

def receiver(url: str, count: int, probe_every: int, first: int, conn: mp.connection.Connection
             ) -> None:
    asyncio.run(_receive(url, count, probe_every, first, conn))


async def _receive(url: str, count: int, probe_every: int, first: int,
                   conn: mp.connection.Connection) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    frames = [0]
    dropped = [0]
    seen: dict[str, float] = {}  # price -> first receipt at any probe of this process
    probes_seen: list[dict[str, float]] = []
    subscribe = [json.dumps({"id": 1, "method": "depth.subscribe", "params": [M, 20, "0"]}),
                 json.dumps({"id": 2, "method": "deals.subscribe", "params": [M]})]
    stopping = asyncio.Event()

    async def one(index: int, ws) -> None:
        probe = (first + index) % probe_every == 0
        mine: dict[str, float] = {}
        if probe:
            probes_seen.append(mine)
        try:
            async for message in ws:
                frames[0] += 1
                if probe and message.startswith('{"method":"depth.update","params":[false'):
                    now = time.monotonic()
                    for price, _ in json.loads(message)["params"][1].get("asks", ()):
                        if price not in mine:
                            mine[price] = now
        except ConnectionClosed:
            if not stopping.is_set():
                dropped[0] += 1

    sockets, lights, tasks = [], [], []
    loop = asyncio.get_running_loop()
    host, port = url.split("//")[1].split("/")[0].split(":")
    for index in range(count):
        if (first + index) % probe_every == 0:
            ws = await connect(url, compression=None, max_queue=1024, open_timeout=30,
                               ping_interval=None)
            for text in subscribe:
                await ws.send(text)
            sockets.append(ws)
            tasks.append(asyncio.create_task(one(index, ws)))
        else:
            light = Light(subscribe, frames, dropped, stopping, loop)
            await loop.create_connection(lambda light=light: light, host, int(port))
            await light.ready
            lights.append(light)
    conn.send("ready")
    while await loop.run_in_executor(None, conn.recv) == "count":
        conn.send(frames[0])  # frames so far (subscribe replies and snapshots included)
    stopping.set()
    for task in tasks:
        task.cancel()
    for mine in probes_seen:
        for price, t in mine.items():
            seen.setdefault(price, t)
    conn.send({"frames": frames[0], "dropped": dropped[0],
               "probes": [list(mine.items()) for mine in probes_seen]})
    for ws in sockets:
        ws.transport.abort()
    for light in lights:
        light.transport.abort()


def _masked(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode]) + (bytes([0x80 | n]) if n < 126
                                     else bytes([0x80 | 126]) + n.to_bytes(2, "big"))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class Light(asyncio.Protocol):
    """A subscriber that reads and counts every frame without decoding it."""

    def __init__(self, subscribe: list[str], frames: list, dropped: list,
                 stopping: asyncio.Event, loop: asyncio.AbstractEventLoop) -> None:
        self.subscribe, self.frames, self.dropped, self.stopping = (subscribe, frames, dropped,
                                                                    stopping)
        self.ready = loop.create_future()
        self.buf = bytearray()
        self.open = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write((f"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                         f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                         f"Sec-WebSocket-Version: 13\r\n\r\n").encode())

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            assert buf.startswith(b"HTTP/1.1 101"), bytes(buf[:200])
            del buf[:end + 4]
            self.open = True
            for text in self.subscribe:
                self.transport.write(_masked(1, text.encode()))
            self.ready.set_result(None)
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
            if opcode == 1:
                self.frames[0] += 1
            elif opcode == 9:
                self.transport.write(_masked(10, bytes(buf[at + head:at + head + n])))
            at += head + n
        del buf[:at]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.stopping.is_set():
            self.dropped[0] += 1


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
         probe_every: int, start_price: int) -> dict:
    pipes, children = [], []
    per = [subscribers // procs + (1 if i < subscribers % procs else 0) for i in range(procs)]
    first = 0
    ctx = mp.get_context("spawn")
    for count in per:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=receiver, args=(push.ws_url(), count, probe_every, first,
                                                  child), daemon=True)
        proc.start()
        pipes.append(parent)
        children.append(proc)
        first += count
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
    for result in results:
        for probe in result["probes"]:
            got = dict(probe)
            for price, t in replies.items():
                if price in got:
                    latencies.append(max(0.0, got[price] - t))
                else:
                    missing += 1
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else 0.0

    frames = sum(r["frames"] for r in results) - before
    return {"subscribers": subscribers, "rate": rate, "orders_per_s": sent / took,
            "pushes_per_s": frames / elapsed, "p50": pct(0.50), "p99": pct(0.99),
            "max": latencies[-1] if latencies else 0.0, "samples": len(latencies),
            "missing": missing, "dropped": sum(r["dropped"] for r in results)}


def show(row: dict) -> str:
    return (f"{row['subscribers']:>6} subs {row['rate']:>6.0f} orders/s target "
            f"({row['orders_per_s']:>6.0f} sent): push p50 {row['p50'] * 1000:6.1f} ms  "
            f"p99 {row['p99'] * 1000:6.1f} ms  max {row['max'] * 1000:6.1f} ms  "
            f"{row['pushes_per_s']:>8.0f} pushes/s  samples {row['samples']}  "
            f"missing {row['missing']}  dropped {row['dropped']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--procs", type=int, default=2, help="receiver processes")
    parser.add_argument("--probe-every", type=int, default=20)
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
                  f"{os.getloadavg()[0]:.1f}); {args.procs} receiver processes, probes 1 in "
                  f"{args.probe_every}, push_interval {ws.get('push_interval', 'default')}, "
                  f"gateway {'standalone' if gateway else 'in the core process'}")
            row = step(core, subscribe_to, args.subscribers, args.rate, args.seconds, args.procs,
                       args.probe_every, price)
            print("target:", show(row), flush=True)
            if args.no_ramp:
                return
            subs, rate = max(250, args.subscribers // 4), max(100.0, args.rate / 4)
            for n in range(args.max_steps):
                price -= 200  # below every earlier ask: each new ask is the best one
                row = step(core, subscribe_to, subs, rate, args.seconds, args.procs, args.probe_every,
                           price)
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
