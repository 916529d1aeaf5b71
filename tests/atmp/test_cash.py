"""Cash in the cassettes: note mixes, dispenses, low cash and replenishment figures."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atmp.cash import Movement, apply_movement, low_cash, note_mix, replenish
from atmp.errors import CashError
from atmp.model import Cassette

# The demo fleet: 20.00, 50.00, 10.00, 100.00 USD.
FLEET = (Cassette(1, "840", 2000, 2000), Cassette(2, "840", 5000, 2000), Cassette(3, "840", 1000, 2000),
         Cassette(4, "840", 10000, 2000))


@pytest.mark.parametrize(("amount", "mix"), [
    (0, (0, 0, 0, 0)),
    (18000, (1, 1, 1, 1)),  # 100 + 50 + 20 + 10
    (30000, (0, 0, 0, 3)),
    (7000, (1, 1, 0, 0)),
    (4000, (2, 0, 0, 0)),
    (1500, None),  # no 5.00 notes
])
def test_largest_denomination_first(amount: int, mix: tuple[int, int, int, int] | None) -> None:
    assert note_mix(FLEET, amount) == mix


def test_fewer_large_notes_when_largest_first_cannot_finish() -> None:
    fifties_and_twenties = (Cassette(1, "840", 5000, 10), Cassette(2, "840", 2000, 10))
    assert note_mix(fifties_and_twenties, 6000) == (0, 3, 0, 0)  # 50 + 10 impossible: 3 x 20
    assert note_mix(fifties_and_twenties, 11000) == (1, 3, 0, 0)
    assert note_mix(fifties_and_twenties, 3000) is None


def test_only_notes_left_in_the_currency_asked_and_within_the_note_limit() -> None:
    cassettes = (Cassette(1, "840", 10000, 5, dispensed=4), Cassette(2, "840", 2000, 100), Cassette(3, "978", 5000, 9))
    assert note_mix(cassettes, 30000, "840") == (1, 10, 0, 0)  # one 100 left, then twenties
    assert note_mix(cassettes, 30000, "840", max_notes=10) is None
    assert note_mix(cassettes, 5000, "978") == (0, 0, 1, 0)
    assert note_mix((Cassette(1, "840", 2000, 3, dispensed=3),), 2000) is None  # empty cassette


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([500, 1000, 2000, 5000, 10000]), st.integers(0, 6)), min_size=1,
                max_size=4),
       st.integers(0, 60) .map(lambda n: n * 500))
def test_a_mix_pays_the_amount_exactly_and_none_means_no_mix_exists(notes: list[tuple[int, int]],
                                                                   amount: int) -> None:
    cassettes = tuple(Cassette(i + 1, "840", d, n) for i, (d, n) in enumerate(notes))
    mix = note_mix(cassettes, amount)
    if mix is not None:
        assert sum(mix[c.position - 1] * c.denomination for c in cassettes) == amount
        assert all(mix[c.position - 1] <= c.remaining for c in cassettes)
    else:
        every = itertools.product(*(range(c.remaining + 1) for c in cassettes))
        assert not any(sum(n * c.denomination for n, c in zip(combo, cassettes, strict=True)) == amount
                       for combo in every)


def test_a_large_impossible_amount_is_answered_quickly() -> None:
    many = (Cassette(1, "840", 5000, 9999), Cassette(2, "840", 2000, 9999), Cassette(3, "840", 700, 9999))
    assert note_mix(many, 300) is None
    assert note_mix(many, 99_999_900) is None  # above what the cassettes hold
    mix = note_mix(many, 60_004_900)
    assert mix is not None and mix[0] * 5000 + mix[1] * 2000 + mix[2] * 700 == 60_004_900


def test_a_dispense_moves_notes_and_a_missing_cassette_is_refused() -> None:
    after = apply_movement(FLEET, Movement(dispensed=(1, 2, 0, 0), rejected=(0, 1, 0, 0), retracted=(0, 0, 0, 3)))
    assert [c.remaining for c in after] == [1999, 1997, 2000, 1997]
    back = apply_movement(after, Movement() - Movement(dispensed=(1, 0, 0, 0)))
    assert back[0].remaining == 2000
    with pytest.raises(CashError, match="cassette 4"):
        apply_movement(FLEET[:2], Movement(dispensed=(0, 0, 0, 1)))


def test_low_cash_is_any_cassette_under_the_threshold() -> None:
    cassettes = (Cassette(1, "840", 2000, 100, dispensed=41), Cassette(2, "840", 5000, 100))
    assert low_cash(cassettes, 60) == (1,)
    assert low_cash(cassettes, 0) == ()


def test_replenishment_figures_per_cassette_and_in_money() -> None:
    used = (Cassette(1, "840", 2000, 2000, dispensed=500, rejected=3), Cassette(2, "840", 5000, 2000, dispensed=100),
            Cassette(3, "840", 1000, 2000))
    result = replenish(used, removed={1: 1495, 2: 1902, 3: 2000}, loaded={1: 2000, 2: 2000, 3: 1500})
    assert [(c.expected, c.removed, c.difference, c.difference_value) for c in result.counts] == [
        (1497, 1495, -2, -4000), (1900, 1902, 2, 10000), (2000, 2000, 0, 0)]
    assert not result.balanced
    assert result.difference_by_currency() == {"840": 6000}
    assert [(c.loaded, c.dispensed, c.remaining) for c in result.cassettes] == [(2000, 0, 2000), (2000, 0, 2000),
                                                                               (1500, 0, 1500)]


@pytest.mark.parametrize(("removed", "loaded", "message"), [
    ({1: 1}, {1: 1, 2: 1}, "removed: no count for cassette 2"),
    ({1: 1, 2: 1}, {1: 1, 2: 1, 4: 1}, "loaded: the terminal has no cassette 4"),
    ({1: -1, 2: 1}, {1: 1, 2: 1}, "removed: cassette 1"),
])
def test_a_replenishment_that_cannot_be_matched_is_refused(removed: dict[int, int], loaded: dict[int, int],
                                                          message: str) -> None:
    with pytest.raises(CashError, match=message):
        replenish(FLEET[:2], removed, loaded)
