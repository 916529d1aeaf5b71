from __future__ import annotations

import pytest
import trio

from schemes.generic import SCHEME
from switch.model.message import Message
from switch.runtime.links.mux import DuplicateKeyError, Mux
from switch.runtime.links.state import LinkEvent, LinkState, next_state


def req(stan: str) -> Message:
    return Message("0200", {11: stan, 41: "T1"})


async def test_response_is_delivered_to_its_request_and_late_ones_to_the_handler() -> None:
    late: list[Message] = []
    mux = Mux("x", SCHEME.match_key, late.append)
    a, b = mux.register(req("000001")), mux.register(req("000002"))
    assert mux.deliver(SCHEME.make_response(req("000002"), "05"))
    assert b.event.is_set() and b.response is not None and b.response[39] == "05"
    assert not a.event.is_set()
    mux.forget(a)  # a timed out
    assert not mux.deliver(SCHEME.make_response(req("000001"), "00"))
    assert [m.stan for m in late] == ["000001"]
    assert len(mux) == 0


async def test_duplicate_in_flight_key_is_refused() -> None:
    mux = Mux("x", SCHEME.match_key, lambda m: None)
    mux.register(req("000001"))
    with pytest.raises(DuplicateKeyError):
        mux.register(req("000001"))


async def test_fail_all_wakes_every_waiter_without_response() -> None:
    mux = Mux("x", SCHEME.match_key, lambda m: None)
    pendings = [mux.register(req(f"{i:06d}")) for i in range(5)]
    results: list[object] = []

    async def wait(p: object) -> None:
        await p.event.wait()  # type: ignore[attr-defined]
        results.append(p.response)  # type: ignore[attr-defined]

    async with trio.open_nursery() as nursery:
        for p in pendings:
            nursery.start_soon(wait, p)
        await trio.sleep(0)
        assert mux.fail_all() == 5
    assert results == [None] * 5


def test_link_state_table_defines_every_input() -> None:
    for state in LinkState:
        for event in LinkEvent:
            new, legal = next_state(state, event)
            assert isinstance(new, LinkState)
            if not legal:
                assert new is state
    assert next_state(LinkState.SIGNED_ON, LinkEvent.LOST) == (LinkState.DOWN, True)
    assert next_state(LinkState.DOWN, LinkEvent.SIGNED_ON) == (LinkState.DOWN, False)
