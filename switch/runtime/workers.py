"""More than one process per switch node: ``[node] processes = N`` (DESIGN.md section 9: more switch nodes
sharing the listeners).

A node is one trio process, so it uses one core however many the machine has (reference: a second process on
the second core carries 1.9-2x). With ``processes = N`` the node started by ``bulkhead run`` (the primary)
starts N - 1 more node processes (``python -m switch.runtime.process``). Every process binds the same listener ports
with SO_REUSEPORT, so the kernel spreads the acquirers' connections over them (connections, not messages: a
peer's connection stays with one process), and opens its own connections to every connector (cells and
schemes: a destination sees N connections from the node). Each journals into the node's database with its own
group-commit writer; its journal rows carry its name, ``<node>/<n>``.

What stays with the primary: the database migration, the cell processes, the demo simulators, the
store-and-forward forwarder (the others queue reversals and advices in the shared database, where the
forwarder finds them on its next poll), the admin socket (``bulkhead`` commands), and routing table reloads,
which it hands to the others over each one's control pipe (stdin/stdout, one JSON object per line) before the
reload command returns. The others serve Prometheus metrics on ``[metrics] port + n`` when a port is set.
The stand-in card status cache is per process. A process that dies is restarted like a cell; one whose
primary is gone (its control pipe closes) stops.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import trio

from switch.config import NodeConfig
from switch.infra import logs
from switch.infra.procsup import ProcessSupervisor
from switch.model.errors import ConfigError
from switch.routing import RoutingTable

log = logging.getLogger("bulkhead.workers")
CONTROL_TIMEOUT_S = 10.0
READY_TIMEOUT_S = 60.0  # from start to listening: its links get LINKS_UP_WAIT_S of it
STOP_EXTRA_S = 20.0  # beyond the drain: sign-off (2 s) and the journal's flush (10 s) with a margin


class WorkerSupervisor(ProcessSupervisor):
    """The primary's side: keeps processes 1 .. N-1 running and passes routing table reloads to them."""

    what = "node process"
    pipes = True

    def __init__(self, config: NodeConfig, ports: Mapping[str, int], table: Callable[[], RoutingTable],
                 drain_s: float) -> None:
        """``table`` gives the routing table the primary runs on now (the others start on it and follow its
        reloads); ``drain_s`` is how long a stopping process may drain."""
        # A stopping process drains like the primary (its longest timeout + 2 s), signs off its links (up to 2 s)
        # and flushes its journal: only after all that may it be killed.
        super().__init__({n: f"{config.name}/{n}" for n in range(1, config.processes)},
                         backoff_s=0.5, backoff_max_s=30.0, stop_grace_s=drain_s + STOP_EXTRA_S)
        self.config = config
        self.table = table
        self.ports = dict(ports)
        self._control: dict[int, tuple[trio.abc.SendStream, trio.abc.ReceiveStream]] = {}
        self._buffers: dict[int, bytearray] = {}
        self._lock = trio.Lock()  # one control exchange at a time (replies are matched by id besides)
        self._ids = itertools.count(1)

    def command(self, index: int) -> list[str]:
        cmd = [sys.executable, "-m", "switch.runtime.process", "--conf", str(self.config.file), "--process",
               str(index), "--routes", self.table().source, *logs.child_args()]
        return cmd + [f"--port={name}={port}" for name, port in sorted(self.ports.items())]

    async def attached(self, index: int, process: trio.Process) -> None:
        """The process is "starting" until it says it is listening (its first line on the control pipe)."""
        assert process.stdin is not None and process.stdout is not None
        info = self.processes[index]
        info.state = "starting"
        self._buffers[index] = bytearray()
        self._control[index] = (process.stdin, process.stdout)
        try:
            # Only this task reads the pipe until the hello (reload() asks running processes only).
            hello: dict[str, Any] = {}
            with trio.move_on_after(READY_TIMEOUT_S):
                hello = await self._read(index)
            if hello.get("ready"):
                info.state = "running"
                log.info("node process %d: listening (pid %d)", index, process.pid)
            else:
                log.error("node process %d: not listening within %.0fs; restarting it", index, READY_TIMEOUT_S)
                self._terminate(process)
            await trio.sleep_forever()
        except (EOFError, ValueError, trio.BrokenResourceError, trio.ClosedResourceError):
            await trio.sleep_forever()  # it is ending: the supervisor sees it exit and restarts it
        finally:
            self._control.pop(index, None)
            self._buffers.pop(index, None)

    def ready(self) -> bool:
        return all(p.state == "running" for p in self.processes.values())

    async def reload(self, path: Path) -> list[dict[str, Any]]:
        """Have every running process load ``path`` (already validated and applied by the primary). A process
        that cannot is restarted: it starts on the new table (``--routes``), so no process keeps the old one."""
        results = []
        digest = self.table().digest
        async with self._lock:
            for index in sorted(i for i in self._control if self.processes[i].state == "running"):
                try:
                    with trio.fail_after(CONTROL_TIMEOUT_S):
                        reply = await self._ask(index, {"cmd": "routes.reload", "path": str(path), "digest": digest})
                except Exception as exc:  # ended meanwhile, pipe broken, no answer: each process on its own
                    reply = {"ok": False, "error": f"no answer ({type(exc).__name__})"}
                if not reply.get("ok"):
                    log.error("node process %d: routing table %s not applied (%s); restarting it", index, path,
                              reply.get("error"))
                    process = self.running(index)
                    if process is not None:
                        self._terminate(process)
                results.append({"process": index, **reply})
        return results

    async def _ask(self, index: int, command: dict[str, Any]) -> dict[str, Any]:
        """Send ``command`` and return the reply with its id: a reply left over from an earlier command that
        timed out is skipped, not taken for this one's."""
        ask_id = next(self._ids)
        control = self._control.get(index)
        if control is None:
            raise EOFError("the process has ended")
        await control[0].send_all(json.dumps({**command, "id": ask_id}).encode() + b"\n")
        while True:
            reply = await self._read(index)
            if reply.pop("id", None) == ask_id:
                return reply

    async def _read(self, index: int) -> dict[str, Any]:
        """The next JSON line from process ``index``."""
        control, buffer = self._control.get(index), self._buffers.get(index)
        if control is None or buffer is None:
            raise EOFError("the process has ended")
        receive = control[1]
        while b"\n" not in buffer:
            data = await receive.receive_some(65536)
            if not data:
                raise EOFError("control pipe closed")
            buffer += data
        line, _, rest = bytes(buffer).partition(b"\n")
        buffer[:] = rest
        reply = json.loads(line)
        if not isinstance(reply, dict):
            raise ValueError("control reply is not an object")
        return reply


# -- the other side: one extra node process -------------------------------------------------------------------
class WorkerNode(Protocol):
    """What an extra node process's control loop needs of its node."""

    @property
    def process(self) -> int: ...

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None: ...

    def stop(self) -> None: ...

    async def apply_routes(self, path: Path, digest: str) -> str:
        """Load ``path`` and run on it if its digest is ``digest`` (the primary's); the new digest, or
        :class:`ConfigError` / ValueError with the reason."""
        ...


async def _control(node: WorkerNode, stdout: trio.lowlevel.FdStream) -> None:
    """Serve the primary's commands on stdin (answers on stdout); stop the node when the pipe closes (the
    primary is gone, or stopped without SIGTERM reaching us)."""
    stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    buffer = b""
    try:
        while True:
            data = await stdin.receive_some(65536)
            if not data:
                break
            buffer += data
            while b"\n" in buffer:
                line, _, buffer = buffer.partition(b"\n")
                reply = await _command(node, line)
                await stdout.send_all(json.dumps(reply).encode() + b"\n")
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    log.warning("node process %d: the primary's control pipe closed; stopping", node.process)
    node.stop()


async def _command(node: WorkerNode, line: bytes) -> dict[str, Any]:
    ask_id = None
    try:
        command = json.loads(line)
        ask_id = command.get("id")
        if command.get("cmd") != "routes.reload":
            return {"id": ask_id, "ok": False, "error": f"unknown command {command.get('cmd')!r}"}
        path = Path(command["path"])
        digest = await node.apply_routes(path, command["digest"])
    except (ConfigError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return {"id": ask_id, "ok": False, "error": str(exc)}
    log.info("node process %d: routing table %s applied (%s)", node.process, path, digest[:12])
    return {"id": ask_id, "ok": True, "digest": digest}


async def _signals(node: WorkerNode, scope: trio.CancelScope) -> None:
    """SIGTERM from the primary: orderly stop; a second one stops at once. SIGINT is ignored (switch.runtime.process):
    Ctrl-C in a terminal reaches the whole process group, and the primary passes it on as one SIGTERM."""
    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        count = 0
        async for _ in signals:
            count += 1
            if count == 1:
                node.stop()
            else:
                scope.cancel()
                return


async def run_process(node: WorkerNode) -> None:
    stdout = trio.lowlevel.FdStream(os.dup(sys.stdout.fileno()))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_signals, node, nursery.cancel_scope)

        async def serve(task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
            await node.run(task_status=task_status)
            nursery.cancel_scope.cancel()

        await nursery.start(serve)
        # Listening (its links had their chance to come up first): tell the primary, then take its commands.
        await stdout.send_all(json.dumps({"ready": True, "pid": os.getpid()}).encode() + b"\n")
        nursery.start_soon(_control, node, stdout)
