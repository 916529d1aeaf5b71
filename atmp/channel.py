"""The bank's ATM channel rules: what an ATM request must carry on the ATM host interface (the ``atm`` network).

Kept here, in the ATM processor, rather than in the network: they are the bank's rules for its own terminals
(the ATMP issue grows them with the terminal registry: unknown or disabled terminals, per-terminal limits), and
the ``atm`` network applies them when it validates a request.

Mandatory on 0200: 3, 4, 7, 11, 12, 13, 22, 35 (track 2, the PAN is taken from it), 37, 41, 49, and 52 when the
customer entered a PIN (DE 22 position 3 = "1"). Offered at ATMs: cash withdrawal (DE 3 01xxxx), balance inquiry
(30xxxx, 31xxxx), transfer (40xxxx), cash deposit (21xxxx), mini statement (38xxxx) and PIN change (92xxxx, and
VISA's 70xxxx), which carries the current PIN in 52 and the new PIN block in 125 (16 hex characters, under the same
key). Every message from a terminal names it in 41.
"""

from __future__ import annotations

from switch.model.errors import FieldError
from switch.model.message import Message

ATM_MANDATORY_0200 = (3, 4, 7, 11, 12, 13, 22, 35, 37, 41, 49)
ATM_TRANSACTION_TYPES = frozenset({"01", "21", "30", "31", "38", "40", "70", "92"})
PIN_CHANGE_TYPES = frozenset({"70", "92"})


def carries_no_card(msg: Message) -> bool:
    """A withdrawal's dispense confirmation (0220/0221, DE 3 01xxxx) is between the terminal and its host: it names
    its withdrawal in DE 90 and needs no card (unless it reports a capture: then DE 2 says which)."""
    return msg.mti in ("0220", "0221") and msg.transaction_type == "01"


def check_atm_request(msg: Message) -> None:
    """Raise :class:`FieldError` when an ATM request breaks the channel's rules."""
    if msg.mti not in ("0200", "0201"):
        if 41 not in msg.fields:
            raise FieldError(41, "every message from a terminal names it")
        return
    for number in ATM_MANDATORY_0200:
        if number not in msg.fields:
            raise FieldError(number, "mandatory for ATM 0200")
    if msg.transaction_type not in ATM_TRANSACTION_TYPES:
        raise FieldError(3, "transaction type not offered at ATMs")
    entry = msg.text(22) or ""
    if len(entry) == 3 and entry[2] == "1" and 52 not in msg.fields:
        raise FieldError(52, "PIN entered but no PIN block")
    if msg.transaction_type in PIN_CHANGE_TYPES:
        if 52 not in msg.fields:
            raise FieldError(52, "a PIN change needs the current PIN")
        new_pin = msg.fields.get(125)
        if not isinstance(new_pin, str) or len(new_pin) != 16 or not _is_hex(new_pin):
            raise FieldError(125, "a PIN change needs the new PIN block as 16 hex characters")


def _is_hex(text: str) -> bool:
    return all(c in "0123456789ABCDEFabcdef" for c in text)
