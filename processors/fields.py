"""Reading a request the way the cell's rules need it: keys, channel, accounts, amounts (ISO 8583:1987).

Plain functions over :class:`switch.model.message.Message`; no state, no I/O.
"""

from __future__ import annotations

from processors.model import Channel, Txn, TxnType
from switch.model.message import Message

# DE 3 positions 1-2 (ISO 8583:1987 processing code, transaction type) -> what the cardholder did.
TXN_TYPES: dict[str, TxnType] = {
    "00": TxnType.PURCHASE,
    "01": TxnType.WITHDRAWAL,
    "20": TxnType.REFUND,
    "21": TxnType.DEPOSIT,
    "30": TxnType.BALANCE,  # available funds inquiry
    "31": TxnType.BALANCE,  # balance inquiry
    "38": TxnType.STATEMENT,  # mini statement (the ATM interface's code; DE 48 carries the receipt lines)
    "40": TxnType.TRANSFER,
    # PIN change: 92 is Mastercard's code, 70 VISA's (the ATM interface accepts both); the new PIN block is DE 125.
    "70": TxnType.PIN_CHANGE,
    "92": TxnType.PIN_CHANGE,
}
# Transaction types that put money into the card account (their account is DE 3 positions 5-6, "to").
CREDITING = frozenset({TxnType.REFUND, TxnType.DEPOSIT})
# Transaction types that count against the card's spending limits.
SPENDING = frozenset({TxnType.PURCHASE, TxnType.WITHDRAWAL})
# Transaction types that move no money of their own (DE 4 zero or absent); only a fee, where the product sets one.
NO_AMOUNT = frozenset({TxnType.BALANCE, TxnType.STATEMENT, TxnType.PIN_CHANGE})

ATM_MCC = "6011"  # DE 18 merchant type of an automated cash disbursement (ISO 18245)
ECOMMERCE_CONDITION = "59"  # DE 25 POS condition code: electronic commerce
# DE 25 POS condition codes (ISO 8583:1987) of a card-not-present sale: 01 customer not present, 08 mail or
# telephone order. The products have no mail-order channel: these count on the e-commerce limits.
NOT_PRESENT_CONDITIONS = ("01", "08")
ECOMMERCE_ENTRY = "81"  # DE 22 entry mode: PAN entered through e-commerce
KEYED_ENTRY = "01"  # DE 22 entry mode: PAN key entered (at a terminal, or not: DE 25 and the terminal tell)
PIN_CAPABLE = "1"  # DE 22 position 3: the terminal can accept a PIN (a physical terminal)
CHIP_ENTRY = ("05", "07")  # DE 22 entry mode: ICC contact / contactless chip

CROSS_BORDER_SUFFIX = "+" + Channel.CROSS_BORDER.value


def dup_key(msg: Message) -> str:
    """Duplicate-detection key: MTI class/function (first three digits, so a repeat xx01 matches its xx00),
    DE 11, DE 7, DE 41, DE 32. The layout is also what :func:`original_key` reads back."""
    get = msg.fields.get
    return f"{msg.mti[:3]}|{get(11, '')!s}|{get(7, '')!s}|{get(41, '')!s}|{get(32, '')!s}"


def match_key(mti_class: str, stan: str, transmitted: str, acquirer: str) -> str:
    """Key of an original transaction as a reversal or completion names it (DE 90 parts). The class digit
    only (1 authorization, 2 financial), so an advice is found under the request it stood in for."""
    return f"{mti_class}|{stan}|{transmitted}|{acquirer.zfill(11)}"


def original_key(txn: Txn) -> str | None:
    """The :func:`match_key` of a decided request, from its MTI and dup key (None for reversals and rows
    whose dup key was not made by :func:`dup_key`)."""
    parts = txn.dup_key.split("|")
    if len(parts) != 5 or len(txn.mti) != 4 or txn.mti[1] not in "12":
        return None
    return match_key(txn.mti[1], parts[1], parts[2], parts[4])


def keys_from_de90(msg: Message) -> list[str]:
    """Candidate :func:`match_key` values for the original a reversal or completion refers to.

    DE 90 (ISO 8583:1987 original data elements, n42): original MTI 4, STAN 6, transmission date and time 10,
    acquiring institution 11, forwarding institution 11. Without DE 90 the request's own DE 11/7/32 are tried
    (acquirers that reverse with the original's STAN), financial class first."""
    de90 = msg.fields.get(90)
    if isinstance(de90, str) and len(de90) >= 31 and de90[:4].isdigit():
        return [match_key(de90[1], de90[4:10], de90[10:20], de90[20:31].lstrip("0"))]
    get = msg.fields.get
    stan, transmitted, acquirer = str(get(11, "")), str(get(7, "")), str(get(32, ""))
    return [match_key("2", stan, transmitted, acquirer), match_key("1", stan, transmitted, acquirer)]


def channel_of(msg: Message) -> Channel:
    """The channel whose limits and fees apply, from the merchant type (DE 18), the POS condition (DE 25) and the
    terminal's entry mode (DE 22), in this order:

    ====================================================== ==========
    DE 18 = 6011 (an ATM)                                   ATM
    DE 25 = 59 (e-commerce), or DE 22 entry mode 81          e-commerce
    DE 25 = 01 or 08 (customer not present, mail/phone)      e-commerce
    DE 22 entry mode 01 (keyed), DE 25 given (say 00,        POS: the card was keyed at the counter
    normal presentment)
    DE 22 entry mode 01, no DE 25: a PIN-capable terminal    POS
    (DE 22 position 3 = 1), else                             e-commerce
    anything else (stripe, chip, contactless)                POS
    ====================================================== ==========

    A keyed sale is not e-commerce by itself: a cashier keys a card whose stripe will not read, and that sale
    must count on the POS limits like a swiped one."""
    get = msg.fields.get
    if get(18) == ATM_MCC:
        return Channel.ATM
    entry = get(22)
    mode = entry[:2] if isinstance(entry, str) else ""
    condition = get(25)
    if condition == ECOMMERCE_CONDITION or mode == ECOMMERCE_ENTRY or condition in NOT_PRESENT_CONDITIONS:
        return Channel.ECOMMERCE
    if mode == KEYED_ENTRY and condition is None:
        return Channel.POS if isinstance(entry, str) and entry[2:3] == PIN_CAPABLE else Channel.ECOMMERCE
    return Channel.POS


def is_chip(msg: Message) -> bool:
    entry = msg.fields.get(22)
    return isinstance(entry, str) and entry[:2] in CHIP_ENTRY


def txn_channel(channel: str, cross_border: bool) -> str:
    """What :attr:`Txn.channel` records: the channel, plus ``+cross_border`` when the cross-border limits
    also counted it (a reversal gives the usage back to both)."""
    return channel + CROSS_BORDER_SUFFIX if cross_border else channel


def split_txn_channel(value: str) -> tuple[str, bool]:
    if value.endswith(CROSS_BORDER_SUFFIX):
        return value[: -len(CROSS_BORDER_SUFFIX)], True
    return value, False


def replacement_amount(msg: Message) -> int | None:
    """DE 95 (replacement amounts, an42): the first 12 digits are the actual transaction amount. None when
    absent, so the reversal is full."""
    de95 = msg.fields.get(95)
    if isinstance(de95, str) and len(de95) >= 12 and de95[:12].isdigit():
        return int(de95[:12])
    return None


class FeeFieldError(ValueError):
    """DE 28 of a request cannot be taken as the transaction's fee; ``code`` is the answer (30 or 13)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def requested_fee(msg: Message) -> int | None:
    """The transaction-level fee a request states in DE 28 (amount, transaction fee, ISO 8583:1987 ``x+n 8``:
    ``D`` + 8 digits, a fee debited to the cardholder), in minor units; None without DE 28. It is the fee the
    acquirer disclosed to the cardholder for this transaction, so it replaces the account's and the product's
    fee (processors.pricing, level 1). ``C00000000`` waives the fee; a fee credited to the cardholder is not
    supported (13), and anything else is a format error (30)."""
    value = msg.fields.get(28)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != 9 or value[0] not in "CD" or not value[1:].isdigit():
        raise FeeFieldError("30", "DE 28 is not x+n 8 (C or D and 8 digits)")
    amount = int(value[1:])
    if value[0] == "C" and amount:
        raise FeeFieldError("13", "a fee credited to the cardholder (DE 28 C...) is not supported")
    return amount
