"""The ATM fleet scenario (``atm-fleet``): a fleet of simulated ATMs (``bulkhead sim atm``, :mod:`switch.sim.atmfleet`)
is the load, each terminal on its own connection to the node's ATM listener with its own keys, through the node's
ATMP (terminal admission, per-terminal PIN translation, dispense confirmations and reversals) to the processor
cells, which approve and post the bench cards' withdrawals.

For such a scenario the harness (:func:`bench.harness.run_scenario`)
1. sets up the cells as for fin-cells (:mod:`bench.cells`: cards seeded, their PIN under the cells' zone key), then
   registers the fleet in the node's database before the node starts (:func:`register`): a fleet file of
   ``terminals`` terminals (ATM00001...), every ``mac_every``-th of them MACing, each with a TMK formed from two
   random components by the software HSM under the test LMK, and four cassettes of 9,999 notes, through the ATMP's
   own command (``bulkhead atm seed --fleet``) -- the capability check: a node without ``bulkhead atm`` has no ATMP,
   and the scenario is skipped with that reason;
2. starts the node, waits until the cells answer, and asks the ATM listener for a key exchange (0800/161) as the
   first terminal (:func:`probe_host`): a node whose ATM port answers without keys has no ATMP host side yet, and
   the scenario is skipped with that reason;
3. starts the fleet (:func:`start_fleet`) with the cards on its standard input, reading each terminal's TMK, MAC
   setting and cassettes from the registry (``--conf``), and ``--check-host`` at the end; samples the processes' CPU
   over the fleet's measured window and reads its JSON report once it has drained and exited (:func:`drive_fleet`).

The terminals serve customers back to back (``rate`` 0) or at ``rate`` a second over the fleet, ``warmup`` +
``duration`` seconds, with the scenario's mix and dispense outcomes; their number is the harness's generators x
connections (each ATM is one connection, serving one customer at a time, as a real one does).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.procs import CLI, REPO, BenchError, BenchSkipped, _Proc, _start, measured_window
from bench.scenarios import BenchCard, FleetLoad

FLEET_FILE = "atm-fleet.toml"
NOTES = 9999  # per cassette: DE 63 counts four digits (atm-interface.md), and a run must not empty them
CASSETTES = ("1:20.00", "2:50.00", "3:10.00", "4:100.00")
# The fleet waits for each answer longer than the node's own cells timeout (bench.cells: 10 s): an answer the node
# owes is never counted as a timeout (and reversed) by the terminal.
FLEET_TIMEOUT_S = 15.0
DRAIN_S = 30.0


def fleet_terminals(generators: int, connections: int) -> int:
    """How many ATMs: one per connection the other scenarios' generators open."""
    return max(1, generators * connections)


def _component() -> str:
    """A random TMK component: 16 bytes with odd parity (each byte's lowest bit set so it has an odd number of ones),
    as key sheets carry them."""
    out = bytearray(secrets.token_bytes(16))
    for i, byte in enumerate(out):
        if bin(byte).count("1") % 2 == 0:
            out[i] = byte ^ 1
    return out.hex().upper()


def fleet_toml(terminals: int, load: FleetLoad) -> str:
    """A fleet file for ``bulkhead atm seed --fleet`` (the ATMP's demo fleet format): benchmark data only."""
    text = "# The benchmark's ATM fleet (bench/atmfleet.py): random TMK components, formed under the test LMK.\n"
    for n in range(1, terminals + 1):
        cassettes = ", ".join(f'"{c}:{NOTES}"' for c in CASSETTES)
        text += (f'\n[[terminals]]\nid = "ATM{n:05d}"\nlocation = "Bench terminal {n}"\ninstitution = "412345"\n'
                 f'owner = "own"\ncurrency = "840"\ncassettes = [{cassettes}]\nlow_cash = 0\n'
                 f'mac = {"true" if load.mac_every and n % load.mac_every == 0 else "false"}\n'
                 f'tmk_components = ["{_component()}", "{_component()}"]\n')
    return text


def _cli(folder: Path, label: str, args: list[str], timeout: float = 120.0) -> str:
    """The command line in a process of its own (the harness never imports the node's storage); its output."""
    with (folder / f"{label}.log").open("wb") as out:
        done = subprocess.run([sys.executable, "-c", CLI, *args], cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, timeout=timeout, check=False)
    text = (folder / f"{label}.log").read_text(errors="replace")
    if done.returncode:
        raise BenchError(f"`bulkhead {' '.join(args[:2])}` failed ({done.returncode}):\n{text[-2000:]}")
    return text


def require_atmp() -> None:
    """:class:`BenchSkipped` unless this installation has an ATMP: the command group that registers terminals
    (``bulkhead atm``) and the ATM listener's ``atmp`` setting that puts the ATM processor on its port."""
    from dataclasses import fields

    from switch.cli.main import COMMANDS
    from switch.config import ListenerConfig

    if "atm" not in COMMANDS:
        raise BenchSkipped("the node has no ATMP yet (no `bulkhead atm` command): nothing registers the fleet's "
                           "terminals or answers their key exchange")
    if "atmp" not in {f.name for f in fields(ListenerConfig)}:
        raise BenchSkipped("the node's listeners have no `atmp` setting yet: its ATM port has no ATM processor")


def enable_atmp(conf: Path) -> None:
    """The ATM listener of the benchmark's node.toml with the ATM processor on (``atmp = true``)."""
    text = conf.read_text()
    marker = '[[listeners]]\nname = "atm"\n'
    if marker not in text:
        raise BenchError(f"{conf} has no ATM listener")
    conf.write_text(text.replace(marker, marker + "atmp = true\n", 1))


def register(folder: Path, conf: Path, terminals: int, load: FleetLoad) -> None:
    """The fleet in the node's registry, in service, and the ATM processor on the ATM listener, before the node
    starts (skipped without an ATMP)."""
    require_atmp()
    enable_atmp(conf)
    (folder / FLEET_FILE).write_text(fleet_toml(terminals, load))
    _cli(folder, "db-upgrade", ["db", "upgrade", "--conf", str(conf)])
    _cli(folder, "atm-seed", ["atm", "seed", "--conf", str(conf), "--fleet", str(folder / FLEET_FILE)])


def probe_host(port: int, terminal_id: str = "ATM00001", timeout: float = 10.0) -> None:
    """Ask the node's ATM listener for a key exchange as ``terminal_id``: :class:`BenchSkipped` when the answer carries
    no keys (the node's ATM port has no ATMP host side), :class:`BenchError` when it does not answer at all."""
    from switch.contracts.registry import network
    from switch.model.message import Message
    from switch.sim.atmfields import AtmAnswerError, parse_key_offer
    from switch.wire.framing import LengthFraming

    atm = network("atm")
    framer = LengthFraming("binary2").framer()
    request = Message("0800", {7: time.strftime("%m%d%H%M%S", time.gmtime()), 11: "999001", 41: terminal_id,
                               70: "161"})
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(framer.encode(atm.encode(request)))
            while (frame := framer.next_frame()) is None:
                data = sock.recv(65536)
                if not data:
                    raise BenchError("the node closed the ATM port's connection without answering a key exchange")
                framer.receive_data(data)
    except OSError as exc:
        raise BenchError(f"the node's ATM port did not answer a key exchange: {exc}") from None
    answer = atm.decode(frame.body)
    if answer.response_code != "00":
        raise BenchError(f"the node refused {terminal_id}'s key exchange: {answer.response_code}")
    try:
        parse_key_offer(answer)
    except AtmAnswerError:
        raise BenchSkipped("the node's ATM port answers a key exchange (0800/161) without keys: it has no ATMP host "
                           "side yet") from None


def start_fleet(folder: Path, conf: Path, port: int, cards: list[BenchCard], load: FleetLoad, *, terminals: int,
                rate: float, warmup: float, duration: float) -> _Proc:
    """``bulkhead sim atm`` against the node's ATM ``port``, the cards on its standard input, writing
    ``fleet-report.json`` into ``folder`` once drained."""
    args = ["sim", "atm", "--port", str(port), "--terminals", str(terminals), "--conf", str(conf), "--check-host",
            "--cards", "-", "--test-card", str(conf), "--pin", "1234", "--expiry", "3012",
            "--rate", str(rate), "--warmup", str(warmup), "--duration", str(duration), "--mix", load.mix,
            "--partial-rate", str(load.partial_rate), "--no-take-rate", str(load.no_take_rate),
            "--lost-confirm-rate", str(load.lost_confirm_rate), "--advice-timeout", str(load.advice_timeout_s),
            "--timeout", str(FLEET_TIMEOUT_S), "--drain", str(DRAIN_S), "--start-timeout", "60",
            "--report", str(folder / "fleet-report.json"), "--seed", str(int.from_bytes(os.urandom(4), "big"))]
    pans = "".join(f"{card.pan}\n" for card in cards).encode()
    return _start("fleet", args, folder, stdin=pans)


def drive_fleet(proc: _Proc, pids: dict[str, int], *, warmup: float, duration: float,
                ) -> tuple[dict[str, Any], dict[str, float]]:
    """The fleet's report and the CPU per process (% of one core) over its measured window."""
    cpu = measured_window(proc, pids, start_timeout=90.0 + warmup, duration=duration,
                          finish_timeout=FLEET_TIMEOUT_S + DRAIN_S + 30, what="the ATM fleet",
                          hint="did its terminals get keys and sign on?")
    report = proc.log.parent / "fleet-report.json"
    try:
        document: dict[str, Any] = json.loads(report.read_text())
    except (OSError, ValueError) as exc:
        proc.check_alive()
        raise BenchError(f"the ATM fleet's report: {exc}") from None
    if proc.popen.returncode not in (0, 1):  # 1: the host check found a mismatch, which the report carries
        proc.check_alive()
    return document, cpu
