"""Builds the configured real payout backend (``[sender] backend = "erc20" | "skycoin"``).

Secrets are loaded here (``sender.keys``) and every problem found at start-up is reported at
once as a ``ConfigError``: an unreadable key file, a wrong keystore password, an unset
environment variable, a token address with no contract on a reachable node. An *unreachable*
node is not fatal: the sender starts, ``/api/health`` shows the outage, payouts wait and retry.
The dummy backend is wired by ``teller.service`` itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from teller.config import Config, ConfigError, resolve_path

from .base import Sender
from .keys import SecretError, load_hot_key, read_password


def _path(config: Config, value: str) -> Path | None:
    return resolve_path(config, value) if value else None


def create_sender(config: Config, storage: Any) -> Sender:
    backend = config.sender_backend
    if backend == "erc20":
        return _create_erc20(config, storage)
    if backend == "skycoin":
        return _create_skycoin(config, storage)
    raise ConfigError([f"sender.backend: {backend!r} is not a real payout backend "
                       "(use \"erc20\" or \"skycoin\"; the dummy sender is built by the service)"],
                      config.source)


def _create_erc20(config: Config, storage: Any) -> Sender:
    from .erc20 import ERC20Sender  # web3 is imported only when this backend is used

    erc = config.erc20_sender
    try:
        account = load_hot_key(key_file=_path(config, erc.key_file),
                               password_file=_path(config, erc.password_file),
                               key_env=erc.key_env)
    except SecretError as exc:
        raise ConfigError([str(exc)], config.source) from None
    sender = ERC20Sender(storage, account, url=erc.url, token_address=erc.token,
                         confirmations_required=erc.confirmations_required,
                         max_gas_price_gwei=erc.max_gas_price_gwei, max_gas=erc.max_gas)
    problems = sender.probe()
    if problems:
        raise ConfigError(problems, config.source)
    return sender


def _create_skycoin(config: Config, storage: Any) -> Sender:
    from .skycoin import SkycoinSender

    sky = config.sky_rpc
    try:
        password = read_password(password_file=_path(config, sky.password_file),
                                 password_env=sky.password_env,
                                 what="sky_rpc wallet password")
    except SecretError as exc:
        raise ConfigError([str(exc)], config.source) from None
    return SkycoinSender(storage, address=sky.address, wallet_id=sky.wallet_id,
                         password=password, max_outputs=config.sender.max_outputs,
                         max_decimals=config.sky_exchanger.max_decimals)
