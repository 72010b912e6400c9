"""wsgateway — the exchange core's WebSocket push service (viabtc accessws + CONNMIX dialects).

It depends on the core only through two interfaces: a `Core` (async queries and order entry,
in-process over `CoreService.submit` or remote over HTTP JSON-RPC) and the core's durable event
stream (batches of `(topic, message)` in viabtc's Kafka shapes, handed over once on disk). The
core never imports this package; the composition (`teller core run`) wires them together.
"""

from wsgateway.server import EVENT_TOPICS, Gateway, in_process, standalone

__all__ = ["EVENT_TOPICS", "Gateway", "in_process", "standalone"]
