"""UnionPay CUPS framing: the 46-byte header with and without a leading 4-digit length, fed whole, byte by byte and
several frames per read; replies swap the ids; rejects send the message back with a code; heartbeats.

Header layout from com.nasoft ``CUPSHeader`` and ``com.easy.iso8583.MsgHead`` (F1 = 0x2E, F3 = 4 ASCII digits = 46
+ body length, F4 destination and F5 source as 11 space-padded characters, swapped on responses, F10 reject code
``00000`` from members). The 4-digit length before the header, and ``0000`` heartbeats, are what the public member
implementation com.easy.iso8583 sends (``TestServer``, ``AsyncUpiInterceptor``).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from schemes.unionpay.framing import UnionPayFraming
from schemes.unionpay.header import HeaderError
from switch.contracts.network import LinkOptions
from switch.model.errors import FramingError, LocalProtocolError
from switch.wire.framing import Frame, Framer, MalformedFrame
from tests.switch.wire.helpers import (
    drain,
    feed_bytewise,
    feed_chunks,
    feed_tolerant,
    feed_whole,
    split_at,
    tolerant_ways,
)

from . import vectors as v

BODY = b"0800" + bytes.fromhex("8220000000000000" "0400000000000000") + b"0101120000123456301"
BARE = UnionPayFraming(length_prefix=False)


def cups_header(
    *, body_len: int, dst: bytes, src: bytes, f2: int = 0x02, batch: int = 1, info: bytes = b"00000000",
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
        (BARE, HDR + BODY),
        (UnionPayFraming(), b"%04d" % (46 + len(BODY)) + HDR + BODY),
        (UnionPayFraming(length_includes_prefix=True), b"%04d" % (50 + len(BODY)) + HDR + BODY),
    ],
    ids=["bare", "prefixed", "prefixed-incl"],
)
def test_decode(config: LinkOptions, wire: bytes, feed: Feed) -> None:
    framer = config.framer()
    assert feed(framer, wire * 3) == [Frame(BODY, HDR)] * 3
    assert framer.buffered == 0


def test_public_frames_with_their_length_prefix() -> None:
    frames = [v.EASY_ECHO_0820, v.EASY_ECHO_0830, v.EASY_MAC_RESET_0800, v.EASY_PIN_RESET_0800, v.EASY_0200]
    wire = b"".join(b"%04d" % len(f) + f for f in frames)
    for feed in (feed_whole, feed_bytewise):
        got = feed(UnionPayFraming().framer(), wire)
        assert [f.header + f.body for f in got] == frames
    got = feed_chunks(UnionPayFraming().framer(), split_at(wire, [3, 4, 49, 50, 300, 301, 302, 1000]))
    assert [f.header + f.body for f in got] == frames


def test_many_in_one_read_with_trailing_partial() -> None:
    framer = BARE.framer()
    framer.receive_data((HDR + BODY) * 40 + HDR[:5])  # F3 not complete yet
    assert drain(framer) == [Frame(BODY, HDR)] * 40
    assert framer.buffered == 5
    framer.receive_data(HDR[5:] + BODY)
    assert drain(framer) == [Frame(BODY, HDR)]


def test_reply_swaps_ids_and_fixes_total_length() -> None:
    request_header = cups_header(
        body_len=len(BODY), dst=b"00010000   ", src=b"48020000   ", f2=0x82, batch=7, info=b"ABCDEFGH", user=3
    )
    framer = BARE.framer()
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
    framer = UnionPayFraming().framer()
    wire = framer.encode(b"0810xx", reply_to=Frame(BODY, HDR))
    assert wire == b"0052" + cups_header(body_len=6, dst=b"00010344   ", src=b"00010000   ") + b"0810xx"


@pytest.mark.parametrize(("test_flag", "f2"), [(False, 0x02), (True, 0x82)])
def test_originated_request_header(test_flag: bool, f2: int) -> None:
    framer = UnionPayFraming(length_prefix=False, source_id="48020000", destination_id="00010000",
                             test=test_flag).framer()
    assert framer.encode(BODY) == cups_header(
        body_len=len(BODY), dst=b"00010000   ", src=b"48020000   ", f2=f2
    ) + BODY


def test_originated_header_fields_come_from_the_options() -> None:
    config = UnionPayFraming(source_id="48020000", destination_id="00010344", batch=9, transaction_info="10000000",
                             user_info=2)
    wire = config.framer().encode(BODY)
    assert wire[:4] == b"%04d" % (46 + len(BODY))
    assert wire[4:50] == cups_header(body_len=len(BODY), dst=b"00010344   ", src=b"48020000   ", batch=9,
                                     info=b"10000000", user=2)


def test_a_reject_sends_the_message_back_under_its_header_with_the_code() -> None:
    request_header = cups_header(body_len=len(BODY), dst=b"48020000   ", src=b"00010000   ", f2=0x82, batch=4)
    for config, prefix in ((BARE, b""), (UnionPayFraming(), b"%04d" % (46 + len(BODY)))):
        wire = config.framer().reject(Frame(BODY, request_header), "00045")
        assert wire == prefix + cups_header(body_len=len(BODY), dst=b"00010000   ", src=b"48020000   ", f2=0x82,
                                            batch=4, reject=b"00045") + BODY
    for bad in ("00000", "45", "0004x"):
        with pytest.raises(ValueError):
            BARE.framer().reject(Frame(BODY, request_header), bad)


def test_a_reject_of_a_header_that_does_not_parse_uses_ours() -> None:
    framer = UnionPayFraming(length_prefix=False, source_id="48020000", destination_id="00010000").framer()
    wire = framer.reject(Frame(BODY, b"\x2d" + HDR[1:]), "00015")
    # From us (the bank) back to UnionPay, as our own messages go.
    assert wire[6:28] == b"00010000   48020000   " and wire[41:46] == b"00015" and wire[46:] == BODY


def test_heartbeats_only_with_a_length_prefix_and_answered_only_when_asked() -> None:
    prefixed = UnionPayFraming().framer()
    prefixed.receive_data(b"0000")
    frame = prefixed.next_frame()
    assert frame == Frame(b"", b"", True)
    assert prefixed.keepalive_probe() == b"0000"
    assert prefixed.keepalive_reply(frame) is None  # the public member implementation does not answer them
    assert UnionPayFraming(keepalive_echo=True).framer().keepalive_reply(frame) == b"0000"
    bare = BARE.framer()
    assert bare.keepalive_probe() is None
    assert bare.keepalive_reply(frame) is None


def _with(header: bytes, at: int, value: bytes) -> bytes:
    return header[:at] + value + header[at + len(value):]


PREFIXED = UnionPayFraming()
MALFORMED: list[tuple[str, LinkOptions, bytes]] = [
    ("f1-not-46", BARE, _with(HDR, 0, b"\x2d") + BODY),
    ("f3-not-digits", BARE, _with(HDR, 2, b"00x9") + BODY),
    ("f3-no-message", BARE, _with(HDR, 2, b"0046")),
    ("f3-below-header", BARE, _with(HDR, 2, b"0030") + BODY),
    ("f3-oversized", UnionPayFraming(length_prefix=False, max_frame=100), _with(HDR, 2, b"0101")),
    ("prefix-not-digits", PREFIXED, b"00 9" + HDR + BODY),
    ("prefix-oversized", UnionPayFraming(max_frame=100), b"0101"),
    ("prefix-shorter-than-header", PREFIXED, b"0010" + HDR[:10]),
    ("prefix-incl-below-itself", UnionPayFraming(length_includes_prefix=True), b"0003"),
]
# With the length prefix, a frame whose header breaks its layout is still delimited by the prefix: it is handed
# over as a MalformedFrame (to be sent back rejected) and the next frame is read as usual.
IN_STEP: list[tuple[str, bytes, str]] = [
    ("prefixed-f1-bad", b"\x00" + HDR[1:] + BODY, "00015"),
    ("prefix-disagrees-with-f3", HDR + BODY + b"X", "00035"),
    ("prefixed-f3-not-digits", _with(HDR, 2, b"0 70") + BODY, "00035"),
]


@pytest.mark.parametrize(("config", "wire"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_raises_framing_error(config: LinkOptions, wire: bytes) -> None:
    framer = config.framer()
    framer.receive_data(wire)
    with pytest.raises(FramingError):
        framer.next_frame()
    with pytest.raises(FramingError):  # sticky: the stream cannot be resynchronised
        framer.next_frame()


@pytest.mark.parametrize("way", ["whole", "bytewise", "threes"])
@pytest.mark.parametrize(("frame", "code"), [m[1:] for m in IN_STEP], ids=[m[0] for m in IN_STEP])
def test_a_malformed_header_in_a_prefixed_frame_leaves_the_stream_in_step(frame: bytes, code: str, way: str) -> None:
    good = b"%04d" % (46 + len(BODY)) + HDR + BODY
    wire = good + b"%04d" % len(frame) + frame + good
    got = feed_tolerant(PREFIXED.framer(), tolerant_ways(wire)[way])
    assert len(got) == 3 and got[0] == got[2] == Frame(BODY, HDR)
    bad = got[1]
    assert isinstance(bad, MalformedFrame) and isinstance(bad.error, HeaderError)
    assert bad.error.reject_code == code
    assert bad.frame == Frame(frame[46:], frame[:46])  # its header as received, to reply under


def test_encode_limits() -> None:
    framer = BARE.framer()
    assert framer.encode(b"x" * (9999 - 46))[2:6] == b"9999"
    with pytest.raises(LocalProtocolError):
        framer.encode(b"x" * (9999 - 45))
    incl = UnionPayFraming(length_includes_prefix=True).framer()
    assert incl.encode(b"x" * (9999 - 50))[:4] == b"9999"
    with pytest.raises(LocalProtocolError):
        incl.encode(b"x" * (9999 - 49))


@pytest.mark.parametrize(
    "kwargs",
    [{"source_id": "123456789012"}, {"destination_id": "银联"}, {"batch": 256}, {"transaction_info": "1234567"},
     {"length_prefix": False, "length_includes_prefix": True}],
)
def test_options_that_cannot_be_framed_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        UnionPayFraming(**kwargs)  # type: ignore[arg-type]
