from __future__ import annotations

from switch.exchange.reversal import build_reversal, from_payload, original_data_elements, repeat_mti, to_payload
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
