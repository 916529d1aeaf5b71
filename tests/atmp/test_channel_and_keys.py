"""The ATM processor's seams: the ATM channel's rules (the ``atm`` network applies them) and the terminal keys."""

from __future__ import annotations

import pytest

from atmp.channel import check_atm_request
from atmp.keys import TerminalKeys
from hsm.api import PinKey
from schemes.atm import SCHEME as ATM
from switch.model.errors import FieldError
from switch.model.message import Message

WITHDRAWAL = {3: "011000", 4: "000000005000", 7: "1207101010", 11: "000001", 12: "101010", 13: "1207",
              22: "052", 35: "4761739001010010=30121011000012345678", 37: "000000000001", 41: "ATM00001", 49: "840"}


def test_a_complete_withdrawal_passes() -> None:
    check_atm_request(Message("0200", dict(WITHDRAWAL)))
    ATM.validate(Message("0200", dict(WITHDRAWAL)))


@pytest.mark.parametrize(("change", "field", "reason"), [
    ({41: None}, 41, "mandatory for ATM 0200"),
    ({12: None}, 12, "mandatory for ATM 0200"),
    ({3: "001000"}, 3, "transaction type not offered at ATMs"),
    ({22: "051"}, 52, "PIN entered but no PIN block"),
])
def test_the_channel_refuses_what_an_atm_may_not_send(change: dict[int, str | None], field: int, reason: str) -> None:
    fields = {k: v for k, v in {**WITHDRAWAL, **change}.items() if v is not None}
    for validate in (check_atm_request, ATM.validate):
        with pytest.raises(FieldError) as info:
            validate(Message("0200", dict(fields)))
        assert (info.value.field, info.value.reason) == (field, reason)


def test_track_2_is_mandatory() -> None:
    fields = {k: v for k, v in WITHDRAWAL.items() if k != 35}
    with pytest.raises(FieldError) as info:
        check_atm_request(Message("0200", fields))
    assert info.value.field == 35


def test_other_mtis_need_only_the_terminal() -> None:
    check_atm_request(Message("0420", {3: "001000", 41: "ATM00001"}))
    with pytest.raises(FieldError) as caught:
        check_atm_request(Message("0800", {70: "301"}))
    assert caught.value.field == 41


@pytest.mark.parametrize("new_pin", [None, "12AB", "Z" * 16, b"\x00" * 8])
def test_a_pin_change_carries_the_new_pin_block_as_16_hex_characters(new_pin: object) -> None:
    fields = {**WITHDRAWAL, 3: "920000", 52: bytes(8)}
    if new_pin is not None:
        fields[125] = new_pin
    with pytest.raises(FieldError) as caught:
        check_atm_request(Message("0200", fields))
    assert caught.value.field == 125
    check_atm_request(Message("0200", {**WITHDRAWAL, 3: "920000", 52: bytes(8), 125: "0123456789ABCDEF"}))
    with pytest.raises(FieldError) as caught:
        check_atm_request(Message("0200", {**WITHDRAWAL, 3: "700000", 125: "0123456789ABCDEF"}))
    assert caught.value.field == 52


def test_terminal_keys_follow_the_links_current_key() -> None:
    keys = {"atm": PinKey("TPK", "U" + "1" * 32)}
    terminals = TerminalKeys(keys.get)
    request = Message("0200", dict(WITHDRAWAL))
    assert terminals.key_for("atm", request) == PinKey("TPK", "U" + "1" * 32)
    keys["atm"] = PinKey("TPK", "U" + "2" * 32)  # a key exchange on the link
    assert terminals.key_for("atm", request) == PinKey("TPK", "U" + "2" * 32)
    assert terminals.key_for("acquirer", request) is None
