"""Builds the real chain scanners a config asks for (the service calls this; dummy coins are
served by ``scanner.dummy`` and never reach here)."""

from __future__ import annotations

from typing import Any

from exchanger.store import DepositStore

from .base import ChainScanner, ScanSettings
from .bitcoind import BitcoindScanner, RPCSettings
from .ethereum import EthereumScanner, Token


def scan_settings(section: Any) -> ScanSettings:
    """``[<coin>_scanner]`` → ScanSettings."""
    return ScanSettings(scan_period=float(section.scan_period),  # float-ok: seconds, not money
                        initial_scan_height=section.initial_scan_height,
                        confirmations_required=section.confirmations_required)


def create_scanners(config: Any, storage: Any, store: DepositStore,
                    coins: list[str]) -> dict[str, ChainScanner]:
    """One scanner per chain in ``coins`` ("BTC", "LTC", "ETH"), keyed by that coin.

    The "ETH" scanner also reports every ``[[eth_tokens]]`` deposit (coin_type = symbol).
    Bad RPC settings raise ValueError here, before anything starts.
    """
    scanners: dict[str, ChainScanner] = {}
    for coin in coins:
        section = config.scanner_for(coin)
        if coin in ("BTC", "LTC"):
            rpc = getattr(config, f"{coin.lower()}_rpc")
            scanners[coin] = BitcoindScanner(
                coin, section.network,
                RPCSettings(server=rpc.server, user=rpc.user, password=rpc.password,
                            cookie_file=rpc.cookie_file),
                storage, store, config.rate_for(coin), scan_settings(section))
        elif coin == "ETH":
            tokens = [Token(t.symbol, t.address) for t in config.eth_tokens]
            scanners[coin] = EthereumScanner(config.eth_rpc.endpoint, storage, store,
                                             config.rate_for, scan_settings(section), tokens)
        else:
            raise ValueError(f"no real scanner for {coin!r} (only BTC, LTC and ETH)")
    return scanners
