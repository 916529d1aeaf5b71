"""Links over real loopback sockets: what a bank's switch team checks before a link goes live.

Listeners: IP allow-list, connection limit, idle timeout, TLS, the format-error policy. Connectors: alternate
hosts, reconnect with backoff, echo on idle, sign-on/sign-off (ISO 8583:1987 0800 field 70: 001 sign-on, 002
sign-off, 301 echo test), the admin commands that drive them. Keep-alives and many requests in flight on one
connection. Every wait is bounded with trio.fail_after so a broken link fails the test instead of hanging it.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from schemes.generic import SCHEME
from switch.infra.db.engine import sqlite_url
from switch.model.message import Message
from switch.ops.admin import call
from switch.runtime.links.connection import Connection, run_connection
from switch.runtime.node import Node
from switch.wire.framing import Frame, LengthFraming
from tests.integration.harness import (
    ROUTES_ONE,
    client,
    connector_toml,
    issuer,
    port_of,
    purchase,
    recording_issuer,
    refusing_port,
    running_node,
    write_config,
)

ROUTES = ROUTES_ONE.format(link="up")


def listener_toml(name: str, options: str = "") -> str:
    return f"""
[[listeners]]
name = "{name}"
port = 0
scheme = "generic"
framing = {{ kind = "binary2" }}
{options}
"""


def conf_for(tmp_path: Path, issuer_port: int, *, extra: str = "", **kwargs: object) -> Path:
    # The link tests exercise sockets, not storage: one SQLite file keeps them fast (the storage and CLI
    # tests run on both databases).
    return write_config(tmp_path, sqlite_url(tmp_path / "links.db"), {"up": issuer_port}, ROUTES, extra=extra,
                        **kwargs)  # type: ignore[arg-type]


def framed(msg: Message) -> bytes:
    return LengthFraming("binary2").framer().encode(SCHEME.encode(msg))


async def read_until_closed(stream: trio.abc.Stream, timeout: float = 5.0) -> bytes:
    """Everything the node sends until it closes the connection (a reset counts as closed)."""
    got = b""
    with trio.fail_after(timeout):
        try:
            while data := await stream.receive_some(65536):
                got += data
        except trio.BrokenResourceError:
            pass
    return got


async def read_frame(stream: trio.abc.Stream, timeout: float = 5.0) -> Frame:
    """The next frame (keep-alives included) from a raw stream; fails on EOF."""
    framer = LengthFraming("binary2").framer()
    with trio.fail_after(timeout):
        while True:
            frame = framer.next_frame()
            if frame is not None:
                return frame
            data = await stream.receive_some(65536)
            assert data, "the node closed the connection"
            framer.receive_data(bytes(data))


def decode_frames(data: bytes) -> list[Frame]:
    framer = LengthFraming("binary2").framer()
    framer.receive_data(data)
    frames = []
    while (frame := framer.next_frame()) is not None:
        frames.append(frame)
    return frames


async def admin(node: Node, cmd: str, **args: object) -> dict[str, object]:
    answer = await trio.to_thread.run_sync(call, node.config.admin_socket, cmd, args)
    assert answer["ok"], answer
    result: dict[str, object] = answer["result"]
    return result


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.01)


# -- listeners ------------------------------------------------------------------------------------------
async def test_allow_list_refuses_peers_outside_it(tmp_path: Path) -> None:
    extra = (listener_toml("guarded", 'allow = ["10.0.0.0/8", "192.168.0.0/16"]')
             + listener_toml("loopback-only", 'allow = ["127.0.0.0/8"]'))
    async with issuer() as iss, running_node(conf_for(tmp_path, iss.port, extra=extra)) as node:
        guarded = node.listeners["guarded"]
        stream = await trio.open_tcp_stream("127.0.0.1", port_of(node, "guarded"))
        async with stream:
            await stream.send_all(framed(purchase()))
            assert await read_until_closed(stream) == b""  # closed without a word
        assert (guarded.refused, guarded.accepted) == (1, 0)
        # a listener whose list holds the loopback network serves the same peer
        async with client(port_of(node, "loopback-only")) as c:
            assert (await c.call(purchase()))[39] == "00"
        assert node.listeners["loopback-only"].refused == 0
        assert iss.stats.received["0200"] == 1


async def test_connection_limit_refuses_the_extra_peer_and_keeps_serving_the_others(tmp_path: Path) -> None:
    async with issuer() as iss:
        conf = conf_for(tmp_path, iss.port, extra=listener_toml("limited", "max_connections = 2"))
        async with running_node(conf) as node:
            limited = node.listeners["limited"]
            port = port_of(node, "limited")
            async with client(port) as c1, client(port) as c2:
                # one answer each: both connections are registered before the third one arrives
                assert (await c1.call(purchase()))[39] == "00"
                assert (await c2.call(purchase()))[39] == "00"
                third = await trio.open_tcp_stream("127.0.0.1", port)
                async with third:
                    await third.send_all(framed(purchase()))
                    assert await read_until_closed(third) == b""
                assert (limited.accepted, limited.refused) == (2, 1)
                for c in (c1, c2, c1, c2):
                    assert (await c.call(purchase()))[39] == "00"
            # the slots are free again once the two are gone
            await wait_until(lambda: not limited.active)
            async with client(port) as c3:
                assert (await c3.call(purchase()))[39] == "00"
            assert limited.refused == 1


async def test_idle_connection_is_closed_while_a_busy_one_stays(tmp_path: Path) -> None:
    async with issuer() as iss:
        conf = conf_for(tmp_path, iss.port, extra=listener_toml("idle", "idle_timeout_s = 0.5"))
        async with running_node(conf) as node:
            port = port_of(node, "idle")
            idle = await trio.open_tcp_stream("127.0.0.1", port)
            closed = trio.Event()

            async def watch() -> None:
                assert await read_until_closed(idle, timeout=10) == b""
                closed.set()

            async with idle, client(port) as busy, trio.open_nursery() as nursery:
                nursery.start_soon(watch)
                with trio.fail_after(10):
                    while not closed.is_set():
                        assert (await busy.call(purchase()))[39] == "00"
                        await trio.sleep(0.05)
                # the busy connection was never idle long enough: still served
                assert (await busy.call(purchase()))[39] == "00"
                assert len(node.listeners["idle"].active) == 1


def self_signed_certificate(folder: Path) -> tuple[Path, Path, str]:
    """A throw-away certificate for 127.0.0.1 and localhost: (cert file, key file, cert PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bulkhead integration test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_file, key_file = folder / "node.crt", folder / "node.key"
    cert_file.write_bytes(cert_pem)
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return cert_file, key_file, cert_pem.decode()


async def test_tls_listener_answers_a_client_that_trusts_its_certificate(tmp_path: Path) -> None:
    cert, key, pem = self_signed_certificate(tmp_path)
    extra = listener_toml("secure", f'tls = {{ cert = "{cert}", key = "{key}" }}')
    async with issuer() as iss, running_node(conf_for(tmp_path, iss.port, extra=extra)) as node:
        port = port_of(node, "secure")
        # a plaintext ISO 8583 client gets no ISO 8583 answer from the TLS port
        plain = await trio.open_tcp_stream("127.0.0.1", port)
        async with plain:
            await plain.send_all(framed(purchase()))
            assert b"0210" not in await read_until_closed(plain)
        ctx = ssl.create_default_context(cadata=pem)
        tls = trio.SSLStream(await trio.open_tcp_stream("127.0.0.1", port), ctx, server_hostname="127.0.0.1")
        async with tls:
            with trio.fail_after(5):
                await tls.do_handshake()
            req = purchase()
            await tls.send_all(framed(req))
            resp = SCHEME.decode((await read_frame(tls)).body)
        assert (resp.mti, resp[39], resp[11]) == ("0210", "00", req[11])
        assert iss.stats.received["0200"] == 1


async def test_tls_listener_refuses_before_any_handshake(tmp_path: Path) -> None:
    cert, key, pem = self_signed_certificate(tmp_path)
    extra = listener_toml("secure", f'allow = ["10.0.0.0/8"]\ntls = {{ cert = "{cert}", key = "{key}" }}')
    async with issuer() as iss, running_node(conf_for(tmp_path, iss.port, extra=extra)) as node:
        port = port_of(node, "secure")
        tls = trio.SSLStream(await trio.open_tcp_stream("127.0.0.1", port), ssl.create_default_context(cadata=pem),
                             server_hostname="127.0.0.1")
        with trio.fail_after(5), pytest.raises(trio.BrokenResourceError):
            await tls.do_handshake()  # the refused peer never gets a TLS session
        await trio.aclose_forcefully(tls)
        # a peer that connects and stays silent is dropped at once, not after a handshake wait
        silent = await trio.open_tcp_stream("127.0.0.1", port)
        async with silent:
            assert await read_until_closed(silent, timeout=0.9) == b""
        assert node.listeners["secure"].refused == 2


async def test_format_error_policy_close_versus_keep(tmp_path: Path) -> None:
    extra = listener_toml("strict", 'on_format_error = "close"')
    garbage = LengthFraming("binary2").framer().encode(b"\xff\xfe not an ISO 8583 message")
    async with issuer() as iss, running_node(conf_for(tmp_path, iss.port, extra=extra)) as node:
        # "close": an undecodable frame ends the connection; nothing comes back, and a request that
        # arrived behind it in the same segment is not acted on (no 0200 upstream, no reversal to undo it)
        strict = await trio.open_tcp_stream("127.0.0.1", port_of(node, "strict"))
        async with strict:
            await strict.send_all(garbage + framed(purchase()))
            assert await read_until_closed(strict) == b""
        assert iss.stats.received["0200"] == 0
        assert await trio.to_thread.run_sync(lambda: node.saf.list_items()) == []
        # "close" with a frame readable enough to answer: the 30 goes out first, then the close
        req = purchase()
        body = SCHEME.encode(req)
        strict = await trio.open_tcp_stream("127.0.0.1", port_of(node, "strict"))
        async with strict:
            await strict.send_all(LengthFraming("binary2").framer().encode(body[:-2]))
            frames = decode_frames(await read_until_closed(strict))
        (answer,) = [SCHEME.decode(f.body) for f in frames]
        assert (answer.mti, answer[39], answer[11]) == ("0210", "30", req[11])
        # "keep" (the acquirer listener): the same garbage, then the connection still serves
        async with client(port_of(node)) as c:
            await c.send_raw(garbage)
            assert (await c.call(purchase()))[39] == "00"
        assert iss.stats.received["0200"] == 1


# -- keep-alive and pipelining ---------------------------------------------------------------------------
async def test_zero_length_keepalive_is_echoed_and_the_connection_keeps_working(tmp_path: Path) -> None:
    async with issuer() as iss, running_node(conf_for(tmp_path, iss.port)) as node:
        stream = await trio.open_tcp_stream("127.0.0.1", port_of(node))
        async with stream:
            await stream.send_all(b"\x00\x00")
            with trio.fail_after(5):
                echoed = await stream.receive_some(2)
            assert echoed == b"\x00\x00"
            # a keep-alive and a request in the same segment: the keep-alive answer comes first
            req = purchase()
            await stream.send_all(b"\x00\x00" + framed(req))
            framer = LengthFraming("binary2").framer()
            frames: list[Frame] = []
            with trio.fail_after(5):
                while len(frames) < 2:
                    data = await stream.receive_some(65536)
                    assert data, "the node closed the connection"
                    framer.receive_data(bytes(data))
                    while (frame := framer.next_frame()) is not None:
                        frames.append(frame)
        assert frames[0].keepalive
        resp = SCHEME.decode(frames[1].body)
        assert (resp.mti, resp[39], resp[11]) == ("0210", "00", req[11])
        assert iss.stats.keepalives == 0  # answered by the node, not forwarded


async def test_five_hundred_pipelined_requests_each_answered_once(tmp_path: Path) -> None:
    # Every answer is held 200 ms by the issuer: only requests truly in flight together finish in time.
    rules: dict[str, object] = {"rules": [{"action": "delay", "bin": "4", "ms": 200}]}
    async with issuer(rules) as iss:
        conf = conf_for(tmp_path, iss.port, timeout_ms=10_000)
        # The second half waits in the listener's backlog for the first half's 200 ms (the connection's 256
        # slots are taken): on a loaded machine that can pass the default max_wait_ms and be shed (91) by
        # admission control, which is not what this test is about.
        conf.write_text(conf.read_text().replace('name = "acquirer"', 'name = "acquirer"\nmax_wait_ms = 10000', 1))
        async with running_node(conf) as node, client(port_of(node)) as c:
            requests = [purchase(amount=100 + i) for i in range(500)]
            for req in requests:
                c.waiting[c.key(req)] = trio.Event()
            await c.send_raw(b"".join(framed(req) for req in requests))
            most_in_flight = 0
            with trio.fail_after(30):
                for req in requests:
                    while not c.waiting[c.key(req)].is_set():
                        most_in_flight = max(most_in_flight, len(node.outbound["up"].mux))
                        await trio.sleep(0.005)
                await trio.sleep(0.2)  # a duplicate answer would arrive in this window
    assert most_in_flight > 50
    assert not c.unmatched
    for req in requests:
        (resp,) = c.responses[c.key(req)]
        assert (resp.mti, resp[39], resp[11], resp[4]) == ("0210", "00", req[11], req[4])
    assert len(c.responses) == 500
    assert iss.stats.received["0200"] == 500


# -- connectors ------------------------------------------------------------------------------------------
async def test_connector_falls_over_to_the_alternate_host(tmp_path: Path) -> None:
    async with issuer() as iss:
        with refusing_port() as dead:
            conf = write_config(tmp_path, sqlite_url(tmp_path / "links.db"), {}, ROUTES,
                                extra=connector_toml("up", [dead, iss.port]))
            async with running_node(conf) as node, client(port_of(node)) as c:
                link = node.outbound["up"]
                assert (link.state.value, link.peer) == ("signed_on", f"127.0.0.1:{iss.port}")
                assert (await c.call(purchase()))[39] == "00"
    assert link.connects == 1
    assert iss.stats.received["0800"] >= 1  # the sign-on reached the second host


async def test_connector_reconnects_after_the_issuer_comes_back(tmp_path: Path) -> None:
    async with issuer() as first:
        port = first.port
        async with running_node(conf_for(tmp_path, port)) as node, client(port_of(node)) as c:
            link = node.outbound["up"]
            assert (await c.call(purchase()))[39] == "00"
            first.cancel.cancel()
            await wait_until(lambda: not link.is_up())
            assert link.state.value in ("down", "connecting")
            assert (await c.call(purchase()))[39] == "91"  # nobody to ask
            async with issuer(port=port) as second:
                await wait_until(link.is_up, timeout=10)
                assert link.state.value == "signed_on"
                assert second.stats.received["0800"] >= 1  # signed on again
                assert (await c.call(purchase()))[39] == "00"
                assert second.stats.received["0200"] == 1
            assert link.connects == 2


async def test_idle_link_sends_echo_tests(tmp_path: Path) -> None:
    async with recording_issuer() as rec, running_node(conf_for(tmp_path, rec.port, echo_interval_s=0.2)) as node:
        await wait_until(lambda: rec.network_codes().count("301") >= 3, timeout=10)
        link = node.outbound["up"]
        assert link.is_up() and link.connects == 1  # every echo answered: no reconnect
    codes = rec.network_codes()
    assert codes[0] == "001"
    assert set(codes[1:]) <= {"301", "002"}


async def test_node_signs_off_when_it_shuts_down(tmp_path: Path) -> None:
    async with recording_issuer() as rec:
        async with running_node(conf_for(tmp_path, rec.port)) as node, client(port_of(node)) as c:
            assert (await c.call(purchase()))[39] == "00"
        # running_node has returned: the node is stopped
        assert rec.network_codes() == ["001", "002"]
        assert [m.mti for m in rec.received] == ["0800", "0200", "0800"]


async def test_admin_signoff_makes_the_link_unusable_and_signon_restores_it(tmp_path: Path) -> None:
    async with recording_issuer() as rec, running_node(conf_for(tmp_path, rec.port)) as node, \
            client(port_of(node)) as c:
            off = await admin(node, "links.signoff", name="up")
            assert (off["response_code"], off["state"]) == ("00", "connected")
            assert (await c.call(purchase()))[39] == "91"
            assert [m.mti for m in rec.received] == ["0800", "0800"]  # the 0200 never went out
            assert await trio.to_thread.run_sync(node.saf.pending_count, None) == 0  # not sent: no reversal
            on = await admin(node, "links.signon", name="up")
            assert (on["response_code"], on["state"]) == ("00", "signed_on")
            assert (await c.call(purchase()))[39] == "00"
            assert rec.network_codes()[:3] == ["001", "002", "001"]
            echo = await admin(node, "links.echo", name="up")
            assert echo["response_code"] == "00"
            # A generic link without a key_exchange_code: the command says so (not a silent unanswered rekey).
            rekey = await trio.to_thread.run_sync(call, node.config.admin_socket, "links.rekey", {"name": "up"})
            assert not rekey["ok"] and "does no key exchange" in rekey["error"]
            unknown = await trio.to_thread.run_sync(call, node.config.admin_socket, "links.signon",
                                                    {"name": "nowhere"})
            assert not unknown["ok"] and "nowhere" in unknown["error"]


async def test_unanswered_echo_makes_the_connector_reconnect(tmp_path: Path) -> None:
    async with recording_issuer(unanswered=frozenset({"301"})) as rec:
        conf = conf_for(tmp_path, rec.port, echo_interval_s=0.2, timeout_ms=300)
        async with running_node(conf) as node:
            link = node.outbound["up"]
            await wait_until(lambda: link.connects >= 2 and link.is_up(), timeout=10)
    codes = rec.network_codes()
    assert codes[:2] == ["001", "301"]
    assert codes.count("001") >= 2  # signed on again on the new connection


async def test_overfull_output_queue_ends_only_that_connection() -> None:
    """A peer that does not read what the node sends: its connection is closed (the queue bound), and
    run_connection returns normally, so the link's task (on a connector: the node's service nursery) never
    sees an exception."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        peer_side: list[trio.SocketStream] = []
        accepted = trio.Event()

        async def accept(stream: trio.SocketStream) -> None:
            peer_side.append(stream)
            accepted.set()
            await trio.sleep_forever()

        nursery.start_soon(trio.serve_listeners, accept, listeners)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        # a 2-byte keep-alive answer already exceeds a 1-byte queue bound
        conn = Connection(stream, LengthFraming("binary2").framer(), link="t", peer="p", max_queued_bytes=1)
        await accepted.wait()
        await peer_side[0].send_all(b"\x00\x00")
        with trio.fail_after(5):
            await run_connection(conn, lambda c, f: c.reply_keepalive(f))  # what a link does with a keep-alive
        assert conn.closed
        nursery.cancel_scope.cancel()


async def test_stopping_while_the_connection_is_going_away_does_not_raise(tmp_path: Path) -> None:
    async with recording_issuer() as rec, running_node(conf_for(tmp_path, rec.port)) as node:
        link = node.outbound["up"]
        # The connection is closed but its session has not been torn down yet (no checkpoint in between):
        # the state still says signed_on. Signing off must give up quietly, not raise out of the node's stop.
        assert link.conn is not None
        link.conn.close()
        with trio.fail_after(5):
            await link.shutdown()
        assert link.state.value in ("draining", "down")
