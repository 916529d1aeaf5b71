"""The bank's ATM host interface: ISO 8583:1987 between the ATM controller and the switch.

Wire layout: the ``generic`` layout (ASCII fields, binary bitmap, binary PIN block 52 and ICC data 55).
Field usage (documented in the README, section "ATM interface"):

========  ==========================================================================================
MTI       use
========  ==========================================================================================
0200      cash withdrawal (3 = 01xxxx), balance inquiry (3 = 30xxxx / 31xxxx), transfer (3 = 40xxxx)
0210      response; 54 carries balances on inquiries and withdrawals, 38 the approval code
0420/0421 reversal advice: 95 (replacement amounts, an42) carries the dispensed amount on partial dispense
0430      reversal advice response
0800/0810 network management: 70 = 001 sign-on, 002 sign-off, 301 echo
========  ==========================================================================================

Mandatory on 0200: 3, 4, 7, 11, 12, 13, 22, 35 (track 2, the PAN is taken from it), 37, 41, 49, and 52
when the customer entered a PIN (22 positions 3 = "1"). Match key: MTI class + 11 + 41.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemes.base import FieldError, SchemeAdapter
from schemes.generic import SPEC
from switch.model.message import Message
from switch.wire.compiled import compile_codec

_ATM_MANDATORY_0200 = (3, 4, 7, 11, 12, 13, 22, 35, 37, 41, 49)
_ATM_TRANSACTION_TYPES = frozenset({"01", "30", "31", "40"})


@dataclass
class AtmAdapter(SchemeAdapter):
    def validate(self, msg: Message) -> None:
        super().validate(msg)
        if msg.mti in ("0200", "0201"):
            for number in _ATM_MANDATORY_0200:
                if number not in msg.fields:
                    raise FieldError(number, "mandatory for ATM 0200")
            if msg.transaction_type not in _ATM_TRANSACTION_TYPES:
                raise FieldError(3, "transaction type not offered at ATMs")
            entry = msg.text(22) or ""
            if len(entry) == 3 and entry[2] == "1" and 52 not in msg.fields:
                raise FieldError(52, "PIN entered but no PIN block")


SCHEME = AtmAdapter(
    name="atm",
    codec=compile_codec("atm", SPEC),
    mti_classes=frozenset({"2", "4", "8"}),
    description="bank ATM host interface, ISO 8583:1987 generic layout",
)
