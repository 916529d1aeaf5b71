"""``python -m bench saf``: how fast the store-and-forward queue drains into a processor cell after an outage.

Set-up: a node with one processor cell as a real process (bench/cells.py's configuration, debit cards only,
fresh keys under the test LMK), its database the embedded SQLite default (``--url`` for PostgreSQL). Before the
timer starts, ``--advices`` stand-in advices (0220, as the node queues them when it stood in for a cell that was
down: :func:`switch.exchange.reversal.build_stand_in_advice`) are queued for the cell, each for its own purchase
of one of the seeded cards, and not yet due. Then they are all made due at once (``bulkhead saf retry``) and the
time until the last one is acknowledged is the drain time.

Checked after the run: every entry acknowledged with 00, and the cell holds exactly one approved Txn row per
advice with a balanced ledger (an advice posted twice, or not at all, fails the run). ``--window`` sets
``[saf] window`` (absent: the node's default). Only masked PANs are printed; the figures go to stdout and, unless
``--no-save``, as JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import trio

from bench.cells import cells_config, check_cells, generate_keys, seed_cards, write_config
from bench.codec import interpreter
from bench.ports import free_port
from bench.report import RESULTS
from bench.scenarios import BenchCard, purchase
from switch.config import load_config
from switch.exchange.reversal import build_stand_in_advice
from switch.model.message import Message
from switch.runtime.node import Node


@dataclass
class SafDrainReport:
    advices: int
    window: int | None  # None: the node's default
    database: str
    drain_s: float
    per_second: float
    acked: int
    approved_txns: int
    ledger_ok: bool
    interpreter: str

    def problems(self) -> list[str]:
        out = []
        if self.acked != self.advices:
            out.append(f"{self.acked} of {self.advices} entries acknowledged with 00")
        if self.approved_txns != self.advices:
            out.append(f"the cell holds {self.approved_txns} approved Txn rows for {self.advices} advices")
        if not self.ledger_ok:
            out.append("the cell's ledger check failed")
        return out


def _advices(cards: list[BenchCard], count: int) -> list[Message]:
    """``count`` stand-in advices, each for a purchase of its own (STAN, RRN, terminal), over ``cards``."""
    now = time.gmtime()
    out = []
    for n in range(count):
        original = purchase(f"SAF{n // 100_000:05d}", now, cards[n % len(cards)])
        original.fields[11] = f"{n % 1_000_000:06d}"
        original.fields[37] = f"{n:012d}"
        out.append(build_stand_in_advice(original, "S00001", repeat=False))
    return out


async def _drain(node_toml: Path, advices: list[Message]) -> tuple[float, int]:
    node = Node(load_config(node_toml))
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        with trio.fail_after(120):
            while not all(link.is_up() for link in node.outbound.values()):
                await trio.sleep(0.05)
        await node.saf_queue.enqueue([("cell-00", advice, f"bench-{n}") for n, advice in enumerate(advices)])
        start = time.perf_counter()
        await node.saf_retry(None)  # everything due now: the cell is "back"
        while await node.saf_pending():
            await trio.sleep(0.02)
        drain = time.perf_counter() - start
        items = await trio.to_thread.run_sync(lambda: node.saf.list_items(limit=len(advices) + 10))
        acked = sum(1 for i in items if i.status == "acked" and i.last_response_code == "00")
        node.stop()
    return drain, acked


def run(advices: int, cards: int, window: int | None, url: str | None) -> SafDrainReport:
    with tempfile.TemporaryDirectory(prefix="bulkhead-saf-") as tmp:
        folder = Path(tmp)
        keys = generate_keys()
        node_toml = write_config(folder, keys, count=1, port=free_port(), atm_port=free_port(), max_batch=500,
                                 max_wait_ms=0.5)
        text = node_toml.read_text()
        if url is not None:
            text = text.replace("[node]\n", f'[node]\ndatabase_url = "{url}"\n', 1)
        # Not due until the drain starts (saf retry makes them due); send timeout as the demo's.
        text += "\n[saf]\ninitial_delay_ms = 3600000\nsend_timeout_ms = 8000\npoll_interval_ms = 100\n"
        if window is not None:
            text += f"window = {window}\n"
        node_toml.write_text(text)
        cells = cells_config(node_toml)
        seeded = seed_cards(cells, keys, cards=cards, credit_share=0)
        drain, acked = trio.run(_drain, node_toml, _advices(seeded, advices))
        cell = check_cells(cells)["cell-00"]
    database = "postgresql" if url is not None and url.startswith("postgresql") else "sqlite"
    return SafDrainReport(advices, window, database, round(drain, 3),
                          round(advices / drain, 1), acked, int(cell["approved_txns"]), bool(cell["ledger_ok"]),
                          interpreter())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench saf", description=__doc__.splitlines()[0])
    parser.add_argument("--advices", type=int, default=2000, help="stand-in advices queued (2000)")
    parser.add_argument("--cards", type=int, default=20, help="funded debit cards they are spread over (20)")
    parser.add_argument("--window", type=int, help="[saf] window (default: the node's)")
    parser.add_argument("--url", help="the node's database (default: SQLite in the run's folder); PostgreSQL "
                                      "must be an empty database")
    parser.add_argument("--no-save", action="store_true", help="do not write JSON under bench/results/")
    args = parser.parse_args(argv)
    if args.advices < 1 or args.cards < 1 or (args.window is not None and args.window < 1):
        parser.error("advices, cards and window must be at least 1")
    report = run(args.advices, args.cards, args.window, args.url)
    print(report.interpreter)
    print(f"saf drain: {report.advices} advices to one cell, window {report.window or 'default'}, "
          f"{report.database}: {report.drain_s:.2f} s, {report.per_second:.0f}/s "
          f"({report.acked} acked 00, {report.approved_txns} approved Txn rows, ledger "
          f"{'ok' if report.ledger_ok else 'FAILED'})")
    for problem in report.problems():
        print(f"   PROBLEM: {problem}")
    if not args.no_save:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"saf-{time.strftime('%Y%m%d-%H%M%S')}.json"
        path.write_text(json.dumps(asdict(report), indent=2) + "\n")
        print(f"saved {path}")
    return 1 if report.problems() else 0
