"""Loading payout secrets: the ERC-20 hot key and the Skycoin wallet password.

Secrets come from a file or an environment variable, never from the config file itself, and
never reach a log line or an exception message: errors name the *source* (path, variable) and
what is wrong with it, not the content. ``SecretError`` carries one operator-readable problem;
``sender.factory`` gathers them into one ``ConfigError``. A secret file that other users may
read is loaded, with a warning naming the file and its mode.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

log = logging.getLogger(__name__)

_HEX_KEY = re.compile(r"(0x)?[0-9a-fA-F]{64}")


class SecretError(ValueError):
    """A secret that cannot be loaded; the message never contains the secret."""


def read_secret_file(path: Path, what: str) -> str:
    """The file's content without its trailing newline (an empty file is an error)."""
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode & 0o777
    except OSError as exc:
        raise SecretError(f"{what}: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SecretError(f"{what}: {path} is not UTF-8 text") from None
    if mode & 0o077:
        log.warning("notice=WATCH %s: %s is readable or writable by other users (mode %03o); "
                    "chmod 600 it", what, path, mode)
    text = text.rstrip("\r\n")
    if not text:
        raise SecretError(f"{what}: {path} is empty")
    return text


def read_secret_env(name: str, what: str) -> str:
    value = os.environ.get(name, "")
    if not value.strip():
        raise SecretError(f"{what}: environment variable {name} is not set or empty")
    return value.strip()


def read_password(*, password_file: Path | None, password_env: str, what: str) -> str:
    """A password from ``password_env`` (if named) or ``password_file``; "" if neither is set
    (an unencrypted wallet needs none)."""
    if password_env:
        return read_secret_env(password_env, what)
    if password_file is not None:
        return read_secret_file(password_file, what)
    return ""


def load_hot_key(*, key_file: Path | None, password_file: Path | None,
                 key_env: str) -> LocalAccount:
    """The ERC-20 hot wallet: a hex private key in ``key_env``, or a web3/eth_account JSON
    keystore (``key_file``) decrypted with the password in ``password_file``."""
    if key_env:
        raw = read_secret_env(key_env, "erc20_sender.key_env")
        if not _HEX_KEY.fullmatch(raw):
            raise SecretError(f"erc20_sender.key_env: {key_env} must hold a 32-byte hex "
                              "private key (64 hex digits, optional 0x)")
        try:
            return Account.from_key(raw)
        except (ValueError, TypeError):
            raise SecretError(f"erc20_sender.key_env: {key_env} is not a valid secp256k1 "
                              "private key") from None
    if key_file is None or password_file is None:
        raise SecretError("erc20_sender: set key_env, or key_file and password_file")
    keystore_text = read_secret_file(key_file, "erc20_sender.key_file")
    password = read_secret_file(password_file, "erc20_sender.password_file")
    try:
        keystore = json.loads(keystore_text)
    except ValueError:
        raise SecretError(f"erc20_sender.key_file: {key_file} is not a JSON keystore") from None
    try:
        private_key = Account.decrypt(keystore, password)
    except ValueError as exc:
        reason = "wrong password" if "MAC mismatch" in str(exc) else "not a valid keystore"
        raise SecretError(f"erc20_sender.key_file: cannot decrypt {key_file} ({reason})") \
            from None
    except (KeyError, TypeError):
        raise SecretError(f"erc20_sender.key_file: {key_file} is not a valid keystore") from None
    except NotImplementedError:  # eth_keyfile reads version 3 keystores only
        raise SecretError(f"erc20_sender.key_file: {key_file} is a keystore version that "
                          "cannot be read (version 3 is)") from None
    return Account.from_key(private_key)
