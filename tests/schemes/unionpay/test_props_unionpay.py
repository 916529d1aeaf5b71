"""Properties of the UnionPay dialect: any canonical message it can carry goes to the wire and back unchanged
(through the framer too), and any bytes from a peer end in a classification or a typed error, never another
exception."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemes.unionpay import SCHEME
from schemes.unionpay.fields import Balance, build_additional_data, build_balances
from schemes.unionpay.framing import UnionPayFraming
from switch.model.codes import ResponseCode
from switch.model.errors import RemoteProtocolError
from switch.model.message import FieldValue, Message
from switch.wire.framing import Frame
from tests.switch.wire.helpers import feed_chunks, split_at

from . import vectors as v
from .test_framing_unionpay import cups_header

DIGITS = "0123456789"
HEX = "0123456789ABCDEF"


def _gbk(char: str) -> bool:
    try:
        char.encode("gbk")
    except UnicodeEncodeError:
        return False
    return True


# Printable ASCII and the characters GBK has (Chinese text above all).
gbk_char = st.one_of(st.characters(min_codepoint=32, max_codepoint=126),
                     st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5).filter(_gbk),
                     st.characters(min_codepoint=128, max_codepoint=0xFFFF, blacklist_categories=("Cs",)).filter(_gbk))


def gbk_text(max_bytes: int) -> st.SearchStrategy[str]:
    return st.text(gbk_char, max_size=max_bytes // 2).filter(lambda t: len(t.encode("gbk")) <= max_bytes)


def gbk_fixed(size: int) -> st.SearchStrategy[str]:
    def fit(text: str) -> str:
        out, used = "", 0
        for char in text:
            width = len(char.encode("gbk"))
            if used + width > size:
                break
            out, used = out + char, used + width
        return out + " " * (size - used)

    return st.text(gbk_char, max_size=size).map(fit)


def digits(low: int, high: int | None = None) -> st.SearchStrategy[str]:
    return st.text(DIGITS, min_size=low, max_size=low if high is None else high)


def hex_bytes(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).flatmap(lambda n: st.text(HEX, min_size=2 * n, max_size=2 * n))


balance = st.builds(Balance, digits(2), digits(2), digits(3), st.sampled_from("CD"), st.integers(0, 10**12 - 1))
de48 = st.one_of(
    hex_bytes(16, 24).map(lambda h: "NK" + h),
    st.tuples(st.sampled_from(["AA", "IN", "PB", "ON", "CB"]), gbk_text(400)).map(lambda p: p[0] + p[1]),
    st.lists(st.tuples(st.text(st.characters(min_codepoint=65, max_codepoint=90), min_size=2, max_size=2),
                       gbk_text(60)), max_size=5).map(lambda els: build_additional_data("AS", elements=tuple(els))),
)


@st.composite
def de63(draw: st.DrawFn) -> str:
    out = ""
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            key = draw(hex_bytes(0, 40))
            out += f"SM{len(key) // 2:03d}{key}"
        else:
            text = draw(gbk_text(60))
            out += f"TK{len(text.encode('gbk')):03d}{text}"
    return out


FIELDS: dict[int, st.SearchStrategy[FieldValue]] = {
    2: digits(12, 19), 3: digits(6), 4: digits(12), 7: digits(10), 11: digits(6), 12: digits(6), 13: digits(4),
    15: digits(4), 18: digits(4), 22: digits(3), 25: digits(2), 32: digits(1, 11), 33: digits(1, 11),
    35: st.text(DIGITS + "=D", min_size=1, max_size=37), 37: st.text(DIGITS + "ABC", min_size=12, max_size=12),
    41: st.text(DIGITS + "ABCXYZ ", min_size=8, max_size=8), 42: st.text(DIGITS + " ", min_size=15, max_size=15),
    43: gbk_fixed(40), 48: de48, 49: digits(3), 52: st.binary(min_size=8, max_size=8), 53: digits(16),
    54: st.lists(balance, min_size=1, max_size=2).map(build_balances), 55: st.binary(max_size=255),
    60: digits(0, 100), 61: gbk_text(200), 63: de63(), 70: digits(3), 90: digits(42),
    96: st.binary(min_size=8, max_size=8), 100: digits(1, 11), 121: gbk_text(100), 122: gbk_text(100),
    123: gbk_text(999), 128: st.binary(min_size=8, max_size=8),
}
MTIS = ["0100", "0110", "0200", "0210", "0220", "0230", "0420", "0430", "0800", "0810", "0820", "0830"]


@st.composite
def messages(draw: st.DrawFn) -> Message:
    mti = draw(st.sampled_from(MTIS))
    numbers = draw(st.lists(st.sampled_from(sorted(FIELDS)), unique=True, min_size=1, max_size=20))
    fields = {n: draw(FIELDS[n]) for n in numbers}
    if draw(st.booleans()):
        fields[39] = draw(st.sampled_from([c.value for c in ResponseCode]))
    return Message(mti, fields)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(msg=messages(), cuts=st.lists(st.integers(0, 3000), max_size=8), prefixed=st.booleans())
def test_any_message_of_the_dialect_round_trips_through_codec_and_framer(
        msg: Message, cuts: list[int], prefixed: bool) -> None:
    body = SCHEME.encode(msg)
    assert SCHEME.decode(body).fields == msg.fields
    config = UnionPayFraming(length_prefix=prefixed, source_id="48020000", destination_id="00010000")
    wire = config.framer().encode(body) * 2
    frames = feed_chunks(config.framer(), split_at(wire, cuts))
    assert len(frames) == 2
    for frame in frames:
        inbound = SCHEME.classify(frame)
        assert inbound.message is not None and inbound.message.fields == msg.fields
        assert inbound.message.mti == msg.mti


SAMPLES = [v.ALATKA_0200_INQUIRY, v.ALATKA_0210_BALANCES, v.ALATKA_0110_GBK, v.ALATKA_0200_GBK,
           v.EASY_PIN_RESET_0800[46:], v.EASY_0200[46:]]


def _classify(frame: Frame) -> None:
    try:
        inbound = SCHEME.classify(frame)
    except RemoteProtocolError:
        return
    if inbound.message is not None:
        inbound.message.masked()  # what the link logs of it never fails either


@settings(max_examples=400, deadline=None)
@given(sample=st.sampled_from(SAMPLES), flips=st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)),
                                                      min_size=1, max_size=6),
       cut=st.integers(0, 2000), reject=st.sampled_from([b"00000", b"00045", b"9999x"]))
def test_mutated_samples_end_in_a_classification_or_a_typed_error(
        sample: bytes, flips: list[tuple[int, int]], cut: int, reject: bytes) -> None:
    body = bytearray(sample)
    for at, value in flips:
        body[at % len(body)] = value
    mutated = bytes(body[:max(1, cut)] if cut < len(body) else body)
    header = cups_header(body_len=len(mutated), dst=b"48020000   ", src=b"00010000   ", reject=reject)
    _classify(Frame(mutated, header))


@settings(max_examples=300, deadline=None)
@given(header=st.binary(min_size=0, max_size=60), body=st.binary(max_size=300))
def test_any_bytes_end_in_a_classification_or_a_typed_error(header: bytes, body: bytes) -> None:
    _classify(Frame(body, header))
