"""Response codes through a network's table: every core code both ways, unknown codes to the documented default
(never an approval) and counted."""

from __future__ import annotations

import pytest

from switch.contracts.codes import ISO87_CODES, ISO93_ACTION_CODES, CodeTable
from switch.model.codes import APPROVAL_CODES, ResponseCode


def test_iso87_maps_every_core_code_to_itself() -> None:
    assert ISO87_CODES.identity
    for code in ResponseCode:
        assert ISO87_CODES.core(code.value) == code.value
        assert ISO87_CODES.wire(code.value) == code.value


@pytest.mark.parametrize(("wire", "core"), [
    ("000", "00"), ("100", "05"), ("101", "54"), ("106", "75"), ("116", "51"), ("117", "55"), ("121", "61"),
    ("208", "41"), ("209", "43"), ("904", "30"), ("907", "91"), ("909", "96"), ("913", "94"),
])
def test_iso93_action_codes(wire: str, core: str) -> None:
    assert ISO93_ACTION_CODES.core(wire) == core
    assert ISO93_ACTION_CODES.wire(core) == wire


def test_every_core_code_has_an_action_code_and_approvals_stay_approvals() -> None:
    for code in ResponseCode:
        wire = ISO93_ACTION_CODES.wire(code.value)
        assert len(wire) == 3 and wire.isdigit()
        assert (wire[0] == "0") == (code.value in APPROVAL_CODES), code


@pytest.mark.parametrize("table", [ISO87_CODES, ISO93_ACTION_CODES], ids=["iso87", "iso93"])
@pytest.mark.parametrize("wire", ["N7", "77", "999", "", "\x00\x01", "0000000000"])
def test_an_unknown_code_maps_to_a_decline_and_is_counted(table: CodeTable, wire: str) -> None:
    before = table.unknown[wire[:4]]
    core = table.core(wire)
    assert core == ResponseCode.DO_NOT_HONOUR and core not in APPROVAL_CODES
    assert table.unknown[wire[:4]] == before + 1


def test_a_core_code_missing_from_a_table_goes_out_as_its_default() -> None:
    table = CodeTable("tiny", {"A": ResponseCode.APPROVED, "D": ResponseCode.DO_NOT_HONOUR},
                      unknown_default=ResponseCode.DO_NOT_HONOUR)
    assert not table.identity
    assert (table.wire("00"), table.wire("51"), table.core("A"), table.core("Z")) == ("A", "D", "00", "05")
