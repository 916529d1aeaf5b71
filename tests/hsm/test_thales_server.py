"""``serve_hsm`` over real TCP on 127.0.0.1: error codes for bad input, in-order answers, many connections.

Each test talks raw host protocol (2-byte length, 4-character header) with a plain trio stream, so what is
asserted is exactly the bytes a payShield client would see.
"""

from __future__ import annotations

import pytest
import trio
from Crypto.Cipher import DES
from test_thales_support import HSM, LMK, LOCALHOST, exchange, read_messages, running_server

from hsm.software import Diagnostics, SoftwareHsm
from hsm.thales.framing import frame
from hsm.thales.profile import Profile

ZMK = "U0A26760BD07871026B6702C5F9BA25B3"  # clear 0808..08 under the Thales test LMK (reference example)
KCV_ZMK = "D6A875"
# Full 16H check value of that key, computed independently: DES of zeros under 0808..08 (equal halves).
KCV_ZMK_FULL = DES.new(bytes.fromhex("0808080808080808"), DES.MODE_ECB).encrypt(bytes(8)).hex().upper()


async def test_bad_and_unsupported_commands_get_codes_and_the_connection_keeps_serving() -> None:
    async with running_server() as port:
        stream = await trio.open_tcp_stream(LOCALHOST, port)
        answers = await exchange(stream, [
            b"0001CC123",  # malformed: 15
            b"0002ZZ",  # unknown command: 68
            b"0003DG" + b"U" + b"1" * 32 + b"01234" + b"123456789012" + b"1",  # no PIN-under-LMK store: 68
            b"0004\x00\x01garbage",  # no command code: 51
            b"0005BU" + b"001" + ZMK.encode(),  # still serving: KCV of the reference ZMK
            b"000",  # shorter than the header: 51
            b"0006NC",
        ])
        assert answers[:5] == [b"0001CD15", b"0002Z[68", b"0003DH68", b"0004ZZ51",
                               b"0005BV00" + KCV_ZMK_FULL.encode()]
        assert answers[5] == b"000 ZZ51"
        assert answers[6].startswith(b"0006ND00")
        await stream.aclose()


async def test_bu_short_kcv_matches_the_reference_worked_example() -> None:
    assert KCV_ZMK_FULL.startswith(KCV_ZMK)
    async with running_server() as port:
        stream = await trio.open_tcp_stream(LOCALHOST, port)
        (reply,) = await exchange(stream, [b"0007BUFF1" + ZMK.encode() + b";000;001"])
        assert reply == b"0007BV00" + KCV_ZMK.encode()
        await stream.aclose()


async def test_pipelined_commands_are_answered_in_order() -> None:
    async with running_server() as port:
        stream = await trio.open_tcp_stream(LOCALHOST, port)
        requests = [b"%04dB2%04X" % (i, i % 50) + bytes([65 + i % 26]) * (i % 50) for i in range(200)]
        answers = await exchange(stream, requests)
        assert answers == [b"%04dB300" % i + bytes([65 + i % 26]) * (i % 50) for i in range(200)]
        await stream.aclose()


async def test_frames_split_byte_by_byte() -> None:
    async with running_server() as port:
        stream = await trio.open_tcp_stream(LOCALHOST, port)
        data = frame(b"ABCDB20003xyz") + frame(b"ABCENC")
        for i in range(len(data)):
            await stream.send_all(data[i:i + 1])
        answers = await read_messages(stream, 2)
        assert answers[0] == b"ABCDB300xyz" and answers[1].startswith(b"ABCEND00")
        await stream.aclose()


async def test_many_connections_at_once() -> None:
    async with running_server() as port:
        results: dict[int, list[bytes]] = {}

        async def client(n: int) -> None:
            stream = await trio.open_tcp_stream(LOCALHOST, port)
            results[n] = await exchange(stream, [b"%04dB20002%02d" % (i, n) for i in range(20)])
            await stream.aclose()

        async with trio.open_nursery() as nursery:
            for n in range(25):
                nursery.start_soon(client, n)
        assert all(results[n] == [b"%04dB300%02d" % (i, n) for i in range(20)] for n in range(25))


async def test_a_peer_that_leaves_mid_frame_does_not_disturb_others() -> None:
    async with running_server() as port:
        rude = await trio.open_tcp_stream(LOCALHOST, port)
        await rude.send_all(b"\x00\x40" + b"0001CC")
        await rude.aclose()
        polite = await trio.open_tcp_stream(LOCALHOST, port)
        (reply,) = await exchange(polite, [b"0001B20002ok"])
        assert reply == b"0001B300ok"
        await polite.aclose()


class _BrokenHsm(SoftwareHsm):
    def diagnostics(self) -> Diagnostics:
        raise RuntimeError("simulated bug: key 0123456789ABCDEF")


async def test_internal_error_answers_41_without_leaking_and_keeps_serving(caplog: pytest.LogCaptureFixture) -> None:
    async with running_server(_BrokenHsm(LMK)) as port:
        stream = await trio.open_tcp_stream(LOCALHOST, port)
        answers = await exchange(stream, [b"0001NC", b"0002B20001x"])
        assert answers == [b"0001ND41", b"0002B300x"]
        await stream.aclose()
    assert "RuntimeError" in caplog.text and "0123456789ABCDEF" not in caplog.text


async def test_unsupported_code_67_profile_and_header_length() -> None:
    profile = Profile(name="licensing", unsupported_error="67")
    async with running_server(HSM, header_length=8, profile=profile) as port:
        stream = await trio.open_tcp_stream(LOCALHOST, port)
        answers = await exchange(stream, [b"HEADER01ZZ", b"HEADER02B20001y"])
        assert answers == [b"HEADER01Z[67", b"HEADER02B300y"]
        await stream.aclose()


async def test_lmk_identifier_other_than_00_gets_13() -> None:
    async with running_server() as port:
        stream = await trio.open_tcp_stream(LOCALHOST, port)
        answers = await exchange(stream, [b"0001B20001z%01", b"0002B20001z%00"])
        assert answers == [b"0001B313", b"0002B300z"]
        await stream.aclose()
