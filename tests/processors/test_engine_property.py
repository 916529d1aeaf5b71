"""Property: any sequence of purchases, withdrawals, deposits, pre-authorizations, completions and (partial)
reversals keeps every posting balanced, and the Effects alone rebuild balances that match the postings."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.model import Account, CreditLine, Entry, Hold, HoldStatus
from switch.model.message import Message
from tests.processors.engine_kit import (
    CREDIT_PAN_1,
    CREDIT_PAN_2,
    DEBIT_PAN,
    FOREIGN_ACQUIRER,
    OTHER_PAN,
    atm,
    de90,
    make_world,
    request,
    reversal_of,
)

PANS = [DEBIT_PAN, OTHER_PAN, CREDIT_PAN_1, CREDIT_PAN_2]
amounts = st.integers(min_value=1, max_value=60_000)

operation = st.one_of(
    st.tuples(st.just("deposit"), st.sampled_from(PANS[:2]), amounts),
    st.tuples(st.just("purchase"), st.sampled_from(PANS), amounts),
    st.tuples(st.just("withdrawal"), st.sampled_from(PANS), amounts),
    st.tuples(st.just("refund"), st.sampled_from(PANS), amounts),
    st.tuples(st.just("preauth"), st.sampled_from(PANS), amounts),
    st.tuples(st.just("complete"), st.integers(min_value=0, max_value=50), amounts),
    st.tuples(st.just("reverse"), st.integers(min_value=0, max_value=50), st.integers(0, 60_000)),
    st.tuples(st.just("advice"), st.sampled_from(PANS), amounts),
    st.tuples(st.just("days"), st.just(""), st.integers(min_value=1, max_value=9)),
)


def _build(kind: str, target: Any, amount: int, sent: list[Message], preauths: list[Message]) -> Message | None:
    if kind == "deposit":
        return atm("210000", amount, pan=target)
    if kind == "purchase":
        return request("0200", "000000", amount, pan=target)
    if kind == "withdrawal":
        return atm("010000", amount, pan=target, f32=FOREIGN_ACQUIRER)
    if kind == "refund":
        return request("0200", "200000", amount, pan=target)
    if kind == "preauth":
        msg = request("0100", "000000", amount, pan=target)
        preauths.append(msg)
        return msg
    if kind == "advice":
        return request("0120", "000000", amount, pan=target)
    if kind == "complete" and preauths:
        auth = preauths[target % len(preauths)]
        return request("0220", "000000", amount, pan=str(auth[2]), f90=de90(auth))
    if kind == "reverse" and sent:
        original = sent[target % len(sent)]
        return reversal_of(original, replacement=amount if amount % 3 else None)
    return None


@settings(max_examples=150, deadline=None)
@given(st.lists(operation, max_size=40))
def test_postings_balance_and_effects_rebuild_balances(ops: list[tuple[str, Any, int]]) -> None:
    world = make_world(seed=False)
    sent: list[Message] = []
    preauths: list[Message] = []
    latest: dict[tuple[type, str], dict[str, Any]] = {}
    entries: list[dict[str, Any]] = []
    for kind, target, amount in ops:
        if kind == "days":
            world.clock.advance(days=amount)
            continue
        msg = _build(kind, target, amount, sent, preauths)
        if msg is None:
            continue
        decision = world.handle(msg)  # World.record asserts every posting so far balances
        assert decision.response is not None
        if msg.mti[1] != "4":
            sent.append(msg)
        for row_type, row in decision.effects.rows:
            if row_type is Entry:
                entries.append(row)
            else:
                key = ",".join(str(row[name]) for name in row_type.KEY)
                latest[(row_type, key)] = row
    expired = world.engine.expire_holds()
    for row_type, row in expired.rows:
        latest[(row_type, ",".join(str(row[name]) for name in row_type.KEY))] = row

    sums: dict[str, int] = defaultdict(int)
    for entry in entries:
        sums[entry["account"]] += entry["amount"]
    open_holds: dict[str, int] = defaultdict(int)
    for (row_type, _), row in latest.items():
        if row_type is Hold and row["status"] == HoldStatus.OPEN:
            open_holds[row["account_id"]] += row["amount"]
    for account in world.state.accounts.values():
        snap = latest.get((Account, account.id))
        stored_balance = snap["ledger_balance"] if snap else 0
        stored_held = snap["held"] if snap else 0
        assert stored_balance == account.ledger_balance == sums.get(account.id, 0)
        assert stored_held == account.held == open_holds.get(account.id, 0)
    for line in world.state.credit_lines.values():
        members = [a for a in world.state.accounts.values() if a.credit_line_id == line.id]
        assert line.owed == -sum(a.ledger_balance for a in members)  # the storage ledger check's rule
        assert line.held == sum(open_holds.get(a.id, 0) for a in members)
        assert 0 <= line.cash_owed <= max(line.owed, 0)
        snap = latest.get((CreditLine, line.id))
        assert snap is None or (snap["owed"], snap["held"]) == (line.owed, line.held)
    assert sum(sums.values()) == 0
