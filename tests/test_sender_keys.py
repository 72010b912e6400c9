"""Payout secrets as the factory loads them: bad files give a ``ConfigError`` naming the file,
never a traceback, and never the secret. No node is needed: secrets are read before any sender
talks to one."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

from common.storage import Storage
from teller.backends import create_sender
from teller.config import ConfigError, parse_config

SKY_CONFIG = """
[sender]
backend = "skycoin"
[sky_rpc]
address = "127.0.0.1:6420"
wallet_id = "hot.wlt"
password_file = "{password_file}"
[btc_scanner]
enabled = false
"""

ERC20_CONFIG = """
[dummy]
sender = false
[sender]
backend = "erc20"
[erc20_sender]
url = "http://127.0.0.1:1"
token = "0x{token}"
key_file = "{key_file}"
password_file = "{password_file}"
[btc_scanner]
enabled = false
""".replace("{token}", "12" * 20)

KEY = "0x" + "4c" * 32


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    st = Storage(tmp_path / "data")
    yield st
    st.close()


def secret_file(path: Path, content: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(content)
    path.chmod(mode)
    return path


def test_a_password_file_that_is_not_text_is_a_config_error(storage, tmp_path) -> None:
    pw = secret_file(tmp_path / "pw", b"\xff\xfe\x00secret\x80")
    with pytest.raises(ConfigError, match="is not UTF-8 text") as exc:
        create_sender(parse_config(SKY_CONFIG.format(password_file=pw)), storage)
    assert "secret" not in str(exc.value)


def test_an_old_keystore_version_is_a_config_error(storage, tmp_path) -> None:
    keystore = Account.encrypt(KEY, "pw", kdf="pbkdf2", iterations=16)
    key_file = secret_file(tmp_path / "key.json",
                           json.dumps({**keystore, "version": 1}).encode())
    pw = secret_file(tmp_path / "pw", b"pw\n")
    with pytest.raises(ConfigError, match="keystore version"):
        create_sender(parse_config(ERC20_CONFIG.format(key_file=key_file, password_file=pw)),
                      storage)


def test_a_secret_file_others_may_read_is_loaded_with_a_warning(storage, tmp_path,
                                                                caplog) -> None:
    open_pw = secret_file(tmp_path / "open-pw", b"hunter2\n", mode=0o644)
    closed_pw = secret_file(tmp_path / "closed-pw", b"hunter2\n")
    with caplog.at_level(logging.WARNING, logger="sender.keys"):
        sender = create_sender(parse_config(SKY_CONFIG.format(password_file=closed_pw)),
                               storage)
        assert sender._password == "hunter2"
        assert caplog.records == []
        sender = create_sender(parse_config(SKY_CONFIG.format(password_file=open_pw)), storage)
        assert sender._password == "hunter2"
    [record] = caplog.records
    assert str(open_pw) in record.getMessage() and "644" in record.getMessage()
    assert "hunter2" not in caplog.text
