"""host:port splitting, and the loopback test behind every "local callers only" rule: the
teller's admin token, the gateway's GET /metrics and its fee warning (their wiring runs in
the admin hardening tests and the standalone gateway's restart test)."""

from __future__ import annotations

from common.netaddr import is_loopback, split_hostport


def test_loopback_hosts_and_peers_are_told_from_the_rest():
    for ip in ("127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1", "localhost"):
        assert is_loopback(ip), ip
    for ip in ("192.0.2.7", "::ffff:192.0.2.7", "0.0.0.0", "::", "fd00::2", "?", ""):
        assert not is_loopback(ip), ip


def test_host_and_port_are_split_one_way_for_every_server():
    assert split_hostport("127.0.0.1:8090") == ("127.0.0.1", 8090)
    assert split_hostport("[::1]:7711") == ("::1", 7711)
    assert split_hostport("0.0.0.0:0") == ("0.0.0.0", 0)
    assert split_hostport(":7711") == ("127.0.0.1", 7711)
