"""The BASE I header and the reject header, byte by byte (jPOS ``BASE1Header``; reference section 5.2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemes.visa.header import (
    Base1Header,
    build_reject,
    is_reject,
    original_header,
    reject_code,
    reply_base1_header,
)
from switch.model.errors import FramingError

# The worked example of the reference (rtgparser tests/visa_ecomm): total length 193, destination 000000, source
# 123456, H7-H12 zero.
EXAMPLE = bytes.fromhex("16" "01" "02" "00C1" "000000" "123456" "00" "0000" "000000" "00" "000000" "00")
# Every control byte set, to see each land in its own field.
BUSY = bytes.fromhex("16" "01" "02" "0040" "400050" "987654" "5A" "8001" "000102" "07" "0A0B0C" "5B")


def test_worked_example_field_by_field() -> None:
    h = Base1Header.parse(EXAMPLE)
    assert (h.length, h.flags, h.text_format, h.total_length) == (22, 0x01, 0x02, 193)
    assert (h.destination, h.source) == ("000000", "123456")
    assert (h.round_trip, h.base1_flags, h.status, h.batch, h.reserved, h.user_info) == (0, 0, 0, 0, bytes(3), 0)
    assert h.pack() == EXAMPLE
    assert not h.chained


def test_every_byte_has_its_field() -> None:
    h = Base1Header.parse(BUSY)
    assert h == Base1Header(22, 0x01, 0x02, 0x40, "400050", "987654", 0x5A, 0x8001, 0x000102, 0x07,
                            bytes.fromhex("0A0B0C"), 0x5B)
    assert h.pack() == BUSY


def test_reply_swaps_stations_and_keeps_the_round_trip_information() -> None:
    reply = Base1Header.parse(BUSY).reply(body_length=50)
    assert (reply.destination, reply.source) == ("987654", "400050")
    assert reply.total_length == 72
    # H3 and H7-H12 (round-trip control, flags, status, batch, reserved, user info) come back as they were.
    assert reply.pack()[11:] == BUSY[11:] and reply.pack()[2] == BUSY[2]
    # The framer's byte-level reply gives the same header.
    assert reply_base1_header(BUSY, 50) == reply.pack()


def test_reply_to_a_chained_header_is_one_plain_header() -> None:
    chained = bytes((22, 0x81)) + BUSY[2:]
    reply = Base1Header.parse(chained).reply(10)
    assert (reply.length, reply.flags) == (22, 0x01)
    assert reply_base1_header(chained, 10) == reply.pack()


def test_our_own_header_from_its_fields() -> None:
    built = Base1Header(total_length=22 + 171, destination="000000", source="123456").pack()
    assert built == EXAMPLE


@pytest.mark.parametrize(("data", "reason"), [
    (EXAMPLE[:21], "22 bytes"),
    (EXAMPLE[:5] + bytes.fromhex("00000A") + EXAMPLE[8:], "destination station"),
    (EXAMPLE[:8] + bytes.fromhex("12345F") + EXAMPLE[11:], "source station"),
])
def test_malformed_header_is_a_framing_error(data: bytes, reason: str) -> None:
    with pytest.raises(FramingError, match=reason):
        Base1Header.parse(data)


def test_reject_header_round_trip() -> None:
    chain = build_reject(EXAMPLE, "0501", body_length=171)
    assert len(chain) == 26 + 22
    assert is_reject(chain) and reject_code(chain) == "0501"
    assert original_header(chain) == EXAMPLE
    head = Base1Header.parse(chain)
    assert (head.length, head.chained, head.total_length) == (26, True, 26 + 22 + 171)
    assert (head.destination, head.source) == ("123456", "000000")  # back to whoever sent the original
    assert not is_reject(EXAMPLE) and not is_reject(EXAMPLE + bytes(4))
    with pytest.raises(FramingError):
        reject_code(EXAMPLE)


def test_reject_code_that_is_not_bcd_is_a_framing_error() -> None:
    chain = bytearray(build_reject(EXAMPLE, "0501", 1))
    chain[24:26] = b"\xab\xcd"
    with pytest.raises(FramingError, match="reject code"):
        reject_code(bytes(chain))


@given(st.binary(min_size=22, max_size=40))
def test_any_22_bytes_parse_or_fail_typed(data: bytes) -> None:
    try:
        h = Base1Header.parse(data)
    except FramingError:
        return
    assert h.pack() == data[:22]
