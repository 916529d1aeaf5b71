"""The index of unsettled exchanges by original: an exchange waits only for those that arrived before it for the
same original, and those parked are handed back one at a time, oldest first."""

from __future__ import annotations

from datetime import UTC, datetime

from schemes.generic import SCHEME
from switch.exchange.context import Exchange
from switch.exchange.inflight import InFlightOriginals
from switch.model.message import Message
from switch.wire.framing import Frame
from tests.switch.exchange.test_pipeline import ROUTES, FakeSource


def _x(mti: str = "0220") -> Exchange:
    return Exchange(request=Message(mti, {11: "000001"}), source="acquirer", network=SCHEME, conn=FakeSource(),
                    frame=Frame(b"x"), table=ROUTES, received_at=datetime.now(UTC), t0=0.0)


def _resume_all(index: InFlightOriginals, x: Exchange) -> None:
    for resume in index.leave(x):
        resume()


def test_an_exchange_waits_only_for_those_that_arrived_before_it() -> None:
    index, resumed = InFlightOriginals(), []
    advice, reversal, other = _x("0220"), _x("0420"), _x("0220")
    index.enter("K", advice)
    index.enter("K", reversal)
    index.enter("L", other)
    # The first to arrive never waits, neither behind itself nor behind the reversal that came after it.
    assert not index.follow(advice, lambda: resumed.append("advice"))
    assert not index.follow(other, lambda: resumed.append("other"))  # another original
    assert index.follow(reversal, lambda: resumed.append("reversal"))
    assert index.leave(other) == [] and resumed == []
    _resume_all(index, advice)
    assert resumed == ["reversal"] and index.parked("K") == 0
    # Resumed, it looks again: nothing before it now, so it goes on.
    assert not index.follow(reversal, lambda: resumed.append("again"))
    _resume_all(index, reversal)
    assert resumed == ["reversal"] and len(index) == 0
    assert index.leave(reversal) == [] and reversal.inflight_key is None  # leaving twice hands back nothing


def test_followers_are_resumed_one_at_a_time_in_arrival_order_whatever_order_they_parked_in() -> None:
    index, resumed = InFlightOriginals(), []
    purchase, advice, reversal = _x("0200"), _x("0220"), _x("0420")
    for x in (purchase, advice, reversal):
        index.enter("K", x)
    # The reversal's task happened to look first.
    assert index.follow(reversal, lambda: resumed.append("reversal"))
    assert index.follow(advice, lambda: resumed.append("advice"))
    _resume_all(index, purchase)
    assert resumed == ["advice"]  # the reversal still has the advice before it
    _resume_all(index, advice)
    assert resumed == ["advice", "reversal"] and index.holds("K")
    _resume_all(index, reversal)
    assert len(index) == 0 and index.parked("K") == 0


def test_an_exchange_that_ends_while_parked_is_not_resumed_later() -> None:
    index, resumed = InFlightOriginals(), []
    advice, reversal, late = _x("0220"), _x("0420"), _x("0421")
    for x in (advice, reversal, late):
        index.enter("K", x)
    assert index.follow(reversal, lambda: resumed.append("reversal"))
    assert index.follow(late, lambda: resumed.append("late"))
    assert index.leave(reversal) == []  # ended where it waited (a node stopping hard)
    _resume_all(index, advice)
    assert resumed == ["late"]
    _resume_all(index, late)
    assert resumed == ["late"] and len(index) == 0


def test_an_exchange_never_entered_does_not_wait() -> None:
    index = InFlightOriginals()
    index.enter("K", _x("0200"))
    stray = _x("0420")
    assert not index.follow(stray, lambda: None) and index.parked("K") == 0
