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

The channel's rules (what an ATM request must carry) are the ATM processor's: :mod:`atmp.channel`. Match key:
MTI class + 11 + 41.
"""

from __future__ import annotations

from dataclasses import dataclass

from atmp.channel import check_atm_request
from schemes.generic import SPEC
from schemes.iso87 import Iso87Network
from switch.model.message import Message
from switch.wire.compiled import compile_codec


@dataclass
class AtmNetwork(Iso87Network):
    def validate(self, msg: Message) -> None:
        super().validate(msg)
        check_atm_request(msg)


SCHEME = AtmNetwork(
    name="atm",
    codec=compile_codec("atm", SPEC),
    mti_classes=frozenset({"2", "4", "5", "8"}),
    description="bank ATM host interface, ISO 8583:1987 generic layout",
)
