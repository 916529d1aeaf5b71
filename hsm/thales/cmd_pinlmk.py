"""Host commands on PINs encrypted under the LMK: BA, NG, JC, JE (DG, which reads one, is in :mod:`cmd_pin`).

Layouts from the payShield host command reference as publicly quoted (ut-codec-payshield ``messages.json``:
JC ``sourceTpk, sourcePinBlock:16, sourcePinBlockFormat:2, pan:12`` -> ``pin``; JE the same with a ZPK; the
Thales simulator's ``EncryptClearPIN_BA.xml`` and ``DecryptEncryptedPIN_NG.xml``):

- BA: PIN (the clear PIN left-justified, padded with F to L+1 characters), account 12N. BB: PIN under LMK, L+1N.
- NG: account 12N, PIN under LMK (L+1N). NH: the clear PIN padded with F (L+1), reference number 12N.
- JC: TPK, PIN block 16H, format 2N, account 12N (18 with format 04). JD: PIN under LMK, L+1N.
- JE: the same with a ZPK. JF: as JD.

The PIN under the LMK is the field's length minus the fields around it (as DG reads it), so a command can carry
any PIN length from 4 to 12. The encoding is :mod:`hsm.pinlmk`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from hsm.thales.base import Command, Response
from hsm.thales.cmd_pin import DIGITS_F, AccountField
from hsm.thales.fields import Chars, Key, Tail, digits, hexchars


@dataclass(frozen=True, slots=True, repr=False)
class PinUnderLmk(Response):
    LAYOUT = (Tail("pin", keep=0),)
    pin: str


@dataclass(frozen=True, slots=True, repr=False)
class EncryptPin(Command[PinUnderLmk]):
    CODE = "BA"
    RESPONSE = PinUnderLmk
    LAYOUT = (Tail("pin", keep=12, allowed=DIGITS_F), digits("account", 12))
    pin: str
    account: str


@dataclass(frozen=True, slots=True, repr=False)
class ClearPin(Response):
    LAYOUT = (Chars("pin", lambda c: len(c.request.pin), DIGITS_F), digits("reference", 12))
    pin: str
    reference: str


@dataclass(frozen=True, slots=True, repr=False)
class DecryptPin(Command[ClearPin]):
    CODE = "NG"
    RESPONSE = ClearPin
    LAYOUT = (digits("account", 12), Tail("pin", keep=0))
    account: str
    pin: str


@dataclass(frozen=True, slots=True, repr=False)
class TranslatePinTpkToLmk(Command[PinUnderLmk]):
    CODE = "JC"
    RESPONSE = PinUnderLmk
    LAYOUT = (Key("tpk"), hexchars("pin_block", 16), digits("pin_format", 2, public=True), AccountField("pin_format"))
    tpk: str
    pin_block: str
    pin_format: str
    account: str


@dataclass(frozen=True, slots=True, repr=False)
class TranslatePinZpkToLmk(Command[PinUnderLmk]):
    CODE = "JE"
    RESPONSE = PinUnderLmk
    LAYOUT = (Key("zpk"), hexchars("pin_block", 16), digits("pin_format", 2, public=True), AccountField("pin_format"))
    zpk: str
    pin_block: str
    pin_format: str
    account: str
