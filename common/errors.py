"""The exchange core's "invalid argument": raised by market data, answered by the RPC layer.

`InvalidArgument` maps to viabtc error code 1 ("invalid argument"): the JSON-RPC layer turns it into
`{"code": 1, "message": ...}`. Raised before any state changes, so a rejected call changes nothing.
"""

from __future__ import annotations


class InvalidArgument(ValueError):
    """A parameter is out of range, malformed, or names an unknown market (viabtc code 1)."""

    code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
