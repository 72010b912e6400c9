"""Who may call the admin API (issue 14): the Host check against DNS rebinding, and the token.

Before: any Host header was answered, so a web page whose name resolves to 127.0.0.1 could read
/api/backup from an operator's browser, and there was no authentication at all.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from teller.access import TOKEN_ENV
from teller.config import ConfigError
from tests.support.rawhttp import exchange, hostport, request_bytes
from tests.support.service import (
    TellerHarness,
    assert_api_error,
    start_teller,
    write_address_files,
    write_config,
)

TOKEN = "s3cret-admin-token-0123456789"


def _get(base: str, path: str, host: str, headers: dict[str, str] | None = None):
    return exchange(base, request_bytes("GET", path, host, headers), timeout=5)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:7711", "127.0.0.1.nip.io"])
def test_a_foreign_host_header_is_refused(teller: TellerHarness, host: str) -> None:
    for base, path in [(teller.admin, "/api/backup"), (teller.admin, "/api/deposits"),
                       (teller.dummy, "/dummy/sender/broadcasts")]:
        answer = _get(base, path, host)
        assert (answer.status, answer.body) == (403, b"Host not allowed\n"), (base, answer)


def test_the_bound_and_local_names_are_accepted(teller: TellerHarness) -> None:
    _, port = hostport(teller.admin)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST", f"[::1]:{port}"):
        assert _get(teller.admin, "/api/deposits", host).status == 200, host


def test_allowed_hosts_replace_the_defaults(tmp_path: Path) -> None:
    t = start_teller(tmp_path, '[admin_panel]\nallowed_hosts = ["teller.internal"]\n')
    try:
        assert _get(t.admin, "/api/deposits", "teller.internal:7711").status == 200
        assert _get(t.admin, "/api/deposits", "127.0.0.1").status == 403
    finally:
        t.close()


def test_token_file_requires_the_bearer_token(tmp_path: Path) -> None:
    (tmp_path / "admin.token").write_text(TOKEN + "\n")
    t = start_teller(tmp_path, '[admin_panel]\ntoken_file = "admin.token"\n')
    try:
        r = t.http.get(t.admin + "/api/deposits", timeout=5)
        assert_api_error(r, 401, "admin token required")
        assert r.headers["WWW-Authenticate"] == "Bearer"
        r = t.http.get(t.admin + "/api/backup", timeout=5,
                       headers={"Authorization": "Bearer wrong"})
        assert_api_error(r, 401, "invalid admin token")
        r = t.http.get(t.admin + "/api/deposits", timeout=5,
                       headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200, r.text
        assert t.http.get(t.public + "/api/health", timeout=5).status_code == 200  # public: open
    finally:
        t.close()


def test_the_environment_token_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    t = start_teller(tmp_path)
    try:
        assert t.http.get(t.admin + "/api/deposits", timeout=5).status_code == 401
        r = t.http.get(t.admin + "/api/deposits", timeout=5,
                       headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200
    finally:
        t.close()


def test_off_loopback_the_token_is_required_and_a_warning_given(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    write_address_files(tmp_path)
    config = write_config(tmp_path, '[admin_panel]\nhost = "0.0.0.0:0"\n'
                                    'allowed_hosts = ["127.0.0.1"]\n')
    with pytest.raises(ConfigError) as refused:
        TellerHarness(tmp_path, config).start()
    assert any(p.startswith("admin_panel.token_file: required when admin_panel.host "
                            "(0.0.0.0:0) is not a loopback address")
               for p in refused.value.problems), refused.value.problems
    (tmp_path / "short.token").write_text("abc")
    write_config(tmp_path, '[admin_panel]\nhost = "0.0.0.0:0"\ntoken_file = "short.token"\n')
    with pytest.raises(ConfigError, match="at least 16 characters"):
        TellerHarness(tmp_path, config).start()
    (tmp_path / "admin.token").write_text(TOKEN)
    write_config(tmp_path, '[admin_panel]\nhost = "0.0.0.0:0"\ntoken_file = "admin.token"\n'
                           'allowed_hosts = ["127.0.0.1"]\n')
    with caplog.at_level(logging.WARNING, logger="teller.access"):
        t = TellerHarness(tmp_path, config).start()
    try:
        assert any("not loopback" in r.getMessage() and "TLS" in r.getMessage()
                   for r in caplog.records)
        _, port = hostport(t.admin)
        url = f"http://127.0.0.1:{port}"
        assert t.http.get(url + "/api/deposits", timeout=5).status_code == 401
        r = t.http.get(url + "/api/deposits", headers={"Authorization": f"Bearer {TOKEN}"},
                       timeout=5)
        assert r.status_code == 200
    finally:
        t.close()
