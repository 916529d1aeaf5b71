"""ISO 8583:1987 network management and response codes, as the generic network speaks them (schemes.iso87):
the link's ``options``, group sign-on, key exchange in DE 125, cutover in DE 15, frame classification, and DE 39
mapped on responses only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from schemes.generic import SCHEME
from schemes.iso87 import Iso87Link
from switch.contracts.network import FrameKind, KeyChange, NetMgmt
from switch.model.codes import ResponseCode
from switch.model.errors import ConfigError
from switch.model.message import Message
from switch.model.toml import TomlTable
from switch.wire.framing import Frame

NOW = datetime(2026, 12, 7, 10, 11, 12, tzinfo=UTC)


def _link(options: dict[str, Any] | None) -> Iso87Link:
    table = None if options is None else TomlTable(options, "node.toml", "connectors[0].options")
    link = SCHEME.link_options(None, table)
    assert isinstance(link, Iso87Link)
    return link


def _stans() -> Any:
    counter = iter(range(1, 100))
    return lambda: f"{next(counter):06d}"


def test_without_options_sign_on_sign_off_and_echo_use_the_iso_codes_and_nothing_else() -> None:
    session = SCHEME.session(_link(None))
    assert [m[70] for m in session.requests(NetMgmt.SIGN_ON, _stans(), NOW)] == ["001"]
    assert [m[70] for m in session.requests(NetMgmt.SIGN_OFF, _stans(), NOW)] == ["002"]
    (echo,) = session.requests(NetMgmt.ECHO, _stans(), NOW)
    assert (echo.mti, echo[7], echo[11], echo[70]) == ("0800", "1207101112", "000001", "301")
    # Key exchange and cutover have no ISO code: off until a link's options name them.
    assert session.requests(NetMgmt.KEY_EXCHANGE, _stans(), NOW) == []
    assert session.requests(NetMgmt.CUTOVER, _stans(), NOW) == []
    for code in ("161", "201", "999"):
        event = session.inbound(Message("0800", {11: "000001", 70: code}))
        assert event.kind is None  # answered 00 like any other 0800, nothing acted on


def test_options_name_the_codes() -> None:
    link = _link({"signon_code": "081", "signoff_code": "082", "echo_code": "831", "key_exchange_code": "161",
                  "cutover_code": "201"})
    session = SCHEME.session(link)
    assert [m[70] for m in session.requests(NetMgmt.SIGN_ON, _stans(), NOW)] == ["081"]
    assert session.inbound(Message("0800", {70: "831"})).kind is NetMgmt.ECHO
    assert session.inbound(Message("0800", {70: "001"})).kind is None  # the ISO default is replaced


@pytest.mark.parametrize(("options", "key", "reason"), [
    ({"echo_code": "31"}, "echo_code", "expected 3 digits"),
    ({"signon_code": "001", "cutover_code": "001"}, "cutover_code", "001 is already the signon_code"),
    ({"institutions": ["12a"]}, "institutions[0]", "1 to 11 digits"),
    ({"institution_field": 1}, "institution_field", ""),
    ({"signon": "001"}, "signon", ""),
])
def test_bad_options_name_the_key(options: dict[str, Any], key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        _link(options)
    assert info.value.key == f"connectors[0].options.{key}"
    assert reason in info.value.reason


def test_a_group_sign_on_is_one_request_per_institution_and_an_echo_is_one() -> None:
    session = SCHEME.session(_link({"institutions": ["111111", "222222"]}))
    signon = session.requests(NetMgmt.SIGN_ON, _stans(), NOW)
    assert [(m[11], m[33], m[70]) for m in signon] == [("000001", "111111", "001"), ("000002", "222222", "001")]
    assert [m[33] for m in session.requests(NetMgmt.SIGN_OFF, _stans(), NOW)] == ["111111", "222222"]
    (echo,) = session.requests(NetMgmt.ECHO, _stans(), NOW)
    assert 33 not in echo.fields
    # A peer's group sign-on says which institution it is for.
    request = Message("0800", {11: "000009", 33: "222222", 70: "001"})
    event = session.inbound(request)
    assert (event.kind, event.institution) == (NetMgmt.SIGN_ON, "222222")
    assert session.answer(request, event, ResponseCode.APPROVED)[39] == "00"
    stranger = Message("0800", {11: "000010", 33: "333333", 70: "001"})
    assert session.answer(stranger, session.inbound(stranger), ResponseCode.APPROVED)[39] == "15"
    elsewhere = SCHEME.session(_link({"institutions": ["111111"], "institution_field": 32}))
    assert elsewhere.requests(NetMgmt.SIGN_ON, _stans(), NOW)[0][32] == "111111"


def test_a_key_exchange_carries_the_key_and_its_check_value_in_de_125_which_is_never_shown() -> None:
    session = SCHEME.session(_link({"key_exchange_code": "161"}))
    key = "U" + "0123456789ABCDEF" * 2
    request = Message("0800", {11: "000009", 70: "161", 125: key + "A1B2C3"})
    event = session.inbound(request)
    assert event.kind is NetMgmt.KEY_EXCHANGE and event.key == KeyChange("ZPK", key, "A1B2C3")
    # The answer to the node's own key exchange carries it the same way.
    answer = SCHEME.make_response(request, "00")
    answer[125] = key + "A1B2C3"
    assert session.key_change(answer) == event.key
    assert session.inbound(Message("0800", {70: "161"})).key is None  # no key: refused (96) by the node
    assert key not in SCHEME.masking.field(125, key + "A1B2C3")
    assert (request.mti, [m[70] for m in session.requests(NetMgmt.KEY_EXCHANGE, _stans(), NOW)]) == (
        "0800", ["161"])


def test_a_cutover_carries_the_new_business_date_in_de_15() -> None:
    session = SCHEME.session(_link({"cutover_code": "201"}))
    event = session.inbound(Message("0800", {11: "000009", 15: "1208", 70: "201"}))
    assert (event.kind, event.business_date) == (NetMgmt.CUTOVER, "1208")


def test_frames_are_classified_without_the_engine_knowing_iso_8583() -> None:
    assert SCHEME.classify(Frame(b"", keepalive=True)).kind is FrameKind.KEEPALIVE
    assert SCHEME.classify(Frame(b"\x00", keepalive=True)).kind is FrameKind.SESSION
    request = Message("0800", {7: "1207101010", 11: "000001", 70: "301"})
    inbound = SCHEME.classify(Frame(SCHEME.encode(request)))
    assert inbound.kind is FrameKind.REQUEST and inbound.message is not None and inbound.message[70] == "301"
    answer = SCHEME.classify(Frame(SCHEME.encode(SCHEME.make_response(request, "00"))))
    assert answer.kind is FrameKind.RESPONSE


def test_de_39_is_mapped_on_responses_and_left_alone_on_requests() -> None:
    response = SCHEME.decode(SCHEME.codec.encode("0210", {3: "000000", 11: "000001", 39: "Q7"}))
    assert response[39] == "05"  # a code the table does not know: its documented default
    reversal = SCHEME.decode(SCHEME.codec.encode("0420", {3: "000000", 4: "000000001000", 11: "000001",
                                                         39: "Q7"}))
    assert reversal[39] == "Q7"  # a reversal's reason is the acquirer's, passed on as it came


def test_on_a_network_with_its_own_codes_advices_and_reversals_are_translated_where_the_table_knows() -> None:
    from tests.switch.contracts.testnet import NETWORK  # ISO 8583:1993 action codes

    advice = Message("0220", {3: "000000", 4: "000000001000", 11: "000001", 38: "S12345", 39: "00"})
    assert NETWORK.from_canonical(advice) == ("1220", {**advice.fields, 39: "000"})  # a stand-in advice
    reversal = Message("0420", {3: "000000", 4: "000000001000", 11: "000002", 39: "Q7"})
    assert NETWORK.from_canonical(reversal)[1][39] == "Q7"  # a reason the table does not know: as it came
    decoded = NETWORK.decode(NETWORK.codec.encode("1220", {3: "000000", 4: "000000001000", 11: "000003",
                                                          39: "116"}))
    assert decoded[39] == "51"


@pytest.mark.parametrize("mti", ["0000", "0500", "0900", "1200", "9200", "0300", "0260"])
def test_an_mti_the_network_does_not_define_is_not_salvaged_for_an_answer(mti: str) -> None:
    """Issue 11 item 9: salvage checked only the message function, so these were answered 30."""
    body = SCHEME.encode(Message("0200", {3: "000000", 4: "000000001000", 11: "000001", 41: "TERM0001"}))
    assert not SCHEME.defines(mti)
    assert SCHEME.salvage(mti.encode() + body[4:]) is None
    assert SCHEME.salvage(b"0200" + body[4:-2]) is not None  # a defined request cut short still is


def test_the_atm_network_defines_only_its_own_classes() -> None:
    from schemes.atm import SCHEME as ATM

    assert ATM.defines("0200") and ATM.defines("0420") and ATM.defines("0800") and ATM.defines("0500")
    assert not ATM.defines("0100") and not ATM.defines("0600")


def test_the_generic_network_carries_administrative_advices() -> None:
    assert SCHEME.defines("0620") and SCHEME.defines("0630")
