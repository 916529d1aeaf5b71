"""UnionPay response codes (DE 39, two characters) to and from the core's codes.

UnionPay answers with the ISO 8583:1987 codes (public samples: 00, 14), each mapped to itself, plus codes of its
own. The one a public implementation shows is ``A0``: the member answers it when the message's MAC does not
verify (com.easy.iso8583 ``TestServer``); it is read as 63 (security violation). The core's 63 goes out as 63, not
as A0: 63 also means other security failures, and A0 would tell UnionPay its MAC was wrong.

A code the table does not know is read as 05 (do not honour: a decline, never an approval) and counted per code
(``CodeTable.unknown``, the ``bulkhead_unknown_response_codes`` metric).
"""

from __future__ import annotations

from switch.contracts.codes import CodeTable
from switch.model.codes import ResponseCode

MAC_ERROR = "A0"

UNIONPAY_CODES = CodeTable(
    "UnionPay",
    {**{code.value: code for code in ResponseCode}, MAC_ERROR: ResponseCode.SECURITY_VIOLATION},
    unknown_default=ResponseCode.DO_NOT_HONOUR,
)
