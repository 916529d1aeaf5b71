"""The two-key window (switch.exchange.keywindow) and MACs on each network's wire bytes (switch.exchange.mac): the
MAC ends the encoded message, covers everything before it, equals an independent X9.19 computation (psec) with the
clear key, and a changed byte or the wrong key fails."""

from __future__ import annotations

import psec.mac
import pytest

from hsm.inprocess import SoftwareBackend
from hsm.keys import ClearKey, KeyCodec
from hsm.lmk import Lmk
from hsm.software import SoftwareHsm
from switch.config.links import MacConfig
from switch.contracts.registry import network
from switch.exchange import mac
from switch.exchange.keywindow import KeyWindow
from switch.model.message import Message

LMK = Lmk.thales_test()
HSM = SoftwareBackend(SoftwareHsm(LMK))
CLEAR = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")  # hsm.md section 4.6's retail-MAC key
ZAK = KeyCodec(LMK).to_lmk("008", ClearKey(CLEAR), "U")
OTHER_ZAK = SoftwareHsm(LMK).generate_key("008").under_lmk
X919 = MacConfig(ZAK)


# -- the window ---------------------------------------------------------------------------------------------------
def test_requests_received_before_the_activation_keep_the_previous_key() -> None:
    window = KeyWindow("OLD", window_ns=60_000)
    assert window.at(5) == "OLD" and window.candidates(5, 10) == ("OLD",)
    window.install("NEW", activated_ns=1_000)
    assert window.at(999) == "OLD"  # received before the new key was activated
    assert window.at(1_000) == window.at(5_000) == "NEW"
    # A MAC: the key of the receive time first, then the other one while the window is open...
    assert window.candidates(999, 2_000) == ("OLD", "NEW")
    assert window.candidates(1_500, 2_000) == ("NEW", "OLD")
    # ...and only the receive time's key once it has closed.
    assert window.candidates(1_500, 61_001) == ("NEW",)
    assert window.expired(61_001) and not window.expired(60_000)


def test_at_most_two_keys_and_a_repeated_key_moves_nothing() -> None:
    window = KeyWindow("K1")
    window.install("K2", 10)
    window.install("K2", 20)  # the same key again
    assert (window.current, window.previous, window.activated_ns) == ("K2", "K1", 10)
    window.install("K3", 30)
    assert (window.current, window.previous) == ("K3", "K2")  # K1 is gone


def test_requests_received_during_a_key_change_wait_for_it() -> None:
    window = KeyWindow("K1")
    window.changing_since_ns = 100
    assert not window.pending_for(99) and window.pending_for(100) and window.pending_for(150)
    window.install("K2", 100)
    window.changing_since_ns = None
    assert not window.pending_for(150) and window.at(150) == "K2" and window.at(99) == "K1"


# -- MAC on the wire ----------------------------------------------------------------------------------------------
def _purchase(secondary: bool) -> Message:
    msg = Message("0200", {2: "4761739001010010", 3: "000000", 4: "000000010000", 7: "1207101010", 11: "000123",
                           12: "101010", 13: "1207", 22: "051", 25: "00", 32: "12345678", 33: "44190440",
                           37: "123456789012", 41: "TERM0001", 42: "MERCHANT0000001", 49: "156"})
    if secondary:
        msg[100] = "44190440"
    return msg


@pytest.mark.parametrize(("name", "secondary", "field"), [
    ("generic", False, 64), ("generic", True, 128), ("visa", False, 64), ("visa", True, 128),
    ("unionpay", False, 128), ("unionpay", True, 128),  # UnionPay's MAC is DE 128 (its network's mac_field)
])
async def test_the_mac_ends_the_message_and_covers_everything_before_it(name: str, secondary: bool,
                                                                       field: int) -> None:
    net = network(name)
    cfg = MacConfig(ZAK, field=str(getattr(net, "mac_field", "auto")))
    msg = _purchase(secondary)
    body = await mac.sign(HSM, cfg, ZAK, net, msg)
    assert body == net.encode(msg)  # the patched bytes are what the network encodes
    decoded = net.decode(body)
    code = decoded.fields[field]
    assert isinstance(code, bytes) and body.endswith(code) and (128 if field == 64 else 64) not in decoded.fields
    # An independent retail MAC (ANSI X9.19, ISO 9797-1 algorithm 3, zero padding) over MTI .. the field before.
    assert code == psec.mac.generate_retail_mac(CLEAR[:8], CLEAR[8:], body[:-8], 1)
    assert await mac.verify(HSM, cfg, (ZAK,), decoded, body)
    assert await mac.verify(HSM, cfg, (OTHER_ZAK, ZAK), decoded, body)  # the window's second key
    assert not await mac.verify(HSM, cfg, (OTHER_ZAK,), decoded, body)
    tampered = bytearray(body)
    tampered[len(body) // 2] ^= 0x01
    assert not await mac.verify(HSM, cfg, (ZAK,), decoded, bytes(tampered))


async def test_algorithm_1_and_an_all_text_network() -> None:
    net = network("generic-ascii")  # DE 64 as 16 hex characters
    cfg = MacConfig(ZAK, algorithm=1)
    msg = _purchase(False)
    body = await mac.sign(HSM, cfg, ZAK, net, msg)
    code = msg.fields[64]
    assert isinstance(code, bytes) and body.endswith(code.hex().upper().encode())
    assert code == psec.mac.generate_cbc_mac(CLEAR, body[:-16], 1)
    assert await mac.verify(HSM, cfg, (ZAK,), net.decode(body), body)


async def test_no_mac_is_a_mac_that_fails() -> None:
    net = network("generic")
    msg = _purchase(False)
    assert not await mac.verify(HSM, X919, (ZAK,), msg, net.encode(msg))
