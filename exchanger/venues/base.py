"""The buy-venue interface (issue 13): the types every venue and the exchanger share.

Text fixed in notes/venue-interface.md. Amounts are Decimal in whole units of the asset, never
float. A venue call does network I/O: it is NEVER made inside an LMDB transaction. The
processor persists the intent (client_id, attempt) BEFORE calling `place`, and on restart
calls `find(intent)` before ever placing again.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True)
class BuyIntent:
    deposit_key: str        # "BTC/<txid>:<n>"
    coin: str               # deposit coin, e.g. "BTC"
    market: str             # venue market ("SKYBTC" on the core, "SKY/BTC" for ccxt)
    spend: Decimal          # coin amount to spend (whole coins)
    client_id: str          # "teller-<deposit seq>-<attempt>": the idempotency key
    attempt: int

@dataclass(frozen=True)
class OrderState:
    order_id: str
    status: str             # "open" | "closed" | "canceled" | "rejected"
    final: bool             # no more fills will come
    bought: Decimal         # token amount received, AFTER fees
    fee: Decimal            # fee paid, in the token
    spent: Decimal          # coin amount actually spent
    price: Decimal          # average price (coin per token), 0 if no fill
    original: str           # the venue's raw JSON answer (for the record's `order.original`)

class VenueError(Exception): ...          # base
class VenueUnavailable(VenueError): ...   # network error, timeout, 5xx, rate limit (429): back off, retry, visible in /api/health
class VenueWait(VenueError): ...          # empty book / insufficient venue balance: wait like sold out, never fail the deposit, never block others
class VenueRejected(VenueError): ...      # the venue refused the order and NOTHING was filled: may retry with attempt + 1
class TooSmall(VenueError): ...           # below the venue's minimum amount/cost/precision: permanent -> done with error

class Venue(Protocol):
    name: str                                   # "core", "binance", ... (-> passthrough.exchange_name)
    def prepare(self) -> None: ...              # e.g. ccxt load_markets; may raise VenueUnavailable
    def check(self, intent: BuyIntent) -> None: ...        # raise TooSmall before ordering
    def find(self, intent: BuyIntent) -> OrderState | None: ...  # the order placed under intent.client_id, if any (crash recovery)
    def place(self, intent: BuyIntent) -> OrderState: ...  # place ONE market buy spending intent.spend; must be safe to call again with the same client_id (return the existing order instead of a second one)
    def poll(self, intent: BuyIntent, order_id: str) -> OrderState: ...
