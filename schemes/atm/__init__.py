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

import copy
import re
from dataclasses import dataclass

from atmp.channel import carries_no_card, check_atm_request
from schemes.generic import SPEC
from schemes.iso87 import Iso87Network
from switch.model.masking import DEFAULT_MASKING
from switch.model.message import Message
from switch.wire.compiled import compile_codec

# The generic layout, but DE 53 is LLVAR up to 48 characters (as in ISO 8583:1993): a DUKPT terminal's key serial
# number travels there as 20 hex characters, which the 1987 layout's fixed 16 cannot carry.
ATM_SPEC = copy.deepcopy(SPEC)
ATM_SPEC["53"] = {**ATM_SPEC["53"], "len_type": 2, "max_len": 48}

# Key material in DE 48 (the answer to a key exchange: the TPK and TAK under the terminal's TMK) is shown as its
# check values only, in logs and journal rows alike.
_KEYS_UNDER_TMK = re.compile(r"(TPK|TAK)[UX][0-9A-Fa-f]{32}")


def _mask_de48(value: str | bytes) -> str:
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    return _KEYS_UNDER_TMK.sub(lambda m: f"{m.group(1)}<key hidden>", text)


@dataclass
class AtmNetwork(Iso87Network):
    def validate(self, msg: Message) -> None:
        if not carries_no_card(msg):
            super().validate(msg)
        check_atm_request(msg)


SCHEME = AtmNetwork(
    name="atm",
    codec=compile_codec("atm", ATM_SPEC),
    masking=DEFAULT_MASKING.with_secret(subfields={48: _mask_de48}),
    mti_classes=frozenset({"2", "4", "5", "8"}),
    description="bank ATM host interface, ISO 8583:1987 generic layout",
)
