"""The network simulator's zone keys (switch/sim/simkeys.py): a refused key change of its own, a VISA link's other
key field."""

from __future__ import annotations

from datetime import UTC, datetime

from hsm.lmk import Lmk
from hsm.software import SoftwareHsm
from switch.contracts.network import NetMgmt
from switch.contracts.registry import network
from switch.model.codes import ResponseCode
from switch.sim.framingopts import framing_options
from switch.sim.simkeys import SimKeys

HSM = SoftwareHsm(Lmk.thales_test())
ZMK = HSM.generate_key("000").under_lmk
ZPK1 = HSM.generate_key("001").under_lmk
VISA_FRAMING = ('source_station="400000"', 'destination_station="123456"')


def _keys(options: tuple[str, ...] = ()) -> tuple[SimKeys, object]:
    link = framing_options("visa", "visa", VISA_FRAMING, options)
    adapter = network("visa")
    return SimKeys("visa", adapter.session(link), adapter.make_response, zmk=ZMK, zpk=ZPK1), adapter


def _bank_key_request(keys: SimKeys):
    return keys.session.requests(NetMgmt.KEY_EXCHANGE, lambda: "000777", datetime.now(UTC))[0]


def test_a_refused_own_change_does_not_undo_a_key_the_bank_installed_since() -> None:
    keys, _ = _keys()
    change = keys.change("000001")
    assert change is not None
    _request, k2 = change
    previous = keys.sent(k2)  # our 0800 left: we originate under K2
    # Meanwhile the bank's own key exchange (links rekey) is answered with K3, which the bank installs.
    answer = keys.answer(_bank_key_request(keys))
    assert answer.response_code == ResponseCode.APPROVED.value
    k3 = keys.zpk
    assert k3 not in (ZPK1, k2.under_lmk)
    # Then the bank's answer to our K2 change comes back refused: the simulator goes back to K1, but the bank has K3.
    keys.refused(k2, previous)
    assert keys.zpk == k3  # not K1: the bank holds K3, and PIN blocks under K1 would all fail (55)


def test_a_visa_link_with_key_field_45_gets_its_key() -> None:
    keys, _ = _keys(("key_field=45",))
    answer = keys.answer(_bank_key_request(keys))
    # README: "carries the key in the form a link with those options reads": DE 45 for this link.
    assert answer.response_code == ResponseCode.APPROVED.value
