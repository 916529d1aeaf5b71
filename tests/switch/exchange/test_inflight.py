"""The index of originals upstream: what waits behind a key is handed back once, when the last holder leaves."""

from __future__ import annotations

from datetime import UTC, datetime

from schemes.generic import SCHEME
from switch.exchange.context import Exchange
from switch.exchange.inflight import InFlightOriginals
from switch.model.message import Message
from switch.wire.framing import Frame
from tests.switch.exchange.test_pipeline import ROUTES, FakeSource


def _x() -> Exchange:
    return Exchange(request=Message("0220", {11: "000001"}), source="acquirer", network=SCHEME, conn=FakeSource(),
                    frame=Frame(b"x"), table=ROUTES, received_at=datetime.now(UTC), t0=0.0)


def test_followers_resume_once_when_the_last_holder_of_their_key_leaves() -> None:
    index, resumed = InFlightOriginals(), []
    first, second, other = _x(), _x(), _x()
    assert not index.follow("K", lambda: resumed.append("early"))  # nothing upstream: go on
    index.enter("K", first)
    index.enter("K", second)
    index.enter("L", other)
    assert index.follow("K", lambda: resumed.append("r1")) and index.follow("K", lambda: resumed.append("r2"))
    assert index.leave(other) == [] and index.leave(first) == []  # another key; a holder of K is still upstream
    for resume in index.leave(second):
        resume()
    assert resumed == ["r1", "r2"] and not index.holds("K") and len(index) == 0
    assert index.leave(second) == [] and second.inflight_key is None  # leaving twice hands back nothing

