"""UnionPay CUPS 46-byte header framing, with and without a leading 4-digit length.

Header layout from com.nasoft ``CUPSHeader`` and ``com.easy.iso8583.MsgHead`` (F1 = 0x2E, F3 = 4 ASCII
digits = 46 + body length, F4 destination and F5 source as 11 space-padded characters, swapped on responses,
F10 reject code ``00000`` from members). "Domestic members are 00010000, foreign members are 00010344"
(MsgHead).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from schemes.unionpay.framing import UnionPayFraming
from switch.contracts.network import LinkOptions
from switch.model.errors import FramingError, LocalProtocolError
from switch.wire.framing import Frame, Framer
from tests.switch.wire.helpers import drain, feed_bytewise, feed_whole

BODY = b"0800" + bytes.fromhex("8220000000000000" "0400000000000000") + b"0101120000123456301"


def cups_header(
    *, body_len: int, dst: bytes, src: bytes, f2: int = 0x02, batch: int = 0, info: bytes = b"00000000",
    user: int = 0, reject: bytes = b"00000",
) -> bytes:
    header = (
        bytes((46, f2)) + b"%04d" % (46 + body_len) + dst + src + bytes(3) + bytes((batch,)) + info
        + bytes((user,)) + reject
    )
    assert len(header) == 46
    return header


HDR = cups_header(body_len=len(BODY), dst=b"00010000   ", src=b"00010344   ")
Feed = Callable[[Framer, bytes], list[Frame]]


@pytest.mark.parametrize("feed", [feed_whole, feed_bytewise], ids=["whole", "bytewise"])
@pytest.mark.parametrize(
    ("config", "wire"),
    [
        (UnionPayFraming(), HDR + BODY),
        (UnionPayFraming(length_prefix=True), b"%04d" % (46 + len(BODY)) + HDR + BODY),
        (
            UnionPayFraming(length_prefix=True, length_includes_prefix=True),
            b"%04d" % (50 + len(BODY)) + HDR + BODY,
        ),
    ],
    ids=["bare", "prefixed", "prefixed-incl"],
)
def test_decode(config: LinkOptions, wire: bytes, feed: Feed) -> None:
    framer = config.framer()
    assert feed(framer, wire * 3) == [Frame(BODY, HDR)] * 3
    assert framer.buffered == 0


def test_many_in_one_read_with_trailing_partial() -> None:
    framer = (UnionPayFraming()).framer()
    framer.receive_data((HDR + BODY) * 40 + HDR[:5])  # F3 not complete yet
    assert drain(framer) == [Frame(BODY, HDR)] * 40
    assert framer.buffered == 5
    framer.receive_data(HDR[5:] + BODY)
    assert drain(framer) == [Frame(BODY, HDR)]


def test_reply_swaps_ids_and_fixes_total_length() -> None:
    request_header = cups_header(
        body_len=len(BODY), dst=b"00010000   ", src=b"48020000   ", f2=0x82, batch=7, info=b"ABCDEFGH", user=3
    )
    framer = (UnionPayFraming()).framer()
    framer.receive_data(request_header + BODY)
    request = framer.next_frame()
    assert request == Frame(BODY, request_header)
    reply_body = b"0810" + bytes(20)
    expected = cups_header(
        body_len=24, dst=b"48020000   ", src=b"00010000   ", f2=0x82, batch=7, info=b"ABCDEFGH", user=3
    )
    assert framer.encode(reply_body, reply_to=request) == expected + reply_body
    assert expected[2:6] == b"0070"


def test_reply_with_length_prefix() -> None:
    framer = (UnionPayFraming(length_prefix=True)).framer()
    wire = framer.encode(b"0810xx", reply_to=Frame(BODY, HDR))
    assert wire == b"0052" + cups_header(body_len=6, dst=b"00010344   ", src=b"00010000   ") + b"0810xx"


@pytest.mark.parametrize(("test_flag", "f2"), [(False, 0x02), (True, 0x82)])
def test_originated_request_header(test_flag: bool, f2: int) -> None:
    framer = UnionPayFraming(source_id="48020000", destination_id="00010000", test=test_flag).framer()
    assert framer.encode(BODY) == cups_header(
        body_len=len(BODY), dst=b"00010000   ", src=b"48020000   ", f2=f2
    ) + BODY


def test_keepalive_only_with_length_prefix() -> None:
    prefixed = (UnionPayFraming(length_prefix=True)).framer()
    prefixed.receive_data(b"0000")
    frame = prefixed.next_frame()
    assert frame == Frame(b"", b"", True)
    assert prefixed.keepalive_reply(frame) == b"0000"
    assert prefixed.keepalive_probe() == b"0000"
    bare = (UnionPayFraming()).framer()
    assert bare.keepalive_probe() is None
    assert bare.keepalive_reply(frame) is None


def _with(header: bytes, at: int, value: bytes) -> bytes:
    return header[:at] + value + header[at + len(value):]


MALFORMED: list[tuple[str, LinkOptions, bytes]] = [
    ("f1-not-46", UnionPayFraming(), _with(HDR, 0, b"\x2d") + BODY),
    ("f3-not-digits", UnionPayFraming(), _with(HDR, 2, b"00x9") + BODY),
    ("f3-no-message", UnionPayFraming(), _with(HDR, 2, b"0046")),
    ("f3-below-header", UnionPayFraming(), _with(HDR, 2, b"0030") + BODY),
    ("f3-oversized", UnionPayFraming(max_frame=100), _with(HDR, 2, b"0101")),
    ("prefix-not-digits", UnionPayFraming(length_prefix=True), b"00 9" + HDR + BODY),
    ("prefix-oversized", UnionPayFraming(length_prefix=True, max_frame=100), b"0101"),
    ("prefix-shorter-than-header", UnionPayFraming(length_prefix=True),
     b"0010" + HDR[:10]),
    (
        "prefix-incl-below-itself",
        UnionPayFraming(length_prefix=True, length_includes_prefix=True),
        b"0003",
    ),
    ("prefixed-f1-bad", UnionPayFraming(length_prefix=True),
     b"%04d" % (46 + len(BODY)) + b"\x00" + HDR[1:] + BODY),
]


@pytest.mark.parametrize(("config", "wire"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_raises_framing_error(config: LinkOptions, wire: bytes) -> None:
    framer = config.framer()
    framer.receive_data(wire)
    with pytest.raises(FramingError):
        framer.next_frame()


def test_encode_limits() -> None:
    framer = (UnionPayFraming()).framer()
    assert framer.encode(b"x" * (9999 - 46))[2:6] == b"9999"
    with pytest.raises(LocalProtocolError):
        framer.encode(b"x" * (9999 - 45))
    incl = (UnionPayFraming(length_prefix=True, length_includes_prefix=True)).framer()
    assert incl.encode(b"x" * (9999 - 50))[:4] == b"9999"
    with pytest.raises(LocalProtocolError):
        incl.encode(b"x" * (9999 - 49))
