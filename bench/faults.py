"""``python -m bench faults``: the node and its cells killed at random moments under load, in rounds, then the
money checked (issue 11, item 4).

Set-up: a node with processor cells as real processes (bench/cells.py's configuration, debit cards only, fresh
keys under the test LMK), and every cell destination covered by a stand-in policy, so that stand-in advices, SAF
and reversals all take part. The acquirer is a set of clients, each with its own terminal, doing what a real
acquirer does:

- it sends 0200 purchases one at a time and waits ``--answer-timeout`` seconds for each answer;
- an answer in time is final (00 approved, anything else declined);
- a request not answered in time (a silent node, or a connection lost with the node) is reversed: 0400 with
  DE 90 naming the original, then the repeat 0401 until some answer comes, reconnecting as needed. A late
  answer does not change that decision.

Each round, after a random wait, the node is killed (SIGKILL; restarted at once), or one cell (SIGKILL; the
node's supervisor restarts it), or a cell and then the node a moment later, while it stands in for the cell.
After the last round the load stops, the outstanding reversals are answered, the node's store-and-forward queue
drains, and the node is stopped in order. Then each card's account is compared with what the acquirer saw:

- balance == deposit - the purchases the acquirer saw approved and did not reverse. More taken means something
  declined or reversed stayed posted; less means an approval the acquirer saw was lost;
- nothing is still held, and the ledger check passes in every cell;
- every node start came up (the acquirer port answered), and no log line is critical.

Any difference is a violation, and the run fails. The short form runs in the test suite
(tests/integration/test_faults.py). The long form is ``make faults`` (``python -m bench faults --rounds 20``).
Only masked PANs (first 6, last 4) are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import trio

from bench.cells import DEBIT_BIN, DEPOSIT, cells_config, generate_keys, seed_cards, write_config
from bench.ports import free_port
from bench.scenarios import BenchCard
from processors.cell.config import CellsConfig
from schemes.generic import SCHEME
from switch.model.message import Message
from switch.wire.framing import LengthFraming

NODE = [sys.executable, "-c", "from switch.cli.main import main; main()"]
STAND_IN = '\nstand_in = { max_amount = 5000, mti = ["0200"], processing_codes = ["00"], currency = "840" }\n'
AMOUNTS = (100, 4000)  # minor units, within the stand-in policy's max_amount


@dataclass
class FaultOptions:
    rounds: int = 10
    round_s: float = 3.0  # the longest wait before a round's kill
    cells: int = 2
    cards: int = 8
    clients: int = 8
    answer_timeout_s: float = 3.0  # the acquirer's timeout: longer than the node's cell timeout (stand-in answers)
    # The share of rounds that kill the node alone, and again the share that kill a cell and then the node while it
    # stands in; the other rounds kill a cell.
    node_kill_share: float = 0.3
    seed: int | None = None
    keep: bool = False
    kinds: tuple[str, ...] = ()  # the rounds' kinds in turn ("node", "cell-node", "cell"); empty: drawn at random


@dataclass
class Sale:
    """One purchase as the acquirer saw it."""

    card: int  # index into the seeded cards
    stan: str
    terminal: str
    transmitted: str  # DE 7
    amount: int
    outcome: str = "sent"  # approved | declined | reversed


@dataclass
class FaultReport:
    rounds: int = 0
    node_kills: int = 0
    cell_kills: int = 0
    node_starts: int = 0
    requests: int = 0
    approved: int = 0
    declined: int = 0
    reversed: int = 0
    reversal_attempts: int = 0
    seconds: float = 0.0
    violations: list[str] = field(default_factory=list)
    folder: str = ""

    def format(self) -> str:
        lines = [
            f"faults: {self.rounds} rounds ({self.node_kills} node kills, {self.cell_kills} cell kills, "
            f"{self.node_starts} node starts) in {self.seconds:.0f} s",
            f"  requests {self.requests}: approved {self.approved}, declined {self.declined}, reversed "
            f"{self.reversed} (reversal messages sent {self.reversal_attempts})",
            f"  violations: {len(self.violations)}",
        ]
        lines += [f"    {v}" for v in self.violations]
        if self.folder:
            lines.append(f"  kept: {self.folder}")
        return "\n".join(lines)


def _masked(pan: str) -> str:
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


class _Acquirer:
    """One client: its own connection and terminal, one purchase at a time, reversing what it did not see
    answered in time."""

    def __init__(self, index: int, port: int, cards: list[BenchCard], card_ids: list[int], options: FaultOptions,
                 report: FaultReport, sales: list[Sale], rng: random.Random) -> None:
        self.port = port
        self.cards = cards
        self.card_ids = card_ids
        self.options = options
        self.report = report
        self.sales = sales
        self.rng = rng
        self.terminal = f"FLT{index:05d}"
        # STANs unique across the clients: one acquirer (no DE 32), and a cell matches by STAN, DE 7 and acquirer.
        self.stans = iter(range(index * 100_000 + 1, (index + 1) * 100_000))
        self.stream: trio.SocketStream | None = None
        self.framer = LengthFraming("binary2").framer()

    async def run(self, stop: trio.Event) -> None:
        while not stop.is_set():
            card = self.rng.choice(self.card_ids)
            sale = Sale(card, f"{next(self.stans):06d}", self.terminal, datetime.now(UTC).strftime("%m%d%H%M%S"),
                        self.rng.randint(*AMOUNTS))
            self.sales.append(sale)
            self.report.requests += 1
            answer = await self._call(self._purchase(sale), self.options.answer_timeout_s)
            if answer is None:
                await self._reverse(sale)
            elif answer.get(39) == "00":
                sale.outcome = "approved"
            else:
                sale.outcome = "declined"

    def _purchase(self, sale: Sale) -> Message:
        pan = self.cards[sale.card].pan
        return Message("0200", {
            2: pan, 3: "000000", 4: f"{sale.amount:012d}", 7: sale.transmitted, 11: sale.stan, 12: "101010",
            13: sale.transmitted[:4], 22: "051", 37: f"{int(sale.stan):012d}", 41: sale.terminal,
            42: "FAULTMERCHANT01", 49: "840",
        })

    async def _reverse(self, sale: Sale) -> None:
        """0400, then 0401 until any answer: an acquirer does not give up on a reversal."""
        request = self._purchase(sale)
        request.mti = "0400"
        request.fields[90] = f"0200{sale.stan}{sale.transmitted}{'0' * 22}"
        while True:
            self.report.reversal_attempts += 1
            if await self._call(request, self.options.answer_timeout_s) is not None:
                sale.outcome = "reversed"
                return
            request.mti = "0401"
            await trio.sleep(0.2)

    async def _call(self, request: Message, timeout: float) -> Message | None:
        """Send and wait for the answer with the same STAN and terminal; None when none came in time (the
        connection is dropped then: what it still carries is late)."""
        key = (request.get(11), request.get(41))
        with trio.move_on_after(timeout):
            try:
                stream = await self._connected()
                await stream.send_all(self.framer.encode(SCHEME.encode(request)))
                while True:
                    data = await stream.receive_some(65536)
                    if not data:
                        raise OSError("closed by the node")
                    self.framer.receive_data(bytes(data))
                    while (frame := self.framer.next_frame()) is not None:
                        if frame.keepalive:
                            continue
                        answer = SCHEME.decode(frame.body)
                        if (answer.get(11), answer.get(41)) == key and answer.is_response:
                            return answer
            except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
                pass
        await self._drop()
        return None

    async def _connected(self) -> trio.SocketStream:
        while self.stream is None:
            try:
                self.stream = await trio.open_tcp_stream("127.0.0.1", self.port)
                self.framer = LengthFraming("binary2").framer()
            except OSError:
                await trio.sleep(0.1)
        return self.stream

    async def _drop(self) -> None:
        if self.stream is not None:
            stream, self.stream = self.stream, None
            with trio.move_on_after(1):
                await stream.aclose()


class _Node:
    """The node as a process: started, killed, stopped; its log lines kept per start."""

    def __init__(self, conf: Path, folder: Path, report: FaultReport) -> None:
        self.conf = conf
        self.folder = folder
        self.report = report
        self.proc: subprocess.Popen[bytes] | None = None
        self.logs: list[Path] = []
        self.killed: set[int] = set()

    def start(self) -> None:
        log = self.folder / f"node-{len(self.logs):03d}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            self.proc = subprocess.Popen([*NODE, "run", "--conf", str(self.conf)], cwd=self.folder,
                                         stdout=subprocess.DEVNULL, stderr=out, start_new_session=True)
        self.report.node_starts += 1

    async def wait_up(self, port: int, seconds: float = 60) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                stream = await trio.open_tcp_stream("127.0.0.1", port)
                await stream.aclose()
                return True
            except OSError:
                await trio.sleep(0.1)
        return False

    def kill(self) -> None:
        assert self.proc is not None
        self.killed.add(self.proc.pid)
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self, seconds: float = 60) -> int | None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(seconds)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def critical_lines(self) -> list[str]:
        out = []
        for log in self.logs:
            for line in log.read_text(errors="replace").splitlines():
                if line.startswith("{") and '"level": "critical"' in line:
                    out.append(f"{log.name}: {json.loads(line).get('msg', '')}")
        return out


async def _kill_cell(cells: CellsConfig, cell: int) -> bool:
    """SIGKILL cell ``cell`` once it runs (holds its lock: a cell the node is still starting is waited for)."""
    from switch.infra.lockfile import holder, is_held

    lock = cells.lock_file(cell)
    with trio.move_on_after(20):
        while not is_held(lock) or holder(lock).pid is None:
            await trio.sleep(0.05)
    pid = holder(lock).pid if is_held(lock) else None
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


async def _drive(options: FaultOptions, folder: Path, conf: Path, cells: CellsConfig, cards: list[BenchCard],
                 port: int, report: FaultReport, sales: list[Sale]) -> None:
    rng = random.Random(options.seed)
    node = _Node(conf, folder, report)
    node.start()
    if not await node.wait_up(port):
        report.violations.append("the node did not come up at its first start")
        return
    stop = trio.Event()
    ids = list(range(len(cards)))
    async with trio.open_nursery() as load:
        for k in range(options.clients):
            client = _Acquirer(k, port, cards, ids, options, report, sales, random.Random(rng.random()))
            load.start_soon(client.run, stop)
        for _ in range(options.rounds):
            await trio.sleep(rng.uniform(0.3, options.round_s))
            report.rounds += 1
            kind = _kind(options, report.rounds, rng)
            if kind == "cell-node":
                # A cell, then the node while it stands in for the cell: the stand-in answers and advices
                # in flight meet the acquirer's reversals after the restart (issue 11, item 1).
                if await _kill_cell(cells, rng.randrange(cells.count)):
                    report.cell_kills += 1
                await trio.sleep(rng.uniform(0.05, 0.4))
            if kind in ("node", "cell-node"):
                node.kill()
                report.node_kills += 1
                await trio.sleep(rng.uniform(0.0, 0.5))
                node.start()
                if not await node.wait_up(port):
                    report.violations.append(f"round {report.rounds}: the node did not come back after a kill "
                                             f"(exit code {node.proc.poll() if node.proc else None})")
                    stop.set()
                    break
            elif await _kill_cell(cells, rng.randrange(cells.count)):
                report.cell_kills += 1
        await trio.sleep(1.0)
        stop.set()  # the clients finish their purchase in flight and any reversal it needs
    if not await _saf_drained(conf):
        report.violations.append("the node's store-and-forward queue stopped draining (30 s without progress)")
    code = node.stop()
    if code != 0:
        report.violations.append(f"the node's orderly stop ended with exit code {code}")
    report.violations += [f"critical log line: {line}" for line in node.critical_lines()]


def _kind(options: FaultOptions, round_: int, rng: random.Random) -> str:
    if options.kinds:
        return options.kinds[(round_ - 1) % len(options.kinds)]
    draw = rng.random()
    return "node" if draw < options.node_kill_share else "cell-node" if draw < 2 * options.node_kill_share \
        else "cell"


async def _saf_drained(conf: Path, stall_s: float = 30) -> bool:
    """Wait until nothing in the node's store-and-forward queue is left to deliver (pending, or an exception an
    operator would have to settle), for as long as the queue keeps shrinking: a round that killed cells for
    long leaves thousands of stand-in advices, which take a while to drain. False when it stopped
    shrinking for ``stall_s``."""
    from sqlalchemy import text

    from switch.config import load_config
    from switch.infra.db.engine import make_engine

    engine = make_engine(load_config(conf).database_url)
    try:
        best, since = None, time.monotonic()
        while time.monotonic() - since < stall_s:
            with engine.connect() as connection:
                left = connection.execute(text(
                    "SELECT count(*) FROM saf_entries WHERE status IN ('pending', 'exception')")).scalar_one()
            if left == 0:
                return True
            if best is None or left < best:
                best, since = left, time.monotonic()
            await trio.sleep(0.25)
        return False
    finally:
        engine.dispose()


def _check(cells: CellsConfig, cards: list[BenchCard], sales: list[Sale], report: FaultReport) -> None:
    """Every card's account against what the acquirer saw, and the ledger of every cell."""
    from processors.cell.client import run_commands
    from processors.storage import ledger_check
    from switch.infra.db.engine import make_engine

    for sale in sales:
        if sale.outcome == "approved":
            report.approved += 1
        elif sale.outcome == "declined":
            report.declined += 1
        elif sale.outcome == "reversed":
            report.reversed += 1
        else:
            report.violations.append(f"purchase {sale.terminal}/{sale.stan}: left without an answer or reversal")
    for index, card in enumerate(cards):
        kept = sum(s.amount for s in sales if s.card == index and s.outcome == "approved")
        shown = run_commands(cells, card.cell, [("card.show", {"card": card.pan})])[0]
        account = run_commands(cells, card.cell, [("account.show", {"account": shown["account"]})])[0]
        taken = DEPOSIT - account["ledger_balance"]
        if taken != kept:
            why = ("more taken than the acquirer kept approved: something declined or reversed stayed posted"
                   if taken > kept else "less taken than the acquirer saw approved: an approval was lost")
            report.violations.append(f"card {_masked(card.pan)}: taken {taken}, approved and kept {kept}: {why}")
        if account["held"]:
            report.violations.append(f"card {_masked(card.pan)}: {account['held']} still held")
    for cell in range(cells.count):
        engine = make_engine(cells.url(cell))
        try:
            ledger = ledger_check(engine)
        finally:
            engine.dispose()
        if not ledger.ok:
            report.violations.append(f"cell {cell}: ledger check failed: {ledger.problems}")


def run_faults(options: FaultOptions) -> FaultReport:
    report = FaultReport()
    started = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="bulkhead-faults-"))
    port = free_port()  # fixed, not 0: the restarted node must come back where the acquirers reconnect
    keys = generate_keys()
    conf = write_config(folder, keys, count=options.cells, port=port, atm_port=free_port(), max_batch=64,
                        max_wait_ms=1.0)
    # Every cell destination may stand in, and answers in time for the acquirer: a killed cell's cards get
    # stand-in approvals (and advices queued) rather than only 91s.
    routes = folder / "routes.toml"
    routes.write_text(routes.read_text().replace('links = ["cell-', 'timeout_ms = 1000\nlinks = ["cell-')
                      .replace('"]\n\n[[routes]]', '"]' + STAND_IN + "\n[[routes]]"))
    cells = cells_config(conf)
    cards = [c for c in seed_cards(cells, keys, cards=options.cards, credit_share=0.0) if c.pan.startswith(DEBIT_BIN)]
    sales: list[Sale] = []
    try:
        trio.run(_drive, options, folder, conf, cells, cards, port, report, sales)
        _check(cells, cards, sales, report)
    finally:
        report.seconds = time.monotonic() - started
        if options.keep or report.violations:
            report.folder = str(folder)
        else:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench faults", description=__doc__.splitlines()[0])
    defaults = FaultOptions()
    parser.add_argument("--rounds", type=int, default=defaults.rounds)
    parser.add_argument("--round-seconds", type=float, default=defaults.round_s,
                        help="the longest wait before each round's kill")
    parser.add_argument("--cells", type=int, default=defaults.cells)
    parser.add_argument("--cards", type=int, default=defaults.cards)
    parser.add_argument("--clients", type=int, default=defaults.clients)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the run's folder (logs, databases)")
    args = parser.parse_args(argv)
    options = FaultOptions(rounds=args.rounds, round_s=args.round_seconds, cells=args.cells, cards=args.cards,
                           clients=args.clients, seed=args.seed, keep=args.keep)
    report = run_faults(options)
    print(report.format())
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
