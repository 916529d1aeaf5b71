"""The load generator of the end-to-end benchmark: one OS process, plain non-blocking sockets and a selector.

Why not :mod:`switch.sim.acquirer`: that one decodes every response with the scheme's codec and runs on trio,
which is right for a simulator but would make the generator cost about as much CPU per message as the switch
it measures. Here every request is encoded and framed once per connection before the clock starts; sending
one only patches its STAN (field 11) and RRN (field 37) in place, and a response is read by walking its
bitmap to fields 11 and 39 and nothing else (the plan of that walk is cached per bitmap).

Requests are matched to responses by STAN within a connection: every connection has its own terminal id
(field 41), so the STAN alone is unique among its requests in flight (ISO 8583:1987 defines the STAN per
terminal/acquirer; the switch's own key is MTI class + 11 + 41).

Two modes:
- closed loop (``rate == 0``): every connection keeps ``inflight`` requests outstanding; each answer frees a
  slot that is refilled in the same turn of the loop, and everything sent in one turn goes out in one
  ``send`` per connection;
- paced (``rate > 0``): request k is due at ``t0 + k / rate`` and its latency counts from that moment, not
  from when it was actually sent, so a switch that falls behind is not flattered by the generator waiting
  for it (coordinated omission); ``inflight`` still caps what one connection may have outstanding;
- phased (``phases``): paced, in phases of different rates (:mod:`bench.phases`), with every answer's due time,
  latency and code kept for the overload figures; give it an ``inflight`` no connection reaches for an open loop.

No trio, no switch code is imported by the worker loop: it runs in a fresh process started by the harness.
"""

from __future__ import annotations

import errno
import selectors
import socket
import time
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from bench.phases import Schedule, record

READ_SIZE = 262_144
STAN_MODULO = 999_999  # STANs run 000001..999999 (n6)


@dataclass(frozen=True)
class Template:
    """One pre-framed request with the offsets of its STAN (6 bytes) and RRN (12 bytes) in the frame, and the
    index of its kind in the scenario's mix (answers are counted per kind)."""

    frame: bytes
    stan_at: int
    rrn_at: int | None  # 0800s carry no RRN
    kind: int = 0


@dataclass(frozen=True)
class FieldPlan:
    """What the response walker needs from the scheme's spec: for fields 2..39, ``(length-prefix digits,
    max length)``; a prefix of 0 means a fixed-length field of ``max length`` bytes."""

    lengths: tuple[tuple[int, int], ...]  # index = field number; entries 0 and 1 unused
    header: int = 2  # binary2 framing: 2-byte big-endian length, not counting itself


@dataclass(frozen=True)
class WorkerSpec:
    """Everything one generator process needs; picklable."""

    host: str
    connections: list[tuple[int, list[Template]]]  # per connection: (port, the requests, cycled in order)
    inflight: int
    rate: float  # requests per second for this worker; 0 = closed loop
    warmup: float
    duration: float
    drain: float  # seconds to wait for answers after the last send
    plan: FieldPlan
    rrn_prefix: str  # 3 digits, distinct per worker
    phases: tuple[tuple[float, float], ...] = ()  # (seconds, requests per second for this worker); replaces rate


@dataclass
class WorkerResult:
    sent: int = 0
    answered: int = 0  # answers received inside the measured window (what TPS counts)
    answered_total: int = 0
    timeouts: int = 0  # still unanswered when the drain ended
    unmatched: int = 0  # answers whose STAN matched nothing in flight
    errors: int = 0  # requests lost with a closed connection, and unreadable answers
    codes: Counter[str] = field(default_factory=Counter)  # field 39 of answers to requests sent in the window
    kind_codes: dict[int, Counter[str]] = field(default_factory=dict)  # the same per kind (Template.kind)
    approvals: Counter[int] = field(default_factory=Counter)  # "00" answers per kind, whenever sent
    latencies: bytes = b""  # array('d') of seconds, one per answered request sent in the window
    backlog_max: int = 0  # paced mode: most requests that were due but had no free slot at once
    samples: bytes = b""  # phased mode: array('d') of (due, latency, code) per answer (bench.phases.record)
    unanswered: bytes = b""  # phased mode: array('d') of the due times of requests never answered


class _Conn:
    __slots__ = ("alive", "buffers", "inbuf", "next", "out", "pending", "seq", "sock", "templates", "writing")

    def __init__(self, sock: socket.socket, templates: list[Template]) -> None:
        self.sock = sock
        self.templates = templates
        self.buffers = [bytearray(t.frame) for t in templates]
        self.next = 0
        self.seq = 0
        self.pending: dict[bytes, tuple[float, int]] = {}  # STAN -> (sent at, kind)
        self.out: list[bytes] = []
        self.inbuf = b""
        self.alive = True
        self.writing = False  # registered for EVENT_WRITE: the kernel's buffer was full at the last send


class _Walker:
    """Reads fields 11 and 39 of a generic-layout body (ASCII MTI, 8-byte binary bitmap, ASCII lengths)."""

    def __init__(self, plan: FieldPlan) -> None:
        self.lengths = plan.lengths
        self.plans: dict[bytes, tuple[tuple[int, int, int], ...]] = {}

    def _plan(self, bitmap: bytes) -> tuple[tuple[int, int, int], ...]:
        bits = int.from_bytes(bitmap, "big")
        steps = []
        for number in range(2, 40):
            if bits >> (64 - number) & 1:
                prefix, size = self.lengths[number]
                steps.append((number, prefix, size))
        plan = tuple(steps)
        self.plans[bitmap] = plan
        return plan

    def read(self, body: bytes) -> tuple[bytes, bytes]:
        """(STAN, response code); empty bytes for a field that is absent."""
        bitmap = body[4:12]
        plan = self.plans.get(bitmap) or self._plan(bitmap)
        at = 20 if body[4] & 0x80 else 12  # a secondary bitmap follows the primary one when bit 1 is set
        stan = code = b""
        for number, prefix, size in plan:
            if prefix:
                size = int(body[at:at + prefix])
                at += prefix
            if number == 11:
                stan = body[at:at + 6]
            elif number == 39:
                code = body[at:at + 2]
            at += size
        return stan, code


def run_worker(spec: WorkerSpec, start: Callable[[], float]) -> WorkerResult:
    """Connect, call ``start()`` for the common start time (a ``time.monotonic()`` value: CLOCK_MONOTONIC
    is system-wide, so every process agrees on it), drive the load, drain, and return what was measured."""
    result = WorkerResult()
    walker = _Walker(spec.plan)
    selector = selectors.DefaultSelector()
    conns = []
    for port, templates in spec.connections:
        sock = socket.create_connection((spec.host, port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        conn = _Conn(sock, templates)
        conns.append(conn)
        selector.register(sock, selectors.EVENT_READ, conn)
    t0 = start()
    latencies = array("d")
    codes: Counter[tuple[int, bytes]] = Counter()
    approvals: Counter[int] = Counter()
    header = spec.plan.header
    inflight = spec.inflight
    schedule = Schedule(spec.phases) if spec.phases else None
    rate = spec.rate if schedule is None else 1.0
    samples = array("d") if schedule is not None else None
    unanswered = array("d")
    if schedule is None:
        def due_count(elapsed: float) -> int:
            return int(elapsed * rate) + 1

        def due_at(k: int) -> float:
            return k / rate
        measure_from = t0 + spec.warmup
        stop_at = measure_from + spec.duration
    else:
        due_count, due_at = schedule.due_count, schedule.due_at
        measure_from, stop_at = t0, t0 + schedule.duration
    rrn_prefix = spec.rrn_prefix.encode()
    monotonic = time.monotonic

    def queue(conn: _Conn, sent_at: float) -> None:
        index = conn.next
        conn.next = (index + 1) % len(conn.templates)
        template = conn.templates[index]
        buffer = conn.buffers[index]
        seq = conn.seq
        conn.seq = seq + 1
        stan = b"%06d" % (seq % STAN_MODULO + 1)
        buffer[template.stan_at:template.stan_at + 6] = stan
        if template.rrn_at is not None:
            buffer[template.rrn_at:template.rrn_at + 12] = rrn_prefix + b"%09d" % seq
        conn.pending[stan] = (sent_at, template.kind)
        conn.out.append(bytes(buffer))

    def flush(conn: _Conn) -> None:
        if not conn.out or not conn.alive:
            return
        data = b"".join(conn.out)
        conn.out.clear()
        try:
            sent = conn.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            lose(conn)
            return
        if sent < len(data):
            conn.out.append(data[sent:])
            if not conn.writing:
                conn.writing = True
                selector.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)
        elif conn.writing:
            conn.writing = False
            selector.modify(conn.sock, selectors.EVENT_READ, conn)

    def lose(conn: _Conn) -> None:
        if conn.alive:
            conn.alive = False
            result.errors += len(conn.pending)
            if samples is not None:  # never answered: lost, in the phase they were due in
                unanswered.extend(sent_at - t0 for sent_at, _ in conn.pending.values())
            conn.pending.clear()
            selector.unregister(conn.sock)

    def receive(conn: _Conn, now: float) -> int:
        try:
            data = conn.sock.recv(READ_SIZE)
        except BlockingIOError:
            return 0
        except OSError:
            lose(conn)
            return 0
        if not data:
            lose(conn)
            return 0
        buf = conn.inbuf + data if conn.inbuf else data
        at, end, freed = 0, len(buf), 0
        pending = conn.pending
        while end - at >= header:
            size = int.from_bytes(buf[at:at + header], "big")
            if end - at - header < size:
                break
            body = buf[at + header:at + header + size]
            at += header + size
            if not size:
                continue  # a keep-alive frame
            try:
                stan, code = walker.read(body)
            except ValueError:
                result.errors += 1
                continue
            entry = pending.pop(stan, None)
            if entry is None:
                result.unmatched += 1
                continue
            sent_at, kind = entry
            if code == b"00":
                approvals[kind] += 1
            freed += 1
            result.answered_total += 1
            if measure_from <= now <= stop_at:
                result.answered += 1
            if sent_at >= measure_from:
                latencies.append(now - sent_at)
                codes[kind, code] += 1
            if samples is not None:
                record(samples, sent_at - t0, now - sent_at, code)
        conn.inbuf = buf[at:]
        return freed

    # Wait for the common start so that every worker's window is the same.
    while (delay := t0 - monotonic()) > 0:
        time.sleep(min(delay, 0.05))
    sending = True
    due_sent = 0  # paced mode: requests scheduled so far (request k is due at t0 + k / rate)
    turn = 0
    if not rate:
        now = monotonic()
        for conn in conns:
            for _ in range(inflight):
                queue(conn, now)
            flush(conn)
        result.sent += inflight * len(conns)
    while True:
        now = monotonic()
        if sending and now >= stop_at:
            sending = False
        if not sending and (now >= stop_at + spec.drain or not any(c.pending for c in conns if c.alive)):
            break
        timeout = 0.05
        if sending and rate:
            due = due_count(now - t0)
            while due_sent < due:
                # Round robin over the connections with room; the due time, not now, starts the clock.
                for _ in range(len(conns)):
                    conn = conns[turn]
                    turn = (turn + 1) % len(conns)
                    if conn.alive and len(conn.pending) < inflight:
                        queue(conn, t0 + due_at(due_sent))
                        due_sent += 1
                        result.sent += 1
                        break
                else:
                    result.backlog_max = max(result.backlog_max, due - due_sent)
                    break
            for conn in conns:
                flush(conn)
            # At least half a millisecond: waking once per request at high rates would cost the generator
            # more CPU than the sends; requests then leave in small bursts (latency still counts from due).
            timeout = max(0.0005, t0 + due_at(due_sent) - monotonic())
        if not any(c.alive for c in conns):
            break
        for key, mask in selector.select(min(timeout, 0.05)):
            conn = key.data
            if mask & selectors.EVENT_WRITE:
                flush(conn)
            if mask & selectors.EVENT_READ:
                now = monotonic()
                freed = receive(conn, now)
                if freed and sending and not rate and now < stop_at:
                    for _ in range(freed):
                        queue(conn, now)
                    result.sent += freed
                    flush(conn)
    for conn in conns:
        result.timeouts += len(conn.pending)
        if samples is not None:
            unanswered.extend(sent_at - t0 for sent_at, _ in conn.pending.values())
        if conn.alive:
            selector.unregister(conn.sock)
        try:
            conn.sock.close()
        except OSError as exc:  # closing a socket the peer reset is not a measurement error
            if exc.errno not in (errno.ECONNRESET, errno.EPIPE):
                raise
    selector.close()
    for (kind, code), n in codes.items():
        text = code.decode("ascii", "replace") or "--"
        result.codes[text] += n
        result.kind_codes.setdefault(kind, Counter())[text] += n
    result.approvals = approvals
    result.latencies = latencies.tobytes()
    if samples is not None:
        result.samples, result.unanswered = samples.tobytes(), unanswered.tobytes()
    return result


def worker_main(spec: WorkerSpec, pipe: Connection) -> None:
    """Entry point of a generator process. Protocol on ``pipe``: the worker sends "ready" once connected, the
    parent answers with the start time, the worker sends its :class:`WorkerResult` (or an error text)."""

    def start() -> float:
        pipe.send("ready")
        t0 = pipe.recv()
        assert isinstance(t0, float)
        return t0

    try:
        pipe.send(run_worker(spec, start))
    except Exception as exc:  # the parent reports it; a worker's traceback tells the reader nothing more
        pipe.send(f"{type(exc).__name__}: {exc}")
    finally:
        pipe.close()
