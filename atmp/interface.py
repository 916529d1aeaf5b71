"""The ATM interface's own fields (the bank's ATM host interface, README "ATM interface"): parse what a terminal
sends and build what the host answers.

- DE 63 note counts: ``D`` + 4 x 4 digits (notes from cassettes 1..4), optionally ``R`` + 4 x 4 digits (rejected).
- DE 90 original data: original MTI (4) + STAN (6) + DE 7 (10) + 22 zeros; the ATMP's key for a withdrawal is
  terminal id + original STAN + original DE 7 (:func:`withdrawal_key`).
- DE 95 replacement amounts: the first 12 digits are the amount actually dispensed.
- DE 48 key exchange: the 0810 answer to 161 is ``TPK`` + TPK under the TMK (``U`` + 32 hex) + KCV (6 hex) +
  ``TAK`` + TAK under the TMK + KCV; the 162 confirmation is ``TPK`` + KCV + ``TAK`` + KCV.
- DE 48 ``ST`` + 4 characters: device status (card reader, dispenser, depository, printer: 0 ok, 1 warning,
  2 fault); ``RK``: the host asks the terminal for a key exchange.
- 0500 totals: DE 15 business date (MMDD), 74 / 76 number of credits / debits (n10), 86 / 88 amount of credits /
  debits (n16), 49 currency.
- DE 28 surcharge ``D`` + 8 digits; DE 60 ``C``: the card was captured in this session.

Every parser raises :class:`~atmp.errors.AtmFieldError` naming the field; none echoes a key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from atmp.cash import Counts
from atmp.errors import AtmFieldError, TerminalSpecError
from atmp.model import CURRENCY, DeviceStatus, check_terminal_id
from atmp.totals import Totals
from switch.model.message import Message

_NOTES = re.compile(r"D([0-9]{16})(?:R([0-9]{16}))?")
_ORIGINAL = re.compile(r"([0-9]{4})([0-9]{6})([0-9]{10})0{22}")
_KEY_ANSWER = re.compile(r"TPK([UX][0-9A-F]{32})([0-9A-F]{6})TAK([UX][0-9A-F]{32})([0-9A-F]{6})")
_KEY_CONFIRMATION = re.compile(r"TPK([0-9A-F]{6})TAK([0-9A-F]{6})")
_STAN = re.compile(r"[0-9]{6}")
_TRANSMISSION = re.compile(r"[0-9]{10}")  # DE 7: MMDDhhmmss

REKEY = "RK"
STATUS_TAG = "ST"
CAPTURED = "C"
# DE 70 codes of the ATM interface's network management (0800).
SIGN_ON, SIGN_OFF, ECHO, KEY_EXCHANGE, KEY_CONFIRMATION, DEVICE_STATUS = "001", "002", "301", "161", "162", "281"


def _four(digits: str) -> Counts:
    a, b, c, d = (int(digits[i:i + 4]) for i in range(0, 16, 4))
    return (a, b, c, d)


@dataclass(frozen=True, slots=True)
class NoteCounts:
    """DE 63: notes handed out of cassettes 1..4, and notes rejected into the reject bin (zeros when absent)."""

    dispensed: Counts
    rejected: Counts = (0, 0, 0, 0)


def parse_note_counts(text: str) -> NoteCounts:
    found = _NOTES.fullmatch(text)
    if found is None:
        raise AtmFieldError(63, "note counts are D + 16 digits, optionally R + 16 digits")
    return NoteCounts(_four(found.group(1)), _four(found.group(2)) if found.group(2) else (0, 0, 0, 0))


def build_note_counts(counts: NoteCounts) -> str:
    for value in (*counts.dispensed, *counts.rejected):
        if not 0 <= value <= 9999:
            raise AtmFieldError(63, "a note count is 0 to 9999")
    text = "D" + "".join(f"{n:04d}" for n in counts.dispensed)
    if any(counts.rejected):
        text += "R" + "".join(f"{n:04d}" for n in counts.rejected)
    return text


@dataclass(frozen=True, slots=True)
class OriginalData:
    """DE 90 of an advice: the 0200 it is about."""

    mti: str
    stan: str
    transmission: str  # the original's DE 7, MMDDhhmmss

    def key(self, terminal_id: str) -> str:
        return withdrawal_key(terminal_id, self.stan, self.transmission)


def parse_original(text: str) -> OriginalData:
    found = _ORIGINAL.fullmatch(text)
    if found is None:
        raise AtmFieldError(90, "original data is MTI (4) + STAN (6) + DE 7 (10) + 22 zeros")
    return OriginalData(*found.groups())


def build_original(mti: str, stan: str, transmission: str) -> str:
    if not (len(mti) == 4 and mti.isdigit() and _STAN.fullmatch(stan) and _TRANSMISSION.fullmatch(transmission)):
        raise AtmFieldError(90, "original data needs a 4-digit MTI, a 6-digit STAN and a 10-digit DE 7")
    return f"{mti}{stan}{transmission}" + "0" * 22


def withdrawal_key(terminal_id: str, stan: str, transmission: str) -> str:
    """The ATMP's key for a withdrawal: the terminal, its STAN and DE 7 of the 0200 (unique per terminal: a
    terminal's STAN wraps at a million, DE 7 tells the rounds apart)."""
    try:
        check_terminal_id(terminal_id)
    except TerminalSpecError:
        raise AtmFieldError(41, "a terminal id is 8 letters or digits") from None
    if not _STAN.fullmatch(stan):
        raise AtmFieldError(11, "a STAN is 6 digits")
    if not _TRANSMISSION.fullmatch(transmission):
        raise AtmFieldError(7, "transmission date and time is 10 digits (MMDDhhmmss)")
    return f"{terminal_id}:{stan}:{transmission}"


def request_key(msg: Message) -> str:
    """The key of a 0200 (or its 0210): DE 41 + DE 11 + DE 7."""
    return withdrawal_key(msg.text(41) or "", msg.text(11) or "", msg.text(7) or "")


def advice_key(msg: Message) -> str:
    """The key of the withdrawal a 0220 / 0420 is about: DE 41 + the STAN and DE 7 its DE 90 names."""
    original = msg.text(90)
    if original is None:
        raise AtmFieldError(90, "an advice must name its original")
    return parse_original(original).key(msg.text(41) or "")


def dispensed_amount(text: str | None) -> int:
    """DE 95 of a 0420: the amount actually dispensed (its first 12 digits); absent means nothing was dispensed."""
    if text is None:
        return 0
    if len(text) < 12 or not text[:12].isdigit():
        raise AtmFieldError(95, "replacement amounts start with the 12-digit amount dispensed")
    return int(text[:12])


def build_replacement(amount: int) -> str:
    """DE 95 for a dispensed ``amount``: the amount, then zeros for the other replacement amounts (an42)."""
    if not 0 <= amount < 10**12:
        raise AtmFieldError(95, "an amount is 12 digits")
    return f"{amount:012d}" + "0" * 30


@dataclass(frozen=True, slots=True)
class KeyExchangeAnswer:
    """DE 48 of the 0810 to a 161: the new TPK and TAK under the terminal's TMK, with their check values."""

    tpk_under_tmk: str
    tpk_kcv: str
    tak_under_tmk: str
    tak_kcv: str

    def __repr__(self) -> str:
        return f"KeyExchangeAnswer(tpk kcv {self.tpk_kcv}, tak kcv {self.tak_kcv})"


def build_key_exchange_answer(answer: KeyExchangeAnswer) -> str:
    text = f"TPK{answer.tpk_under_tmk}{answer.tpk_kcv}TAK{answer.tak_under_tmk}{answer.tak_kcv}"
    if not _KEY_ANSWER.fullmatch(text):
        raise AtmFieldError(48, "a key exchange answer needs each key as U + 32 hex and a 6-hex check value")
    return text


def parse_key_exchange_answer(text: str) -> KeyExchangeAnswer:
    found = _KEY_ANSWER.fullmatch(text)
    if found is None:
        raise AtmFieldError(48, "a key exchange answer is TPK + key (33) + KCV (6) + TAK + key (33) + KCV (6)")
    return KeyExchangeAnswer(*found.groups())


def parse_key_confirmation(text: str) -> tuple[str, str]:
    """DE 48 of a 162: the check values (TPK, TAK) of the keys the terminal installed."""
    found = _KEY_CONFIRMATION.fullmatch(text)
    if found is None:
        raise AtmFieldError(48, "a key confirmation is TPK + KCV (6 hex) + TAK + KCV (6 hex)")
    return found.group(1), found.group(2)


def build_key_confirmation(tpk_kcv: str, tak_kcv: str) -> str:
    text = f"TPK{tpk_kcv}TAK{tak_kcv}"
    if not _KEY_CONFIRMATION.fullmatch(text):
        raise AtmFieldError(48, "a check value is 6 hex digits")
    return text


def parse_device_status(text: str) -> DeviceStatus:
    if not text.startswith(STATUS_TAG):
        raise AtmFieldError(48, "device status is ST + 4 characters")
    try:
        return DeviceStatus.from_code(text[2:])
    except TerminalSpecError:
        raise AtmFieldError(48, "device status is ST + 4 characters of 0 (ok), 1 (warning), 2 (fault)") from None


def build_device_status(status: DeviceStatus) -> str:
    return STATUS_TAG + status.code


def is_rekey_request(text: str | None) -> bool:
    """Whether an 0810's DE 48 asks the terminal for a key exchange."""
    return text == REKEY


def card_captured(text: str | None) -> bool:
    """DE 60 device events of a 0220/0420: ``C`` when the card was captured in this session."""
    return text is not None and CAPTURED in text


def build_surcharge(amount: int) -> str:
    """DE 28 for the terminal's surcharge: ``D`` (debited to the cardholder) + 8 digits."""
    if not 0 <= amount <= 99_999_999:
        raise AtmFieldError(28, "a surcharge is 8 digits")
    return f"D{amount:08d}"


def parse_surcharge(text: str | None) -> int:
    if text is None:
        return 0
    if len(text) != 9 or text[0] not in "CD" or not text[1:].isdigit():
        raise AtmFieldError(28, "a fee amount is C or D + 8 digits")
    return int(text[1:]) if text[0] == "D" else -int(text[1:])


@dataclass(frozen=True, slots=True)
class ReportedTotals:
    """A terminal's 0500: its totals for a business day (MMDD) in a currency."""

    business_day: str
    currency: str
    totals: Totals


def _number(msg: Message, field: int, digits: int) -> int:
    text = msg.text(field)
    if text is None:
        raise AtmFieldError(field, "mandatory in a 0500")
    if len(text) != digits or not text.isdigit():
        raise AtmFieldError(field, f"must be {digits} digits")
    return int(text)


def parse_totals(msg: Message) -> ReportedTotals:
    day = msg.text(15)
    if day is None or len(day) != 4 or not day.isdigit() or not _valid_mmdd(day):
        raise AtmFieldError(15, "the business date is MMDD")
    currency = msg.text(49)
    if currency is None or not CURRENCY.fullmatch(currency):
        raise AtmFieldError(49, "a currency is 3 digits (ISO 4217 numeric)")
    totals = Totals(withdrawals=_number(msg, 76, 10), withdrawal_amount=_number(msg, 88, 16),
                    deposits=_number(msg, 74, 10), deposit_amount=_number(msg, 86, 16))
    return ReportedTotals(day, currency, totals)


def totals_fields(reported: ReportedTotals) -> dict[int, str]:
    """The 0500 fields of ``reported`` (the terminal's side: the fleet simulator, tests)."""
    t = reported.totals
    for value, digits, field in ((t.deposits, 10, 74), (t.withdrawals, 10, 76), (t.deposit_amount, 16, 86),
                                 (t.withdrawal_amount, 16, 88)):
        if not 0 <= value < 10**digits:
            raise AtmFieldError(field, f"must fit {digits} digits")
    return {15: reported.business_day, 49: reported.currency, 74: f"{t.deposits:010d}",
            76: f"{t.withdrawals:010d}", 86: f"{t.deposit_amount:016d}", 88: f"{t.withdrawal_amount:016d}"}


def _valid_mmdd(mmdd: str) -> bool:
    try:
        date(2000, int(mmdd[:2]), int(mmdd[2:]))  # a leap year: 0229 is a business day every fourth year
    except ValueError:
        return False
    return True


def business_date(mmdd: str, today: date) -> date:
    """The date a business day MMDD (DE 15) names: the one nearest ``today`` (the year turns: a terminal's 1231
    totals sent on 2 January are last year's). February 29 of a year without one is a format error."""
    if len(mmdd) != 4 or not mmdd.isdigit() or not _valid_mmdd(mmdd):
        raise AtmFieldError(15, "the business date is MMDD")
    candidates = []
    for year in (today.year - 1, today.year, today.year + 1):
        try:
            candidates.append(date(year, int(mmdd[:2]), int(mmdd[2:])))
        except ValueError:
            continue
    best = min(candidates, key=lambda d: abs((d - today).days), default=None)
    if best is None or abs((best - today).days) > 183:  # only 0229 can land here, with no leap year near
        raise AtmFieldError(15, f"{mmdd} is no date near {today.isoformat()}")
    return best
