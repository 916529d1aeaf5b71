"""Typed errors of the HSM package.

One root, :class:`HsmError`, whose ``code`` is the two-character payShield error code the host protocol
answers with (payShield host command manual, error code table): 01 verification failure, 04 key type code,
10/11 source/destination key parity, 13 LMK, 15 invalid input, 20 PIN block, 22 account, 23 PIN block format,
24 PIN length, 25 decimalisation table, 26 key scheme, 27 key length, 28 key type for the operation, 29 key
function not permitted, 41 internal error, 80 data length, 83/84 key block format/MAC, A1-BE other key block
errors (A6 key usage, A8 mode of use, AA exportability, BE key block version). The
payShield-compatible server turns any :class:`HsmError` into a response carrying ``code``; any other exception
is a bug and answers 41.

No message text ever carries a clear key, PIN, PIN block, CVV or full PAN: constructors take only the
facts (which field, which key type, which length) and callers must not format secrets into ``detail``.
"""

from __future__ import annotations


class HsmError(Exception):
    """Root of every error raised by the ``hsm`` package. ``code`` is the Thales 2-character error code."""

    code: str = "41"

    def __init__(self, detail: str, code: str | None = None) -> None:
        if code is not None:
            self.code = code
        self.detail = detail
        super().__init__(f"HSM error {self.code}: {detail}")


class HsmUnavailableError(HsmError):
    """The HSM did not answer (a remote HSM's connection dropped or the command timed out): the request could not be
    checked, which is not the same as a check that failed. Part of the interface (hsm.api): any backend raises it."""

    code = "41"


class VerificationFailure(HsmError):
    """01: a PIN, CVV, MAC or cryptogram did not verify.

    :class:`hsm.software.SoftwareHsm` ``verify_*`` methods return ``False`` instead of raising; this class is
    for callers (the Thales client, the async interface) that prefer an exception.
    """

    code = "01"


class KeyComponentError(HsmError):
    """03: the number of key components is not one this function accepts (A4: 2 to 9; the interface's dual
    control: 2 or 3)."""

    code = "03"


class KeyLengthError(HsmError):
    """27: key length not allowed for the key type, scheme or operation (or 02 / 05 on BU)."""

    code = "27"


class KeyTypeError(HsmError):
    """04: unknown key type code; 28 (pass ``code="28"``): key type not valid for this operation."""

    code = "04"


class KeyParityError(HsmError):
    """10 (source key) or 11 (destination key): a key decrypted from the LMK or a ZMK has even parity.

    Under a variant LMK a key decrypted with the wrong key type almost always shows a parity error, so this is
    also what a wrong key type code looks like.
    """

    code = "10"

    def __init__(self, detail: str, *, destination: bool = False) -> None:
        super().__init__(detail, "11" if destination else "10")
        self.destination = destination


class KeyFunctionError(HsmError):
    """29: key function not permitted (e.g. exporting a key that arrived as non-exportable)."""

    code = "29"


class LmkError(HsmError):
    """13: the LMK is missing, malformed or its file is not protected."""

    code = "13"


class LmkFileError(LmkError):
    """The LMK file cannot be used: unreadable, malformed, or readable by group/others.

    Carries the path and (for permission refusals) the octal mode, never any key material.
    """

    def __init__(self, path: str, reason: str, mode: int | None = None) -> None:
        self.path = path
        self.mode = mode
        where = f"{path} (mode {mode:04o})" if mode is not None else path
        super().__init__(f"LMK file {where}: {reason}")


class InvalidInputError(HsmError):
    """15: a field is malformed (not hex, wrong length, out of range)."""

    code = "15"


class PinBlockError(HsmError):
    """20: a PIN block does not decode to a valid PIN (bad control field, fill or digits)."""

    code = "20"


class AccountError(HsmError):
    """22: invalid account number / PAN for the operation."""

    code = "22"


class PinBlockFormatError(HsmError):
    """23: unknown or unsupported PIN block format code, or a format not usable with the key."""

    code = "23"


class PinLengthError(HsmError):
    """24: PIN shorter than 4 or longer than the permitted maximum (12 or the command's maximum)."""

    code = "24"


class DecimalisationError(HsmError):
    """25: the decimalisation table is not 16 decimal digits, or fails the table check (every digit 0-9
    present, none more than 4 times; see :func:`hsm.pinverify.check_decimalisation_table`)."""

    code = "25"


class KeySchemeError(HsmError):
    """26: unknown key scheme letter, or a scheme that cannot hold this key length."""

    code = "26"


class DataLengthError(HsmError):
    """80: message or data length is wrong (e.g. no padding and not a whole number of blocks)."""

    code = "80"


class KeyBlockError(HsmError):
    """A TR-31 key block cannot be used: 83 format error, 84 MAC (check value) failure, A1-BE others."""

    code = "83"


class KeyBlockMacError(KeyBlockError):
    """84: the TR-31 key block MAC does not verify (wrong KBPK or tampered block)."""

    code = "84"
