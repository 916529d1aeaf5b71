"""Visa VMLH + BASE I header framing.

Layouts: moov-io/iso8583 ``network/vml_header.go`` (+ its test ``00 0F 00 20`` = 15 bytes, session control),
jPOS ``VAPChannel`` (length, 00, 00; zero-length poll echoed; chained headers when H2 bit 0x80 is set) and
jPOS ``BASE1Header`` (field offsets, reject header of 26 bytes, station swap on replies).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from schemes.visa.framing import VisaFramer, VisaFraming
from switch.model.errors import FramingError
from switch.wire.framing import Frame, Framer, MalformedFrame
from tests.switch.wire.helpers import drain, feed_bytewise, feed_tolerant, feed_whole, tolerant_ways


def base1_header(
    *, total: int, dst: str, src: str, h2: int = 0x01, h3: int = 0x02, tail: bytes = bytes(11)
) -> bytes:
    """A 22-byte BASE I header from its field values (H7-H12 given as ``tail``)."""
    assert len(tail) == 11
    return bytes((22, h2, h3)) + total.to_bytes(2, "big") + bytes.fromhex(dst) + bytes.fromhex(src) + tail


# Worked example from Shulyaka/rtgparser tests/visa_ecomm (197 bytes on the wire): VMLH length 0x00C1 = 193
# = 22-byte header + 171-byte message; header H1=0x16 H2=0x01 H3=0x02 H4=0x00C1, destination 000000, source
# 123456, H7-H12 zero. The message starts with MTI 0100 in BCD, a primary bitmap whose bit 1 announces the
# secondary bitmap (DE 126), then DE 2 as a binary length 0x10 and BCD digits. The remaining body bytes do not
# matter to framing, so they are filled in here.
EXAMPLE_VMLH = bytes.fromhex("00C10000")
EXAMPLE_HEADER = base1_header(total=193, dst="000000", src="123456")
EXAMPLE_BODY_START = bytes.fromhex("0100" "F224648108E08016" "0000000000000004" "1045678912345678")
EXAMPLE_BODY = EXAMPLE_BODY_START + bytes(range(171 - len(EXAMPLE_BODY_START)))
EXAMPLE = EXAMPLE_VMLH + EXAMPLE_HEADER + EXAMPLE_BODY


def test_worked_example_layout() -> None:
    assert len(EXAMPLE) == 197
    assert EXAMPLE_HEADER.hex() == "16010200c1000000123456" + "00" * 11


@pytest.mark.parametrize("feed", [feed_whole, feed_bytewise], ids=["whole", "bytewise"])
def test_worked_example_decodes(feed: Callable[[Framer, bytes], list[Frame]]) -> None:
    framer = (VisaFraming()).framer()
    assert feed(framer, EXAMPLE) == [Frame(EXAMPLE_BODY, EXAMPLE_HEADER)]
    assert framer.buffered == 0


def test_worked_example_many_in_one_read() -> None:
    framer = (VisaFraming()).framer()
    framer.receive_data(EXAMPLE * 20 + EXAMPLE[:100])
    assert drain(framer) == [Frame(EXAMPLE_BODY, EXAMPLE_HEADER)] * 20
    assert framer.buffered == 100
    framer.receive_data(EXAMPLE[100:])
    assert drain(framer) == [Frame(EXAMPLE_BODY, EXAMPLE_HEADER)]


def test_worked_example_encodes_as_originated_request() -> None:
    config = VisaFraming(source_station="123456", destination_station="000000")
    framer = config.framer()
    assert framer.encode(EXAMPLE_BODY) == EXAMPLE


def test_reply_swaps_stations_and_fixes_lengths() -> None:
    framer = (VisaFraming()).framer()
    framer.receive_data(EXAMPLE)
    request = framer.next_frame()
    assert request is not None
    reply_body = b"\x01\x10" + bytes(48)  # 50 bytes
    wire = framer.encode(reply_body, reply_to=request)
    expected_header = bytes.fromhex("160102" "0048" "123456" "000000") + bytes(11)
    assert wire == bytes.fromhex("00480000") + expected_header + reply_body


def test_reply_keeps_control_bytes_and_clears_chain_flag() -> None:
    tail = bytes.fromhex("40" "8001" "000102" "07" "000000" "5a")
    request_header = base1_header(total=22 + 4, dst="400050", src="987654", h2=0x01, tail=tail)
    framer = VisaFramer()
    wire = framer.encode(b"\x01\x10\x00\x00", reply_to=Frame(b"\x01\x00\x00\x00", request_header))
    assert wire[4:] == base1_header(total=26, dst="987654", src="400050", tail=tail) + b"\x01\x10\x00\x00"


def test_reject_header_chain_is_exposed() -> None:
    # jPOS BASE1Header: a reject header is 26 bytes (H13 bitmap bit 1 set, H14 reject code in BCD) with the
    # H2 "another header follows" bit; the original 22-byte header and the original message follow.
    reject = bytes((26, 0x81, 0x02)) + (26 + 22 + 4).to_bytes(2, "big") + bytes.fromhex("123456000000")
    reject += bytes(11) + bytes.fromhex("8000") + bytes.fromhex("0501")
    original = base1_header(total=26, dst="000000", src="123456")
    body = b"\x01\x00\xaa\xbb"
    framer = (VisaFraming()).framer()
    content = reject + original + body
    framer.receive_data(len(content).to_bytes(2, "big") + b"\x00\x00" + content)
    assert framer.next_frame() == Frame(body, reject + original)


def test_zero_length_poll_is_echoed() -> None:
    framer = (VisaFraming()).framer()
    framer.receive_data(bytes(4) + EXAMPLE + bytes(4))
    frames = drain(framer)
    assert frames == [Frame(b"", b"", True), Frame(EXAMPLE_BODY, EXAMPLE_HEADER), Frame(b"", b"", True)]
    assert framer.keepalive_reply(frames[0]) == bytes(4)
    assert framer.keepalive_probe() == bytes(4)
    assert framer.keepalive_reply(frames[1]) is None
    quiet = (VisaFraming(keepalive_echo=False)).framer()
    assert quiet.keepalive_reply(frames[0]) is None


@pytest.mark.parametrize("indicator", [0x20, 0x23])
def test_heartbeat_is_answered_as_it_came(indicator: int) -> None:
    # moov vml_header_test: 00 0F 00 20 = 15 bytes of session control; PosNG: heartbeat payload C8C2 ("HB").
    payload = bytes.fromhex("C8C2") + bytes(13)
    vmlh = bytes((0x00, 0x0F, 0x00, indicator))
    framer = (VisaFraming()).framer()
    framer.receive_data(vmlh + payload + EXAMPLE)
    frame = framer.next_frame()
    assert frame == Frame(payload, vmlh, True)
    assert framer.keepalive_reply(frame) == vmlh + payload
    # The frame after it is read as usual: session control takes exactly its length.
    assert framer.next_frame() == Frame(EXAMPLE_BODY, EXAMPLE_HEADER)
    assert VisaFraming(heartbeat_reply="none").framer().keepalive_reply(frame) is None


def test_shutdown_and_unknown_session_control_are_not_answered() -> None:
    framer = (VisaFraming()).framer()
    shutdown = bytes.fromhex("00020020") + bytes.fromhex("E2C4")
    other = bytes.fromhex("00030020") + b"\x01\x02\x03"
    framer.receive_data(shutdown + other)
    frames = drain(framer)
    assert [f.keepalive for f in frames] == [True, True]
    assert [framer.keepalive_reply(f) for f in frames] == [None, None]


def test_reject_frame_puts_the_message_back_under_a_reject_header() -> None:
    framer = (VisaFraming()).framer()
    framer.receive_data(EXAMPLE)
    request = framer.next_frame()
    assert request is not None
    wire = framer.reject(request, "0501")
    # VMLH: 26 + 22 + 171 = 219 bytes follow.
    assert wire[:4] == (26 + 22 + 171).to_bytes(2, "big") + b"\x00\x00"
    reject = wire[4:30]
    assert reject[0] == 26 and reject[1] == 0x81  # H1 26; H2: another header follows
    assert reject[3:5] == (26 + 22 + 171).to_bytes(2, "big")
    assert reject[5:8] == bytes.fromhex("123456") and reject[8:11] == bytes.fromhex("000000")  # back to the source
    assert reject[22:26] == bytes.fromhex("8000" "0501")  # H13 bit 1, H14 = 0501
    assert wire[30:52] == EXAMPLE_HEADER and wire[52:] == EXAMPLE_BODY
    back = (VisaFraming()).framer()
    back.receive_data(wire)
    assert back.next_frame() == Frame(EXAMPLE_BODY, reject + EXAMPLE_HEADER)


ZERO_HEADER = base1_header(total=22, dst="000000", src="000000")
MALFORMED: list[tuple[str, bytes]] = [
    ("header-length-below-22", bytes.fromhex("001a0000") + bytes((16,)) + bytes(25)),
    ("header-runs-past-frame", bytes.fromhex("001a0000") + bytes((30, 1)) + bytes(24)),
    ("frame-shorter-than-header", bytes.fromhex("000a0000") + bytes((22,)) + bytes(9)),
    ("header-without-message", bytes.fromhex("00160000") + ZERO_HEADER),
    (
        "chained-header-truncated",
        bytes.fromhex("00200000")
        + base1_header(total=32, dst="000000", src="000000", h2=0x81)
        + bytes((22,)) * 10,
    ),
    (
        "endless-chain",
        (22 * 4 + 2).to_bytes(2, "big") + b"\x00\x00"
        + base1_header(total=0, dst="000000", src="000000", h2=0x81) * 4 + b"\x01\x00",
    ),
]


@pytest.mark.parametrize("way", ["whole", "bytewise", "threes"])
@pytest.mark.parametrize("wire", [m[1] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_a_malformed_header_chain_leaves_the_stream_in_step(wire: bytes, way: str) -> None:
    # The VMLH delimits every frame: one whose header chain breaks its layout is handed over as a MalformedFrame
    # (to be sent back under a reject header) and the frames around it are read as usual.
    got = feed_tolerant(VisaFraming().framer(), tolerant_ways(EXAMPLE + wire + EXAMPLE)[way])
    assert len(got) == 3 and got[0] == got[2] == Frame(EXAMPLE_BODY, EXAMPLE_HEADER)
    bad = got[1]
    assert isinstance(bad, MalformedFrame) and not isinstance(bad.error, MalformedFrame)
    # What came after the VMLH travels with it (as the body; as the header when it is a header alone).
    assert bad.frame.body + bad.frame.header == wire[4:]


def test_an_oversized_frame_cannot_be_delimited() -> None:
    framer = (VisaFraming()).framer()
    framer.receive_data(bytes.fromhex("20010000"))
    with pytest.raises(FramingError):
        framer.next_frame()
    framer.receive_data(EXAMPLE)
    with pytest.raises(FramingError):  # sticky: the stream cannot be resynchronised
        framer.next_frame()


def test_encode_refuses_empty_and_oversized_bodies() -> None:
    from switch.model.errors import LocalProtocolError

    framer = VisaFramer()
    assert len(framer.encode(b"x" * (0xFFFF - 22))) == 0xFFFF + 4
    with pytest.raises(LocalProtocolError):
        framer.encode(b"x" * (0xFFFF - 21))
    with pytest.raises(LocalProtocolError):
        framer.encode(b"")


@pytest.mark.parametrize("feed", [feed_whole, feed_bytewise], ids=["whole", "bytewise"])
def test_mixed_stream_whole_and_byte_by_byte(feed: Callable[[Framer, bytes], list[Frame]]) -> None:
    # A poll, a heartbeat, a message, our message sent back rejected, and the message again, in one stream.
    heartbeat = bytes.fromhex("00020020C8C2")
    sender = (VisaFraming()).framer()
    sender.receive_data(EXAMPLE)
    request = sender.next_frame()
    assert request is not None
    rejected = sender.reject(request, "0501")
    framer = (VisaFraming()).framer()
    frames = feed(framer, bytes(4) + heartbeat + EXAMPLE + rejected + EXAMPLE)
    assert [(f.keepalive, len(f.header)) for f in frames] == [(True, 0), (True, 4), (False, 22), (False, 48),
                                                              (False, 22)]
    assert [framer.keepalive_reply(f) for f in frames[:2]] == [bytes(4), heartbeat]
    assert frames[2].body == frames[3].body == frames[4].body == EXAMPLE_BODY
    assert framer.buffered == 0
