"""ISO 9564-1 PIN blocks, formats 0, 1, 2, 3 (64-bit, for TDES) and 4 (128-bit, for AES).

Inside the HSM only: clear PINs exist in these functions' locals and never leave through the public API.

- Format 0: PIN field ``0 N PIN F..F`` XOR account field ``0000`` + 12 right-most PAN digits without the
  check digit.
- Format 1: ``1 N PIN`` + transaction-unique fill (random hex here); no account.
- Format 2: ``2 N PIN F..F``; no account (ICC offline PIN).
- Format 3: as format 0 with a random fill of digits A-F.
- Format 4 (ISO 9564-1:2017 §9.4): PIN field ``4 N PIN A..A`` (16 nibbles) + 8 random bytes; PAN field
  ``M`` (PAN length - 12) + PAN, zero-padded to 16 bytes; block = E_K(E_K(PIN field) XOR PAN field).

Thales PIN block format codes map to ISO formats: 01 -> 0, 05 -> 1, 34 -> 2, 47 -> 3, 48 -> 4.

Three legacy ATM formats (payShield codes; :func:`encode_code` / :func:`decode_code`), as older ATM fleets send them:

- 02 Docutel: ``L P..P 0..0 X..X``: the PIN length (one digit, 4-6), the PIN left-justified and zero-padded to
  6 digits, then 9 pad characters (the Thales simulator's definition, nickntg/thalessimulatorlibrary
  ``Cryptography/PIN/Extensions.cs`` ``GetPinBlockDocutel``: ``{length}{pin padded to 6 with 0}{9 pad}``; the
  payShield fills the pad from its configuration, Bulkhead with random hex). A PIN longer than 6 digits cannot be
  carried: error 24. No account.
- 03 Diebold / IBM 3624: the PIN left-justified, padded with F to 16 digits (IBM CCA "3624 PIN-block format":
  PIN digits then one pad value; jPOS ``JCESecurityModule`` FORMAT03 pads with F). The block carries no PIN
  length: the PIN is what precedes the pad, so the pad must not be a decimal digit. No account.
- 04 PLUS network: as ISO format 0, but the account field is four zeros and the 12 *left-most* digits of the
  account number (payShield manual, "Format 04", as publicly quoted: PIN 92389, account 2283 4000 0012 3456 ->
  ``0592 389F FFFF FFFF`` XOR ``0000 2283 4000 0012`` = ``0592 1A1C BFFF FFED``). It needs the full account
  number; on the wire the account field of a command using it is 18 digits, right-justified, F-padded.
"""

from __future__ import annotations

import os
import secrets

from hsm.cipher import aes_decrypt, aes_encrypt, xor
from hsm.errors import AccountError, PinBlockError, PinBlockFormatError, PinLengthError

THALES_FORMATS: dict[str, int] = {"01": 0, "05": 1, "34": 2, "47": 3, "48": 4}
DOCUTEL, DIEBOLD, PLUS = "02", "03", "04"
LEGACY_FORMATS = frozenset({DOCUTEL, DIEBOLD, PLUS})
DOCUTEL_MAX_PIN = 6
PLUS_ACCOUNT_WIDTH = 18
"""Width of the account field on the wire of a command using format 04 (right-justified, F-padded)."""
MIN_PIN = 4
MAX_PIN = 12


def check_code(thales_code: str) -> None:
    """Error 23 unless ``thales_code`` is a PIN block format this HSM knows (ISO or legacy)."""
    if thales_code not in THALES_FORMATS and thales_code not in LEGACY_FORMATS:
        raise PinBlockFormatError(f"unsupported PIN block format code {thales_code!r}")


def needs_account(thales_code: str) -> bool:
    """Whether a format binds the account number (ISO 0 and 3, PLUS; ISO 4 binds the whole PAN)."""
    return thales_code in ("01", "47", "48", PLUS)


def iso_format(thales_code: str) -> int:
    """ISO 9564 format number for a Thales PIN block format code (error 23 if unsupported)."""
    try:
        return THALES_FORMATS[thales_code]
    except KeyError:
        raise PinBlockFormatError(f"unsupported PIN block format code {thales_code!r}") from None


def account_field(account: str) -> str:
    """The 12-digit account field: given as 12 digits (Thales convention), or derived from a full PAN."""
    if not account.isdigit():
        raise AccountError("account number must be digits")
    if len(account) == 12:
        return account
    if 13 <= len(account) <= 19:
        return account[-13:-1]
    raise AccountError("account number must be 12 digits or a 13-19 digit PAN")


def _check_pin(pin: str) -> None:
    if not pin.isdigit() or not MIN_PIN <= len(pin) <= MAX_PIN:
        raise PinLengthError("PIN must be 4 to 12 digits")


def _random_hex(count: int, alphabet: str) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(count))


def encode(fmt: int, pin: str, account: str | None = None, fill: str | None = None) -> bytes:
    """Clear 8-byte PIN block, formats 0-3. ``fill`` overrides the random fill (for test vectors)."""
    _check_pin(pin)
    pad = 14 - len(pin)
    if fmt in (0, 2):
        field = f"{fmt}{len(pin):X}{pin}" + "F" * pad
    elif fmt == 1:
        field = f"1{len(pin):X}{pin}" + (fill if fill is not None else _random_hex(pad, "0123456789ABCDEF"))
    elif fmt == 3:
        field = f"3{len(pin):X}{pin}" + (fill if fill is not None else _random_hex(pad, "ABCDEF"))
    else:
        raise PinBlockFormatError(f"ISO format {fmt} is not a 64-bit PIN block format")
    if len(field) != 16:
        raise PinBlockError("PIN block fill has the wrong length")
    block = bytes.fromhex(field)
    if fmt in (0, 3):
        if account is None:
            raise AccountError("formats 0 and 3 need the account number")
        block = xor(block, bytes.fromhex("0000" + account_field(account)))
    return block


def decode(fmt: int, block: bytes, account: str | None = None, max_pin_length: int = MAX_PIN) -> str:
    """The PIN in a clear 8-byte PIN block of format 0-3; error 20 if malformed, 24 if bad length."""
    if len(block) != 8:
        raise PinBlockError("PIN block must be 8 bytes")
    if fmt in (0, 3):
        if account is None:
            raise AccountError("formats 0 and 3 need the account number")
        block = xor(block, bytes.fromhex("0000" + account_field(account)))
    text = block.hex().upper()
    if text[0] != str(fmt) or fmt not in (0, 1, 2, 3):
        raise PinBlockError("PIN block control field does not match the format")
    length = int(text[1], 16)
    if not MIN_PIN <= length <= min(MAX_PIN, max_pin_length):
        raise PinLengthError("PIN length in the PIN block is out of range")
    pin, fill = text[2 : 2 + length], text[2 + length :]
    if not pin.isdigit():
        raise PinBlockError("PIN block holds non-decimal PIN digits")
    allowed = {0: "F", 1: "0123456789ABCDEF", 2: "F", 3: "ABCDEF"}[fmt]
    if any(c not in allowed for c in fill):
        raise PinBlockError("PIN block fill is invalid for its format")
    return pin


def _pan_field_4(pan: str) -> bytes:
    if not pan.isdigit() or not 1 <= len(pan) <= 19:
        raise AccountError("format 4 needs the PAN (up to 19 digits)")
    # PANs shorter than 12 digits are left-padded with zeros and M = 0 (ISO 9564-1:2017 §9.4.2).
    digits = pan.rjust(12, "0")
    return bytes.fromhex((f"{len(digits) - 12}{digits}").ljust(32, "0"))


def encrypt_format4(key: bytes, pin: str, pan: str) -> bytes:
    """Encipher a PIN as an ISO format 4 PIN block under an AES key."""
    _check_pin(pin)
    field = bytes.fromhex((f"4{len(pin):X}{pin}").ljust(16, "A")) + os.urandom(8)
    return aes_encrypt(key, xor(aes_encrypt(key, field), _pan_field_4(pan)))


def decrypt_format4(key: bytes, block: bytes, pan: str, max_pin_length: int = MAX_PIN) -> str:
    """Decipher an ISO format 4 PIN block and return the PIN (errors 20 / 24 as for :func:`decode`)."""
    if len(block) != 16:
        raise PinBlockError("format 4 PIN block must be 16 bytes")
    field = aes_decrypt(key, xor(aes_decrypt(key, block), _pan_field_4(pan))).hex().upper()
    if field[0] != "4":
        raise PinBlockError("PIN block control field does not match the format")
    length = int(field[1], 16)
    if not MIN_PIN <= length <= min(MAX_PIN, max_pin_length):
        raise PinLengthError("PIN length in the PIN block is out of range")
    pin, fill = field[2 : 2 + length], field[2 + length : 16]
    if not pin.isdigit() or any(c != "A" for c in fill):
        raise PinBlockError("format 4 PIN field is malformed")
    return pin


# ------------------------------------------------------------------------------------------ legacy formats


def plus_account_field(account: str) -> str:
    """The 12 left-most digits of the account number (format 04), from the full account number (13-18 digits,
    optionally F-padded on the left as the 18-digit wire field carries it). Error 22 otherwise."""
    digits = account.lstrip("F")
    if not digits.isdigit() or not 13 <= len(digits) <= PLUS_ACCOUNT_WIDTH:
        raise AccountError("PIN block format 04 needs the full account number (13 to 18 digits)")
    return digits[:12]


def encode_code(code: str, pin: str, account: str | None = None, fill: str | None = None) -> bytes:
    """Clear 8-byte PIN block for a Thales format code (ISO 01/05/34/47 or legacy 02/03/04). ``fill``
    overrides a random fill or pad (for test vectors)."""
    if code in THALES_FORMATS:
        return encode(iso_format(code), pin, account, fill)
    _check_pin(pin)
    if code == DOCUTEL:
        if len(pin) > DOCUTEL_MAX_PIN:
            raise PinLengthError("a Docutel PIN block carries at most 6 PIN digits")
        pad = fill if fill is not None else _random_hex(9, "0123456789ABCDEF")
        text = f"{len(pin)}{pin.ljust(DOCUTEL_MAX_PIN, '0')}{pad}"
    elif code == DIEBOLD:
        text = pin.ljust(16, "F")
    elif code == PLUS:
        if account is None:
            raise AccountError("format 04 needs the account number")
        field = f"0{len(pin):X}{pin}".ljust(16, "F")
        return xor(bytes.fromhex(field), bytes.fromhex("0000" + plus_account_field(account)))
    else:
        raise PinBlockFormatError(f"unsupported PIN block format code {code!r}")
    if len(text) != 16:
        raise PinBlockError("PIN block fill has the wrong length")
    return bytes.fromhex(text)


def decode_code(code: str, block: bytes, account: str | None = None, max_pin_length: int = MAX_PIN) -> str:
    """The PIN in a clear 8-byte PIN block of a Thales format code (ISO 01/05/34/47 or legacy 02/03/04)."""
    if code in THALES_FORMATS:
        return decode(iso_format(code), block, account, max_pin_length)
    if len(block) != 8:
        raise PinBlockError("PIN block must be 8 bytes")
    text = block.hex().upper()
    if code == DOCUTEL:
        length = int(text[0], 16)
        pin, rest = text[1:1 + length], text[1 + length:1 + DOCUTEL_MAX_PIN]
        if length > DOCUTEL_MAX_PIN:
            raise PinLengthError("a Docutel PIN block carries at most 6 PIN digits")
        if rest and not rest.isdigit():
            raise PinBlockError("Docutel PIN block: the PIN field is not zero-padded digits")
    elif code == DIEBOLD:
        pin = text.rstrip("F")
        length = len(pin)
    elif code == PLUS:
        if account is None:
            raise AccountError("format 04 needs the account number")
        text = xor(block, bytes.fromhex("0000" + plus_account_field(account))).hex().upper()
        if text[0] != "0":
            raise PinBlockError("PIN block control field does not match the format")
        length = int(text[1], 16)
        pin, fill = text[2:2 + length], text[2 + length:]
        if any(c != "F" for c in fill):
            raise PinBlockError("PIN block fill is invalid for its format")
    else:
        raise PinBlockFormatError(f"unsupported PIN block format code {code!r}")
    if not pin.isdigit():
        raise PinBlockError("PIN block holds non-decimal PIN digits")
    if not MIN_PIN <= length <= min(MAX_PIN, max_pin_length):
        raise PinLengthError("PIN length in the PIN block is out of range")
    return pin
