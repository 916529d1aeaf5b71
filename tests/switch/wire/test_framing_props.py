"""Properties over every framing: decode(encode(x)) == x for any chunking; garbage only ever fails cleanly."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemes.unionpay.framing import UnionPayFraming
from schemes.visa.framing import VisaFraming
from switch.contracts.network import LinkOptions
from switch.model.errors import FramingError
from switch.wire.framing import Frame, LengthFraming

from .helpers import feed_chunks, split_at

CONFIGS = [
    LengthFraming("binary2"),
    LengthFraming("binary2", length_includes_prefix=True),
    LengthFraming("binary2", tpdu=True),
    LengthFraming("bcd2"),
    LengthFraming("bcd2", tpdu=True, length_includes_prefix=True),
    LengthFraming("ascii4"),
    LengthFraming("ascii4", length_includes_prefix=True),
    VisaFraming(source_station="123456"),
    UnionPayFraming(length_prefix=False, source_id="48020000", destination_id="00010000"),
    UnionPayFraming(length_prefix=True),
    UnionPayFraming(length_prefix=True, length_includes_prefix=True),
]
IDS = [
    "binary2", "binary2-incl", "binary2-tpdu", "bcd2", "bcd2-tpdu-incl", "ascii4", "ascii4-incl", "visa",
    "unionpay", "unionpay-prefix", "unionpay-prefix-incl",
]

bodies = st.lists(st.binary(min_size=1, max_size=700), min_size=1, max_size=8)
cuts = st.lists(st.integers(min_value=0, max_value=6000), max_size=30)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
@settings(max_examples=120, deadline=None)
@given(payloads=bodies, cut_points=cuts, keepalive_after=st.sets(st.integers(0, 7)))
def test_round_trip_any_chunking(
    config: LinkOptions, payloads: list[bytes], cut_points: list[int], keepalive_after: set[int]
) -> None:
    sender = config.framer()
    probe = sender.keepalive_probe()
    wire = b""
    expected: list[Frame] = []
    for i, body in enumerate(payloads):
        wire += sender.encode(body)
        expected.append(Frame(body))
        if probe is not None and i in keepalive_after:
            wire += probe
            expected.append(Frame(b"", b"", True))
    receiver = config.framer()
    frames = feed_chunks(receiver, split_at(wire, cut_points))
    assert [(f.body, f.keepalive) for f in frames] == [(f.body, f.keepalive) for f in expected]
    assert receiver.buffered == 0
    # Every data frame carries the framing's header, and a reply to it is itself decodable.
    for frame in frames:
        if frame.keepalive:
            continue
        reply = receiver.encode(frame.body[::-1], reply_to=frame)
        check = config.framer()
        check.receive_data(reply)
        back = check.next_frame()
        assert back is not None and back.body == frame.body[::-1]
        assert len(back.header) == len(frame.header)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=400), cut_points=cuts)
def test_garbage_yields_frames_or_framing_error(
    config: LinkOptions, data: bytes, cut_points: list[int]
) -> None:
    framer = config.framer()
    try:
        for chunk in split_at(data, cut_points):
            framer.receive_data(chunk)
            while (frame := framer.next_frame()) is not None:
                assert frame.keepalive or frame.body
    except FramingError:
        return
    assert 0 <= framer.buffered <= len(data)
