from __future__ import annotations

from switch.exchange.reversal import (
    build_reversal,
    build_stand_in_advice,
    from_payload,
    original_data_elements,
    original_key,
    repeat_mti,
    to_payload,
)
from switch.model.message import Message


def original() -> Message:
    return Message("0200", {
        3: "010000", 4: "000000010000", 7: "1122101010", 11: "004711", 12: "101010", 13: "1122",
        32: "123456", 35: "4761739001010119=2512201", 37: "532610004711", 41: "ATM00042", 49: "840",
        52: bytes(8), 55: b"\x9f\x26\x01\x00",
    })


def test_reversal_carries_original_data_elements_and_no_card_security_data() -> None:
    rev = build_reversal(original(), "68", transmission_time="1122101515")
    assert rev.mti == "0400"
    assert rev[2] == "4761739001010119"  # PAN taken from track 2; track 2 itself is not carried
    assert 35 not in rev and 52 not in rev and 55 not in rev
    assert rev[39] == "68"
    assert rev[7] == "1122101515"
    assert rev[90] == "0200" + "004711" + "1122101010" + "00000123456" + "0" * 11
    assert len(original_data_elements(original())) == 42


def test_repeat_mti() -> None:
    assert repeat_mti("0400") == "0401"
    assert repeat_mti("0420") == "0421"
    assert repeat_mti("0401") == "0401"


def test_payload_round_trip() -> None:
    rev = build_reversal(original(), "68")
    rev[64] = b"\x01" * 8
    back = from_payload(to_payload(rev))
    assert back.mti == "0400"
    assert back.fields == {k: v for k, v in rev.fields.items() if k != 64}


def test_payload_never_holds_sensitive_authentication_data() -> None:
    advice = original()
    advice.mti = "0420"
    advice[45] = "B4761739001010119^TEST/CARD^2512"
    payload = to_payload(advice)
    assert b"=2512201" not in payload  # track 2
    assert b"TEST/CARD" not in payload  # track 1
    back = from_payload(payload)
    assert not ({35, 45, 52, 55} & back.fields.keys())
    assert back[2] == "4761739001010119"  # the PAN is kept (the payload is sealed before it is stored)


def test_original_key_ties_an_advice_its_reversal_and_their_repeats_together() -> None:
    original = Message("0200", {2: "4761739001010119", 3: "000000", 4: "000000001000", 7: "1207101010",
                                11: "000123", 32: "00000012345", 41: "TERM0001", 49: "840"})
    advice = build_stand_in_advice(original, "S00001", repeat=False)
    repeat = build_stand_in_advice(original, "S00001", repeat=True)
    rev = build_reversal(original, "68", transmission_time="1207101111")
    key = original_key(advice)
    assert key == "0200000123120710101012345"
    assert original_key(repeat) == original_key(rev) == key
    other = original.copy()
    other.fields[11] = "000124"
    assert original_key(build_reversal(other, "68")) != key
    # An acquirer's own advice without field 90 is named by itself; its repeat and its reversal find it.
    own = Message("0220", {11: "000555", 7: "1207120000", 32: "12345"})
    own_repeat = own.copy()
    own_repeat.mti = "0221"
    assert original_key(own) == original_key(own_repeat) == original_key(build_reversal(own, "22")) \
        == "0220000555120712000012345"
    assert original_key(Message("0220", {7: "1207120000"})) is None
