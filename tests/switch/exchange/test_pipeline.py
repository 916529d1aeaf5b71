"""The pipeline without a node: its steps over fakes of the ports it uses (switch.exchange.ports, .services).

What it must show: the common path runs inline (no task), a path that has to wait (no link, a remote HSM, a
failed delivery) runs its async action in a task and then the very same steps; a step out of order raises
rather than answering twice; every exchange is answered and closed once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hsm.api import PinKey, PinTranslation
from schemes.generic import SCHEME
from switch.config.links import MacConfig
from switch.contracts.network import KeyChange, Network, NetworkSession, Rejected
from switch.exchange import compensation, reversal
from switch.exchange.cardstatus import CardStatusCache
from switch.exchange.context import Exchange
from switch.exchange.identity import IdentityMemory, LinkIdentity, Lookup, SentAs
from switch.exchange.inflight import InFlightOriginals
from switch.exchange.lifecycle import Event, IllegalTransition, Outcome, Phase
from switch.exchange.pipeline import Pipeline
from switch.exchange.ports import Answer, ConnectionClosed, LinkDown
from switch.exchange.services import Job
from switch.model.codes import ResponseCode
from switch.model.message import Message
from switch.routing import Destination, parse_routes
from switch.storage.records import JournalRecord
from switch.wire.framing import Frame

ROUTES = parse_routes('default = "up"\n[destinations.up]\nlinks = ["up"]\ntimeout_ms = 1000\n',
                      Path("routes.toml"), known_links=frozenset({"up"}))
PAN = "4761739001010010"


@dataclass
class FakeSource:
    sent: list[bytes] = field(default_factory=list)
    closed: bool = False
    done: int = 0

    def send_frame(self, body: bytes, reply_to: Frame | None = None) -> None:
        if self.closed:
            raise ConnectionClosed("gone")
        self.sent.append(body)

    def exchange_started(self) -> None:
        pass

    def exchange_done(self) -> None:
        self.done += 1


@dataclass
class FakeLink:
    name: str = "up"
    timeout_ms: int = 1000
    network: Network = field(default_factory=lambda: SCHEME)
    down: bool = False
    sent: list[Message] = field(default_factory=list)
    waiting: list[Callable[[Answer], None]] = field(default_factory=list)
    identity: LinkIdentity | None = None

    def send(self, msg: Message, timeout: float, on_answer: Callable[[Answer], None]) -> None:
        if self.down:
            raise LinkDown("down")
        self.sent.append(msg)
        self.waiting.append(on_answer)


class FakeHsm:
    """An HSM that is awaited (not inline): its translation marks the block so the test can see it happened."""

    async def translate_pin_tpk_to_zpk(self, tpk: str, zpk: str, pin_block: str, account: str,
                                       **_: Any) -> PinTranslation:
        return PinTranslation(4, "AB" * 8, "01")

    async def translate_pin_zpk_to_zpk(self, a: str, b: str, pin_block: str, account: str,
                                       **_: Any) -> PinTranslation:
        return PinTranslation(4, "CD" * 8, "01")


@dataclass
class FakeNode:
    link: FakeLink = field(default_factory=FakeLink)
    name: str = "test"
    draining: bool = False
    hsm: Any = None
    inline_hsm: Any = None
    jobs: list[Job] = field(default_factory=list)
    records: list[JournalRecord] = field(default_factory=list)
    journal_fails: bool = False
    queued: list[tuple[str, Message, str]] = field(default_factory=list)
    finished_exchanges: list[Exchange] = field(default_factory=list)
    awaiting_upstream: dict[int, Exchange] = field(default_factory=dict)
    upstream_originals: InFlightOriginals = field(default_factory=InFlightOriginals)
    upstream_identity: IdentityMemory = field(default_factory=IdentityMemory)
    business_dates: dict[str, str] = field(default_factory=dict)
    # What the journal says originals were sent under: (source, kind, source STAN) -> SentAs
    journal_upstream: dict[tuple[str, str, str], SentAs] = field(default_factory=dict)
    keys: dict[str, PinKey] = field(default_factory=dict)
    macs: dict[str, MacConfig] = field(default_factory=dict)  # no MAC links here (tests/switch/exchange/test_mac.py)
    mac_failure_codes: dict[str, str] = field(default_factory=dict)

    async def find_upstream(self, source: str, lookup: Lookup) -> SentAs | None:
        return self.journal_upstream.get((source, lookup.kind, lookup.stan))

    def choose_link(self, destination: Destination) -> FakeLink | None:
        return None if self.link.down else self.link

    def upstream(self, name: str) -> FakeLink | None:
        return self.link

    def session_of(self, link: str) -> NetworkSession:
        return SCHEME.session(SCHEME.link_options(None, None))

    def terminal_gate(self, source: str) -> None:
        return None

    def source_key(self, source: str, request: Message) -> PinKey | None:
        return self.keys.get(source)

    def link_key(self, link: str) -> PinKey | None:
        return self.keys.get(link)

    async def install_key(self, link: str, change: KeyChange, carrier: Message | None = None) -> bool:
        return True

    def key_changing(self, link: str, since_ns: int, key_type: str | None = None) -> None:
        pass

    def key_pending(self, link: str, received_ns: int) -> bool:
        return False

    async def key_settled(self, link: str) -> None:
        pass

    def mac_keys(self, link: str, received_ns: int) -> tuple[str, ...]:
        raise AssertionError("no MAC link here")

    def mac_key(self, link: str) -> str:
        raise AssertionError("no MAC link here")

    def mac_failed(self, link: str) -> None:
        raise AssertionError("no MAC link here")

    def cutover(self, link: str, business_date: str | None) -> None:
        pass

    def journal(self, record: JournalRecord, on_done: Callable[[BaseException | None], None]) -> None:
        self.records.append(record)
        on_done(RuntimeError("disk full") if self.journal_fails else None)

    async def saf_enqueue(self, items: list[tuple[str, Message, str]]) -> None:
        self.queued.extend(items)

    async def saf_holder(self, links: tuple[str, ...], original_key: str) -> str | None:
        # An entry queued here for one of the links, for the same original, holds later ones back.
        return next((d for d, m, _ in self.queued if d in links and reversal.original_key(m) == original_key), None)

    def spawn(self, x: Exchange, job: Job) -> None:
        self.jobs.append(job)

    def finished(self, x: Exchange) -> None:
        self.finished_exchanges.append(x)

    def lost_reversal(self) -> None:
        raise AssertionError("no reversal is lost here")

    async def run_jobs(self) -> None:
        while self.jobs:
            await self.jobs.pop(0)()


def _exchange(msg: Message, source: FakeSource | None = None, table: Any = ROUTES) -> Exchange:
    msg.meta.trace_id = "t1"
    return Exchange(request=msg, source="acquirer", network=SCHEME, conn=source or FakeSource(), frame=Frame(b"x"),
                    table=table, received_at=datetime.now(UTC), t0=0.0)


def _purchase(extra: dict[int, str | bytes] | None = None) -> Message:
    return Message("0200", {2: PAN, 3: "000000", 4: "000000001000", 7: "1207101010", 11: "000001",
                            41: "TERM0001", 49: "840", **(extra or {})})


def _answer(request: Message, code: str) -> Message:
    return SCHEME.make_response(request, code)


def test_the_common_path_runs_inline_and_answers_once() -> None:
    node, source = FakeNode(), FakeSource()
    pipeline = Pipeline(node, CardStatusCache(), str.upper)
    x = _exchange(_purchase(), source)
    pipeline.start(x)
    assert x.phase is Phase.SENT and set(node.awaiting_upstream) == {id(x)} and not node.jobs
    (on_answer,) = node.link.waiting
    on_answer(_answer(node.link.sent[0], "00"))
    assert x.phase is Phase.DELIVERED and x.closed
    assert x.outcome is Outcome.APPROVED and len(source.sent) == 1 and SCHEME.decode(source.sent[0])[39] == "00"
    assert [r.outcome for r in node.records] == ["approved"] and node.finished_exchanges == [x]
    assert not node.jobs and not node.awaiting_upstream
    # A second answer for the same request (a bug upstream, or a duplicate) cannot answer the acquirer again.
    on_answer(_answer(node.link.sent[0], "05"))
    assert len(source.sent) == 1 and node.finished_exchanges == [x]


async def test_without_a_link_the_fallback_runs_in_a_task_then_the_same_steps() -> None:
    node, source = FakeNode(), FakeSource()
    node.link.down = True
    x = _exchange(_purchase(), source)
    Pipeline(node, CardStatusCache(), str.upper).start(x)
    assert x.phase is Phase.FALLBACK and len(node.jobs) == 1 and not source.sent
    await node.run_jobs()
    # The fallback decided 91; the journal and delivery steps that followed are the ones the common path runs.
    assert x.phase is Phase.DELIVERED and x.outcome is Outcome.UNAVAILABLE
    assert SCHEME.decode(source.sent[0])[39] == "91" and [r.outcome for r in node.records] == ["unavailable"]
    assert not node.queued  # nothing was sent: nothing to reverse


async def test_a_timeout_after_sending_is_answered_91_and_reversed() -> None:
    node, source = FakeNode(), FakeSource()
    x = _exchange(_purchase(), source)
    Pipeline(node, CardStatusCache(), str.upper).start(x)
    node.link.waiting[0](None)  # the deadline
    await node.run_jobs()
    assert x.outcome is Outcome.TIMEOUT and x.went_through(Event.REVERSAL_QUEUED)
    assert [(d, m.mti, m[39]) for d, m, _ in node.queued] == [("up", "0400", "68")]
    assert SCHEME.decode(source.sent[0])[39] == "91"


async def test_a_remote_hsm_translates_in_a_task_then_the_same_send_step() -> None:
    node, source = FakeNode(hsm=FakeHsm()), FakeSource()
    node.keys = {"acquirer": PinKey("TPK", "U" + "1" * 32), "up": PinKey("ZPK", "U" + "2" * 32)}
    x = _exchange(_purchase({52: b"\x01" * 8}), source)
    Pipeline(node, CardStatusCache(), str.upper).start(x)
    assert x.phase is Phase.ROUTED and len(node.jobs) == 1 and not node.link.sent
    await node.run_jobs()
    assert x.phase is Phase.SENT and node.link.sent[0][52] == b"\xab" * 8
    node.link.waiting[0](_answer(node.link.sent[0], "00"))
    assert x.phase is Phase.DELIVERED and SCHEME.decode(source.sent[0])[39] == "00"


async def test_an_approval_that_cannot_be_delivered_is_reversed_and_closed_once() -> None:
    node, source = FakeNode(), FakeSource()
    x = _exchange(_purchase(), source)
    Pipeline(node, CardStatusCache(), str.upper).start(x)
    source.closed = True
    answer = _answer(node.link.sent[0], "00")
    answer[38] = "A12345"
    node.link.waiting[0](answer)
    assert x.phase is Phase.UNDELIVERED and not x.closed
    await node.run_jobs()
    assert x.closed and node.finished_exchanges == [x]
    assert [(m.mti, m[39], m[38]) for _, m, _ in node.queued] == [("0400", "22", "A12345")]


async def test_a_journal_that_fails_answers_96_and_reverses_the_approval() -> None:
    node, source = FakeNode(journal_fails=True), FakeSource()
    x = _exchange(_purchase(), source)
    Pipeline(node, CardStatusCache(), str.upper).start(x)
    node.link.waiting[0](_answer(node.link.sent[0], "00"))
    assert x.phase is Phase.UNJOURNALED
    await node.run_jobs()
    assert x.phase is Phase.DELIVERED and SCHEME.decode(source.sent[0])[39] == "96"
    assert [m.mti for _, m, _ in node.queued] == ["0400"]


def test_a_network_reject_is_answered_without_a_reversal() -> None:
    node, source = FakeNode(), FakeSource()
    x = _exchange(_purchase(), source)
    Pipeline(node, CardStatusCache(), str.upper).start(x)
    node.link.waiting[0](Rejected(ResponseCode.SYSTEM_MALFUNCTION, "0012"))
    assert x.outcome is Outcome.REJECTED and x.phase is Phase.DELIVERED and not node.queued and not node.jobs


def test_network_management_is_answered_by_the_links_session() -> None:
    node, source = FakeNode(), FakeSource()
    x = _exchange(Message("0800", {7: "1207101010", 11: "000009", 70: "301"}), source)
    Pipeline(node, CardStatusCache(), str.upper).start(x)
    answer = SCHEME.decode(source.sent[0])
    assert (answer.mti, answer[39], answer[70], x.outcome) == ("0810", "00", "301", Outcome.NETWORK)


def test_a_step_out_of_order_raises() -> None:
    x = _exchange(_purchase())
    with pytest.raises(IllegalTransition, match="deliver in phase received"):
        x.advance(Event.DELIVER)


STAND_IN_ROUTES = parse_routes(
    'default = "up"\n[destinations.up]\nlinks = ["up"]\ntimeout_ms = 1000\n'
    'stand_in = { max_amount = 5000, mti = ["0200"], processing_codes = ["00"], currency = "840" }\n',
    Path("routes.toml"), known_links=frozenset({"up"}))


async def test_a_journal_failure_then_a_gone_source_reverses_the_approval_once() -> None:
    node, source = FakeNode(journal_fails=True), FakeSource()
    x = _exchange(_purchase(), source)
    Pipeline(node, CardStatusCache(), str.upper).start(x)
    source.closed = True
    node.link.waiting[0](_answer(node.link.sent[0], "00"))
    await node.run_jobs()
    assert [m.mti for _, m, _ in node.queued] == ["0400"]
    assert x.phase is Phase.UNDELIVERED and x.closed and x.outcome is Outcome.ERROR


async def test_a_stand_in_whose_journal_fails_and_source_is_gone_is_advised_then_reversed_once() -> None:
    node, source = FakeNode(journal_fails=True), FakeSource()
    x = _exchange(_purchase(), source)
    x.table = STAND_IN_ROUTES
    Pipeline(node, CardStatusCache(), str.upper).start(x)
    source.closed = True
    node.link.waiting[0](None)  # sent, no answer: the switch stands in
    await node.run_jobs()
    assert [m.mti for _, m, _ in node.queued] == ["0221", "0400"]
    assert x.closed and node.finished_exchanges == [x]


class _ResponsesDoNotEncode:
    """A network whose decoder accepts what its encoder refuses: no response, not even a 96, encodes."""

    def __getattr__(self, name: str) -> Any:
        return getattr(SCHEME, name)

    def encode(self, msg: Message) -> bytes:
        raise ValueError("this network cannot encode a response")


async def test_an_answer_that_no_96_can_carry_is_reversed_and_dropped_not_retried() -> None:
    node, source = FakeNode(), FakeSource()
    x = _exchange(_purchase(), source)
    x.network = _ResponsesDoNotEncode()  # type: ignore[assignment]  # duck-typed for the test
    Pipeline(node, CardStatusCache(), str.upper).start(x)
    node.link.waiting[0](_answer(node.link.sent[0], "00"))
    await node.run_jobs()
    assert not node.jobs  # one try at a 96, not a loop
    assert x.phase is Phase.ABANDONED and x.closed and node.finished_exchanges == [x] and not source.sent
    assert [m.mti for _, m, _ in node.queued] == ["0400"]


@dataclass
class _FrameTooLong(FakeSource):
    def send_frame(self, body: bytes, reply_to: Frame | None = None) -> None:
        raise ValueError("frame longer than the framing allows")


async def test_an_approval_whose_frame_cannot_be_written_is_reversed() -> None:
    node, source = FakeNode(), _FrameTooLong()
    x = _exchange(_purchase(), source)
    Pipeline(node, CardStatusCache(), str.upper).start(x)
    node.link.waiting[0](_answer(node.link.sent[0], "00"))
    assert x.phase is Phase.UNDELIVERED
    await node.run_jobs()
    assert [m.mti for _, m, _ in node.queued] == ["0400"] and x.closed


class _BrokenCardStatus(CardStatusCache):
    def record(self, pan_hash: str, response_code: str | None) -> None:
        raise RuntimeError("a bug after the approval")


async def test_a_bug_after_an_approval_answers_96_and_reverses_it() -> None:
    node, source = FakeNode(), FakeSource()
    x = _exchange(_purchase(), source)
    x.table = STAND_IN_ROUTES  # only stand-in destinations feed the card status cache
    Pipeline(node, _BrokenCardStatus(), str.upper).start(x)
    answer = _answer(node.link.sent[0], "00")
    answer[38] = "A12345"
    node.link.waiting[0](answer)
    assert not source.sent and len(node.jobs) == 1  # the reversal is queued before the 96 leaves
    await node.run_jobs()
    assert [(m.mti, m[38]) for _, m, _ in node.queued] == [("0400", "A12345")]
    assert SCHEME.decode(source.sent[0])[39] == "96" and x.outcome is Outcome.ERROR and x.closed


def test_a_stray_continuation_leaves_the_exchange_to_its_owner() -> None:
    node, source = FakeNode(journal_fails=False), FakeSource()
    commits: list[Callable[[BaseException | None], None]] = []
    node.journal = lambda record, on_done: commits.append(on_done)  # type: ignore[method-assign]
    x = _exchange(_purchase(), source)
    Pipeline(node, CardStatusCache(), str.upper).start(x)
    on_answer = node.link.waiting[0]
    on_answer(_answer(node.link.sent[0], "00"))
    assert x.phase is Phase.JOURNALING
    on_answer(_answer(node.link.sent[0], "05"))  # a second answer while the row commits: ignored
    assert x.phase is Phase.JOURNALING and not x.closed and not source.sent
    commits[0](None)
    assert x.phase is Phase.DELIVERED and SCHEME.decode(source.sent[0])[39] == "00"


async def test_a_reversal_owed_after_a_bug_is_still_owed_when_a_hard_stop_cancels_its_task() -> None:
    node, source = FakeNode(), FakeSource()
    x = _exchange(_purchase(), source)
    x.table = STAND_IN_ROUTES
    pipeline = Pipeline(node, _BrokenCardStatus(), str.upper)
    pipeline.start(x)
    answer = _answer(node.link.sent[0], "00")
    answer[38] = "A12345"
    node.link.waiting[0](answer)  # approved, then a bug: the 96 is decided, the reversal waits in a task
    assert len(node.jobs) == 1 and x.outcome is Outcome.ERROR
    node.jobs.clear()  # the node stops hard: the task is cancelled before it queues anything
    # What the stop's batch (Node._reverse_abandoned) asks of the stranded exchange:
    assert compensation.needs_reversal(x)
    destination, reversal, trace = compensation.abandoned_reversal(x)
    assert (destination, reversal.mti, reversal[38], trace) == ("up", "0400", "A12345", "t1")
    pipeline.drop(x, reversed_=True)
    assert x.closed and not compensation.needs_reversal(x)


async def test_a_stray_answer_after_a_timeout_changes_nothing() -> None:
    node, source = FakeNode(), FakeSource()
    x = _exchange(_purchase(), source)
    Pipeline(node, CardStatusCache(), str.upper).start(x)
    on_answer = node.link.waiting[0]
    on_answer(None)  # the deadline: the fallback waits in a task
    assert x.phase is Phase.FALLBACK
    node.awaiting_upstream[id(x)] = x  # say a hard stop stranded it here: the stop's set holds it
    on_answer(_answer(node.link.sent[0], "00"))  # a late answer
    assert x.phase is Phase.FALLBACK and id(x) in node.awaiting_upstream


def _acquirer_reversal(original: Message) -> Message:
    """The acquirer's own 0400 for ``original``: field 90 names it, with the acquirer's DE 7 and STAN of its own."""
    return Message("0400", {2: PAN, 3: "000000", 4: "000000001000", 7: "1207101530", 11: "000077",
                            41: "TERM0001", 49: "840", 90: reversal.original_data_elements(original)})


async def test_an_acquirers_reversal_queues_behind_the_advice_of_its_original_instead_of_overtaking_it() -> None:
    node, source = FakeNode(), FakeSource()
    original = _purchase()
    advice = reversal.build_stand_in_advice(original, "S00001", repeat=True)
    node.queued.append(("up", advice, "t0"))
    x = _exchange(_acquirer_reversal(original), source)
    Pipeline(node, CardStatusCache(), str.upper).start(x)
    assert x.phase is Phase.ROUTED and len(node.jobs) == 1  # the queue is read in a task
    await node.run_jobs()
    assert not node.link.sent  # not forwarded past the advice
    assert x.outcome is Outcome.STORED and x.went_through(Event.HOLD) and x.went_through(Event.QUEUED)
    assert SCHEME.decode(source.sent[0])[39] == "00"
    assert [(d, m.mti) for d, m, _ in node.queued] == [("up", "0221"), ("up", "0400")]
    assert reversal.original_key(node.queued[1][1]) == reversal.original_key(advice)


async def test_a_reversal_of_another_original_or_for_another_destination_goes_out_at_once() -> None:
    node, source = FakeNode(), FakeSource()
    original = _purchase()
    other = _purchase({11: "000002"})
    node.queued.append(("up", reversal.build_stand_in_advice(other, "S00001", repeat=False), "t0"))
    node.queued.append(("elsewhere", reversal.build_stand_in_advice(original, "S00002", repeat=False), "t0"))
    x = _exchange(_acquirer_reversal(original), source)
    Pipeline(node, CardStatusCache(), str.upper).start(x)
    await node.run_jobs()
    assert [m.mti for m in node.link.sent] == ["0400"] and x.phase is Phase.SENT
    node.link.waiting[0](_answer(node.link.sent[0], "00"))
    assert x.outcome is Outcome.APPROVED and len(node.queued) == 2


async def test_a_reversal_is_not_sent_blind_when_the_queue_cannot_be_read() -> None:
    node, source = FakeNode(), FakeSource()

    async def unreadable(links: tuple[str, ...], original_key: str) -> str | None:
        raise OSError("database gone")

    node.saf_holder = unreadable  # type: ignore[method-assign]
    x = _exchange(_acquirer_reversal(_purchase()), source)
    Pipeline(node, CardStatusCache(), str.upper).start(x)
    await node.run_jobs()
    assert not node.link.sent and not node.queued
    assert x.outcome is Outcome.UNAVAILABLE and SCHEME.decode(source.sent[0])[39] == "91"


async def test_in_a_pool_the_reversal_queues_behind_its_advice_on_the_link_that_holds_it() -> None:
    pool = parse_routes('default = "up"\n[destinations.up]\nlinks = ["up", "up2"]\nstrategy = "round_robin"\n',
                        Path("routes.toml"), known_links=frozenset({"up", "up2"}))
    node, source = FakeNode(), FakeSource()
    original = _purchase()
    node.queued.append(("up2", reversal.build_stand_in_advice(original, "S00001", repeat=False), "t0"))
    x = _exchange(_acquirer_reversal(original), source, table=pool)
    Pipeline(node, CardStatusCache(), str.upper).start(x)  # the pool chooses link "up" now
    await node.run_jobs()
    assert not node.link.sent and x.outcome is Outcome.STORED
    assert [(d, m.mti) for d, m, _ in node.queued] == [("up2", "0220"), ("up2", "0400")]


async def test_with_the_whole_pool_down_the_reversal_is_held_behind_its_advice_on_the_link_that_holds_it() -> None:
    pool = parse_routes('default = "up"\n[destinations.up]\nlinks = ["up", "up2"]\nstrategy = "primary_secondary"\n',
                        Path("routes.toml"), known_links=frozenset({"up", "up2"}))
    node, source = FakeNode(), FakeSource()
    node.link.down = True  # no link of the pool is up: the exchange falls back on the pool's first link
    original = _purchase()
    node.queued.append(("up2", reversal.build_stand_in_advice(original, "S00001", repeat=True), "t0"))
    x = _exchange(_acquirer_reversal(original), source, table=pool)
    Pipeline(node, CardStatusCache(), str.upper).start(x)
    await node.run_jobs()
    assert not node.link.sent and x.outcome is Outcome.STORED and SCHEME.decode(source.sent[0])[39] == "00"
    assert [(d, m.mti) for d, m, _ in node.queued] == [("up2", "0221"), ("up2", "0400")]


def _acquirer_advice() -> Message:
    """The acquirer's own 0220 (no field 90: it names itself), as sent live to the issuer."""
    return Message("0220", {2: PAN, 3: "000000", 4: "000000001000", 7: "1207101010", 11: "000005",
                            38: "123456", 41: "TERM0001", 49: "840"})


async def test_a_reversal_waits_for_its_advice_in_flight_and_queues_behind_its_timed_out_repeat() -> None:
    node = FakeNode()
    advice = _acquirer_advice()
    a = _exchange(advice)
    pipeline = Pipeline(node, CardStatusCache(), str.upper)
    pipeline.start(a)
    await node.run_jobs()
    assert [m.mti for m in node.link.sent] == ["0220"] and a.phase is Phase.SENT  # live; the issuer is slow
    source = FakeSource()
    r = _exchange(_acquirer_reversal(advice), source)
    pipeline.start(r)
    await node.run_jobs()
    assert [m.mti for m in node.link.sent] == ["0220"] and not source.sent  # not sent past the advice in flight
    node.link.waiting[0](None)  # the advice times out: held as its repeat, then the reversal goes on
    await node.run_jobs()
    assert [m.mti for m in node.link.sent] == ["0220"]
    assert [(d, m.mti) for d, m, _ in node.queued] == [("up", "0221"), ("up", "0400")]
    assert r.outcome is Outcome.STORED and SCHEME.decode(source.sent[0])[39] == "00"
    assert len(node.upstream_originals) == 0


async def test_a_reversal_waiting_for_an_advice_that_is_answered_then_goes_out_after_it() -> None:
    node = FakeNode()
    advice = _acquirer_advice()
    pipeline = Pipeline(node, CardStatusCache(), str.upper)
    pipeline.start(_exchange(advice))
    await node.run_jobs()
    r = _exchange(_acquirer_reversal(advice))
    pipeline.start(r)
    await node.run_jobs()
    node.link.waiting[0](_answer(node.link.sent[0], "00"))  # the advice is answered: nothing will be queued
    await node.run_jobs()
    assert [m.mti for m in node.link.sent] == ["0220", "0400"] and r.phase is Phase.SENT and not node.queued


STAND_IN = parse_routes(
    'default = "up"\n[destinations.up]\nlinks = ["up"]\ntimeout_ms = 1000\nstand_in = { max_amount = 5000, '
    'mti = ["0100", "0200"], processing_codes = ["00"], currency = "840" }\n',
    Path("routes.toml"), known_links=frozenset({"up"}))


async def test_a_reversal_of_an_original_in_flight_to_a_stand_in_destination_queues_behind_its_stand_in_advice(
        ) -> None:
    node = FakeNode()
    original = _purchase()
    o = _exchange(original, table=STAND_IN)
    pipeline = Pipeline(node, CardStatusCache(), str.upper)
    pipeline.start(o)
    assert [m.mti for m in node.link.sent] == ["0200"]
    source = FakeSource()
    r = _exchange(_acquirer_reversal(original), source, table=STAND_IN)
    pipeline.start(r)  # the acquirer gave up first: its reversal arrives while the purchase is upstream
    await node.run_jobs()
    assert [m.mti for m in node.link.sent] == ["0200"] and not source.sent
    node.link.waiting[0](None)  # the purchase times out and is stood in for: its advice is queued first
    await node.run_jobs()
    assert o.outcome is Outcome.STAND_IN
    assert [(d, m.mti) for d, m, _ in node.queued] == [("up", "0221"), ("up", "0400")]
    assert r.outcome is Outcome.STORED and [m.mti for m in node.link.sent] == ["0200"]


def test_a_purchase_to_a_destination_without_stand_in_is_not_indexed() -> None:
    node = FakeNode()
    Pipeline(node, CardStatusCache(), str.upper).start(_exchange(_purchase()))
    assert node.link.sent and len(node.upstream_originals) == 0


async def test_a_reversal_held_while_its_link_is_down_still_waits_for_the_advice_in_flight() -> None:
    node = FakeNode()
    advice = _acquirer_advice()
    pipeline = Pipeline(node, CardStatusCache(), str.upper)
    pipeline.start(_exchange(advice))
    await node.run_jobs()
    node.link.down = True  # the link drops with the advice unanswered: the reversal can only be held
    r = _exchange(_acquirer_reversal(advice))
    pipeline.start(r)
    await node.run_jobs()
    assert not node.queued and r.phase is Phase.FALLBACK
    node.link.waiting[0](None)
    await node.run_jobs()
    assert [(d, m.mti) for d, m, _ in node.queued] == [("up", "0221"), ("up", "0400")]
    assert r.outcome is Outcome.STORED


async def test_a_hard_stop_reverses_an_unanswered_purchase_but_never_an_advice() -> None:
    # An advice is repeated by its acquirer until answered (0221): reversing the one a hard stop caught upstream
    # would cancel what the repeat then finds applied already (a duplicate), and the sale would never be charged.
    node = FakeNode()
    purchase, advice = _exchange(_purchase()), _exchange(_acquirer_advice())
    pipeline = Pipeline(node, CardStatusCache(), str.upper)
    pipeline.start(purchase)
    pipeline.start(advice)
    await node.run_jobs()  # the advice looks at the queue first
    assert purchase.phase is Phase.SENT and advice.phase is Phase.SENT
    assert compensation.needs_reversal(purchase)
    assert not compensation.needs_reversal(advice)
