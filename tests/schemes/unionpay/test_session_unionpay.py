"""UnionPay link options (every bad value a ConfigError naming the key and the reason) and network management:
the requests the node sends, the key a key reset carries (the public samples' PIN and MAC key resets), the events
of UnionPay's own requests and the answers to them."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from Crypto.Cipher import DES3

from hsm.keys import ClearKey, KeyCodec
from hsm.lmk import Lmk
from hsm.software import SoftwareHsm
from schemes.unionpay import SCHEME
from schemes.unionpay.framing import UnionPayFramer, UnionPayFraming
from schemes.unionpay.session import DEFAULT_CODES, UnionPayLink, UnionPaySession
from switch.config import parse_config
from switch.contracts.network import KeyChange, NetMgmt, NetworkEvent
from switch.model.codes import ResponseCode
from switch.model.errors import ConfigError
from switch.model.message import Message
from switch.model.toml import TomlTable

from . import vectors as v

NOW = datetime(2026, 5, 17, 9, 46, 53, tzinfo=UTC)


def options(framing: str | None = None, opts: str | None = None) -> Any:
    f = TomlTable(tomllib.loads(framing), "node.toml", "connectors[0].framing") if framing is not None else None
    o = TomlTable(tomllib.loads(opts), "node.toml", "connectors[0].options") if opts is not None else None
    return SCHEME.link_options(f, o)


def session(opts: str | None = None) -> UnionPaySession:
    link = options(None, opts)
    made = SCHEME.session(link)
    assert isinstance(made, UnionPaySession)
    return made


def stans() -> Any:
    numbers = iter(range(1, 100))
    return lambda: f"{next(numbers):06d}"


# -- link options ------------------------------------------------------------------------------------------
def test_defaults() -> None:
    link = options()
    assert isinstance(link, UnionPayLink) and link == UnionPayLink()
    assert link.framing == UnionPayFraming(length_prefix=True, keepalive_echo=False, batch=1)
    assert dict(link.netmgmt) == {NetMgmt.SIGN_ON: "001", NetMgmt.SIGN_OFF: "002", NetMgmt.ECHO: "301",
                                  NetMgmt.KEY_EXCHANGE: "101", NetMgmt.CUTOVER: "201"}
    assert (link.request_mti, link.institution, link.key_scheme, link.nk_check_value_bytes, link.rekey_key) == (
        "0820", "", "X", 0, "pin")
    assert link.framing_kind == "unionpay" and isinstance(link.framer(), UnionPayFramer)


def test_every_option_read() -> None:
    link = options(
        'kind = "unionpay"\nlength_prefix = false\nsource_id = "48020000"\ndestination_id = "00010344"\n'
        'test = true\nbatch = 3\ntransaction_info = "10000000"\nuser_info = 2\nmax_frame = 4000\n'
        "keepalive_echo = true\n",
        'signon_code = "061"\nsignoff_code = "062"\necho_code = "270"\nkey_exchange_code = "161"\n'
        'cutover_code = "202"\nrequest_mti = "0800"\ninstitution = "48020000"\nkey_scheme = "U"\n'
        'nk_check_value_bytes = 3\nrekey_key = "mac"\n')
    assert link == UnionPayLink(
        UnionPayFraming(length_prefix=False, source_id="48020000", destination_id="00010344", test=True, batch=3,
                        transaction_info="10000000", user_info=2, max_frame=4000, keepalive_echo=True),
        {NetMgmt.SIGN_ON: "061", NetMgmt.SIGN_OFF: "062", NetMgmt.ECHO: "270", NetMgmt.KEY_EXCHANGE: "161",
         NetMgmt.CUTOVER: "202"},
        "0800", "48020000", "U", 3, "mac")


BAD_OPTIONS = [
    ('echo_code = "31"', "echo_code", "3 digits"),
    ('signoff_code = "001"', "signoff_code", "already the signon_code"),
    ('request_mti = "1804"', "request_mti", "0800 or 0820"),
    ('institution = "ABC"', "institution", "1 to 11 digits"),
    ('institution = "123456789012"', "institution", "1 to 11 digits"),
    ('key_scheme = "T"', "key_scheme", "X9.17"),
    ("nk_check_value_bytes = 2", "nk_check_value_bytes", "3 to 8"),
    ("nk_check_value_bytes = 9", "nk_check_value_bytes", "at most 8"),
    ('rekey_key = "zmk"', "rekey_key", "pin or mac"),
    ("echo_cod = 1", "echo_cod", "did you mean 'echo_code'"),
    ("institution = 48020000", "institution", "expected a string"),
]


@pytest.mark.parametrize(("text", "key", "reason"), BAD_OPTIONS, ids=[b[1] + "-" + str(i) for i, b in
                                                                       enumerate(BAD_OPTIONS)])
def test_bad_options_name_the_key_and_the_reason(text: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        options(None, text)
    assert info.value.key == f"connectors[0].options.{key}"
    assert reason in info.value.reason
    assert info.value.file == "node.toml"


BAD_FRAMING = [
    ('kind = "binary2"', "kind", "does not belong to network 'unionpay'"),
    ('kind = "unionpay"\nbatch = 256', "batch", "at most 255"),
    ('kind = "unionpay"\ntransaction_info = "123"', "transaction_info", "8 printable ASCII"),
    ('kind = "unionpay"\nmax_frame = 20000', "max_frame", "at most 10003"),
    ('kind = "unionpay"\nsource_id = "00010344000001"', "source_id", "at most 11"),
    ('kind = "unionpay"\nlength_prefix = false\nlength_includes_prefix = true', "length_includes_prefix",
     "needs length_prefix"),
    ('kind = "unionpay"\ntpdu = true', "tpdu", "unknown key"),
]


@pytest.mark.parametrize(("text", "key", "reason"), BAD_FRAMING, ids=[b[1] for b in BAD_FRAMING])
def test_bad_framing_names_the_key_and_the_reason(text: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        options(text)
    assert info.value.key == f"connectors[0].framing.{key}"
    assert reason in info.value.reason


def test_a_node_toml_connector_with_unionpay_options(tmp_path: Path) -> None:
    text = ('[node]\nname = "x"\n[[connectors]]\nname = "cups"\nhosts = ["127.0.0.1:9"]\nscheme = "unionpay"\n'
            'framing = { kind = "unionpay", source_id = "48020000", destination_id = "00010000" }\n'
            'options = { institution = "48020000", key_exchange_code = "1o1" }\n')
    with pytest.raises(ConfigError) as info:
        parse_config(text, tmp_path / "node.toml")
    assert info.value.key == "connectors[0].options.key_exchange_code"
    config = parse_config(text.replace('"1o1"', '"101"'), tmp_path / "node.toml")
    (connector,) = config.connectors
    assert isinstance(connector.options, UnionPayLink) and connector.options.institution == "48020000"


# -- requests the node sends -------------------------------------------------------------------------------
def test_sign_on_off_echo_and_key_exchange_requests() -> None:
    s = session('institution = "48020000"')
    stan = stans()
    (signon,) = s.requests(NetMgmt.SIGN_ON, stan, NOW)
    assert (signon.mti, signon.fields) == ("0820", {7: "0517094653", 11: "000001", 33: "48020000", 70: "001"})
    assert s.requests(NetMgmt.SIGN_OFF, stan, NOW)[0].fields[70] == "002"
    assert s.requests(NetMgmt.ECHO, stan, NOW)[0].fields[70] == "301"
    (rekey,) = s.requests(NetMgmt.KEY_EXCHANGE, stan, NOW)
    assert (rekey[70], rekey[53]) == ("101", "1600000000000000")
    assert session('rekey_key = "mac"').requests(NetMgmt.KEY_EXCHANGE, stan, NOW)[0][53] == "2600000000000000"
    assert s.requests(NetMgmt.CUTOVER, stan, NOW) == []  # UnionPay notifies its members; a member starts none
    assert session('request_mti = "0800"').requests(NetMgmt.ECHO, stan, NOW)[0].mti == "0800"
    # What the node sends encodes on the wire, and 00 accepts it.
    wire = SCHEME.encode(signon)
    assert wire[:4] == b"0820"
    assert s.accepted(NetMgmt.SIGN_ON, SCHEME.make_response(signon, "00"))
    assert not s.accepted(NetMgmt.SIGN_ON, SCHEME.make_response(signon, "96"))


def test_the_public_echo_decodes_to_an_echo_event_and_is_answered() -> None:
    s = session('institution = "44190440"')
    echo = SCHEME.decode(v.EASY_ECHO_0820[46:])
    event = s.inbound(echo)
    assert event == NetworkEvent(NetMgmt.ECHO)
    answer = s.answer(echo, event, ResponseCode.APPROVED)
    assert answer.mti == "0830"
    assert {n: answer[n] for n in (7, 11, 33, 39, 70, 100)} == {
        7: "0515111631", 11: "106753", 33: "44190440", 39: "00", 70: "301", 100: "44190440"}


def test_an_unknown_network_management_code_is_answered_40_and_does_nothing() -> None:
    s = session()
    request = Message("0820", {7: "0515111631", 11: "000009", 70: "999"})
    event = s.inbound(request)
    assert event.kind is None
    assert s.answer(request, event, ResponseCode.APPROVED)[39] == "40"


def test_cutover_notification_carries_the_new_business_date() -> None:
    s = session()
    request = Message("0820", {7: "0517235959", 11: "000010", 15: "0518", 70: "201"})
    assert s.inbound(request) == NetworkEvent(NetMgmt.CUTOVER, business_date="0518")


# -- key resets ------------------------------------------------------------------------------------------
def test_the_public_pin_key_reset() -> None:
    reset = SCHEME.decode(v.EASY_PIN_RESET_0800[46:])
    event = session().inbound(reset)
    assert event == NetworkEvent(NetMgmt.KEY_EXCHANGE, key=KeyChange("ZPK", "X4393590FF157B782DDBE18332531120C", ""))
    assert "4393" not in repr(event)


def test_the_public_mac_key_reset() -> None:
    reset = SCHEME.decode(v.EASY_MAC_RESET_0800[46:])
    assert session().inbound(reset).key == KeyChange("ZAK", "0FE5B03EC604CB6B", "")


def test_the_key_is_x917_under_the_zone_master_key() -> None:
    """The public implementation decrypts the NK bytes with plain triple DES under its master key: imported as
    ``X`` (ANSI X9.17) under that key, the HSM finds the key the public code finds."""
    lmk = Lmk.thales_test()
    zmk = KeyCodec(lmk).to_lmk("000", ClearKey(bytes.fromhex(v.EASY_MMK)), "U")
    change = session().inbound(SCHEME.decode(v.EASY_PIN_RESET_0800[46:])).key
    assert change is not None
    imported = SoftwareHsm(lmk).import_key("001", zmk, change.under_zmk)
    clear = DES3.new(bytes.fromhex(v.EASY_MMK), DES3.MODE_ECB).decrypt(bytes.fromhex(change.under_zmk[1:]))
    assert imported.kcv == ClearKey(clear).check_value()


def test_a_check_value_after_the_key_when_the_link_says_so() -> None:
    s = session("nk_check_value_bytes = 3")
    reset = Message("0800", {11: "000001", 48: "NK" + "11" * 16 + "ABCDEF", 53: "1600000000000000", 70: "101"})
    assert s.inbound(reset).key == KeyChange("ZPK", "X" + "11" * 16, "ABCDEF")
    assert session('nk_check_value_bytes = 3\nkey_scheme = "U"').key_change(reset) == KeyChange(
        "ZPK", "U" + "11" * 16, "ABCDEF")
    # Without the option, 19 bytes are not a double-length key: no key.
    assert session().key_change(reset) is None


@pytest.mark.parametrize(
    "fields",
    [
        {53: "1600000000000000"},  # no DE 48
        {53: "1600000000000000", 48: "AAtext"},  # not the NK usage
        {53: "1600000000000000", 48: "NK" + "11" * 15},  # 15 bytes
        {53: "3600000000000000", 48: "NK" + "11" * 16},  # key type 3
        {53: "1900000000000000", 48: "NK" + "11" * 16},  # method 9
        {53: "2000000000000000"},  # single length, no DE 96
        {53: "2000000000000000", 96: "0FE5B03EC604CB6B"},  # DE 96 as text
        {53: "20000000"},  # DE 53 too short
        {},
    ],
)
def test_a_key_reset_without_a_readable_key_carries_none(fields: dict[int, str | bytes]) -> None:
    msg = Message("0800", {11: "000001", 70: "101", **fields})
    event = session().inbound(msg)
    assert event == NetworkEvent(NetMgmt.KEY_EXCHANGE, key=None)


def test_default_codes_are_distinct() -> None:
    assert len(set(DEFAULT_CODES.values())) == len(DEFAULT_CODES)
