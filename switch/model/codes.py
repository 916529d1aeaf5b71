"""ISO 8583:1987 response codes (field 39): the one enum the core speaks.

Every network maps its own table to and from these values (switch.contracts.codes; jPOS CMF result codes do the
same job). Values and meanings follow ISO 8583:1987 DE 39: 00-37 as generic hosts use them, 38-99 per the
public ISO tables (the reference notes where sources differ: 08 and 16 follow the majority). Private ranges
(76-89, 97-99) are not here: a network that uses them maps them itself.
"""

from __future__ import annotations

from enum import StrEnum


class ResponseCode(StrEnum):
    APPROVED = "00"
    REFER_TO_ISSUER = "01"
    REFER_TO_ISSUER_SPECIAL = "02"
    INVALID_MERCHANT = "03"
    PICK_UP = "04"
    DO_NOT_HONOUR = "05"
    ERROR = "06"
    PICK_UP_SPECIAL = "07"
    HONOUR_WITH_ID = "08"
    REQUEST_IN_PROGRESS = "09"
    APPROVED_PARTIAL = "10"
    APPROVED_VIP = "11"
    INVALID_TRANSACTION = "12"
    INVALID_AMOUNT = "13"
    INVALID_CARD_NUMBER = "14"
    NO_SUCH_ISSUER = "15"
    APPROVED_UPDATE_TRACK3 = "16"
    CUSTOMER_CANCELLATION = "17"
    CUSTOMER_DISPUTE = "18"
    RE_ENTER = "19"
    INVALID_RESPONSE = "20"
    NO_ACTION_TAKEN = "21"
    SUSPECTED_MALFUNCTION = "22"
    UNACCEPTABLE_FEE = "23"
    FILE_UPDATE_NOT_SUPPORTED = "24"
    UNABLE_TO_LOCATE = "25"  # unable to locate record on file (a reversal whose original is unknown)
    DUPLICATE_FILE_UPDATE = "26"
    FILE_UPDATE_FIELD_ERROR = "27"
    FILE_UPDATE_LOCKED = "28"
    FILE_UPDATE_FAILED = "29"
    FORMAT_ERROR = "30"
    BANK_NOT_SUPPORTED = "31"
    COMPLETED_PARTIALLY = "32"
    EXPIRED_CARD_PICK_UP = "33"
    SUSPECTED_FRAUD_PICK_UP = "34"
    CONTACT_ACQUIRER_PICK_UP = "35"
    RESTRICTED_CARD_PICK_UP = "36"
    CALL_SECURITY_PICK_UP = "37"
    PIN_TRIES_EXCEEDED_PICK_UP = "38"
    NO_CREDIT_ACCOUNT = "39"
    FUNCTION_NOT_SUPPORTED = "40"
    LOST_CARD = "41"
    NO_UNIVERSAL_ACCOUNT = "42"
    STOLEN_CARD = "43"
    NO_INVESTMENT_ACCOUNT = "44"
    INSUFFICIENT_FUNDS = "51"
    NO_CHEQUE_ACCOUNT = "52"
    NO_SAVINGS_ACCOUNT = "53"
    EXPIRED_CARD = "54"
    INCORRECT_PIN = "55"
    NO_CARD_RECORD = "56"
    NOT_PERMITTED_CARDHOLDER = "57"
    NOT_PERMITTED_TERMINAL = "58"
    SUSPECTED_FRAUD = "59"
    CONTACT_ACQUIRER = "60"
    EXCEEDS_AMOUNT_LIMIT = "61"
    RESTRICTED_CARD = "62"
    SECURITY_VIOLATION = "63"
    ORIGINAL_AMOUNT_INCORRECT = "64"
    EXCEEDS_COUNT_LIMIT = "65"
    CALL_SECURITY = "66"
    HARD_CAPTURE = "67"
    RESPONSE_TOO_LATE = "68"
    PIN_TRIES_EXCEEDED = "75"
    CUTOVER_IN_PROGRESS = "90"
    ISSUER_INOPERATIVE = "91"
    NO_ROUTE = "92"
    VIOLATION_OF_LAW = "93"
    DUPLICATE = "94"
    RECONCILIATION_ERROR = "95"
    SYSTEM_MALFUNCTION = "96"

    @property
    def approved(self) -> bool:
        return self.value in APPROVAL_CODES


# ISO 8583:1987 field 39 values that approve the transaction (money moves, so an undelivered one is reversed).
APPROVAL_CODES = frozenset({"00", "08", "10", "11", "16"})


def is_approval(code: str | None) -> bool:
    return code in APPROVAL_CODES
