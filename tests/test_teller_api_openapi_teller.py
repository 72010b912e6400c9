"""The teller's OpenAPI documents: checked against each app's routes, and fuzzed by
schemathesis against a real running teller (bounded examples).

Checks on every generated request: no 5xx, the status and content type are documented, the
body matches its schema, and a 4xx changes nothing (a fingerprint of every LMDB database
before and after, taken once background work has settled).
"""

from __future__ import annotations

import hashlib
import re
import time

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from common.storage import DATABASES
from teller.app import create_app
from teller.openapi import admin_document, dummy_document, public_document
from tests.support.service import SKY_ADDR, start_teller

APPS = {"public": public_document, "admin": admin_document, "dummy": dummy_document}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
EXAMPLES = settings(max_examples=15, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    t = start_teller(tmp_path_factory.mktemp("openapi"))
    addr = t.bind(SKY_ADDR)  # some state for the fuzzer to find: a binding, a paid deposit
    t.deposit(addr, 100_000, "ab" * 32)
    t.confirm(t.wait_broadcasts(1)[0]["txid"])
    t.wait_status(SKY_ADDR, ["done"])
    try:
        yield t
    finally:
        t.close()


def fingerprint(t) -> str:
    storage = t.service.storage
    digest = hashlib.sha256()
    with storage.read() as txn:
        for db in DATABASES:
            for key, value in storage.items(txn, db):
                digest.update(f"{db}\0{key}\0{value!r}\n".encode())
    return digest.hexdigest()


def settled(t) -> str:
    """The fingerprint once two reads 50 ms apart agree (the exchanger works in the background)."""
    last = fingerprint(t)
    for _ in range(100):
        time.sleep(0.05)
        now = fingerprint(t)
        if now == last:
            return now
        last = now
    raise AssertionError("the teller's state did not settle")


def _rules(app):
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static_files":
            continue  # web.static_dir's files, when the directory exists
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)  # werkzeug -> OpenAPI
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            found.add((path, method.lower()))
    return found


@pytest.mark.parametrize("name", sorted(APPS))
def test_every_route_is_documented_and_served(live, name):
    document = APPS[name]
    documented = {(path, method) for path, item in document()["paths"].items()
                  for method in item}
    assert _rules(create_app(live.service.config, live.service, name)) == documented
    base = {"public": live.public, "admin": live.admin, "dummy": live.dummy}[name]
    served = requests.get(base + "/api/openapi.json", timeout=5)
    assert served.status_code == 200 and served.json() == document()


def _fuzz(case, t, base: str) -> None:
    before = settled(t)
    response = case.call(base_url=base, timeout=15)
    case.validate_response(response, checks=CHECKS)
    if 400 <= response.status_code < 500:
        assert fingerprint(t) == before, f"{case.method} {case.path} -> " \
            f"{response.status_code} {response.text!r} changed the state"


# Valid and invalid requests both (schemathesis's default is valid ones only).
FUZZ_CONFIG = SchemathesisConfig.from_dict({"generation": {"mode": "all"}})
public_schema = schemathesis.openapi.from_dict(public_document(), config=FUZZ_CONFIG)
admin_schema = schemathesis.openapi.from_dict(admin_document(), config=FUZZ_CONFIG)
dummy_schema = schemathesis.openapi.from_dict(dummy_document(), config=FUZZ_CONFIG)


@pytest.mark.slow
@public_schema.parametrize()
@EXAMPLES
def test_fuzz_public(case, live):
    _fuzz(case, live, live.public)


@pytest.mark.slow
@admin_schema.exclude(path="/api/backup").parametrize()  # a 200 download, checked above
@EXAMPLES
def test_fuzz_admin(case, live):
    _fuzz(case, live, live.admin)


@pytest.mark.slow
@dummy_schema.parametrize()
@EXAMPLES
def test_fuzz_dummy(case, live):
    _fuzz(case, live, live.dummy)
