"""The Mastercard network behind the contract: classification, responses (DE 63 and DE 48 echoed), what a request
from another network gets on its way to Mastercard, link options and code pages, network management (group sign-on,
echo, key exchange) and malformed input."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from schemes.mastercard import NETWORK
from schemes.mastercard.fields import parse_de48, parse_de61
from schemes.mastercard.link import MastercardLink, codec_for
from schemes.mastercard.session import MastercardSession
from switch.contracts.network import FrameKind, KeyChange, NetMgmt, Network, RefusalForm
from switch.contracts.registry import network
from switch.model.codes import ResponseCode
from switch.model.errors import ConfigError, EncodeError, RemoteProtocolError
from switch.model.message import Message
from switch.model.toml import TomlTable
from switch.wire.framing import Frame


def request(stan: str = "000123", **extra: Any) -> Message:
    fields: dict[int, Any] = {2: "5413330000000019", 3: "000000", 4: "000000001000", 7: "1207101010", 11: stan,
                              15: "1207", 18: "5411", 22: "051", 32: "412345", 37: "123456789012", 41: "TERM0001",
                              42: "MERCHANT0000001", 48: "R9203123" + "4207" + "0103210", 49: "840",
                              61: "0000010000300840", 63: "MCCABC123"}
    fields.update({int(k[1:]): v for k, v in extra.items()})
    msg = Message("0100", fields)
    msg.meta.scheme = "mastercard"
    return msg


def link(framing: dict[str, Any] | None = None, options: dict[str, Any] | None = None) -> MastercardLink:
    found = NETWORK.link_options(None if framing is None else TomlTable(framing, "node.toml", "connectors[0].framing"),
                                 None if options is None else TomlTable(options, "node.toml", "connectors[0].options"))
    assert isinstance(found, MastercardLink)
    return found


def session(**options: Any) -> MastercardSession:
    found = NETWORK.session(link(options=options))
    assert isinstance(found, MastercardSession)
    return found


def test_registered_by_entry_point() -> None:
    assert network("mastercard") is NETWORK
    assert isinstance(NETWORK, Network)


def test_request_and_response_on_the_wire() -> None:
    wire = NETWORK.encode(request())
    assert wire[:4] == bytes.fromhex("F0F1F0F0")  # "0100" in EBCDIC
    inbound = NETWORK.classify(Frame(wire))
    assert inbound.kind is FrameKind.REQUEST and inbound.message is not None
    answer = NETWORK.make_response(inbound.message, ResponseCode.APPROVED)
    answer[38] = "A1B2C3"
    back = NETWORK.classify(Frame(NETWORK.encode(answer)))
    assert back.kind is FrameKind.RESPONSE and back.message is not None
    assert back.message.response_code == "00" and back.message[63] == "MCCABC123"
    assert NETWORK.matcher(None)(back.message) == NETWORK.matcher(None)(inbound.message)


def test_response_echoes_network_data_and_de48_without_secrets() -> None:
    answer = NETWORK.make_response(request(), "51")
    assert answer.mti == "0110" and answer[39] == "51"
    assert answer[63] == "MCCABC123" and answer[15] == "1207"
    assert answer[48] == "R42070103210"  # the CVC 2 (sub-element 92) never comes back
    assert 61 not in answer and 22 not in answer


def test_mastercard_codes() -> None:
    def decoded(code: str) -> str | None:
        msg = NETWORK.decode(codec_for("cp500").encode("0110", {11: "000001", 39: code}))
        return msg.response_code

    assert decoded("70") == "01" and decoded("88") == "63" and decoded("89") == "55" and decoded("85") == "05"
    before = NETWORK.codes.unknown["Q9"]
    assert decoded("Q9") == "05"
    assert NETWORK.codes.unknown["Q9"] == before + 1


def test_a_request_from_an_atm_gets_tcc_and_pos_data() -> None:
    atm = Message("0200", {2: "5413330000000019", 3: "010000", 4: "000000002000", 7: "1207101010", 11: "000001",
                           18: "6011", 22: "021", 41: "ATM00001", 49: "840"})
    atm.meta.scheme = "atm"
    sent = NETWORK.decode(NETWORK.encode(atm))
    assert parse_de48(str(sent[48])).tcc == "Z"
    pos = parse_de61(str(sent[61]))
    assert pos.sub(1) == "1" and pos.sub(10) == "1" and pos.country == "840"  # unattended, CAT level 1
    purchase = Message("0200", {2: "5413330000000019", 3: "000000", 4: "000000001000", 11: "000002", 18: "5999",
                                19: "156", 22: "812", 25: "59", 49: "156"})
    sent = NETWORK.decode(NETWORK.encode(purchase))
    assert sent[48] == "R"
    pos = parse_de61(str(sent[61]))
    assert (pos.sub(4), pos.sub(5), pos.country) == ("1", "1", "156")  # e-commerce: cardholder and card not present


def test_another_networks_de48_that_is_not_tcc_and_subelements_is_refused() -> None:
    foreign = request(f48="NK" + "AB" * 8)
    foreign.meta.scheme = "unionpay"
    with pytest.raises(EncodeError) as info:
        NETWORK.encode(foreign)
    assert info.value.field == "48"
    fine = request()
    fine.meta.scheme = "generic"
    assert NETWORK.decode(NETWORK.encode(fine))[48] == fine[48]


def test_partial_reversal_de95_in_mastercard_layout() -> None:
    reversal = Message("0400", {2: "5413330000000019", 3: "010000", 4: "000000005000", 11: "000009", 18: "6011",
                                90: "0200000001" + "1207101010" + "0" * 22,
                                95: "000000002000000000002000C00000000C00000000"})
    sent = NETWORK.decode(NETWORK.encode(reversal))
    assert sent[95] == "000000002000" * 2 + "0" * 18
    assert sent[90] == reversal[90]


def test_malformed_request_is_answered_format_error_and_an_answer_is_not() -> None:
    good = NETWORK.encode(request())
    broken = good[:-3]  # DE 63 cut short
    with pytest.raises(RemoteProtocolError):
        NETWORK.classify(Frame(broken))
    framer = link().framer()
    refusal = NETWORK.refuse(Frame(broken), RemoteProtocolError("cut"), framer)
    assert refusal.form is RefusalForm.FORMAT_ERROR and refusal.code == "30"
    assert refusal.wire is not None
    framer.receive_data(refusal.wire)
    answered = framer.next_frame()
    assert answered is not None
    msg = NETWORK.decode(answered.body)
    assert (msg.mti, msg.stan, msg.response_code) == ("0110", "000123", "30")
    response = NETWORK.encode(NETWORK.make_response(request(), "00"))
    assert NETWORK.refuse(Frame(response[:-2]), RemoteProtocolError("cut"), framer).form is RefusalForm.NONE


def test_link_options_and_their_errors() -> None:
    default = link()
    assert default.framing_kind == "binary2" and default.netmgmt[NetMgmt.ECHO] == "270"
    assert default.recoder is None
    with pytest.raises(ConfigError, match="does not belong to network 'mastercard'"):
        link(framing={"kind": "visa"})
    with pytest.raises(ConfigError, match=r"options\.echo_code: expected 3 digits"):
        link(options={"echo_code": "27"})
    with pytest.raises(ConfigError, match="already the signon_code"):
        link(options={"group_signon_code": "001"})
    with pytest.raises(ConfigError, match="code_page"):
        link(options={"code_page": "utf-8"})
    with pytest.raises(ConfigError, match="unknown key"):
        link(options={"codepage": "cp037"})
    with pytest.raises(ConfigError, match="key_subelement"):
        link(options={"key_subelement": "1"})


def test_a_cp037_link_translates_every_body() -> None:
    cp037 = link(options={"code_page": "cp037"})
    assert cp037.recoder is not None
    msg = request(f43="SHOP! [MAIN] | ROAD".ljust(40))
    reference = NETWORK.encode(msg)
    peer = link(options={"code_page": "cp037"}).framer()
    wire = peer.encode(reference)
    assert "SHOP! [MAIN] | ROAD".encode("cp037") in wire and "SHOP! [MAIN]".encode("cp500") not in wire
    ours = cp037.framer()
    ours.receive_data(wire)
    frame = ours.next_frame()
    assert frame is not None and frame.body == reference
    assert NETWORK.decode(frame.body)[43] == msg[43]


def test_group_signon_by_institution_and_plain_signon() -> None:
    group = session(institutions=["12345", "67890"])
    requests = group.requests(NetMgmt.SIGN_ON, lambda: "000001", datetime(2026, 12, 7, tzinfo=UTC))
    assert [(r.mti, r[70], r[2]) for r in requests] == [("0800", "061", "12345"), ("0800", "061", "67890")]
    off = group.requests(NetMgmt.SIGN_OFF, lambda: "000002", datetime(2026, 12, 7, tzinfo=UTC))
    assert [r[70] for r in off] == ["062", "062"]
    plain = session().requests(NetMgmt.SIGN_ON, lambda: "000003", datetime(2026, 12, 7, tzinfo=UTC))
    assert [(r[70], 2 in r) for r in plain] == [("001", False)]
    assert session().requests(NetMgmt.ECHO, lambda: "000004", datetime(2026, 12, 7, tzinfo=UTC))[0][70] == "270"


def test_group_signon_from_the_network_for_an_institution_not_served_is_15() -> None:
    group = session(institutions=["12345"])
    ours = Message("0800", {7: "1207101010", 11: "000010", 2: "12345", 70: "061"})
    event = group.inbound(ours)
    assert event.kind is NetMgmt.SIGN_ON and event.institution == "12345"
    assert group.answer(ours, event, ResponseCode.APPROVED)[39] == "00"
    theirs = Message("0800", {7: "1207101010", 11: "000011", 2: "99999", 70: "061"})
    assert group.answer(theirs, group.inbound(theirs), ResponseCode.APPROVED)[39] == "15"


def test_key_exchange_in_de48_subelement_11() -> None:
    mc = session(mac_key_exchange_code="162")
    [req] = mc.key_requests("pin", lambda: "000020", datetime(2026, 12, 7, tzinfo=UTC))
    assert req[70] == "161"
    answer = NETWORK.make_response(req, ResponseCode.APPROVED)
    mc.put_key(answer, KeyChange("ZPK", "U" + "1" * 32, "ABCDEF"))
    on_wire = NETWORK.decode(NETWORK.encode(answer))
    assert mc.key_change(on_wire) == KeyChange("ZPK", "U" + "1" * 32, "ABCDEF")
    [mac] = mc.key_requests("mac", lambda: "000021", datetime(2026, 12, 7, tzinfo=UTC))
    mac_answer = NETWORK.make_response(mac, ResponseCode.APPROVED)
    mc.put_key(mac_answer, KeyChange("ZAK", "U" + "2" * 32, "123456"))
    assert mc.key_change(mac_answer) == KeyChange("ZAK", "U" + "2" * 32, "123456")
    # The network's own key change, as a request.
    theirs = Message("0800", {7: "1207101010", 11: "000022", 70: "161"})
    mc.put_key(theirs, KeyChange("ZPK", "U" + "3" * 32, "654321"))
    event = mc.inbound(theirs)
    assert event.kind is NetMgmt.KEY_EXCHANGE and event.key == KeyChange("ZPK", "U" + "3" * 32, "654321")
    assert "3" * 32 not in repr(NETWORK.decode(NETWORK.encode(theirs)))  # the key is hidden in logs
