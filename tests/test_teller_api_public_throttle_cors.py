"""Public API middleware: throttling (429 + X-Rate-Limit-*), proxies, CORS, security headers,
static files."""

from __future__ import annotations

import logging
from pathlib import Path

import requests

from teller.throttle import Throttle, client_ip
from tests.support.service import (
    SKY_ADDR,
    TellerHarness,
    assert_api_error,
    assert_json,
    start_teller,
)

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "X-XSS-Protection": "1; mode=block",
    "Referrer-Policy": "no-referrer",
}


def status(t: TellerHarness, forwarded_for: str | None = None) -> requests.Response:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return t.get(t.public, "/api/status", params={"skyaddr": SKY_ADDR}, headers=headers)


def test_throttle_answers_429_with_rate_limit_headers(tmp_path: Path) -> None:
    t = start_teller(tmp_path, '[web]\nthrottle_max = 3\nthrottle_duration = "60s"\n')
    try:
        log.info("3 requests per client and path, then 429")
        for _ in range(3):
            assert status(t).status_code == 200
        resp = status(t, forwarded_for="203.0.113.9")
        assert_api_error(resp, 429, "You have reached maximum request limit.")
        assert resp.headers["X-Rate-Limit-Limit"] == "3"
        assert resp.headers["X-Rate-Limit-Duration"] == "60s"
        assert resp.headers["X-Rate-Limit-Request-Remote-Addr"] == "127.0.0.1"
        log.info("behind_proxy is off: X-Forwarded-For does not buy a fresh bucket")
        assert status(t, forwarded_for="198.51.100.1").status_code == 429
        log.info("each path has its own bucket; /api/config and /api/health are not throttled")
        assert t.post_json(t.public, "/api/bind",
                           {"skyaddr": SKY_ADDR, "coin_type": "BTC"}).status_code == 200
        for _ in range(5):
            assert t.get(t.public, "/api/config").status_code == 200
            assert t.get(t.public, "/api/health").status_code == 200
    finally:
        t.close()


def test_behind_proxy_throttles_per_forwarded_client(tmp_path: Path) -> None:
    t = start_teller(tmp_path, "[web]\nthrottle_max = 2\nbehind_proxy = true\n")
    try:
        for _ in range(2):
            assert status(t, forwarded_for="203.0.113.9, 10.0.0.1").status_code == 200
        assert status(t, forwarded_for="203.0.113.9").status_code == 429
        log.info("another client behind the same proxy has its own bucket")
        assert status(t, forwarded_for="198.51.100.1").status_code == 200
    finally:
        t.close()


def test_token_bucket_refills_at_max_per_duration() -> None:
    now = [1000.0]
    throttle = Throttle(2, 10.0, clock=lambda: now[0])
    assert [throttle.allow("a", "/p") for _ in range(3)] == [True, True, False]
    assert throttle.allow("b", "/p") and throttle.allow("a", "/q")
    now[0] += 4.9  # 0.2 tokens per second: not a whole token yet
    assert not throttle.allow("a", "/p")
    now[0] += 0.2
    assert throttle.allow("a", "/p")
    assert not throttle.allow("a", "/p")
    assert Throttle(0, 60.0).allow("a", "/p")  # throttle_max = 0 disables it


def test_many_client_ips_keep_at_most_max_clients_buckets() -> None:
    """All active within the duration: the old pruning kept them all (the dict grew without
    bound and every request rebuilt it). Now the least recently seen bucket goes first."""
    now = [1000.0]
    throttle = Throttle(1, 60.0, clock=lambda: now[0], max_clients=100)
    assert throttle.allow("busy", "/p")
    for i in range(1000):
        assert throttle.allow(f"10.0.{i // 256}.{i % 256}", "/p")
        if i % 50 == 0:
            assert not throttle.allow("busy", "/p")  # seen recently: never evicted
        assert len(throttle._buckets) <= 100
    assert not throttle.allow("10.0.3.231", "/p")  # the newest keep their (empty) buckets


def test_client_ip_trusts_forwarded_for_only_behind_a_proxy() -> None:
    assert client_ip("10.0.0.2", "203.0.113.9, 10.0.0.1", behind_proxy=False) == "10.0.0.2"
    assert client_ip("10.0.0.2", "203.0.113.9, 10.0.0.1", behind_proxy=True) == "203.0.113.9"
    assert client_ip("10.0.0.2", None, behind_proxy=True) == "10.0.0.2"


def test_security_headers_on_every_answer(teller: TellerHarness) -> None:
    t = teller
    answers = [
        t.get(t.public, "/api/config"),
        t.get(t.public, "/api/health"),
        t.get(t.public, "/api/status"),  # 400
        t.get(t.public, "/api/bind"),  # 405
        t.get(t.public, "/nothing-here"),  # 404
        t.post_json(t.public, "/api/bind", {"skyaddr": SKY_ADDR, "coin_type": "BTC"}),
    ]
    for resp in answers:
        assert {k: resp.headers.get(k) for k in SECURITY_HEADERS} == SECURITY_HEADERS, resp.url
        assert "Access-Control-Allow-Origin" not in resp.headers
        assert "Strict-Transport-Security" not in resp.headers


def test_hsts_only_behind_a_tls_proxy(tmp_path: Path) -> None:
    t = start_teller(tmp_path, "[web]\nbehind_proxy = true\n")
    try:
        resp = t.get(t.public, "/api/config", headers={"X-Forwarded-Proto": "https"})
        assert resp.headers["Strict-Transport-Security"] == "max-age=31536000"
        assert "Strict-Transport-Security" not in t.get(t.public, "/api/config").headers
    finally:
        t.close()


def test_cors_only_for_allowed_origins(tmp_path: Path) -> None:
    t = start_teller(tmp_path, '[web]\ncors_allowed = ["https://wallet.example"]\n')
    try:
        ok = t.get(t.public, "/api/config", headers={"Origin": "https://wallet.example"})
        assert ok.headers["Access-Control-Allow-Origin"] == "https://wallet.example"
        assert ok.headers["Vary"] == "Origin"
        other = t.get(t.public, "/api/config", headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in other.headers
        log.info("a browser's preflight for the JSON POST to /api/bind")
        pre = t.http.options(t.public + "/api/bind", timeout=10, headers={
            "Origin": "https://wallet.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Content-Type"})
        assert pre.status_code == 204
        assert pre.headers["Access-Control-Allow-Origin"] == "https://wallet.example"
        assert "POST" in pre.headers["Access-Control-Allow-Methods"]
        assert "Content-Type" in pre.headers["Access-Control-Allow-Headers"]
        log.info("a preflight does not bind anything")
        assert t.statuses(SKY_ADDR) == []
    finally:
        t.close()


def test_static_files_from_static_dir(tmp_path: Path) -> None:
    static = tmp_path / "site"
    static.mkdir()
    (static / "index.html").write_text("<h1>buy</h1>\n")
    (static / "app.js").write_text("console.log(1)\n")
    t = start_teller(tmp_path, '[web]\nstatic_dir = "site"\n')
    try:
        index = t.get(t.public, "/")
        assert index.status_code == 200 and index.text == "<h1>buy</h1>\n"
        assert index.headers["Content-Type"].startswith("text/html")
        assert t.get(t.public, "/app.js").text == "console.log(1)\n"
        assert_api_error(t.get(t.public, "/missing.css"), 404, "404 page not found")
        assert_api_error(t.get(t.public, "/../teller.toml"), 404, "404 page not found")
        log.info("the API routes still win over static files")
        assert_json(t.get(t.public, "/api/config"))
    finally:
        t.close()
