"""A reversal that reaches the cell before its original or advice (issue 11, processors.early): whatever the order
of the original, its stand-in advice, their repeats, the reversal and its repeat, the end state is the same."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from processors.model import EarlyReversal, HoldStatus, Txn, TxnStatus
from processors.state import CellState
from switch.exchange.reversal import build_stand_in_advice
from switch.model.message import Message
from tests.processors.engine_kit import (
    DEBIT_PAN,
    OTHER_PAN,
    World,
    make_world,
    request,
    reversal_of,
)

CHECKING = "0100000011"
START = 100_000  # the checking account's balance in make_world
AMOUNT = 5_000
DECLINED_AMOUNT = 150_000  # beyond the checking account's funds (51), within its limits
PARTIAL = 2_000  # DE 95 actual amount of a partial reversal


@dataclass(frozen=True)
class Family:
    """An original, its stand-in advice, their repeats, a reversal of it and the reversal's repeat."""

    messages: dict[str, Message]
    mti_class: str
    replacement: int | None
    declined: bool  # the original is declined here (51) when it arrives first: only the advice can post


def family(mti_class: str, replacement: int | None, *, declined: bool = False) -> Family:
    original = request(f"0{mti_class}00", "000000", DECLINED_AMOUNT if declined else AMOUNT)

    def variant(message: Message, mti: str) -> Message:
        copy = message.copy()
        copy.mti = mti
        return copy

    reversal = reversal_of(original, replacement=replacement)
    return Family({
        "O": original,
        "O'": variant(original, f"0{mti_class}01"),
        # The switch's stand-in advice, as the node builds it (the original's STAN, DE 7, acquirer; DE 90 naming it)
        "A": build_stand_in_advice(original, "S00001", repeat=False),
        "A'": build_stand_in_advice(original, "S00001", repeat=True),
        "R": reversal,
        "R'": variant(reversal, "0401"),
    }, mti_class, replacement, declined)


def orders(names: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    """Every order of every subset of ``names`` that holds a reversal."""
    for size in range(1, len(names) + 1):
        for subset in itertools.combinations(names, size):
            if "R" in subset or "R'" in subset:
                yield from itertools.permutations(subset)


NAMES = ("O", "O'", "A", "A'", "R", "R'")


def deliver(world: World, fam: Family, order: tuple[str, ...]) -> None:
    for name in order:
        message = fam.messages[name]
        decision = world.handle(message.copy())
        response = decision.response
        assert response is not None, (order, name)  # every message answered
        assert response.mti == message.mti[:2] + str(int(message.mti[2]) + 1) + "0", (order, name)


def end_state(world: World) -> tuple[int, int, int]:
    """(ledger balance, held, open holds) of the checking account, after checking that its balance is what the
    postings say (the ledger check) and that no hold is left open without being counted."""
    account = world.account(CHECKING)
    posted = sum(entry.amount for posting in world.postings for entry in posting.entries if entry.account == CHECKING)
    assert account.ledger_balance == START + posted
    open_holds = [hold for hold in world.state.holds.values() if hold.status == HoldStatus.OPEN]
    assert account.held == sum(hold.amount for hold in open_holds)
    return account.ledger_balance, account.held, len(open_holds)


def expected(fam: Family, order: tuple[str, ...]) -> tuple[int, int, int]:
    """Full reversal: nothing posted or held, whatever arrived. Partial: the actual amount stays, once, as soon as
    the original (when approvable) or its advice arrived (a posting for 0200, a hold for 0100)."""
    applied = any(name in order for name in (("A", "A'") if fam.declined else ("O", "O'", "A", "A'")))
    if fam.replacement is None or not applied:
        return START, 0, 0
    if fam.mti_class == "2":
        return START - fam.replacement, 0, 0
    return START, fam.replacement, 1


@pytest.mark.parametrize("declined", [False, True], ids=["approvable", "declined-then-stood-in"])
@pytest.mark.parametrize(("mti_class", "replacement"), [("2", None), ("1", None), ("2", PARTIAL), ("1", PARTIAL)])
def test_every_order_of_original_advice_repeats_and_reversal_ends_the_same(
    mti_class: str, replacement: int | None, declined: bool,
) -> None:
    fam = family(mti_class, replacement, declined=declined)
    count = 0
    for order in orders(NAMES):
        world = make_world()
        deliver(world, fam, order)
        assert end_state(world) == expected(fam, order), order
        # Limit usage follows: nothing counted once reversed, the actual amount once after a partial.
        card = world.card(DEBIT_PAN)
        usage = world.state.usage.get((card.id, world.clock.now.date(), "pos"))
        assert (usage.amount if usage is not None else 0) == (0 if expected(fam, order) == (START, 0, 0) else PARTIAL)
        count += 1
    assert count == 1892  # sum over the 48 subsets with a reversal of their orders


def test_the_issue_order_reversal_then_stand_in_advice_posts_nothing() -> None:
    """Cell down, stand-in 0220 queued, node killed; the acquirer's 0400 reaches the restarted cell first."""
    world = make_world()
    fam = family("2", None)
    first = world.handle(fam.messages["R"])
    assert first.response is not None and first.response[39] == "25"
    advice = world.handle(fam.messages["A"])
    assert advice.response is not None and advice.response.mti == "0230" and advice.response[39] == "00"
    assert end_state(world) == (START, 0, 0)
    # The ledger shows the advice and its reversal; the advice's transaction is reversed, and the reversal's own
    # transaction (under the 0400's duplicate key) answers its repeats from now on.
    assert [p.description for p in world.postings] == ["purchase 0220", f"reversal of {world.postings[0].txn_id}"]
    advised = world.state.txns[str(world.postings[0].txn_id)]
    assert advised.status is TxnStatus.REVERSED
    repeat = world.handle(fam.messages["R'"])
    assert repeat.response is not None and repeat.response[39] == "00"
    # The late original is declined 05 and posts nothing.
    late = world.handle(fam.messages["O"])
    assert late.response is not None and late.response[39] == "05"
    assert end_state(world) == (START, 0, 0)


def test_original_after_its_reversal_is_declined_05_without_hold_or_usage() -> None:
    world = make_world()
    fam = family("1", None)
    world.handle(fam.messages["R"])
    decision = world.handle(fam.messages["O"])
    assert decision.response is not None and decision.response[39] == "05"
    txn = next(row for kind, row in decision.effects.rows if kind is Txn)
    assert txn["status"] == TxnStatus.DECLINED and txn["decline_reason"] == "reversed before it arrived"
    assert txn["hold_id"] is None and txn["posting_id"] is None
    assert world.state.usage == {}


def test_partial_reversal_before_the_original_is_applied_when_it_is_approved() -> None:
    world = make_world()
    fam = family("2", PARTIAL)
    world.handle(fam.messages["R"])
    decision = world.handle(fam.messages["O"])
    assert decision.response is not None and decision.response[39] == "00"
    assert end_state(world) == (START - PARTIAL, 0, 0)
    original = world.state.txns_by_original[next(iter(world.state.txns_by_original))]
    assert original.status is TxnStatus.PARTIALLY_REVERSED and original.reversed_amount == AMOUNT - PARTIAL
    remembered = next(iter(world.state.early_reversals.values()))
    assert remembered.applied_to == original.id
    # The answer's DE 54 already shows the balance after the partial reversal.
    assert f"{START - PARTIAL:012d}" in str(decision.response[54])


def test_partial_reversal_waits_for_the_advice_when_the_original_is_declined() -> None:
    world = make_world()
    big = START + 1  # beyond the funds: the original is declined 51, the switch's stand-in approved it
    original = request("0200", "000000", big)
    world.handle(reversal_of(original, replacement=PARTIAL))
    assert world.handle(original).response[39] == "51"  # type: ignore[index]
    advice = original.copy()
    advice.mti = "0220"
    assert world.handle(advice).response[39] == "00"  # type: ignore[index]
    assert end_state(world) == (START - PARTIAL, 0, 0)


def test_a_0400_and_a_0420_of_one_original_apply_once_the_full_one_wins() -> None:
    world = make_world()
    original = request("0200", "000000", AMOUNT)
    world.handle(reversal_of(original, replacement=PARTIAL))
    world.handle(reversal_of(original, "0420"))
    assert len(world.state.early_reversals) == 2
    assert world.handle(original).response[39] == "05"  # type: ignore[index]
    advice = original.copy()
    advice.mti = "0220"
    world.handle(advice)
    assert end_state(world) == (START, 0, 0)
    assert {row.applied_to for row in world.state.early_reversals.values()} == {world.postings[0].txn_id}


def test_a_reversal_with_another_card_does_not_stop_the_original() -> None:
    world = make_world()
    original = request("0200", "000000", AMOUNT)
    world.handle(reversal_of(original, f2=OTHER_PAN))
    assert world.handle(original).response[39] == "00"  # type: ignore[index]
    assert end_state(world) == (START - AMOUNT, 0, 0)


def test_a_reversal_for_a_card_the_cell_does_not_have_is_not_remembered() -> None:
    world = make_world()
    decision = world.handle(reversal_of(request("0200", "000000", AMOUNT, pan="4761739999999999")))
    assert decision.response is not None and decision.response[39] == "25" and not decision.effects
    assert world.state.early_reversals == {}


def test_remembered_reversals_expire_after_the_retention() -> None:
    world = make_world()
    original = request("0200", "000000", AMOUNT)
    world.handle(reversal_of(original))
    retention = world.engine.bank.reversal_retention_days
    world.clock.advance(days=retention - 1)
    assert world.engine.forget_expired_reversals() == 0
    world.clock.advance(days=1)
    # Past the retention it no longer counts, and housekeeping forgets it.
    assert world.engine.forget_expired_reversals() == 1
    assert world.state.early_reversals == {} and world.state.early_by_original == {}
    assert world.handle(original).response[39] == "00"  # type: ignore[index]


def test_an_expired_one_is_ignored_even_before_housekeeping() -> None:
    world = make_world()
    original = request("0200", "000000", AMOUNT)
    world.handle(reversal_of(original))
    world.clock.advance(days=world.engine.bank.reversal_retention_days, seconds=1)
    assert world.handle(original).response[39] == "00"  # type: ignore[index]


def test_remembered_reversals_reload_from_their_rows() -> None:
    """What a restart does: the state is rebuilt from the rows the decisions committed."""
    world = make_world()
    fam = family("2", None)
    decision = world.handle(fam.messages["R"])
    rows = [EarlyReversal(**row) for kind, row in decision.effects.rows if kind is EarlyReversal]
    reloaded = CellState.from_rows(1, [*world.state.customers.values(), *world.state.accounts.values(),
                                       *world.state.cards.values(), *rows])
    world.state.early_reversals.clear()
    world.state.early_by_original.clear()
    for row in reloaded.early_reversals.values():
        world.state.put(row)
    assert world.handle(fam.messages["O"]).response[39] == "05"  # type: ignore[index]


def test_a_reversal_of_a_declined_original_still_stops_the_stand_in_advice() -> None:
    """The cell declined (its answer lost), the switch stood in; the acquirer's reversal overtakes the advice."""
    world = make_world()
    original = request("0200", "000000", DECLINED_AMOUNT)
    assert world.handle(original).response[39] == "51"  # type: ignore[index]
    acknowledged = world.handle(reversal_of(original))
    assert acknowledged.response is not None and acknowledged.response[39] == "00"
    assert [kind for kind, _ in acknowledged.effects.rows] == [EarlyReversal]
    advice = original.copy()
    advice.mti = "0220"
    assert world.handle(advice).response[39] == "00"  # type: ignore[index]
    assert end_state(world) == (START, 0, 0)


def test_a_reversal_without_de90_is_matched_by_its_own_stan() -> None:
    """Acquirers that reverse with the original's STAN, DE 7 and acquirer and no DE 90: either class matches."""
    world = make_world()
    for mti in ("0100", "0200"):
        original = request(mti, "000000", AMOUNT)
        reversal = original.copy()
        reversal.mti = "0400"
        assert world.handle(reversal).response[39] == "25"  # type: ignore[index]
        assert world.handle(original).response[39] == "05"  # type: ignore[index]
    assert end_state(world) == (START, 0, 0)


def test_repeats_are_answered_from_what_the_cell_knows_then() -> None:
    world = make_world()
    fam = family("2", None)
    assert world.handle(fam.messages["R"]).response[39] == "25"  # type: ignore[index]
    assert world.handle(fam.messages["R'"]).response[39] == "25"  # type: ignore[index]  # still unknown
    rows = len(world.state.early_reversals)
    world.handle(fam.messages["O"])
    assert world.handle(fam.messages["R'"]).response[39] == "00"  # type: ignore[index]  # nothing to give back
    assert len(world.state.early_reversals) == rows == 1
