"""Issue 11 through a real cell process: the acquirer's reversal reaches the cell before the switch's stand-in
advice, the cell is killed with SIGKILL and restarted in between, and the advice that arrives afterwards leaves
nothing posted; the late original is declined.

The cell is started as the node's supervisor starts it (``python -m switch.cli.cell run``) and spoken to over its
own link (generic scheme, 2-byte length framing), one message at a time, as the switch would."""

from __future__ import annotations

import functools
import os
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trio

from processors.cell.config import CellsConfig
from processors.cell.section import cells_of
from processors.model import Account, EarlyReversal, Txn, TxnStatus
from processors.storage import ledger_check, load_rows, make_engine
from switch.exchange.reversal import REASON_TIMEOUT, build_reversal, build_stand_in_advice
from switch.model.message import Message
from tests.integration.cells_harness import cell_process, exchange, seed_cell, write_cells_config
from tests.integration.harness import purchase

pytestmark = pytest.mark.slow

DEPOSIT = 100_000
AMOUNT = 4_200


def variant(message: Message, mti: str) -> Message:
    copy = message.copy()
    copy.mti = mti
    return copy


def stored(cells: CellsConfig, cell: int) -> tuple[list[object], bool]:
    engine = make_engine(cells.url(cell))
    try:
        rows: list[object] = list(load_rows(engine, cell, datetime.now(UTC), 35))
        report = ledger_check(engine)
    finally:
        engine.dispose()
    return rows, report.ok


async def test_reversal_before_the_stand_in_advice_survives_a_kill_and_nothing_stays_posted(tmp_path: Path) -> None:
    cfg = write_cells_config(tmp_path, count=1)
    cells = cells_of(cfg.sections)
    assert cells is not None
    card = await trio.to_thread.run_sync(functools.partial(seed_cell, cells, 0, deposit=DEPOSIT))
    original = purchase(pan=card.pan, amount=AMOUNT, stan=4242, terminal="TERMERLY")
    original[32] = "00000000001"
    advice = build_stand_in_advice(original, "S00001", repeat=False)  # as the node queues it in its SAF
    reversal = build_reversal(original, REASON_TIMEOUT)  # the acquirer's, which names the original in DE 90
    reversal[11] = "004243"

    async with cell_process(cells, 0) as first:
        answer = await exchange(cells, 0, reversal)
        assert answer.mti == "0410" and answer[39] == "25"
        os.kill(first.pid, signal.SIGKILL)  # the remembered reversal was committed before its answer left
        await first.wait()
    assert first.returncode == -signal.SIGKILL

    async with cell_process(cells, 0):
        answer = await exchange(cells, 0, advice)
        assert answer.mti == "0230" and answer[39] == "00"  # an advice is accepted by its receiver
        answer = await exchange(cells, 0, original)
        assert answer.mti == "0210" and answer[39] == "05"  # reversed before it arrived
        answer = await exchange(cells, 0, variant(reversal, "0401"))
        assert answer.mti == "0410" and answer[39] == "00"  # the reversal has now been applied (to the advice)

    rows, ledger_ok = await trio.to_thread.run_sync(stored, cells, 0)
    assert ledger_ok
    account = next(row for row in rows if isinstance(row, Account) and row.id == card.account)
    assert account.ledger_balance == DEPOSIT and account.held == 0  # nothing stays posted or held
    txns = {(row.mti, row.status) for row in rows if isinstance(row, Txn) and row.stan in ("004242", "004243")}
    assert txns == {("0220", TxnStatus.REVERSED), ("0200", TxnStatus.DECLINED), ("0400", TxnStatus.APPROVED)}
    early = [row for row in rows if isinstance(row, EarlyReversal)]
    assert len(early) == 1 and early[0].applied_to is not None
