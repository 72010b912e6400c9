"""Abuse of the teller's HTTP layer (issue 14), on raw sockets against a real in-process teller.

Each test failed on the waitress stack: 100 idle connections locked every client out;
``Expect: 100-continue`` without a body got "100 Continue" and then nothing for 60 s; a body
announced at 500 MB was read to a temporary file before the 413; a 5,000-digit JSON integer
was a 500.
"""

from __future__ import annotations

import json
import logging
import time

import pytest
import requests

from teller.http import BODY_READS_PER_IP, HEADER_READ_TIMEOUT_MS
from tests.support.rawhttp import close_all, exchange, hold, hostport, request_bytes
from tests.support.service import (
    SKY_ADDR,
    TellerHarness,
    assert_api_error,
)

log = logging.getLogger(__name__)

ATTACKER = "127.0.0.2"  # any 127/8 address is loopback on Linux: a second client address


def _host(url: str) -> str:
    host, port = hostport(url)
    return f"{host}:{port}"


def _ports(t: TellerHarness) -> list[tuple[str, str]]:
    """(base URL, a GET path) on each of the three teller ports."""
    return [(t.public, "/api/health"), (t.admin, "/api/deposits"),
            (t.dummy, "/dummy/sender/broadcasts")]


def test_expect_100_continue_without_a_body_is_answered_on_every_port(
        teller: TellerHarness) -> None:
    for base, path in _ports(teller):
        raw = request_bytes("GET", path, _host(base), {"Expect": "100-continue"})
        answer = exchange(base, raw, timeout=3)
        assert answer.status == 200, (base, path, answer)
        assert answer.seconds < 2


def test_a_huge_content_length_is_refused_from_the_header(teller: TellerHarness) -> None:
    """413 at once, with not one byte of the announced body sent."""
    for base, path in [(teller.public, "/api/bind"), (teller.admin, "/api/deposits/review"),
                       (teller.dummy, "/dummy/scanner/deposit")]:
        raw = request_bytes("POST", path, _host(base), {
            "Content-Type": "application/json", "Content-Length": str(500 * 1024 * 1024)})
        answer = exchange(base, raw, timeout=3)
        assert answer.status == 413, (path, answer)
        assert answer.body == b"Request Entity Too Large\n"
    log.info("1 MiB is still accepted, and a bind still works after")
    assert teller.bind(SKY_ADDR)


def test_a_json_integer_past_the_digit_limit_is_a_400(teller: TellerHarness) -> None:
    huge = "9" * 5000
    body = f'{{"skyaddr": "{SKY_ADDR}", "coin_type": "BTC", "n": {huge}}}'
    for base, path in [(teller.public, "/api/bind"), (teller.admin, "/api/deposits/review")]:
        r = teller.http.post(base + path, data=body, timeout=10,
                             headers={"Content-Type": "application/json"})
        assert_api_error(r, 400, "Invalid json request body: number too long")
    assert teller.deposits() == []
    log.info("an ordinary large integer is still just an unknown field")
    r = teller.http.post(teller.public + "/api/bind", timeout=10, data=json.dumps(
        {"skyaddr": SKY_ADDR, "coin_type": "BTC", "n": 10**100}),
        headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text


def _serves_everyone(t: TellerHarness, timeout: float = 3.0) -> None:
    """Every public route answers a fresh client promptly."""
    with requests.Session() as client:
        for path in ("/api/health", "/api/config", f"/api/status?skyaddr={SKY_ADDR}"):
            started = time.monotonic()
            r = client.get(t.public + path, timeout=timeout)
            assert r.status_code == 200, (path, r.text)
            assert time.monotonic() - started < timeout
        r = client.post(t.public + "/api/bind", json={"skyaddr": SKY_ADDR, "coin_type": "BTC"},
                        timeout=timeout)
        assert r.status_code in (200, 409), r.text


def test_idle_connections_past_the_old_limit_lock_nobody_out(teller: TellerHarness) -> None:
    """waitress' default connection_limit is 100: 150 idle sockets stopped every client."""
    idle = hold(teller.public, 150, source=ATTACKER)
    try:
        _serves_everyone(teller)
    finally:
        close_all(idle)


def test_slowly_dripped_bodies_are_capped_per_client_address(teller: TellerHarness) -> None:
    """A body is read before the app runs, at most BODY_READS_PER_IP at once per address:
    one more from that address is a 503 at once, and other clients can still bind."""
    head = request_bytes("POST", "/api/bind", _host(teller.public), {
        "Content-Type": "application/json", "Content-Length": "100"}) + b'{"sky'
    drippers = hold(teller.public, BODY_READS_PER_IP, prefix=head, source=ATTACKER)
    try:
        time.sleep(0.3)  # let the server start reading them
        answer = exchange(teller.public, head, source=ATTACKER, timeout=3)
        assert answer.status == 503, answer
        assert answer.body == b"Too many request bodies in progress\n"
        assert teller.bind(SKY_ADDR)  # from 127.0.0.1
    finally:
        close_all(drippers)


@pytest.mark.slow
def test_a_thousand_idle_and_dripping_connections_lock_nobody_out(
        teller: TellerHarness) -> None:
    """Bounded load: 1,000 idle sockets, 100 dripping a header a byte at a time and the
    per-address maximum of dripping bodies, from one attacker address, for ~12 s. The public
    API keeps answering another client throughout, and the header drippers are dropped once
    the header deadline passes."""
    idle = hold(teller.public, 1000, source=ATTACKER)
    head = request_bytes("GET", "/api/health", _host(teller.public))[:-2] + b"X-Slow: "
    headers_drip = hold(teller.public, 100, prefix=head, source=ATTACKER)
    bind_head = request_bytes("POST", "/api/bind", _host(teller.public), {
        "Content-Type": "application/json", "Content-Length": "100"})
    body_drip = hold(teller.public, BODY_READS_PER_IP, prefix=bind_head + b"{", source=ATTACKER)
    try:
        deadline = time.monotonic() + HEADER_READ_TIMEOUT_MS / 1000 + 2
        while time.monotonic() < deadline:
            for sock in headers_drip:
                try:
                    sock.send(b"a")  # the header line never ends
                except OSError:
                    pass  # dropped by the server: what should happen
            _serves_everyone(teller)
            time.sleep(0.5)
        dropped = 0
        for sock in headers_drip:
            sock.settimeout(3)
            try:
                data = sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:  # reset
                data = b""
            dropped += data == b"" or data.startswith(b"HTTP/1.1 4")
        assert dropped == len(headers_drip)
        _serves_everyone(teller)
    finally:
        close_all(idle + headers_drip + body_drip)


def test_stop_waits_for_the_requests_still_inside_the_app() -> None:
    """The service closes LMDB right after stopping its servers: a request still running
    (a page polling /api/health across a restart) must finish first, not meet a closed
    environment (it was a 500)."""
    import threading

    from teller.http import Server

    inside, release, finished = threading.Event(), threading.Event(), threading.Event()

    def slow_app(environ, start_response):
        inside.set()
        release.wait(10)
        finished.set()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done"]

    server = Server(slow_app, "127.0.0.1:0", "test")
    server.start()
    client = threading.Thread(target=lambda: _quiet_get(server.url + "/"), daemon=True)
    client.start()
    assert inside.wait(10), "the request never reached the app"
    stopper = threading.Thread(target=server.stop, kwargs={"timeout": 10}, daemon=True)
    stopper.start()
    stopper.join(0.5)
    assert stopper.is_alive(), "stop() returned while a request was inside the app"
    release.set()
    stopper.join(10)
    assert not stopper.is_alive() and finished.is_set()


def _quiet_get(url: str) -> None:
    try:
        requests.get(url, timeout=10)
    except requests.RequestException:
        pass  # the server may close the connection as it stops: the app's work is what counts
