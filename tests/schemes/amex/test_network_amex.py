"""The American Express network behind the contract: ISO 8583:1993 MTIs, action and function codes and the 1993
fields on the wire, the canonical 1987 message inside; the framing that counts its own length; network management
1804/1814; reversals as 1420 matched with their answers; malformed input; link options."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemes.amex import NETWORK
from schemes.amex.link import AmexLink, codec_for
from switch.contracts.network import FrameKind, NetMgmt, Network, RefusalForm
from switch.contracts.registry import network
from switch.model.codes import ResponseCode
from switch.model.errors import ConfigError, EncodeError, RemoteProtocolError
from switch.model.message import Message
from switch.model.toml import TomlTable
from switch.wire.framing import Frame, MalformedFrame
from tests.switch.wire.helpers import feed_bytewise, feed_whole

PAN = "371449635398431"


def request(mti: str = "0100", stan: str = "000123", **extra: Any) -> Message:
    fields: dict[int, Any] = {2: PAN, 3: "000000", 4: "000000001000", 7: "1207101010", 11: stan, 12: "101010",
                              13: "1207", 18: "5411", 22: "021", 25: "00", 32: "412345", 37: "123456789012",
                              41: "TERM0001", 42: "MERCHANT0000001", 43: "SHOP", 49: "840"}
    fields.update({int(k[1:]): v for k, v in extra.items()})
    return Message(mti, fields)


def wire(msg: Message) -> tuple[str, dict[int, str]]:
    return codec_for("cp500").decode(NETWORK.encode(msg))


def link(framing: dict[str, Any] | None = None, options: dict[str, Any] | None = None) -> AmexLink:
    found = NETWORK.link_options(None if framing is None else TomlTable(framing, "node.toml", "connectors[0].framing"),
                                 None if options is None else TomlTable(options, "node.toml", "connectors[0].options"))
    assert isinstance(found, AmexLink)
    return found


def test_registered_by_entry_point() -> None:
    assert network("amex") is NETWORK
    assert isinstance(NETWORK, Network)


def test_an_authorization_on_the_wire_in_iso_1993() -> None:
    body = NETWORK.encode(request())
    assert body[:4] == bytes.fromhex("F1F1F0F0")  # 1100 in EBCDIC
    mti, fields = codec_for("cp500").decode(body)
    assert mti == "1100"
    assert fields[12][2:] == "1207101010" and len(fields[12]) == 12  # YYMMDDhhmmss
    assert (fields[22], fields[24], fields[26]) == ("560101254041", "100", "5411")  # stripe, no PIN
    assert 13 not in fields and 18 not in fields and 25 not in fields  # carried in DE 12, 26 and 22


def test_an_answer_echoes_what_the_request_carried_and_its_action_code() -> None:
    inbound = NETWORK.classify(Frame(NETWORK.encode(request())))
    assert inbound.kind is FrameKind.REQUEST and inbound.message is not None
    msg = inbound.message
    assert (msg.mti, msg[12], msg[13], msg[18], msg[22], msg[25]) == ("0100", "101010", "1207", "5411", "021", "00")
    answer = NETWORK.make_response(msg, ResponseCode.INSUFFICIENT_FUNDS)
    mti, fields = codec_for("cp500").decode(NETWORK.encode(answer))
    assert (mti, fields[39], fields[24]) == ("1110", "116", "100")
    assert fields[12] == msg.meta.extra["amex.12"]  # DE 12 as it came, year and all
    back = NETWORK.classify(Frame(NETWORK.encode(answer)))
    assert back.kind is FrameKind.RESPONSE and back.message is not None and back.message.response_code == "51"
    assert NETWORK.matcher(None)(back.message) == NETWORK.matcher(None)(msg)


@pytest.mark.parametrize(("wire_code", "core"), [("000", "00"), ("116", "51"), ("117", "55"), ("208", "41"),
                                                  ("912", "91"), ("800", "00"), ("304", "30"), ("XYZ", "05")])
def test_action_codes(wire_code: str, core: str) -> None:
    before = NETWORK.codes.unknown["XYZ"]
    msg = NETWORK.decode(codec_for("cp500").encode("1110", {11: "000001", 12: "261207101010", 39: wire_code}))
    assert msg.response_code == core
    if wire_code == "XYZ":
        assert NETWORK.codes.unknown["XYZ"] == before + 1


def test_network_management_is_1804_and_1814_with_function_codes() -> None:
    session = NETWORK.session(link())
    [signon] = session.requests(NetMgmt.SIGN_ON, lambda: "000001", datetime(2026, 12, 7, 10, 10, 10, tzinfo=UTC))
    mti, fields = wire(signon)
    assert (mti, fields[24], fields[12]) == ("1804", "801", "261207101010")
    echo = NETWORK.decode(codec_for("cp500").encode("1804", {11: "000002", 12: "261207101010", 24: "831"}))
    assert (echo.mti, echo[70]) == ("0800", "831")
    event = session.inbound(echo)
    assert event.kind is NetMgmt.ECHO
    answer = session.answer(echo, event, ResponseCode.APPROVED)
    mti, fields = wire(answer)
    assert (mti, fields[39], fields[24], fields[11]) == ("1814", "800", "831", "000002")
    assert session.accepted(NetMgmt.SIGN_ON, NETWORK.decode(NETWORK.encode(answer)))
    assert [r for k in (NetMgmt.KEY_EXCHANGE, NetMgmt.CUTOVER) for r in
            session.requests(k, lambda: "000003", datetime.now(UTC))] == []  # off unless given


def test_a_reversal_goes_out_as_1420_and_its_answer_matches() -> None:
    original = request("0200")
    reversal = Message("0400", {**{n: original[n] for n in (2, 3, 4, 12, 13, 32, 37, 41, 42, 49)}, 7: "1207101111",
                                11: "000124", 39: "68",
                                90: "0200000123" + "1207101010" + "00000412345" + "0" * 11})
    mti, fields = wire(reversal)
    assert (mti, fields[24], fields[25]) == ("1420", "400", "4021")  # full; the switch timed out waiting
    assert fields[56] == "1200" + "000123" + fields[12][:2] + "1207101010" + "06412345"
    assert 39 not in fields and 90 not in fields
    peer = NETWORK.decode(NETWORK.encode(reversal))
    assert (peer.mti, peer[39], peer[90]) == ("0420", "68", reversal[90])
    answer = NETWORK.make_response(peer, ResponseCode.APPROVED)
    mti, fields = wire(answer)
    assert (mti, fields[39]) == ("1430", "400")  # ISO 8583:1993: a reversal advice accepted
    back = NETWORK.decode(NETWORK.encode(answer))
    assert back.mti == "0430" and back.response_code == "00"
    assert NETWORK.matcher(None)(back) == NETWORK.matcher(None)(reversal)  # 0400 out, 1430 back: one key


def test_a_partial_reversal_is_function_401_with_the_original_amounts() -> None:
    partial = request("0420", f39="32", f90="0200000123" + "1207101010" + "00000412345" + "0" * 11,
                      f95="000000000400000000000400C00000000C00000000")
    mti, fields = wire(partial)
    assert (mti, fields[24], fields[25], fields[4]) == ("1420", "401", "4004", "000000000400")
    assert fields[30] == "000000001000" + "0" * 12
    back = NETWORK.decode(NETWORK.encode(partial))
    assert (back[4], back[95][:12], back[39]) == ("000000001000", "000000000400", "32")


def test_an_advice_carries_its_reason() -> None:
    advice = request("0120", f38="S00001", f39="00")
    mti, fields = wire(advice)
    assert (mti, fields[24], fields[25], fields[39]) == ("1120", "100", "1003", "000")


@pytest.mark.parametrize(("number", "value"), [(28, "D00000150"), (96, b"\x01" * 8), (56, "ABC"),
                                               (95, "0" * 42)])
def test_a_field_with_no_american_express_counterpart_is_refused(number: int, value: Any) -> None:
    with pytest.raises(EncodeError):
        NETWORK.encode(request(**{f"f{number}": value}))


def test_another_networks_de48_is_refused() -> None:
    foreign = request(f48="R4207" + "0103210")
    foreign.meta.scheme = "mastercard"
    with pytest.raises(EncodeError) as info:
        NETWORK.encode(foreign)
    assert info.value.field == "48"


def test_a_malformed_request_is_answered_904_and_an_answer_is_not() -> None:
    good = NETWORK.encode(request())
    framer = link().framer()
    with pytest.raises(RemoteProtocolError):
        NETWORK.classify(Frame(good[:-3]))
    refusal = NETWORK.refuse(Frame(good[:-3]), RemoteProtocolError("cut"), framer)
    assert refusal.form is RefusalForm.FORMAT_ERROR and refusal.wire is not None
    assert refusal.wire[:2] == len(refusal.wire).to_bytes(2, "big")  # the length counts itself
    mti, fields = codec_for("cp500").decode(refusal.wire[2:])
    assert (mti, fields[39], fields[11]) == ("1110", "904", "000123")
    answer = NETWORK.encode(NETWORK.make_response(request(), "00"))
    assert NETWORK.refuse(Frame(answer[:-2]), RemoteProtocolError("cut"), framer).form is RefusalForm.NONE
    with pytest.raises(RemoteProtocolError):
        NETWORK.decode(codec_for("cp500").encode("0100", {11: "000001"}))  # a 1987 MTI: not American Express's


def test_framing_counts_its_own_length_and_echoes_polls() -> None:
    framer = link().framer()
    body = NETWORK.encode(request())
    data = framer.encode(body)
    assert int.from_bytes(data[:2], "big") == len(body) + 2  # jPOS AmexChannel: len + 2
    for feed in (feed_whole, feed_bytewise):
        [frame] = feed(link().framer(), data)
        assert frame.body == body
    poll = link().framer()
    poll.receive_data(b"\x00\x00")
    frame = poll.next_frame()
    assert frame is not None and frame.keepalive and poll.keepalive_reply(frame) == b"\x00\x00"
    assert not link({"kind": "binary2", "length_includes_prefix": False}).framing.length_includes_prefix
    assert link({"kind": "binary2", "max_frame": 4096}).framing.length_includes_prefix


def test_link_options_and_their_errors() -> None:
    assert link(options={"key_exchange_code": "811"}).netmgmt[NetMgmt.KEY_EXCHANGE] == "811"
    with pytest.raises(ConfigError, match="does not belong to network 'amex'"):
        link(framing={"kind": "unionpay"})
    with pytest.raises(ConfigError, match="3 digits"):
        link(options={"echo_code": "8310"})
    with pytest.raises(ConfigError, match="code_page"):
        link(options={"code_page": "ascii8"})
    with pytest.raises(ConfigError, match="unknown key"):
        link(options={"signon": "801"})


def test_a_cp037_link_translates() -> None:
    cp037 = link(options={"code_page": "cp037"})
    msg = request(f43="SHOP [ONE] ^ LONDON")
    reference = NETWORK.encode(msg)
    data = cp037.framer().encode(reference)
    assert "SHOP [ONE] ^".encode("cp037") in data
    ours = cp037.framer()
    ours.receive_data(data)
    frame = ours.next_frame()
    assert frame is not None and frame.body == reference


digits = st.text("0123456789", min_size=1, max_size=11)


@given(st.sampled_from(["0100", "0110", "0200", "0210", "0120", "0130", "0420", "0430"]), st.text("0123456789",
       min_size=6, max_size=6), st.text("0123456789", min_size=12, max_size=12), digits,
       st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=99),
       st.sampled_from(["021", "012", "051", "071", "812"]), st.booleans())
@settings(max_examples=150)
def test_canonical_to_american_express_and_back(mti: str, stan: str, amount: str, acquirer: str, name: str,
                                                entry: str, pin: bool) -> None:
    msg = request(mti, stan, f4=amount, f32=acquirer, f43=name, f22=entry,
                  f25="59" if entry.startswith("81") else "00")
    if pin and mti[2] in "02":
        msg[52] = b"\x12" * 8
    if mti[2] in "13":
        msg[39] = "00"
        del msg[22], msg[25]
    back = NETWORK.decode(NETWORK.encode(msg))
    assert back.mti == msg.mti
    for number, value in msg.fields.items():
        if number == 22:
            assert str(back[22])[:2] == entry[:2]
        else:
            assert back[number] == value, number


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_any_bytes_classify_or_raise_a_typed_error(data: bytes) -> None:
    with contextlib.suppress(RemoteProtocolError):
        NETWORK.classify(Frame(data))
    framer = link().framer()
    framer.receive_data((len(data) + 2).to_bytes(2, "big") + data)
    try:
        frame = framer.next_frame()
    except MalformedFrame:
        return
    if frame is not None and not frame.keepalive:
        with contextlib.suppress(RemoteProtocolError):
            NETWORK.classify(frame)
