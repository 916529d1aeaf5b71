"""The VISA network behind the contract: frame classification (requests, responses, rejects, session control),
response codes, network management, link options and dialects, and malformed input."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemes.visa import NETWORK
from schemes.visa.dialect import Transcoder, codec_for
from schemes.visa.framing import VisaFramer, VisaFraming
from schemes.visa.header import build_reject
from schemes.visa.link import VisaLink
from schemes.visa.spec import DEFAULT_DIALECT, Dialect
from switch.contracts.network import FrameKind, KeyChange, NetMgmt, Network
from switch.contracts.registry import network
from switch.model.codes import ResponseCode
from switch.model.errors import ConfigError, RemoteProtocolError
from switch.model.message import Message
from switch.model.toml import TomlTable
from switch.wire.framing import Frame

HEADER = bytes.fromhex("16010200400000001234560000000000000000000000")


def request(stan: str = "000123", **extra: str) -> Message:
    fields: dict[int, Any] = {2: "4761739001010010", 3: "000000", 4: "000000001000", 7: "1207101010", 11: stan,
                              19: "156", 22: "051", 25: "00", 32: "43210987", 37: "123456789012", 41: "TERM0001",
                              42: "MERCHANT0000001", 49: "156"}
    fields.update({int(k[1:]): v for k, v in extra.items()})
    return Message("0100", fields)


def frame_of(msg: Message, header: bytes = HEADER) -> Frame:
    return Frame(NETWORK.encode(msg), header)


def link(framing: dict[str, Any] | None = None, options: dict[str, Any] | None = None) -> VisaLink:
    found = NETWORK.link_options(None if framing is None else TomlTable(framing, "node.toml", "connectors[0].framing"),
                                 None if options is None else TomlTable(options, "node.toml", "connectors[0].options"))
    assert isinstance(found, VisaLink)
    return found


def test_registered_by_entry_point() -> None:
    assert network("visa") is NETWORK
    assert isinstance(NETWORK, Network)


# -- classification -----------------------------------------------------------------------------------------------
def test_request_and_response() -> None:
    inbound = NETWORK.classify(frame_of(request()))
    assert inbound.kind is FrameKind.REQUEST and inbound.message is not None
    assert inbound.message.meta.header == HEADER and inbound.message.meta.scheme == "visa"
    answer = NETWORK.make_response(inbound.message, ResponseCode.APPROVED)
    back = NETWORK.classify(frame_of(answer))
    assert back.kind is FrameKind.RESPONSE and back.message is not None
    assert back.message.response_code == "00"
    assert NETWORK.matcher(None)(back.message) == NETWORK.matcher(None)(inbound.message)


def test_reject_of_our_request() -> None:
    ours = request(stan="000777")
    body = NETWORK.encode(ours)
    inbound = NETWORK.classify(Frame(body, build_reject(HEADER, "0501", len(body))))
    assert inbound.kind is FrameKind.REJECT
    assert inbound.message is not None and inbound.message.stan == "000777"
    assert inbound.message.meta.header == HEADER  # the original's own header, after the reject header
    assert inbound.reason == "BASE I reject code 0501"
    assert inbound.code is ResponseCode.SYSTEM_MALFUNCTION
    assert NETWORK.matcher(None)(inbound.message) == NETWORK.matcher(None)(ours)


def test_reject_whose_message_does_not_decode_is_still_a_reject() -> None:
    garbage = b"\x01\x00\xff"
    inbound = NETWORK.classify(Frame(garbage, build_reject(HEADER, "0012", len(garbage))))
    assert (inbound.kind, inbound.message, inbound.reason) == (FrameKind.REJECT, None, "BASE I reject code 0012")


def test_reject_of_one_of_our_responses_matches_no_request() -> None:
    answer = NETWORK.make_response(request(), "00")
    body = NETWORK.encode(answer)
    inbound = NETWORK.classify(Frame(body, build_reject(HEADER, "0501", len(body))))
    assert inbound.kind is FrameKind.REJECT and inbound.message is None
    assert inbound.reason == "BASE I reject code 0501 for our 0110 stan 000123"


def test_session_control_and_polls_are_never_routed() -> None:
    framer = VisaFraming().framer()
    framer.receive_data(bytes(4) + bytes.fromhex("00020020C8C2"))
    poll, heartbeat = framer.next_frame(), framer.next_frame()
    assert poll is not None and heartbeat is not None
    assert NETWORK.classify(poll).kind is FrameKind.KEEPALIVE
    assert NETWORK.classify(heartbeat).kind is FrameKind.SESSION


# -- response codes -----------------------------------------------------------------------------------------------
def test_visa_codes_and_unknown_ones() -> None:
    base = NETWORK.make_response(request(), "00")
    for wire, core in [("51", "51"), ("N7", "05"), ("R0", "57"), ("Q9", "05")]:
        mti, fields = NETWORK.from_canonical(base)
        fields[39] = wire  # as the network sends it
        body = NETWORK.codec.encode(mti, fields)
        assert NETWORK.decode(body).response_code == core
    assert NETWORK.codes.unknown["Q9"] >= 1
    base[39] = ResponseCode.INSUFFICIENT_FUNDS.value
    assert NETWORK.from_canonical(base)[1][39] == "51"


# -- network management -------------------------------------------------------------------------------------------
NOW = datetime(2026, 12, 7, 10, 11, 12)


def stan() -> str:
    return "000042"


def test_default_codes() -> None:
    session = NETWORK.session(link())
    codes = {kind: [m[70] for m in session.requests(kind, stan, NOW)] for kind in NetMgmt}
    assert codes == {NetMgmt.SIGN_ON: ["071"], NetMgmt.SIGN_OFF: ["072"], NetMgmt.ECHO: ["301"],
                     NetMgmt.KEY_EXCHANGE: ["163"], NetMgmt.CUTOVER: []}
    (signon,) = session.requests(NetMgmt.SIGN_ON, stan, NOW)
    assert signon.fields == {7: "1207101112", 11: "000042", 70: "071"}
    body = NETWORK.encode(signon)
    assert body[-2:] == bytes.fromhex("0071")  # DE 70: n3 in two BCD bytes ("0071" as the reference writes it)
    assert session.accepted(NetMgmt.SIGN_ON, NETWORK.make_response(signon, "00"))
    assert not session.accepted(NetMgmt.SIGN_ON, NETWORK.make_response(signon, "91"))


def test_codes_per_link_and_group_signon() -> None:
    session = NETWORK.session(link(options={"signon_code": "081", "signoff_code": "082", "key_exchange_code": "",
                                            "cutover_code": "201", "institutions": ["400050", "400051"]}))
    signons = session.requests(NetMgmt.SIGN_ON, stan, NOW)
    assert [(m[70], m[33]) for m in signons] == [("081", "400050"), ("081", "400051")]
    assert session.requests(NetMgmt.KEY_EXCHANGE, stan, NOW) == []
    cutover = Message("0800", {7: "1207235959", 11: "000001", 15: "1208", 70: "201"})
    assert session.inbound(cutover).business_date == "1208"
    foreign = Message("0800", {11: "000002", 33: "999999", 70: "081"})
    event = session.inbound(foreign)
    assert event.institution == "999999"
    assert session.answer(foreign, event, ResponseCode.APPROVED)[39] == "15"


def test_key_exchange_both_ways() -> None:
    session = NETWORK.session(link())
    change = Message("0800", {7: "1207101010", 11: "000003", 70: "163", 125: "U" + "AB" * 16 + "1A2B3C"})
    event = session.inbound(change)
    assert event.kind is NetMgmt.KEY_EXCHANGE and event.key == KeyChange("ZPK", "U" + "AB" * 16, "1A2B3C")
    answer = session.answer(change, event, ResponseCode.APPROVED)
    assert (answer.mti, answer[39], answer[70]) == ("0810", "00", "163")
    # The key field is hidden wherever the message is shown.
    decoded = NETWORK.decode(NETWORK.encode(change))
    assert "AB" * 16 not in repr(decoded)
    assert session.key_change(NETWORK.make_response(change, "00")) is None
    assert session.inbound(Message("0800", {11: "000004", 70: "999"})).kind is None


def test_echo_answer() -> None:
    session = NETWORK.session(link())
    echo = Message("0800", {7: "1207101010", 11: "000005", 70: "301"})
    event = session.inbound(echo)
    assert event.kind is NetMgmt.ECHO
    body = NETWORK.encode(session.answer(echo, event, ResponseCode.APPROVED))
    assert NETWORK.decode(body).fields == {7: "1207101010", 11: "000005", 39: "00", 70: "301"}


# -- link options -------------------------------------------------------------------------------------------------
def test_framing_and_options_tables() -> None:
    found = link({"kind": "visa", "source_station": "400050", "destination_station": "000000",
                  "heartbeat_reply": "none"}, {"code_page": "cp037", "odd_pad": "right"})
    assert found.framing == VisaFraming("400050", "000000", heartbeat_reply="none")
    assert found.dialect == Dialect(code_page="cp037", odd_pad="right")
    assert isinstance(found.framer(), VisaFramer) and found.transcoder is not None
    assert link().transcoder is None and link().dialect == DEFAULT_DIALECT


@pytest.mark.parametrize(("framing", "options", "key", "reason"), [
    ({"kind": "binary2"}, None, "connectors[0].framing.kind", "does not belong to network 'visa'"),
    ({"kind": "visa", "heartbeat_reply": "loud"}, None, "connectors[0].framing.heartbeat_reply", "echo, none"),
    ({"kind": "visa", "source_station": "40005"}, None, "connectors[0].framing.source_station", "6 digits"),
    (None, {"signon_code": "71"}, "connectors[0].options.signon_code", "3 digits"),
    (None, {"echo_code": "071"}, "connectors[0].options.echo_code", "already the signon_code"),
    (None, {"code_page": "cp1252x"}, "connectors[0].options.code_page", "unknown code page"),
    (None, {"code_page": "utf-16"}, "connectors[0].options.code_page", "not a single-byte code page"),
    (None, {"code_page": "cp424"}, "connectors[0].options.code_page", "mapping all 256 bytes"),
    (None, {"odd_pad": "middle"}, "connectors[0].options.odd_pad", "left, right"),
    (None, {"fee_amounts": "ascii"}, "connectors[0].options.fee_amounts", "bcd, ebcdic"),
    (None, {"de60_length": "nibbles"}, "connectors[0].options.de60_length", "bytes, digits"),
    (None, {"key_field": 48}, "connectors[0].options.key_field", "45, 125"),
    (None, {"institutions": ["40005X"]}, "connectors[0].options.institutions[0]", "institution id"),
    (None, {"codepage": "cp037"}, "connectors[0].options.codepage", "did you mean 'code_page'"),
])
def test_bad_link_options_name_the_key(framing: dict[str, Any] | None, options: dict[str, Any] | None, key: str,
                                        reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        link(framing, options)
    assert info.value.key == key
    assert reason in info.value.reason


# -- dialects -----------------------------------------------------------------------------------------------------
ALL_DIFFERENT = Dialect(code_page="cp037", odd_pad="right", fee_amounts="ebcdic", de48="ebcdic",
                        de60_length="digits", private_text="ebcdic")


def test_a_dialect_link_speaks_its_dialect_and_the_network_the_reference() -> None:
    msg = request(f28="D00000150", f35="4761739001010010D2512101", f43="[SHOP]!".ljust(40), f48="C1C2C3",
                  f60="050000000700", f102="ACC-1")
    reference = NETWORK.encode(msg)
    framer = VisaFraming().framer(Transcoder(ALL_DIFFERENT))
    wire = framer.encode(reference)
    body = wire[26:]
    link_codec = codec_for(ALL_DIFFERENT)
    _, on_link = link_codec.decode(body)
    assert on_link[28] == "D00000150"  # nine EBCDIC characters on this link
    assert body.count("D00000150".encode("cp037")) == 1
    assert "[SHOP]!".encode("cp037") in body and "[SHOP]!".encode("cp500") not in body
    assert bytes.fromhex("18" "4761739001010010D2512101") in body  # 24 digits: no pad needed
    assert on_link[48] == "ABC" and on_link[102] == "ACC-1"
    assert bytes.fromhex("0C" "050000000700") in body  # DE 60's length counts digits on this link
    # Read back, the network sees exactly what it sent.
    framer.receive_data(wire)
    frame = framer.next_frame()
    assert frame is not None and frame.body == reference
    assert NETWORK.decode(frame.body).fields == msg.fields


def test_right_padded_track2_as_a_live_capture_has_it() -> None:
    # moov-io/iso8583 pull request 457: the length counts digits, the odd count padded with an F nibble.
    msg = request(f35="4761739001010010D251210100000")  # 29 digits
    wire = VisaFraming().framer(Transcoder(Dialect(odd_pad="right"))).encode(NETWORK.encode(msg))
    assert bytes.fromhex("1D" "4761739001010010D251210100000F") in wire


def test_a_body_the_dialect_cannot_read_is_handed_on_as_it_came() -> None:
    framer = VisaFraming().framer(Transcoder(ALL_DIFFERENT))
    garbage = b"\x01\x00\xff\xff"
    framer.receive_data((22 + len(garbage)).to_bytes(2, "big") + b"\x00\x00" + HEADER + garbage)
    frame = framer.next_frame()
    assert frame is not None and frame.body == garbage
    with pytest.raises(RemoteProtocolError):
        NETWORK.classify(frame)


# -- properties -----------------------------------------------------------------------------------------------------
def _digits(n: int) -> st.SearchStrategy[str]:
    return st.text("0123456789", min_size=n, max_size=n)


def _text(n: int, fixed: bool = True) -> st.SearchStrategy[str]:
    return st.text(st.characters(min_codepoint=32, max_codepoint=255), min_size=n if fixed else 0, max_size=n)


canonical = st.fixed_dictionaries({
    2: _digits(16), 3: _digits(6), 4: _digits(12), 11: _digits(6),
}, optional={
    7: _digits(10), 19: _digits(3), 22: _digits(3), 28: st.sampled_from("CD").flatmap(
        lambda s: _digits(8).map(lambda d: s + d)),
    32: st.text("0123456789", min_size=1, max_size=11), 35: st.text("0123456789D", min_size=1, max_size=37),
    37: _text(12), 41: _text(8), 43: _text(40), 44: _text(25, False), 49: _digits(3),
    52: st.binary(min_size=8, max_size=8), 55: st.binary(max_size=100),
    62: st.binary(max_size=60).map(lambda b: b.hex().upper()), 70: _digits(3), 90: _digits(42),
    102: st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=28), 128: st.binary(min_size=8,
                                                                                                 max_size=8),
})


@settings(max_examples=150, deadline=None)
@given(fields=canonical, mti=st.sampled_from(["0100", "0110", "0200", "0210", "0400", "0420", "0800"]),
       dialect=st.sampled_from([DEFAULT_DIALECT, ALL_DIFFERENT, Dialect(code_page="cp037")]))
def test_canonical_round_trip_through_any_dialect(fields: dict[int, Any], mti: str, dialect: Dialect) -> None:
    msg = Message(mti, dict(fields))
    framer = VisaFraming().framer(None if dialect == DEFAULT_DIALECT else Transcoder(dialect))
    wire = framer.encode(NETWORK.encode(msg))
    framer.receive_data(wire)
    frame = framer.next_frame()
    assert frame is not None
    back = NETWORK.classify(frame).message
    assert back is not None and back.mti == mti
    assert back.fields == msg.fields


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.binary(min_size=0, max_size=30))
def test_any_bytes_classify_or_fail_typed(body: bytes, header_tail: bytes) -> None:
    for header in (HEADER, build_reject(HEADER, "0501", len(body)), HEADER[:1] + header_tail):
        with contextlib.suppress(RemoteProtocolError):
            NETWORK.classify(Frame(body, header))
    salvaged = NETWORK.salvage(body)
    assert salvaged is None or isinstance(salvaged, Message)


def test_a_visa_link_with_a_mac_key_exchange_code_asks_for_and_takes_a_zone_mac_key() -> None:
    where = "connectors[0].options"
    options = NETWORK.link_options(None, TomlTable({"mac_key_exchange_code": "160"}, "node.toml", where))
    session = NETWORK.session(options)
    (ask,) = session.key_requests("mac", lambda: "000042", datetime(2026, 12, 7, 10, 0))  # type: ignore[attr-defined]
    assert (ask.mti, ask[70]) == ("0800", "160")
    carried = "U" + "A" * 32 + "ABCDEF"  # the key under the ZMK (Thales notation), then its check value
    event = session.inbound(Message("0800", {7: "1207100000", 11: "000043", 70: "160", 125: carried}))
    assert event.kind is NetMgmt.KEY_EXCHANGE and event.key == KeyChange("ZAK", "U" + "A" * 32, "ABCDEF")
    with pytest.raises(ConfigError, match="mac_key_exchange_code"):
        NETWORK.link_options(None, TomlTable({"mac_key_exchange_code": "163"}, "node.toml", where))
