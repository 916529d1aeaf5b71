"""The issuer direction of the benchmark (``net-visa-issuer``, ``net-unionpay-issuer``): the network is the server the
node's connector connects to, so the load generator is the network simulator itself (``bulkhead sim network``,
:mod:`switch.sim.originate`), originating purchases on the cells' bench cards down that connection.

For such a scenario the harness (:func:`bench.harness.run_scenario`)
1. sets up the cells as for fin-cells (:mod:`bench.cells`) and adds to the node a connector named after the network
   (``visa``/``unionpay``), in the network's framing, pointing at a port nothing listens on yet
   (:func:`connector_toml`);
2. starts the node and waits until each cell answers a purchase on the acquirer listener (the cells must be up
   before the network originates, or the warm-up would be 91s);
3. starts the simulator (:func:`start_network`) with the cards on its standard input (never on a command line or in
   a file), ``--inflight`` requests outstanding per connection (closed loop) and ``--warmup``/``--duration``; the
   node's connector connects (every node process opens its own connection, so the simulator's connections are the
   node's processes), signs on, and the simulator originates;
4. samples the processes' CPU from the simulator's "measuring" log line to the window's end and reads the
   simulator's JSON report once it has drained and exited (:func:`drive_network`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.procs import BenchError, _Proc, _start, measured_window
from bench.scenarios import PURCHASE_AMOUNT, BenchCard, Upstream

# The node answers each request within its cells connector's timeout (bench.cells: 10 s); the simulator waits
# longer, so an answer the node owes is never counted as a timeout and then as unmatched.
NETWORK_TIMEOUT_S = 15.0

CONNECTOR_TOML = """
[[connectors]]
name = "{name}"
hosts = ["127.0.0.1:{port}"]
scheme = "{name}"
framing = {framing}
timeout_ms = 5000
echo_interval_s = 30
signon = true
# The node starts before the network's simulator (its cells must be up first): retry the connection quickly.
backoff_initial_ms = 50
backoff_max_ms = 200
"""


def connector_toml(upstream: Upstream, port: int) -> str:
    """The node's connector to the network simulator on ``port``, named after the network."""
    return CONNECTOR_TOML.format(name=upstream.scheme, port=port, framing=upstream.connector_framing)


def inflight_per_connection(generators: int, connections: int, inflight: int, processes: int) -> int:
    """Requests outstanding on each of the simulator's connections: as many in total as the generators of the
    other scenarios keep (generators x connections x inflight), spread over the node's processes (one connection
    to the network each)."""
    return max(1, generators * connections * inflight // processes)


def start_network(upstream: Upstream, folder: Path, port: int, cards: list[BenchCard], *, inflight: int,
                  warmup: float, duration: float) -> _Proc:
    """``bulkhead sim network`` on ``port``, originating 0200 purchases (keyed, no PIN: fin-cells' requests) on
    ``cards`` (given on its standard input) and writing ``network-report.json`` into ``folder`` at the end."""
    args = ["sim", "network", upstream.scheme, "--port", str(port), "--cards", "-", "--amount", str(PURCHASE_AMOUNT),
            "--currency", "840", "--inflight", str(inflight),
            "--warmup", str(warmup), "--duration", str(duration), "--timeout", str(NETWORK_TIMEOUT_S),
            "--report", str(folder / "network-report.json")]
    for option in upstream.sim_options:
        args += ["--framing-opt", option]
    pans = "".join(f"{card.pan}\n" for card in cards).encode()
    return _start("network", args, folder, stdin=pans)


def drive_network(proc: _Proc, pids: dict[str, int], *, warmup: float, duration: float,
                  ) -> tuple[dict[str, Any], dict[str, float]]:
    """The simulator's report and the CPU per process (% of one core) over its measured window."""
    cpu = measured_window(proc, pids, start_timeout=60.0 + warmup, duration=duration,
                          finish_timeout=NETWORK_TIMEOUT_S + 30, what=f"the {proc.label} simulator",
                          hint="did the node's connector connect and sign on?")
    if proc.popen.returncode:
        proc.check_alive()  # raises with the log's tail
    report = proc.log.parent / "network-report.json"
    try:
        document: dict[str, Any] = json.loads(report.read_text())
    except (OSError, ValueError) as exc:
        raise BenchError(f"the {proc.label} simulator's report: {exc}") from None
    if not document.get("measured") or not document["measured"]["started"]:
        raise BenchError(f"the {proc.label} simulator measured nothing")
    return document, cpu
