"""A small fake ATM host for the fleet simulator's tests: it answers per the ATM interface contract
(atm-interface.md), written apart from the simulator (its own key exchange, PIN check and MAC through the software
HSM and the test LMK) so that a test checks the simulator against the contract, not against itself.

It keeps what a test asserts on: every frame body it received (raw and decoded), the withdrawals it approved, the
advices it recorded by the withdrawal they name (DE 90) and its per-terminal keys. Knobs make it misbehave the ways
a terminal must survive: refuse a terminal, answer a key exchange without keys, stay silent on requests or advices,
drop the connection, ask for new keys (DE 48 RK), MAC its answers with a wrong key.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio
import trio.testing

from hsm.cipher import tdes_decrypt
from hsm.keys import KeyCodec
from hsm.lmk import Lmk
from hsm.pinblock import account_field, decode
from hsm.software import SoftwareHsm
from switch.contracts.registry import network
from switch.exchange.mac import mac_field_for, mac_input, mac_of
from switch.model.message import Message
from switch.wire.framing import Framer, LengthFraming

ATM = network("atm")
LMK = Lmk.thales_test()
HSM = SoftwareHsm(LMK)
STATEMENT = ("0312 " + "CASH WITHDRAWAL".ljust(20) + " " + "20.00".rjust(13) + "-"
             + "0112 " + "SALARY".ljust(20) + " " + "1500.00".rjust(13) + " ")  # 2 receipt lines of 40


def new_tmk() -> str:
    return HSM.generate_key("002").under_lmk


@dataclass
class Keys:
    tmk: str
    tpk: str | None = None
    tak: str | None = None
    previous: tuple[str, str] | None = None
    pending: tuple[str, str, str, str] | None = None  # tpk, tpk kcv, tak, tak kcv


@dataclass
class FakeHost:
    tmks: dict[str, str]
    mac: frozenset[str] = frozenset()  # terminals that MAC
    pins: dict[str, str] = field(default_factory=dict)  # PAN -> PIN (default 1234)
    refuse: frozenset[str] = frozenset()  # terminals answered 58 on every 0800
    no_keys: bool = False  # answer a key exchange 00 without DE 48, as a host without an ATMP does
    silent_requests: int = 0  # leave this many 0200s unanswered
    silent_advices: int = 0  # leave this many advices (0220/0221/0420/0421) unanswered
    drop_after: int | None = None  # close the connection once this many frames came in (counted over the run)
    down_for: float = 0.0  # after that drop, refuse connections for this many seconds (a host being restarted)
    rekey: set[str] = field(default_factory=set)  # terminals whose next 0800 answer carries RK
    bad_mac: bool = False  # MAC answers with a wrong key
    keys: dict[str, Keys] = field(default_factory=dict)
    received: list[tuple[bytes, Message]] = field(default_factory=list)
    approved: dict[tuple[str, str, str], Message] = field(default_factory=dict)  # (tid, stan, de7) -> the 0200
    advices: dict[tuple[str, str, str], list[Message]] = field(default_factory=dict)
    answered: Counter[str] = field(default_factory=Counter)  # MTI + code
    connections: int = 0
    refused: int = 0  # connection attempts while down
    down_until: float = 0.0
    frames: int = 0

    def __post_init__(self) -> None:
        self._scopes: list[trio.CancelScope] = []
        for tid, tmk in self.tmks.items():
            self.keys.setdefault(tid, Keys(tmk))

    # -- wiring ----------------------------------------------------------------------------------------------------
    @asynccontextmanager
    async def serving(self) -> AsyncIterator[FakeHost]:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            yield self
            nursery.cancel_scope.cancel()

    async def connect(self) -> trio.abc.Stream:
        """A terminal's end of a fresh in-memory connection, the host's end served in the background; refused (as a
        TCP connect to a port nothing listens on) while the host is down."""
        if trio.current_time() < self.down_until:
            self.refused += 1
            raise ConnectionRefusedError(111, "Connection refused")
        client, server = trio.testing.memory_stream_pair()
        self.connections += 1
        self._nursery.start_soon(self.handle, server)
        return client

    async def handle(self, stream: trio.abc.Stream) -> None:
        framer = LengthFraming("binary2").framer()
        scope = trio.CancelScope()
        self._scopes.append(scope)
        try:
            with scope:
                await self._serve(stream, framer)
        finally:
            self._scopes.remove(scope)
            await stream.aclose()

    async def _serve(self, stream: trio.abc.Stream, framer: Framer) -> None:
        try:
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    return
                framer.receive_data(bytes(data))
                while (frame := framer.next_frame()) is not None:
                    self.frames += 1
                    msg = ATM.decode(frame.body)
                    self.received.append((frame.body, msg))
                    if self.drop_after is not None and self.frames >= self.drop_after:
                        # The host goes: every connection drops at once (down_for: and stays down a while).
                        self.drop_after = None
                        self.down_until = trio.current_time() + self.down_for
                        for other in self._scopes:
                            other.cancel()
                        return
                    answer = self.answer(frame.body, msg)
                    if answer is not None:
                        self.answered[answer.mti + str(answer[39])] += 1
                        await stream.send_all(framer.encode(self.encode(msg, answer)))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    # -- answers ---------------------------------------------------------------------------------------------------
    def answer(self, body: bytes, msg: Message) -> Message | None:
        tid = str(msg[41])
        if msg.mti == "0800":
            return self.netmgmt(tid, msg)
        keys = self.keys.get(tid)
        if keys is None or tid in self.refuse:
            return ATM.make_response(msg, "58")
        if tid in self.mac and not self.mac_ok(keys, body, msg):
            return ATM.make_response(msg, "63")
        if msg.mti in ("0200", "0201"):
            if self.silent_requests:
                self.silent_requests -= 1
                return None
            return self.financial(keys, tid, msg)
        if msg.mti in ("0220", "0221", "0420", "0421"):
            if self.silent_advices:
                self.silent_advices -= 1
                return None
            original = str(msg[90])
            key = (tid, original[4:10], original[10:20])
            self.advices.setdefault(key, []).append(msg)
            code = "00" if msg.mti[1] == "4" or key in self.approved else "25"
            return ATM.make_response(msg, code)
        return ATM.make_response(msg, "12")

    def netmgmt(self, tid: str, msg: Message) -> Message:
        keys = self.keys.get(tid)
        if keys is None or tid in self.refuse:
            return ATM.make_response(msg, "58")
        code = msg[70]
        answer = ATM.make_response(msg, "00")
        if code == "161" and not self.no_keys:
            tpk = HSM.generate_key_exported("002", keys.tmk, zmk_type="002")
            tak = HSM.generate_key_exported("003", keys.tmk, zmk_type="002")
            keys.pending = (tpk.under_lmk, tpk.kcv[:6], tak.under_lmk, tak.kcv[:6])
            answer[48] = f"TPK{tpk.under_zmk}{tpk.kcv[:6]}TAK{tak.under_zmk}{tak.kcv[:6]}"
        elif code == "162":
            pending = keys.pending
            if pending is None or msg.get(48) != f"TPK{pending[1]}TAK{pending[3]}":
                answer[39] = "30"
            else:
                if keys.tpk is not None and keys.tak is not None:
                    keys.previous = (keys.tpk, keys.tak)
                keys.tpk, keys.tak, keys.pending = pending[0], pending[2], None
        elif tid in self.rekey and code not in ("161", "162"):
            self.rekey.discard(tid)
            answer[48] = "RK"
        return answer

    def financial(self, keys: Keys, tid: str, msg: Message) -> Message:
        track2 = str(msg[35])
        pan = track2.split("=")[0]
        if self.pin_of(keys, pan, msg[52]) != self.pins.get(pan, "1234"):
            return ATM.make_response(msg, "55")
        kind = str(msg[3])[:2]
        answer = ATM.make_response(msg, "00")
        answer[38] = "A" + str(msg[11])[1:]
        if kind == "01":
            self.approved[(tid, str(msg[11]), str(msg[7]))] = msg
        if kind in ("01", "30", "21", "40", "38"):
            answer[54] = "1001840C000000250000"
        if kind == "92":
            new_block = bytes.fromhex(str(msg[125]))
            self.pins[pan] = self.pin_of(keys, pan, new_block) or "?"
        if kind == "38":
            answer[48] = STATEMENT
        return answer

    @staticmethod
    def pin_of(keys: Keys, pan: str, block: object) -> str | None:
        """The clear PIN of ``block`` under the terminal's TPK (or the one before), None if it decodes under neither."""
        assert isinstance(block, bytes)
        codec = KeyCodec(LMK)
        for tpk in (keys.tpk, keys.previous[0] if keys.previous else None):
            if tpk is None:
                continue
            clear = tdes_decrypt(codec.from_lmk("002", tpk).value, block)
            try:
                return decode(0, clear, account_field(pan))
            except Exception:
                continue
        return None

    def mac_ok(self, keys: Keys, body: bytes, msg: Message) -> bool:
        mac = mac_of(msg)
        data = mac_input(body, mac) if mac is not None else None
        if mac is None or data is None:
            return False
        return any(HSM.verify_mac("003", tak, data, mac.hex().upper())
                   for tak in (keys.tak, keys.previous[1] if keys.previous else None) if tak is not None)

    def encode(self, request: Message, answer: Message) -> bytes:
        """The answer's bytes, MACed for a MAC terminal under its current TAK (the answer to a 162: the new one; to its
        very first 161: none yet), as the node's ATMP does."""
        tid = str(request[41])
        keys = self.keys.get(tid)
        if tid not in self.mac or keys is None or keys.tak is None or str(request.get(70)) == "161":
            return ATM.encode(answer)
        number = mac_field_for(answer, "auto")
        answer[number] = bytes(8)
        body = ATM.encode(answer)
        data = mac_input(body, bytes(8))
        assert data is not None
        tak = HSM.generate_key("003").under_lmk if self.bad_mac else keys.tak
        return data + bytes.fromhex(HSM.generate_mac("003", tak, data))

    # -- what tests read -------------------------------------------------------------------------------------------
    def of(self, mti: str, code: str | None = None) -> list[Message]:
        """The messages received with ``mti`` (and DE 70 ``code``)."""
        return [m for _, m in self.received if m.mti == mti and (code is None or m.get(70) == code)]
