"""Pre-authorizations, completions, hold expiry, reversals (full, partial, repeated) and advices."""

from __future__ import annotations

import dataclasses

import pytest

from processors.model import CardStatus, EarlyReversal, Hold, HoldStatus, Txn, TxnStatus
from processors.state import CellState
from switch.model.message import Message
from tests.processors.engine_kit import (
    DEBIT_PAN,
    FOREIGN_ACQUIRER,
    OTHER_PAN,
    World,
    atm,
    de90,
    make_world,
    request,
    reversal_of,
)

CHECKING = "0100000011"


@pytest.fixture
def world() -> World:
    return make_world()


def held(world: World) -> int:
    return world.account(CHECKING).held


def usage(world: World, channel: str = "atm") -> tuple[int, int]:
    card = world.card("4761730100000011")
    row = world.state.usage.get((card.id, world.clock.now.date(), channel))
    return (row.amount, row.count) if row else (0, 0)


def test_preauth_holds_then_completion_posts_and_releases(world: World) -> None:
    auth = request("0100", "000000", 30_000)
    decision = world.handle(auth)
    assert decision.response is not None and decision.response.mti == "0110" and decision.response[39] == "00"
    assert held(world) == 30_000 and world.account(CHECKING).ledger_balance == 100_000
    hold = next(row for k, row in decision.effects.rows if k is Hold)
    assert hold["status"] == HoldStatus.OPEN and hold["amount"] == 30_000
    assert hold["expires_at"] == world.clock.now.replace(day=22)
    # Available falls, so a second purchase beyond it is declined.
    assert world.handle(request("0200", "000000", 70_001)).response[39] == "51"  # type: ignore[index]

    completion = request("0220", "000000", 25_000, f90=de90(auth))
    done = world.handle(completion)
    assert done.response is not None and done.response.mti == "0230" and done.response[39] == "00"
    assert held(world) == 0
    assert world.account(CHECKING).ledger_balance == 75_000
    assert world.state.holds == {}
    statuses = {row["id"]: row["status"] for k, row in done.effects.rows if k in (Hold, Txn)}
    assert HoldStatus.COMPLETED in statuses.values() and TxnStatus.COMPLETED in statuses.values()


def test_hold_expiry_releases_lazily_and_by_expire_holds(world: World) -> None:
    world.handle(request("0100", "000000", 30_000))
    world.clock.advance(days=7, seconds=1)
    # The next request of any card releases it first (lazily).
    decision = world.handle(request("0200", "000000", 1_000, pan=OTHER_PAN))
    assert held(world) == 0
    assert any(k is Hold and row["status"] == HoldStatus.EXPIRED for k, row in decision.effects.rows)
    world.handle(request("0100", "000000", 10_000))
    world.clock.advance(days=8)
    effects = world.engine.expire_holds()
    assert held(world) == 0 and any(k is Hold for k, _ in effects.rows)
    assert not world.engine.expire_holds()


def test_completion_after_expiry_still_posts(world: World) -> None:
    auth = request("0100", "000000", 30_000)
    world.handle(auth)
    world.clock.advance(days=10)
    done = world.handle(request("0220", "000000", 30_000,
                                f90=de90(auth)))
    assert done.response[39] == "00"  # type: ignore[index]
    assert world.account(CHECKING).ledger_balance == 70_000 and held(world) == 0


def test_full_reversal_restores_balance_and_usage(world: World) -> None:
    original = atm("010000", 20_000, f32=FOREIGN_ACQUIRER)
    assert world.handle(original).response[39] == "00"  # type: ignore[index]
    assert world.account(CHECKING).ledger_balance == 100_000 - 20_250
    assert usage(world) == (20_000, 1)
    decision = world.handle(reversal_of(original))
    assert decision.response is not None and decision.response.mti == "0410" and decision.response[39] == "00"
    assert world.account(CHECKING).ledger_balance == 100_000  # fee given back too
    assert usage(world) == (0, 0)
    orig_txn = next(t for t in world.state.txns.values() if t.dup_key.startswith("020|" + str(original[11])))
    assert orig_txn.status == TxnStatus.REVERSED and orig_txn.reversed_amount == 20_000


def test_reversal_is_idempotent(world: World) -> None:
    original = request("0200", "000000", 5_000)
    world.handle(original)
    rev = reversal_of(original)
    assert world.handle(rev).response[39] == "00"  # type: ignore[index]
    repeat = rev.copy()
    repeat.mti = "0401"
    again = world.handle(repeat)
    assert again.response is not None and again.response.mti == "0410" and again.response[39] == "00"
    assert not again.effects
    same = world.handle(rev)  # the same 0400 again: answered the same, never 94
    assert same.response[39] == "00" and not same.effects  # type: ignore[index]
    advice = world.handle(reversal_of(original, "0420"))  # a reversal advice of the same original
    assert advice.response is not None and advice.response.mti == "0430" and advice.response[39] == "00"
    assert world.account(CHECKING).ledger_balance == 100_000


def test_partial_reversal_with_de95(world: World) -> None:
    original = request("0200", "000000", 10_000)
    world.handle(original)
    decision = world.handle(reversal_of(original, replacement=6_000))
    assert decision.response[39] == "00"  # type: ignore[index]
    assert world.account(CHECKING).ledger_balance == 94_000
    assert usage(world, "pos") == (6_000, 1)
    txn = next(t for t in world.state.txns.values() if t.id == world.postings[0].txn_id)
    assert txn.status == TxnStatus.PARTIALLY_REVERSED and txn.reversed_amount == 4_000
    # A second partial to 2 000 gives back 4 000 more; then the full reversal the rest.
    world.handle(reversal_of(original, replacement=2_000))
    assert world.account(CHECKING).ledger_balance == 98_000
    world.handle(reversal_of(original, replacement=5_000))  # above what is left: nothing to do
    assert world.account(CHECKING).ledger_balance == 98_000
    world.handle(reversal_of(original))
    assert world.account(CHECKING).ledger_balance == 100_000
    assert usage(world, "pos") == (0, 0)
    assert world.state.txns[txn.id].status is TxnStatus.REVERSED


def test_reversal_of_preauth_releases_hold(world: World) -> None:
    auth = request("0100", "000000", 40_000)
    world.handle(auth)
    world.handle(reversal_of(auth, replacement=15_000))
    assert held(world) == 15_000
    world.handle(reversal_of(auth))
    assert held(world) == 0 and world.state.holds == {}
    assert world.account(CHECKING).ledger_balance == 100_000


def test_unknown_original_25_remembered_and_the_late_original_declined(world: World) -> None:
    ghost = request("0200", "000000", 5_000)
    reversal = reversal_of(ghost)
    decision = world.handle(reversal)
    assert decision.response is not None and decision.response[39] == "25"
    assert not any(k is Txn for k, _ in decision.effects.rows)
    assert [k for k, _ in decision.effects.rows] == [EarlyReversal]  # remembered, committed with the answer
    # The original arrives late: declined, nothing posted; a repeat of the reversal now finds it (declined,
    # nothing to give back: 00).
    assert world.handle(ghost).response[39] == "05"  # type: ignore[index]
    repeat = reversal.copy()
    repeat.mti = "0401"
    assert world.handle(repeat).response[39] == "00"  # type: ignore[index]
    assert world.account(CHECKING).ledger_balance == 100_000


def test_reversal_with_another_card_is_25(world: World) -> None:
    original = request("0200", "000000", 5_000)
    world.handle(original)
    assert world.handle(reversal_of(original, f2=OTHER_PAN)).response[39] == "25"  # type: ignore[index]


def test_reversal_of_declined_is_acknowledged_without_effect(world: World) -> None:
    original = request("0200", "000000", 150_000)
    assert world.handle(original).response[39] == "51"  # type: ignore[index]
    decision = world.handle(reversal_of(original))
    assert decision.response[39] == "00"  # type: ignore[index]
    # Nothing moves; the reversal is remembered in case the switch stood in after the decline (processors.early).
    assert [kind for kind, _ in decision.effects.rows] == [EarlyReversal]


def test_advice_0120_applied_over_limits_and_funds(world: World) -> None:
    decision = world.handle(request("0120", "010000", 150_000, f18="6011"))
    assert decision.response is not None and decision.response.mti == "0130" and decision.response[39] == "00"
    assert held(world) == 150_000
    assert world.account(CHECKING).available == -50_000
    assert usage(world) == (150_000, 1)


def test_advice_for_an_already_approved_request_is_not_applied_twice(world: World) -> None:
    auth = request("0100", "000000", 10_000)
    world.handle(auth)
    advice = auth.copy()
    advice.mti = "0120"
    decision = world.handle(advice)
    assert decision.response[39] == "00" and held(world) == 10_000  # type: ignore[index]


def test_advice_unknown_card_14_and_duplicate_94(world: World) -> None:
    assert world.handle(request("0120", "000000", 1, pan="4761739999999999")).response[39] == "14"  # type: ignore[index]
    advice = request("0220", "000000", 1_000)
    assert world.handle(advice).response[39] == "00"  # type: ignore[index]
    assert world.handle(advice).response[39] == "94"  # type: ignore[index]
    repeat = advice.copy()
    repeat.mti = "0221"
    replay = world.handle(repeat)
    assert replay.response is not None and replay.response.mti == "0230" and replay.response[39] == "00"
    assert world.account(CHECKING).ledger_balance == 99_000


def test_forced_post_0220_ignores_lost_card_and_funds(world: World) -> None:
    world.card("4761730100000011").status = "lost"  # type: ignore[assignment]
    decision = world.handle(request("0220", "000000", 120_000))
    assert decision.response[39] == "00"  # type: ignore[index]
    assert world.account(CHECKING).ledger_balance == -20_000


def test_state_reloaded_from_rows_finds_originals(world: World) -> None:
    original = request("0200", "000000", 5_000)
    world.handle(original)
    rows = [*world.state.accounts.values(), *world.state.cards.values(), *world.state.txns.values(),
            *world.state.customers.values(), *world.state.credit_lines.values()]
    reloaded = CellState.from_rows(1, rows)
    assert set(reloaded.txns_by_original) == set(world.state.txns_by_original)


def test_prune_forgets_old_transactions_only(world: World) -> None:
    old = request("0200", "000000", 1_000)
    world.handle(old)
    world.clock.advance(days=36)
    recent = request("0200", "000000", 1_000)
    world.handle(recent)
    assert world.engine.prune() == 1
    assert len(world.state.txns) == 1 and len(world.state.txns_by_dup_key) == 1
    assert len(world.state.txns_by_original) == 1
    assert world.handle(reversal_of(old)).response[39] == "25"  # type: ignore[index]


# -- transfers: the reversal takes back exactly the account that was credited ---------------------------------

SAVINGS = "0100000012"


def test_reversal_of_a_transfer_to_the_default_account(world: World) -> None:
    transfer = request("0200", "401000", 1_000)  # savings (10) -> "00", the card's default account (checking)
    assert world.handle(transfer).response[39] == "00"  # type: ignore[index]
    txn = next(t for t in world.state.txns.values() if t.txn_type == "transfer")
    assert txn.to_account_id == CHECKING
    assert world.handle(reversal_of(transfer)).response[39] == "00"  # type: ignore[index]
    assert world.account(CHECKING).ledger_balance == 100_000 and world.account(SAVINGS).ledger_balance == 50_000


def test_reversal_of_a_transfer_to_the_de103_account(world: World) -> None:
    transfer = request("0200", "402020", 5_000, f103=SAVINGS)  # DE 3 says checking, DE 103 names savings
    assert world.handle(transfer).response[39] == "00"  # type: ignore[index]
    assert world.account(CHECKING).ledger_balance == 95_000 and world.account(SAVINGS).ledger_balance == 55_000
    assert world.handle(reversal_of(transfer)).response[39] == "00"  # type: ignore[index]
    assert world.account(CHECKING).ledger_balance == 100_000 and world.account(SAVINGS).ledger_balance == 50_000


# -- a card replaced with the same number still reverses and completes its own transactions -------------------

def _replace_same_number(world: World) -> None:
    old = world.card(DEBIT_PAN)
    new = dataclasses.replace(old, id="K0100000099", replaces=old.id, psn="01", status=CardStatus.ACTIVE,
                              limits={k: dict(v) for k, v in old.limits.items()}, accounts=dict(old.accounts))
    old.status = CardStatus.REPLACED
    world.state.put(new)
    assert world.card(DEBIT_PAN).id == "K0100000099"


def test_reversal_after_a_same_number_replacement(world: World) -> None:
    purchase = request("0200", "000000", 5_000)
    world.handle(purchase)
    _replace_same_number(world)
    assert world.handle(reversal_of(purchase)).response[39] == "00"  # type: ignore[index]
    assert world.account(CHECKING).ledger_balance == 100_000


def test_completion_after_a_same_number_replacement_closes_the_hold(world: World) -> None:
    auth = request("0100", "000000", 7_000)
    world.handle(auth)
    _replace_same_number(world)
    completion = world.handle(request("0220", "000000", 7_000, f90=de90(auth)))
    assert completion.response[39] == "00"  # type: ignore[index]
    assert world.account(CHECKING).ledger_balance == 93_000 and held(world) == 0 and not world.state.holds


# -- a second completion of one pre-authorization is a repeated advice -----------------------------------------

def test_second_completion_of_a_preauth_is_acknowledged_not_posted(world: World) -> None:
    auth = request("0100", "010000", 20_000, f18="6011", f32=FOREIGN_ACQUIRER)
    world.handle(auth)
    first = world.handle(request("0220", "010000", 20_000, f18="6011", f32=FOREIGN_ACQUIRER, f90=de90(auth)))
    assert first.response[39] == "00"  # type: ignore[index]
    after_first = world.account(CHECKING).ledger_balance
    assert after_first == 100_000 - 20_250  # amount + the foreign ATM fee
    second = world.handle(request("0220", "010000", 20_000, f18="6011", f32=FOREIGN_ACQUIRER, f90=de90(auth)))
    assert second.response[39] == "00" and not second.effects  # type: ignore[index]
    assert world.account(CHECKING).ledger_balance == after_first


# -- DE 95 is in the transaction currency; the account was charged in its own ---------------------------------

def test_partial_reversal_in_a_foreign_currency_is_scaled_to_the_account(world: World) -> None:
    purchase = request("0200", "000000", 10_000, f49="978", f6="000000011000", f51="840")  # EUR 100 -> USD 110
    assert world.handle(purchase).response[39] == "00"  # type: ignore[index]
    assert world.account(CHECKING).ledger_balance == 89_000
    txn = next(t for t in world.state.txns.values() if t.amount == 11_000)
    assert (txn.request_amount, txn.request_currency) == (10_000, "EUR")
    # Actually EUR 90.00: USD 99.00 at the original rate, so USD 11.00 comes back.
    assert world.handle(reversal_of(purchase, replacement=9_000)).response[39] == "00"  # type: ignore[index]
    assert world.account(CHECKING).ledger_balance == 100_000 - 9_900
    assert world.handle(reversal_of(purchase)).response[39] == "00"  # type: ignore[index]
    assert world.account(CHECKING).ledger_balance == 100_000


def test_scaled_replacement_rounds_half_up() -> None:
    from processors.engine import CellEngine

    txn = Txn(id="T", dup_key="", mti="0200", processing_code="000000", txn_type="purchase", channel="pos",
              card_id=None, account_id=None, amount=1_001, currency="USD", fee=0, response_code="00",
              approval_code="", stan="", rrn="", terminal="", acquirer="", created_at=None,  # type: ignore[arg-type]
              status=TxnStatus.APPROVED, request_amount=1_000, request_currency="EUR")
    assert CellEngine._in_account_currency(txn, 500) == 501  # 500.5 rounds up
    assert CellEngine._in_account_currency(txn, 1_000) == 1_001
    assert CellEngine._in_account_currency(txn, 2_000) == 1_001  # never more than was taken


def test_financial_request_without_currency_is_13(world: World) -> None:
    decision = world.handle(request("0200", "000000", 1_000, f49=""))
    assert decision.response is not None and decision.response[39] == "13"
    assert world.account(CHECKING).ledger_balance == 100_000
    inquiry = world.handle(request("0200", "301000", None, f49=""))  # an inquiry has no amount to price
    assert inquiry.response is not None and inquiry.response[39] == "00"


def test_repeated_stand_in_advice_is_acknowledged_not_posted_twice(world: World) -> None:
    # The switch stood in for a purchase this cell never saw; its 0230 got lost, so the 0221 repeat follows
    # (an identical message but for the MTI, as the switch's store-and-forward sends repeats).
    never_seen = request("0200", "000000", 1_500)
    advice = request("0220", "000000", 1_500, f90=de90(never_seen), f38="S12345", f11=str(never_seen[11]))
    first = world.handle(advice)
    assert first.response is not None and first.response[39] == "00"
    assert world.account(CHECKING).ledger_balance == 100_000 - 1_500
    repeat = world.handle(Message("0221", dict(advice.fields)))
    assert repeat.response is not None and repeat.response[39] == "00"
    assert world.account(CHECKING).ledger_balance == 100_000 - 1_500  # applied once


def test_original_arriving_after_its_stand_in_advice_is_not_applied_again(world: World) -> None:
    # The cell was away: the switch approved in stand-in and its advice arrived first; then the original
    # request itself gets through (a retry or a slower path). Same STAN, DE 7 and acquirer: applied once.
    original = request("0200", "000000", 1_500)
    advice = Message("0220", {**original.fields, 38: "S12345", 39: "00", 90: de90(original)})
    assert world.handle(advice).response[39] == "00"  # type: ignore[index]
    late = world.handle(original)
    assert late.response is not None and late.response[39] == "00" and not late.effects.rows
    assert world.account(CHECKING).ledger_balance == 100_000 - 1_500
    # A different purchase with its own STAN is of course applied.
    assert world.handle(request("0200", "000000", 500)).response[39] == "00"  # type: ignore[index]
    assert world.account(CHECKING).ledger_balance == 100_000 - 2_000
