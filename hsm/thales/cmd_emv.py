"""EMV host commands: KQ (EMV 3.1.1 style) and KW (EMV 4.x) ARQC verification and ARPC generation.

Layouts (payShield host command reference as publicly quoted; ``B`` fields are raw bytes in the frame):

- KQ: mode 1N (0 verify ARQC, 1 verify ARQC and generate ARPC, 2 generate ARPC only), scheme ID 1N
  (0 Visa: the ICC master key is the AC key, e.g. CVN 10; 1 Europay / M/Chip: session key from the ATC
  and the unpredictable number, CVN 16 / 17), MK-AC, PAN/PSN 8B (EMV option A: the right-most 16 digits
  of PAN || PSN, BCD), ATC 2B, unpredictable number 4B, data length 2H, data (the host has already added
  the scheme's padding), ``;``, ARQC 8B, [modes 1 and 2: ARC 2B]. KR: [modes 1 and 2: ARPC 8B].
- KW: mode 1H (as KQ), scheme ID 1N (2 = EMV common session key, e.g. Visa CVN 18; 1 = EMV2000 tree,
  which Bulkhead's server does not offer), MK-AC, [IV-AC 16B: firmware-dependent, see
  :attr:`hsm.thales.profile.Profile.kw_iv`], PAN/PSN 8B, [scheme 1: branch/height 2H], ATC 2B, data
  length 2H, data (padded by the host), ``;``, ARQC 8B, [modes 1 and 2: CSU 4B, proprietary
  authentication data length 1H, proprietary authentication data]. KX: [modes 1 and 2: ARPC 4B]
  (ARPC method 2, as CVN 18 uses).
"""

from __future__ import annotations

from dataclasses import dataclass

from hsm.thales.base import Command, Response
from hsm.thales.fields import Binary, Ctx, Key, LengthPrefixed, Literal, Number, hexchars

KW_SCHEME_TREE = 1
KW_SCHEME_CSK = 2
KQ_SCHEME_VISA = 0
KQ_SCHEME_EUROPAY = 1


def _with_arpc(c: Ctx) -> bool:
    return c.values["mode"] in (1, 2)


def _request_with_arpc(c: Ctx) -> bool:
    return bool(c.request.mode in (1, 2))


@dataclass(frozen=True, slots=True, repr=False)
class ArpcKq(Response):
    LAYOUT = (Binary("arpc", 8, when=_request_with_arpc),)
    arpc: bytes | None


@dataclass(frozen=True, slots=True, repr=False)
class VerifyArqcKq(Command[ArpcKq]):
    CODE = "KQ"
    RESPONSE = ArpcKq
    LAYOUT = (
        Number("mode", 1),
        Number("scheme_id", 1),
        Key("mk_ac"),
        Binary("pan_psn", 8),
        Binary("atc", 2),
        Binary("unpredictable_number", 4),
        LengthPrefixed("data", 2),
        Literal(";"),
        Binary("arqc", 8),
        Binary("arc", 2, when=_with_arpc),
    )
    mode: int
    scheme_id: int
    mk_ac: str
    pan_psn: bytes
    atc: bytes
    unpredictable_number: bytes
    data: bytes
    arqc: bytes
    arc: bytes | None = None


@dataclass(frozen=True, slots=True, repr=False)
class ArpcKw(Response):
    LAYOUT = (Binary("arpc", 4, when=_request_with_arpc),)
    arpc: bytes | None


@dataclass(frozen=True, slots=True, repr=False)
class VerifyArqcKw(Command[ArpcKw]):
    CODE = "KW"
    RESPONSE = ArpcKw
    LAYOUT = (
        Number("mode", 1, radix=16),
        Number("scheme_id", 1),
        Key("mk_ac"),
        Binary("iv", 16, when=lambda c: c.profile.kw_iv),
        Binary("pan_psn", 8),
        hexchars("branch_height", 2, public=True, when=lambda c: c.values["scheme_id"] == KW_SCHEME_TREE),
        Binary("atc", 2),
        LengthPrefixed("data", 2),
        Literal(";"),
        Binary("arqc", 8),
        Binary("csu", 4, when=_with_arpc),
        LengthPrefixed("proprietary_data", 1, when=_with_arpc),
    )
    mode: int
    scheme_id: int
    mk_ac: str
    pan_psn: bytes
    atc: bytes
    data: bytes
    arqc: bytes
    iv: bytes | None = None
    branch_height: str | None = None
    csu: bytes | None = None
    proprietary_data: bytes | None = None
