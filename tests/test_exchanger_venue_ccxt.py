"""The ccxt buy venue, through ccxt's real binance client, against binance's REST shapes.

No exchange can be reached from here, so ``responses`` answers as binance's spot API does
(tests/support/binance.py); ccxt signs, sends and parses for real, and any URL the fake does
not serve fails the test (no clock sync, no currency or margin calls slip through).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal

import pytest
import requests
import responses

from exchanger.venues.base import (
    BuyIntent,
    OrderState,
    TooSmall,
    VenueError,
    VenueRejected,
    VenueUnavailable,
    VenueWait,
)
from exchanger.venues.ccxt_venue import CcxtVenue
from tests.support.binance import BASE, FakeBinance, Fill, error, exchange_info
from tests.support.clock import Clock

KEY = "test-api-key-0123"
SECRET = "test-secret-do-not-leak-9876"


@pytest.fixture
def fake() -> Iterator[FakeBinance]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        exchange = FakeBinance(api_key=KEY, secret=SECRET)
        exchange.install(rsps)
        yield exchange
        # every request ccxt made was one the fake serves (an unknown URL would have been
        # answered with a connection error, which a test expecting VenueUnavailable could hide)
        assert len(rsps.calls) == len(exchange.calls), [c.request.url for c in rsps.calls]


def venue(clock: Clock | None = None, *, settle_s: float | None = 0.0, **kw: object) -> CcxtVenue:
    args: dict[str, object] = {
        "api_key": KEY, "secret": SECRET, "sandbox": False, "api_url": BASE,
        "markets": {"BTC": "SKY/BTC"}, "settle_s": settle_s, "retry_delays": (0.0, 0.0),
    }
    if clock is not None:
        args["clock"] = clock
    args.update(kw)
    return CcxtVenue("binance", **args)  # type: ignore[arg-type]


def intent(spend: str = "0.001", seq: int = 1, attempt: int = 1) -> BuyIntent:
    return BuyIntent(deposit_key=f"BTC/tx{seq}:0", coin="BTC", market="SKY/BTC",
                     spend=Decimal(spend), client_id=f"teller-{seq}-{attempt}", attempt=attempt)


# --- load markets -------------------------------------------------------------------------

def test_prepare_loads_markets_from_exchange_info_only(fake: FakeBinance) -> None:
    v = venue()
    v.prepare()
    assert [(m, p) for m, p, _ in fake.calls] == [("GET", "/api/v3/exchangeInfo")]
    assert v.name == "binance"


def test_prepare_retries_rate_limits_then_gives_up(fake: FakeBinance) -> None:
    limited = {"code": -1003, "msg": "Too much request weight used; current limit is 6000 request weight per 1 MINUTE."}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(BASE + "/api/v3/exchangeInfo", status=429, json=limited)
        rsps.get(BASE + "/api/v3/exchangeInfo", status=429, json=limited)
        rsps.get(BASE + "/api/v3/exchangeInfo", json=exchange_info())
        venue().prepare()  # two 429s, then the answer
        assert len(rsps.calls) == 3
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(BASE + "/api/v3/exchangeInfo", status=429, json=limited)
        with pytest.raises(VenueUnavailable, match="load markets"):
            venue().prepare()
        assert len(rsps.calls) == 3  # one try and two retries


def test_prepare_names_a_market_the_exchange_lacks(fake: FakeBinance) -> None:
    with pytest.raises(VenueUnavailable, match=r"no market SKY/ETH \(passthrough.markets\)"):
        venue(markets={"BTC": "SKY/BTC", "ETH": "SKY/ETH"}).prepare()


def test_sandbox_uses_the_binance_testnet_and_nothing_else() -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        testnet = FakeBinance(api_key=KEY, secret=SECRET, base="https://testnet.binance.vision")
        testnet.install(rsps)
        v = venue(sandbox=True, api_url="")
        v.prepare()
        v.place(intent())
        assert [p for _, p, _ in testnet.calls] == [
            "/api/v3/exchangeInfo", "/api/v3/order", "/api/v3/order"]


def test_bad_config_fails_at_construction_with_every_problem() -> None:
    with pytest.raises(ValueError, match="not a ccxt exchange id"):
        CcxtVenue("nosuchexchange", api_key=KEY, secret=SECRET, sandbox=False, api_url="", markets={})
    with pytest.raises(ValueError) as info:
        CcxtVenue("binance", api_key="", secret="", sandbox=False, api_url="ftp://x", markets={})
    assert "API key and secret" in str(info.value) and "api_url" in str(info.value)


# --- checks before ordering ---------------------------------------------------------------

def test_below_min_notional_is_too_small_before_any_order(fake: FakeBinance) -> None:
    v = venue()
    with pytest.raises(TooSmall, match=r"minimum order cost 0.0001 BTC on SKY/BTC"):
        v.check(intent("0.00005"))
    assert fake.posts() == []


def test_below_min_quantity_is_too_small(fake: FakeBinance) -> None:
    fake.info = exchange_info(min_notional="0.00000001", min_qty="10.00000000")
    fake.asks = [["0.00100000", "50.0"]]  # 0.001 BTC buys 1 SKY here, the market needs 10
    with pytest.raises(TooSmall, match="minimum amount 10 on SKY/BTC"):
        venue().check(intent("0.001"))


def test_above_the_market_order_maximum_is_refused_before_ordering(fake: FakeBinance) -> None:
    # MARKET_LOT_SIZE maxQty is 100000 SKY: 1 BTC at 0.000002 would be 500000 SKY in one order
    with pytest.raises(TooSmall, match=r"above binance's maximum for one order on SKY/BTC \(amount 100000"):
        venue().check(intent("1"))
    assert fake.posts() == []


def test_under_price_precision_is_too_small(fake: FakeBinance) -> None:
    fake.info = exchange_info(min_notional="0.00000000")
    with pytest.raises(TooSmall, match="precision"):
        venue().check(intent("0.000000001"))  # one tenth of the 1e-8 tick


def test_empty_book_waits_and_a_halted_market_waits(fake: FakeBinance) -> None:
    fake.asks = []
    with pytest.raises(VenueWait, match="no asks"):
        venue().check(intent())
    fake.info = exchange_info(status="BREAK")
    with pytest.raises(VenueWait, match="not trading"):
        venue().check(intent())


def test_a_halted_market_still_answers_for_orders_already_placed(fake: FakeBinance) -> None:
    placed = venue().place(intent())  # open
    fake.info = exchange_info(status="BREAK")
    v = venue()
    assert v.place(intent()).order_id == placed.order_id  # found, not refused
    assert v.poll(intent(), placed.order_id).status == "open"
    with pytest.raises(VenueWait, match="not trading"):
        v.place(intent(seq=2))
    assert len(fake.posts()) == 1


def test_a_big_enough_spend_passes(fake: FakeBinance) -> None:
    venue().check(intent("0.001"))
    assert [p for _, p, _ in fake.calls] == ["/api/v3/exchangeInfo", "/api/v3/depth"]


# --- placing ------------------------------------------------------------------------------

def test_market_buy_by_quote_amount_with_the_client_id(fake: FakeBinance) -> None:
    fake.fill_next.append(([Fill("0.00000200", "300.0", "0.3"), Fill("0.00000201", "199.0", "0.199")],
                           "FILLED"))
    state = venue().place(intent("0.001"))
    (post,) = fake.posts()
    assert post["symbol"] == "SKYBTC" and post["side"] == "BUY" and post["type"] == "MARKET"
    assert post["quoteOrderQty"] == "0.001" and "quantity" not in post
    assert post["newClientOrderId"] == "teller-1-1"
    assert state.status == "closed" and state.final
    assert state.bought == Decimal("498.501")  # 499 SKY less 0.499 SKY commission
    assert state.fee == Decimal("0.499")
    assert state.spent == Decimal("0.00099999")  # cummulativeQuoteQty
    assert state.price == Decimal("0.00099999") / Decimal("499.0")
    assert '"clientOrderId": "teller-1-1"' in state.original


def test_thin_book_partial_fill_is_bought_as_filled(fake: FakeBinance) -> None:
    # binance ends a market order the book cannot fill as EXPIRED with what it did fill
    fake.fill_next.append(([Fill("0.00000200", "150.0", "0.15")], "EXPIRED"))
    state = venue().place(intent("0.001"))
    assert state.final and state.status == "canceled"
    assert state.bought == Decimal("149.85") and state.spent == Decimal("0.0003")
    assert state.price == Decimal("0.000002")


def test_poll_reports_partial_then_final_with_fees_from_the_trades(fake: FakeBinance) -> None:
    v = venue()
    placed = v.place(intent())  # accepted, nothing filled yet
    assert placed.status == "open" and not placed.final and placed.bought == 0
    order_id = int(placed.order_id)
    fake.fill(order_id, [Fill("0.00000200", "200.0", "0.2")], "PARTIALLY_FILLED")
    partial = v.poll(intent(), placed.order_id)
    assert (partial.status, partial.final, partial.spent) == ("open", False, Decimal("0.0004"))
    fake.fill(order_id, [Fill("0.00000200", "300.0", "0.0001", asset="BNB")], "FILLED")
    done = v.poll(intent(), placed.order_id)
    # GET /api/v3/order has no commissions: they come from /api/v3/myTrades. The BNB fee is
    # reported (logged, in `original`) and not taken from the SKY bought.
    assert done.final and done.status == "closed"
    assert done.bought == Decimal("499.8") and done.fee == Decimal("0.2")
    assert done.spent == Decimal("0.001")
    assert '"commissionAsset": "BNB"' in done.original
    assert ("GET", "/api/v3/myTrades") in [(m, p) for m, p, _ in fake.calls]


def test_rejected_with_nothing_filled_may_retry_with_the_next_attempt(fake: FakeBinance) -> None:
    v = venue()
    fake.fail_next.append((400, error(-2010, "Order book liquidity is less than LOT_SIZE filter minimum quantity.")))
    with pytest.raises(VenueRejected, match="refused order teller-1-1"):
        v.place(intent(attempt=1))
    fake.fill_next.append(([], "EXPIRED"))  # accepted, then ended with no fill
    with pytest.raises(VenueRejected, match="nothing filled"):
        v.place(intent(attempt=2))
    fake.fill_next.append(([Fill("0.00000200", "500.0", "0.5")], "FILLED"))
    state = v.place(intent(attempt=3))
    assert state.bought == Decimal("499.5")
    assert [p["newClientOrderId"] for p in fake.posts()] == ["teller-1-1", "teller-1-2", "teller-1-3"]


def test_rate_limit_on_the_order_backs_off(fake: FakeBinance) -> None:
    clock = Clock(1000.0)
    v = venue(clock, settle_s=11.0)
    clock.now += 60  # long after start
    fake.fail_next.append((429, error(-1003, "Too many requests; current limit is 6000 requests per minute.")))
    with pytest.raises(VenueUnavailable, match="DDoSProtection|RateLimitExceeded"):
        v.place(intent())
    # the answer did not say whether the order exists: looked up, then not sent again yet
    with pytest.raises(VenueUnavailable, match="earlier send may still reach"):
        v.place(intent())
    assert len(fake.posts()) == 1
    clock.now += 12
    fake.fill_next.append(([Fill("0.00000200", "500.0", "0.5")], "FILLED"))
    assert v.place(intent()).bought == Decimal("499.5")
    assert len(fake.posts()) == 2


def test_timeout_after_the_exchange_took_the_order_never_orders_twice(fake: FakeBinance) -> None:
    clock = Clock(1000.0)
    v = venue(clock, settle_s=11.0)
    clock.now += 60
    fake.fill_next.append(([Fill("0.00000200", "500.0", "0.5")], "FILLED"))
    fake.raise_next.append(requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(VenueUnavailable, match="RequestTimeout"):
        v.place(intent())
    state = v.place(intent())  # found by client id at once, nothing sent
    assert state.bought == Decimal("499.5") and state.fee == Decimal("0.5")
    assert len(fake.posts()) == 1


def test_network_error_is_unavailable(fake: FakeBinance) -> None:
    v = venue()
    v.prepare()
    fake.raise_next.append(requests.exceptions.ConnectionError("connection reset"))
    fake.fill_next.append(([], "NEW"))
    with pytest.raises(VenueUnavailable, match="NetworkError|ExchangeNotAvailable"):
        v.place(intent())


def test_insufficient_balance_waits(fake: FakeBinance) -> None:
    fake.fail_next.append((400, error(-2010, "Account has insufficient balance for requested action.")))
    with pytest.raises(VenueWait, match="not enough BTC"):
        venue().place(intent())


def test_min_notional_refusal_from_the_exchange_is_too_small(fake: FakeBinance) -> None:
    fake.fail_next.append((400, error(-1013, "Filter failure: NOTIONAL")))
    with pytest.raises(TooSmall, match="NOTIONAL"):
        venue().place(intent())


@pytest.mark.parametrize(("http", "code", "msg", "expected"), [
    # binance's own "we do not know": the order may exist -> back off, look up before resending
    (400, -1007, "Timeout waiting for response from backend server. Send status unknown; "
                 "execution status unknown.", VenueUnavailable),
    (500, -1000, "An unknown error occurred while processing the request.", VenueUnavailable),
    (503, -1008, "Server is currently overloaded with other requests. Please try again in a few minutes.",
     VenueUnavailable),
    (400, -1021, "Timestamp for this request is outside of the recvWindow.", VenueUnavailable),
    (401, -2015, "Invalid API-key, IP, or permissions for action.", VenueUnavailable),
    (418, -1003, "Way too much request weight used; IP banned until 1764633700000.", VenueUnavailable),
    (400, -2010, "Market is closed.", VenueWait),
])
def test_order_answers_map_to_venue_errors(fake: FakeBinance, http: int, code: int, msg: str,
                                           expected: type[Exception]) -> None:
    fake.fail_next.append((http, error(code, msg)))
    with pytest.raises(expected):
        venue().place(intent())


def test_duplicate_client_id_answer_returns_the_existing_order(fake: FakeBinance) -> None:
    v = venue()
    first = v.place(intent())  # open, nothing filled
    fake.hide_lookups = 1  # the next lookup by client id lags behind
    again = v.place(intent())  # lookup misses, POST says duplicate, lookup finds it
    assert again.order_id == first.order_id
    assert len(fake.posts()) == 2 and len(fake.orders) == 1


def test_poll_of_an_order_not_visible_yet_is_unavailable(fake: FakeBinance) -> None:
    with pytest.raises(VenueUnavailable, match="does not show order 4242"):
        venue().poll(intent(), "4242")


# --- crash between placing and persisting -------------------------------------------------

def test_crash_after_post_a_new_venue_finds_the_order_and_never_posts_again(fake: FakeBinance) -> None:
    fake.fill_next.append(([Fill("0.00000200", "500.0", "0.5")], "FILLED"))
    venue().place(intent(seq=7))  # the POST succeeded; the teller died before persisting it
    assert len(fake.posts()) == 1
    restarted = venue(settle_s=None)  # a new process, binance's own settle window (recvWindow)
    found = restarted.find(intent(seq=7))
    assert isinstance(found, OrderState) and found.bought == Decimal("499.5")
    assert found.fee == Decimal("0.5")  # from myTrades: the lookup answer has no commissions
    again = restarted.place(intent(seq=7))
    assert again.order_id == found.order_id
    assert len(fake.posts()) == 1
    lookups = [p for m, path, p in fake.calls if m == "GET" and path == "/api/v3/order"]
    assert lookups and all(p["origClientOrderId"] == "teller-7-1" for p in lookups)


def test_an_order_under_our_client_id_for_another_amount_is_not_adopted(fake: FakeBinance) -> None:
    # e.g. a fresh data dir numbers deposits from 1 again on an account with the old orders
    fake.fill_next.append(([Fill("0.00000200", "250.0", "0.25")], "FILLED"))
    venue().place(intent("0.0005", seq=1))
    with pytest.raises(VenueUnavailable, match="not this deposit's .*spend 0.0005 BTC"):
        venue().place(intent("0.001", seq=1))
    assert len(fake.posts()) == 1


def test_exchanges_without_lookup_by_client_id_are_searched_in_the_order_list(fake: FakeBinance) -> None:
    # the path other exchanges take (ccxt fetch_orders filtered by clientOrderId), shown with
    # binance's GET /api/v3/allOrders
    fake.fill_next.append(([Fill("0.00000200", "500.0", "0.5")], "FILLED"))
    venue().place(intent(seq=8))
    restarted = venue()
    restarted._find_by_fetch = False
    assert restarted.find(intent(seq=9)) is None
    found = restarted.find(intent(seq=8))
    assert found is not None and found.bought == Decimal("499.5")
    assert ("GET", "/api/v3/allOrders") in [(m, p) for m, p, _ in fake.calls]


def test_a_new_venue_places_at_once_and_reports_unfilled_orders_as_final(fake: FakeBinance) -> None:
    # across restarts the exchanger's persisted placing_at + settle_wait guards re-placing;
    # the venue adds no start-up wait of its own
    fake.fill_next.append(([], "EXPIRED"))
    v = venue(settle_s=None)
    with pytest.raises(VenueRejected, match="nothing filled"):
        v.place(intent())
    # looked up or polled, the same order is a final state with nothing bought (the exchanger
    # then makes a new attempt), never an error that would keep the deposit waiting
    found = venue(settle_s=None).find(intent())
    assert found is not None and found.final and found.bought == 0 and found.spent == 0
    polled = v.poll(intent(), found.order_id)
    assert (polled.status, polled.final, polled.bought) == ("canceled", True, Decimal(0))
    assert len(fake.posts()) == 1


# --- the secret ----------------------------------------------------------------------------

def test_key_and_secret_are_never_in_repr_errors_or_logs(fake: FakeBinance, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    v = venue()
    fake.fail_next.append((400, error(-2010, f"Account has insufficient balance ({SECRET})")))
    with pytest.raises(VenueError) as info:
        v.place(intent())
    fake.fill_next.append(([Fill("0.00000200", "500.0", "0.5")], "FILLED"))
    v.place(intent(attempt=2))
    assert SECRET not in repr(v) and SECRET not in str(v)
    assert SECRET not in str(info.value)
    assert SECRET not in caplog.text and KEY not in caplog.text
    assert "/api/v3/order" in caplog.text  # ccxt's request log is there, blanked
