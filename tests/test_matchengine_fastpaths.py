"""The exchange core's fast paths write exactly what the plain code wrote: history rows and
log entries as JSON text built directly, parsed decimals from a cache, events built only for
subscribers, and viabtc's unstripped decimals in Kafka-like messages (market.last)."""

from __future__ import annotations

import json
import random
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import pytest

from common.decimals import CTX, fmt, parse
from matchengine import methods
from matchengine.bus import EventBus
from matchengine.engine import ASK, BID, EVENT_FINISH, Engine
from matchengine.errors import CoreError
from matchengine.history import HistoryWriter
from matchengine.store import HISTORY_DBS
from tests.support.core import core_config

T = 1_700_000_000.123456
ZERO_FEE = Decimal("0")
SOURCES = ["web", "bé\"n\\ch\u2603", ""]


def mix(seed: int, count: int) -> list[tuple[str, list]]:
    rng = random.Random(seed)
    calls: list[tuple[str, list]] = []
    for user in range(1, 6):
        calls.append(("balance.update", [user, "BTC", "deposit", user, "10",
                                         {"note": "dépôt \"1\"", "n": [1, 2.5, None]}]))
        calls.append(("balance.update", [user, "USDT", "deposit", user, "100000", {}]))
        calls.append(("balance.update", [user, "USDT", "trade", user, "1",  # trade-like detail
                                         {"m": "x\"y", "i": 5, "p": "é", "a": "1", "f": "\n"}]))
        calls.append(("balance.update", [user, "USDT", "trade", 10 + user, "1",
                                         {"m": "x", "i": True, "p": "1", "a": "1"}]))
    for _ in range(count):
        user, roll = rng.randint(1, 5), rng.random()
        if roll < 0.7:
            price = f"{8000 * rng.uniform(0.99, 1.01):.4f}"
            calls.append(("order.put_limit", [user, "BTCUSDT", rng.choice([ASK, BID]),
                                              f"{rng.uniform(0.01, 0.3):.9f}", price, "0.0021",
                                              "0.0013", rng.choice(SOURCES)]))
        elif roll < 0.8:
            side = rng.choice([ASK, BID])
            amount = f"{rng.uniform(0.001, 0.05):.9f}" if side == ASK else "300"
            calls.append(("order.put_market", [user, "BTCUSDT", side, amount, "0.002",
                                               rng.choice(SOURCES)]))
        else:
            calls.append(("order.cancel", [user, "BTCUSDT", rng.randint(1, len(calls))]))
    return calls


def run(engine: Engine, calls: list[tuple[str, list]]) -> list:
    results = []
    for step, (method, params) in enumerate(calls):
        try:
            op = methods.parse_write(engine, method, params)
            results.append(methods.apply_write(engine, op, T + step))
        except CoreError as exc:
            results.append(exc.as_json())
    return results


def reference_rows(messages: list[tuple[str, object]]) -> list[tuple[str, bytes]]:
    """History rows as the dict + json.dumps code produced them."""

    def dumps(value: object) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()

    rows = []
    for topic, message in messages:
        if topic == "balance_history":
            t, _user, asset, business, change, balance, detail = message
            rows.append(("h_balance", dumps({"time": t, "asset": asset, "business": business,
                                             "change": change, "balance": balance,
                                             "detail": detail})))
        elif topic == "orders" and message["event"] == EVENT_FINISH:
            o = message["order"]
            value = dumps({"id": o["id"], "ctime": o["ctime"], "ftime": o["mtime"],
                           "user": o["user"], "market": o["market"], "source": o["source"],
                           "type": o["type"], "side": o["side"], "price": o["price"],
                           "amount": o["amount"], "taker_fee": o["taker_fee"],
                           "maker_fee": o["maker_fee"], "deal_stock": o["deal_stock"],
                           "deal_money": o["deal_money"], "deal_fee": o["deal_fee"]})
            rows += [("h_order", b""), ("h_detail", value)]
        elif topic == "deals":
            (t, market, ask_id, bid_id, ask_user, bid_user, price, amount, ask_fee, bid_fee,
             taker_side, deal_id) = message[:12]
            price, amount = fmt(Decimal(price)), fmt(Decimal(amount))
            with localcontext(CTX):
                money = fmt(Decimal(price) * Decimal(amount))
            sides = ((ASK, ask_id, ask_user, 1 if taker_side == BID else 2, ask_fee, bid_id),
                     (BID, bid_id, bid_user, 1 if taker_side == ASK else 2, bid_fee, ask_id))
            for side, _order_id, user, role, fee, other in sides:
                record = {"time": t, "user": user, "id": deal_id, "role": role, "price": price,
                          "amount": amount, "deal": money, "fee": fmt(Decimal(fee)),
                          "deal_order_id": other}
                rows.append(("h_odeal", dumps(record)))
                rows.append(("h_udeal", dumps(dict(record, side=side, market=market))))
            rows.append(("h_deal", dumps(message)))
    return rows


def test_history_rows_are_the_bytes_json_dumps_wrote():
    engine = Engine(core_config())
    bus = EventBus()
    writer = HistoryWriter(bus)
    messages: list[tuple[str, object]] = []
    for topic in ("balance_history", "orders", "deals"):
        bus.subscribe(topic, lambda message, topic=topic: messages.append((topic, message)))
    engine.attach(bus)
    run(engine, mix(3, 400))
    rows = writer.take()
    assert engine.deal_id > 20, "the mix should trade"
    for name, items in zip(HISTORY_DBS, rows, strict=True):
        assert [value for _key, value in items] == \
            [value for table, value in reference_rows(messages) if table == name], name
        if name != "h_order":  # an index entry: empty, the record is the h_detail row
            for _key, value in items:
                json.loads(value)  # and every row is valid JSON


def test_log_entries_are_the_bytes_json_dumps_wrote():
    ops = [("put_limit", (5, "BTCUSDT", 1, Decimal("0.05000000"), Decimal("10000.00"),
                          Decimal("0.0020"), Decimal("0.0010"), "bé\"nch")),
           ("update_balance", (1, "BTC", "deposit", 7, Decimal("-1.5E-8"),
                               {"a": [1, 2.5, None, True], "é": "x"})),
           ("cancel", (1, "BTCUSDT", 123456789012)),
           ("put_market", (2, "BTCUSDT", 2, Decimal("500"), Decimal("0"), ""))]
    for op in ops:
        for t in (T, 1.0, 1_700_000_000, 0.1 + 0.2):
            name, args = op
            plain = [name, t, [str(a) if isinstance(a, Decimal) else a for a in args]]
            assert methods.encode_log_entry(op, t) == \
                json.dumps(plain, separators=(",", ":")).encode()


def test_parse_cache_returns_what_a_fresh_parse_returns():
    for text, prec in [("1.239", 2), ("1.239", 2), ("-0.5", 8), ("1e3", 0), ("1e3", 0),
                       ("nan", 2), ("1_0", 2), (" 1", 2)]:
        first, second = parse(text, prec), parse(text, prec)
        assert first == second and str(first) == str(second)
    assert str(parse("1.239", 2)) == "1.23" and str(parse("1e3", 0)) == "1E+3"
    assert parse("nan", 2) is None and parse("1_0", 2) is None
    assert parse(["1"], 2) is None and parse(1, 2) is None  # unhashable / non-string


def test_engine_builds_only_subscribed_events_and_follows_new_subscriptions():
    engine = Engine(core_config())
    bus = EventBus()
    finished: list[dict] = []
    bus.subscribe("orders", finished.append, events=[EVENT_FINISH])
    engine.attach(bus)
    assert (engine.emit_put, engine.emit_update, engine.emit_finish) == (False, False, True)
    assert not (engine.emit_deals or engine.emit_balances or engine.emit_history)
    run(engine, mix(5, 200))
    assert finished and {m["event"] for m in finished} == {EVENT_FINISH}
    deals: list[list] = []
    bus.subscribe("deals", deals.append)
    assert engine.emit_deals
    run(engine, [("order.put_limit", [1, "BTCUSDT", ASK, "0.5", "1", "0", "0", "x"]),
                 ("order.put_market", [2, "BTCUSDT", BID, "300", "0", "x"])])
    assert deals
    with pytest.raises(ValueError):
        bus.subscribe("deals", deals.append, events=[EVENT_FINISH])


def test_same_results_with_and_without_subscribers():
    quiet, busy = Engine(core_config()), Engine(core_config())
    busy.sink = lambda topic, message: None
    calls = mix(7, 300)
    assert run(quiet, calls) == run(busy, calls)
    assert Engine.encode(quiet.capture()) == Engine.encode(busy.capture())


def test_deal_messages_print_decimals_unstripped_like_me_message_c():
    engine = Engine(core_config())
    messages: list = []
    engine.sink = lambda topic, message: messages.append((topic, message))
    run(engine, [("balance.update", [1, "BTC", "deposit", 1, "1", {}]),
                 ("balance.update", [2, "USDT", "deposit", 1, "100000", {}]),
                 ("order.put_limit", [1, "BTCUSDT", ASK, "0.5", "8000", "0", "0", "x"]),
                 ("order.put_limit", [2, "BTCUSDT", BID, "0.25", "8000.5", "0.002", "0", "x"])])
    deal = next(m for topic, m in messages if topic == "deals")
    assert deal[6:10] == ["8000.00", "0.25000000", "0e-14", "0.000500000000"]
    balances = [m for topic, m in messages if topic == "balances"]
    assert balances[0][4] == "1.00000000"  # change at prec_show, mpd_to_sci


def test_order_param_cache_gives_what_the_checks_give_and_never_keeps_a_refusal():
    engine = Engine(core_config())
    engine.update_balance(T, 1, "BTC", "deposit", 1, Decimal("100"), {})
    texts = ["0.05", "0.050", "1e-3", "0.000000001", "0", "-1", "nan", "1e40", " 1", "", "1.5"]
    for text in texts * 2:  # the second round is answered from the cache
        params = [1, "BTCUSDT", ASK, text, "10000.129", text, "0", "web"]
        try:
            op = methods.parse_write(engine, "order.put_limit", params)
        except CoreError as exc:
            outcome: object = exc.code
        else:
            outcome = [str(a) for a in op[1][3:6]]
        fresh = Engine(core_config())  # no cache yet
        try:
            expected: object = [str(a) for a in
                                methods.parse_write(fresh, "order.put_limit", params)[1][3:6]]
        except CoreError as exc:
            expected = exc.code
        assert outcome == expected, text
    assert methods.parse_write(engine, "order.put_limit",
                               [1, "BTCUSDT", ASK, "0.050", "10000.129", "0", "0", "w"])[1][3:5] \
        == (Decimal("0.05000000"), Decimal("10000.12"))
    with pytest.raises(CoreError):
        methods.parse_write(engine, "order.put_limit", [1, "NOPE", ASK, "1", "1", "0", "0", ""])
    with pytest.raises(CoreError):  # 31 bytes, and a non-ASCII source over the byte limit
        methods.parse_write(engine, "order.put_limit", [1, "BTCUSDT", ASK, "1", "1", "0", "0",
                                                        "x" * 31])
    with pytest.raises(CoreError):
        methods.parse_write(engine, "order.put_limit", [1, "BTCUSDT", ASK, "1", "1", "0", "0",
                                                        "é" * 16])


def test_shared_values_print_as_without_their_memo(monkeypatch):
    from common import decimals

    monkeypatch.setattr(decimals, "PRINTED_MAX", 8)
    rng = random.Random(4)
    # equal values, different texts: the memo goes by identity, not by value
    values = [Decimal("1E-8"), Decimal("1.00E-8"), Decimal("0.00000001"), Decimal("100"),
              Decimal("1E+2"), Decimal("10.500"), Decimal("-0"), Decimal("0E-8")]
    for value in values * 3:  # the later rounds partly from the memo, partly after clears
        assert decimals.fmt_shared(value) == fmt(value)
    for _ in range(50):  # short-lived values whose ids are reused
        value = Decimal(rng.choice(["1.50", "2E-7", "3.000", "4"]))
        assert decimals.fmt_shared(value) == fmt(value)


def test_info_is_a_new_dict_each_time_and_follows_every_fill():
    engine = Engine(core_config())
    engine.update_balance(T, 1, "BTC", "deposit", 1, Decimal("10"), {})
    engine.update_balance(T, 2, "USDT", "deposit", 1, Decimal("100000"), {})
    maker = engine.put_limit(T, 1, "BTCUSDT", ASK, Decimal("1"), Decimal("8000"), ZERO_FEE,
                             ZERO_FEE, "x")
    first, second = maker.info(), maker.info()
    assert first == second and first is not second
    first["left"] = "changed by a caller"
    assert maker.info()["left"] == "1"
    engine.put_limit(T + 5, 2, "BTCUSDT", BID, Decimal("0.25"), Decimal("8000"), ZERO_FEE,
                     ZERO_FEE, "x")
    after = maker.info()
    assert (after["left"], after["deal_stock"], after["mtime"]) == ("0.75", "0.25", T + 5)
    engine.put_limit(T + 5, 2, "BTCUSDT", BID, Decimal("0.25"), Decimal("8000"), ZERO_FEE,
                     ZERO_FEE, "x")  # same time, new fill
    assert maker.info()["left"] == "0.5"


def test_balance_query_truncates_in_any_decimal_context():
    engine = Engine(core_config())
    engine.update_balance(T, 1, "BTC", "deposit", 1, Decimal("1"), {})
    engine.update_balance(T, 1, "BTC", "trade", 2, Decimal("-0.000000004"), {})  # 0.999999996
    with localcontext() as ctx:
        ctx.rounding = ROUND_HALF_EVEN  # the default context's: it would show 1
        assert methods.balance_query(engine, [1, "BTC"])["BTC"]["available"] == "0.99999999"
