"""American Express's ISO 8583:1993 fields and their ISO 8583:1987 counterparts in the canonical message.

The canonical message speaks ISO 8583:1987 (DESIGN section 3), so the network translates, field by field, where
1993 and 1987 differ (reference section 4.2):

==========================  ===============================================================================
American Express (1993)     canonical (1987)
==========================  ===============================================================================
MTI 1xxx; 1804 / 1814       0xxx; 0800 / 0810. A canonical 0400 reversal goes out as 1420 (American Express
                            reverses by advice, Hypercom ATP ``ncamx``)
DE 12 YYMMDDhhmmss          DE 12 hhmmss and DE 13 MMDD; the year of what the node sends is the one that puts the
                            date nearest today (:func:`local_datetime`)
DE 22 POS data code an12    DE 22 entry mode n3 and DE 25 condition code (:func:`pos_data_code`, :func:`entry_mode`)
DE 24 function code         implied by the MTI and processing code (:func:`function_code`); in 18xx: DE 70
DE 25 message reason code   a reversal's DE 39 reason (:data:`REVERSAL_REASONS`)
DE 26 business code (MCC)   DE 18
DE 30 original amounts      a partial reversal (function code 401): DE 4 the original amount, DE 95 the actual one
DE 56 original data         DE 90 (original MTI, STAN, date and time, acquirer)
DE 96 key management data   DE 125 (a new key, where ISO 8583:1987 links carry one)
==========================  ===============================================================================

What has no 1987 counterpart (DE 12's year, the POS data code as received, the function and reason codes, DE 13
effective date, DE 28, DE 31 the transaction identifier) is kept beside the message (``meta.extra``, keys
``amex.<field>``), so that an answer echoes what the request carried.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from switch.model.errors import FieldError

EXTRA = "amex."  # prefix of what the network keeps beside a message (MessageMeta.extra)

# DE 24 function codes (ISO 8583:1993; the ones the public interface uses, Hypercom ATP ``ncamx_constants.h``).
AUTHORIZATION, INQUIRY, FINANCIAL = "100", "108", "200"
FULL_REVERSAL, PARTIAL_REVERSAL = "400", "401"
_INQUIRY_CODES = ("30", "31")

# DE 25 of a reversal (ISO 8583:1993 / jPOS CMF reason codes) <-> the 1987 DE 39 reason of a reversal.
REVERSAL_REASONS: dict[str, str] = {"17": "4000", "32": "4004", "22": "4017", "68": "4021"}
_REASON_OF = {v: k for k, v in REVERSAL_REASONS.items()}
DEFAULT_REVERSAL_REASON = "4021"  # timeout waiting for the response: why a switch reverses unprompted
# DE 25 of an advice the node sends (CMF 1003: card issuer unavailable): the switch stood in for the issuer.
ADVICE_REASON = "1003"

# POS data codes (DE 22, 12 positions). Positions 1-4 and 8-12 are the values a public American Express interface
# sends (Hypercom ATP ``ncamx_constants.h``: ICC-capable terminal, PIN capable, attended on premises); positions 5
# (cardholder present), 6 (card present) and 7 (card data input mode) carry what DE 22 and DE 25 say.
ECOMMERCE_POS = "100SS0S00110"  # the same source's e-commerce code
_INPUT_MODE = {"01": "6", "02": "2", "90": "2", "05": "5", "07": "X", "91": "X", "80": "9", "81": "S"}
_ENTRY_OF = {"6": "01", "1": "01", "2": "02", "5": "05", "X": "07", "9": "80", "S": "81"}
_NOT_PRESENT_CONDITIONS = ("01", "08")


def local_datetime(mmdd: str, hhmmss: str, today: date | None = None) -> str:
    """DE 12 (YYMMDDhhmmss) from ISO 8583:1987's DE 13 and DE 12: the year that puts MMDD nearest ``today``
    (a transaction dated 1231 read on 2 January is last year's)."""
    if len(mmdd) != 4 or not mmdd.isdigit() or len(hhmmss) != 6 or not hhmmss.isdigit():
        raise ValueError("local date and time are MMDD and hhmmss")
    today = today or datetime.now(UTC).date()
    month, day = int(mmdd[:2]), int(mmdd[2:])
    best: tuple[int, int] | None = None
    for year in (today.year - 1, today.year, today.year + 1):
        try:
            distance = abs((date(year, month, day) - today).days)
        except ValueError:  # 29 February of a year without one
            continue
        if best is None or distance < best[0]:
            best = (distance, year)
    if best is None:
        raise ValueError("no such date")
    return f"{best[1] % 100:02d}{mmdd}{hhmmss}"


def function_code(mti: str, processing_code: str | None, partial: bool) -> str:
    """DE 24 of a canonical message of class 1, 2 or 4 (its network management code is its DE 70)."""
    if mti[1] == "4":
        return PARTIAL_REVERSAL if partial else FULL_REVERSAL
    if mti[1] == "2":
        return FINANCIAL
    return INQUIRY if (processing_code or "")[:2] in _INQUIRY_CODES else AUTHORIZATION


def pos_data_code(entry: str | None, condition: str | None, pin: bool) -> str:
    """DE 22 (POS data code) for a canonical request's DE 22 (entry mode) and DE 25 (condition code)."""
    mode = (entry or "")[:2]
    if condition == "59" or mode == "81":
        return ECOMMERCE_POS
    present = condition not in _NOT_PRESENT_CONDITIONS
    input_mode = _INPUT_MODE.get(mode, "0")
    method = "1" if pin else ("6" if input_mode == "6" else "5")
    capture = "0" if (entry or "")[2:3] == "2" else "1"  # 12: PIN capture capability (ISO 8583:1987 22.2: 2 = none)
    return "5601" + ("0" if present else "1") + ("1" if present else "0") + input_mode + method + "404" + capture


def entry_mode(code: str) -> tuple[str, str]:
    """ISO 8583:1987 DE 22 (entry mode and PIN capability) and DE 25 (condition) of a POS data code."""
    if len(code) != 12:
        raise FieldError(22, "a POS data code is 12 characters")
    mode = _ENTRY_OF.get(code[6], "00")
    pin = "2" if code[11] == "0" else "1"
    presence = code[4]
    condition = "59" if presence == "S" or mode == "81" else ("08" if presence in "123" else "00")
    return mode + pin, condition


def reversal_reason(reason_39: str | None) -> str:
    """DE 25 of a reversal for its canonical DE 39 reason."""
    return REVERSAL_REASONS.get(reason_39 or "", DEFAULT_REVERSAL_REASON)


def reason_39(reason_25: str) -> str | None:
    """The canonical DE 39 reason of a reversal's DE 25 (None when the code has no 1987 counterpart)."""
    return _REASON_OF.get(reason_25)


def original_data(de90: str, acquirer: str | None, today: date | None = None) -> str:
    """DE 56 (original MTI, STAN, local date and time, acquiring institution with its 2-digit length) from the
    canonical DE 90 (MTI, STAN, transmission date and time, acquirer, forwarder). DE 90 holds the original's
    transmission time, so that is what the date and time part carries (README: unconfirmed); the acquirer is the
    message's own DE 32 when it has one (a reversal's is its original's), else DE 90's."""
    if len(de90) < 31 or not de90[:20].isdigit():
        raise ValueError("DE 90 is the original's MTI, STAN, transmission time and acquirer")
    mti = "1" + de90[1:4]
    when = local_datetime(de90[10:14], de90[14:20], today)
    institution = acquirer if acquirer else (de90[20:31].lstrip("0") or "0")
    return mti + de90[4:10] + when + f"{len(institution):02d}" + institution


def de90_of(de56: str) -> str:
    """The canonical DE 90 of a DE 56 (the forwarding institution, which DE 56 lacks, as zeros)."""
    if len(de56) < 24 or not de56[:22].isdigit():
        raise FieldError(56, "expected MTI, STAN, date and time and the acquirer's length")
    length = int(de56[22:24])
    institution = de56[24:24 + length]
    if len(institution) != length or not institution.isdigit():
        raise FieldError(56, "the acquiring institution does not fit its length")
    return "0" + de56[1:4] + de56[4:10] + de56[12:22] + institution.rjust(11, "0") + "0" * 11
