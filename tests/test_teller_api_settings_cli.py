"""`teller admin get/set/reset/audit` against a running teller's admin API and a data dir."""

from __future__ import annotations

from click.testing import CliRunner

from teller.cli import cli
from tests.support.service import start_teller
from tests.support.webhook import WebhookReceiver


def admin(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, ["admin", *args], env=env, catch_exceptions=False)


def test_cli_against_the_admin_api(tmp_path):
    t = start_teller(tmp_path)
    try:
        url = ["--url", t.admin]
        result = admin("set", "sky_btc_exchange_rate", "750", *url)
        assert result.exit_code == 0, result.output
        assert result.output == "sky_exchanger.sky_btc_exchange_rate: 500 -> 750\n"
        result = admin("get", "sky_btc_exchange_rate", *url)
        assert result.output.startswith("sky_exchanger.sky_btc_exchange_rate = 750  (runtime; "
                                        "file: 500; set by admin API 127.0.0.1 (cli ")
        result = admin("set", "max_decimals", "7", *url)
        assert result.exit_code == 1
        assert "400: Invalid setting: sky_exchanger.max_decimals: must be between 0 and 3" \
            in result.output
        result = admin("get", *url)
        assert "teller.bind_enabled = true  (file)" in result.output
        assert admin("reset", "sky_btc_exchange_rate", *url).output == \
            "sky_exchanger.sky_btc_exchange_rate: 750 -> 500 (file)\n"
        audit = admin("audit", *url).output.splitlines()
        assert len(audit) == 2 and " set sky_exchanger.sky_btc_exchange_rate: 500 -> 750" \
            in audit[0] and "reset" in audit[1]
        t.stop()
        down = admin("get", *url)
        assert down.exit_code == 1 and "cannot reach the admin API" in down.output
    finally:
        t.close()


def test_cli_on_a_stopped_tellers_data_dir(tmp_path):
    t = start_teller(tmp_path)
    local = ["-d", str(t.data_dir), "-c", str(t.config_path)]
    try:
        locked = admin("get", *local)  # the running teller holds the data dir
        assert locked.exit_code == 1 and "drop -d to use its admin API" in locked.output
        t.stop()
        typo = admin("get", "-d", str(tmp_path / "nope"), "-c", str(t.config_path))
        assert typo.exit_code == 1 and "holds no teller data" in typo.output
        assert not (tmp_path / "nope").exists()
        result = admin("set", "bind_enabled", "false", *local)
        assert result.output == "teller.bind_enabled: true -> false\n", result.output
        bad = admin("set", "sky_btc_exchange_rate", "1/0", *local)
        assert bad.exit_code == 1 and "sky_exchanger.sky_btc_exchange_rate:" in bad.output
        t.start()
        config = t.get(t.public, "/api/config").json()
        assert config["enabled"] is False
        assert "set_by" not in config["settings"]["teller.bind_enabled"]  # not for the public
        admin_view = t.get(t.admin, "/api/settings").json()["settings"]
        assert admin_view["teller.bind_enabled"]["set_by"].endswith("(data dir)")
    finally:
        t.close()


def test_cli_sends_the_admin_token(tmp_path):
    receiver = WebhookReceiver()
    try:
        admin("set", "bind_enabled", "false", "--url", receiver.url.removesuffix("/hook"),
              env={"TELLER_ADMIN_TOKEN": "from-env"})
        token = tmp_path / "token"
        token.write_text("from-file\n")
        admin("reset", "bind_enabled", "--url", receiver.url.removesuffix("/hook"),
              "--token-file", str(token), env={"TELLER_ADMIN_TOKEN": "from-env"})
        auth = [r["headers"]["Authorization"] for r in receiver.requests]
        assert auth == ["Bearer from-env", "Bearer from-file"]
        assert receiver.requests[0]["json"] == {"key": "bind_enabled", "value": "false"}
    finally:
        receiver.close()


def test_admin_help_lists_its_commands():
    result = admin("--help")
    for command in ("get", "set", "reset", "audit"):
        assert f"  {command} " in result.output
    assert "TELLER_ADMIN_TOKEN" in admin("set", "--help").output
