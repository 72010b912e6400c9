"""Server-to-client WebSocket text frames, built once per message and written as bytes.

A push goes to many connections unchanged: server frames are unmasked and the gateway runs
without extensions (no permessage-deflate), so the frame bytes are the same for every
connection (RFC 6455 §5.2). Building the frame once and writing it to each transport is what
makes a 1,000-subscriber fan-out cheap; the library's per-message `send` costs far more per
connection. Control frames (ping, pong, close) stay with the library, which writes whole
frames from the same event loop, so frames never interleave.
"""

from __future__ import annotations


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked text frame carrying `payload` (UTF-8 JSON)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + payload
