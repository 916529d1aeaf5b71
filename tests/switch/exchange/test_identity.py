"""The switch's own identity upstream (switch.exchange.identity): its STAN, DE 7, RRN and DE 32/33 per link, mapped
back to the source's, and DE 90 built from what was sent upstream."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from switch.exchange import identity
from switch.exchange.cardstatus import CardStatusCache
from switch.exchange.identity import IdentityMemory, LinkIdentity, SentAs
from switch.exchange.lifecycle import Outcome
from switch.exchange.pipeline import Pipeline
from switch.model.message import Message
from tests.switch.exchange.test_pipeline import SCHEME, FakeNode, FakeSource, _answer, _exchange, _purchase

# 2026-12-07 10:11:12 UTC
NOW = datetime(2026, 12, 7, 10, 11, 12, tzinfo=UTC).timestamp()


def _link(**kw: object) -> LinkIdentity:
    counter = itertools.count(501)
    return LinkIdentity(lambda: f"{next(counter):06d}", **kw)  # type: ignore[arg-type]


def _reversal_of(original: Message, stan: str = "000777") -> Message:
    """The acquirer's 0400 for ``original`` (before the switch rewrote it): DE 90 names it as the acquirer sent it."""
    acquirer = (original.text(32) or "").rjust(11, "0")
    de90 = "0200" + original.text(11).rjust(6, "0") + original.text(7) + acquirer + "0" * 11  # type: ignore[union-attr]
    fields = {n: original.fields[n] for n in (2, 3, 4, 32, 41, 49) if n in original.fields}
    return Message("0400", {**fields, 7: "1207101530", 11: stan, 90: de90})


def test_an_original_goes_out_under_the_links_stan_time_and_institutions_and_the_answer_comes_back_as_sent() -> None:
    link, memory = _link(acquirer="4071234", forwarder="400000"), IdentityMemory()
    msg = _purchase({32: "123"})
    saved = identity.rewrite(msg, "atm", link, memory, NOW)
    assert (msg[11], msg[7], msg[32], msg[33]) == ("000501", "1207101112", "4071234", "400000")
    assert saved == {7: "1207101010", 11: "000001", 32: "123", 33: None}
    answer = SCHEME.make_response(msg, "00")
    answer[33] = "400000"
    identity.restore(answer, saved)
    assert (answer[11], answer[7], answer[32]) == ("000001", "1207101010", "123") and 33 not in answer


def test_two_acquirers_with_the_same_stan_and_terminal_get_different_stans_upstream() -> None:
    link, memory = _link(), IdentityMemory()
    first, second = _purchase(), _purchase()
    identity.rewrite(first, "atm-a", link, memory, NOW)
    identity.rewrite(second, "atm-b", link, memory, NOW)
    assert first[11] != second[11]


def test_a_repeat_goes_out_under_its_originals_stan_and_time() -> None:
    link, memory = _link(own_rrn=True), IdentityMemory()
    original = _purchase()
    identity.rewrite(original, "atm", link, memory, NOW)
    repeat = _purchase()
    repeat.mti = "0201"
    identity.rewrite(repeat, "atm", link, memory, NOW + 30)
    assert (repeat[11], repeat[7], repeat[37]) == (original[11], original[7], original[37]) == (
        "000501", "1207101112", "6341" + "10" + "000501")  # Y DDD hh + STAN


def test_a_reversal_names_what_was_sent_upstream_in_de_90_and_its_repeat_keeps_its_stan() -> None:
    link, memory = _link(acquirer="4071234"), IdentityMemory()
    original = _purchase({32: "123"})
    reversal, repeat = _reversal_of(original), _reversal_of(original)
    repeat.mti = "0401"
    identity.rewrite(original, "atm", link, memory, NOW)
    saved = identity.rewrite(reversal, "atm", link, memory, NOW + 5)
    assert reversal[11] == "000502"
    assert reversal[90] == "0200" + "000501" + "1207101112" + "00004071234" + "0" * 11
    assert saved[90] == "0200000001" + "1207101010" + "00000000123" + "0" * 11
    identity.rewrite(repeat, "atm", link, memory, NOW + 65)
    assert (repeat[11], repeat[90]) == (reversal[11], reversal[90])


def test_a_reversal_that_overtakes_its_original_reserves_the_identity_the_original_is_sent_under() -> None:
    link, memory = _link(), IdentityMemory()
    original = _purchase()
    reversal = _reversal_of(original)
    identity.rewrite(reversal, "atm", link, memory, NOW)
    identity.rewrite(original, "atm", link, memory, NOW + 2)
    assert reversal[90][4:20] == original[11] + original[7]  # type: ignore[index]


def test_a_link_keeping_the_sources_numbering_only_sets_its_institution() -> None:
    link, memory = _link(own_stan=False, acquirer="99"), IdentityMemory()
    msg = _purchase()
    assert identity.rewrite(msg, "atm", link, memory, NOW) == {32: None}
    assert (msg[11], msg[7], msg[32]) == ("000001", "1207101010", "99") and len(memory) == 0


def test_the_memory_forgets_the_oldest_first_and_then_asks_the_journal() -> None:
    link, memory = _link(), IdentityMemory(capacity=4)
    purchases = [_purchase({11: f"00000{i}"}) for i in range(1, 6)]
    reversals = [_reversal_of(p) for p in purchases]
    for p in purchases:
        identity.rewrite(p, "atm", link, memory, NOW)
    assert len(memory) == 4
    forgotten = reversals[0]
    (lookup,) = identity.needs_lookup(forgotten, "atm", memory)
    assert (lookup.kind, lookup.stan, lookup.terminal) == ("020", "000001", "TERM0001")
    identity.remember(forgotten, "atm", memory, lookup, SentAs("000501", "1207101112", None))
    identity.rewrite(forgotten, "atm", link, memory, NOW)
    assert forgotten[90][4:20] == "000501" + "1207101112"  # type: ignore[index]
    assert identity.needs_lookup(reversals[4], "atm", memory) == []


# -- through the pipeline --------------------------------------------------------------------------------------
def test_the_acquirer_is_answered_under_its_own_identity_and_the_journal_keeps_both() -> None:
    node, source = FakeNode(), FakeSource()
    node.link.identity = _link(acquirer="4071234")
    x = _exchange(_purchase({15: "1206"}), source)
    Pipeline(node, CardStatusCache(), str.upper).start(x)
    sent = node.link.sent[0]
    assert (sent[11], sent[32]) == ("000501", "4071234")
    answer = _answer(sent, "00")
    answer[15] = "1207"  # the network's settlement date
    node.link.waiting[0](answer)
    response = SCHEME.decode(source.sent[0])
    assert (response[39], response[11], response[7]) == ("00", "000001", "1207101010") and 32 not in response
    (row,) = node.records
    assert (row.stan, row.upstream_stan, row.upstream_time) == ("000001", "000501", sent[7])
    assert row.request["11"] == "000001" and "32" not in row.request and row.settlement_date == "1207"


async def test_a_timeout_reversal_names_what_was_sent_upstream() -> None:
    node, source = FakeNode(), FakeSource()
    node.link.identity = _link()
    x = _exchange(_purchase(), source)
    Pipeline(node, CardStatusCache(), str.upper).start(x)
    sent = node.link.sent[0]
    node.link.waiting[0](None)
    await node.run_jobs()
    assert x.outcome is Outcome.TIMEOUT
    ((_, reversal, _),) = node.queued
    assert reversal[90][:20] == "0200" + sent[11] + sent[7]  # type: ignore[index]
    assert SCHEME.decode(source.sent[0])[11] == "000001"


async def test_an_acquirers_reversal_after_a_restart_finds_its_originals_identity_in_the_journal() -> None:
    node, source = FakeNode(), FakeSource()
    node.link.identity = _link()
    node.journal_upstream[("acquirer", "020", "000001")] = SentAs("004242", "1207090000", None)
    x = _exchange(_reversal_of(_purchase()), source)
    Pipeline(node, CardStatusCache(), str.upper).start(x)
    await node.run_jobs()
    sent = node.link.sent[0]
    assert sent.mti == "0400" and sent[90][:20] == "0200" + "004242" + "1207090000"  # type: ignore[index]
    node.link.waiting[0](_answer(sent, "00"))
    response = SCHEME.decode(source.sent[0])
    assert (response.mti, response[11]) == ("0410", "000777")


def test_the_same_stan_and_terminal_again_on_one_link_is_numbered_afresh() -> None:
    link, memory = _link(), IdentityMemory()
    first, second = _purchase(), _purchase()
    identity.rewrite(first, "atm", link, memory, NOW)
    identity.rewrite(second, "atm", link, memory, NOW)
    assert (first[11], second[11]) == ("000501", "000502")
    reversal = _reversal_of(_purchase())
    identity.rewrite(reversal, "atm", link, memory, NOW)
    assert reversal[90][4:10] == "000502"  # type: ignore[index]  # the latest of the two


def test_without_de_15_the_settlement_date_is_the_networks_business_date_since_its_last_cutover() -> None:
    node, source = FakeNode(), FakeSource()
    node.business_dates["up"] = "1208"  # the network cut over: its settlement day is the 8th
    x = _exchange(_purchase(), source)
    Pipeline(node, CardStatusCache(), str.upper).start(x)
    node.link.waiting[0](_answer(node.link.sent[0], "00"))
    assert [r.settlement_date for r in node.records] == ["1208"]


def test_the_reversal_of_a_completion_names_the_completion_as_it_was_sent() -> None:
    link, memory = _link(), IdentityMemory()
    preauth = Message("0100", {2: "4761739001010010", 4: "000000005000", 7: "1207101010", 11: "000010", 41: "T1"})
    completion = Message("0220", {2: "4761739001010010", 4: "000000004000", 7: "1207111010", 11: "000011", 41: "T1",
                                  90: "0100000010" + "1207101010" + "0" * 22})
    reversal = Message("0420", {2: "4761739001010010", 4: "000000004000", 7: "1207121010", 11: "000012", 41: "T1",
                                90: "0220000011" + "1207111010" + "0" * 22})
    for msg in (preauth, completion):
        identity.rewrite(msg, "pos", link, memory, NOW)
    assert identity.needs_lookup(reversal, "pos", memory) == []
    identity.rewrite(reversal, "pos", link, memory, NOW)
    assert reversal[90][:20] == "0220" + completion[11] + completion[7]  # type: ignore[index,operator]
