"""Fees never leave the books (issue 14): per asset, after a long random run,

    Σ balances (available + frozen) + Σ fees = Σ deposits − Σ withdrawals

exactly, in Decimal. The fees are summed from the deal events (what the core reports), and on
SKYBTC / SKYETH stock_prec + money_prec + fee_prec = 18 exceeds the money's prec_save (16 for
BTC), where viabtc's arithmetic debited more than the fee it reported (5.5e-17 BTC on one fill).
"""

from __future__ import annotations

import random
from collections import defaultdict
from decimal import Decimal

from matchengine.engine import ASK, BID, Engine, EngineError
from tests.support.core import core_config

USERS = range(1, 9)
OPERATIONS = 4000


def test_balances_plus_fees_equal_net_deposits_after_a_random_run() -> None:
    config = core_config()
    markets = {m.name: m for m in config.markets}
    fees: defaultdict[str, Decimal] = defaultdict(Decimal)

    def sink(topic: str, message: list) -> None:
        if topic == "deals":
            market = markets[message[1]]
            fees[market.money] += Decimal(message[8])  # ask_fee, paid in money
            fees[market.stock] += Decimal(message[9])  # bid_fee, paid in stock

    engine = Engine(config, sink)
    rng = random.Random(14)
    net: defaultdict[str, Decimal] = defaultdict(Decimal)
    business_id = 0

    def change(user: int, asset: str, amount: Decimal) -> None:
        nonlocal business_id
        business_id += 1
        try:
            engine.update_balance(1.0, user, asset, "deposit" if amount > 0 else "withdraw",
                                  business_id, amount, {})
        except EngineError:
            return  # a withdrawal beyond the balance: refused, nothing changed
        net[asset] += amount

    for user in USERS:
        for asset in ("BTC", "ETH", "SKY", "USDT"):
            change(user, asset, Decimal(rng.randint(10**4, 10**7)).scaleb(-3))
    t = 1.0
    fills = 0
    for _ in range(OPERATIONS):
        t += 0.001
        market = markets[rng.choice(["SKYBTC", "SKYETH", "BTCUSDT", "ETHUSDT"])]
        user = rng.choice(USERS)
        roll = rng.random()
        side = rng.choice([ASK, BID])
        # every decimal place of the market used: that is where the dust came from
        unit = Decimal(1).scaleb(-market.stock_prec)
        smallest = int(Decimal(market.min_amount) / unit)
        amount = Decimal(rng.randint(smallest, smallest * 1000)) * unit
        rate = Decimal(rng.randint(0, 99)).scaleb(-market.fee_prec)
        try:
            if roll < 0.7:
                base = {"SKYBTC": "0.00001", "SKYETH": "0.0003", "BTCUSDT": "30000",
                        "ETHUSDT": "2000"}[market.name]
                price = (Decimal(base) * Decimal(rng.randint(900, 1100)).scaleb(-3)
                         ).quantize(Decimal(1).scaleb(-market.money_prec))
                engine.put_limit(t, user, market.name, side, amount, price, rate,
                                 Decimal(rng.randint(0, 99)).scaleb(-market.fee_prec), "")
            elif roll < 0.8:
                engine.put_market(t, user, market.name, side, amount, rate, "")
            elif roll < 0.92:
                pending = list(engine.markets[market.name].orders.values())
                if pending:
                    order = rng.choice(pending)
                    engine.cancel(t, order.user, market.name, order.id)
            else:
                asset = rng.choice(["BTC", "ETH", "SKY", "USDT"])
                sign = 1 if rng.random() < 0.5 else -1
                change(user, asset, sign * Decimal(rng.randint(1, 10**6)).scaleb(-6))
        except EngineError:
            pass  # balance not enough, amount too small...: refused, nothing changed
        fills = engine.deal_id
    assert fills > 500, "the run should trade a lot"
    for asset in ("BTC", "ETH", "SKY", "USDT"):
        held = sum((v for (_, a), v in engine.available.items() if a == asset), Decimal(0))
        held += sum((v for (_, a), v in engine.frozen.items() if a == asset), Decimal(0))
        assert held + fees[asset] == net[asset], (asset, held + fees[asset] - net[asset])
    assert fees["BTC"] > 0 and fees["SKY"] > 0
