"""VISA's refuse() and a reject whose header chain is cut short."""

from __future__ import annotations

from schemes.visa import NETWORK as VISA
from schemes.visa.framing import VisaFramer
from schemes.visa.header import build_base1_header, build_reject, station_bcd
from switch.contracts.network import RefusalForm
from switch.wire.framing import MalformedFrame


def test_a_reject_whose_header_chain_is_cut_short_is_not_rejected_back() -> None:
    # README (Networks, malformed messages): "... nor is a frame that is itself a reject". VISA sends one of our
    # messages back under a reject header whose second (original) header is cut short: the framer raises
    # MalformedFrame with the whole chain as the frame's "body" and no header; it is still a reject, not answered.
    ours = build_base1_header(station_bcd("400000"), station_bcd("123456"), 10)
    chain = build_reject(ours, "0030", 10)[:-5]  # the original header truncated: 26 + 17 bytes
    wire = len(chain).to_bytes(2, "big") + b"\x00\x00" + chain
    framer = VisaFramer(source_station="123456", destination_station="400000")
    framer.receive_data(wire)
    try:
        framer.next_frame()
    except MalformedFrame as exc:
        refusal = VISA.refuse(exc.frame, exc, framer)
    else:
        raise AssertionError("expected a MalformedFrame")
    assert refusal.form is RefusalForm.NONE, f"the node answers VISA's reject with {refusal.form}: {refusal.wire!r}"
