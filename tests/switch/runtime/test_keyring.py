"""The links' keys (switch.runtime.keyring): the two-key window as the pipeline reads it, back-to-back key exchanges,
UnionPay's MAC key proved by the reset's own MAC, and a MAC link's need of an HSM."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import trio

from hsm.api import ImportedKey, PinKey
from hsm.inprocess import SoftwareBackend
from schemes.unionpay import SCHEME as UNIONPAY
from switch.config.links import MacConfig
from switch.config.node import parse_config
from switch.contracts.network import KeyChange
from switch.exchange import mac
from switch.model.errors import BulkheadError
from switch.model.message import Message
from switch.runtime.keyring import Keyring
from tests.integration.harness import ROUTES_ONE, write_config
from tests.integration.netkit import HSM


class SlowImportHsm:
    """An HSM whose key import waits until the test lets it finish (a remote payShield is a round trip away)."""

    def __init__(self) -> None:
        self.gates: dict[str, trio.Event] = {}

    async def import_key(self, key_type: str, zmk: str, key_under_zmk: str, scheme: str = "U") -> ImportedKey:
        gate = self.gates.setdefault(key_type, trio.Event())
        await gate.wait()
        return ImportedKey("U" + key_under_zmk[1:], "ABCDEF", False)


def _ring() -> Keyring:
    link = SimpleNamespace(name="net", scheme="generic", pin_key=PinKey("ZPK", "U" + "1" * 32), zmk="U" + "9" * 32,
                           mac_key="U" + "2" * 32, mac=MacConfig("U" + "2" * 32), key_window_s=60.0)
    return Keyring(SimpleNamespace(listeners=[], connectors=[link]))  # type: ignore[arg-type]


async def test_a_second_key_exchange_still_under_way_keeps_its_requests_waiting() -> None:
    # UnionPay (or any network) resets the PIN key and then the MAC key, the second 0800 arriving while the HSM
    # still imports the first key. The node marks both (Pipeline._network -> key_changing) and installs each in a
    # task (Keyring.install_key, whose finally calls key_done). When the PIN key is in, the MAC key is not yet: a
    # request the network sent after its MAC-key 0800 (so MACed under the new ZAK) must still wait for it.
    ring, hsm = _ring(), cast(Any, SlowImportHsm())
    carrier_pin, carrier_mac = Message("0800", {70: "161"}), Message("0800", {70: "160"})
    carrier_pin.meta.received_ns, carrier_mac.meta.received_ns = 1_000, 2_000
    ring.key_changing("net", 1_000)
    ring.key_changing("net", 2_000)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ring.install_key, hsm, "net", KeyChange("ZPK", "X" + "3" * 32, "ABCDEF"), carrier_pin)
        nursery.start_soon(ring.install_key, hsm, "net", KeyChange("ZAK", "X" + "4" * 32, "ABCDEF"), carrier_mac)
        await trio.testing.wait_all_tasks_blocked()
        hsm.gates.setdefault("001", trio.Event()).set()  # the PIN key is imported; the MAC key is not yet
        await trio.testing.wait_all_tasks_blocked()
        waiting = ring.key_pending("net", 2_500)
        keys = ring.mac_keys("net", 2_500)
        hsm.gates.setdefault("008", trio.Event()).set()
    assert waiting, f"a request received after the MAC-key 0800 is verified now, under {keys} (the old ZAK only)"


def test_mac_true_without_an_hsm_is_a_config_error(tmp_path: Path) -> None:
    # README: "mac = true (default false; needs mac_key and [hsm])": refused when the file is loaded, rather than
    # every request on the link answered 96 ("no HSM") at run time.
    extra = """
[[connectors]]
name = "net"
hosts = ["127.0.0.1:1"]
mac = true
mac_key = { type = "ZAK", key = "U06B495AAAD084746B5D75349D9077F48" }
"""
    conf = write_config(tmp_path, "sqlite:///" + str(tmp_path / "x.db"), {}, ROUTES_ONE.format(link="net"),
                        extra=extra)
    with pytest.raises(BulkheadError, match=r"(?i)hsm"):
        parse_config(conf.read_text(), conf)


class ImportingHsm:
    """An HSM whose import returns the key it was given as the LMK cryptogram, with the check value asked for."""

    async def import_key(self, key_type: str, zmk: str, key_under_zmk: str, scheme: str = "U") -> ImportedKey:
        return ImportedKey("U" + key_under_zmk[1:], "ABCDEF", False)


async def test_a_request_received_before_the_new_key_arrived_is_read_under_the_old_one() -> None:
    # The two-key window as the pipeline uses it (Keyring.source_key, by the request's receive time): a request the
    # network sent before its key-exchange 0800 is translated under the old key even when its translation runs
    # after the new key is installed (a remote HSM, a busy node); one sent after, under the new key.
    ring = _ring()
    old = ring.link_keys["net"].key
    at = time.perf_counter_ns()  # the clock of meta.received_ns
    carrier = Message("0800", {70: "161"})
    carrier.meta.received_ns = at
    before, after = Message("0200", {11: "000001"}), Message("0200", {11: "000002"})
    before.meta.received_ns, after.meta.received_ns = at - 1_000, at + 1_000
    ring.key_changing("net", at, "ZPK")
    assert ring.key_pending("net", at + 1_000) and not ring.key_pending("net", at - 1_000)
    assert await ring.install_key(cast(Any, ImportingHsm()), "net", KeyChange("ZPK", "X" + "3" * 32, "ABCDEF"),
                                  carrier)
    new = "U" + "3" * 32
    assert not ring.key_pending("net", at + 1_000)
    assert ring.source_key("net", before) == PinKey("ZPK", old)
    assert ring.source_key("net", after) == PinKey("ZPK", new) == ring.link_key("net")


async def test_a_unionpay_mac_key_reset_without_a_check_value_is_accepted_only_when_its_own_mac_verifies() -> None:
    # UnionPay proves a new MAC key by the key reset's own MAC (DE 128) under that key (schemes.unionpay.session):
    # the reset's MAC made with the new key installs it; the same reset MACed under another key does not.
    backend = SoftwareBackend(HSM)
    zmk = HSM.generate_key("000").under_lmk
    old, new = (HSM.generate_key_exported("008", zmk, zmk_scheme="X") for _ in range(2))
    link = SimpleNamespace(name="cups", scheme="unionpay", pin_key=None, zmk=zmk, mac_key=old.under_lmk,
                           mac=MacConfig(old.under_lmk, field="128"), key_window_s=60.0)
    change = KeyChange("ZAK", new.under_zmk, "")  # no check value travels with it

    async def reset_macd_under(key: str) -> Message:
        reset = Message("0800", {7: "0517094653", 11: "900001", 48: "NK" + new.under_zmk[1:],
                                 53: "2600000000000000", 70: "101", 100: "48020000"})
        wire = await mac.sign(backend, MacConfig(key, field="128"), key, UNIONPAY, reset)
        carrier = UNIONPAY.decode(wire)
        carrier.meta.wire, carrier.meta.received_ns = wire, time.perf_counter_ns()
        return carrier

    refused = Keyring(SimpleNamespace(listeners=[], connectors=[link]))  # type: ignore[arg-type]
    assert not await refused.install_key(backend, "cups", change, await reset_macd_under(old.under_lmk))
    assert refused.mac_key("cups") == old.under_lmk
    ring = Keyring(SimpleNamespace(listeners=[], connectors=[link]))  # type: ignore[arg-type]
    assert await ring.install_key(backend, "cups", change, await reset_macd_under(new.under_lmk))
    assert HSM.key_check_value("008", ring.mac_key("cups"))[:6] == new.kcv[:6]
