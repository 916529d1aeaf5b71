"""Storage fed by the real lifecycle commands: every command's effects written in its own batch load back into
the state the commands left in memory, and the ledger they built passes the ledger check."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from processors.cardnumber import cell_for_external_ref
from processors.catalog_file import load_catalog
from processors.commands import CellCommands
from processors.state import CellState
from processors.storage import ledger_check, load_state, write_batch

PRODUCTS = Path(__file__).resolve().parents[2] / "conf" / "demo" / "products.toml"
NOW = datetime(2026, 5, 20, 12, 0, tzinfo=UTC)
CELLS = 4
CELL = 1


def _pan_hash(pan: str) -> str:
    return hashlib.sha256(b"test-only key" + pan.encode()).hexdigest()


async def test_command_effects_round_trip_and_keep_the_ledger_consistent(cell_engine: Engine) -> None:
    state = CellState(CELL)
    commands = CellCommands(state, load_catalog(PRODUCTS), cell_count=CELLS, hsm=None, pan_hash=_pan_hash,
                            seal=lambda data: b"sealed:" + data[::-1], clock=lambda: NOW)

    async def run(command: str, **args: Any) -> dict[str, Any]:
        result, effects = await commands.run(command, args)
        with cell_engine.begin() as connection:
            write_batch(connection, [effects])
        return result

    external_ref = next(f"CIF{n}" for n in range(1000) if cell_for_external_ref(f"CIF{n}", CELLS) == CELL)
    customer = (await run("customer.open", name="Ada Lovelace", external_ref=external_ref))["customer"]
    debit = (await run("account.open", customer=customer, kind="checking", product="debit-classic"))["account"]
    credit = (await run("account.open", customer=customer, kind="credit", product="credit-gold"))["account"]
    await run("account.deposit", account=debit, amount=100_000, reference="seed")
    await run("account.post", account=debit, amount=2_500, reference="groceries")
    await run("account.post", account=credit, amount=30_000, reference="flight")
    purchase = (await run("account.post", account=credit, amount=12_000, reference="tv"))["txn"]
    await run("credit.installments", account=credit, txn=purchase, count=3)
    await run("credit.bill_installments", day="2026-06-20")
    for account in (debit, credit):
        await run("card.issue", customer=customer, product="debit-classic" if account == debit else "credit-gold",
                  account=account)

    loaded = load_state(cell_engine, CELL, NOW, retention_days=35)
    for index in dataclasses.fields(CellState):  # every index, including any added later
        assert getattr(loaded, index.name) == getattr(state, index.name), index.name
    assert len(state.plans) == 1 and len(state.cards) == 2
    report = ledger_check(cell_engine)
    assert report.problems == []
    assert report.counts["installment_plans"] == 1 and report.counts["postings"] >= 5
