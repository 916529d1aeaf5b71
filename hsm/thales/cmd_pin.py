"""PIN host commands: CA, CC, CI, G0 (translate), DA, EA, DC, EC (verify), DG, FW, BK (generate).

Layouts from the payShield host command reference as publicly quoted (manual pages cited by open-source clients):

- CA: TPK, ZPK, max PIN length 2N, PIN block, source format 2N, destination format 2N, account 12N.
  CC: the same with source ZPK and destination ZPK. CB / CD: PIN length 2N, PIN block, format 2N.
- CI: BDK, ZPK, KSN descriptor 3H, KSN, PIN block, destination format 2N, account 12N.
  G0: as CI with the source format 2N before the destination format. CJ / G1: as CB.
  The KSN is as long as the descriptor says: BDK-ID + sub-key-ID + device-ID lengths (the three hex digits)
  plus 5 counter digits, so ``605`` -> 16H and ``A05`` -> 20H (the HSM left-pads it to 20H with F); the
  payShield manual gives the field as "12 - 20 H". Public host-command builders and open-source payShield
  simulators send it padded to 20H whatever the descriptor: the Thales simulator (nickntg/thalessimulatorlibrary,
  ``ThalesCore/XMLDefs/HostCommands/TranslatePINFromDUKPTToZPK_CI.xml`` and ``..._G0.xml``: "Key Serial Number",
  length 20) and ut-codec-payshield (``messages.json``, GO: ``ksnDescriptor:3/string, ksn:20/string``). So both
  lengths are read: the exact one when the fields after it then end the message, else 20H (see
  :func:`hsm.dukpt.expand_ksn` for how a padded KSN is used).
- DA (TPK) / EA (ZPK): PIN key, PVK, max PIN length 2N, PIN block, format 2N, check length 2N, account 12N,
  decimalisation table 16H, PIN validation data 12A, offset 12H. DB / EB: error code only (01 = mismatch).
- DC (TPK) / EC (ZPK): PIN key, PVK pair, PIN block, format 2N, account 12N, PVKI 1N, PVV 4N.
- DG: PVK pair, PIN under LMK (PIN length + 1 characters), account 12N, PVKI 1N. DH: PVV 4N.
- FW: key type 3H (001 ZPK / 002 TPK), PIN key, PVK pair, PIN block, format 2N, account 12N, PVKI 1N.
  FX: PVV 4N.
- BK (generate an IBM offset, for PIN issuance and change; not in the reference table but in the same
  public command set): key type 3H, PIN key, PVK, PIN block, format 2N, check length 2N, account 12N,
  decimalisation table 16H, PIN validation data 12A. BL: offset 12H (error 02 = advisory, fields present).

A PVK or CVK pair written without scheme letter is 32H (key A then key B); other bare keys are 16H.

PIN block format 04 (PLUS) binds the account number's left-most digits: when a format field of CA, CC, DA, EA,
DC, EC, FW or BK is 04 the account field is the full account number in 18 characters, right-justified and padded
with F (payShield manual, "Format 04": "the account number field becomes 18 digits in length").

Bulkhead extension for ISO format 4 (code 48, AES), which a variant-LMK payShield cannot do: a PIN block under
an AES key (scheme ``R``, see :mod:`hsm.software`) is 32H, and when a source or destination format is 48 the
12N account field is followed by the full PAN (length 2N, then the digits), because format 4 binds the whole
PAN. Without format 48 the layouts are exactly the payShield ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from hsm.pinblock import PLUS, PLUS_ACCOUNT_WIDTH
from hsm.thales.base import Command, NoFields, Response
from hsm.thales.fields import (
    DIGITS,
    Chars,
    Ctx,
    HexChoice,
    Key,
    Layout,
    LengthPrefixed,
    Number,
    Reader,
    Spec,
    Tail,
    digits,
    hexchars,
    text,
)

FORMAT_4 = "48"


def _block_length(key_field: str) -> Callable[[Ctx], int]:
    """A PIN block is 32H under an AES key (``R`` key block), else 16H."""
    return lambda c: 32 if str(c.values[key_field]).startswith("R") else 16


def _with_pan(*format_fields: str) -> Callable[[Ctx], bool]:
    return lambda c: any(c.values.get(f) == FORMAT_4 for f in format_fields)


def _pan(*format_fields: str) -> LengthPrefixed:
    return LengthPrefixed("pan", 2, radix=10, allowed=DIGITS, when=_with_pan(*format_fields))


class AccountField(Spec):
    """The account field: 12N, or, when one of ``formats`` is 04 (PLUS), the full account number in 18
    characters, right-justified and padded with F (payShield manual, "Format 04"). The value is the 12 digits,
    or the full account number without its padding."""

    def __init__(self, *formats: str) -> None:
        self.name, self.formats = "account", formats

    def _plus(self, ctx: Ctx) -> bool:
        return any(ctx.values.get(f) == PLUS for f in self.formats)

    def read(self, r: Reader, ctx: Ctx) -> str:
        if not self._plus(ctx):
            return str(digits("account", 12).read(r, ctx))
        start = r.pos
        number = str(Chars("account", PLUS_ACCOUNT_WIDTH, DIGITS_F).read(r, ctx)).lstrip("F")
        if not number.isdigit():
            r.pos = start
            raise r.fail("account", "not digits right-justified and padded with F")
        return number

    def write(self, value: Any, ctx: Ctx) -> bytes:
        if not self._plus(ctx):
            return digits("account", 12).write(value, ctx)
        if not isinstance(value, str) or not value.isdigit() or len(value) > PLUS_ACCOUNT_WIDTH:
            raise self.local_error(ctx, f"format 04 needs the account number, at most {PLUS_ACCOUNT_WIDTH} digits")
        return value.rjust(PLUS_ACCOUNT_WIDTH, "F").encode("ascii")


DIGITS_F = DIGITS | frozenset(b"F")


def _result_block(c: Ctx) -> int:
    return 32 if c.request.destination_format == FORMAT_4 else 16


@dataclass(frozen=True, slots=True, repr=False)
class PinTranslated(Response):
    LAYOUT = (
        Number("pin_length", 2),
        hexchars("pin_block", _result_block),
        digits("pin_format", 2, public=True),
    )
    pin_length: int
    pin_block: str
    pin_format: str


def _translate_layout(source: str, destination: str) -> Layout:
    return (
        Key(source),
        Key(destination),
        Number("max_pin_length", 2),
        hexchars("pin_block", _block_length(source)),
        digits("source_format", 2, public=True),
        digits("destination_format", 2, public=True),
        AccountField("source_format", "destination_format"),
        _pan("source_format", "destination_format"),
    )


@dataclass(frozen=True, slots=True, repr=False)
class TranslatePinTpkToZpk(Command[PinTranslated]):
    CODE = "CA"
    RESPONSE = PinTranslated
    LAYOUT = _translate_layout("tpk", "zpk")
    tpk: str
    zpk: str
    max_pin_length: int
    pin_block: str
    source_format: str
    destination_format: str
    account: str
    pan: str | None = None


@dataclass(frozen=True, slots=True, repr=False)
class TranslatePinZpkToZpk(Command[PinTranslated]):
    CODE = "CC"
    RESPONSE = PinTranslated
    LAYOUT = _translate_layout("source_zpk", "destination_zpk")
    source_zpk: str
    destination_zpk: str
    max_pin_length: int
    pin_block: str
    source_format: str
    destination_format: str
    account: str
    pan: str | None = None


KSN_PADDED = 20


def _ksn_lengths(c: Ctx) -> tuple[int, ...]:
    """The KSN's length by its descriptor, then the 20H padded form (see the module docstring)."""
    descriptor = str(c.values["ksn_descriptor"])
    return sum(int(ch, 16) for ch in descriptor) + 5, KSN_PADDED


def _ksn_and(*tail: Spec) -> tuple[Spec, ...]:
    """The KSN field (exact or padded length, decided by the fields after it), then those fields."""
    return (HexChoice("ksn", _ksn_lengths, tail), *tail)


@dataclass(frozen=True, slots=True, repr=False)
class TranslatePinDukpt(Command[PinTranslated]):
    """CI: TDES DUKPT (source format always 01) to a ZPK."""

    CODE = "CI"
    RESPONSE = PinTranslated
    LAYOUT = (
        Key("bdk"),
        Key("zpk"),
        hexchars("ksn_descriptor", 3, public=True),
        *_ksn_and(
            hexchars("pin_block", 16),
            digits("destination_format", 2, public=True),
            digits("account", 12),
            _pan("destination_format"),
        ),
    )
    bdk: str
    zpk: str
    ksn_descriptor: str
    ksn: str
    pin_block: str
    destination_format: str
    account: str
    pan: str | None = None


@dataclass(frozen=True, slots=True, repr=False)
class TranslatePinDukptFormat(Command[PinTranslated]):
    """G0: DUKPT with an explicit source format; with an AES BDK (``R``) it is AES DUKPT (X9.24-3)."""

    CODE = "G0"
    RESPONSE = PinTranslated
    LAYOUT = (
        Key("bdk"),
        Key("zpk"),
        hexchars("ksn_descriptor", 3, public=True),
        *_ksn_and(
            hexchars("pin_block", _block_length("bdk")),
            digits("source_format", 2, public=True),
            digits("destination_format", 2, public=True),
            digits("account", 12),
            _pan("source_format", "destination_format"),
        ),
    )
    bdk: str
    zpk: str
    ksn_descriptor: str
    ksn: str
    pin_block: str
    source_format: str
    destination_format: str
    account: str
    pan: str | None = None


def _ibm_layout(pin_key: str) -> Layout:
    return (
        Key(pin_key),
        Key("pvk"),
        Number("max_pin_length", 2),
        hexchars("pin_block", _block_length(pin_key)),
        digits("pin_format", 2, public=True),
        Number("check_length", 2),
        AccountField("pin_format"),
        hexchars("decimalisation_table", 16),
        text("validation_data", 12),
        hexchars("offset", 12),
        _pan("pin_format"),
    )


@dataclass(frozen=True, slots=True, repr=False)
class VerifyPinIbmTpk(Command[NoFields]):
    CODE = "DA"
    FIELDS_ON: ClassVar[frozenset[str]] = frozenset({"00", "02"})
    LAYOUT = _ibm_layout("tpk")
    tpk: str
    pvk: str
    max_pin_length: int
    pin_block: str
    pin_format: str
    check_length: int
    account: str
    decimalisation_table: str
    validation_data: str
    offset: str
    pan: str | None = None


@dataclass(frozen=True, slots=True, repr=False)
class VerifyPinIbmZpk(Command[NoFields]):
    CODE = "EA"
    FIELDS_ON: ClassVar[frozenset[str]] = frozenset({"00", "02"})
    LAYOUT = _ibm_layout("zpk")
    zpk: str
    pvk: str
    max_pin_length: int
    pin_block: str
    pin_format: str
    check_length: int
    account: str
    decimalisation_table: str
    validation_data: str
    offset: str
    pan: str | None = None


def _pvv_layout(pin_key: str) -> Layout:
    return (
        Key(pin_key),
        Key("pvk", plain=32),
        hexchars("pin_block", _block_length(pin_key)),
        digits("pin_format", 2, public=True),
        AccountField("pin_format"),
        Number("pvki", 1),
        digits("pvv", 4),
        _pan("pin_format"),
    )


@dataclass(frozen=True, slots=True, repr=False)
class VerifyPinPvvTpk(Command[NoFields]):
    CODE = "DC"
    LAYOUT = _pvv_layout("tpk")
    tpk: str
    pvk: str
    pin_block: str
    pin_format: str
    account: str
    pvki: int
    pvv: str
    pan: str | None = None


@dataclass(frozen=True, slots=True, repr=False)
class VerifyPinPvvZpk(Command[NoFields]):
    CODE = "EC"
    LAYOUT = _pvv_layout("zpk")
    zpk: str
    pvk: str
    pin_block: str
    pin_format: str
    account: str
    pvki: int
    pvv: str
    pan: str | None = None


@dataclass(frozen=True, slots=True, repr=False)
class PvvGenerated(Response):
    LAYOUT = (digits("pvv", 4),)
    pvv: str


@dataclass(frozen=True, slots=True, repr=False)
class GeneratePvvFromLmkPin(Command[PvvGenerated]):
    CODE = "DG"
    RESPONSE = PvvGenerated
    LAYOUT = (Key("pvk", plain=32), Tail("pin", keep=13), digits("account", 12), Number("pvki", 1))
    pvk: str
    pin: str
    account: str
    pvki: int


@dataclass(frozen=True, slots=True, repr=False)
class GeneratePvv(Command[PvvGenerated]):
    CODE = "FW"
    RESPONSE = PvvGenerated
    LAYOUT = (
        hexchars("key_type", 3, public=True),
        Key("pin_key"),
        Key("pvk", plain=32),
        hexchars("pin_block", _block_length("pin_key")),
        digits("pin_format", 2, public=True),
        AccountField("pin_format"),
        Number("pvki", 1),
        _pan("pin_format"),
    )
    key_type: str
    pin_key: str
    pvk: str
    pin_block: str
    pin_format: str
    account: str
    pvki: int
    pan: str | None = None


@dataclass(frozen=True, slots=True, repr=False)
class OffsetGenerated(Response):
    LAYOUT = (hexchars("offset", 12),)
    offset: str


@dataclass(frozen=True, slots=True, repr=False)
class GenerateIbmOffset(Command[OffsetGenerated]):
    CODE = "BK"
    RESPONSE = OffsetGenerated
    FIELDS_ON: ClassVar[frozenset[str]] = frozenset({"00", "02"})
    LAYOUT = (
        hexchars("key_type", 3, public=True),
        Key("pin_key"),
        Key("pvk"),
        hexchars("pin_block", _block_length("pin_key")),
        digits("pin_format", 2, public=True),
        Number("check_length", 2),
        AccountField("pin_format"),
        hexchars("decimalisation_table", 16),
        text("validation_data", 12),
        _pan("pin_format"),
    )
    key_type: str
    pin_key: str
    pvk: str
    pin_block: str
    pin_format: str
    check_length: int
    account: str
    decimalisation_table: str
    validation_data: str
    pan: str | None = None
