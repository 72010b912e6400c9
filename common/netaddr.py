"""Listening addresses: `host:port` split one way for every server, and whether a host or peer
is loopback, the one test behind every "local callers only" rule (the teller's admin token,
the gateway's /metrics and its fee warning)."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses, also an IPv4 one as a dual-stack socket shows
    its peer (::ffff:127.0.0.1, which `ipaddress` alone calls not loopback); 0.0.0.0, ::,
    other names and garbage are not."""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def split_hostport(addr: str) -> tuple[str, int]:
    """`host:port` (IPv6 in brackets: `[::1]:8090`) -> (host without brackets, port); an empty
    host is 127.0.0.1. The config checks have already refused a port that is not a number."""
    host, _, port = addr.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)
