"""market.status and market.status_today, from the base candle series.

Both read the trailing window the way marketprice does: 1 s candles from `now - period` up to the
next whole minute, then 1 min candles up to `now`. status_today takes open/high/low/last from
today's local-midnight day candle (or, with no trade today, the previous close for all four) but
volume/deal over the rolling 24 h, exactly as viabtc does.

Deliberate difference: a window without trades reports open = close = high = low = the previous
close (volume "0"), like an empty kline bucket, instead of viabtc's "0" prices; "0" only when the
market never traded before the window.
"""

from __future__ import annotations

from decimal import Decimal

from common.decimals import fmt
from marketdata.candle import Candle
from marketdata.feed import MarketFeed
from marketdata.localtime import day_start


def window(feed: MarketFeed, start: int, now: int) -> Candle | None:
    """Merge of the candles traded from second `start` up to and including second `now`, at
    1 s then 1 min resolution.

    The current minute's candle counts whole, as it does in viabtc; viabtc's loop stops before
    a candle keyed `now`, though, so in the first second of each minute the deals of that
    second were missing. Here they count like those of any other second.
    """
    start_min = start - start % 60 + 60
    head = feed.sec.aggregate(start, start_min)
    tail = feed.min.aggregate(start_min, now + 1)
    if head is None:
        return tail
    if tail is not None:
        head.merge(tail)
    return head


def _flat(price: Decimal | None) -> str:
    return "0" if price is None else fmt(price)


def status(feed: MarketFeed, period: int, now: int) -> dict:
    """market.status over the trailing `period` seconds."""
    start = now - period
    candle = window(feed, start, now)
    last = _flat(feed.last)
    if candle is None:
        flat = _flat(feed.close_before(start))
        return {"period": period, "last": last, "open": flat, "close": flat, "high": flat,
                "low": flat, "volume": "0", "deal": "0"}
    return {"period": period, "last": last, "open": fmt(candle.open), "close": fmt(candle.close),
            "high": fmt(candle.high), "low": fmt(candle.low), "volume": fmt(candle.volume),
            "deal": fmt(candle.deal)}


def status_today(feed: MarketFeed, now: int) -> dict:
    """market.status_today: today's day candle (local midnight), rolling 24 h volume and deal."""
    today = day_start(now)
    candle = feed.day.data.get(today)
    if candle is not None:
        result = {"open": fmt(candle.open), "last": fmt(candle.close), "high": fmt(candle.high),
                  "low": fmt(candle.low)}
    else:
        flat = _flat(feed.close_before(today))
        result = {"open": flat, "last": flat, "high": flat, "low": flat}
    rolling = window(feed, now - 86400, now)
    result["volume"] = "0" if rolling is None else fmt(rolling.volume)
    result["deal"] = "0" if rolling is None else fmt(rolling.deal)
    return result
