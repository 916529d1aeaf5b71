"""The load client of ``python -m bench cell``: closed-loop 0200 purchases on one cell's internal link.

``python -m bench.cellclient PORT --decisions N --cards C --connections K --inflight I`` runs in a process of its
own (started by :mod:`bench.cell`), so the cell's process CPU is the cell's alone. Every request is built and
framed before the clock starts, as the node's ``cell-NN`` connector sends them (scheme ``generic``, framing
``binary2``): request n is :func:`bench.cellstore.purchase` ``(n, C)`` and goes out on connection ``n % K``.
Each connection keeps ``I`` requests outstanding; an answer frees its slot, refilled in the same turn. Answers
are matched by STAN within the connection (a request's STAN is unique among those in flight on it) and read
by walking the bitmap to fields 11 and 39 only (:class:`bench.loadgen._Walker`), so the client costs little
CPU next to the cell it measures.

Prints one JSON line: answers, response codes, seconds from the first send to the last answer, latency
percentiles (nearest rank, milliseconds), and what went wrong (unmatched or unreadable answers, requests lost
with a closed connection).
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.cellstore import purchase
from bench.harness import field_plan
from bench.loadgen import READ_SIZE, _Walker
from bench.phases import percentile
from schemes.generic import SCHEME
from switch.wire.framing import LengthFraming

HEADER = 2  # binary2: a 2-byte big-endian length before each message
IDLE_TIMEOUT_S = 10.0  # no answer on any connection for this long: the cell is stuck, give up


class ClientError(Exception):
    """The run could not complete (the cell stopped answering)."""


@dataclass
class _Conn:
    sock: socket.socket
    requests: list[tuple[bytes, bytes]]  # (STAN, framed request), in sending order
    next: int = 0
    pending: dict[bytes, float] = field(default_factory=dict)  # STAN -> sent at
    inbuf: bytes = b""

    def send(self, count: int, now: float) -> None:
        """Send up to ``count`` more requests in one write."""
        batch = self.requests[self.next:self.next + count]
        self.next += len(batch)
        for stan, _ in batch:
            self.pending[stan] = now
        if batch:
            # A blocking send with a timeout: what is outstanding is capped by ``inflight``, so the socket buffers
            # hold it and the cell never waits for us to read while we wait for it to read.
            self.sock.sendall(b"".join(frame for _, frame in batch))


@dataclass
class Result:
    answered: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    unmatched: int = 0
    unreadable: int = 0
    lost: int = 0  # outstanding when a connection closed

    def to_json(self) -> dict[str, Any]:
        return {"answered": self.answered, "codes": dict(self.codes), "seconds": self.seconds,
                "latency_ms": self.latency_ms, "unmatched": self.unmatched, "unreadable": self.unreadable,
                "lost": self.lost}


def build_requests(decisions: int, cards: int, connections: int) -> list[list[tuple[bytes, bytes]]]:
    """Per connection, its (STAN, framed request) pairs."""
    framer = LengthFraming("binary2").framer()
    out: list[list[tuple[bytes, bytes]]] = [[] for _ in range(connections)]
    for n in range(decisions):
        request = purchase(n, cards)
        out[n % connections].append(((request.text(11) or "").encode(), framer.encode(SCHEME.encode(request))))
    return out


def run(port: int, requests: list[list[tuple[bytes, bytes]]], inflight: int, host: str = "127.0.0.1") -> Result:
    """Connect once per non-empty request list, drive the closed loop until every request is answered (or its
    connection closed), and return what was measured."""
    result = Result()
    walker = _Walker(field_plan())
    latencies = array("d")
    selector = selectors.DefaultSelector()
    conns: list[_Conn] = []
    try:
        for mine in requests:
            if mine:
                sock = socket.create_connection((host, port), timeout=IDLE_TIMEOUT_S)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn = _Conn(sock, mine)
                conns.append(conn)
                selector.register(sock, selectors.EVENT_READ, conn)
        started = last = time.monotonic()
        for conn in conns:
            conn.send(inflight, started)
        open_conns = len(conns)
        while open_conns:
            events = selector.select(IDLE_TIMEOUT_S)
            if not events:
                raise ClientError(f"no answer for {IDLE_TIMEOUT_S:g} s with "
                                  f"{sum(len(c.pending) for c in conns)} requests outstanding")
            for key, _ in events:
                conn = key.data
                data = conn.sock.recv(READ_SIZE)
                now = time.monotonic()
                if not data:
                    result.lost += len(conn.pending) + len(conn.requests) - conn.next
                    selector.unregister(conn.sock)
                    open_conns -= 1
                    continue
                freed = _receive(conn, data, now, walker, result, latencies)
                if freed:
                    last = now
                    conn.send(freed, now)
                if not conn.pending and conn.next == len(conn.requests):
                    selector.unregister(conn.sock)
                    open_conns -= 1
    finally:
        selector.close()
        for conn in conns:
            conn.sock.close()
    result.seconds = last - started
    ordered = sorted(latencies)
    result.latency_ms = {
        "p50": percentile(ordered, 50) * 1000, "p99": percentile(ordered, 99) * 1000,
        "max": (ordered[-1] if ordered else 0.0) * 1000,
        "mean": (sum(ordered) / len(ordered) if ordered else 0.0) * 1000,
    }
    return result


def _receive(conn: _Conn, data: bytes, now: float, walker: _Walker, result: Result, latencies: array[float]) -> int:
    """Take the complete frames out of ``conn``'s input; returns how many requests they answered."""
    buf = conn.inbuf + data if conn.inbuf else data
    at, end, freed = 0, len(buf), 0
    while end - at >= HEADER:
        size = int.from_bytes(buf[at:at + HEADER], "big")
        if end - at - HEADER < size:
            break
        body = buf[at + HEADER:at + HEADER + size]
        at += HEADER + size
        if not size:
            continue  # a keep-alive frame
        try:
            stan, code = walker.read(body)
        except ValueError:
            result.unreadable += 1
            continue
        sent_at = conn.pending.pop(stan, None)
        if sent_at is None:
            result.unmatched += 1
            continue
        freed += 1
        result.answered += 1
        result.codes[code.decode("ascii", "replace") or "--"] += 1
        latencies.append(now - sent_at)
    conn.inbuf = buf[at:]
    return freed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cellclient", description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int, help="the cell's internal-link port on 127.0.0.1")
    parser.add_argument("--decisions", type=int, required=True, help="requests to send in total")
    parser.add_argument("--cards", type=int, required=True, help="cards the purchases cycle over")
    parser.add_argument("--connections", type=int, default=8, help="connections (default 8)")
    parser.add_argument("--inflight", type=int, default=32, help="requests outstanding per connection (32)")
    args = parser.parse_args(argv)
    if min(args.decisions, args.cards, args.connections, args.inflight) < 1:
        parser.error("decisions, cards, connections and inflight must be at least 1")
    requests = build_requests(args.decisions, args.cards, args.connections)
    print(json.dumps(run(args.port, requests, args.inflight).to_json()), flush=True)


if __name__ == "__main__":
    main()
