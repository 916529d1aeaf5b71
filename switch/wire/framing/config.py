"""Framing configuration: the typed :class:`FramingConfig`, its TOML loader and :func:`make_framer`.

The loader checks everything at load time (STYLE 14): unknown keys (with a suggestion), wrong types, values
out of range and settings that do not apply to the chosen kind are :class:`switch.model.errors.ConfigError`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

from switch.model.errors import ConfigError
from switch.wire.framing.base import Framer
from switch.wire.framing.length import TPDU_LEN, Ascii4Framer, Bcd2Framer, Binary2Framer
from switch.wire.framing.unionpay import UnionPayFramer, cups_id
from switch.wire.framing.visa import VisaFramer, station_bcd

KINDS = ("binary2", "bcd2", "ascii4", "visa", "unionpay")
# Nothing here can carry more: the largest length prefix is two binary bytes.
MAX_FRAME_LIMIT = 0xFFFF


@dataclass(frozen=True)
class FramingConfig:
    kind: str  # "binary2" | "bcd2" | "ascii4" | "visa" | "unionpay"
    tpdu: bool = False  # 5-byte TPDU after the length (binary2/bcd2 only)
    tpdu_default: bytes = bytes.fromhex("6000000000")  # TPDU for requests we originate
    length_includes_prefix: bool = False  # some hosts count the prefix itself (jPOS include-header-length)
    max_frame: int = 8192
    keepalive_echo: bool = True  # echo zero-length frames where the framing defines them
    unionpay_length_prefix: bool = False  # 4 ASCII digits before the CUPS header (unconfirmed publicly)
    visa_source_station: str = "000000"  # 6 digits, BCD in the BASE I header of requests we originate
    visa_destination_station: str = "000000"
    unionpay_source_id: str = ""  # up to 11 characters, space-padded on the wire
    unionpay_destination_id: str = ""
    unionpay_test_flag: bool = False


_FIELD_NAMES = tuple(f.name for f in fields(FramingConfig))
_BOOL_KEYS = frozenset(
    {"tpdu", "length_includes_prefix", "keepalive_echo", "unionpay_length_prefix", "unionpay_test_flag"}
)
_STR_KEYS = frozenset(
    {"kind", "tpdu_default", "visa_source_station", "visa_destination_station", "unionpay_source_id",
     "unionpay_destination_id"}
)
# Keys that only mean something for some kinds; setting them elsewhere is a mistake worth reporting.
_ONLY_FOR: dict[str, tuple[str, ...]] = {
    "tpdu": ("binary2", "bcd2"),
    "tpdu_default": ("binary2", "bcd2"),
    "length_includes_prefix": ("binary2", "bcd2", "ascii4", "unionpay"),
    "visa_source_station": ("visa",),
    "visa_destination_station": ("visa",),
    "unionpay_length_prefix": ("unionpay",),
    "unionpay_source_id": ("unionpay",),
    "unionpay_destination_id": ("unionpay",),
    "unionpay_test_flag": ("unionpay",),
}


def framing_config_from_dict(data: Mapping[str, object], file: str, key_prefix: str) -> FramingConfig:
    """Build a :class:`FramingConfig` from a TOML table (``tpdu_default`` as 10 hex digits)."""

    def key(name: str) -> str:
        return f"{key_prefix}.{name}" if key_prefix else name

    for name in data:
        if name not in _FIELD_NAMES:
            close = difflib.get_close_matches(name, _FIELD_NAMES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(file, key(name), f"unknown key{hint}")
    if "kind" not in data:
        raise ConfigError(file, key("kind"), f"missing (one of: {', '.join(KINDS)})")
    values: dict[str, object] = {}
    for name, value in data.items():
        values[name] = _typed(name, value, file, key(name))
    kind = values["kind"]
    if kind not in KINDS:
        raise ConfigError(file, key("kind"), f"unknown framing {kind!r} (one of: {', '.join(KINDS)})")
    for name in data:
        allowed = _ONLY_FOR.get(name)
        if allowed is not None and kind not in allowed:
            raise ConfigError(file, key(name), f"does not apply to framing {kind!r}")
    counts_prefix = values.get("length_includes_prefix")
    if kind == "unionpay" and counts_prefix and not values.get("unionpay_length_prefix"):
        raise ConfigError(file, key("length_includes_prefix"), "needs unionpay_length_prefix = true")
    return FramingConfig(**values)  # type: ignore[arg-type]  # every value was type-checked by _typed


def _typed(name: str, value: object, file: str, where: str) -> object:
    if name in _BOOL_KEYS:
        if not isinstance(value, bool):
            raise ConfigError(file, where, "expected true or false")
        return value
    if name == "max_frame":
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_FRAME_LIMIT:
            raise ConfigError(file, where, f"expected an integer from 1 to {MAX_FRAME_LIMIT}")
        return value
    assert name in _STR_KEYS
    if not isinstance(value, str):
        raise ConfigError(file, where, "expected a string")
    check = _STRING_CHECKS.get(name)
    if check is None:
        return value
    try:
        return check(value)
    except ValueError as exc:
        raise ConfigError(file, where, str(exc)) from None


def _tpdu(value: str) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) != TPDU_LEN:
        raise ValueError(f"expected {TPDU_LEN * 2} hex digits")
    return raw


def _station(value: str) -> str:
    station_bcd(value)
    return value


def _cups(value: str) -> str:
    cups_id(value)
    return value


_STRING_CHECKS: dict[str, Callable[[str], object]] = {
    "tpdu_default": _tpdu,
    "visa_source_station": _station,
    "visa_destination_station": _station,
    "unionpay_source_id": _cups,
    "unionpay_destination_id": _cups,
}


def make_framer(config: FramingConfig) -> Framer:
    """A fresh framer for one connection (framers hold per-connection receive state)."""
    if config.kind == "visa":
        return VisaFramer(
            source_station=config.visa_source_station,
            destination_station=config.visa_destination_station,
            max_frame=config.max_frame,
            keepalive_echo=config.keepalive_echo,
        )
    if config.kind == "unionpay":
        return UnionPayFramer(
            length_prefix=config.unionpay_length_prefix,
            length_includes_prefix=config.length_includes_prefix,
            source_id=config.unionpay_source_id,
            destination_id=config.unionpay_destination_id,
            test=config.unionpay_test_flag,
            max_frame=config.max_frame,
            keepalive_echo=config.keepalive_echo,
        )
    classes = {"binary2": Binary2Framer, "bcd2": Bcd2Framer, "ascii4": Ascii4Framer}
    try:
        cls = classes[config.kind]
    except KeyError:
        raise ValueError(f"unknown framing kind {config.kind!r}") from None
    if config.tpdu and config.kind == "ascii4":
        raise ValueError("a TPDU follows a 2-byte length only (binary2, bcd2)")
    return cls(
        tpdu=config.tpdu,
        tpdu_default=config.tpdu_default,
        length_includes_prefix=config.length_includes_prefix,
        max_frame=config.max_frame,
        keepalive_echo=config.keepalive_echo,
    )
