"""Exchange tasks: an exchange that cannot go on in a task is handed back to the node, whatever ended it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import trio

from schemes.generic import SCHEME
from switch.exchange.context import Exchange
from switch.model.message import Message
from switch.routing import parse_routes
from switch.runtime.tasks import ExchangeTasks
from switch.wire.framing import Frame

ROUTES = parse_routes('default = "up"\n[destinations.up]\nlinks = ["up"]\n', Path("routes.toml"),
                      known_links=frozenset({"up"}))


class _Source:
    def send_frame(self, body: bytes, reply_to: Frame | None = None) -> None: ...
    def exchange_started(self) -> None: ...
    def exchange_done(self) -> None: ...


def _exchange(stan: str) -> Exchange:
    return Exchange(request=Message("0200", {11: stan}), source="acquirer", network=SCHEME, conn=_Source(),
                    frame=Frame(b"x"), table=ROUTES, received_at=datetime.now(UTC), t0=0.0)


async def test_cancelled_refused_and_crashed_exchanges_are_all_handed_back() -> None:
    stranded: list[Exchange] = []
    tasks = ExchangeTasks(stranded.append)
    waiting, crashing, late = _exchange("000001"), _exchange("000002"), _exchange("000003")
    started = trio.Event()

    async def wait_forever() -> None:
        started.set()
        await trio.sleep_forever()

    async def crash() -> None:
        raise RuntimeError("a bug the pipeline did not catch")

    async with trio.open_nursery() as nursery:
        tasks.nursery = nursery
        tasks.spawn(waiting, wait_forever)
        tasks.spawn(crashing, crash)
        await started.wait()
        await trio.sleep(0)
        nursery.cancel_scope.cancel()  # the node stopping hard
    tasks.spawn(late, wait_forever)  # the work nursery is gone: refused
    assert stranded == [crashing, waiting, late]


async def test_a_parked_worker_takes_the_next_exchange() -> None:
    done: list[str] = []
    tasks = ExchangeTasks(lambda x: done.append("stranded"))
    async with trio.open_nursery() as nursery:
        tasks.nursery = nursery
        for n in range(3):
            finished = trio.Event()

            async def job(n: int = n, finished: trio.Event = finished) -> None:
                done.append(f"job {n}")
                finished.set()

            tasks.spawn(_exchange(f"{n:06d}"), job)
            await finished.wait()
            await trio.sleep(0)  # the worker parks
        assert len(tasks._idle) == 1  # one worker served all three
        tasks.close()
    assert done == ["job 0", "job 1", "job 2"]
