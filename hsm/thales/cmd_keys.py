"""Key management host commands: A0, A4, BU, A6, A8, NC, B2.

Layouts (request fields after the command code; response fields after the error code), from the payShield
host command reference as publicly quoted (Thales manual pages cited by open-source clients):

- A0 generate key: mode 1N (0, or 1 = also export), key type 3H, key scheme (LMK) 1A; mode 1: [``;`` ZMK/TMK
  flag 1N (0 ZMK, 1 TMK)], ZMK/TMK, key scheme (ZMK) 1A. A1: key under LMK; mode 1: key under ZMK; KCV 6H.
- BU key check value: key type code 2 (``FF`` = the 3H key type follows after ``;``; otherwise ``0d`` stands
  for key type ``00d``), key length flag 1N (0 single, 1 double, 2 triple; also the length of a key given
  without scheme letter), key; [``;`` reserved ``00``, KCV type 1N (0 = 16H, 1 = 6H)]. BV: KCV 16H or 6H.
- A6 import: key type 3H, ZMK, key under ZMK, key scheme (LMK) 1A. A7: key under LMK, KCV 6H; error 01
  (parity forced, advisory) still carries both fields. A key under the ZMK written ``R`` + TR-31 key block
  is a TR-31 import (versions B and D).
- A8 export: key type 3H, ZMK, key under LMK, key scheme (ZMK) 1A. A9: key under ZMK, KCV 6H. Scheme ``R``
  exports a TR-31 key block; it is followed by ``#``, TR-31 version 1A (B or D), key usage 2A, mode of use
  1A, key version 2A, exportability 1A (Bulkhead's layout, modelled on the ``#`` key-block attribute group of
  key-block payShields; ``**`` / ``*`` for usage / mode mean "derive from the key type").
- A4 form a key from encrypted components: number of components 1N (2-9), key type 3H, key scheme (LMK) 1A,
  the components, each encrypted under the LMK as that key type (ut-codec-payshield ``messages.json``
  ``formKeyFromComponents``: ``numberOfComponents:1, keyType:3, keySchemeLmk:1, keyComponents``; error 03 "invalid
  number of components", 10 "component parity error"). A5: key under LMK, KCV 6H.
- NC diagnostics: no fields. ND: LMK check value 16H, firmware number 9A.
- B2 echo: length 4H, data. B3: data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from hsm.thales.base import Command, Response
from hsm.thales.fields import (
    Ctx,
    IfNext,
    Key,
    Keys,
    LengthPrefixed,
    Literal,
    Number,
    Rest,
    digits,
    hexchars,
    text,
)


@dataclass(frozen=True, slots=True, repr=False)
class KeyGenerated(Response):
    LAYOUT = (
        Key("key"),
        Key("key_under_zmk", when=lambda c: c.request.mode == 1),
        hexchars("kcv", 6, public=True),
    )
    key: str
    key_under_zmk: str | None
    kcv: str


@dataclass(frozen=True, slots=True, repr=False)
class GenerateKey(Command[KeyGenerated]):
    CODE = "A0"
    RESPONSE = KeyGenerated
    LAYOUT = (
        Number("mode", 1),
        hexchars("key_type", 3, public=True),
        text("lmk_scheme", 1, public=True),
        IfNext(";", [Number("zmk_flag", 1)], when=lambda c: c.values["mode"] == 1),
        Key("zmk", when=lambda c: c.values["mode"] == 1),
        text("zmk_scheme", 1, public=True, when=lambda c: c.values["mode"] == 1),
    )
    mode: int
    key_type: str
    lmk_scheme: str
    zmk_flag: int | None = None
    zmk: str | None = None
    zmk_scheme: str | None = None


@dataclass(frozen=True, slots=True, repr=False)
class KeyFormed(Response):
    LAYOUT = (Key("key"), hexchars("kcv", 6, public=True))
    key: str
    kcv: str


_COMPONENT_PLAIN = {"Z": 16, "U": 32, "X": 32, "T": 48, "Y": 48}


@dataclass(frozen=True, slots=True, repr=False)
class FormKeyFromComponents(Command[KeyFormed]):
    CODE = "A4"
    RESPONSE = KeyFormed
    LAYOUT = (
        Number("count", 1),
        hexchars("key_type", 3, public=True),
        text("lmk_scheme", 1, public=True),
        Keys("components", "count", plain=lambda c: _COMPONENT_PLAIN.get(str(c.values["lmk_scheme"]), 32)),
    )
    count: int
    key_type: str
    lmk_scheme: str
    components: tuple[str, ...]


@dataclass(frozen=True, slots=True, repr=False)
class CheckValue(Response):
    LAYOUT = (hexchars("kcv", lambda c: 6 if c.request.kcv_type == 1 else 16, public=True),)
    kcv: str


@dataclass(frozen=True, slots=True, repr=False)
class KeyCheckValue(Command[CheckValue]):
    CODE = "BU"
    RESPONSE = CheckValue
    LAYOUT = (
        text("key_type_code", 2, public=True),
        Number("key_length_flag", 1),
        Key("key", plain=lambda c: 16 * (c.values["key_length_flag"] + 1)),
        Literal(";", when=lambda c: c.values["key_type_code"] == "FF"),
        hexchars("key_type", 3, public=True, when=lambda c: c.values["key_type_code"] == "FF"),
        IfNext(";", [digits("reserved", 2, public=True), Number("kcv_type", 1)], key="kcv_type"),
    )
    key_type_code: str
    key_length_flag: int
    key: str
    key_type: str | None = None
    reserved: str | None = None
    kcv_type: int | None = None

    @property
    def resolved_key_type(self) -> str:
        """The 3-digit key type: the explicit one for code ``FF``, else ``0`` + the 2-character code."""
        return self.key_type if self.key_type_code == "FF" and self.key_type else "0" + self.key_type_code


@dataclass(frozen=True, slots=True, repr=False)
class KeyImported(Response):
    LAYOUT = (Key("key"), hexchars("kcv", 6, public=True))
    key: str
    kcv: str


@dataclass(frozen=True, slots=True, repr=False)
class ImportKey(Command[KeyImported]):
    CODE = "A6"
    RESPONSE = KeyImported
    FIELDS_ON: ClassVar[frozenset[str]] = frozenset({"00", "01"})
    LAYOUT = (
        hexchars("key_type", 3, public=True),
        Key("zmk"),
        Key("key_under_zmk"),
        text("lmk_scheme", 1, public=True),
    )
    key_type: str
    zmk: str
    key_under_zmk: str
    lmk_scheme: str


def _tr31(c: Ctx) -> bool:
    """A8 with key scheme R: the key leaves as a TR-31 key block, whose attributes follow ``#``."""
    return bool(c.values["zmk_scheme"] == "R")


@dataclass(frozen=True, slots=True, repr=False)
class KeyExported(Response):
    LAYOUT = (Key("key_under_zmk"), hexchars("kcv", 6, public=True))
    key_under_zmk: str
    kcv: str


@dataclass(frozen=True, slots=True, repr=False)
class ExportKey(Command[KeyExported]):
    CODE = "A8"
    RESPONSE = KeyExported
    LAYOUT = (
        hexchars("key_type", 3, public=True),
        Key("zmk"),
        Key("key"),
        text("zmk_scheme", 1, public=True),
        Literal("#", when=_tr31),
        text("tr31_version", 1, public=True, when=_tr31),
        text("usage", 2, public=True, when=_tr31),
        text("mode_of_use", 1, public=True, when=_tr31),
        text("key_version", 2, public=True, when=_tr31),
        text("exportability", 1, public=True, when=_tr31),
    )
    key_type: str
    zmk: str
    key: str
    zmk_scheme: str
    tr31_version: str | None = None
    usage: str | None = None
    mode_of_use: str | None = None
    key_version: str | None = None
    exportability: str | None = None


@dataclass(frozen=True, slots=True, repr=False)
class DiagnosticsResult(Response):
    LAYOUT = (hexchars("lmk_check_value", 16, public=True), text("firmware", 9, public=True))
    lmk_check_value: str
    firmware: str


@dataclass(frozen=True, slots=True, repr=False)
class Diagnostics(Command[DiagnosticsResult]):
    CODE = "NC"
    RESPONSE = DiagnosticsResult
    LAYOUT = ()


@dataclass(frozen=True, slots=True, repr=False)
class Echoed(Response):
    LAYOUT = (Rest("data", stop_at_trailer=False),)
    data: bytes


@dataclass(frozen=True, slots=True, repr=False)
class Echo(Command[Echoed]):
    CODE = "B2"
    RESPONSE = Echoed
    LAYOUT = (LengthPrefixed("data", 4),)
    data: bytes
