"""``serve_hsm`` over real TCP on 127.0.0.1: error codes for bad input, in-order answers, many connections.

Each test talks raw host protocol (2-byte length, 4-character header) with a plain trio stream, so what is
asserted is exactly the bytes a payShield client would see.
"""

from __future__ import annotations

from functools import partial

import pytest
import trio
from Crypto.Cipher import DES

from hsm import tr31
from hsm.api import Diagnostics
from hsm.cipher import force_odd_parity
from hsm.keys import ClearKey, KeyCodec
from hsm.software import SoftwareHsm
from hsm.thales import cmd_keys as keys
from hsm.thales.commands import Inbound
from hsm.thales.dispatch import run
from hsm.thales.framing import frame
from hsm.thales.profile import DEFAULT_PROFILE, Profile
from hsm.thales.server import serve_hsm
from tests.hsm.test_thales_support import HSM, LMK, LOCALHOST, exchange, read_messages, running_server

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
            b"0003DG" + b"U" + b"1" * 32 + b"01234" + b"123456789012" + b"1",  # not a PVK under this LMK: 10
            b"0004\x00\x01garbage",  # no command code: 51
            b"0005BU" + b"001" + ZMK.encode(),  # still serving: KCV of the reference ZMK
            b"000",  # shorter than the header: 51
            b"0006NC",
        ])
        assert answers[:5] == [b"0001CD15", b"0002ZA68", b"0003DH10", b"0004ZZ51",
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
        assert answers == [b"HEADER01ZA67", b"HEADER02B300y"]
        await stream.aclose()


async def test_lmk_identifier_other_than_00_gets_13() -> None:
    async with running_server() as port:
        stream = await trio.open_tcp_stream(LOCALHOST, port)
        answers = await exchange(stream, [b"0001B20001z%01", b"0002B20001z%00"])
        assert answers == [b"0001B313", b"0002B300z"]
        await stream.aclose()


@pytest.mark.parametrize("flag", [0, 1, 2])
def test_bu_with_an_empty_key_is_invalid_input_not_an_internal_error(flag: int) -> None:
    # The codec never decodes an empty key, but the dispatcher must not rely on that: 15, not 41.
    inbound = Inbound(b"0001", keys.KeyCheckValue("00", flag, ""))
    assert run(HSM, inbound, DEFAULT_PROFILE) == ("15", None)


async def _closed_by_server(stream: trio.abc.Stream) -> bool:
    """True once the server has closed ``stream`` (EOF or reset) within 5 s; False if it is still open."""
    with trio.move_on_after(5):
        try:
            return await stream.receive_some(100) == b""
        except trio.BrokenResourceError:
            return True
    return False


async def test_idle_connection_is_closed_and_a_busy_one_is_not() -> None:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(partial(serve_hsm, HSM, LOCALHOST, 0, 4, idle_timeout=0.5))
        idle = await trio.open_tcp_stream(LOCALHOST, port)
        busy = await trio.open_tcp_stream(LOCALHOST, port)
        assert await exchange(idle, [b"0001B20001a"]) == [b"0001B300a"]
        for i in range(16):  # a request every 0.05 s for 0.8 s: never idle for 0.5 s
            assert await exchange(busy, [b"%04dB20001b" % i]) == [b"%04dB300b" % i]
            await trio.sleep(0.05)
        assert await _closed_by_server(idle)
        assert await exchange(busy, [b"0009B20001c"]) == [b"0009B300c"]
        await busy.aclose()
        await idle.aclose()
        nursery.cancel_scope.cancel()


async def test_connections_beyond_the_cap_are_closed_on_arrival() -> None:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(partial(serve_hsm, HSM, LOCALHOST, 0, 4, max_connections=2))
        first = await trio.open_tcp_stream(LOCALHOST, port)
        second = await trio.open_tcp_stream(LOCALHOST, port)
        for n, stream in enumerate((first, second)):
            assert await exchange(stream, [b"000%dNC" % n]) != []  # both admitted and served
        third = await trio.open_tcp_stream(LOCALHOST, port)
        assert await _closed_by_server(third)
        assert await exchange(first, [b"0003B20001x"]) == [b"0003B300x"]  # the others are undisturbed
        await second.aclose()
        # Once a slot is free a newcomer is served again (the server may take a moment to see the close).
        with trio.fail_after(5):
            while True:
                fourth = await trio.open_tcp_stream(LOCALHOST, port)
                try:
                    assert await exchange(fourth, [b"0004B20001y"]) == [b"0004B300y"]
                    break
                except (AssertionError, trio.BrokenResourceError):
                    await trio.sleep(0.02)
                finally:
                    await fourth.aclose()
        await first.aclose()
        nursery.cancel_scope.cancel()


def test_limits_must_be_sane() -> None:
    for kwargs in ({"idle_timeout": 0}, {"idle_timeout": -1.0}, {"max_connections": 0}):
        with pytest.raises(ValueError):
            trio.run(partial(serve_hsm, HSM, LOCALHOST, 0, 4, **kwargs))


async def test_tr31_usage_errors_reach_the_wire() -> None:
    kbpk_clear = force_odd_parity(bytes(range(16)))
    kbpk = KeyCodec(LMK).to_lmk("000", ClearKey(kbpk_clear), "U")
    kek_block = tr31.wrap(kbpk_clear, tr31.Header("B", "K0", "T", "B"), force_odd_parity(bytes(range(16, 32))))
    zpk = HSM.generate_key("001", "U").under_lmk
    async with running_server() as port:
        stream = await trio.open_tcp_stream(LOCALHOST, port)
        answers = await exchange(stream, [
            b"0001A6001" + kbpk.encode() + b"R" + kek_block.encode() + b"U",  # a KEK block as a ZPK: A6
            b"0002A6000" + kbpk.encode() + b"R" + kek_block.encode() + b"U",  # as a ZMK: fine
            b"0003A8001" + kbpk.encode() + zpk.encode() + b"R#BK0B00E",  # a ZPK leaving as a KEK: A6
            b"0004A8001" + kbpk.encode() + zpk.encode() + b"R#AP0B00E",  # version A: BE
        ])
        await stream.aclose()
    assert answers[0] == b"0001A7A6"
    assert answers[1].startswith(b"0002A700U")
    assert answers[2:] == [b"0003A9A6", b"0004A9BE"]
