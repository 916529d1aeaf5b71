"""ISO 8583:1987 response codes (field 39): the one enum the core speaks.

Scheme adapters translate their own tables to and from these values (jPOS CMF result codes do the same job).
Values and meanings follow ISO 8583:1987 DE 39 as used by generic hosts.
"""

from __future__ import annotations

from enum import StrEnum


class ResponseCode(StrEnum):
    APPROVED = "00"
    REFER_TO_ISSUER = "01"
    DO_NOT_HONOUR = "05"
    HONOUR_WITH_ID = "08"
    APPROVED_PARTIAL = "10"
    APPROVED_VIP = "11"
    APPROVED_UPDATE_TRACK3 = "16"
    INVALID_TRANSACTION = "12"
    INVALID_AMOUNT = "13"
    INVALID_CARD_NUMBER = "14"
    NO_SUCH_ISSUER = "15"
    UNABLE_TO_LOCATE = "25"  # unable to locate record on file (a reversal whose original is unknown)
    FORMAT_ERROR = "30"
    NO_CREDIT_ACCOUNT = "39"
    LOST_CARD = "41"
    STOLEN_CARD = "43"
    INSUFFICIENT_FUNDS = "51"
    NO_CHEQUE_ACCOUNT = "52"
    NO_SAVINGS_ACCOUNT = "53"
    EXPIRED_CARD = "54"
    INCORRECT_PIN = "55"
    NOT_PERMITTED_CARDHOLDER = "57"
    NOT_PERMITTED_TERMINAL = "58"
    EXCEEDS_AMOUNT_LIMIT = "61"
    RESTRICTED_CARD = "62"
    SECURITY_VIOLATION = "63"
    EXCEEDS_COUNT_LIMIT = "65"
    RESPONSE_TOO_LATE = "68"
    PIN_TRIES_EXCEEDED = "75"
    CUTOVER_IN_PROGRESS = "90"
    ISSUER_INOPERATIVE = "91"
    NO_ROUTE = "92"
    DUPLICATE = "94"
    SYSTEM_MALFUNCTION = "96"

    @property
    def approved(self) -> bool:
        return self.value in APPROVAL_CODES


# ISO 8583:1987 field 39 values that approve the transaction (money moves, so an undelivered one is reversed).
APPROVAL_CODES = frozenset({"00", "08", "10", "11", "16"})


def is_approval(code: str | None) -> bool:
    return code in APPROVAL_CODES
