"""POST /api/bind against the Go teller's transcript: answers, every error, and the fixes."""

from __future__ import annotations

import json
import logging
import sys
import threading
from pathlib import Path

import pytest
import requests

from teller.jsonbody import BodyError, decode_object, string_field
from tests.support.service import (
    BTC_ADDRESSES,
    SKY_ADDR,
    TellerHarness,
    assert_api_error,
    assert_json,
    sky_address,
    start_teller,
)

log = logging.getLogger(__name__)


def remaining(t: TellerHarness, coin: str = "BTC") -> int:
    return assert_json(t.get(t.admin, "/api/deposit-addresses"))[coin]["remaining_addresses"]


def post_raw(t: TellerHarness, body: bytes, content_type: str | None) -> requests.Response:
    headers = {"Content-Type": content_type} if content_type else {}
    return t.http.post(t.public + "/api/bind", data=body, headers=headers, timeout=10)


def test_bind_hands_out_pool_addresses_in_order_up_to_max_bound(teller: TellerHarness) -> None:
    log.info("first bind gets the first pool address, as in the transcript")
    resp = teller.post_json(teller.public, "/api/bind", {"skyaddr": SKY_ADDR, "coin_type": "BTC"})
    assert_json(resp, {"buy_method": "direct", "coin_type": "BTC",
                       "deposit_address": BTC_ADDRESSES[0]})
    log.info("second bind for the same receive address gets the next one")
    resp = teller.post_json(teller.public, "/api/bind", {"skyaddr": SKY_ADDR, "coin_type": "BTC"})
    assert_json(resp, {"buy_method": "direct", "coin_type": "BTC",
                       "deposit_address": BTC_ADDRESSES[1]})
    log.info("third bind: max_bound_addrs = 2 reached -> 409 (Go: 500), pool untouched")
    resp = teller.post_json(teller.public, "/api/bind", {"skyaddr": SKY_ADDR, "coin_type": "BTC"})
    assert_api_error(resp, 409,
                     "The maximum number of addresses have been assigned to this SKY address")
    assert remaining(teller) == 3
    log.info("another receive address still binds")
    assert teller.bind(sky_address(1)) == BTC_ADDRESSES[2]


def test_every_bind_error_is_plain_text_and_changes_nothing(teller: TellerHarness) -> None:
    t = teller

    def bind(body: dict) -> requests.Response:
        return t.post_json(t.public, "/api/bind", body)

    assert_api_error(bind({"skyaddr": "bad", "coin_type": "BTC"}), 400,
                     "Invalid skycoin address: Invalid address length")
    assert_api_error(bind({"skyaddr": SKY_ADDR[:-1] + "X", "coin_type": "BTC"}), 400,
                     "Invalid skycoin address: Invalid checksum")
    assert_api_error(bind({"skyaddr": "0OIl" + SKY_ADDR[4:], "coin_type": "BTC"}), 400,
                     "Invalid skycoin address: Invalid base58 character")
    assert_api_error(bind({"skyaddr": SKY_ADDR, "coin_type": "DOGE"}), 400, "Invalid coin_type")
    assert_api_error(bind({"skyaddr": SKY_ADDR, "coin_type": "ETH"}), 400, "ETH not enabled")
    assert_api_error(bind({"skyaddr": SKY_ADDR}), 400, "Missing coin_type")
    assert_api_error(bind({"coin_type": "BTC"}), 400, "Missing skyaddr")
    assert_api_error(bind({"skyaddr": " \t\n", "coin_type": "BTC"}), 400, "Missing skyaddr")
    assert_api_error(bind({}), 400, "Missing skyaddr")
    assert_api_error(bind({"skyaddr": 5, "coin_type": "BTC"}), 400,
                     "Invalid json request body: json: cannot unmarshal number into Go struct "
                     "field .skyaddr of type string")
    assert_api_error(post_raw(t, b"not json", "application/json"), 400,
                     "Invalid json request body: invalid character 'o' in literal null "
                     "(expecting 'u')")
    assert_api_error(post_raw(t, b"", "application/json"), 400, "Invalid json request body: EOF")
    assert_api_error(post_raw(t, b'{"skyaddr":', "application/json"), 400,
                     "Invalid json request body: unexpected EOF")
    assert_api_error(post_raw(t, b'{"skyaddr": "x"}', "text/plain"), 415, "Invalid content type")
    assert_api_error(post_raw(t, b'{"skyaddr": "x"}', None), 415, "Invalid content type")
    for method in ("GET", "PUT", "DELETE"):
        resp = t.http.request(method, t.public + "/api/bind", timeout=10)
        assert_api_error(resp, 405, "Invalid request method")
        assert resp.headers["Allow"] == "POST"
    log.info("none of that bound anything")
    assert remaining(t) == 5
    assert t.statuses(SKY_ADDR) == []


def test_bind_accepts_json_with_charset_and_trims_the_address(teller: TellerHarness) -> None:
    resp = post_raw(teller, f'{{"skyaddr": " \\t{SKY_ADDR}\\n", "coin_type": "BTC"}}'.encode(),
                    "application/json; charset=utf-8")
    assert_json(resp, {"buy_method": "direct", "coin_type": "BTC",
                       "deposit_address": BTC_ADDRESSES[0]})
    log.info("the binding is stored under the trimmed address")
    assert teller.statuses(SKY_ADDR) == ["waiting_deposit"]


def test_bind_disabled_is_403_after_validation(tmp_path: Path) -> None:
    t = start_teller(tmp_path, "[teller]\nbind_enabled = false\n")
    try:
        assert_api_error(t.post_json(t.public, "/api/bind", {"skyaddr": "bad",
                                                             "coin_type": "BTC"}),
                         400, "Invalid skycoin address: Invalid address length")
        assert_api_error(t.post_json(t.public, "/api/bind", {"skyaddr": SKY_ADDR,
                                                             "coin_type": "BTC"}),
                         403, "Address binding is disabled")
        assert remaining(t) == 5
    finally:
        t.close()


def test_empty_pool_is_503(tmp_path: Path) -> None:
    t = start_teller(tmp_path, btc_addresses=BTC_ADDRESSES[:1])
    try:
        assert t.bind(sky_address(1)) == BTC_ADDRESSES[0]
        resp = t.post_json(t.public, "/api/bind", {"skyaddr": sky_address(2), "coin_type": "BTC"})
        assert_api_error(resp, 503, "Deposit address pool is empty")
    finally:
        t.close()


def test_max_bound_addrs_zero_is_unlimited(tmp_path: Path) -> None:
    t = start_teller(tmp_path, "[teller]\nmax_bound_addrs = 0\n")
    try:
        bound = [t.bind(SKY_ADDR) for _ in range(5)]
        assert bound == BTC_ADDRESSES[:5]
    finally:
        t.close()


def test_concurrent_binds_over_http_respect_limits(tmp_path: Path) -> None:
    """15 clients at once: max_bound_addrs holds per receive address, no address twice.

    8 clients bind one receive address (3 allowed), 7 bind their own: exactly the 10 pool
    addresses are handed out, each once, and the other 5 get 409.
    """
    t = start_teller(tmp_path, "[teller]\nmax_bound_addrs = 3\n", btc_addresses=BTC_ADDRESSES)
    results: list[tuple[int, str]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(15)

    def client(i: int) -> None:
        skyaddr = SKY_ADDR if i % 2 == 0 else sky_address(i)
        barrier.wait()
        with requests.Session() as session:
            resp = session.post(t.public + "/api/bind", json={"skyaddr": skyaddr,
                                                              "coin_type": "BTC"}, timeout=10)
        with lock:
            results.append((resp.status_code, resp.text))

    try:
        threads = [threading.Thread(target=client, args=(i,)) for i in range(15)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        ok = [json.loads(text)["deposit_address"] for code, text in results if code == 200]
        assert sorted(ok) == sorted(BTC_ADDRESSES)
        assert sorted(code for code, _ in results) == [200] * 10 + [409] * 5
        assert len(t.statuses(SKY_ADDR)) == 3
        assert remaining(t) == 0
    finally:
        t.close()


@pytest.mark.parametrize(("body", "reason"), [
    (b"", "EOF"),
    (b" \n\t", "EOF"),
    (b"not json", "invalid character 'o' in literal null (expecting 'u')"),
    (b"nul", "unexpected EOF"),
    (b"tru", "unexpected EOF"),
    (b"fals3", "invalid character '3' in literal false (expecting 'e')"),
    (b"x", "invalid character 'x' looking for beginning of value"),
    (b"'a'", "invalid character '\\'' looking for beginning of value"),
    (b'{"skyaddr": "a",}', "invalid character '}' looking for beginning of object key string"),
    (b'{"skyaddr" "a"}', "invalid character '\"' after object key"),
    (b'{"skyaddr": "a" "coin_type": "BTC"}',
     "invalid character '\"' after object key:value pair"),
    (b'{"skyaddr": "a"}x', "invalid character 'x' after top-level value"),
    (b'{"skyaddr": ', "unexpected EOF"),
    (b"[1]", "json: cannot unmarshal array into Go value of type object"),
    (b'"text"', "json: cannot unmarshal string into Go value of type object"),
    (b"\xff", "invalid UTF-8 in request body"),
])
def test_json_body_errors_read_like_go(body: bytes, reason: str) -> None:
    with pytest.raises(BodyError) as info:
        decode_object(body)
    assert str(info.value) == reason


def test_json_null_body_is_an_empty_request() -> None:
    assert decode_object(b"null") == {}
    assert decode_object(b'{"skyaddr": null}') == {"skyaddr": None}
    assert string_field({"skyaddr": None}, "skyaddr") == ""


def test_deeply_nested_body_is_a_400_not_a_500(teller: TellerHarness) -> None:
    """json.loads raised RecursionError past ~1000 levels, answered 500 Internal Server Error."""
    t = teller
    assert_api_error(post_raw(t, b"[" * 100_000, "application/json"), 400,
                     "Invalid json request body: invalid character '[' exceeded max depth")
    assert_api_error(post_raw(t, b'{"a":' * 5000 + b"1" + b"}" * 5000, "application/json"), 400,
                     "Invalid json request body: invalid character '{' exceeded max depth")
    assert remaining(t) == 5


def test_lone_surrogates_become_replacement_characters_as_in_go() -> None:
    body = decode_object(b'{"skyaddr": "a\\ud800b", "\\udfff": "x", "coin_type": "BTC"}')
    assert body == {"skyaddr": "a\ufffdb", "\ufffd": "x", "coin_type": "BTC"}
    assert decode_object(b'{"ok": "\\ud83d\\ude00"}') == {"ok": "\U0001f600"}  # a real pair


def test_oversized_body_is_413_and_binds_nothing(teller: TellerHarness) -> None:
    t = teller
    body = b'{"skyaddr": "' + SKY_ADDR.encode() + b'", "coin_type": "BTC"}' + b" " * (2 << 20)
    assert_api_error(post_raw(t, body, "application/json"), 413, "Request Entity Too Large")
    assert remaining(t) == 5


def test_deep_json_is_refused_under_web3s_recursion_limit(teller: TellerHarness) -> None:
    """A teller paying ERC-20 or scanning ETH imports web3, which raises the recursion limit
    to 100,000. json.loads then overflowed a server thread's C stack on 100,000 "[" and the
    whole process died with SIGSEGV instead of raising RecursionError."""
    import web3  # noqa: F401 - loaded as in an ERC-20 teller

    assert sys.getrecursionlimit() >= 100_000
    t = teller
    assert_api_error(post_raw(t, b"[" * 100_000, "application/json"), 400,
                     "Invalid json request body: invalid character '[' exceeded max depth")
    assert remaining(t) == 5
