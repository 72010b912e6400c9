"""The alert center against real sinks: redis-server (LPUSH JSON) and a local webhook."""

from __future__ import annotations

import json
import logging

from alerts.center import AlertCenter
from alerts.config import build_center, read_secrets
from alerts.handler import AlertHandler
from alerts.settings import parse_alerts
from alerts.sinks import SIGNATURE_HEADER, RedisSink, WebhookSink, sign
from tests.support.clock import Clock
from tests.support.wait import wait_until
from tests.support.webhook import WebhookReceiver


def test_redis_gets_firing_and_resolved_with_dedup(redis_server):
    clock = Clock()
    sink = RedisSink("127.0.0.1", redis_server.port, "alert:message")
    center = AlertCenter([sink], service="teller", min_interval=60, clock=clock, host="h1")
    assert center.fire("pool.BTC.low", "BTC pool has 3 free addresses")
    assert not center.fire("pool.BTC.low", "BTC pool has 2 free addresses")  # deduplicated
    assert not center.fire("pool.BTC.low", "BTC pool has 1 free addresses")
    clock.now += 61  # past the rate limit: the repeat goes out, saying how many were held
    assert center.fire("pool.BTC.low", "BTC pool has 0 free addresses")
    assert center.resolve("pool.BTC.low", "BTC pool refilled")
    assert not center.resolve("pool.BTC.low")  # already resolved: nothing more
    wait_until(lambda: len(redis_server.messages()) == 3, message="3 alerts in redis")
    first, repeat, resolved = redis_server.messages()
    assert first == {"kind": "pool.BTC.low", "state": "firing", "service": "teller",
                     "host": "h1", "message": "BTC pool has 3 free addresses",
                     "time": 1_000_000, "repeats": 0}
    assert (repeat["state"], repeat["repeats"], repeat["message"]) == \
        ("firing", 2, "BTC pool has 0 free addresses")
    assert (resolved["state"], resolved["message"]) == ("resolved", "BTC pool refilled")
    center.close()


def test_rate_limit_is_per_kind(redis_server):
    center = AlertCenter([RedisSink("127.0.0.1", redis_server.port, "k")], min_interval=60)
    assert center.fire("a", "one") and center.fire("b", "two") and not center.fire("a", "one")
    wait_until(lambda: len(redis_server.messages("k")) == 2, message="2 alerts")
    assert [m["kind"] for m in redis_server.messages("k")] == ["a", "b"]
    center.close()


def test_webhook_is_signed_and_retried_without_blocking_the_caller():
    receiver = WebhookReceiver(fail_first=2)  # two 503s, then accepted
    try:
        sink = WebhookSink(receiver.url, b"s3cret", backoff=0.05)
        center = AlertCenter([sink], min_interval=0)
        center.fire("sender.error", "sold out")  # returns at once: delivery is in a thread
        wait_until(lambda: receiver.requests, message="the webhook to be delivered")
        request = receiver.requests[0]
        assert receiver.attempts == 3
        assert request["json"]["kind"] == "sender.error"
        assert request["headers"][SIGNATURE_HEADER] == sign(b"s3cret", request["body"])
        assert request["headers"]["Content-Type"] == "application/json"
        center.close()
        assert (sink.delivered, sink.failed) == (1, 0)
    finally:
        receiver.close()


def test_unreachable_redis_never_blocks_and_gives_up(redis_server):
    port = redis_server.port
    redis_server.stop()  # nothing listens there now
    sink = RedisSink("127.0.0.1", port, "k", retries=1, backoff=0.01, timeout=0.5)
    center = AlertCenter([sink], min_interval=0)
    center.fire("x", "y")
    wait_until(lambda: sink.failed == 1, message="the delivery to be given up")
    center.close()


def test_handler_turns_error_and_watch_lines_into_alerts(webhook):
    center = AlertCenter([WebhookSink(webhook.url, b"k")], min_interval=60)
    handler = AlertHandler(center)
    logger = logging.getLogger("tests.alerts.sample")
    logger.addHandler(handler)
    try:
        logger.info("routine line")  # neither ERROR nor notice=WATCH: no alert
        logger.warning("notice=WATCH pool %s is low", "BTC")
        logger.error("payout %s failed", "p1")
        logger.error("payout %s failed", "p2")  # same template, same kind: deduplicated
        logger.warning("held", extra={"alert_kind": "sender.error"})  # not ERROR, no WATCH
        logger.error("sold out", extra={"alert_kind": "sender.error"})
        logging.getLogger("alerts").error("the center's own line")  # never alerted on
    finally:
        logger.removeHandler(handler)
    wait_until(lambda: len(webhook.requests) == 3, message="3 webhook posts")
    kinds = [r["json"]["kind"] for r in webhook.requests]
    assert kinds == ["log:tests.alerts.sample:pool %s is low",
                     "log:tests.alerts.sample:payout %s failed", "sender.error"]
    assert webhook.requests[0]["json"]["message"] == "pool BTC is low"
    center.close()


def test_config_lists_every_problem_and_reads_secrets(tmp_path, monkeypatch):
    settings, problems = parse_alerts({"redis_addr": "nohost", "webhook_url": "ftp://x",
                                       "min_interval": 0, "retries": -1, "log": "yes",
                                       "colour": "red"})
    assert sorted(problems) == sorted([
        "alerts.redis_addr: 'nohost' is not host:port",
        "alerts.webhook_url: 'ftp://x' is not an http(s) URL",
        "alerts: set webhook_secret_file or webhook_secret_env (the webhook's messages are "
        "signed)",
        "alerts.min_interval: expected seconds > 0, such as 5 or \"0.5\"",
        "alerts.retries: expected an integer >= 0",
        "alerts.log: expected true or false",
        "alerts.colour: unknown key",
    ])
    settings, problems = parse_alerts({"webhook_url": "http://127.0.0.1:1/h",
                                       "webhook_secret_file": "missing.key"})
    assert problems == []
    _, problems = read_secrets(settings, tmp_path)
    assert problems == [f"alerts.webhook_secret_file: cannot read {tmp_path}/missing.key: "
                        "No such file or directory"]
    (tmp_path / "hook.key").write_text("k3y\n")
    settings.webhook_secret_file = "hook.key"
    secrets, problems = read_secrets(settings, tmp_path)
    assert (secrets, problems) == ({"webhook": b"k3y"}, [])
    center = build_center(settings, secrets, service="core")
    assert [s.name for s in center.sinks] == ["log", "webhook"]
    center.close()
    monkeypatch.delenv("NO_SUCH_VAR", raising=False)
    _, problems = read_secrets(parse_alerts({"redis_addr": "127.0.0.1:1",
                                             "redis_password_env": "NO_SUCH_VAR"})[0])
    assert problems == ["alerts.redis_password_env: $NO_SUCH_VAR is not set"]
    assert json.loads(json.dumps(settings.__dict__, default=str))  # plain data, loggable


def test_redis_outage_is_retried_until_it_is_back(redis_server):
    redis_server.stop()
    sink = RedisSink("127.0.0.1", redis_server.port, "alert:message", retries=8, backoff=0.2,
                     timeout=0.5)
    center = AlertCenter([sink], min_interval=0)
    center.fire("core.commit", "operation log commit failed")  # queued: redis is down
    redis_server.start()  # same port: the retries find it
    wait_until(lambda: sink.delivered == 1, message="the retried delivery")
    assert [m["kind"] for m in redis_server.messages()] == ["core.commit"]
    center.close()


def test_a_flapping_condition_costs_two_messages_per_interval(redis_server):
    clock = Clock()
    center = AlertCenter([RedisSink("127.0.0.1", redis_server.port, "k")], min_interval=60,
                         clock=clock)
    for _ in range(10):  # down, up, down, up ... every 5 s for 50 s
        center.fire("scanner.BTC.unreachable", "down")
        clock.now += 2.5
        center.resolve("scanner.BTC.unreachable", "up")
        clock.now += 2.5
    clock.now += 60
    assert center.fire("scanner.BTC.unreachable", "down again")  # past the interval: sent
    wait_until(lambda: len(redis_server.messages("k")) == 3, message="3 messages")
    sent = [(m["state"], m["repeats"]) for m in redis_server.messages("k")]
    assert sent == [("firing", 0), ("resolved", 0), ("firing", 9)]
    center.close()
