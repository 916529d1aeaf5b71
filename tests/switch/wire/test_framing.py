"""Length-prefix framings: 2-byte binary, 2-byte BCD, 4 ASCII digits, optional TPDU.

Vectors follow the layouts of jPOS NACChannel/PostChannel (binary), NCCChannel/BCDChannel (BCD, e.g. 01 15 =
115) and ASCIIChannel, and moov-io/iso8583 ``network/`` (Binary2Bytes, BCD2BytesHeader, ASCII4BytesHeader).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from switch.contracts.network import LinkOptions
from switch.model.errors import FramingError
from switch.wire.framing import Frame, Framer, LengthFraming

from .helpers import drain, feed_bytewise, feed_whole

# 0800 echo test: MTI, primary bitmap (bit 1: secondary follows), secondary bitmap (bit 70), 70=301. 23 bytes.
MSG = b"0800" + bytes.fromhex("8000000000000000") + bytes.fromhex("0400000000000000") + b"301"
LONG = b"0200" + bytes(range(256)) * 2 + b"x" * 3  # 519 bytes: needs both length bytes

# (id, config, wire bytes, expected frames)
VECTORS: list[tuple[str, LinkOptions, bytes, list[Frame]]] = [
    ("binary2", LengthFraming("binary2"), b"\x00\x04" + b"0800", [Frame(b"0800")]),
    ("binary2-long", LengthFraming("binary2"), b"\x02\x07" + LONG, [Frame(LONG)]),
    ("binary2-keepalive", LengthFraming("binary2"), b"\x00\x00", [Frame(b"", b"", True)]),
    ("binary2-incl", LengthFraming("binary2", length_includes_prefix=True), b"\x00\x06" + b"0800",
     [Frame(b"0800")]),
    ("binary2-tpdu", LengthFraming("binary2", tpdu=True), b"\x00\x09" + bytes.fromhex("6000030000") + b"0800",
     [Frame(b"0800", bytes.fromhex("6000030000"))]),
    ("binary2-tpdu-incl", LengthFraming("binary2", tpdu=True, length_includes_prefix=True),
     b"\x00\x0b" + bytes.fromhex("6000030000") + b"0800", [Frame(b"0800", bytes.fromhex("6000030000"))]),
    ("bcd2", LengthFraming("bcd2"), b"\x00\x04" + b"0800", [Frame(b"0800")]),
    ("bcd2-519", LengthFraming("bcd2"), b"\x05\x19" + LONG, [Frame(LONG)]),
    ("bcd2-keepalive", LengthFraming("bcd2"), b"\x00\x00", [Frame(b"", b"", True)]),
    ("bcd2-tpdu", LengthFraming("bcd2", tpdu=True), b"\x00\x28" + bytes.fromhex("6000120034") + MSG,
     [Frame(MSG, bytes.fromhex("6000120034"))]),
    ("ascii4", LengthFraming("ascii4"), b"0004" + b"0800", [Frame(b"0800")]),
    ("ascii4-519", LengthFraming("ascii4"), b"0519" + LONG, [Frame(LONG)]),
    ("ascii4-incl", LengthFraming("ascii4", length_includes_prefix=True), b"0008" + b"0800",
     [Frame(b"0800")]),
    ("ascii4-keepalive", LengthFraming("ascii4"), b"0000", [Frame(b"", b"", True)]),
    ("ascii4-two", LengthFraming("ascii4"), b"0004" + b"0800" + b"0023" + MSG, [Frame(b"0800"), Frame(MSG)]),
]

Feed = Callable[[Framer, bytes], list[Frame]]
FEEDS: list[Feed] = [feed_whole, feed_bytewise]
VECTOR_ARGS = [v[1:] for v in VECTORS]
VECTOR_IDS = [v[0] for v in VECTORS]


@pytest.mark.parametrize("feed", FEEDS, ids=["whole", "bytewise"])
@pytest.mark.parametrize(("config", "wire", "expected"), VECTOR_ARGS, ids=VECTOR_IDS)
def test_vectors_decode(config: LinkOptions, wire: bytes, expected: list[Frame], feed: Feed) -> None:
    framer = config.framer()
    assert feed(framer, wire) == expected
    assert framer.buffered == 0


@pytest.mark.parametrize(("config", "wire", "expected"), VECTOR_ARGS, ids=VECTOR_IDS)
def test_vectors_many_in_one_read_with_trailing_partial(
    config: LinkOptions, wire: bytes, expected: list[Frame]
) -> None:
    framer = config.framer()
    framer.receive_data(wire * 50 + wire[:-1])
    assert drain(framer) == expected * 50 + expected[:-1]
    # What stays buffered is the last frame's bytes minus one, as when the vector alone is cut short.
    alone = config.framer()
    alone.receive_data(wire[:-1])
    drain(alone)
    assert framer.buffered == alone.buffered > 0
    framer.receive_data(wire[-1:])
    assert drain(framer) == expected[-1:]
    assert framer.buffered == 0


@pytest.mark.parametrize(
    ("config", "wire", "expected"),
    [v[1:] for v in VECTORS if not v[3][0].keepalive and len(v[3]) == 1],
    ids=[v[0] for v in VECTORS if not v[3][0].keepalive and len(v[3]) == 1],
)
def test_vectors_encode(config: LinkOptions, wire: bytes, expected: list[Frame]) -> None:
    framer = config.framer()
    frame = expected[0]
    if frame.header:
        # Our own requests carry the configured TPDU; build the vector's TPDU as the default.
        framer = (replace(config, tpdu_default=frame.header)).framer()
    assert framer.encode(frame.body) == wire


# -- TPDU swap on replies (jPOS NACChannel tpdu-swap: bytes 1-2 <-> 3-4) ------------------------------


@pytest.mark.parametrize("kind", ["binary2", "bcd2"])
def test_reply_swaps_tpdu_addresses(kind: str) -> None:
    framer = LengthFraming(kind, tpdu=True).framer()
    request_tpdu = bytes.fromhex("6000030005")
    framer.receive_data(b"\x00\x09" + request_tpdu + b"0800")
    request = framer.next_frame()
    assert request == Frame(b"0800", request_tpdu)
    assert framer.encode(b"0810", reply_to=request) == b"\x00\x09" + bytes.fromhex("6000050003") + b"0810"


def test_reply_length_counts_reply_body_not_request_body() -> None:
    framer = LengthFraming("binary2", tpdu=True, length_includes_prefix=True).framer()
    request = Frame(b"0800", bytes.fromhex("6012345678"))
    reply = framer.encode(MSG, reply_to=request)
    assert reply == (2 + 5 + len(MSG)).to_bytes(2, "big") + bytes.fromhex("6056781234") + MSG


def test_originated_request_uses_default_tpdu() -> None:
    framer = LengthFraming("binary2", tpdu=True).framer()
    assert framer.encode(b"0800") == b"\x00\x09" + bytes.fromhex("6000000000") + b"0800"


def test_reply_to_keepalive_without_tpdu_falls_back_to_default() -> None:
    framer = LengthFraming("bcd2", tpdu=True, tpdu_default=bytes.fromhex("600001ffff")).framer()
    wire = framer.encode(b"0810", reply_to=Frame(b"", b"", True))
    assert wire == b"\x00\x09" + bytes.fromhex("600001ffff") + b"0810"


# -- keep-alives --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "zero"),
    [
        (LengthFraming("binary2"), b"\x00\x00"),
        (LengthFraming("binary2", tpdu=True), b"\x00\x00"),
        (LengthFraming("bcd2"), b"\x00\x00"),
        (LengthFraming("ascii4"), b"0000"),
        (LengthFraming("ascii4", length_includes_prefix=True), b"0000"),
    ],
)
def test_keepalive_echo_and_probe(config: LinkOptions, zero: bytes) -> None:
    framer = config.framer()
    framer.receive_data(zero + zero)
    frames = drain(framer)
    assert frames == [Frame(b"", b"", True)] * 2
    assert framer.keepalive_reply(frames[0]) == zero
    assert framer.keepalive_probe() == zero
    quiet = (replace(config, keepalive_echo=False)).framer()
    assert quiet.keepalive_reply(frames[0]) is None


def test_keepalive_reply_is_none_for_a_data_frame() -> None:
    framer = LengthFraming("binary2").framer()
    assert framer.keepalive_reply(Frame(b"0800")) is None


def test_keepalive_between_messages_in_one_read() -> None:
    framer = LengthFraming("binary2").framer()
    framer.receive_data(b"\x00\x04" + b"0800" + b"\x00\x00" + b"\x00\x04" + b"0810")
    assert drain(framer) == [Frame(b"0800"), Frame(b"", b"", True), Frame(b"0810")]


# -- malformed input ----------------------------------------------------------------------------------

MALFORMED: list[tuple[str, LinkOptions, bytes]] = [
    ("bcd2-high-nibble", LengthFraming("bcd2"), b"\xa0\x04"),
    ("bcd2-low-nibble", LengthFraming("bcd2"), b"\x00\x1f"),
    ("bcd2-ff", LengthFraming("bcd2"), b"\xff\xff"),
    ("ascii4-letter", LengthFraming("ascii4"), b"00a4"),
    ("ascii4-space", LengthFraming("ascii4"), b" 004"),
    ("ascii4-sign", LengthFraming("ascii4"), b"+004"),
    ("ascii4-minus", LengthFraming("ascii4"), b"-004"),
    ("ascii4-binary", LengthFraming("ascii4"), b"\x00\x00\x00\x04"),
    ("binary2-incl-1", LengthFraming("binary2", length_includes_prefix=True), b"\x00\x01"),
    ("ascii4-incl-3", LengthFraming("ascii4", length_includes_prefix=True), b"0003"),
    ("binary2-oversized", LengthFraming("binary2", max_frame=100), b"\x00\x65"),
    ("binary2-oversized-default", LengthFraming("binary2"), b"\xff\xff"),
    ("bcd2-oversized", LengthFraming("bcd2", max_frame=100), b"\x01\x01"),
    ("ascii4-oversized", LengthFraming("ascii4", max_frame=100), b"0101"),
    ("tpdu-too-short", LengthFraming("binary2", tpdu=True), b"\x00\x03" + b"\x60\x00\x00"),
    ("tpdu-no-message", LengthFraming("binary2", tpdu=True), b"\x00\x05" + bytes.fromhex("6000000000")),
]


@pytest.mark.parametrize(("config", "wire"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_raises_framing_error(config: LinkOptions, wire: bytes) -> None:
    framer = config.framer()
    framer.receive_data(wire)
    with pytest.raises(FramingError):
        framer.next_frame()
    # No resync: the framer stays failed even if valid data follows.
    framer.receive_data(b"\x00\x04" + b"0800")
    with pytest.raises(FramingError):
        framer.next_frame()


def test_oversized_frame_rejected_on_the_prefix_alone() -> None:
    framer = LengthFraming("binary2", max_frame=1000).framer()
    framer.receive_data(b"\x03\xe9")  # 1001: only the prefix has arrived
    with pytest.raises(FramingError, match="1001"):
        framer.next_frame()


def test_max_frame_is_inclusive() -> None:
    framer = LengthFraming("binary2", max_frame=8).framer()
    framer.receive_data(b"\x00\x08" + b"08001234")
    assert framer.next_frame() == Frame(b"08001234")


def test_error_text_does_not_echo_the_bytes() -> None:
    framer = LengthFraming("ascii4").framer()
    framer.receive_data(b"41X1")
    with pytest.raises(FramingError) as info:
        framer.next_frame()
    assert "41X1" not in str(info.value)


def test_partial_prefix_waits() -> None:
    framer = LengthFraming("ascii4").framer()
    framer.receive_data(b"00")
    assert framer.next_frame() is None
    assert framer.buffered == 2


# -- encoding limits ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "limit"),
    [
        (LengthFraming("binary2"), 0xFFFF),
        (LengthFraming("binary2", length_includes_prefix=True), 0xFFFF - 2),
        (LengthFraming("binary2", tpdu=True), 0xFFFF - 5),
        (LengthFraming("bcd2"), 9999),
        (LengthFraming("ascii4"), 9999),
        (LengthFraming("ascii4", length_includes_prefix=True), 9995),
    ],
)
def test_encode_limits(config: LinkOptions, limit: int) -> None:
    from switch.model.errors import LocalProtocolError

    framer = config.framer()
    wire = framer.encode(b"x" * limit)
    assert len(wire) == limit + (4 if config.kind == "ascii4" else 2) + (5 if config.tpdu else 0)
    with pytest.raises(LocalProtocolError):
        framer.encode(b"x" * (limit + 1))
    with pytest.raises(LocalProtocolError):
        framer.encode(b"")


def test_bcd2_length_written_as_bcd() -> None:
    framer = LengthFraming("bcd2").framer()
    assert framer.encode(b"x" * 115)[:2] == b"\x01\x15"
    assert framer.encode(b"x" * 9999)[:2] == b"\x99\x99"


def test_frame_repr_hides_body() -> None:
    frame = Frame(b"4111111111111111")
    assert "4111" not in repr(frame)
    assert "16 bytes" in repr(frame)
