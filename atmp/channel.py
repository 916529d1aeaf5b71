"""The bank's ATM channel rules: what an ATM request must carry on the ATM host interface (the ``atm`` network).

Kept here, in the ATM processor, rather than in the network: they are the bank's rules for its own terminals
(the ATMP issue grows them with the terminal registry: unknown or disabled terminals, per-terminal limits), and
the ``atm`` network applies them when it validates a request.

Mandatory on 0200: 3, 4, 7, 11, 12, 13, 22, 35 (track 2, the PAN is taken from it), 37, 41, 49, and 52 when the
customer entered a PIN (DE 22 position 3 = "1"). Offered at ATMs: cash withdrawal (DE 3 01xxxx), balance inquiry
(30xxxx, 31xxxx), transfer (40xxxx).
"""

from __future__ import annotations

from switch.model.errors import FieldError
from switch.model.message import Message

ATM_MANDATORY_0200 = (3, 4, 7, 11, 12, 13, 22, 35, 37, 41, 49)
ATM_TRANSACTION_TYPES = frozenset({"01", "30", "31", "40"})


def check_atm_request(msg: Message) -> None:
    """Raise :class:`FieldError` when an ATM financial request breaks the channel's rules."""
    if msg.mti not in ("0200", "0201"):
        return
    for number in ATM_MANDATORY_0200:
        if number not in msg.fields:
            raise FieldError(number, "mandatory for ATM 0200")
    if msg.transaction_type not in ATM_TRANSACTION_TYPES:
        raise FieldError(3, "transaction type not offered at ATMs")
    entry = msg.text(22) or ""
    if len(entry) == 3 and entry[2] == "1" and 52 not in msg.fields:
        raise FieldError(52, "PIN entered but no PIN block")
