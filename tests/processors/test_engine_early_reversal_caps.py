"""How many early reversals a cell remembers (issue 11 item 1, review finding 6; processors.early): capped per
card and in total ([bank] reversal_memory_per_card, reversal_memory_total); past a cap the reversal is answered
as before without being remembered, a rate-limited warning names the cap and the masked card, and the counts are
exposed."""

from __future__ import annotations

import logging

import pytest

from tests.processors.early_kit import AMOUNT, START, answer_code, at, catalog_with, remembered_rows
from tests.processors.engine_kit import DEBIT_PAN, OTHER_PAN, make_world, request, reversal_of


def test_past_the_per_card_cap_a_reversal_is_answered_25_without_being_remembered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = make_world(catalog=catalog_with(reversal_memory_per_card=2))
    originals = [at("ATM-A", f"00010{n}") for n in range(3)]
    assert [remembered_rows(world, reversal_of(o))[0] for o in originals[:2]] == ["25", "25"]
    with caplog.at_level(logging.WARNING, logger="bulkhead.cells.early"):
        code, rows = remembered_rows(world, reversal_of(originals[2]))
    assert code == "25" and rows == []
    assert len(world.state.early_reversals) == 2
    assert world.engine.early_counts() == {"early_reversals": 2, "early_reversals_refused": 1}
    # The warning names the cap and the card masked; never the clear PAN.
    assert len(caplog.records) == 1
    line = caplog.records[0].getMessage()
    assert "reversal_memory_per_card" in line and "476173******0011" in line and DEBIT_PAN not in line
    # The third original was not stopped; the first two were.
    assert [answer_code(world, o) for o in originals] == ["05", "05", "00"]
    # Another card is not affected by this card's count.
    assert remembered_rows(world, reversal_of(at("ATM-A", "000200", OTHER_PAN)))[1] != []


def test_a_repeat_of_a_remembered_reversal_is_not_refused_at_the_cap() -> None:
    world = make_world(catalog=catalog_with(reversal_memory_per_card=1))
    original = at("ATM-A", "000100")
    reversal = reversal_of(original)
    assert answer_code(world, reversal) == "25"
    repeat = reversal.copy()
    repeat.mti = "0401"
    assert remembered_rows(world, repeat) == ("25", [])
    assert world.engine.early_counts()["early_reversals_refused"] == 0
    assert answer_code(world, original) == "05"


def test_expired_reversals_do_not_count_towards_the_per_card_cap() -> None:
    world = make_world(catalog=catalog_with(reversal_memory_per_card=1))
    assert answer_code(world, reversal_of(at("ATM-A", "000100"))) == "25"
    world.clock.advance(days=world.engine.bank.reversal_retention_days, seconds=1)
    # Not yet forgotten by housekeeping, but past its retention: the card may have a new one.
    assert remembered_rows(world, reversal_of(at("ATM-A", "000101")))[1] != []


def test_a_remembered_reversal_already_applied_does_not_count_towards_the_per_card_cap() -> None:
    world = make_world(catalog=catalog_with(reversal_memory_per_card=1))
    first = at("ATM-A", "000100")
    assert answer_code(world, reversal_of(first)) == "25"
    advice = request("0220", "000000", AMOUNT, DEBIT_PAN, f11="000100", f41="ATM-A")
    assert answer_code(world, advice) == "00"  # its advice came: applied and reversed, the remembered one did its work
    # The card's room is free again for a real reversal still waiting for its original.
    second = at("ATM-A", "000101")
    assert remembered_rows(world, reversal_of(second))[1] != []
    assert answer_code(world, second) == "05"


def test_past_the_total_cap_no_card_gets_a_new_one(caplog: pytest.LogCaptureFixture) -> None:
    world = make_world(catalog=catalog_with(reversal_memory_per_card=5, reversal_memory_total=2))
    assert remembered_rows(world, reversal_of(at("ATM-A", "000100")))[1] != []
    assert remembered_rows(world, reversal_of(at("ATM-A", "000101", OTHER_PAN)))[1] != []
    with caplog.at_level(logging.WARNING, logger="bulkhead.cells.early"):
        for n in range(5):
            assert remembered_rows(world, reversal_of(at("ATM-A", f"00020{n}", OTHER_PAN))) == ("25", [])
    assert world.engine.early_counts() == {"early_reversals": 2, "early_reversals_refused": 5}
    # Rate-limited: one line for the burst, naming the total cap.
    assert len(caplog.records) == 1 and "reversal_memory_total" in caplog.records[0].getMessage()
    # Once housekeeping forgets expired ones, there is room again.
    world.clock.advance(days=world.engine.bank.reversal_retention_days, seconds=1)
    assert world.engine.forget_expired_reversals() == 2
    assert remembered_rows(world, reversal_of(at("ATM-A", "000300")))[1] != []


def test_a_reversal_of_a_declined_original_past_the_cap_is_still_acknowledged() -> None:
    world = make_world(catalog=catalog_with(reversal_memory_total=1))
    assert answer_code(world, reversal_of(at("ATM-A", "000100"))) == "25"
    declined = request("0200", "000000", START + 1, f11="000101", f41="ATM-A")
    assert answer_code(world, declined) == "51"
    assert remembered_rows(world, reversal_of(declined)) == ("00", [])
