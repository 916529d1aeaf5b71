"""Card verification and MAC host commands: CW, CY, M6, M8, MA, MC.

Layouts (payShield host command reference as publicly quoted; request fields after the command code):

- CW: CVK A/B (32H or 1A+32H), PAN (up to 19N), ``;``, expiry 4N (YYMM), service code 3N. CX: CVV 3N.
- CY: CVK A/B, CVV 3N, PAN, ``;``, expiry 4N, service code 3N. CZ: error code only (01 = mismatch).
- M6: mode flag 1N (0 whole message, 1 first block, 2 middle, 3 final), input format 1N (0 binary, 1 hex,
  2 text), [MAC size 1N: newer firmware only], MAC algorithm (1N newer, 2N older firmware), padding 1N
  (0 none, 1-3 ISO 9797-1 methods 1-3), key type 3H (003 TAK, 008 ZAK), key, [IV 16H for modes 2 and 3;
  32H under an AES key], message length 4H, message. M7: the MAC (modes 0, 3) or the chaining IV
  (modes 1, 2).
  M8: as M6 with the MAC after the message. M9: error code only.
  The MAC size and the algorithm width are firmware-dependent: :class:`hsm.thales.profile.Profile`.
  MAC algorithm numbers are those of ISO 9797-1: 1 (CBC-MAC), 3 (retail MAC, X9.19), 5 (CMAC; Bulkhead,
  for AES keys). MAC size: 0 = 8H, 1 = 16H, 2 = 32H (the last is Bulkhead's, for a full AES-CMAC); without
  the field the MAC is 8H. The message length counts the characters (or bytes) of the message field as
  sent, so hex input of 8 bytes has length 0010.
- MA (legacy, X9.9 / X9.19 with a TAK): TAK, data (to the end of the message). MB: MAC 8H.
  MC: TAK, MAC 8H, data. MD: error code only.
"""

from __future__ import annotations

from dataclasses import dataclass

from hsm.thales.base import Command, NoFields, Response
from hsm.thales.fields import (
    Ctx,
    Key,
    Layout,
    LengthPrefixed,
    Literal,
    Number,
    Rest,
    Spec,
    UpTo,
    digits,
    hexchars,
)
from hsm.thales.profile import Profile


@dataclass(frozen=True, slots=True, repr=False)
class CvvGenerated(Response):
    LAYOUT = (digits("cvv", 3),)
    cvv: str


@dataclass(frozen=True, slots=True, repr=False)
class GenerateCvv(Command[CvvGenerated]):
    CODE = "CW"
    RESPONSE = CvvGenerated
    LAYOUT = (
        Key("cvk", plain=32),
        UpTo("pan", ";", 19),
        Literal(";"),
        digits("expiry", 4),
        digits("service_code", 3, public=True),
    )
    cvk: str
    pan: str
    expiry: str
    service_code: str


@dataclass(frozen=True, slots=True, repr=False)
class VerifyCvv(Command[NoFields]):
    CODE = "CY"
    LAYOUT = (
        Key("cvk", plain=32),
        digits("cvv", 3),
        UpTo("pan", ";", 19),
        Literal(";"),
        digits("expiry", 4),
        digits("service_code", 3, public=True),
    )
    cvk: str
    cvv: str
    pan: str
    expiry: str
    service_code: str


MAC_SIZES = {0: 8, 1: 16, 2: 32}
"""MAC size code -> hex characters of the MAC."""


def mac_chars(mac_size: int | None, profile: Profile) -> int:
    """Hex characters of the MAC for a MAC size code (8 when the firmware has no MAC size field)."""
    if not profile.m6_mac_size or mac_size is None:
        return 8
    return MAC_SIZES.get(mac_size, 8)


def mac_size_code(mac_hex_chars: int) -> int:
    """The MAC size code for a MAC of this many hex characters."""
    for code, chars in MAC_SIZES.items():
        if chars == mac_hex_chars:
            return code
    raise ValueError(f"no MAC size code for a {mac_hex_chars}H MAC")


def _chaining(c: Ctx) -> int:
    """IV / chaining value: one cipher block, 16H for TDES keys, 32H for AES (``R``) keys."""
    return 32 if str(c.values["key"]).startswith("R") else 16


def _mac_layout(*, with_mac: bool) -> Layout:
    layout: list[Spec] = [
        Number("mode", 1),
        Number("input_format", 1),
        Number("mac_size", 1, when=lambda c: c.profile.m6_mac_size),
        Number("algorithm", lambda c: c.profile.m6_algorithm_digits),
        Number("padding", 1),
        hexchars("key_type", 3, public=True),
        Key("key"),
        hexchars("iv", _chaining, when=lambda c: c.values["mode"] in (2, 3)),
        LengthPrefixed("message", 4),
    ]
    if with_mac:
        layout.append(hexchars("mac", lambda c: mac_chars(c.values["mac_size"], c.profile)))
    return tuple(layout)


def _final(c: Ctx) -> bool:
    return bool(c.request.mode in (0, 3))


@dataclass(frozen=True, slots=True, repr=False)
class MacGenerated(Response):
    """The MAC for modes 0 and 3; for modes 1 and 2 the chaining value to send back as the next IV."""

    LAYOUT = (
        hexchars("mac", lambda c: mac_chars(c.request.mac_size, c.profile), when=_final),
        hexchars("iv", lambda c: 32 if c.request.key.startswith("R") else 16, when=lambda c: not _final(c)),
    )
    mac: str | None
    iv: str | None


@dataclass(frozen=True, slots=True, repr=False)
class GenerateMac(Command[MacGenerated]):
    CODE = "M6"
    RESPONSE = MacGenerated
    LAYOUT = _mac_layout(with_mac=False)
    mode: int
    input_format: int
    mac_size: int | None
    algorithm: int
    padding: int
    key_type: str
    key: str
    message: bytes
    iv: str | None = None


@dataclass(frozen=True, slots=True, repr=False)
class VerifyMac(Command[NoFields]):
    CODE = "M8"
    LAYOUT = _mac_layout(with_mac=True)
    mode: int
    input_format: int
    mac_size: int | None
    algorithm: int
    padding: int
    key_type: str
    key: str
    message: bytes
    mac: str
    iv: str | None = None


@dataclass(frozen=True, slots=True, repr=False)
class LegacyMacGenerated(Response):
    LAYOUT = (hexchars("mac", 8),)
    mac: str


@dataclass(frozen=True, slots=True, repr=False)
class GenerateMacLegacy(Command[LegacyMacGenerated]):
    CODE = "MA"
    RESPONSE = LegacyMacGenerated
    LAYOUT = (Key("tak"), Rest("data"))
    tak: str
    data: bytes


@dataclass(frozen=True, slots=True, repr=False)
class VerifyMacLegacy(Command[NoFields]):
    CODE = "MC"
    LAYOUT = (Key("tak"), hexchars("mac", 8), Rest("data"))
    tak: str
    mac: str
    data: bytes
