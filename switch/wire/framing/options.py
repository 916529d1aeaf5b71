"""Options of the plain length-prefix framings, read from a link's ``framing`` table.

``binary2``, ``bcd2`` and ``ascii4`` are shared wire helpers: any network whose links use a length prefix
accepts them (the generic ISO 8583 hosts, the bank's ATM interface; Mastercard's 2-byte length). A network with a
framing of its own (VISA's VMLH and BASE I header, UnionPay's 46-byte header) reads its table with the same
helpers (:func:`framing_kind`, :func:`limits`) and its own keys.

Everything is checked when the configuration is loaded (STYLE 14): unknown keys (with a suggestion), wrong types,
values out of range and settings that do not apply to the chosen kind are
:class:`~switch.model.errors.ConfigError` naming the file, the key and the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from switch.model.toml import TomlTable
from switch.wire.framing.base import Framer
from switch.wire.framing.length import TPDU_LEN, Ascii4Framer, Bcd2Framer, Binary2Framer, LengthPrefixFramer

LENGTH_KINDS = ("binary2", "bcd2", "ascii4")
# Nothing here can carry more: the largest length prefix is two binary bytes.
MAX_FRAME_LIMIT = 0xFFFF
_CLASSES: dict[str, type[LengthPrefixFramer]] = {"binary2": Binary2Framer, "bcd2": Bcd2Framer, "ascii4": Ascii4Framer}
_TPDU_KINDS = ("binary2", "bcd2")  # a TPDU follows a 2-byte length only


@dataclass(frozen=True)
class LengthFraming:
    """A length-prefix framing: 2-byte binary, 2-byte BCD or 4 ASCII digits, optionally with a 5-byte TPDU."""

    kind: str = "binary2"
    tpdu: bool = False  # 5-byte TPDU after the length (binary2/bcd2 only)
    tpdu_default: bytes = bytes.fromhex("6000000000")  # TPDU for requests we originate
    length_includes_prefix: bool = False  # some hosts count the prefix itself (jPOS include-header-length)
    max_frame: int = 8192
    keepalive_echo: bool = True  # echo zero-length frames

    def __post_init__(self) -> None:
        if self.kind not in _CLASSES:
            raise ValueError(f"unknown length framing {self.kind!r} (one of: {', '.join(LENGTH_KINDS)})")
        if self.tpdu and self.kind not in _TPDU_KINDS:
            raise ValueError("a TPDU follows a 2-byte length only (binary2, bcd2)")

    @property
    def framing_kind(self) -> str:
        return self.kind

    def framer(self) -> Framer:
        """A fresh framer for one connection (framers hold per-connection receive state)."""
        return _CLASSES[self.kind](tpdu=self.tpdu, tpdu_default=self.tpdu_default,
                                   length_includes_prefix=self.length_includes_prefix, max_frame=self.max_frame,
                                   keepalive_echo=self.keepalive_echo)


def framing_kind(t: TomlTable, kinds: Sequence[str], network: str) -> str:
    """The ``kind`` of a framing table, which must be one of the network's ``kinds``."""
    kind = t.get("kind", str, required=True)
    if kind not in kinds:
        raise t.error("kind", f"framing {kind!r} does not belong to network {network!r} "
                              f"(its framings: {', '.join(kinds)})")
    return str(kind)


def limits(t: TomlTable) -> tuple[int, bool]:
    """``max_frame`` (1 .. 65535, default 8192) and ``keepalive_echo`` (default true): keys every framing takes."""
    max_frame = t.integer("max_frame", 8192, low=1, high=MAX_FRAME_LIMIT)
    return max_frame, bool(t.get("keepalive_echo", bool, True))


def tpdu_bytes(t: TomlTable, name: str) -> bytes:
    text = t.get(name, str, required=True)
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != TPDU_LEN:
        raise t.error(name, f"expected {TPDU_LEN * 2} hex digits")
    return raw


def length_framing(t: TomlTable, kinds: Sequence[str] = LENGTH_KINDS, network: str = "") -> LengthFraming:
    """Read a length-prefix framing table (``kind`` one of ``kinds``); ``done()`` is called."""
    kind = framing_kind(t, kinds, network)
    max_frame, echo = limits(t)
    tpdu = bool(t.get("tpdu", bool, False))
    if tpdu and kind not in _TPDU_KINDS:
        raise t.error("tpdu", f"does not apply to framing {kind!r} (a TPDU follows a 2-byte length)")
    default = LengthFraming.tpdu_default
    if "tpdu_default" in t.data:
        if kind not in _TPDU_KINDS:
            raise t.error("tpdu_default", f"does not apply to framing {kind!r}")
        default = tpdu_bytes(t, "tpdu_default")
    cfg = LengthFraming(kind, tpdu=tpdu, tpdu_default=default,
                        length_includes_prefix=bool(t.get("length_includes_prefix", bool, False)),
                        max_frame=max_frame, keepalive_echo=echo)
    t.done()
    return cfg
