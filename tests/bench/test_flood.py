"""The flood scenario's hostile frame is what the issue describes: undecodable, yet salvageable (answered 30)."""

from __future__ import annotations

import pytest

from bench.flood import malformed_frame
from bench.scenarios import SCENARIOS
from schemes.generic import SCHEME
from switch.model.errors import RemoteProtocolError


def test_the_flood_frame_does_not_decode_but_is_answered_30() -> None:
    frame = malformed_frame()
    body = frame[2:]
    assert int.from_bytes(frame[:2], "big") == len(body)
    with pytest.raises(RemoteProtocolError):
        SCHEME.decode(body)
    salvaged = SCHEME.salvage(body)
    assert salvaged is not None and (salvaged.mti, salvaged.stan) == ("0200", "000777")


def test_flood_scenarios_send_purchases_beside_the_flood() -> None:
    for name in ("flood", "flood-burst"):
        scenario = SCENARIOS[name]
        assert scenario.flood is not None and scenario.flood.rate == 2300
        assert [m.label for m in scenario.mix] == ["purchase 0200"]
