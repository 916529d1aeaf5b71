"""The ATM fleet simulator's side of the bank's ATM host interface (scheme ``atm``, README "ATM interface"): the
fields a terminal builds and reads, as the interface contract lays them out. Pure functions, no I/O.

The host implements the same contract in ``atmp.interface``; the terminal here is written from the contract alone,
so that the two meet on the wire and a disagreement shows up as a wrong answer, not as a shared bug.

- DE 3 per transaction (:class:`Kind`): 01 withdrawal, 30 balance inquiry, 40 transfer between the cardholder's
  own accounts, 21 cash deposit, 92 PIN change (Mastercard's code), 38 mini statement.
- DE 63 note counts (0220 and 0420): ``D`` + 4 x 4 digits, notes out of cassettes 1..4, then optionally ``R`` + 4 x 4
  digits, notes rejected into the reject bin.
- DE 90 original data elements: original MTI (4) + original STAN (6) + original DE 7 (10) + 22 zeros.
- DE 95 replacement amounts (an42): the first 12 digits are the amount actually dispensed, the rest zeros.
- DE 48 of the key exchange: the 0810 to 0800/161 carries ``TPK`` + TPK under the TMK (33: ``U`` + 32 hex) + KCV (6)
  + ``TAK`` + TAK under the TMK (33) + KCV (6); the 0800/162 confirmation carries ``TPK`` + KCV + ``TAK`` + KCV.
- DE 48 ``ST`` + 4 characters: device status (card reader, dispenser, depository, printer: 0 ok, 1 warning,
  2 fault), on 0800/281. DE 48 ``RK`` on any 0810: the host asks for a key exchange.
- DE 48 of a mini statement's 0210: up to 10 receipt lines of 40 characters, no separator, newest first:
  ``DDMM`` space description (20) space amount (13, right-justified major.minor) and its sign (``-`` for a debit,
  a space for a credit): 4 + 1 + 20 + 1 + 13 + 1 = 40, the layout the cells print (processors.engine.statement).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from switch.model.errors import BulkheadError
from switch.model.message import Message

POSITIONS = 4  # cassette positions the interface's DE 63 counts (1..4)
_COUNT_DIGITS = 4
_KCV = 6
_KEY = 33  # "U" + 32 hex: a double-length key under the TMK, variant scheme (Thales notation)
STATEMENT_LINE = 40
STATEMENT_LINES = 10

# DE 70 network management information codes of the ATM interface.
SIGN_ON, SIGN_OFF, ECHO = "001", "002", "301"
KEY_EXCHANGE, KEY_CONFIRMATION, DEVICE_STATUS = "161", "162", "281"
# DE 39 reasons of a terminal's 0420 reversal advice.
REASON_CANCELLED, REASON_DISPENSER_FAULT, REASON_NO_ANSWER, REASON_RETRACTED = "17", "22", "68", "RT"


class AtmAnswerError(BulkheadError):
    """An answer from the host whose ATM-interface field does not follow the contract (the peer's fault)."""

    def __init__(self, field: int, reason: str) -> None:
        super().__init__(f"DE {field}: {reason}")
        self.field = field
        self.reason = reason


class Kind(enum.Enum):
    """A customer transaction at the ATM, by its ``--mix`` name."""

    WITHDRAWAL = "withdrawal"
    INQUIRY = "inquiry"
    TRANSFER = "transfer"
    DEPOSIT = "deposit"
    PINCHANGE = "pinchange"
    STATEMENT = "statement"

    @property
    def processing_code(self) -> str:
        """DE 3 = type (2) + from account (2) + to account (2), ISO 8583:1987 account types (00 default, 10
        savings, 20 checking)."""
        return PROCESSING_CODES[self]

    @property
    def reversible(self) -> bool:
        """Whether the issuer changes something (money, a PIN) that must be undone when the terminal could not finish:
        a request without its answer is then reversed (0420 reason 68). An inquiry or a statement changes nothing."""
        return self not in (Kind.INQUIRY, Kind.STATEMENT)


PROCESSING_CODES: Mapping[Kind, str] = {
    Kind.WITHDRAWAL: "010000",  # cash from the default account
    Kind.INQUIRY: "300000",  # balance of the default account
    Kind.TRANSFER: "402010",  # own accounts: from checking (20) to savings (10)
    Kind.DEPOSIT: "210020",  # cash into checking (21 FF TT: the "to" account carries it)
    Kind.PINCHANGE: "920000",  # Mastercard's PIN change code (the host takes VISA's 70 too)
    Kind.STATEMENT: "380000",  # mini statement of the default account
}

DEFAULT_MIX: Mapping[Kind, int] = {
    Kind.WITHDRAWAL: 60, Kind.INQUIRY: 15, Kind.TRANSFER: 10, Kind.DEPOSIT: 10, Kind.PINCHANGE: 3, Kind.STATEMENT: 2,
}


def parse_mix(text: str) -> dict[Kind, int]:
    """``withdrawal=60,inquiry=15,...``: weights (whole numbers, at least one above zero); kinds left out weigh 0."""
    weights: dict[Kind, int] = {}
    names = {kind.value: kind for kind in Kind}
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        kind = names.get(name.strip())
        if not sep or kind is None:
            raise ValueError(f"{part.strip()!r}: expected KIND=WEIGHT, KIND one of {', '.join(names)}")
        if kind in weights:
            raise ValueError(f"{kind.value} given twice")
        if not value.strip().isdigit():
            raise ValueError(f"{kind.value}: the weight is a whole number")
        weights[kind] = int(value)
    if not any(weights.values()):
        raise ValueError("at least one weight above zero")
    return weights


@dataclass(frozen=True)
class NoteCounts:
    """Notes per cassette position 1..4 that left the cassettes (``dispensed``: presented, whether taken or
    retracted) and, optionally, were rejected into the reject bin."""

    dispensed: tuple[int, ...]
    rejected: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        for counts in (self.dispensed, self.rejected):
            if counts is not None and (len(counts) != POSITIONS or any(not 0 <= n <= 9999 for n in counts)):
                raise ValueError(f"note counts: {POSITIONS} counts of 0..9999")

    @property
    def total(self) -> int:
        return sum(self.dispensed)

    def to_de63(self) -> str:
        text = "D" + "".join(f"{n:0{_COUNT_DIGITS}d}" for n in self.dispensed)
        if self.rejected is not None:
            text += "R" + "".join(f"{n:0{_COUNT_DIGITS}d}" for n in self.rejected)
        return text


def parse_de63(value: str) -> NoteCounts:
    """DE 63 as :meth:`NoteCounts.to_de63` writes it; :class:`AtmAnswerError` otherwise."""
    width = 1 + POSITIONS * _COUNT_DIGITS
    if len(value) not in (width, 2 * width) or value[0] != "D" or (len(value) == 2 * width and value[width] != "R"):
        raise AtmAnswerError(63, f"expected D + {POSITIONS} x {_COUNT_DIGITS} digits, optionally R + the same")
    groups = [value[i + 1:i + width] for i in range(0, len(value), width)]
    if not all(group.isdigit() for group in groups):
        raise AtmAnswerError(63, "note counts are digits")
    counts = [tuple(int(g[k:k + _COUNT_DIGITS]) for k in range(0, len(g), _COUNT_DIGITS)) for g in groups]
    return NoteCounts(counts[0], counts[1] if len(counts) > 1 else None)


def original_data(mti: str, stan: str, transmitted: str) -> str:
    """DE 90 naming a request: its MTI, STAN and DE 7, then 22 zeros (the acquirer and forwarder ids of ISO 8583:1987
    DE 90, which the interface leaves zero)."""
    if len(mti) != 4 or len(stan) != 6 or len(transmitted) != 10:
        raise ValueError("DE 90: MTI (4), STAN (6) and DE 7 (10)")
    return f"{mti}{stan}{transmitted}" + "0" * 22


def replacement_amounts(dispensed: int) -> str:
    """DE 95 with the amount actually dispensed (minor units) in its first 12 digits."""
    if not 0 <= dispensed < 10**12:
        raise ValueError("DE 95: amount of 0 to 12 digits")
    return f"{dispensed:012d}" + "0" * 30


@dataclass(frozen=True)
class KeyOffer:
    """The host's answer to a key exchange: the new TPK and TAK under the terminal's TMK, each with its check value.
    Cryptograms under a TMK are not secrets to a log (they are useless without the TMK), but the simulator keeps them
    out of its output all the same (``repr``)."""

    tpk: str
    tpk_kcv: str
    tak: str
    tak_kcv: str

    def __repr__(self) -> str:
        return f"KeyOffer(tpk kcv {self.tpk_kcv}, tak kcv {self.tak_kcv})"


def parse_key_offer(answer: Message) -> KeyOffer:
    """DE 48 of the 0810 to a key exchange: ``TPK`` + 33 + 6 + ``TAK`` + 33 + 6."""
    value = answer.get(48)
    if not isinstance(value, str):
        raise AtmAnswerError(48, "no key exchange data")
    part = 3 + _KEY + _KCV
    if len(value) != 2 * part or value[:3] != "TPK" or value[part:part + 3] != "TAK":
        raise AtmAnswerError(48, f"expected TPK + key ({_KEY}) + KCV ({_KCV}) + TAK + key + KCV")
    tpk, tpk_kcv = value[3:3 + _KEY], value[3 + _KEY:part]
    tak, tak_kcv = value[part + 3:part + 3 + _KEY], value[part + 3 + _KEY:]
    for key, kcv in ((tpk, tpk_kcv), (tak, tak_kcv)):
        if key[0] != "U" or not _hex(key[1:]) or not _hex(kcv):
            raise AtmAnswerError(48, "a key is U + 32 hex characters and its check value 6 hex characters")
    return KeyOffer(tpk, tpk_kcv.upper(), tak, tak_kcv.upper())


def key_confirmation(tpk_kcv: str, tak_kcv: str) -> str:
    """DE 48 of the 0800/162: the check values of the keys the terminal installed."""
    if len(tpk_kcv) != _KCV or len(tak_kcv) != _KCV:
        raise ValueError("check values are 6 hex characters")
    return f"TPK{tpk_kcv}TAK{tak_kcv}"


def device_status(card_reader: int = 0, dispenser: int = 0, depository: int = 0, printer: int = 0) -> str:
    """DE 48 of the 0800/281: ``ST`` + one character per device (0 ok, 1 warning, 2 fault)."""
    states = (card_reader, dispenser, depository, printer)
    if any(state not in (0, 1, 2) for state in states):
        raise ValueError("a device is 0 (ok), 1 (warning) or 2 (fault)")
    return "ST" + "".join(str(state) for state in states)


def asks_rekey(answer: Message) -> bool:
    """The host wants new keys: DE 48 ``RK`` on an 0810."""
    return answer.mti == "0810" and answer.get(48) == "RK"


@dataclass(frozen=True)
class StatementLine:
    day: str  # DDMM
    description: str
    amount: int | None  # minor units, negative for a debit; None: too long for the receipt (13 stars)


def parse_statement(value: str | None) -> list[StatementLine]:
    """DE 48 of a mini statement's answer; :class:`AtmAnswerError` when it breaks the receipt layout."""
    if value is None:
        raise AtmAnswerError(48, "no statement lines")
    if len(value) % STATEMENT_LINE or len(value) > STATEMENT_LINE * STATEMENT_LINES:
        raise AtmAnswerError(48, f"up to {STATEMENT_LINES} lines of exactly {STATEMENT_LINE} characters")
    return [_statement_line(value[i:i + STATEMENT_LINE]) for i in range(0, len(value), STATEMENT_LINE)]


def _statement_line(line: str) -> StatementLine:
    day, description, number, sign = line[:4], line[5:25], line[26:39].strip(), line[39]
    if not day.isdigit() or line[4] != " " or line[25] != " ":
        raise AtmAnswerError(48, "a line is DDMM, a space, 20 characters, a space and the amount (13 + sign)")
    if sign not in "- ":
        raise AtmAnswerError(48, "an amount's sign is '-' (a debit) or a space (a credit)")
    if number == "*" * 13:  # too long for the receipt: printed as stars, as cheque writers do
        return StatementLine(day, description.rstrip(), None)
    whole, dot, minor = number.partition(".")
    if not whole.isdigit() or (dot and not minor.isdigit()):
        raise AtmAnswerError(48, "an amount is major.minor in the currency's minor unit")
    value = int(whole + minor)
    return StatementLine(day, description.rstrip(), -value if sign == "-" else value)


def _hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdefABCDEF" for c in text)

