"""Every network's table maps a response code it does not know to its documented default (05, do not honour: an
unknown code is never taken for an approval) and counts it by code, for ``bulkhead_unknown_response_codes`` and the
node's status (``unknown_response_codes``)."""

from __future__ import annotations

import pytest

from switch.contracts.registry import network
from tests.integration.harness import purchase

NETWORKS = ["generic", "atm", "unionpay", "visa"]


@pytest.mark.parametrize("name", NETWORKS)
def test_an_unknown_response_code_reads_as_the_default_and_is_counted(name: str) -> None:
    net = network(name)
    response = net.make_response(purchase(stan=21), "00")
    body = net.encode(response)
    mti, fields = net.codec.decode(body)  # type: ignore[attr-defined]
    fields[39] = "Q7"  # a code no table here knows
    before = net.codes.unknown["Q7"]
    decoded = net.decode(net.codec.encode(mti, fields))  # type: ignore[attr-defined]
    assert decoded[39] == net.codes.unknown_default.value == "05"
    assert net.codes.unknown["Q7"] == before + 1


@pytest.mark.parametrize("name", NETWORKS)
def test_a_request_code_it_does_not_know_is_kept_not_counted(name: str) -> None:
    # A reversal's DE 39 is its reason, the sender's: translated where the table knows it, never replaced.
    net = network(name)
    reversal = purchase(stan=22, mti="0400")
    mti, fields = net.codec.decode(net.encode(reversal))  # type: ignore[attr-defined]
    fields[39] = "Q8"
    before = sum(net.codes.unknown.values())
    assert net.decode(net.codec.encode(mti, fields))[39] == "Q8"  # type: ignore[attr-defined]
    assert sum(net.codes.unknown.values()) == before
