"""The scanner's error family: what a node did wrong, in words the rest of teller understands.

python-bitcoinrpc and web3 raise their own exceptions (``JSONRPCException``, ``OSError``,
``http.client`` errors, ``requests`` errors, ``Web3RPCError``, ...). The node adapters in this
package translate them here, at the edge, so nothing above ``scanner/`` imports or catches a
client library's exception (style anchor 4).
"""

from __future__ import annotations


class ScannerError(Exception):
    """Base of every error a scanner raises."""


class NodeUnavailable(ScannerError):
    """The node cannot be asked right now (down, refusing connections, timing out, warming
    up, answering non-JSON). The scanner backs off and keeps its cursor."""


class NodeRejected(ScannerError):
    """The node answered a request with an error (``code``, ``message``)."""

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(f"node error {code}: {message}")
        self.code = code
        self.message = message


class ChainMoved(ScannerError):
    """A block asked for by height vanished while being fetched (a reorg or a shorter chain
    under our feet). Not a node failure: the scanner simply polls again."""


class ReorgTooDeep(ScannerError):
    """No stored recent block hash is on the node's chain any more: the fork point is older
    than the hashes the scanner keeps. An operator must look (notice=WATCH)."""
