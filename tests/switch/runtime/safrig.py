"""A rig for the store-and-forward forwarder: the real queue (SQLite, and PostgreSQL when configured) and
destinations whose answers the test decides (tests/switch/runtime/test_safd*.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import trio
from sqlalchemy import Engine

from schemes.generic import SCHEME
from switch.config import SafConfig
from switch.exchange.ports import Answer, LinkDown
from switch.exchange.reversal import build_reversal, build_stand_in_advice
from switch.infra.datakey import DataKeys
from switch.model.errors import EncodeError
from switch.model.message import Message
from switch.runtime.safd import SafForwarder, SafLink, SafQueue
from switch.storage.saf import SafItem, SafStore

KEYS = DataKeys(bytes(range(32)))
PAN = "4761739001010010"


def purchase(n: int) -> Message:
    return Message("0200", {
        2: PAN, 3: "000000", 4: f"{1000 + n:012d}", 7: "0101120000", 11: f"{n:06d}", 32: "00000000001",
        37: f"{n:012d}", 41: "TERM0001", 49: "840",
    })


def advice(n: int) -> Message:
    return build_stand_in_advice(purchase(n), "S00001", repeat=False)


def reversal(n: int) -> Message:
    return build_reversal(purchase(n), "68", transmission_time="0101120500")


def tag(msg: Message) -> str:
    """``A3`` for the advice of purchase 3 (any MTI of the 02 class), ``R3`` for its reversal."""
    return ("A" if msg.mti.startswith("02") else "R") + str(int(str(msg[11])))


@dataclass
class Destination:
    """A destination's link whose answers the test decides: ``hold(tag)`` keeps a request unanswered until
    ``release(tag)``; ``codes`` answers a tag with something else than 00; ``silent`` answers nothing at all.
    ``log`` is every request and answer in order (two destinations may share one); ``on_request`` sees each
    request as it arrives. ``capacity``: like a connector's ``max_inflight``, a request beyond it is refused
    with LinkDown before anything is sent."""

    codes: dict[str, str] = field(default_factory=dict)
    held: set[str] = field(default_factory=set)
    hold_all: bool = False
    silent: bool = False
    received: list[Message] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    on_request: Callable[[Message], None] = lambda msg: None
    latency: float = 0.01
    capacity: int | None = None
    refused: int = 0
    unencodable: set[str] = field(default_factory=set)  # tags the link's format cannot carry (EncodeError)
    _gates: dict[str, trio.Event] = field(default_factory=dict)

    def hold(self, *tags: str) -> None:
        self.held.update(tags)

    def release(self, *tags: str) -> None:
        for t in tags:
            self.held.discard(t)
            gate = self._gates.pop(t, None)
            if gate is not None:
                gate.set()

    def release_all(self) -> None:
        self.hold_all = False
        self.held.clear()
        for gate in self._gates.values():
            gate.set()
        self._gates.clear()

    def tags(self) -> list[str]:
        return [tag(m) for m in self.received]

    async def request(self, msg: Message, timeout: float | None = None) -> Answer:
        t = tag(msg)
        if t in self.unencodable:  # as a connector raises it: before anything is registered or sent
            raise EncodeError("the destination's format cannot carry it", "43")
        if self.capacity is not None and self.in_flight >= self.capacity:
            self.refused += 1
            raise LinkDown(f"{self.in_flight} requests in flight (max_inflight)")
        self.on_request(msg)
        self.received.append(msg)
        self.log.append(f"sent {t}")
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await trio.sleep(self.latency)  # the round trip
            if self.silent:
                await trio.sleep_forever()
            if self.hold_all or t in self.held:
                gate = self._gates[t] = trio.Event()
                await gate.wait()
            self.log.append(f"answered {t}")
            return SCHEME.make_response(msg, self.codes.get(t, "00"))
        finally:
            self.in_flight -= 1


@dataclass
class Rig:
    store: SafStore
    queue: SafQueue
    forwarder: SafForwarder
    links: dict[str, Destination]

    async def enqueue(self, *entries: tuple[str, Message]) -> list[int]:
        before = {i.id for i in await self.items()}
        await self.queue.enqueue([(destination, msg, tag(msg)) for destination, msg in entries])
        return sorted(i.id for i in await self.items() if i.id not in before)

    async def items(self) -> list[SafItem]:
        return await trio.to_thread.run_sync(lambda: self.store.list_items(limit=1000))

    async def by_tag(self) -> dict[str, SafItem]:
        return {item.original_trace_id or "": item for item in await self.items()}


def rig(engine: Engine, **saf: int) -> Rig:
    settings = dict(initial_delay_ms=0, retry_interval_ms=60_000, max_interval_ms=60_000, send_timeout_ms=5000,
                    poll_interval_ms=50)
    cfg = SafConfig(**{**settings, **saf})
    store = SafStore(engine)
    queue = SafQueue(store, KEYS, cfg)
    links: dict[str, Destination] = {}

    def link(name: str) -> SafLink | None:
        return links.get(name)

    return Rig(store, queue, SafForwarder(queue, link, lambda summary: None), links)


async def until(check: Callable[[], bool], timeout: float = 10) -> None:
    with trio.fail_after(timeout):
        while not check():
            await trio.sleep(0.005)
