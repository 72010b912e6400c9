"""depth_diff: the incremental `depth.update` payload between two order.depth snapshots.

Mirrors accessws `get_depth_diff` (aw_depth.c): walk both sides in book order (asks ascending,
bids descending); a level whose amount changed or that is new is sent as in the new snapshot, a
level that disappeared is sent with amount "0". A level that merely fell below the bottom of a
full `limit`-sized window is not reported as removed. A side with no change is left out; no change
at all gives {}.
"""

from __future__ import annotations

from common.decimals import CTX
from common.errors import InvalidArgument


def _levels(book: dict, side: str) -> list:
    levels = book.get(side, [])
    if not isinstance(levels, list):
        raise InvalidArgument(f"depth {side} must be a list of [price, amount]")
    parsed = []
    for level in levels:
        try:
            price, amount = level
            parsed.append((CTX.create_decimal(price), CTX.create_decimal(amount), level))
        except (TypeError, ValueError, ArithmeticError):
            raise InvalidArgument(f"bad depth level in {side}: {level!r}") from None
    return parsed


def _side_diff(old: list, new: list, sign: int, limit: int | None) -> list:
    diff: list = []
    i = j = 0
    while i < len(old) and j < len(new):
        price1, amount1, level1 = old[i]
        price2, amount2, level2 = new[j]
        cmp = ((price1 > price2) - (price1 < price2)) * sign
        if cmp == 0:
            i += 1
            j += 1
            if amount1 != amount2:
                diff.append(list(level2))
        elif cmp > 0:  # new level ahead of the old one in book order
            j += 1
            diff.append(list(level2))
        else:  # old level gone
            i += 1
            diff.append([level1[0], "0"])
    if limit is None or len(new) < limit:
        diff.extend([level[2][0], "0"] for level in old[i:])
    diff.extend(list(level[2]) for level in new[j:])
    return diff


def depth_diff(old: dict, new: dict, limit: int | None = None) -> dict:
    """Changed/new levels and removed levels (amount "0") from `old` to `new`, per side.

    `limit` is the subscription's depth limit: with a full new window, old levels past its end
    are outside the window rather than removed (as accessws does). None treats both as complete.
    """
    result = {}
    for side, sign in (("asks", 1), ("bids", -1)):
        changes = _side_diff(_levels(old, side), _levels(new, side), sign, limit)
        if changes:
            result[side] = changes
    return result
