"""Sample messages for the codec benchmark and the differential tests, in wire-value form (``str`` per field,
binary fields as upper-case hex), for the ``generic`` layout (pyiso8583 ``default`` spec).

Field usage follows ISO 8583:1987 for an ATM cash withdrawal with chip data. The card is a public test PAN,
the EMV data objects (field 55) carry the tags of EMV Book 3 Annex A with made-up values, and every other value
is invented: nothing here comes from a real transaction.
"""

from __future__ import annotations

# Field 55 of the request: 98 bytes of BER-TLV (ARQC, CID, IAD, UN, ATC, TVR, date, type, amount, currency,
# AIP, country, capabilities, CVM results).
REQUEST_ICC = (
    "9F2608" "1122334455667788"
    "9F2701" "80"
    "9F1012" "0110A00003220000000000000000000000FF"
    "9F3704" "A1B2C3D4"
    "9F3602" "0042"
    "9505" "0000008000"
    "9A03" "240115"
    "9C01" "01"
    "9F0206" "000000010000"
    "5F2A02" "0978"
    "8202" "5C00"
    "9F1A02" "0276"
    "9F3303" "E0F8C8"
    "9F3403" "420300"
)

# 0200 cash withdrawal, 20 fields: 322 bytes in the generic layout.
REQUEST_0200: tuple[str, dict[int, str]] = (
    "0200",
    {
        2: "4761739001010119",
        3: "010000",
        4: "000000010000",
        7: "0115123045",
        11: "000123",
        12: "123045",
        13: "0115",
        18: "6011",
        22: "051",
        23: "001",
        25: "00",
        32: "12345678901",
        35: "4761739001010119D25122011758928889",
        37: "401512000123",
        41: "ATM00001",
        42: "BANK00000000001",
        43: "MAIN STREET 1            BERLIN       DE",
        49: "978",
        52: "0123456789ABCDEF",
        55: REQUEST_ICC,
    },
)

# Its approval: the request's identifying fields, approval code (38), response code (39) and the issuer's
# authentication data (tag 91) in field 55.
RESPONSE_0210: tuple[str, dict[int, str]] = (
    "0210",
    {
        2: "4761739001010119",
        3: "010000",
        4: "000000010000",
        7: "0115123045",
        11: "000123",
        12: "123045",
        13: "0115",
        32: "12345678901",
        37: "401512000123",
        38: "A1B2C3",
        39: "00",
        41: "ATM00001",
        42: "BANK00000000001",
        49: "978",
        55: "910A" "1A2B3C4D5E6F70813030",
    },
)

# Echo test (network management information code 301): field 70 needs the secondary bitmap.
ECHO_0800: tuple[str, dict[int, str]] = ("0800", {7: "0115123045", 11: "000124", 70: "301"})

# Reversal advice after a partial dispense: original data elements (90), replacement amounts (95), MAC (128).
REVERSAL_0420: tuple[str, dict[int, str]] = (
    "0420",
    {
        2: "4761739001010119",
        3: "010000",
        4: "000000010000",
        7: "0115123110",
        11: "000125",
        37: "401512000123",
        39: "00",
        41: "ATM00001",
        49: "978",
        90: "020000012301151230450000001234500000000000",
        95: "000000005000000000000000C00000000C00000000",
        128: "0102030405060708",
    },
)
