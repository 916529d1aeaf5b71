"""A running node on loopback for integration tests: issuer simulators, a node wired to them, and a small
ISO 8583 client that speaks the node's acquirer format over a real socket."""

from __future__ import annotations

import itertools
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import trio
from click.testing import CliRunner, Result

from bench.ports import free_port
from schemes.generic import SCHEME
from switch.cli.main import main as bulkhead
from switch.config import parse_config
from switch.contracts.network import Network
from switch.model.message import Message
from switch.runtime.node import Node
from switch.sim.issuer import IssuerConfig, IssuerStats, serve_issuer
from switch.sim.rules import rules_from_dict
from switch.wire.framing import LengthFraming

PAN = "4761739001010010"

NODE_TOML = """
[node]
name = "itest"
var_dir = "{var}"
database_url = "{db}"
routes = "routes.toml"

[saf]
initial_delay_ms = {saf_delay}
retry_interval_ms = {saf_retry}
max_interval_ms = {saf_max}
send_timeout_ms = {send_timeout}
poll_interval_ms = 100
max_attempts = {saf_attempts}
window = {saf_window}

[[listeners]]
name = "acquirer"
port = 0
scheme = "generic"
framing = {{ kind = "binary2" }}
on_format_error = "keep"

[[listeners]]
name = "atm"
port = 0
scheme = "atm"
framing = {{ kind = "binary2" }}
"""

CONNECTOR_TOML = """
[[connectors]]
name = "{name}"
hosts = [{hosts}]
scheme = "generic"
framing = {{ kind = "binary2" }}
timeout_ms = {timeout_ms}
echo_interval_s = {echo_interval_s}
backoff_initial_ms = 50
backoff_max_ms = 200
own_stan = {own_stan}
"""


def connector_toml(name: str, ports: int | list[int], *, timeout_ms: int = 2000,
                   echo_interval_s: float = 30, own_stan: bool = True) -> str:
    """A ``[[connectors]]`` section to 127.0.0.1 on ``ports`` (several: alternate hosts, tried in order)."""
    hosts = ", ".join(f'"127.0.0.1:{p}"' for p in ([ports] if isinstance(ports, int) else ports))
    return CONNECTOR_TOML.format(name=name, hosts=hosts, timeout_ms=timeout_ms, echo_interval_s=echo_interval_s,
                                 own_stan="true" if own_stan else "false")


ROUTES_ONE = """
default = "issuer"
[destinations.issuer]
links = ["{link}"]
[[routes]]
name = "blocked"
bins = ["999999"]
action = "reject"
"""


@dataclass
class Issuer:
    name: str
    port: int
    stats: IssuerStats
    cancel: trio.CancelScope


@asynccontextmanager
async def issuer(rules: dict[str, object] | None = None, port: int | None = None) -> AsyncIterator[Issuer]:
    """An issuer simulator on ``port`` (to come back where a stopped one was), else on a port of
    :func:`bench.ports.free_port`: not port 0, because a connector keeps retrying the number after the issuer
    stops, and a number of the ephemeral range could be lent meanwhile to some connection -- the connector's own
    among them -- so that the issuer could not come back on it."""
    stats = IssuerStats()
    cfg = IssuerConfig(port=free_port() if port is None else port, rules=rules_from_dict(rules or {}, "<test>"))
    async with trio.open_nursery() as nursery:
        scope = trio.CancelScope()

        async def run(task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
            with scope:
                await serve_issuer(cfg, stats=stats, task_status=task_status)

        bound = await nursery.start(run)
        yield Issuer("issuer", bound, stats, scope)
        scope.cancel()


def write_config(tmp: Path, db_url: str, connectors: dict[str, int], routes: str, *, timeout_ms: int = 2000,
                 saf_delay_ms: int = 100, saf_send_timeout_ms: int = 2000, saf_retry_ms: int = 200,
                 echo_interval_s: float = 30, extra: str = "", saf_max_attempts: int = 10,
                 saf_window: int = 32, own_stan: bool = True) -> Path:
    """Write node.toml and routes.toml into ``tmp``; ``extra`` is TOML appended as is (more listeners or
    connectors, e.g. from :func:`connector_toml`)."""
    text = NODE_TOML.format(var=tmp / "var", db=db_url, saf_delay=saf_delay_ms, send_timeout=saf_send_timeout_ms,
                            saf_retry=saf_retry_ms, saf_max=max(1000, saf_retry_ms), saf_attempts=saf_max_attempts,
                            saf_window=saf_window)
    for name, port in connectors.items():
        text += connector_toml(name, port, timeout_ms=timeout_ms, echo_interval_s=echo_interval_s, own_stan=own_stan)
    text += extra
    (tmp / "node.toml").write_text(text)
    (tmp / "routes.toml").write_text(routes)
    return tmp / "node.toml"


@asynccontextmanager
async def running_node(conf: Path) -> AsyncIterator[Node]:
    cfg = parse_config(conf.read_text(), conf)
    node = Node(cfg)
    stopped = trio.Event()

    async def run(task_status: trio.TaskStatus[Node]) -> None:
        try:
            await node.run(task_status=task_status)
        finally:
            stopped.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(run)
        # Wait until every connector has signed on (bounded: the test fails rather than hangs).
        with trio.fail_after(10):
            while not all(link.is_up() for link in node.outbound.values()):
                await trio.sleep(0.01)
        try:
            yield node
        finally:
            # An orderly stop, bounded: a node that does not stop fails the test instead of hanging the suite.
            node.stop()
            with trio.move_on_after(node.drain_seconds() + 15) as bound:
                await stopped.wait()
            if bound.cancelled_caught:
                nursery.cancel_scope.cancel()
                raise AssertionError(f"node {node.name} did not stop within {node.drain_seconds() + 15:.0f}s")


def port_of(node: Node, listener: str = "acquirer") -> int:
    port = node.listeners[listener].port
    assert port is not None
    return port


_stan = itertools.count(1)


def purchase(pan: str = PAN, amount: int = 1000, stan: int | None = None, mti: str = "0200",
             terminal: str = "TERM0001") -> Message:
    n = stan if stan is not None else next(_stan)
    return Message(mti, {
        2: pan, 3: "000000", 4: f"{amount:012d}", 7: "1122101010", 11: f"{n % 1_000_000:06d}",
        12: "101010", 13: "1122", 22: "051", 37: f"{n:012d}", 41: terminal, 42: "MERCHANT0000001", 49: "840",
    })


@dataclass
class Client:
    """Pipelined ISO 8583 client: requests matched to responses by STAN + terminal id."""

    stream: trio.SocketStream
    framer_kind: str = "binary2"
    # The network the client speaks: the generic layout, or the ATM interface for terminals.
    scheme: Network = field(default_factory=lambda: SCHEME)
    responses: dict[tuple[str, str], list[Message]] = field(default_factory=dict)
    waiting: dict[tuple[str, str], trio.Event] = field(default_factory=dict)
    unmatched: list[Message] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.framer = LengthFraming(self.framer_kind).framer()

    @staticmethod
    def key(msg: Message) -> tuple[str, str]:
        return (str(msg.get(11)), str(msg.get(41)))

    async def send_raw(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def send(self, msg: Message) -> None:
        self.waiting.setdefault(self.key(msg), trio.Event())
        await self.stream.send_all(self.framer.encode(self.scheme.encode(msg)))

    async def reader(self) -> None:
        while True:
            data = await self.stream.receive_some(65536)
            if not data:
                return
            self.framer.receive_data(bytes(data))
            while (frame := self.framer.next_frame()) is not None:
                if frame.keepalive:
                    continue
                msg = self.scheme.decode(frame.body)
                key = self.key(msg)
                self.responses.setdefault(key, []).append(msg)
                event = self.waiting.get(key)
                if event is None:
                    self.unmatched.append(msg)
                else:
                    event.set()

    async def wait(self, msg: Message, timeout: float = 5.0) -> Message:
        key = self.key(msg)
        with trio.fail_after(timeout):
            await self.waiting[key].wait()
        return self.responses[key][0]

    async def call(self, msg: Message, timeout: float = 5.0) -> Message:
        await self.send(msg)
        return await self.wait(msg, timeout)


@asynccontextmanager
async def client(port: int, scheme: Network = SCHEME) -> AsyncIterator[Client]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    c = Client(stream, scheme=scheme)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(c.reader)
        yield c
        nursery.cancel_scope.cancel()
    await stream.aclose()


@dataclass
class Recorder:
    """A minimal issuer host that keeps every message it receives (field 70 and all) and answers 00."""

    port: int
    received: list[Message]
    cancel: trio.CancelScope

    def network_codes(self) -> list[str]:
        """Field 70 of every 0800 received, in order (001 sign-on, 002 sign-off, 301 echo)."""
        return [str(m[70]) for m in self.received if m.mti == "0800"]


@asynccontextmanager
async def recording_issuer(unanswered: frozenset[str] = frozenset(), *, hold: frozenset[str] = frozenset(),
                           port: int | None = None) -> AsyncIterator[Recorder]:
    """``unanswered``: field 70 codes of 0800s to receive and never answer (a host that ignores echoes);
    ``hold``: MTIs of requests to receive and never answer (a host that stalls)."""
    received: list[Message] = []

    async def handle(stream: trio.SocketStream) -> None:
        framer = LengthFraming("binary2").framer()
        async with stream:
            try:
                while data := await stream.receive_some(65536):
                    framer.receive_data(bytes(data))
                    while (frame := framer.next_frame()) is not None:
                        if frame.keepalive:
                            continue
                        msg = SCHEME.decode(frame.body)
                        received.append(msg)
                        if msg.mti in hold:
                            continue
                        if msg.is_request and not (msg.mti == "0800" and msg.get(70) in unanswered):
                            answer = SCHEME.encode(SCHEME.make_response(msg, "00"))
                            await stream.send_all(framer.encode(answer, reply_to=frame))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return

    port = free_port() if port is None else port  # a connector's host: see issuer()
    listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
    async with trio.open_nursery() as nursery:
        scope = trio.CancelScope()

        async def serve() -> None:
            with scope:
                await trio.serve_listeners(handle, listeners)

        nursery.start_soon(serve)
        yield Recorder(port, received, scope)
        scope.cancel()


@contextmanager
def refusing_port() -> Iterator[int]:
    """A loopback port that refuses connections: reserved (:func:`bench.ports.free_port`) and bound, so nobody
    else takes it, but not listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", free_port()))
        yield sock.getsockname()[1]


class Cli:
    """Runs ``bulkhead`` commands (off the trio thread when awaited) and keeps every output, so a test's fixture
    can check that none of them shows a clear PAN (:meth:`assert_no_clear_pan`)."""

    def __init__(self, conf: Path, clear_pans: tuple[str, ...]) -> None:
        self.conf = conf
        self.clear_pans = clear_pans
        self.outputs: list[str] = []

    def run(self, *args: str) -> Result:
        result = CliRunner().invoke(bulkhead, [*args, "--conf", str(self.conf)], catch_exceptions=False)
        self.outputs.append(result.output)
        return result

    async def __call__(self, *args: str) -> Result:
        return await trio.to_thread.run_sync(lambda: self.run(*args))

    def assert_no_clear_pan(self) -> None:
        for output in self.outputs:
            for pan in self.clear_pans:
                assert pan not in output
