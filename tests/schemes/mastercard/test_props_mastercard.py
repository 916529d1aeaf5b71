"""Properties of the Mastercard dialect: any canonical message it can carry goes to the wire and back unchanged, in
either code page and through the framer fed whole, byte by byte or in pieces; any bytes from a peer end in a
classification or a typed error, never another exception."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemes.mastercard import NETWORK
from schemes.mastercard.fields import AdditionalData, build_de48
from switch.model.codes import ResponseCode
from switch.model.errors import RemoteProtocolError
from switch.model.message import FieldValue, Message
from switch.model.toml import TomlTable
from switch.wire.framing import Frame, MalformedFrame
from tests.switch.wire.helpers import feed_bytewise, feed_chunks, feed_whole, split_at

DIGITS = "0123456789"
# The characters both EBCDIC code pages carry (cp500 and cp037 differ only at [ ! ] ^ and three others, which
# each still has: any printable ASCII goes both ways).
text_char = st.characters(min_codepoint=32, max_codepoint=126)


def digits(low: int, high: int | None = None) -> st.SearchStrategy[str]:
    return st.text(DIGITS, min_size=low, max_size=low if high is None else high)


def text(low: int, high: int | None = None) -> st.SearchStrategy[str]:
    return st.text(text_char, min_size=low, max_size=low if high is None else high)


de48 = st.builds(lambda tcc, items: build_de48(AdditionalData(tcc, tuple(items))), st.sampled_from("RTZ"),
                 st.lists(st.tuples(digits(2), text(0, 30)), max_size=4))

optional: dict[int, st.SearchStrategy[FieldValue]] = {
    4: digits(12), 7: digits(10), 12: digits(6), 13: digits(4), 14: digits(4), 15: digits(4), 18: digits(4),
    22: digits(3), 32: digits(1, 6), 33: digits(1, 6), 35: text(1, 37), 37: text(12), 38: text(6),
    39: st.sampled_from([code.value for code in ResponseCode]),
    41: text(8), 42: text(15), 43: text(40), 48: de48, 49: digits(3), 52: st.binary(min_size=8, max_size=8),
    55: st.binary(max_size=255), 61: text(14, 26), 63: text(9, 50), 90: digits(42), 95: digits(42),
    100: digits(1, 11), 112: text(0, 200), 124: text(0, 299), 128: st.binary(min_size=8, max_size=8),
}


@st.composite
def messages(draw: Any) -> Message:
    mti = draw(st.sampled_from(["0100", "0110", "0200", "0210", "0400", "0410", "0420", "0430", "0120", "0130"]))
    fields: dict[int, FieldValue] = {2: draw(digits(12, 19)), 3: draw(digits(6)), 11: draw(digits(6))}
    for number, strategy in optional.items():
        if draw(st.booleans()):
            fields[number] = draw(strategy)
    if 95 in fields:
        fields[95] = str(fields[95])[:36] + "000000"
    if mti[2] in "02":  # what the network adds to a request that lacks it
        fields.setdefault(48, "R")
        fields.setdefault(61, "00000000002" "00" "840")
    msg = Message(mti, fields)
    msg.meta.scheme = "mastercard"
    return msg


def _framer(code_page: str) -> Any:
    options = TomlTable({"code_page": code_page}, "node.toml", "options")
    return NETWORK.link_options(None, options).framer()


@given(messages(), st.sampled_from(["cp500", "cp037"]), st.lists(st.integers(0, 600), max_size=5))
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
def test_round_trip_through_the_framer(msg: Message, code_page: str, cuts: list[int]) -> None:
    body = NETWORK.encode(msg)
    wire = _framer(code_page).encode(body)
    for feed in (feed_whole, feed_bytewise):
        [frame] = feed(_framer(code_page), wire)
        assert frame.body == body
    [frame] = feed_chunks(_framer(code_page), split_at(wire, cuts))
    back = NETWORK.classify(frame).message
    assert back is not None and back.mti == msg.mti and back.fields == msg.fields


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_any_bytes_classify_or_raise_a_typed_error(data: bytes) -> None:
    with contextlib.suppress(RemoteProtocolError):
        NETWORK.classify(Frame(data))
    framer = _framer("cp037")
    framer.receive_data(len(data).to_bytes(2, "big") + data)
    try:
        frame = framer.next_frame()
    except MalformedFrame:
        return
    if frame is not None and not frame.keepalive:
        with contextlib.suppress(RemoteProtocolError):
            NETWORK.classify(frame)
