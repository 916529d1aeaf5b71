"""Card numbers and identifiers that carry their cell.

A PAN issued by Bulkhead is ``BIN (6) + cell (2) + sequence + Luhn check digit`` (ISO/IEC 7812-1: the issuer
identification number, then the individual account identification, then the check digit computed with the
Luhn formula of ISO/IEC 7812-1 annex B). For the default 16-digit PAN the sequence has 7 digits. A *vanity*
number replaces the sequence with digits the bank chose (a known test PAN, a customer's wish); the caller
must make sure the number is not already in use.

Every other identifier also starts with its cell: customer, account and credit-line numbers are
``CC`` + 8 digits, card ids ``"K" + CC + 8 digits``, transaction/posting ids a letter or two, then ``CC``.
So anything a request or an operator names leads to its cell without asking every cell.

A customer's cell is ``zlib.crc32(external_ref) % cell_count``: a stable rule (CRC-32 as in ISO 3309 / ITU-T
V.42, the same on every platform and Python version, unlike ``hash()``). Changing the cell count moves most
customers to another cell, so it needs a migration that re-homes them; it is not a configuration tweak.
"""

from __future__ import annotations

import zlib

from switch.model.errors import BulkheadError

MAX_CELLS = 100  # two decimal digits of cell in every identifier
BIN_LENGTH = 6
MIN_PAN_LENGTH = 13  # ISO/IEC 7812-1: 8 to 19 digits; 13 leaves a 4-digit sequence after BIN + cell + Luhn
MAX_PAN_LENGTH = 19


class CardNumberError(BulkheadError, ValueError):
    """A card number or identifier is malformed (the text never contains a full PAN)."""


def luhn_check_digit(payload: str) -> str:
    """The Luhn check digit (ISO/IEC 7812-1 annex B) that completes ``payload`` (digits, no check digit)."""
    if not payload.isdigit():
        raise CardNumberError("the Luhn payload must be digits")
    total = 0
    # Double every second digit counting from the right-most digit of the payload (which sits next to the
    # check digit, so it is the first one doubled).
    for i, ch in enumerate(reversed(payload)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    """Whether ``number`` (digits including its check digit) passes the Luhn check."""
    if len(number) < 2 or not number.isdigit():
        return False
    return luhn_check_digit(number[:-1]) == number[-1]


def _check_bin_cell(bin_: str, cell: int) -> None:
    if len(bin_) != BIN_LENGTH or not bin_.isdigit():
        raise CardNumberError(f"a BIN is {BIN_LENGTH} digits")
    if not 0 <= cell < MAX_CELLS:
        raise CardNumberError(f"cell must be 0..{MAX_CELLS - 1}, got {cell}")


def sequence_digits(length: int) -> int:
    """How many sequence (or vanity) digits a PAN of ``length`` digits has."""
    if not MIN_PAN_LENGTH <= length <= MAX_PAN_LENGTH:
        raise CardNumberError(f"PAN length must be {MIN_PAN_LENGTH}..{MAX_PAN_LENGTH}, got {length}")
    return length - BIN_LENGTH - 2 - 1


def make_pan(bin_: str, cell: int, seq: int, length: int = 16) -> str:
    """BIN + two-digit cell + ``seq`` zero-padded + Luhn digit."""
    _check_bin_cell(bin_, cell)
    width = sequence_digits(length)
    if not 0 <= seq < 10**width:
        raise CardNumberError(f"sequence {seq} does not fit in {width} digits")
    payload = f"{bin_}{cell:02d}{seq:0{width}d}"
    return payload + luhn_check_digit(payload)


def vanity_pan(bin_: str, cell: int, digits: str, length: int = 16) -> str:
    """A PAN whose middle digits (after BIN and cell) are ``digits``, completed with its Luhn digit."""
    _check_bin_cell(bin_, cell)
    width = sequence_digits(length)
    if len(digits) != width or not digits.isdigit():
        raise CardNumberError(f"vanity digits for a {length}-digit PAN are exactly {width} digits")
    payload = f"{bin_}{cell:02d}{digits}"
    return payload + luhn_check_digit(payload)


def is_pan(value: str) -> bool:
    """Whether ``value`` looks like one of our PANs (13-19 digits, Luhn-valid)."""
    return MIN_PAN_LENGTH <= len(value) <= MAX_PAN_LENGTH and luhn_valid(value)


def cell_of_pan(pan: str) -> int:
    """The cell encoded in positions 7-8 of a PAN we issued."""
    if not is_pan(pan):
        raise CardNumberError("not a valid PAN (13-19 digits with a correct Luhn digit)")
    return int(pan[BIN_LENGTH:BIN_LENGTH + 2])


def make_id(cell: int, seq: int) -> str:
    """Customer / account / credit-line number: ``CC`` + 8 digits."""
    if not 0 <= cell < MAX_CELLS:
        raise CardNumberError(f"cell must be 0..{MAX_CELLS - 1}, got {cell}")
    if not 0 < seq < 10**8:
        raise CardNumberError(f"sequence {seq} does not fit in 8 digits")
    return f"{cell:02d}{seq:08d}"


def make_card_id(cell: int, seq: int) -> str:
    """Card id: ``"K"`` + ``CC`` + 8 digits (a surrogate key, never the PAN)."""
    return "K" + make_id(cell, seq)


def cell_of_id(identifier: str) -> int:
    """The cell of any Bulkhead identifier: leading letters (``K``, ``T``, ``I`` ...) are skipped, the next
    two characters are the cell."""
    rest = identifier.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    if len(rest) < 3 or not rest[:2].isdigit():
        raise CardNumberError(f"identifier {identifier!r} does not start with a two-digit cell")
    return int(rest[:2])


def cell_for_external_ref(external_ref: str, cell_count: int) -> int:
    """The cell a customer with this bank reference (CIF) lives in: ``crc32(ref) % cell_count``."""
    if not 1 <= cell_count <= MAX_CELLS:
        raise CardNumberError(f"cell count must be 1..{MAX_CELLS}, got {cell_count}")
    if not external_ref:
        raise CardNumberError("the external reference is empty")
    return zlib.crc32(external_ref.encode("utf-8")) % cell_count
