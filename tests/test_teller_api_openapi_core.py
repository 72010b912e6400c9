"""The core's OpenRPC document: served, complete, and matched by real answers."""

from __future__ import annotations

import jsonschema_rs
import requests

from matchengine.methods import ALL_METHODS
from matchengine.openrpc import document
from tests.support.core import CoreServer


def _validator(doc, schema):
    # jsonschema-rs comes with schemathesis; the $refs resolve against the embedded components
    return jsonschema_rs.Draft202012Validator({**schema, "components": doc["components"]})


def test_document_lists_exactly_the_served_methods():
    doc = document()
    names = [m["name"] for m in doc["methods"]]
    assert sorted(names) == sorted(ALL_METHODS) and len(names) == 23
    for method in doc["methods"]:
        schema = {**method["result"]["schema"], "components": doc["components"]}
        jsonschema_rs.meta.validate(schema)


def test_served_and_answers_match_the_result_schemas(tmp_path):
    core = CoreServer(tmp_path)
    try:
        served = requests.get(core.url + "openrpc.json", timeout=5)
        assert served.status_code == 200 and served.json() == document()
        doc = document()
        results = {m["name"]: m["result"]["schema"] for m in doc["methods"]}
        core.ok("balance.update", [1, "BTC", "deposit", 1, "10", {}])
        core.ok("balance.update", [2, "SKY", "deposit", 1, "1000", {}])
        ask = core.ok("order.put_limit", [2, "SKYBTC", 1, "10", "0.001", "0.002", "0.001", "t"])
        calls = {
            "balance.query": [1], "balance.update": [1, "BTC", "deposit", 2, "1", {}],
            "balance.history": [1, "", "", 0, 0, 0, 10], "asset.list": [],
            "asset.summary": [], "order.put_limit": [1, "SKYBTC", 2, "5", "0.001", "0.002",
                                                      "0.001", "t"],
            "order.put_market": [1, "SKYBTC", 2, "0.001", "0.002", "t"],
            "order.cancel": [2, "SKYBTC", ask["id"]], "order.book": ["SKYBTC", 1, 0, 10],
            "order.depth": ["SKYBTC", 10, "0"], "order.pending": [2, "SKYBTC", 0, 10],
            "order.pending_detail": ["SKYBTC", ask["id"]],
            "order.deals": [ask["id"], 0, 10], "order.finished": [2, "SKYBTC", 0, 0, 0, 10],
            "order.finished_detail": [ask["id"]], "market.list": [], "market.summary": [],
            "market.last": ["SKYBTC"], "market.deals": ["SKYBTC", 10, 0],
            "market.kline": ["SKYBTC", 1, 2_000_000_000, 60],
            "market.status": ["SKYBTC", 86400], "market.status_today": ["SKYBTC"],
            "market.user_deals": [1, "SKYBTC", 0, 10],
        }
        assert sorted(calls) == sorted(results)
        for method, params in calls.items():
            result = core.ok(method, params)
            errors = [e.message for e in _validator(doc, results[method]).iter_errors(result)]
            assert not errors, (method, result, errors)
    finally:
        core.close()


def test_metrics_are_prometheus_text(tmp_path):
    core = CoreServer(tmp_path)
    try:
        first = requests.get(core.url + "metrics", timeout=5)
        assert first.status_code == 200
        assert first.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        core.ok("balance.update", [1, "BTC", "deposit", 1, "10", {}])
        core.ok("balance.update", [2, "SKY", "deposit", 1, "1000", {}])
        core.ok("order.put_limit", [2, "SKYBTC", 1, "10", "0.001", "0.002", "0.001", "t"])
        core.ok("order.put_limit", [1, "SKYBTC", 2, "4", "0.001", "0.002", "0.001", "t"])
        text = requests.get(core.url + "metrics", timeout=5).text
        values = {line.split()[0]: line.split()[1] for line in text.splitlines()
                  if line and not line.startswith("#")}
        assert values["core_orders_total"] == "2" and values["core_deals_total"] == "1"
        assert float(values["core_orders_per_second"]) > 0
        assert int(values["core_commit_seconds_count"]) >= 4
        assert float(values["core_commit_seconds_max"]) > 0
        assert values["core_write_queue_depth"] == "0" and values["core_failed"] == "0"
        assert int(values["core_snapshot_age_seconds"]) >= 0
        for name in ("core_deals_per_second", "core_commits_pending", "core_operation_id"):
            assert f"# TYPE {name} gauge" in text
        # every other GET is still viabtc's empty 400
        other = requests.get(core.url, timeout=5)
        assert (other.status_code, other.content) == (400, b"")
    finally:
        core.close()
