"""UnionPay behind the network contract: classification (a reject header is a reject of the original, never a
request), response codes, validation, responses, and every malformed header or field a typed error."""

from __future__ import annotations

import pytest

from schemes.unionpay import SCHEME
from switch.contracts.network import KEEPALIVE, FrameKind, Network
from switch.contracts.registry import network
from switch.model.codes import ResponseCode
from switch.model.errors import DecodeError, EncodeError, FieldError, FramingError, UnknownMtiError
from switch.model.message import Message
from switch.wire.framing import Frame

from . import vectors as v
from .test_framing_unionpay import cups_header

PAN = "6226010562885479"


def purchase() -> Message:
    fields: dict[int, str | bytes] = {
        2: PAN, 3: "000000", 4: "000000010000", 7: "0511234203", 11: "000012", 12: "234203", 13: "0511",
        32: "48020000", 33: "48020000", 37: "000000000012", 41: "12345678", 42: "123456789012345",
        43: "中国银联CHINA UNIONPAY SIMULATOR        ", 49: "156",
    }
    return Message("0200", fields)


def frame(msg: Message, *, reject: bytes = b"00000", dst: bytes = b"48020000   ") -> Frame:
    body = SCHEME.encode(msg)
    return Frame(body, cups_header(body_len=len(body), dst=dst, src=b"00010000   ", reject=reject))


def test_registered_under_its_name() -> None:
    assert network("unionpay") is SCHEME
    assert isinstance(SCHEME, Network)


def test_requests_and_responses_are_classified_with_their_header() -> None:
    inbound = SCHEME.classify(frame(purchase()))
    assert inbound.kind is FrameKind.REQUEST and inbound.message is not None
    assert inbound.message.meta.header is not None and inbound.message.meta.header[6:14] == b"48020000"
    answer = SCHEME.make_response(purchase(), ResponseCode.APPROVED)
    assert SCHEME.classify(frame(answer)).kind is FrameKind.RESPONSE
    assert SCHEME.classify(Frame(b"", b"", True)) is KEEPALIVE


def test_a_reject_header_is_a_reject_of_the_original_never_a_request() -> None:
    original = purchase()
    inbound = SCHEME.classify(frame(original, reject=b"00045"))
    assert inbound.kind is FrameKind.REJECT
    assert inbound.message == original  # the request it rejects, to match to its exchange
    assert inbound.reason == "00045 destination id"
    assert inbound.code is ResponseCode.SYSTEM_MALFUNCTION
    # A code public sources do not name is still a reject.
    assert SCHEME.classify(frame(original, reject=b"31234")).reason == "31234"


def test_a_reject_whose_body_cannot_be_read_is_still_a_reject() -> None:
    header = cups_header(body_len=5, dst=b"48020000   ", src=b"00010000   ", reject=b"00035")
    inbound = SCHEME.classify(Frame(b"02\xff\x00x", header))
    assert (inbound.kind, inbound.message, inbound.reason) == (FrameKind.REJECT, None, "00035 message length")


@pytest.mark.parametrize(
    ("header_change", "code"),
    [((6, b"\x01"), "00045"), ((17, b"\xff"), "00055"), ((41, b"0004x"), "")],
    ids=["destination-control", "source-not-ascii", "reject-not-digits"],
)
def test_a_malformed_header_is_a_framing_error(header_change: tuple[int, bytes], code: str) -> None:
    good = frame(purchase())
    at, value = header_change
    header = good.header[:at] + value + good.header[at + len(value):]
    with pytest.raises(FramingError) as info:
        SCHEME.classify(Frame(good.body, header))
    assert getattr(info.value, "reject_code", None) == code
    with pytest.raises(FramingError):
        SCHEME.classify(Frame(good.body, good.header[:40]))


def test_a_malformed_body_is_a_typed_error_without_its_data() -> None:
    good = frame(purchase())
    with pytest.raises(DecodeError):
        SCHEME.classify(Frame(good.body[:-3], good.header))
    with pytest.raises(UnknownMtiError):
        SCHEME.classify(frame(Message("0900", {11: "000001"})))
    # DE 48 of a text usage that is not GBK: a DecodeError at field 48 that does not quote the bytes.
    raw = SCHEME.codec.encode("0200", {3: "300000", 11: "000001", 48: (b"AA\xc1 secret").hex()})
    with pytest.raises(DecodeError) as info:
        SCHEME.decode(raw)
    assert (info.value.field, info.value.reason) == ("48", "not GBK text")
    assert "secret" not in str(info.value) and "c1" not in str(info.value).lower()
    raw = SCHEME.codec.encode("0200", {3: "300000", 11: "000001", 63: b"SM099".hex()})
    with pytest.raises(DecodeError) as info:
        SCHEME.decode(raw)
    assert info.value.field == "63"


def test_values_the_wire_cannot_carry_are_encode_errors() -> None:
    for field, value in ((48, "AA\u0e01"), (48, "NKnot-hex"), (63, "free text"), (43, "中" * 40), (48, b"AA")):
        with pytest.raises(EncodeError) as info:
            SCHEME.encode(_with(field, value))
        assert info.value.field == str(field)


def _with(field: int, value: str | bytes) -> Message:
    msg = purchase()
    msg[field] = value
    return msg


def test_response_codes() -> None:
    answer = SCHEME.make_response(purchase(), "00")
    wire = SCHEME.encode(answer)
    for code, core in (("00", "00"), ("51", "51"), ("A0", "63"), ("Q1", "05")):
        raw = SCHEME.codec.decode(wire)[1]
        raw[39] = code
        assert SCHEME.decode(SCHEME.codec.encode("0210", raw))[39] == core
    assert SCHEME.codes.unknown["Q1"] >= 1
    assert SCHEME.codes.wire("63") == "63"  # a security violation is not told to UnionPay as a MAC error
    # A request's DE 39 (a reversal's reason) is translated where known, else kept.
    reversal = SCHEME.decode(SCHEME.codec.encode("0420", {3: "000000", 4: "000000000100", 11: "000002", 39: "Q9"}))
    assert reversal[39] == "Q9"


def test_a_response_echoes_unionpay_s_reserved_fields() -> None:
    request = SCHEME.decode(v.ALATKA_0200_INQUIRY)
    answer = SCHEME.make_response(request, ResponseCode.INSUFFICIENT_FUNDS)
    assert answer.mti == "0210" and answer[39] == "51"
    assert answer[121] == request[121] and answer[60] == request[60] and answer[100] == request[100]
    assert 22 not in answer and 52 not in answer and 35 not in answer


def test_validation_of_requests_unionpay_sends() -> None:
    SCHEME.validate(SCHEME.decode(v.ALATKA_0200_INQUIRY))  # a balance inquiry carries no amount
    SCHEME.validate(SCHEME.decode(v.EASY_PIN_RESET_0800[46:]))
    SCHEME.validate(purchase())
    for msg, field in (
        (_without(purchase(), 4), 4),
        (_without(purchase(), 11), 11),
        (_without(_without(purchase(), 2), 35), 2),
        (_with(4, "12"), 4),
        (_with(3, "00000x"), 3),
        (Message("0820", {11: "000001"}), 70),
    ):
        with pytest.raises(FieldError) as info:
            SCHEME.validate(msg)
        assert info.value.field == field
    SCHEME.validate(Message("0210", {39: "00"}))  # responses are not checked


def _without(msg: Message, field: int) -> Message:
    if field in msg:
        del msg[field]
    return msg
