"""PIN verification values: IBM 3624 offsets and VISA PVVs.

IBM 3624 (IBM 3624 Programmer's Guide; payShield DA/EA/BK): the validation data (12A on the payShield, with
one ``N`` standing for the last 5 account digits, so exactly 16 hex digits once they are inserted; shorter data
is right-padded with ``F``, Bulkhead's choice for that case) is encrypted under the PVK;
the result is decimalised with the 16-digit decimalisation table, and its first ``check_length`` digits are the
natural PIN. The offset is the digit-wise difference (mod 10) between the customer PIN and the natural PIN.

VISA PVV (VISA PIN Verification Value method, payShield DC/EC/FW): the transformed security parameter is the
11 right-most account digits (check digit excluded), the PVKI and the first 4 PIN digits; it is TDES-encrypted
under the PVK pair and decimalised (decimal digits first, then hex digits A-F minus 10) to 4 digits.
"""

from __future__ import annotations

import re
from collections import Counter

from hsm.cipher import tdes_encrypt
from hsm.errors import DecimalisationError, InvalidInputError, PinLengthError

_VALIDATION = re.compile(r"^[0-9A-FN]{1,16}$")
_TABLE = re.compile(r"^[0-9]{16}\Z")
_MAX_REPEAT = 4
_OFFSET = re.compile(r"^[0-9]*F*$")


def check_decimalisation_table(table: str) -> None:
    """Refuse a decimalisation table that could serve the decimalisation-table attack (error 25).

    The attack (Bond and Zielinski, "Decimalisation table attacks for PIN cracking", 2003) submits DA/EA with
    doctored tables (all zeros, or one digit replaced by another everywhere) and learns the PIN's digits from
    which tables still verify. payShield offers an optional decimalisation table check in its security
    settings; Bulkhead's rule is its own and always on: 16 ASCII decimal digits, every digit 0-9 present, none
    more than 4 times. The standard table ``0123456789012345`` passes; an all-zero table, and any table
    with a digit removed (the attack's probes), do not. A fixed rule cannot recognise every doctored table
    (changing only how A-F decimalise keeps all ten digits): closing that needs the table bound to the PVK
    (supplied encrypted, or from configuration), which Bulkhead does not do.
    """
    if not _TABLE.match(table):
        raise DecimalisationError("decimalisation table must be 16 decimal digits")
    counts = Counter(table)
    if len(counts) != 10:
        raise DecimalisationError(f"decimalisation table lacks {10 - len(counts)} of the digits 0-9")
    if max(counts.values()) > _MAX_REPEAT:
        raise DecimalisationError(f"decimalisation table repeats a digit more than {_MAX_REPEAT} times")


def _decimalise_with_table(hex_text: str, table: str) -> str:
    check_decimalisation_table(table)
    return hex_text.translate(str.maketrans("0123456789ABCDEF", table))


def validation_block(validation_data: str, account: str) -> bytes:
    """Validation data with ``N`` -> last 5 account digits, F-padded to 8 bytes."""
    data = validation_data.upper()
    if not _VALIDATION.match(data):
        raise InvalidInputError("PIN validation data must be hex digits and N")
    data = data.replace("N", account[-5:])
    if len(data) > 16:
        raise InvalidInputError("PIN validation data too long once the account digits are inserted")
    return bytes.fromhex(data.ljust(16, "F"))


def ibm_natural_pin(pvk: bytes, validation: bytes, table: str, length: int) -> str:
    """The first ``length`` digits of the IBM 3624 natural PIN."""
    if not 4 <= length <= 12:
        raise PinLengthError("IBM 3624 check length must be 4 to 12")
    return _decimalise_with_table(tdes_encrypt(pvk, validation).hex().upper(), table)[:length]


def ibm_offset(pvk: bytes, validation: bytes, table: str, pin: str, check_length: int) -> str:
    """Offset (``check_length`` digits, F-padded to 12) turning the natural PIN into ``pin``."""
    if check_length > len(pin):
        raise PinLengthError("check length exceeds the PIN length")
    natural = ibm_natural_pin(pvk, validation, table, check_length)
    digits = "".join(str((int(p) - int(n)) % 10) for p, n in zip(pin, natural, strict=False))
    return digits.ljust(12, "F")


def ibm_verify(pvk: bytes, validation: bytes, table: str, pin: str, check_length: int, offset: str) -> bool:
    """True if ``pin`` matches the natural PIN plus ``offset`` over ``check_length`` digits."""
    if not 4 <= len(offset) <= 12 or not _OFFSET.match(offset.upper()):
        raise InvalidInputError("IBM offset must be 4 to 12 digits, F-padded")
    wanted = offset.upper().rstrip("F")[:check_length]
    if len(wanted) < check_length or check_length > len(pin):
        return False
    return ibm_offset(pvk, validation, table, pin, check_length)[:check_length] == wanted


def decimalise_visa(hex_text: str, count: int) -> str:
    """Decimal digits left to right, then (if short) the A-F digits minus 10 (VISA decimalisation)."""
    digits = [c for c in hex_text if c.isdigit()]
    if len(digits) < count:
        digits += [str(int(c, 16) - 10) for c in hex_text if not c.isdigit()]
    return "".join(digits[:count])


def visa_pvv(pvk: bytes, account: str, pvki: int, pin: str) -> str:
    """VISA PVV (4 digits). ``account`` is the 12-digit account field; ``pvk`` the PVK pair."""
    if not 0 <= pvki <= 9:
        raise InvalidInputError("PVKI must be one digit")
    if len(pin) < 4:
        raise PinLengthError("PIN shorter than 4 digits")
    tsp = f"{account[-11:]}{pvki}{pin[:4]}"
    return decimalise_visa(tdes_encrypt(pvk, bytes.fromhex(tsp)).hex().upper(), 4)

