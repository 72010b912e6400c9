"""The error every exchange-core entry point raises: viabtc's numeric codes and messages."""

from __future__ import annotations

from typing import Any


class CoreError(Exception):
    """A JSON-RPC error reply `{"code": code, "message": message}`."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    detail: str  # set by invalid(): what was wrong, for the logs only

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


def invalid(detail: str = "") -> CoreError:
    """Code 1; the message stays viabtc's, `detail` only reaches the logs."""
    err = CoreError(1, "invalid argument")
    err.detail = detail
    return err


INTERNAL = (2, "internal error")
UNAVAILABLE = (3, "service unavailable")
METHOD_NOT_FOUND = (4, "method not found")
TIMEOUT = (5, "service timeout")
