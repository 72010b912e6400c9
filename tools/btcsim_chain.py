"""btcsim's chain model: blocks and txs serialised like Bitcoin, pre-rendered as bitcoind's JSON.

Owns the ``Simulator`` (active chain, stale blocks, mine/filler/reorg/outage state) and the
control-API input validation. Public entry point and documentation: ``tools.btcsim``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import random
import struct
import threading
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

log = logging.getLogger(__name__)

SAT_PER_BTC = 100_000_000
MAX_MONEY_SAT = 21_000_000 * SAT_PER_BTC
DEFAULT_MINER_ADDRESS = "bcrt1qbtcsimminer0000000000000000000000000000"
DEFAULT_START_TIME = 1_700_000_000
BLOCK_INTERVAL = 600
DEFAULT_FEE_SAT = 1000
SEQUENCE_FINAL = 0xFFFFFFFF

_BITS = 0x207FFFFF
_BITS_HEX = "207fffff"
_DIFFICULTY = "4.656542373906925e-10"
_BLOCK_VERSION = 0x20000000

ADDRESS_TYPES = (
    "pubkeyhash",
    "scripthash",
    "witness_v0_keyhash",
    "witness_v0_scripthash",
    "witness_v1_taproot",
)
_BECH32_HRPS = ("bc1", "tb1", "bcrt1", "ltc1", "tltc1", "rltc1")
_BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BASE58_CHARSET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

OUTAGE_MODES = ("error", "http503", "hang", "refuse")



# --------------------------------------------------------------------------- amounts, hashing


def format_btc(sat: int) -> str:
    """Satoshi → the exact JSON number text bitcoind writes (``ValueFromAmount``)."""
    sign = "-" if sat < 0 else ""
    whole, frac = divmod(abs(sat), SAT_PER_BTC)
    return f"{sign}{whole}.{frac:08d}"


def btc_to_sat(value: Decimal | str) -> int:
    """A BTC amount (Decimal or decimal string) → int satoshi; refuses sub-satoshi precision."""
    if isinstance(value, float):
        raise TypeError("BTC amounts must be Decimal or str, never float")
    sat = Decimal(value) * SAT_PER_BTC
    if sat != sat.to_integral_value():
        raise ValueError(f"{value} BTC is not a whole number of satoshi")
    return int(sat)


def _sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def _compact_size(n: int) -> bytes:
    if n < 0xFD:
        return bytes((n,))
    if n <= 0xFFFF:
        return b"\xfd" + struct.pack("<H", n)
    if n <= 0xFFFFFFFF:
        return b"\xfe" + struct.pack("<I", n)
    return b"\xff" + struct.pack("<Q", n)


def _push(data: bytes) -> bytes:
    n = len(data)
    if n < 0x4C:
        return bytes((n,)) + data
    if n <= 0xFF:
        return b"\x4c" + bytes((n,)) + data
    return b"\x4d" + struct.pack("<H", n) + data


def _merkle_root(txids_internal: list[bytes]) -> bytes:
    level = txids_internal
    while len(level) > 1:
        if len(level) % 2:
            level = level + [level[-1]]
        level = [_sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


# --------------------------------------------------------------------------- errors


class RPCError(Exception):
    """A JSON-RPC error as bitcoind reports it."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class SimulatorError(ValueError):
    """Bad control-API input (HTTP 400); the chain is unchanged."""


# --------------------------------------------------------------------------- outputs and txs


def guess_address_type(address: str) -> str:
    """The scriptPubKey type an address string most likely stands for (any string is allowed)."""
    low = address.lower()
    for hrp in _BECH32_HRPS:
        if low.startswith(hrp):
            data = low[len(hrp) :]
            if data.startswith("p"):
                return "witness_v1_taproot"
            return "witness_v0_scripthash" if len(data) > 45 else "witness_v0_keyhash"
    if address[:1] in ("2", "3", "M", "Q"):
        return "scripthash"
    return "pubkeyhash"


def _fake_hash(address: str, size: int) -> bytes:
    return hashlib.sha256(b"btcsim:" + address.encode("utf-8")).digest()[:size]


def _address_script(address: str, kind: str) -> tuple[bytes, str]:
    """A standard script for ``kind`` whose hash is derived from the address string."""
    if kind == "pubkeyhash":
        h = _fake_hash(address, 20)
        return b"\x76\xa9\x14" + h + b"\x88\xac", (
            f"OP_DUP OP_HASH160 {h.hex()} OP_EQUALVERIFY OP_CHECKSIG"
        )
    if kind == "scripthash":
        h = _fake_hash(address, 20)
        return b"\xa9\x14" + h + b"\x87", f"OP_HASH160 {h.hex()} OP_EQUAL"
    if kind == "witness_v0_keyhash":
        h = _fake_hash(address, 20)
        return b"\x00\x14" + h, f"0 {h.hex()}"
    if kind == "witness_v0_scripthash":
        h = _fake_hash(address, 32)
        return b"\x00\x20" + h, f"0 {h.hex()}"
    h = _fake_hash(address, 32)  # witness_v1_taproot
    return b"\x51\x20" + h, f"1 {h.hex()}"


class _Output:
    __slots__ = ("value", "script", "spk_json", "summary")

    def __init__(self, value: int, script: bytes, spk_json: str) -> None:
        self.value = value
        self.script = script
        self.spk_json = spk_json  # the scriptPubKey object, already serialised
        self.summary: dict[str, Any] | None = None  # set for control-API outputs only


def _make_address_output(
    address: str, value: int, kind: str, old_shape: bool, plain: bool = False
) -> _Output:
    """``plain``: the address is known to need no JSON escaping (filler fast path)."""
    script, asm = _address_script(address, kind)
    addr = f'"{address}"' if plain else json.dumps(address)
    if old_shape:
        spk = (
            f'{{"asm":"{asm}","hex":"{script.hex()}","reqSigs":1,"type":"{kind}",'
            f'"addresses":[{addr}]}}'
        )
    else:
        spk = f'{{"asm":"{asm}","hex":"{script.hex()}","address":{addr},"type":"{kind}"}}'
    return _Output(value, script, spk)


def _make_multisig_output(
    addresses: Sequence[str], required: int, value: int, old_shape: bool
) -> _Output:
    pubkeys = [b"\x02" + _fake_hash(a, 32) for a in addresses]
    script = (
        bytes((0x50 + required,))
        + b"".join(_push(pk) for pk in pubkeys)
        + bytes((0x50 + len(pubkeys), 0xAE))
    )
    asm = " ".join([str(required), *(pk.hex() for pk in pubkeys), str(len(pubkeys))])
    asm += " OP_CHECKMULTISIG"
    if old_shape:
        addrs = ",".join(json.dumps(a) for a in addresses)
        spk = (
            f'{{"asm":"{asm}","hex":"{script.hex()}","reqSigs":{required},'
            f'"type":"multisig","addresses":[{addrs}]}}'
        )
    else:
        spk = f'{{"asm":"{asm}","hex":"{script.hex()}","type":"multisig"}}'
    return _Output(value, script, spk)


def _make_nulldata_output(data: bytes, value: int) -> _Output:
    script = b"\x6a" + _push(data)
    spk = f'{{"asm":"OP_RETURN {data.hex()}","hex":"{script.hex()}","type":"nulldata"}}'
    return _Output(value, script, spk)


class _Tx:
    """A tx kept only as its verbosity-2 JSON (which embeds the raw hex): memory is the limit
    for 200 x 3,000-output filler chains."""

    __slots__ = ("txid", "json", "size", "fee", "coinbase", "outputs")

    def __init__(
        self,
        txid: str,
        json_: bytes,
        size: int,
        fee: int,
        coinbase: bool,
        outputs: list[dict[str, Any]] | None,
    ) -> None:
        self.txid = txid
        self.json = json_
        self.size = size
        self.fee = fee
        self.coinbase = coinbase
        self.outputs = outputs  # control-API summaries; None for filler txs

    def raw_hex(self) -> bytes:
        return self.json[self.json.rindex(b'"hex":"') + 7 : -2]

    def summary(self) -> dict[str, Any]:
        """What the control API reports: outputs with n, value (sat) and address(es)."""
        if self.outputs is not None:
            return {"txid": self.txid, "outputs": [dict(o, n=n) for n, o in
                                                   enumerate(self.outputs)]}
        tx = json.loads(self.json, parse_float=Decimal)
        outputs = []
        for out in tx["vout"]:
            spk = out["scriptPubKey"]
            item: dict[str, Any] = {"n": out["n"], "value": btc_to_sat(out["value"])}
            if spk["type"] == "multisig":
                item["addresses"] = spk.get("addresses")
            elif "address" in spk:
                item["address"] = spk["address"]
            elif spk.get("addresses"):
                item["address"] = spk["addresses"][0]
            else:
                item["type"] = spk["type"]
            outputs.append(item)
        return {"txid": self.txid, "outputs": outputs}


def _build_tx(
    vin: Sequence[tuple[str, int]] | None,
    outputs: Sequence[_Output],
    fee: int,
    locktime: int,
    with_fee: bool,
    coinbase_script: bytes | None = None,
) -> _Tx:
    """Serialise like Bitcoin (no witness, so txid == wtxid) and pre-render the v2 JSON."""
    parts = [struct.pack("<i", 2)]
    if coinbase_script is not None:
        parts.append(b"\x01" + b"\x00" * 32 + b"\xff\xff\xff\xff")
        parts.append(_compact_size(len(coinbase_script)) + coinbase_script)
        parts.append(struct.pack("<I", SEQUENCE_FINAL))
        vin_json = f'[{{"coinbase":"{coinbase_script.hex()}","sequence":{SEQUENCE_FINAL}}}]'
    else:
        assert vin is not None
        parts.append(_compact_size(len(vin)))
        items = []
        for prev_txid, prev_n in vin:
            parts.append(bytes.fromhex(prev_txid)[::-1] + struct.pack("<I", prev_n))
            parts.append(b"\x00" + struct.pack("<I", SEQUENCE_FINAL))
            items.append(
                f'{{"txid":"{prev_txid}","vout":{prev_n},"scriptSig":{{"asm":"","hex":""}},'
                f'"sequence":{SEQUENCE_FINAL}}}'
            )
        vin_json = "[" + ",".join(items) + "]"
    parts.append(_compact_size(len(outputs)))
    vout_items = []
    for n, out in enumerate(outputs):
        parts.append(struct.pack("<q", out.value))
        parts.append(_compact_size(len(out.script)) + out.script)
        vout_items.append(
            f'{{"value":{format_btc(out.value)},"n":{n},"scriptPubKey":{out.spk_json}}}'
        )
    parts.append(struct.pack("<I", locktime))
    raw = b"".join(parts)
    txid = _sha256d(raw)[::-1].hex()
    size = len(raw)
    fee_json = f',"fee":{format_btc(fee)}' if with_fee and coinbase_script is None else ""
    text = (
        f'{{"txid":"{txid}","hash":"{txid}","version":2,"size":{size},"vsize":{size},'
        f'"weight":{size * 4},"locktime":{locktime},"vin":{vin_json},'
        f'"vout":[{",".join(vout_items)}]{fee_json},"hex":"{raw.hex()}"}}'
    )
    summaries = [o.summary for o in outputs]
    return _Tx(
        txid, text.encode("ascii"), size, fee, coinbase_script is not None,
        None if None in summaries else summaries,  # type: ignore[arg-type]
    )


# --------------------------------------------------------------------------- blocks


class _Block:
    """An immutable block with its JSON pre-rendered except confirmations/nextblockhash."""

    __slots__ = ("hash", "height", "prev", "time", "txs", "header", "_head", "_mid", "_tail")

    def __init__(
        self,
        height: int,
        prev: str | None,
        prev_known: bool,
        block_time: int,
        median_time: int,
        nonce: int,
        txs: list[_Tx],
    ) -> None:
        merkle = _merkle_root([bytes.fromhex(t.txid)[::-1] for t in txs])
        prev_internal = bytes.fromhex(prev)[::-1] if prev else b"\x00" * 32
        self.header = struct.pack(
            "<I32s32sIII", _BLOCK_VERSION, prev_internal, merkle, block_time, _BITS, nonce
        )
        self.hash = _sha256d(self.header)[::-1].hex()
        self.height = height
        self.prev = prev if prev_known else None
        self.time = block_time
        self.txs = txs
        size = 80 + len(_compact_size(len(txs))) + sum(t.size for t in txs)
        self._head = f'{{"hash":"{self.hash}"'.encode()
        mid = (
            f',"height":{height},"version":{_BLOCK_VERSION},"versionHex":"{_BLOCK_VERSION:08x}",'
            f'"merkleroot":"{merkle[::-1].hex()}","time":{block_time},'
            f'"mediantime":{median_time},"nonce":{nonce},"bits":"{_BITS_HEX}",'
            f'"difficulty":{_DIFFICULTY},"chainwork":"{(height + 1) * 2:064x}",'
            f'"nTx":{len(txs)}'
        )
        if prev:
            mid += f',"previousblockhash":"{prev}"'
        self._mid = mid.encode()
        self._tail = f',"strippedsize":{size},"size":{size},"weight":{size * 4}'.encode()

    def render(self, confirmations: int, next_hash: str | None, verbosity: int) -> bytes:
        parts = [self._head, b',"confirmations":%d' % confirmations, self._mid]
        if next_hash:
            parts.append(b',"nextblockhash":"%s"' % next_hash.encode())
        parts.append(self._tail)
        if verbosity >= 2:
            parts += [b',"tx":[', b",".join(t.json for t in self.txs), b"]}"]
        else:
            parts += [b',"tx":[', b",".join(b'"%s"' % t.txid.encode() for t in self.txs), b"]}"]
        return b"".join(parts)

    def render_header(self, confirmations: int, next_hash: str | None) -> bytes:
        parts = [self._head, b',"confirmations":%d' % confirmations, self._mid]
        if next_hash:
            parts.append(b',"nextblockhash":"%s"' % next_hash.encode())
        parts.append(b"}")
        return b"".join(parts)

    def raw_hex(self) -> str:
        head = (self.header + _compact_size(len(self.txs))).hex().encode()
        return b"".join([head, *(t.raw_hex() for t in self.txs)]).decode()

    def summary(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "hash": self.hash,
            "txs": [t.summary() for t in self.txs if not t.coinbase],
        }


# --------------------------------------------------------------------------- input validation


def _int(value: Any, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SimulatorError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise SimulatorError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise SimulatorError(f"{name} must be <= {maximum}, got {value}")
    return value


def _sat(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SimulatorError(
            f"{name} must be an int number of satoshi (not {type(value).__name__} {value!r})"
        )
    return _int(value, name, 0, MAX_MONEY_SAT)


def _hex32(value: Any, name: str) -> str:
    if not isinstance(value, str) or len(value) != 64:
        raise SimulatorError(f"{name} must be a 64-character hex txid")
    try:
        bytes.fromhex(value)
    except ValueError:
        raise SimulatorError(f"{name} must be a 64-character hex txid") from None
    return value.lower()


_OUTPUT_KEYS = {"address", "addresses", "multisig", "required", "nulldata", "value", "type",
                "core_version"}
_TX_KEYS = {"outputs", "vin", "fee", "locktime"}


# --------------------------------------------------------------------------- the chain


class Simulator:
    """The chain model. Thread-safe; blocks are immutable once built."""

    def __init__(
        self,
        core_version: int = 22,
        start_height: int = 0,
        chain: str = "regtest",
        miner_address: str = DEFAULT_MINER_ADDRESS,
        start_time: int = DEFAULT_START_TIME,
    ) -> None:
        if core_version < 0 or start_height < 0:
            raise ValueError("core_version and start_height must be >= 0")
        self.core_version = core_version
        self.start_height = start_height
        self.chain = chain
        self.miner_address = miner_address
        self.outage: str | None = None
        self.outage_seconds: float = 0.0
        self.outage_cleared = threading.Event()
        self._lock = threading.RLock()
        self._nonce = 0
        self._inputs = 0
        self._active: list[_Block] = []
        self._by_hash: dict[str, _Block] = {}
        self._halving = 150 if chain == "regtest" else 210_000
        fake_parent = None
        if start_height > 0:
            fake_parent = _sha256d(b"btcsim-parent-%d" % start_height)[::-1].hex()
        first = self._build_block(start_height, fake_parent, start_time, [start_time], [])
        self._append([first])

    # -- properties for readers

    @property
    def old_shape(self) -> bool:
        return self.core_version < 22

    @property
    def height(self) -> int:
        with self._lock:
            return self._active[-1].height

    @property
    def tip(self) -> str:
        with self._lock:
            return self._active[-1].hash

    def block_at(self, height: int) -> _Block:
        with self._lock:
            idx = height - self.start_height
            if idx < 0 or idx >= len(self._active):
                raise RPCError(-8, "Block height out of range")
            return self._active[idx]

    def block_by_hash(self, block_hash: str) -> _Block | None:
        with self._lock:
            return self._by_hash.get(block_hash.lower())

    def position(self, block: _Block) -> tuple[int, str | None]:
        """(confirmations, nextblockhash) from the current tip; (-1, None) for stale blocks."""
        with self._lock:
            idx = block.height - self.start_height
            if 0 <= idx < len(self._active) and self._active[idx] is block:
                nxt = self._active[idx + 1].hash if idx + 1 < len(self._active) else None
                return self._active[-1].height - block.height + 1, nxt
            return -1, None

    def state(self) -> dict[str, Any]:
        with self._lock:
            recent = [[b.height, b.hash] for b in self._active[-10:]]
            return {
                "height": self._active[-1].height,
                "tip": self._active[-1].hash,
                "start_height": self.start_height,
                "core_version": self.core_version,
                "chain": self.chain,
                "outage": self.outage,
                "blocks_built": self._nonce,
                "stale_blocks": len(self._by_hash) - len(self._active),
                "recent": recent,
            }

    # -- building

    def _subsidy(self, height: int) -> int:
        halvings = height // self._halving
        return 0 if halvings >= 64 else (50 * SAT_PER_BTC) >> halvings

    def _next_input(self) -> tuple[str, int]:
        self._inputs += 1
        return hashlib.sha256(b"btcsim-input-%d" % self._inputs).hexdigest(), 0

    def _build_block(
        self,
        height: int,
        prev: str | None,
        block_time: int,
        times: list[int],
        txs: list[_Tx],
    ) -> _Block:
        """``times``: the times of up to 10 ancestors plus this block, for mediantime."""
        self._nonce += 1
        fees = sum(t.fee for t in txs)
        miner = _make_address_output(
            self.miner_address,
            self._subsidy(height) + fees,
            guess_address_type(self.miner_address),
            self.old_shape,
        )
        cb_script = _push(height.to_bytes(8, "little").rstrip(b"\x00") or b"\x00") + _push(
            b"btcsim" + self._nonce.to_bytes(4, "little")
        )
        coinbase = _build_tx(None, [miner], 0, 0, False, coinbase_script=cb_script)
        last = sorted(times[-11:])
        median = last[len(last) // 2]
        prev_known = prev is not None and (prev in self._by_hash or height > self.start_height)
        return _Block(height, prev, prev_known, block_time, median, self._nonce, [coinbase, *txs])

    def _append(self, blocks: list[_Block]) -> None:
        for b in blocks:
            self._active.append(b)
            self._by_hash[b.hash] = b

    def _parse_output(self, spec: Any, where: str) -> _Output:
        if not isinstance(spec, dict):
            raise SimulatorError(f"{where} must be an object")
        unknown = set(spec) - _OUTPUT_KEYS
        if unknown:
            raise SimulatorError(f"{where} has unknown keys {sorted(unknown)}")
        if "value" not in spec:
            raise SimulatorError(f"{where}.value is required (int satoshi)")
        value = _sat(spec["value"], f"{where}.value")
        cv = spec.get("core_version")
        old = self.old_shape if cv is None else _int(cv, f"{where}.core_version", 0) < 22
        kinds = [k for k in ("address", "addresses", "nulldata") if k in spec]
        if len(kinds) != 1:
            raise SimulatorError(f"{where} needs exactly one of address, addresses, nulldata")
        if "address" in spec:
            address = spec["address"]
            if not isinstance(address, str) or not address:
                raise SimulatorError(f"{where}.address must be a non-empty string")
            kind = spec.get("type") or guess_address_type(address)
            if kind not in ADDRESS_TYPES:
                raise SimulatorError(f"{where}.type must be one of {list(ADDRESS_TYPES)}")
            out = _make_address_output(address, value, kind, old)
            out.summary = {"value": value, "address": address}
            return out
        if "addresses" in spec:
            addresses = spec["addresses"]
            if spec.get("multisig") is not True:
                raise SimulatorError(
                    f"{where}: addresses needs multisig: true (use address for one address)"
                )
            if (
                not isinstance(addresses, list)
                or not 1 <= len(addresses) <= 16
                or not all(isinstance(a, str) and a for a in addresses)
            ):
                raise SimulatorError(f"{where}.addresses must be 1..16 non-empty strings")
            required = _int(spec.get("required", 1), f"{where}.required", 1, len(addresses))
            out = _make_multisig_output(addresses, required, value, old)
            out.summary = {"value": value, "addresses": list(addresses), "multisig": True}
            return out
        data = spec["nulldata"]
        try:
            raw = bytes.fromhex(data) if isinstance(data, str) else None
        except ValueError:
            raw = None
        if raw is None or len(raw) > 80:
            raise SimulatorError(f"{where}.nulldata must be hex of at most 80 bytes")
        out = _make_nulldata_output(raw, value)
        out.summary = {"value": value, "nulldata": raw.hex()}
        return out

    def _parse_tx(self, spec: Any, where: str) -> _Tx:
        if isinstance(spec, list):
            spec = {"outputs": spec}
        if not isinstance(spec, dict):
            raise SimulatorError(f"{where} must be a list of outputs or an object")
        unknown = set(spec) - _TX_KEYS
        if unknown:
            raise SimulatorError(f"{where} has unknown keys {sorted(unknown)}")
        outs = spec.get("outputs")
        if not isinstance(outs, list) or not outs:
            raise SimulatorError(f"{where}.outputs must be a non-empty list")
        outputs = [self._parse_output(o, f"{where}.outputs[{i}]") for i, o in enumerate(outs)]
        fee = _sat(spec.get("fee", DEFAULT_FEE_SAT), f"{where}.fee")
        locktime = _int(spec.get("locktime", 0), f"{where}.locktime", 0, 0xFFFFFFFF)
        vin_spec = spec.get("vin")
        if vin_spec is None:
            vin = [self._next_input()]
        else:
            if not isinstance(vin_spec, list) or not vin_spec:
                raise SimulatorError(f"{where}.vin must be a non-empty list")
            vin = []
            for i, item in enumerate(vin_spec):
                if not isinstance(item, dict) or set(item) != {"txid", "vout"}:
                    raise SimulatorError(f"{where}.vin[{i}] must be {{txid, vout}}")
                vin.append(
                    (
                        _hex32(item["txid"], f"{where}.vin[{i}].txid"),
                        _int(item["vout"], f"{where}.vin[{i}].vout", 0, 0xFFFFFFFF),
                    )
                )
        return _build_tx(vin, outputs, fee, locktime, not self.old_shape)

    def _parse_txs(self, specs: Any, where: str) -> list[_Tx]:
        if specs is None:
            return []
        if not isinstance(specs, list):
            raise SimulatorError(f"{where} must be a list of txs")
        return [self._parse_tx(s, f"{where}[{i}]") for i, s in enumerate(specs)]

    def _chain_blocks(
        self, base: list[_Block], plans: list[tuple[list[_Tx], int | None]]
    ) -> list[_Block]:
        """Build blocks on top of ``base`` (the kept active chain); nothing is committed."""
        times = [b.time for b in base[-10:]]
        prev = base[-1]
        out: list[_Block] = []
        for txs, block_time in plans:
            t = block_time if block_time is not None else prev.time + BLOCK_INTERVAL
            times.append(t)
            block = self._build_block(prev.height + 1, prev.hash, t, times[-11:], txs)
            out.append(block)
            prev = block
        return out

    # -- control operations

    @contextlib.contextmanager
    def _atomic(self) -> Iterator[None]:
        """Hold the lock; on a validation error restore the counters, so a rejected request
        leaves no trace (not even in later txids or nonces)."""
        with self._lock:
            saved = (self._nonce, self._inputs)
            try:
                yield
            except SimulatorError:
                self._nonce, self._inputs = saved
                raise

    def _stale_txs(self, kept: list[_Block]) -> dict[str, _Tx]:
        """Non-coinbase txs of blocks off the ``kept`` chain that ``kept`` does not hold."""
        kept_ids = {id(b) for b in kept}
        pool = {
            t.txid: t
            for b in self._by_hash.values()
            if id(b) not in kept_ids
            for t in b.txs
            if not t.coinbase
        }
        if pool:
            for b in kept:
                for t in b.txs:
                    pool.pop(t.txid, None)
        return pool

    def _take(
        self, value: Any, where: str, pool: dict[str, _Tx], all_ids: list[str], used: set[str]
    ) -> list[_Tx]:
        """Resolve a ``reinclude`` value (list of txids or true = ``all_ids``) against ``pool``."""
        if value is None or value is False:
            return []
        if value is True:
            wanted = [t for t in all_ids if t not in used and t in pool]
        elif isinstance(value, list):
            wanted = [_hex32(t, f"{where}.reinclude") for t in value]
        else:
            raise SimulatorError(f"{where}.reinclude must be a list of txids or true")
        out = []
        for txid in wanted:
            if txid not in pool:
                raise SimulatorError(
                    f"{where}.reinclude: {txid} is not a non-coinbase tx of a stale block "
                    "(or it is already on the active chain)"
                )
            if txid in used:
                raise SimulatorError(f"{where}.reinclude: {txid} is included twice")
            used.add(txid)
            out.append(pool[txid])
        return out

    def mine(
        self,
        txs: Any = None,
        count: int = 1,
        block_time: int | None = None,
        reinclude: Any = None,
    ) -> list[_Block]:
        """Mine ``count`` blocks; the txs (control-API TX specs) and the re-included stale txs
        (txids, or true for all) go in the first."""
        count = _int(count, "count", 1, 100_000)
        if block_time is not None:
            block_time = _int(block_time, "time", 1, 0xFFFFFFFF)
        with self._atomic():
            first: list[_Tx] = []
            if reinclude is not None and reinclude is not False:
                pool = self._stale_txs(self._active)
                first = self._take(reinclude, "mine", pool, list(pool), set())
            first += self._parse_txs(txs, "txs")
            plans = [(first, block_time)] + [([], None)] * (count - 1)
            blocks = self._chain_blocks(self._active, plans)
            self._append(blocks)
            return blocks

    def filler(
        self, blocks: int, outputs: int, outputs_per_tx: int = 2, seed: int | None = None
    ) -> dict[str, Any]:
        """Mine ``blocks`` blocks of ``outputs`` random outputs each (benchmarks)."""
        blocks = _int(blocks, "blocks", 1, 100_000)
        outputs = _int(outputs, "outputs", 0, 1_000_000)
        per_tx = _int(outputs_per_tx, "outputs_per_tx", 1, 10_000)
        started = time.perf_counter()
        with self._atomic():
            rng = random.Random(seed if seed is not None else self._nonce)
            old = self.old_shape
            with_fee = not old
            plans: list[tuple[list[_Tx], int | None]] = []
            for _ in range(blocks):
                addresses = _random_addresses(rng, outputs)
                txs = []
                for first in range(0, outputs, per_tx):
                    outs = [
                        _make_address_output(a, 546 + rng.getrandbits(29), kind, old, True)
                        for a, kind in addresses[first : first + per_tx]
                    ]
                    txs.append(_build_tx([self._next_input()], outs, 1000, 0, with_fee))
                plans.append((txs, None))
            built = self._chain_blocks(self._active, plans)
            self._append(built)
            tip, height = self._active[-1].hash, self._active[-1].height
        seconds = time.perf_counter() - started
        log.info("btcsim filler: %d blocks x %d outputs in %.2fs", blocks, outputs, seconds)
        return {
            "height": height,
            "tip": tip,
            "blocks": blocks,
            "outputs": blocks * outputs,
            "seconds": round(seconds, 3),
        }

    def reorg(
        self,
        depth: int,
        blocks: Any = None,
        new_blocks: int | None = None,
    ) -> tuple[list[_Block], list[_Block]]:
        """Replace the top ``depth`` blocks; returns (orphaned, new)."""
        with self._atomic():
            above_first = len(self._active) - 1
            depth = _int(depth, "depth", 1, max(1, above_first))
            if depth > above_first:
                raise SimulatorError("cannot reorg the simulator's first block")
            specs = blocks if blocks is not None else []
            if not isinstance(specs, list):
                raise SimulatorError("blocks must be a list of block specs")
            if new_blocks is None:
                n_new = max(depth, len(specs))
            else:
                n_new = _int(new_blocks, "new_blocks", 0, 100_000)
                if len(specs) > n_new:
                    raise SimulatorError("blocks has more entries than new_blocks")
            orphaned = self._active[-depth:]
            kept = self._active[:-depth]
            orphan_ids = [t.txid for b in orphaned for t in b.txs if not t.coinbase]
            wants_old = any(isinstance(sp, dict) and sp.get("reinclude") for sp in specs)
            pool = self._stale_txs(kept) if wants_old else {}
            used: set[str] = set()
            plans: list[tuple[list[_Tx], int | None]] = []
            for i, spec in enumerate(specs):
                where = f"blocks[{i}]"
                if not isinstance(spec, dict) or set(spec) - {"txs", "reinclude", "time"}:
                    raise SimulatorError(f"{where} must be an object with txs/reinclude/time")
                txs = self._take(spec.get("reinclude"), where, pool, orphan_ids, used)
                txs += self._parse_txs(spec.get("txs"), f"{where}.txs")
                t = spec.get("time")
                plans.append((txs, None if t is None else _int(t, f"{where}.time", 1)))
            plans += [([], None)] * (n_new - len(plans))
            new = self._chain_blocks(kept, plans)
            self._active = kept
            self._append(new)
            log.info(
                "btcsim reorg: %d blocks orphaned, %d new, tip %d %s",
                depth,
                len(new),
                self._active[-1].height,
                self._active[-1].hash,
            )
            return orphaned, new

    def set_outage(self, mode: str | None, seconds: float = 0.0) -> None:
        if mode in (None, "off", ""):
            with self._lock:
                self.outage = None
                self.outage_seconds = 0.0
                self.outage_cleared.set()
            return
        if mode not in OUTAGE_MODES:
            raise SimulatorError(f"outage mode must be one of {['off', *OUTAGE_MODES]}")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float | Decimal):
            raise SimulatorError("seconds must be a number")
        if mode in ("hang", "refuse") and not 0 < seconds <= 3600:
            raise SimulatorError(f"outage {mode} needs 0 < seconds <= 3600")
        with self._lock:
            self.outage_cleared.clear()
            self.outage = mode
            self.outage_seconds = float(seconds)


_BECH32_TABLE = bytes((_BECH32_CHARSET * 8).encode())
_BASE58_TABLE = bytes((_BASE58_CHARSET * 5)[:256].encode())


def _random_addresses(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """``count`` (address, type) pairs: 50 % bech32, 30 % P2PKH, 20 % P2SH-looking strings."""
    bech = rng.randbytes(count * 38).translate(_BECH32_TABLE).decode()
    b58 = rng.randbytes(count * 34).translate(_BASE58_TABLE).decode()
    out = []
    for i in range(count):
        kind = i % 10
        if kind < 5:
            out.append(("bcrt1q" + bech[i * 38 : i * 38 + 38], "witness_v0_keyhash"))
        elif kind < 8:
            out.append(("m" + b58[i * 34 : i * 34 + 33], "pubkeyhash"))
        else:
            out.append(("2" + b58[i * 34 : i * 34 + 34], "scripthash"))
    return out


