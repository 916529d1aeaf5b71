"""The benchmark's processes: starting the node, the simulator and the cells as processes of the harness's own
interpreter, waiting until they listen, stopping them, and sampling their CPU time from /proc (proc(5))."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLI = "from switch.cli.main import main; main()"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """The benchmark could not run (a process did not start, the node never became ready)."""


class BenchSkipped(BenchError):
    """The scenario cannot run on this node: a capability it needs is missing (the reason says which)."""


def cpu_seconds(pid: int, thread: int | None = None) -> float | None:
    """utime + stime of ``pid`` in seconds (proc(5) fields 14 and 15), or of its one ``thread`` (a native
    thread id: /proc/<pid>/task/<tid>/stat), None once it is gone."""
    path = f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat"
    try:
        stat = Path(path).read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces: split after its closing one.
    rest = stat[stat.rindex(")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / CLOCK_TICKS


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (proc(5) /proc/<pid>/task/<tid>/children)."""
    out: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return out
    for task in tasks:
        try:
            out += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


@dataclass
class _Proc:
    label: str
    popen: subprocess.Popen[bytes]
    log: Path

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise BenchError(f"{self.label} exited with status {self.popen.returncode}:\n{tail}")

    def stop(self, timeout: float = 20.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def _start(label: str, args: list[str], folder: Path, stdin: bytes | None = None) -> _Proc:
    """The CLI with ``args``, its output in ``<label>.log``; ``stdin`` written to its standard input and closed
    (what must not be on a command line nor in a file: the network simulator's cards)."""
    log = folder / f"{label}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen([sys.executable, "-c", CLI, *args], cwd=REPO, stdout=out,
                                 stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE)
    if stdin is not None:
        assert popen.stdin is not None
        with popen.stdin:
            popen.stdin.write(stdin)
    return _Proc(label, popen, log)


def _wait_port(proc: _Proc, port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc.check_alive()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{proc.label} did not listen on port {port} within {timeout:.0f} s")


def _listener_ports(proc: _Proc, admin_socket: Path, names: list[str], timeout: float = 60.0) -> dict[str, int]:
    """The ports the node's listeners ``names`` bound (port 0 in node.toml), once all of them listen, read from
    the ``status`` admin command."""
    from switch.ops.admin import AdminError, call

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc.check_alive()
        try:
            links = call(admin_socket, "status", timeout=2.0)["result"]["links"]
        except (AdminError, OSError, KeyError):  # not up yet: no admin socket, or not answering yet
            links = []
        ports = {link["name"]: link["port"] for link in links
                 if link.get("kind") == "listener" and link.get("state") == "listening"}
        if all(name in ports for name in names):
            return {name: int(ports[name]) for name in names}
        time.sleep(0.05)
    raise BenchError(f"{proc.label} did not listen on {', '.join(names)} within {timeout:.0f} s")


def _wait_processes(proc: _Proc, admin_socket: Path, timeout: float = 60.0) -> None:
    """Until every process of the node listens ([node] processes): connections made before a process binds the
    port all go to the others."""
    from switch.ops.admin import AdminError, call

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc.check_alive()
        try:
            status = call(admin_socket, "status", timeout=2.0)["result"]
        except (AdminError, OSError, KeyError):  # not up yet: no admin socket, or not answering yet
            status = {}
        processes = status.get("processes", [])
        if len(processes) > 1 and all(p.get("state") == "running" for p in processes[1:]):
            return
        time.sleep(0.1)
    raise BenchError(f"the node's processes did not all listen within {timeout:.0f} s")


def _child_label(parent: str, pid: int) -> str:
    """``cell-NN`` for a cell process (``python -m switch.cli.cell run ... --cell K``, how the node's supervisor
    starts it), ``node-N`` for a node process, else ``<parent>/child-<pid>``."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        argv = []
    for module, option, label in ((b"switch.cli.cell", b"--cell", "cell-{:02d}"),
                                  (b"switch.runtime.process", b"--process", "node-{}")):
        if module in argv and option in argv[:-1]:
            value = argv[argv.index(option) + 1]
            if value.isdigit():
                return label.format(int(value))
    return f"{parent}/child-{pid}"


def _cpu_sample(procs: dict[str, int]) -> dict[str, tuple[int, float]]:
    """(pid, CPU seconds) per labelled process, and per child of each (a node's cells), at this instant."""
    out: dict[str, tuple[int, float]] = {}
    for label, pid in procs.items():
        value = cpu_seconds(pid)
        if value is not None:
            out[label] = (pid, value)
        for child in children(pid):
            value = cpu_seconds(child)
            if value is not None:
                out[_child_label(label, child)] = (child, value)
    return out


# The log line a simulator (switch.sim.issuer's network simulator, switch.sim.atmfleet) writes when its measured
# window opens.
MEASURING = "measuring for"


def measured_window(proc: _Proc, pids: dict[str, int], *, start_timeout: float, duration: float,
                    finish_timeout: float, what: str, hint: str) -> dict[str, float]:
    """Wait for ``proc`` (a simulator driving the node) to open its measured window, sample every process's CPU over
    ``duration`` seconds of it (% of one core), then wait for ``proc`` to end. ``what`` names it in errors, ``hint``
    says what to look at when it never starts measuring."""
    deadline = time.monotonic() + start_timeout
    while MEASURING not in (proc.log.read_text(errors="replace") if proc.log.exists() else ""):
        if time.monotonic() >= deadline:
            raise BenchError(f"{what} did not start measuring within {start_timeout:.0f} s ({hint})")
        proc.check_alive()
        time.sleep(0.01)
    before = _cpu_sample(pids)
    time.sleep(duration)
    after = _cpu_sample(pids)
    cpu = {label: round((after[label][1] - before[label][1]) / duration * 100, 1)
           for label in after if label in before and before[label][0] == after[label][0]}
    try:
        proc.popen.wait(finish_timeout)
    except subprocess.TimeoutExpired as exc:  # the caller stops it
        raise BenchError(f"{what} did not finish after its window") from exc
    return cpu
