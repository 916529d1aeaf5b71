"""Commands change nothing when they fail, and record every change they make in their effects.

The second property is what restart relies on: the state rebuilt from the effects' snapshots (as the storage
would load it back) equals the live state.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.commands import CellCommands, CommandError
from processors.demo import demo_commands
from processors.model import Effects, Entry, Posting, Row
from processors.state import CellState

from .commands_kit import catalog, make_commands

ALICE = "4761730010000019"  # cell 0 of 2 (processors.demo)
CAROL = "4761730010000035"
FOREIGN_PAN = "4761730110000026"  # Bob's card lives in cell 1


async def seeded_cell0() -> CellCommands:
    commands = make_commands(cell=0, cell_count=2)
    for cell, name, args in demo_commands(catalog(), 2):
        if cell == 0:
            await commands.run(name, args)
    return commands


# Each case fails, many only after several arguments were read and looked up successfully.
FAILING: list[tuple[str, dict[str, Any]]] = [
    ("customer.open", {"name": "Zed", "external_ref": "DEMO-BOB"}),  # cell 1's customer
    ("customer.open", {"name": "Alice", "external_ref": "DEMO-ALICE"}),  # duplicate
    ("customer.open", {"name": "", "external_ref": "NEW-1"}),
    ("account.open", {"customer": "ref:DEMO-ALICE", "kind": "credit", "product": "debit-classic"}),
    ("account.open", {"customer": "ref:DEMO-ALICE", "kind": "savings", "product": "debit-classic",
                      "currency": "XXX"}),
    ("account.open", {"customer": "ref:DEMO-ALICE", "kind": "checking", "product": "gold"}),
    ("account.deposit", {"account": "ref:DEMO-ALICE/checking", "amount": 0, "reference": "z"}),
    ("account.deposit", {"account": "ref:DEMO-ALICE/checking", "amount": 10, "reference": "DEMO-ALICE-checking"}),
    ("account.deposit", {"account": "ref:DEMO-ALICE/checking", "amount": 10, "reference": "z", "extra": 1}),
    ("account.post", {"account": "ref:DEMO-CAROL/checking", "amount": 501, "reference": "too-much"}),
    ("account.set_pricing", {"account": "ref:DEMO-ALICE/checking", "item": "overdraft", "value": -1}),
    ("account.close", {"account": "ref:DEMO-ALICE/checking"}),  # a balance and an active card
    ("customer.close", {"customer": "ref:DEMO-CAROL"}),  # an open account
    ("credit.payment", {"account": "ref:DEMO-ALICE/savings", "amount": 100, "reference": "pay"}),  # not credit
    ("card.issue", {"customer": "ref:DEMO-ALICE", "product": "credit-gold"}),  # no credit account
    ("card.issue", {"customer": "ref:DEMO-ALICE", "product": "debit-classic", "vanity": "1000001"}),  # taken
    ("card.issue", {"customer": "ref:DEMO-ALICE", "product": "debit-classic", "expiry": "2001"}),
    ("card.issue", {"customer": "ref:DEMO-ALICE", "product": "debit-classic", "activate": "yes"}),
    ("card.issue", {"customer": "ref:DEMO-ALICE", "product": "debit-classic", "bin": "520000"}),
    ("card.show", {"card": FOREIGN_PAN}),
    ("card.activate", {"card": ALICE}),  # already active
    ("card.block", {"card": ALICE, "status": "closed", "reason": "x"}),
    ("card.block", {"card": ALICE, "status": "lost"}),  # no reason
    ("card.unblock", {"card": ALICE}),
    ("card.replace", {"card": ALICE, "reason": "x"}),  # new_number missing
    ("card.replace", {"card": ALICE, "new_number": "no", "reason": "x"}),
    ("card.set_pin", {"card": ALICE, "pin_block": "F" * 16}),  # the HSM refuses it, after the await
    ("card.set_pin", {"card": CAROL, "pin_block": "XYZ"}),
    ("card.set_limits", {"card": ALICE, "channel": "pos", "per_txn": -5}),
    ("card.set_limits", {"card": ALICE, "channel": "moon", "per_txn": 5}),
    ("credit.set_limit", {"customer": "ref:DEMO-ALICE", "limit": 5}),  # no credit line
    ("credit.set_limit", {"customer": "ref:DEMO-ALICE", "line": "0000000001"}),
    ("credit.installments", {"account": "ref:DEMO-ALICE/checking", "txn": "M00-1", "count": 2}),
    ("credit.bill_installments", {"day": "yesterday"}),
    ("cell.stats", {"verbose": True}),
    ("cell.restart", {}),
]


@pytest.mark.parametrize(("name", "args"), FAILING, ids=[f"{n}-{i}" for i, (n, _) in enumerate(FAILING)])
async def test_a_failing_command_leaves_the_state_unchanged(name: str, args: dict[str, Any]) -> None:
    commands = await seeded_cell0()
    before = copy.deepcopy(commands.state)
    with pytest.raises(CommandError):
        await commands.run(name, args)
    assert commands.state == before


def rebuild(cell: int, batches: list[Effects], statements: CellState | None = None) -> CellState:
    """The state the storage would load from these effects (later snapshot of a row wins); postings are not kept in
    memory, only their mini statement lines (processors.storage.load_statement_lines), after those of
    ``statements`` (the state the batches start from)."""
    rows: dict[tuple[type[Row], tuple[Any, ...]], Row] = {}
    postings: dict[str, Posting] = {}
    for effects in batches:
        for kind, snap in effects.rows:
            if kind is Posting:
                postings[snap["id"]] = Posting(**copy.deepcopy(snap))
                continue
            if kind is Entry:
                postings[snap["posting_id"]].entries.append(Entry(**snap))
                continue
            row = kind(**copy.deepcopy(snap))
            rows.pop((kind, tuple(snap[k] for k in kind.KEY)), None)  # keep the order of the last change
            rows[(kind, tuple(snap[k] for k in kind.KEY))] = row
    state = CellState.from_rows(cell, rows.values())
    if statements is not None:
        state.statements = copy.deepcopy(statements.statements)
    for posting in postings.values():
        state.note_posting(posting)
    return state


def test_the_seed_effects_rebuild_the_state() -> None:
    async def main() -> None:
        commands = make_commands(cell=1, cell_count=2)
        batches = []
        for cell, name, args in demo_commands(catalog(), 2):
            if cell == 1:
                batches.append((await commands.run(name, args))[1])
        assert all(batches)
        assert rebuild(1, batches) == commands.state
    trio.run(main)


REFS = ["ref:DEMO-ALICE", "ref:DEMO-CAROL", "ref:DEMO-GRACE", "0000000001", "0000000009", "ref:NOBODY"]
ACCOUNTS = ["0000000001", "0000000002", "0000000003", "0000000004", "ref:DEMO-ALICE/credit"]
CARDS = [ALICE, CAROL, "K0000000001", "K0000000003", "K0000000004"]
AMOUNTS = st.sampled_from([0, 1, 500, 10_000, 10**9, -3, "7"])
COMMAND = st.one_of(
    st.fixed_dictionaries({"name": st.just("account.open"), "customer": st.sampled_from(REFS),
                           "kind": st.sampled_from(["checking", "savings", "credit", "loan"]),
                           "product": st.sampled_from(["debit-classic", "credit-gold"])}),
    st.fixed_dictionaries({"name": st.just("account.deposit"), "account": st.sampled_from(ACCOUNTS),
                           "amount": AMOUNTS, "reference": st.sampled_from(["a", "b", "DEMO-CAROL-checking"])}),
    st.fixed_dictionaries({"name": st.just("account.post"), "account": st.sampled_from(ACCOUNTS),
                           "amount": AMOUNTS, "reference": st.sampled_from(["p", "q"])}),
    st.fixed_dictionaries({"name": st.just("card.issue"), "customer": st.sampled_from(REFS),
                           "product": st.sampled_from(["debit-classic", "credit-gold"]),
                           "vanity": st.sampled_from(["1000001", "1000009", "12"])}),
    st.fixed_dictionaries({"name": st.sampled_from(["card.activate", "card.unblock", "card.reset_pin"]),
                           "card": st.sampled_from(CARDS)}),
    st.fixed_dictionaries({"name": st.just("card.block"), "card": st.sampled_from(CARDS),
                           "status": st.sampled_from(["blocked", "lost", "gone"]), "reason": st.just("r")}),
    st.fixed_dictionaries({"name": st.just("card.replace"), "card": st.sampled_from(CARDS),
                           "new_number": st.booleans(), "reason": st.just("r")}),
    st.fixed_dictionaries({"name": st.just("card.set_limits"), "card": st.sampled_from(CARDS),
                           "channel": st.sampled_from(["atm", "pos", "x"]), "per_txn": AMOUNTS}),
    st.fixed_dictionaries({"name": st.just("credit.set_limit"), "customer": st.sampled_from(REFS),
                           "limit": AMOUNTS}),
    st.fixed_dictionaries({"name": st.just("credit.installments"), "account": st.sampled_from(ACCOUNTS),
                           "txn": st.sampled_from(["ref:p", "ref:q", "M00-1"]), "count": st.sampled_from([1, 2, 6])}),
    st.fixed_dictionaries({"name": st.just("credit.payment"), "account": st.sampled_from(ACCOUNTS),
                           "amount": AMOUNTS, "reference": st.sampled_from(["r", "s"])}),
    st.fixed_dictionaries({"name": st.just("account.close"), "account": st.sampled_from(ACCOUNTS)}),
    st.fixed_dictionaries({"name": st.just("customer.close"), "customer": st.sampled_from(REFS)}),
    st.fixed_dictionaries({"name": st.just("credit.bill_installments"),
                           "day": st.sampled_from(["2026-03-15", "2026-05-20", "2027-12-31", "bad"])}),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(COMMAND, min_size=1, max_size=12))
def test_any_command_sequence_fails_cleanly_or_records_all_it_changed(sequence: list[dict[str, Any]]) -> None:
    async def main() -> None:
        commands = await seeded_cell0()
        await commands.run("customer.open", {"name": "Grace", "external_ref": "DEMO-GRACE"})  # cell 0 of 2
        batches = [_everything(commands.state)]
        start = copy.deepcopy(commands.state)
        for step in sequence:
            args = {k: v for k, v in step.items() if k != "name"}
            before = copy.deepcopy(commands.state)
            try:
                _, effects = await commands.run(step["name"], args)
            except CommandError:
                assert commands.state == before
                continue
            batches.append(effects)
        assert rebuild(0, batches, start) == commands.state
    trio.run(main)


def _everything(s: CellState) -> Effects:
    """Every row of a state, as one batch of snapshots (the starting point of the replay)."""
    effects = Effects()
    for rows in (s.sequences, s.customers, s.credit_lines, s.accounts, s.cards, s.txns, s.plans):
        effects.add(*rows.values())
    return effects
