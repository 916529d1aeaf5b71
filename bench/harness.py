"""Run one benchmark scenario end to end: configuration, processes, load, measurement, clean stop.

For a scenario (:mod:`bench.scenarios`) the harness
1. writes a benchmark configuration (node.toml, routes.toml, issuer rules) into a temporary folder, with
   the node's listeners on port 0 (it binds them; the harness reads the ports back from its ``status``), the
   issuer simulator and the cells on ports reserved below the kernel's ephemeral range (:mod:`bench.ports`),
   and the node's SQLite journal in that folder (a durable journal: every exchange is committed before its
   answer leaves, by group commit);
   A network scenario with foreign cards (``net-visa``, ``net-unionpay``) adds the ATM listener with a fresh
   TPK, the ``[hsm]`` that translates its PIN blocks and the connector's ``pin_key`` (a fresh ZPK), and builds
   its cards' track 2 and PIN blocks (:func:`_setup_foreign`);
   A scenario through the processor cells gets its own configuration instead (:mod:`bench.cells`: generic and
   ATM listeners, ``[hsm]``, ``[cells]`` supervised by the node, a catalogue without limits) and its cards
   are seeded into the cells' databases before anything starts;
2. starts the issuer simulator (``bulkhead sim issuer``; not for cells scenarios) and the node (``bulkhead
   run``, which starts its cells as child processes) as processes of the same interpreter as the harness, and
   waits until the node answers the scenario's first request with something other than 91/96 (its connector
   has signed on) -- for cells scenarios, one request per cell;
3. starts the generator processes (:mod:`bench.loadgen`), gives them one common start time, and samples the
   CPU time of every process (node and its child processes -- each cell reported as ``cell-NN`` --, simulator,
   generators) from /proc at the start and at the end of the measured window;
   In the issuer direction (a scenario's ``origin``) the network's simulator is the load generator instead, started
   once the cells answer (:mod:`bench.origin`);
4. stops everything (SIGTERM: the node drains and flushes its journal, the cells flush their writers), counts
   the journal rows, for cells scenarios checks every cell's ledger and counts its approved Txn rows, and
   returns a :class:`Report`.

CPU is reported as a percentage of one core over the measured window (utime + stime deltas, proc(5)).
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import shutil
import socket
import sqlite3
import sys
import tempfile
import time
from array import array
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import atmfleet as bench_fleet
from bench import cells as bench_cells
from bench import origin as bench_origin
from bench.codec import interpreter
from bench.flood import FloodResult, FloodSpec, flood_main
from bench.loadgen import FieldPlan, Template, WorkerResult, WorkerSpec, _Walker, worker_main
from bench.nodeconf import ATM_TOML, NODE_HEAD_TOML
from bench.phases import Schedule, percentile, phase_stats
from bench.ports import free_port
from bench.procs import (
    BenchError,
    _cpu_sample,
    _listener_ports,
    _Proc,
    _start,
    _wait_port,
    _wait_processes,
)
from bench.scenarios import ACQUIRER, ATM, BenchCard, Mix, Scenario
from processors.cell.config import CellsConfig
from schemes.atm import SCHEME as ATM_SCHEME
from schemes.generic import SCHEME, SPEC
from switch.contracts.network import Network
from switch.wire.framing import LengthFraming

NOT_READY = {b"91", b"96"}  # the node answers these while its connector is not yet signed on

NODE_TOML = NODE_HEAD_TOML + """
[[connectors]]
name = "issuer"
hosts = ["127.0.0.1:{issuer_port}"]
scheme = "{scheme}"
framing = {framing}
timeout_ms = 5000
echo_interval_s = 30
signon = true
{pin_key}"""

IN_NODE_SIMULATOR_TOML = """
[[simulators]]
name = "bench-issuer"
host = "127.0.0.1"
port = {issuer_port}
scheme = "generic"
framing = {{ kind = "binary2" }}
rules = "issuer-rules.toml"
"""

ROUTES_TOML = """\
default = "issuer"

[destinations.issuer]
links = ["issuer"]
timeout_ms = 5000
"""

# No decline, delay or drop rules: every request is approved; balance inquiries get DE 54.
ISSUER_RULES_TOML = """\
[approve]
balance = 250000
available = 200000
currency = "840"
"""


@dataclass(frozen=True)
class Options:
    duration: float = 10.0
    rate: float = 0.0  # total requests per second over all generators; 0 = open throttle (closed loop)
    connections: int = 8  # per generator process
    inflight: int = 32  # per connection
    generators: int = 1
    warmup: float = 1.0
    drain: float = 5.0
    issuer: str = "process"  # "process": its own process; "in-node": the node's [[simulators]] entry
    max_batch: int = 1000  # journal group commit
    max_wait_ms: float = 2.0
    keep: bool = False  # keep the temporary folder (configuration, logs, database)
    folder: str | None = None  # run in this (existing or new) folder instead of a temporary one, and keep it
    cells: int = 2  # processor cells (cells scenarios)
    processes: int = 1  # node processes sharing the listeners ([node] processes)
    cards: int = 250  # cards seeded over the cells (cells scenarios)
    credit_share: float = 0.2  # of those, credit cards (the others debit)
    # Open loop in phases (bench.overload): (seconds, requests per second in total); replaces rate, warmup and
    # duration. Each request's fate is judged against the acquirer's deadline (seconds from when it was due).
    phases: tuple[tuple[float, float], ...] = ()
    deadline: float = 2.0


@dataclass
class Report:
    scenario: str
    description: str
    interpreter: str
    machine: dict[str, Any]
    parameters: dict[str, Any]
    started_at: str
    tps: float = 0.0
    sent: int = 0
    answered: int = 0
    timeouts: int = 0
    unmatched: int = 0
    errors: int = 0
    backlog_max: int = 0
    codes: dict[str, int] = field(default_factory=dict)
    codes_by_mix: dict[str, dict[str, int]] = field(default_factory=dict)  # per request kind of the mix
    unexpected_codes: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    cpu_percent: dict[str, float] = field(default_factory=dict)  # per process, % of one core
    journal_rows: int | None = None
    # Cells scenarios: per cell its ledger check and approved Txn rows; cell_approvals = every "00" the
    # generators received for a request answered by a cell (warm-up and drain included), which the cells'
    # approved Txn rows must cover (durable postings: a cell answers only after its batch committed).
    cells: dict[str, dict[str, Any]] = field(default_factory=dict)
    cell_approvals: int | None = None
    node_log_bytes: int | None = None  # what the node logged (at --log-level warning) over the whole run
    flood: dict[str, Any] = field(default_factory=dict)  # the hostile peer's figures (flood scenarios)
    phases: list[dict[str, Any]] = field(default_factory=list)  # open loop in phases: bench.phases.phase_stats
    # Issuer direction: the network simulator's own report (its connections, everything it sent and got back).
    network: dict[str, Any] = field(default_factory=dict)
    # ATM fleet: the fleet simulator's own report (requests by kind, dispense outcomes, advices, keys, host check).
    fleet: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# -- requests ----------------------------------------------------------------------------------------------
def field_plan() -> FieldPlan:
    """The response walker's table for the ``generic`` spec (pyiso8583's ``default``: ASCII lengths)."""
    lengths = [(0, 0), (0, 0)]
    for number in range(2, 40):
        entry = SPEC[str(number)]
        if entry["len_enc"] != "ascii" or entry["data_enc"] not in ("ascii", "b"):
            raise BenchError(f"field {number}: the generator reads ASCII lengths and ASCII/binary data only")
        len_type, max_len = entry["len_type"], entry["max_len"]
        assert isinstance(len_type, int) and isinstance(max_len, int)
        lengths.append((len_type, max_len))
    return FieldPlan(tuple(lengths), header=2)


SCHEMES: dict[str, Network] = {ACQUIRER: SCHEME, ATM: ATM_SCHEME}  # listener -> its scheme
_FRAMER = LengthFraming("binary2").framer()


def _template(scenario: Scenario, mix: Mix, terminal_id: str, now: time.struct_time,
              card: BenchCard | None) -> Template:
    """One request, framed, with the offsets of STAN and RRN found by encoding it twice with different values
    (every other byte is the same)."""
    if mix.needs_card and card is None:
        raise BenchError(f"{mix.label}: needs a seeded card (a cells scenario)")
    msg = mix.build(terminal_id, now, card if mix.needs_card else None)
    scheme = SCHEMES[mix.listener]
    has_rrn = msg.mti[1] != "8"
    frames = []
    for digit in "120":
        stamped = msg.copy()
        stamped[11] = digit * 6
        if has_rrn:
            stamped[37] = digit * 12
        frames.append(_FRAMER.encode(scheme.encode(stamped)))
    diff = [i for i, (a, b) in enumerate(zip(frames[0], frames[1], strict=True)) if a != b]
    if len(diff) != (18 if has_rrn else 6):
        raise BenchError(f"{mix.label}: cannot locate STAN/RRN in the encoded request")
    return Template(frames[2], diff[0], diff[6] if has_rrn else None, scenario.mix.index(mix))


def templates_for(scenario: Scenario, terminal_id: str, now: time.struct_time, *, listener: str | None = None,
                  cards: list[BenchCard] | None = None, offset: int = 0) -> list[Template]:
    """The scenario's request mix (of one ``listener``, or all of it) for one connection. With ``cards``, the
    mix is spread over them: request j uses card ``offset + j`` (cycling), and the list is as long as the
    cards rounded up to whole mix cycles, so every card is used and the proportions hold."""
    sequence = scenario.sequence(listener)
    if not cards:
        return [_template(scenario, mix, terminal_id, now, None) for mix in sequence]
    length = -(-len(cards) // len(sequence)) * len(sequence)
    return [_template(scenario, sequence[j % len(sequence)], terminal_id, now, cards[(offset + j) % len(cards)])
            for j in range(length)]


def split_connections(scenario: Scenario, connections: int) -> list[str]:
    """The listener of each of ``connections`` connections: in proportion to the mix's weights per listener,
    at least one each."""
    listeners = scenario.listeners()
    if connections < len(listeners):
        raise BenchError(f"{scenario.name} sends to {len(listeners)} listeners: it needs at least that many "
                         "connections per generator")
    weights = {name: sum(m.weight for m in scenario.mix if m.listener == name) for name in listeners}
    total = sum(weights.values())
    counts = {name: max(1, round(connections * w / total)) for name, w in weights.items()}
    while sum(counts.values()) > connections:
        name = max(counts, key=lambda n: counts[n])
        counts[name] -= 1
    while sum(counts.values()) < connections:
        name = max(weights, key=lambda n: weights[n] / counts[n])
        counts[name] += 1
    return [name for name in listeners for _ in range(counts[name])]


def _probe(port: int, template: Template, first_stan: int, timeout: float = 30.0) -> int:
    """Send ``template`` until the answer is neither 91 nor 96 (links up); return the next free probe STAN."""
    walker = _Walker(field_plan())
    frame = bytearray(template.frame)
    deadline = time.monotonic() + timeout
    attempt = first_stan
    while True:
        attempt += 1
        frame[template.stan_at:template.stan_at + 6] = b"%06d" % attempt
        if template.rrn_at is not None:
            frame[template.rrn_at:template.rrn_at + 12] = b"%012d" % attempt
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(frame)
            data = b""
            while len(data) < 2 or len(data) < 2 + int.from_bytes(data[:2], "big"):
                chunk = sock.recv(65536)
                if not chunk:
                    raise BenchError("the node closed the probe connection")
                data += chunk
        _, code = walker.read(data[2:2 + int.from_bytes(data[:2], "big")])
        if code not in NOT_READY:
            return attempt
        if time.monotonic() > deadline:
            raise BenchError(f"the node still answers {code.decode()} after {timeout:.0f} s")
        time.sleep(0.2)


# -- one run -----------------------------------------------------------------------------------------------
def _write_config(folder: Path, scenario: Scenario, options: Options, port: int, issuer_port: int,
                  keys: _PinKeys | None = None) -> Path:
    upstream = scenario.upstream
    pin_key = f'pin_key = {{ type = "ZPK", key = "{keys.zpk}" }}\n' if keys is not None else ""
    text = NODE_TOML.format(name="bench", var=folder / "var", port=port, issuer_port=issuer_port,
                            max_batch=options.max_batch, max_wait_ms=options.max_wait_ms,
                            processes=options.processes, scheme=upstream.scheme, framing=upstream.connector_framing,
                            pin_key=pin_key)
    if keys is not None:  # the ATM listener (port 0: the node binds it) and the HSM that translates its PIN blocks
        text += ATM_TOML.format(atm_port=0, tpk=keys.tpk)
    if options.issuer == "in-node":
        if upstream.scheme != "generic":
            raise BenchError(f"{scenario.name}: the in-node issuer speaks generic only; use --issuer process")
        text += IN_NODE_SIMULATOR_TOML.format(issuer_port=issuer_port)
    text += scenario.node_toml.replace("{var}", str(folder))
    (folder / "node.toml").write_text(text)
    (folder / "routes.toml").write_text(scenario.routes_toml or ROUTES_TOML)
    (folder / "issuer-rules.toml").write_text(ISSUER_RULES_TOML)
    return folder / "node.toml"


def _journal_rows(folder: Path) -> int | None:
    db = folder / "var" / "bulkhead.db"
    if not db.exists():
        return None
    with sqlite3.connect(db) as con:
        (count,) = con.execute("SELECT count(*) FROM journal").fetchone()
    return int(count)


@dataclass
class _Setup:
    """What a run needs besides the scenario: where each listener is, and the seeded cards (cells)."""

    ports: dict[str, int]
    cards: list[BenchCard] = field(default_factory=list)
    cells: CellsConfig | None = None  # cells scenarios


@dataclass(frozen=True)
class _PinKeys:
    """A network scenario's keys (LMK cryptograms under the test LMK): the ATM listener's TPK, the link's ZPK."""

    tpk: str
    zpk: str


def _setup_foreign(scenario: Scenario) -> tuple[_PinKeys, list[BenchCard]]:
    """Fresh keys and the scenario's foreign cards: track 2 and PIN block (the demo PIN under the TPK) as ``bulkhead
    sim acquirer --atm --test-card`` builds them for another bank's card."""
    from hsm.lmk import Lmk
    from hsm.software import SoftwareHsm
    from switch.sim.cards import test_card

    hsm = SoftwareHsm(Lmk.thales_test())
    keys = _PinKeys(tpk=hsm.generate_key("002").under_lmk, zpk=hsm.generate_key("001").under_lmk)
    cards = []
    for pan in scenario.foreign_cards:
        card = test_card(None, pan, bench_cells.EXPIRY, pin=bench_cells.PIN, tpk=keys.tpk)
        assert card.pin_block is not None
        cards.append(BenchCard(-1, "foreign", pan, card.track2, card.pin_block))
    return keys, cards


def _setup_cells(folder: Path, options: Options) -> tuple[Path, _Setup]:
    """Configuration, keys and seeded cards of a cells scenario (no cell runs yet)."""
    if not 1 <= options.cells <= 100:
        raise BenchError(f"cells: 1..100, not {options.cells}")
    if options.cards < options.cells:
        raise BenchError(f"cards: at least one per cell ({options.cells}), not {options.cards}")
    keys = bench_cells.generate_keys()
    # Listener ports 0: the node binds them and reports them (run_scenario reads them back).
    conf = bench_cells.write_config(folder, keys, count=options.cells, port=0, atm_port=0,
                                    max_batch=options.max_batch, max_wait_ms=options.max_wait_ms,
                                    processes=options.processes)
    cells = bench_cells.cells_config(conf)
    cards = bench_cells.seed_cards(cells, keys, cards=options.cards, credit_share=options.credit_share)
    return conf, _Setup({}, cards, cells)


def _probe_cells(scenario: Scenario, setup: _Setup) -> None:
    """One request per cell (the first card of each) until it is answered by the cell, not 91/96."""
    assert setup.cells is not None
    mix = next(m for m in scenario.mix if m.needs_card)
    stan = 900_000
    for cell in range(setup.cells.count):
        card = next(c for c in setup.cards if c.cell == cell)
        template = _template(scenario, mix, "BENCHPRB", time.gmtime(), card)
        stan = _probe(setup.ports[mix.listener], template, stan)


def run_scenario(scenario: Scenario, options: Options) -> Report:
    """Start what ``scenario`` needs, drive it for ``options.duration`` seconds after the warm-up, stop
    everything and return the figures."""
    if options.issuer not in ("process", "in-node"):
        raise BenchError(f"issuer: expected 'process' or 'in-node', not {options.issuer!r}")
    if options.issuer == "in-node" and not scenario.through_node:
        raise BenchError(f"{scenario.name} drives the issuer simulator directly: it needs issuer='process'")
    if scenario.fleet is not None:
        bench_fleet.require_atmp()  # before anything starts: skipped on a node without an ATMP
    if options.folder is not None:
        folder = Path(options.folder)
        folder.mkdir(parents=True, exist_ok=True)
    else:
        folder = Path(tempfile.mkdtemp(prefix=f"bulkhead-bench-{scenario.name}-"))
    procs: list[_Proc] = []
    parameters = {k: v for k, v in asdict(options).items() if k not in ("keep", "folder")}
    if not scenario.cells:
        for name in ("cells", "cards", "credit_share"):
            parameters.pop(name)
    if scenario.origin is not None:  # no generator: the simulator keeps this many in flight per connection
        parameters["network_inflight"] = _network_inflight(options)
    terminals = bench_fleet.fleet_terminals(options.generators, options.connections)
    if scenario.fleet is not None:  # no generator: the fleet's terminals, one customer at a time each
        parameters["terminals"] = terminals
    report = Report(
        scenario=scenario.name, description=scenario.description, interpreter=interpreter(),
        machine={"cpus": os.cpu_count(), "platform": platform.platform(), "processor": platform.machine()},
        parameters=parameters, started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    setup: _Setup | None = None
    results: list[WorkerResult] = []
    try:
        pids: dict[str, int] = {}
        network_port = 0
        if scenario.cells:
            conf, setup = _setup_cells(folder, options)
            if scenario.origin is not None:
                network_port = free_port()
                with conf.open("a") as out:
                    out.write(bench_origin.connector_toml(scenario.origin, network_port))
            if scenario.fleet is not None:  # skipped here when the node has no ATMP
                bench_fleet.register(folder, conf, terminals, scenario.fleet)
        else:
            # The connector needs the issuer's port before anything listens: one the kernel never lends to a
            # connection. The node's listeners bind port 0 and report their ports once they listen.
            issuer_port = free_port()
            keys, cards = _setup_foreign(scenario) if scenario.foreign_cards else (None, [])
            conf = _write_config(folder, scenario, options, 0, issuer_port, keys)
            setup = _Setup({} if scenario.through_node else {ACQUIRER: issuer_port}, cards)
            if options.issuer == "process":
                upstream = scenario.upstream
                network_args = ["--scheme", upstream.scheme, "--framing", upstream.sim_framing]
                for option in upstream.sim_options:
                    network_args += ["--framing-opt", option]
                issuer = _start("issuer", ["sim", "issuer", "--port", str(issuer_port), "--rules",
                                           str(folder / "issuer-rules.toml"), *network_args], folder)
                procs.append(issuer)
                _wait_port(issuer, issuer_port)
                pids["issuer"] = issuer.popen.pid
        if scenario.through_node:
            node = _start("node", ["run", "--conf", str(conf), "--log-level", "warning"], folder)
            procs.append(node)
            listeners = scenario.listeners() + ([ATM] if scenario.fleet is not None else [])
            setup.ports.update(_listener_ports(node, folder / "var" / "admin.sock", listeners))
            if options.processes > 1:
                _wait_processes(node, folder / "var" / "admin.sock")
            if scenario.cells:
                _probe_cells(scenario, setup)
            if scenario.fleet is not None:  # skipped here when the node's ATM port has no ATMP host side
                bench_fleet.probe_host(setup.ports[ATM])
            else:
                _probe(setup.ports[scenario.mix[0].listener],
                       templates_for(scenario, "BENCHPRB", time.gmtime(), cards=setup.cards)[0], 900_000)
            pids["node"] = node.popen.pid
        if scenario.origin is not None:
            network = bench_origin.start_network(
                scenario.origin, folder, network_port, setup.cards, warmup=options.warmup, duration=options.duration,
                inflight=_network_inflight(options))
            procs.append(network)
            pids["network"] = network.popen.pid
            document, report.cpu_percent = bench_origin.drive_network(network, pids, warmup=options.warmup,
                                                                      duration=options.duration)
            _merge_network(report, document, scenario)
        elif scenario.fleet is not None:
            fleet = bench_fleet.start_fleet(folder, conf, setup.ports[ATM], setup.cards, scenario.fleet,
                                            terminals=terminals, rate=options.rate, warmup=options.warmup,
                                            duration=options.duration)
            procs.append(fleet)
            pids["fleet"] = fleet.popen.pid
            document, report.cpu_percent = bench_fleet.drive_fleet(fleet, pids, warmup=options.warmup,
                                                                   duration=options.duration)
            _merge_fleet(report, document, scenario)
        else:
            results = _drive(scenario, options, setup, pids, report)
    finally:
        for proc in reversed(procs):  # the node first: it drains against a live issuer
            proc.stop()
        if scenario.through_node and folder.exists():
            try:
                report.journal_rows = _journal_rows(folder)
            except sqlite3.Error:
                report.journal_rows = None
            if (folder / "node.log").exists():
                report.node_log_bytes = (folder / "node.log").stat().st_size
        if setup is not None and setup.cells is not None and (results or report.cell_approvals is not None):
            report.cells = bench_cells.check_cells(setup.cells)
        if options.keep:
            print(f"kept {folder}", file=sys.stderr)
        elif options.folder is None:
            shutil.rmtree(folder, ignore_errors=True)
    if scenario.origin is None and scenario.fleet is None:
        _merge(report, results, scenario, options)
    return report


def _network_inflight(options: Options) -> int:
    return bench_origin.inflight_per_connection(options.generators, options.connections, options.inflight,
                                                options.processes)


def _merge_network(report: Report, document: dict[str, Any], scenario: Scenario) -> None:
    """The network simulator's report (switch.sim.netcli.load_report) as a scenario's figures: the measured window's
    answers, codes and latencies; timeouts, unmatched answers and the bank's rejects over the whole run; every 00
    (warm-up and drain included) as the approvals the cells' Txn rows must cover."""
    measured = document["measured"]
    report.network = document
    report.sent, report.answered, report.tps = measured["sent"], measured["answered"], measured["tps"]
    report.codes, report.latency_ms = measured["codes"], measured["latency_ms"]
    report.timeouts, report.unmatched = document["timeouts"], document["unmatched"]
    report.errors = document["rejected"]
    report.cell_approvals = document["answered"].get("00", 0)
    report.unexpected_codes = {c: n for c, n in report.codes.items() if c not in scenario.expected_codes}


def _merge_fleet(report: Report, document: dict[str, Any], scenario: Scenario) -> None:
    """The fleet simulator's report (switch.sim.atmreport) as a scenario's figures: the measured window's answers,
    codes and latencies; timeouts, dropped requests and undecodable answers over the whole run; the withdrawals
    confirmed as fully dispensed (never reversed) as the approvals the cells' approved Txn rows must cover."""
    measured = document["measured"]
    report.fleet = document
    report.sent = sum(n for codes in document["requests"].values() for n in codes.values())
    report.answered, report.tps = measured["answered"], measured["tps"]
    report.codes, report.latency_ms = measured["codes"], measured["latency_ms"]
    report.codes_by_mix = document["requests"]
    report.timeouts = sum(document["timeouts"].values())
    report.unmatched = document["unmatched"]
    report.errors = document["undecodable"] + sum(document["dropped"].values())
    report.cell_approvals = document["dispense"].get("dispensed", 0)
    report.unexpected_codes = {c: n for c, n in report.codes.items() if c not in scenario.expected_codes}


def _drive(scenario: Scenario, options: Options, setup: _Setup, pids: dict[str, int],
           report: Report) -> list[WorkerResult]:
    now = time.gmtime()
    plan = field_plan()
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing inherited from the harness
    listeners = split_connections(scenario, options.connections)
    total = options.generators * options.connections
    workers = []
    for g in range(options.generators):
        connections = []
        for c, listener in enumerate(listeners):
            # Each connection starts at a different card, so that connections do not walk the cards in step.
            offset = (g * options.connections + c) * len(setup.cards) // total
            connections.append((setup.ports[listener], templates_for(
                scenario, f"BN{g:02d}{c:04d}", now, listener=listener, cards=setup.cards, offset=offset)))
        spec = WorkerSpec(
            host="127.0.0.1", connections=connections, inflight=options.inflight,
            rate=options.rate / options.generators, warmup=options.warmup, duration=options.duration,
            drain=options.drain, plan=plan, rrn_prefix=f"{g:03d}",
            phases=tuple((seconds, rate / options.generators) for seconds, rate in options.phases),
        )
        parent, child = context.Pipe()
        process = context.Process(target=worker_main, args=(spec, child), name=f"bench-generator-{g}")
        process.start()
        child.close()
        workers.append((process, parent))
    flood = None
    if scenario.flood is not None:
        spec_f = FloodSpec("127.0.0.1", setup.ports[ACQUIRER], scenario.flood.connections, scenario.flood.rate,
                           options.warmup + options.duration, scenario.flood.step)
        parent, child = context.Pipe()
        process = context.Process(target=flood_main, args=(spec_f, child), name="bench-flood")
        process.start()
        child.close()
        flood = (process, parent)
    try:
        for _, pipe in workers:
            if not pipe.poll(30):
                raise BenchError("a generator did not connect within 30 s")
            message = pipe.recv()
            if message != "ready":
                raise BenchError(f"generator: {message}")
        for g, (process, _) in enumerate(workers):
            assert process.pid is not None
            pids[f"generator-{g}"] = process.pid
        if flood is not None:
            if not flood[1].poll(30) or flood[1].recv() != "ready":
                raise BenchError("the flooder did not start")
            assert flood[0].pid is not None
            pids["flood"] = flood[0].pid
        t0 = time.monotonic() + 0.2
        for _, pipe in [*workers, *([flood] if flood else [])]:
            pipe.send(t0)
        time.sleep(max(0.0, t0 + options.warmup - time.monotonic()))
        before = _cpu_sample(pids)
        time.sleep(max(0.0, t0 + options.warmup + options.duration - time.monotonic()))
        after = _cpu_sample(pids)
        # A process that was replaced during the window (a restarted cell: another pid) has no figure.
        report.cpu_percent = {
            label: round((after[label][1] - before[label][1]) / options.duration * 100, 1)
            for label in after if label in before and before[label][0] == after[label][0]
        }
        results = []
        for _, pipe in workers:
            if not pipe.poll(options.drain + 30):
                raise BenchError("a generator did not report")
            message = pipe.recv()
            if not isinstance(message, WorkerResult):
                raise BenchError(f"generator: {message}")
            results.append(message)
        if flood is not None:
            if not flood[1].poll(options.drain + 30):
                raise BenchError("the flooder did not report")
            done = flood[1].recv()
            if not isinstance(done, FloodResult):
                raise BenchError(f"flooder: {done}")
            seconds = options.warmup + options.duration
            report.flood = {"frames": done.sent, "per_second": round(done.sent / seconds),
                            "connects": done.connects, "answered_bytes": done.answered_bytes}
        return results
    finally:
        for process, pipe in [*workers, *([flood] if flood else [])]:
            pipe.close()
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join()


def _merge(report: Report, results: list[WorkerResult], scenario: Scenario, options: Options) -> None:
    codes: Counter[str] = Counter()
    by_mix: dict[str, Counter[str]] = {}
    approvals = 0
    latencies = array("d")
    for r in results:
        for kind, counter in r.kind_codes.items():
            by_mix.setdefault(scenario.mix[kind].label, Counter()).update(counter)
        approvals += sum(n for kind, n in r.approvals.items() if scenario.mix[kind].at_cell)
        report.sent += r.sent
        report.answered += r.answered
        report.timeouts += r.timeouts
        report.unmatched += r.unmatched
        report.errors += r.errors
        report.backlog_max = max(report.backlog_max, r.backlog_max)
        codes.update(r.codes)
        latencies.frombytes(r.latencies)
    if options.phases:
        answered, unanswered = array("d"), array("d")
        for r in results:
            answered.frombytes(r.samples)
            unanswered.frombytes(r.unanswered)
        report.phases = phase_stats(answered, unanswered, Schedule(options.phases), options.deadline)
    report.tps = round(report.answered / options.duration, 1)
    report.codes = dict(sorted(codes.items()))
    if len(scenario.mix) > 1:
        report.codes_by_mix = {m.label: dict(sorted(by_mix[m.label].items())) for m in scenario.mix
                               if m.label in by_mix}
    if scenario.cells:
        report.cell_approvals = approvals
    report.unexpected_codes = {c: n for c, n in report.codes.items() if c not in scenario.expected_codes}
    ordered = sorted(latencies)
    ms = 1000.0
    report.latency_ms = {
        "p50": round(percentile(ordered, 50) * ms, 3),
        "p95": round(percentile(ordered, 95) * ms, 3),
        "p99": round(percentile(ordered, 99) * ms, 3),
        "max": round((ordered[-1] if ordered else 0.0) * ms, 3),
        "mean": round(sum(ordered) / len(ordered) * ms if ordered else 0.0, 3),
    }
