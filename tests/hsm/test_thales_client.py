"""The trio client against real sockets on 127.0.0.1: pipelining, timeouts, drops, reconnects, the pool.

Servers are either the project's own (``serve_hsm``) or a scripted peer that answers out of order, slowly,
never, or hangs up, to put the client in each situation it must survive.
"""

from __future__ import annotations

import socket
import struct
from collections import Counter

import pytest
import trio

from bench.ports import free_port
from hsm.thales import cmd_keys as keys
from hsm.thales.backend import ThalesBackend
from hsm.thales.client import ClientConfig, ThalesClient, open_thales_client
from hsm.thales.errors import CommandFailedError, HsmTimeoutError, HsmUnavailableError, LocalThalesError
from hsm.thales.profile import DEFAULT_PROFILE
from hsm.thales.server import serve_hsm
from tests.hsm.test_thales_support import HSM, LOCALHOST, ScriptedPeer, Send, answer, running_server, scripted


def config(port: int, **kw: object) -> ClientConfig:
    return ClientConfig(LOCALHOST, port, backoff_initial=0.01, backoff_max=0.05, **kw)  # type: ignore[arg-type]


async def test_pipelined_answers_out_of_order_are_matched_by_header() -> None:
    count = 40
    held: list[tuple[bytes, Send]] = []
    all_in = trio.Event()

    async def reverse_order(peer: ScriptedPeer, conn: int, message: bytes, send: Send) -> None:
        held.append((message, send))
        if len(held) == count:
            all_in.set()
        await all_in.wait()
        # Answer only once every command is in flight, and in reverse order of arrival.
        index = held.index((message, send))
        await trio.sleep(0.001 * (count - index))
        await send(answer(message))

    async with scripted(reverse_order) as (peer, port), open_thales_client(config(port)) as client:
        results: dict[int, bytes] = {}

        async def one(i: int) -> None:
            reply = await client.call(keys.Echo(b"payload-%03d" % i))
            results[i] = reply.result().data

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for i in range(count):
                    nursery.start_soon(one, i)
        assert results == {i: b"payload-%03d" % i for i in range(count)}
        assert peer.connections == 1
        assert len({m[:4] for _, m in peer.requests}) == count  # distinct headers in flight together


async def test_hundreds_in_flight_against_the_real_server() -> None:
    async with running_server() as port, open_thales_client(config(port, pool_size=2)) as client:
        seen: list[bool] = []

        async def one(i: int) -> None:
            data = b"%05d" % i
            seen.append((await client.call(keys.Echo(data))).result().data == data)

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                for i in range(400):
                    nursery.start_soon(one, i)
        assert len(seen) == 400 and all(seen)


async def test_timeout_then_the_same_connection_is_reused_and_the_late_answer_dropped(
        caplog: pytest.LogCaptureFixture) -> None:
    answered_late = trio.Event()

    async def slow_first(peer: ScriptedPeer, conn: int, message: bytes, send: Send) -> None:
        if message[6:].endswith(b"slow"):
            await trio.sleep(0.5)
            await send(answer(message))
            answered_late.set()
        else:
            await send(answer(message))

    async with scripted(slow_first) as (peer, port), open_thales_client(config(port)) as client:
        impatient = ThalesBackend(client, DEFAULT_PROFILE, timeout=0.05)
        patient = ThalesBackend(client, DEFAULT_PROFILE, timeout=5)
        with pytest.raises(HsmTimeoutError):
            await impatient.echo(b"slow")
        assert await patient.echo(b"fast") == b"fast"
        with trio.fail_after(5):
            await answered_late.wait()
        assert await patient.echo(b"after") == b"after"  # after the late answer was read and dropped
        assert peer.connections == 1
    assert "dropped late response" in caplog.text
    assert "slow" not in caplog.text  # content never logged


async def test_drop_fails_the_command_in_flight_and_the_client_reconnects() -> None:
    async def hang_up_first(peer: ScriptedPeer, conn: int, message: bytes, send: Send) -> None:
        if conn == 0:
            await peer.drop(0)
        else:
            await send(answer(message))

    async with scripted(hang_up_first) as (peer, port), open_thales_client(config(port)) as client:
        with pytest.raises(HsmUnavailableError):
            await client.call(keys.Echo(b"lost"))
        with trio.fail_after(5):
            reply = await client.call(keys.Echo(b"again"))
        assert reply.result().data == b"again"
        assert peer.connections == 2


async def test_client_started_before_the_server_connects_when_it_comes_up() -> None:
    port = free_port()  # the server binds it only later: a port the kernel never lends to a connection
    async with trio.open_nursery() as nursery:
        client = ThalesClient(config(port))
        await nursery.start(client.run)
        await trio.sleep(0.1)  # a few refused connects with backoff
        assert client.connected == 0
        await nursery.start(serve_hsm, HSM, LOCALHOST, port, 4, DEFAULT_PROFILE)
        with trio.fail_after(5):
            reply = await client.call(keys.Diagnostics())
        assert reply.ok
        nursery.cancel_scope.cancel()


async def test_pool_uses_several_connections() -> None:
    async def echo_back(peer: ScriptedPeer, conn: int, message: bytes, send: Send) -> None:
        await trio.sleep(0.01)
        await send(answer(message))

    async with scripted(echo_back) as (peer, port), open_thales_client(config(port, pool_size=3)) as client:
        with trio.fail_after(5):
            await client.wait_connected(3)
            async with trio.open_nursery() as nursery:
                for i in range(30):
                    nursery.start_soon(client.call, keys.Echo(b"%02d" % i))
        assert peer.connections == 3
        assert len({conn for conn, _ in peer.requests}) == 3


async def test_unsolicited_response_is_logged_and_dropped(caplog: pytest.LogCaptureFixture) -> None:
    async def noise_first(peer: ScriptedPeer, conn: int, message: bytes, send: Send) -> None:
        await send(b"9999B300noise")
        await send(answer(message))

    async with scripted(noise_first) as (_, port), open_thales_client(config(port)) as client:
        assert (await client.call(keys.Echo(b"real"))).result().data == b"real"
    assert "dropped unmatched response header='9999' code='B3' error='00'" in caplog.text
    assert "noise" not in caplog.text


async def test_zero_length_header_runs_one_command_at_a_time() -> None:
    async with running_server(header_length=0) as port, \
            open_thales_client(config(port, header_length=0)) as client:
        out: list[bytes] = []

        async def one(i: int) -> None:
            out.append((await client.call(keys.Echo(b"%d" % i))).result().data)

        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(one, i)
        assert sorted(out) == sorted(b"%d" % i for i in range(20))


async def test_header_length_mismatch_times_out_with_an_unmatched_log(caplog: pytest.LogCaptureFixture) -> None:
    async with running_server(header_length=4) as port, \
            open_thales_client(config(port, header_length=6)) as client:
        backend = ThalesBackend(client, DEFAULT_PROFILE, timeout=0.2)
        with pytest.raises(HsmTimeoutError):
            await backend.diagnostics()
    assert "dropped unmatched response" in caplog.text


async def test_error_codes_reach_the_caller() -> None:
    async with running_server() as port, open_thales_client(config(port)) as client:
        backend = ThalesBackend(client, DEFAULT_PROFILE)
        with pytest.raises(CommandFailedError) as info:
            await backend.key_check_value("001", "U" + "0" * 32)
        assert info.value.code == "10"


async def test_a_command_that_cannot_be_encoded_fails_alone() -> None:
    async with running_server() as port, open_thales_client(config(port)) as client:
        with pytest.raises(LocalThalesError) as info:
            await client.call(keys.Echo(b"x" * 0x10000))
        assert info.value.code == "15"
        assert (await client.call(keys.Echo(b"fine"))).result().data == b"fine"
        assert client.connected == 1


async def _resetting_server(*, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Accepts, reads the start of a request, then resets the connection (RST: SO_LINGER 0)."""
    listener = trio.socket.socket()
    await listener.bind((LOCALHOST, 0))
    listener.listen(128)
    task_status.started(listener.getsockname()[1])
    with listener:
        while True:
            sock, _ = await listener.accept()
            with sock:
                await sock.recv(10)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


async def test_a_server_that_resets_under_load_fails_every_call_with_hsm_unavailable() -> None:
    outcomes: Counter[str] = Counter()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(_resetting_server)
        fast_reconnect = ClientConfig(LOCALHOST, port, backoff_initial=0.001, backoff_max=0.005)
        async with open_thales_client(fast_reconnect) as client:

            async def one() -> None:
                try:
                    await client.call(keys.Echo(b"x" * 4000))
                except Exception as exc:  # what the caller sees is the point of the test
                    outcomes[type(exc).__name__] += 1
                    assert isinstance(exc, HsmUnavailableError), repr(exc)
                else:
                    outcomes["answered"] += 1

            with trio.fail_after(30):
                async with trio.open_nursery() as calls:
                    for _ in range(300):
                        calls.start_soon(one)
        nursery.cancel_scope.cancel()
    assert outcomes == {"HsmUnavailableError": 300}
