"""Mastercard's DE 39 response codes (two EBCDIC characters) to and from the core's.

Mastercard answers with the ISO 8583:1987 codes (reference section 10.5), each mapped to itself, plus codes of its
own that its public network response code page lists (reference ``[MCSEND]``, which also says not to code to the
descriptions: they differ per network). Those map to the nearest core code, always a decline: 70 contact card
issuer (01), 71 PIN not changed, 76-78 invalid or nonexistent account, 81 domestic debit not allowed, 84 invalid
authorization life cycle, 85 not declined (an account status inquiry's answer: not an approval of money), 87
purchase amount only, no cash back (05), 86 PIN validation not possible and 89 unacceptable PIN (55), 88
cryptographic failure (63). A code in neither list maps to 05 and is counted (``bulkhead_unknown_response_codes``).
The core's codes go out as themselves.
"""

from __future__ import annotations

from switch.contracts.codes import CodeTable
from switch.model.codes import ResponseCode as RC

MASTERCARD_ONLY: dict[str, RC] = {
    "70": RC.REFER_TO_ISSUER,
    "71": RC.DO_NOT_HONOUR,
    "76": RC.DO_NOT_HONOUR,
    "77": RC.DO_NOT_HONOUR,
    "78": RC.DO_NOT_HONOUR,
    "81": RC.DO_NOT_HONOUR,
    "84": RC.DO_NOT_HONOUR,
    "85": RC.DO_NOT_HONOUR,
    "86": RC.INCORRECT_PIN,
    "87": RC.DO_NOT_HONOUR,
    "88": RC.SECURITY_VIOLATION,
    "89": RC.INCORRECT_PIN,
}

MASTERCARD_CODES = CodeTable(
    "Mastercard",
    {**{code.value: code for code in RC}, **MASTERCARD_ONLY},
    unknown_default=RC.DO_NOT_HONOUR,
    to_wire={code: code.value for code in RC},
)
