"""The cell's housekeeping forgets remembered early reversals past their retention and deletes their rows
(processors.early: the table stays bounded), on the database of every backend ``db_url`` gives."""

from __future__ import annotations

from dataclasses import dataclass, field

import trio
import trio.testing
from sqlalchemy import Engine, func, select

from processors.cell import host as host_module
from processors.model import EarlyReversal, Effects
from processors.storage import TABLES, write_batch
from tests.processors.engine_kit import drive, make_world, request, reversal_of


@dataclass
class HousekeepingHost:
    """What ``_housekeeping`` uses of a CellHost: its database, cell number, commit and stop flag."""

    db: Engine
    rounds: int  # housekeeping rounds to let run before reporting "stopping"
    cell: int = 1
    committed: list[Effects] = field(default_factory=list)

    @property
    def stopping(self) -> bool:
        self.rounds -= 1
        return self.rounds < 0

    async def commit(self, effects: Effects) -> None:
        self.committed.append(effects)


def stored(db: Engine) -> int:
    with db.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(TABLES[EarlyReversal])).scalar_one())


def test_housekeeping_purges_expired_early_reversals(cell_engine: Engine) -> None:
    world = make_world()
    for _ in range(2):
        decision = drive(world.engine.handle(reversal_of(request("0200", "000000", 1_000))))
        with cell_engine.begin() as connection:
            write_batch(connection, [decision.effects])
    assert stored(cell_engine) == 2 and len(world.state.early_reversals) == 2

    async def run(rounds: int) -> None:
        host = HousekeepingHost(cell_engine, rounds)
        await host_module._housekeeping(host, world.engine)  # type: ignore[arg-type]

    # Within the retention: kept in memory and in the database.
    trio.run(run, 1, clock=trio.testing.MockClock(autojump_threshold=0))
    assert stored(cell_engine) == 2 and len(world.state.early_reversals) == 2
    world.clock.advance(days=world.engine.bank.reversal_retention_days, seconds=1)
    trio.run(run, 1, clock=trio.testing.MockClock(autojump_threshold=0))
    assert stored(cell_engine) == 0 and world.state.early_reversals == {}
