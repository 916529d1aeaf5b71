"""CI / G0 with a KSN carried padded to 20 hex digits whatever its descriptor (605, A05), and at its exact length.

Host-command builders and open-source payShield simulators send the KSN padded to 20H (see
:mod:`hsm.thales.cmd_pin`); the HSM pads a short KSN with F itself. Both forms must give the same answer, on the
wire (raw host protocol to ``serve_hsm``) and through both backends of the interface. Vector: ANSI X9.24-1:2009
Annex A (BDK 0123456789ABCDEFFEDCBA9876543210, KSN FFFF9876543210E00001, PIN 1234, PAN 4012345678909 ->
encrypted PIN block 1B9C1845EB993A7A). Under descriptor 605 the KSN proper is its 16 right-most digits.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

from hsm import dukpt
from hsm.thales.commands import Inbound, decode_request
from hsm.thales.profile import DEFAULT_PROFILE
from tests.hsm.test_interface_backends import BDK, ZPK1, ZPK1_CLEAR, backends, decrypted_pin, same_call, same_error
from tests.hsm.test_thales_support import LOCALHOST, exchange, running_server

KSN20 = "FFFF9876543210E00001"
KSN16 = KSN20[4:]
BLOCK = "1B9C1845EB993A7A"
PAN = "4012345678909"
ACCOUNT = "401234567890"


def ci(descriptor: str, ksn: str, header: str = "0001") -> bytes:
    return (header + "CI" + BDK + ZPK1 + descriptor + ksn + BLOCK + "01" + ACCOUNT).encode()


def g0(descriptor: str, ksn: str, header: str = "0001", source: str = "01", destination: str = "01") -> bytes:
    return (header + "G0" + BDK + ZPK1 + descriptor + ksn + BLOCK + source + destination + ACCOUNT).encode()


@pytest.mark.parametrize(("descriptor", "ksn"), [("605", KSN16), ("605", KSN20), ("A05", KSN20)])
def test_codec_reads_the_ksn_at_its_exact_length_and_padded(descriptor: str, ksn: str) -> None:
    for message in (ci(descriptor, ksn), g0(descriptor, ksn), ci(descriptor, ksn) + b"%00\x19trailer"):
        decoded = decode_request(message, 4, DEFAULT_PROFILE)
        assert isinstance(decoded, Inbound)
        command: Any = decoded.command
        assert command.ksn == ksn and command.pin_block == BLOCK and command.account == ACCOUNT


def test_codec_refuses_a_ksn_of_neither_length() -> None:
    decoded = decode_request(ci("605", KSN20[2:]), 4, DEFAULT_PROFILE)  # 18H: neither 16H nor 20H
    assert not isinstance(decoded, Inbound) and decoded.error.code == "15"


def test_a_padded_ksn_derives_the_same_keys_whatever_it_was_padded_with() -> None:
    assert dukpt.expand_ksn("605", KSN16) == dukpt.expand_ksn("605", KSN20) == bytes.fromhex(KSN20)
    # The HSM pads with F itself: digits outside the descriptor's length do not enter the derivation.
    assert dukpt.expand_ksn("605", "0000" + KSN16) == bytes.fromhex(KSN20)
    assert dukpt.expand_ksn("A05", KSN20) == bytes.fromhex(KSN20)


async def test_ci_and_g0_on_the_wire_answer_the_same_for_both_ksn_forms() -> None:
    async with running_server() as port:
        stream = await trio.open_tcp_stream(LOCALHOST, port)
        answers = await exchange(stream, [
            ci("605", KSN16, "0001"), ci("605", KSN20, "0002"), ci("A05", KSN20, "0003"),
            g0("605", KSN20, "0004"), g0("605", KSN16, "0005"), ci("605", KSN20[2:], "0006"),
        ])
        await stream.aclose()
    bodies = [a[4:] for a in answers]
    assert bodies[0][:6] == b"CJ0004" and bodies[0] == bodies[1] == bodies[2]
    assert bodies[3][:6] == b"G10004" and bodies[3][2:] == bodies[4][2:] == bodies[0][2:]
    block = bodies[0][6:22].decode()
    assert decrypted_pin(ZPK1_CLEAR, "01", block, ACCOUNT) == "1234"
    assert bodies[5] == b"CJ15"


async def test_both_backends_accept_a_padded_ksn_with_descriptor_605() -> None:
    async with backends() as (sw, th):
        for ksn in (KSN16, KSN20):
            out = await same_call(sw, th, "translate_pin_dukpt_to_zpk", BDK, ZPK1, ksn, BLOCK, PAN,
                                  ksn_descriptor="605")
            assert decrypted_pin(ZPK1_CLEAR, "01", out.pin_block, PAN) == "1234"
            out34 = await same_call(sw, th, "translate_pin_dukpt_to_zpk", BDK, ZPK1, ksn, BLOCK, PAN,
                                    ksn_descriptor="605", destination_format="34")
            assert decrypted_pin(ZPK1_CLEAR, "34", out34.pin_block, PAN) == "1234"
        assert await same_error(sw, th, lambda h: h.translate_pin_dukpt_to_zpk(
            BDK, ZPK1, KSN20[1:], BLOCK, PAN, ksn_descriptor="605")) == "15"
