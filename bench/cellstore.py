"""Rows and decisions per second of a processor cell's commit path (:func:`processors.storage.write_batch`).

Run ``python -m bench.cellstore [--url URL] [--decisions N] [--batch B] [--profile]``. Decisions are real:
0200 debit purchases decided by :class:`processors.engine.CellEngine` (no HSM: no PIN, track or cryptogram in
the requests) on a cell of ``--cards`` funded cards, so each carries the effects a cell's writer stores (account,
usage, transaction, posting, two entries, sequence). They are then written ``--batch`` decisions per transaction,
as the group-commit writer does, into a fresh database (a temporary SQLite file unless ``--url`` names one; the
cell tables of an existing database are emptied first). Printed: decisions and rows per second, and the
writer's CPU per decision (on SQLite the database engine's own work is part of it; on PostgreSQL the server's
is not). Figures only: nothing is asserted (they depend on the machine and its load).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import hmac
import pstats
import tempfile
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from processors.catalog import Bank, Catalog, KeySet, Limit, Product
from processors.engine import CellEngine, Decision
from processors.ledger import GL_CASH, make_posting
from processors.model import Account, Card, CardStatus, Customer, Effects, ProductKind
from processors.state import CellState
from processors.storage import TABLES, make_engine, sqlite_url, upgrade, write_batch
from switch.model.message import Message

BIN = "476173"
OWN_ACQUIRER = "00000000001"
CATALOG = Catalog(
    Bank(country="840", own_acquirers=frozenset({OWN_ACQUIRER}), hold_days=7, pin_tries=3),
    {"debit": Product(code="debit", kind=ProductKind.DEBIT, bins=(BIN,), currency="USD", keys="bench",
                      limits={"pos": Limit(per_txn=200_000, daily_amount=10**12, daily_count=10**9)})},
    # Never used: the requests need no HSM check. Placeholders, not key material.
    {"bench": KeySet(name="bench", zpk="U0", pvk="U0", cvk="U0", imk_ac="U0")},
)


def pan_hash(pan: str) -> str:
    """The benchmark's PAN hash (an HMAC under a fixed benchmark key, as a cell's data key would give)."""
    return hmac.new(b"bench-data-key", pan.encode(), hashlib.sha256).hexdigest()


def _pan(n: int) -> str:
    return f"{BIN}01{n:07d}0"  # BIN + cell 01 + sequence; the Luhn digit does not matter to the engine


def cell_state(cards: int) -> CellState:
    """Cell 01 with ``cards`` customers, each with a funded checking account and an active debit card."""
    state = CellState(1)
    opened = datetime(2025, 1, 1, tzinfo=UTC)
    for n in range(cards):
        customer = Customer(f"01{n:08d}", 1, f"Customer {n}", f"CIF-{n}", created_at=opened)
        account = Account(f"01{n + 10**7:08d}", customer.id, "checking", "USD", "debit", ledger_balance=10**12,
                          opened_at=opened)
        pan = _pan(n)
        card = Card(f"K01{n:08d}", pan_hash(pan), pan[-4:], BIN, b"sealed", customer.id, "debit", account.id,
                    status=CardStatus.ACTIVE, expiry="2912", issued_at=opened)
        for row in (customer, account, card):
            state.put(row)
    return state


def seed_effects(state: CellState) -> Effects:
    """The rows of :func:`cell_state` to write into an empty cell database: customers, accounts and cards, and
    for each funded account the opening posting that makes its ``ledger_balance`` the sum of its entries
    (cash taken in, GL:CASH), so :func:`processors.storage.ledger_check` holds from the start."""
    effects = Effects()
    for rows in (state.customers, state.accounts, state.cards):
        effects.add(*rows.values())
    opened = datetime(2025, 1, 1, tzinfo=UTC)
    for account in state.accounts.values():
        if account.ledger_balance:
            effects.add(make_posting(f"P01-OPEN-{account.id}", None, opened, "opening balance", account.currency,
                                     [(account.id, account.ledger_balance), (GL_CASH, -account.ledger_balance)]))
    return effects


def purchase(n: int, cards: int) -> Message:
    """The ``n``-th benchmark purchase (0200, e-commerce entry, no PIN, track or chip data: no HSM check) on
    card ``n % cards``; its duplicate key (STAN ``n % 10**6``, terminal ``n // 10**6``) is unique for every n."""
    return Message("0200", {
        2: _pan(n % cards), 3: "000000", 4: f"{100 + n % 50:012d}", 7: "0615120000", 11: f"{n % 1_000_000:06d}",
        12: "120000", 13: "0615", 18: "5411", 22: "901", 25: "00", 32: OWN_ACQUIRER, 37: f"{n:012d}",
        41: f"T{n // 1_000_000:07d}", 49: "840",
    })


def _run(coroutine: Coroutine[Any, Any, Decision]) -> Decision:
    """Drive a decision that never suspends (no HSM call) without an event loop."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("the decision needed the HSM")


def decisions(count: int, cards: int) -> list[Effects]:
    """The effects of ``count`` approved purchases spread over ``cards`` cards."""
    engine = CellEngine(cell_state(cards), CATALOG, hsm=None, pan_hash=pan_hash, clock=lambda: datetime.now(UTC))
    result = []
    for n in range(count):
        decision = _run(engine.handle(purchase(n, cards)))
        if decision.response is None or decision.response[39] != "00":
            raise RuntimeError("a benchmark purchase was declined")
        result.append(decision.effects)
    return result


def measure(url: str, count: int, batch: int, cards: int, profile: bool) -> str:
    """Write ``count`` decisions' effects ``batch`` per transaction; a one-line report."""
    upgrade(url)
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            for table in TABLES.values():
                connection.execute(table.delete())
        effects = decisions(count + batch, cards)
        with engine.begin() as connection:  # warm-up: connection, statements, the first pages
            write_batch(connection, effects[:batch])
        measured = effects[batch:]
        rows = sum(len(e.rows) for e in measured)
        profiler = cProfile.Profile() if profile else None
        wall, cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        for start in range(0, count, batch):
            with engine.begin() as connection:
                write_batch(connection, measured[start:start + batch])
        if profiler:
            profiler.disable()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if profiler:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
        return (f"{engine.dialect.name}: {count / wall:,.0f} decisions/s, {rows / wall:,.0f} rows/s "
                f"({rows / count:.1f} rows per decision, {batch} decisions per transaction); "
                f"{cpu / count * 1e6:.1f} us CPU per decision in this process")
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cellstore", description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--decisions", type=int, default=20_000, help="decisions written (default 20000)")
    parser.add_argument("--batch", type=int, default=200, help="decisions per transaction (default 200)")
    parser.add_argument("--cards", type=int, default=2_000, help="cards the purchases spread over (default 2000)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the writes")
    args = parser.parse_args(argv)
    if args.decisions < 1 or args.batch < 1 or args.cards < 1:
        parser.error("decisions, batch and cards must be at least 1")
    if args.url:
        print(measure(args.url, args.decisions, args.batch, args.cards, args.profile))
        return
    with tempfile.TemporaryDirectory(prefix="bench-cellstore-") as folder:
        url = sqlite_url(Path(folder) / "cell.db")
        print(measure(url, args.decisions, args.batch, args.cards, args.profile))


if __name__ == "__main__":
    main()
