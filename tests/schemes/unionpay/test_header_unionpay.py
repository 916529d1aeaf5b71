"""The 46-byte CUPS header built and parsed byte by byte; replies swap the ids; rejects carry a code; every
malformed header is a HeaderError (a FramingError) with the reject code CUPS answers it with."""

from __future__ import annotations

import pytest

from schemes.unionpay.header import CupsHeader, HeaderError, describe_reject, pad_id
from switch.model.errors import FramingError

from . import vectors as v

# Every byte of a header we originate, spelled out.
BUILT = (
    b"\x2e"  # F1 header length 46
    b"\x82"  # F2 test bit + version 2
    b"0100"  # F3 total length: 46 + 54
    b"00010000   "  # F4 destination (UnionPay, domestic members)
    b"48020000   "  # F5 source (the bank)
    b"\x00\x00\x00"  # F6 reserved
    b"\x07"  # F7 batch number
    b"ABCDEFGH"  # F8 transaction information
    b"\x09"  # F9 user information
    b"00000"  # F10 reject code
)


def test_a_header_built_byte_by_byte() -> None:
    header = CupsHeader.originated("00010000", "48020000", test=True, batch=7, transaction_info=b"ABCDEFGH",
                                   user_info=9)
    assert header.to_bytes(54) == BUILT
    assert len(BUILT) == 46


def test_a_header_parsed_byte_by_byte() -> None:
    header = CupsHeader.parse(BUILT)
    assert header == CupsHeader(destination="00010000   ", source="48020000   ", total_length=100, version=2,
                                test=True, reserved=bytes(3), batch=7, transaction_info=b"ABCDEFGH", user_info=9,
                                reject_code="00000")
    assert (header.destination_id, header.source_id, header.rejected) == ("00010000", "48020000", False)
    assert header.to_bytes() == BUILT


def test_the_public_header_sample_round_trips() -> None:
    header = CupsHeader.parse(v.ALATKA_HEADER)
    assert (header.version, header.test, header.total_length) == (2, False, 407)
    assert (header.destination_id, header.source_id) == ("03050001", "00010000")
    assert (header.reserved, header.batch, header.transaction_info, header.user_info) == (b"AA9", 1, b"00000000", 0)
    assert header.to_bytes() == v.ALATKA_HEADER


def test_a_reply_swaps_the_ids_and_a_reject_carries_its_code() -> None:
    request = CupsHeader.parse(BUILT)
    reply = request.reply()
    assert (reply.destination_id, reply.source_id, reply.reject_code) == ("48020000", "00010000", "00000")
    assert reply.to_bytes(54) == BUILT[:6] + b"48020000   00010000   " + BUILT[28:]
    rejected = request.rejecting("00045")
    assert rejected.to_bytes(54)[6:28] == b"48020000   00010000   "
    assert rejected.to_bytes(54)[41:] == b"00045" and rejected.rejected
    assert describe_reject("00045") == "00045 destination id" and describe_reject("12345") == "12345"


def _with(at: int, value: bytes) -> bytes:
    return BUILT[:at] + value + BUILT[at + len(value):]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (BUILT[:45], "00015"),
        (_with(0, b"\x2d"), "00015"),
        (_with(2, b"01x0"), "00035"),
        (_with(2, b"0046"), "00035"),
        (_with(6, b"\x00"), "00045"),
        (_with(17, "é".encode()), "00055"),
        (_with(41, b"0004x"), ""),
    ],
    ids=["short", "f1", "f3-not-digits", "f3-no-message", "f4-control", "f5-not-ascii", "f10-not-digits"],
)
def test_malformed_headers_are_header_errors_with_their_reject_code(data: bytes, code: str) -> None:
    with pytest.raises(HeaderError) as info:
        CupsHeader.parse(data)
    assert info.value.reject_code == code
    assert isinstance(info.value, FramingError)


@pytest.mark.parametrize(
    "kwargs",
    [{"destination": "short"}, {"source": "x" * 12}, {"total_length": 10_000}, {"version": 128}, {"batch": 256},
     {"reserved": b"\x00"}, {"transaction_info": b"1234567"}, {"reject_code": "0000x"}],
)
def test_a_header_that_cannot_go_on_the_wire_is_refused_when_built(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {"destination": "00010000   ", "source": "48020000   ", **kwargs}
    with pytest.raises(ValueError):
        CupsHeader(**fields)  # type: ignore[arg-type]


def test_institution_ids() -> None:
    assert pad_id("00010344") == "00010344   "
    for bad in ("123456789012", "银联", "a\tb"):
        with pytest.raises(ValueError):
            pad_id(bad)
