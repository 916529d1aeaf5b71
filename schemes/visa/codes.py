"""VISA's DE 39 response codes (two EBCDIC characters) to and from the core's.

VISA uses the ISO 8583:1987 codes (reference section 10.5), each mapped to itself, plus codes of its own that
vendor pages list (reference section 5.4, ``[ANTOM]``); those map to the nearest core decline, since the core has
no code of that meaning. A code in neither list maps to 05 (do not honour: an unknown code is never taken for an
approval) and is counted (``bulkhead_unknown_response_codes``). The core's codes go out as themselves.
"""

from __future__ import annotations

from switch.contracts.codes import CodeTable
from switch.model.codes import ResponseCode as RC

VISA_ONLY: dict[str, RC] = {
    "N7": RC.DO_NOT_HONOUR,  # decline for CVV2 failure
    "1A": RC.DO_NOT_HONOUR,  # additional customer authentication required
    "46": RC.DO_NOT_HONOUR,  # closed account
    "R0": RC.NOT_PERMITTED_CARDHOLDER,  # stop payment order
    "R1": RC.NOT_PERMITTED_CARDHOLDER,  # revocation of authorization order
    "R3": RC.NOT_PERMITTED_CARDHOLDER,  # revocation of all authorizations order
}

VISA_CODES = CodeTable(
    "VISA BASE I",
    {**{code.value: code for code in RC}, **VISA_ONLY},
    unknown_default=RC.DO_NOT_HONOUR,
    to_wire={code: code.value for code in RC},
)
