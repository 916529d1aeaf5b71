"""``python -m bench cell``: one processor cell's approvals per second and CPU per decision, and its durability.

The cell is real and runs in this process: :class:`processors.cell.host.CellHost` with its group-commit writer
thread, a :class:`processors.engine.CellEngine` without HSM (the purchases carry no PIN, track or chip data) and
the state loaded from its own database after seeding, with the garbage-collector tuning a cell process applies
after loading (:func:`processors.cell.host.tune_gc`, undone afterwards). The load comes from
:mod:`bench.cellclient` in a subprocess: ``--decisions`` 0200 purchases over ``--connections`` connections with
``--inflight`` outstanding on each, spread over ``--cards`` funded debit cards (:mod:`bench.cellstore`).

Measured: approvals per second and latency (client side, first send to last answer); the CPU of this process
over the run per decision (time.process_time: every thread, so the event loop and the writer together) and of
the writer thread alone (/proc/self/task/<tid>/stat, clock ticks: coarse on short runs); the writer's batches.
The client builds its requests before sending the first one; the cell is idle meanwhile, so that time adds
nothing to its CPU. There is no warm-up: first-use costs (statement compilation, the first pages) are in.

Checked afterwards, on the cell's database: an approved Txn row for every approval the client received (a
cell answers only after the batch holding the decision committed) and :func:`processors.storage.ledger_check`.

Database: a temporary SQLite file by default. ``--url`` with a PostgreSQL URL: a schema
``bench_cell_<pid>_<random>`` is created in that database, used through the search path, and dropped
afterwards (nothing else in the database is touched; on PostgreSQL the server's CPU is not in the figures).
``--url`` with a SQLite URL: that file, which must not exist yet, is created and kept.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trio
from sqlalchemy import Connection, Engine, make_url, text
from sqlalchemy.pool import NullPool

from bench.cellstore import CATALOG, cell_state, pan_hash, seed_effects
from bench.codec import interpreter
from bench.procs import REPO, cpu_seconds
from processors.cell.config import CellsConfig
from processors.cell.host import CellHost, tune_gc
from processors.engine import CellEngine
from processors.model import Effects
from processors.storage import ledger_check, load_state, make_engine, sqlite_url, upgrade, write_batch
from switch.infra.db.engine import postgresql_schema_url

CELL = 1  # bench.cellstore seeds cell 01
APPROVED = "00"
CLIENT_TIMEOUT_S = 600.0


class CellBenchError(Exception):
    """The cell benchmark could not run (the client failed, the cell stopped)."""


@dataclass(frozen=True)
class CellOptions:
    decisions: int = 40_000
    connections: int = 8
    inflight: int = 32
    cards: int = 250
    url: str | None = None  # None: a temporary SQLite file


@dataclass
class CellReport:
    """What ``python -m bench cell`` measured and checked (saved with the scenarios' reports)."""

    scenario: str
    description: str
    interpreter: str
    machine: dict[str, Any]
    parameters: dict[str, Any]
    started_at: str
    database: str = ""  # dialect name
    tps: float = 0.0  # approvals per second
    answered: int = 0
    codes: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    # CPU per decision answered, microseconds: "cell" (this process, every thread), "writer" (its thread alone),
    # "loop" (the difference: event loop, engine, codec).
    cpu_us_per_decision: dict[str, float] = field(default_factory=dict)
    batches: int = 0
    largest_batch: int = 0
    rows: int = 0
    lost: int = 0  # unanswered (connection closed), unmatched or unreadable answers, as the client saw them
    approved_txns: int = 0  # approved 0200 Txn rows committed in the cell's database
    ledger_ok: bool = False
    ledger_problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def approvals(self) -> int:
        return self.codes.get(APPROVED, 0)

    def problems(self) -> list[str]:
        """What makes the figures suspect (empty when the run is clean)."""
        out = []
        others = {code: n for code, n in self.codes.items() if code != APPROVED}
        if others:
            out.append("codes other than 00: " + ", ".join(f"{c}: {n}" for c, n in others.items()))
        if self.answered < self.parameters["decisions"] or self.lost:
            out.append(f"{self.answered} answered of {self.parameters['decisions']}, {self.lost} lost")
        if self.approved_txns != self.approvals:
            out.append(f"{self.approved_txns} approved Txn rows committed for {self.approvals} approvals")
        if not self.ledger_ok:
            out.append("ledger check failed: " + "; ".join(self.ledger_problems))
        return out


class _TracedWrite:
    """The writer's batch function, remembering the native id of the thread that calls it (the writer's)."""

    def __init__(self) -> None:
        self.thread: int | None = None

    def __call__(self, connection: Connection, batches: Sequence[Effects]) -> None:
        self.thread = threading.get_native_id()
        write_batch(connection, batches)


@contextmanager
def _database(url: str | None) -> Iterator[str]:
    """The URL the cell uses (see the module docstring for the three cases)."""
    if url is None:
        with tempfile.TemporaryDirectory(prefix="bulkhead-bench-cell-") as folder:
            yield sqlite_url(Path(folder) / "cell.db")
        return
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        database = make_url(url).database
        if not database or database == ":memory:" or Path(database).exists():
            raise CellBenchError(f"{url}: a SQLite URL must name a file that does not exist yet")
        yield url
        return
    if backend != "postgresql":
        raise CellBenchError(f"{url}: SQLite or PostgreSQL only")
    schema = f"bench_cell_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = make_engine(url, poolclass=NullPool)
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        try:
            yield postgresql_schema_url(url, schema)
        finally:
            with admin.begin() as connection:
                connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        admin.dispose()


@contextmanager
def _cell_gc() -> Iterator[None]:
    """A cell process's GC tuning for the time of the run, then this process's settings again (objects frozen
    before the run, if any, stay frozen: then the cell's do too, as unfreezing would release both)."""
    threshold, frozen = gc.get_threshold(), gc.get_freeze_count()
    tune_gc()
    try:
        yield
    finally:
        if not frozen:
            gc.unfreeze()
        gc.set_threshold(*threshold)


def run_cell_bench(options: CellOptions) -> CellReport:
    """Seed a cell, serve it here, load it from :mod:`bench.cellclient`, check its database; the figures."""
    if min(options.decisions, options.connections, options.inflight, options.cards) < 1:
        raise CellBenchError("decisions, connections, inflight and cards must be at least 1")
    parameters = {k: v for k, v in asdict(options).items() if k != "url"}
    report = CellReport(
        scenario="cell", description="one processor cell in this process, pipelined 0200 purchases",
        interpreter=interpreter(),
        machine={"cpus": os.cpu_count(), "platform": platform.platform(), "processor": platform.machine()},
        parameters=parameters, started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    with _database(options.url) as url:
        upgrade(url)
        db = make_engine(url)
        try:
            report.database = db.dialect.name
            with db.begin() as connection:
                write_batch(connection, [seed_effects(cell_state(options.cards))])
            # As run_cell: load the state from the database, then tune the GC (the loaded state is frozen).
            state = load_state(db, CELL, datetime.now(UTC), CATALOG.bank.txn_retention_days)
            with _cell_gc():
                engine = CellEngine(state, CATALOG, hsm=None, pan_hash=pan_hash)
                write = _TracedWrite()
                host = CellHost(CELL, engine, db, max_batch=CellsConfig.max_batch,
                                max_wait=CellsConfig.max_wait_ms / 1000, write=write)
                trio.run(_drive, host, write, options, report)
            _check(db, report)
        finally:
            db.dispose()
    return report


async def _drive(host: CellHost, write: _TracedWrite, options: CellOptions, report: CellReport) -> None:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(host.serve)
        cpu = time.process_time()
        try:
            done = await trio.run_process(
                [sys.executable, "-m", "bench.cellclient", str(port), "--decisions", str(options.decisions),
                 "--cards", str(options.cards), "--connections", str(options.connections),
                 "--inflight", str(options.inflight)],
                cwd=REPO, capture_stdout=True, capture_stderr=True, check=False)
            cpu = time.process_time() - cpu
            # The writer thread is alive until the host stops; before its first batch it had done nothing.
            writer = (cpu_seconds(os.getpid(), write.thread) if write.thread is not None else None) or 0.0
        finally:
            host.stop()
    if done.returncode:
        raise CellBenchError(f"the load client exited with status {done.returncode}: "
                             f"{done.stderr.decode(errors='replace')[-2000:]}")
    client = json.loads(done.stdout)
    report.answered = client["answered"]
    report.codes = dict(sorted(client["codes"].items()))
    report.latency_ms = client["latency_ms"]
    report.lost = client["lost"] + client["unmatched"] + client["unreadable"]
    report.tps = report.approvals / client["seconds"] if client["seconds"] > 0 else 0.0
    per = 1e6 / max(report.answered, 1)
    report.cpu_us_per_decision = {"cell": cpu * per, "writer": writer * per, "loop": (cpu - writer) * per}
    report.batches = host.writer.batches
    report.largest_batch = host.writer.largest_batch
    report.rows = host.writer.rows


def _check(db: Engine, report: CellReport) -> None:
    ledger = ledger_check(db)
    report.ledger_ok, report.ledger_problems = ledger.ok, ledger.problems[:5]
    with db.connect() as connection:
        report.approved_txns = int(connection.execute(text(
            "SELECT count(*) FROM cell_txns WHERE status = 'approved' AND mti = '0200'")).scalar_one())


def format_row(report: CellReport, header: bool = True) -> str:
    """One table line (under a header line unless ``header`` is false), then one per problem."""
    cpu = report.cpu_us_per_decision
    codes = " ".join(f"{c}:{n}" for c, n in report.codes.items()) or "-"
    lines = []
    if header:
        head = (f"{'scenario':<15} {'appr/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'cell µs':>8} {'writer µs':>9} "
                f"{'batches':>8} {'largest':>7}  codes | db, Txn rows, ledger")
        lines += [head, "-" * len(head)]
    p = report.parameters
    lines.append(
        f"{report.scenario:<15} {report.tps:>9,.0f} {report.latency_ms.get('p50', 0.0):>8.2f} "
        f"{report.latency_ms.get('p99', 0.0):>8.2f} {cpu.get('cell', 0.0):>8.1f} {cpu.get('writer', 0.0):>9.1f} "
        f"{report.batches:>8} {report.largest_batch:>7}  {codes} | {report.database}, {report.approved_txns} "
        f"approved rows, ledger {'ok' if report.ledger_ok else 'FAILED'} "
        f"({p['decisions']} decisions, {p['connections']}x{p['inflight']} in flight, {p['cards']} cards)")
    lines += [f"{'':<15} !! {problem}" for problem in report.problems()]
    return "\n".join(lines)
