"""GET /api/status: the transcript's shapes and errors, and ``seq`` that never moves."""

from __future__ import annotations

import logging
import time

import pytest
from werkzeug.wrappers import Request

from teller.api_public import query_param
from tests.support.service import (
    SKY_ADDR,
    TellerHarness,
    assert_api_error,
    assert_json,
    sky_address,
)

log = logging.getLogger(__name__)

TX = "edb29a9b561a8d6a6118eb1f724c87f853bf471d7e4f0e9ccb9e1d340235687b"


def status_body(t: TellerHarness, skyaddr: str) -> dict:
    return assert_json(t.get(t.public, "/api/status", params={"skyaddr": skyaddr}))


def untimed(body: dict) -> list[dict]:
    return [{k: v for k, v in entry.items() if k != "updated_at"} for entry in body["statuses"]]


def test_status_errors(teller: TellerHarness) -> None:
    t = teller
    assert_api_error(t.get(t.public, "/api/status"), 400, "Missing skyaddr")
    assert_api_error(t.get(t.public, "/api/status", params={"skyaddr": " \n"}), 400,
                     "Missing skyaddr")
    assert_api_error(t.get(t.public, "/api/status", params={"skyaddr": "bad"}), 400,
                     "Invalid skycoin address: Invalid address length")
    resp = t.http.post(t.public + "/api/status", params={"skyaddr": SKY_ADDR}, timeout=10)
    assert_api_error(resp, 405, "Invalid request method")
    assert resp.headers["Allow"] == "GET"


def test_never_bound_address_is_an_empty_object(teller: TellerHarness) -> None:
    assert status_body(teller, sky_address(7)) == {}


def test_status_follows_the_transcript(teller: TellerHarness) -> None:
    t = teller
    before = int(time.time())
    first = t.bind(SKY_ADDR)
    t.bind(SKY_ADDR)
    log.info("two bound addresses, nothing seen: two waiting_deposit entries, seq 0 and 1")
    body = status_body(t, " " + SKY_ADDR + "\t")
    for entry in body["statuses"]:
        assert isinstance(entry.pop("updated_at"), int)
    assert body == {"statuses": [
        {"coin_type": "BTC", "seq": 0, "status": "waiting_deposit"},
        {"coin_type": "BTC", "seq": 1, "status": "waiting_deposit"},
    ]}

    log.info("deposit to the first address; it is paid and waits for confirmation")
    t.deposit(first, 100_000, TX, height=494713)
    t.wait_status(SKY_ADDR, ["waiting_confirm", "waiting_deposit"])
    [payout] = t.wait_broadcasts(1)
    t.confirm(payout["txid"])
    t.wait_status(SKY_ADDR, ["done", "waiting_deposit"])
    done = status_body(t, SKY_ADDR)["statuses"][0]
    assert done["seq"] == 0 and done["coin_type"] == "BTC"
    assert before <= done["updated_at"] <= int(time.time())
    log.info("deposit addresses are never shown to the public")
    assert all(set(e) == {"coin_type", "seq", "status", "updated_at"}
               for e in status_body(t, SKY_ADDR)["statuses"])


def test_seq_is_stable_whichever_address_is_paid_first(teller: TellerHarness) -> None:
    t = teller
    t.bind(SKY_ADDR)
    second = t.bind(SKY_ADDR)
    log.info("pay the SECOND bound address first: its slot (seq 1) changes, seq 0 does not")
    t.deposit(second, 100_000, TX)
    t.wait_status(SKY_ADDR, ["waiting_deposit", "waiting_confirm"])
    log.info("a second deposit to the same address appends a new entry (seq 2)")
    t.deposit(second, 200_000, TX, n=1)
    t.wait_status(SKY_ADDR, ["waiting_deposit", "waiting_confirm", "waiting_confirm"])
    seqs = [e["seq"] for e in status_body(t, SKY_ADDR)["statuses"]]
    assert seqs == [0, 1, 2]
    for payout in t.wait_broadcasts(2):
        t.confirm(payout["txid"])
    t.wait_status(SKY_ADDR, ["waiting_deposit", "done", "done"])


def test_the_fast_path_reads_the_query_as_werkzeug_does(teller: TellerHarness) -> None:
    """Percent-encoding, '+', repeats and the "address" alias give the Flask view's answer."""
    t = teller
    t.bind(SKY_ADDR)
    bound = status_body(t, SKY_ADDR)
    assert bound["statuses"]
    encoded = "".join(f"%{b:02X}" for b in SKY_ADDR.encode())
    for query in (f"skyaddr={encoded}", f"sky%61ddr={SKY_ADDR}", f"x=1&skyaddr={SKY_ADDR}&skyaddr=z",
                  f"skyaddr=&address={SKY_ADDR}", f"skyaddr=+{SKY_ADDR}+"):
        got = assert_json(t.get(t.public, "/api/status?" + query))
        # a waiting address's updated_at is the current second: it may tick between requests
        assert all(0 <= new["updated_at"] - old["updated_at"] <= 2
                   for new, old in zip(got["statuses"], bound["statuses"], strict=True)), query
        assert untimed(got) == untimed(bound), query
    assert_api_error(t.get(t.public, "/api/status?skyaddr=+"), 400, "Missing skyaddr")


@pytest.mark.parametrize("query", [
    "skyaddr=%ff", "skyaddr=a%ffb%C3%A9", "skyaddr=%C3", "skyaddr=%ED%A0%80", "%73kyaddr=%fe",
    "skyaddr=%zz", "skyaddr=%2", "skyaddr=+a+", "skyaddr", "a=1&skyaddr=&skyaddr=2", "",
    "skyaddr=a=b", "&&skyaddr=x&", "skyaddr;x=1",
])
def test_query_param_decodes_as_werkzeugs_args(query: str) -> None:
    """Bytes that are not UTF-8 stay "%FF" in request.args; the fast path made them U+FFFD,
    which an ETH payout token's address error shows ("invalid character" / length)."""
    args = Request({"QUERY_STRING": query, "REQUEST_METHOD": "GET"}).args
    assert query_param(query, "skyaddr") == args.get("skyaddr", "")


def test_fast_path_and_flask_view_answer_alike(teller: TellerHarness) -> None:
    """An Origin header sends GET /api/status through the Flask view (no CORS origin is
    allowed here, so no header differs): every answer must be byte for byte the same."""
    t = teller
    t.bind(SKY_ADDR)
    for query in ("skyaddr=%ff", "skyaddr=%zz", f"skyaddr={SKY_ADDR}%ff", f"sky%61ddr={SKY_ADDR}",
                  f"skyaddr=%20{SKY_ADDR}", f"skyaddr=&address={SKY_ADDR}", "skyaddr",
                  "skyaddr=" + "1" * 10_000, f"skyaddr={SKY_ADDR}%00", ""):
        fast = t.get(t.public, "/api/status?" + query)
        flask = t.get(t.public, "/api/status?" + query, headers={"Origin": "https://x.example"})
        assert (fast.status_code, fast.content) == (flask.status_code, flask.content), query
        for name in ("Content-Type", "X-Frame-Options", "X-Content-Type-Options",
                     "Referrer-Policy", "Content-Length"):
            assert fast.headers.get(name) == flask.headers.get(name), (query, name)
