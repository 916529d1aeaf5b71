"""The switch's own identity upstream: its own STAN (and RRN where a link wants one) and its institution ids per
outbound link, mapped back to the source's (issue 12). Sans-I/O.

A switch forwarding a request is a party of its own: towards a network it sends under its own system trace audit
number (DE 11), transmission time (DE 7), acquiring and forwarding institution ids (DE 32, 33) and, where the link
asks for it, retrieval reference number (DE 37). Two acquirers that happen to use the same STAN and terminal id
then no longer collide on the link (the second used to be refused as a duplicate, 94), and the network sees one
consistent numbering from the bank.

What is rewritten, per message routed to a link with an identity (:class:`LinkIdentity`):

- an original (0100, 0200, an acquirer's 0120/0220 advice, function 0): a new STAN from the link's sequence (even
  when another acquirer, or the same one, used the same STAN and terminal id: they must not collide), DE 7 now,
  DE 32/33 the link's (when configured), DE 37 the switch's (when ``own_rrn``: ``YDDDhh`` + the STAN, the form
  public VISA and UnionPay material shows: year digit, day of year, hour);
- a repeat (origin digit 1: 0101, 0201, 0121, 0221, 0401, 0421): the STAN, DE 7 and RRN its first copy was sent
  under, so the network recognises the repeat;
- a reversal or an advice naming its original in DE 90: a STAN of its own, and DE 90 rebuilt from what was sent
  upstream for that original (original MTI, its upstream STAN and DE 7, the DE 32/33 it carried), so the network
  can match it. An original not seen yet (a reversal that overtook its original) reserves the identity the
  original will be sent under, so the two still match.

What each original was sent under is remembered per node process (:class:`IdentityMemory`, the most recent
``capacity`` originals) and in the journal (its ``upstream_stan``, ``upstream_time`` and ``upstream_rrn``
columns): a repeat or reversal whose original the memory no longer holds (a node restart, a reversal minutes
later under load) is rewritten from its original's journal row (:func:`from_journal`). A reversal without DE 90
(some acquirers reverse by repeating the original's STAN instead) gets a STAN of its own and no DE 90.

The exchange keeps the source's values (``Exchange.source_ids``): the answer goes back with the source's
identity (:func:`restore`), and the journal records the request as the source sent it, with the upstream
identity in its own columns.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from switch.model.message import FieldValue, Message

# How many originals the memory keeps per node process: at 5,000 requests a second, the last 10 s or so, in about
# 25 MB (measured with tracemalloc: about 460 bytes an entry). Older ones are found in the journal (a database read,
# in a task): a reversal rarely comes that fast, and the journal serves it as well.
DEFAULT_CAPACITY = 50_000


class SentAs(NamedTuple):
    """What one message was sent upstream under: STAN, DE 7, RRN (None: the source's was kept). ``reserved``: not
    sent yet, held for an original a reversal named before the original itself came. A tuple: one is made per
    request (a frozen dataclass costs about 1 us more to build)."""

    stan: str
    when: str
    rrn: str | None
    reserved: bool = False


class LinkIdentity:
    """One outbound link's identity upstream: whether it numbers requests itself (``own_stan``, ``own_rrn``) and
    the institution ids it puts in DE 32 and DE 33 (None: the source's kept). ``next_stan`` is the link's
    sequence (shared with its network management)."""

    __slots__ = ("_second", "_texts", "acquirer", "forwarder", "next_stan", "own_rrn", "own_stan")

    def __init__(self, next_stan: Callable[[], str], *, own_stan: bool = True, own_rrn: bool = False,
                 acquirer: str | None = None, forwarder: str | None = None) -> None:
        self.next_stan = next_stan
        self.own_stan = own_stan
        self.own_rrn = own_rrn
        self.acquirer = acquirer
        self.forwarder = forwarder
        self._second = -1
        self._texts = ("", "")

    def fresh(self, now: float | None = None) -> SentAs:
        """A new identity: the next STAN, DE 7 at ``now`` (epoch seconds, UTC) and, with ``own_rrn``, an RRN."""
        second = int(time.time() if now is None else now)
        if second != self._second:  # formatted once a second (strftime is about 2 us; most seconds see many)
            at = datetime.fromtimestamp(second, UTC)
            self._second, self._texts = second, (at.strftime("%m%d%H%M%S"), f"{at.year % 10}{at.strftime('%j%H')}")
        when, rrn_prefix = self._texts
        stan = self.next_stan()
        return SentAs(stan, when, rrn_prefix + stan if self.own_rrn else None)

    @property
    def rewrites(self) -> bool:
        """Whether this identity changes anything (a link may keep the source's numbering and ids)."""
        return self.own_stan or self.acquirer is not None or self.forwarder is not None


class IdentityMemory:
    """What recent messages were sent upstream under, by the source's identity of their original (source link,
    the original's key, terminal id) and kind (the MTI's first three digits: ``020`` the original purchase,
    ``040`` its reversal): the oldest dropped first."""

    __slots__ = ("_entries", "capacity")

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        # One level, "key|kind" -> what it was sent under: one dict operation a request (the oldest first out).
        self._entries: OrderedDict[str, SentAs] = OrderedDict()

    def get(self, key: str, kind: str) -> SentAs | None:
        return self._entries.get(f"{key}|{kind}")

    def put(self, key: str, kind: str, sent: SentAs) -> None:
        entries = self._entries
        entries[f"{key}|{kind}"] = sent
        if len(entries) > self.capacity:
            entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True, slots=True)
class Lookup:
    """A journal lookup a rewrite needs (the memory did not know the original): the original's kind and the
    source's STAN and terminal id it was received with."""

    kind: str
    stan: str
    terminal: str | None


def memory_key(source: str, msg: Message) -> str | None:
    """The source's identity of the original ``msg`` is about: the source link, the original's MTI class and STAN
    (from DE 90 when ``msg`` names one there) and the terminal. Not DE 7: a repeat may carry a transmission time
    of its own; a STAN is unique per terminal far longer than a reversal or repeat comes after its original."""
    de90 = msg.fields.get(90)
    if isinstance(de90, str) and len(de90) >= 10 and de90[:10].isdigit():
        mti_class, stan = de90[:2], de90[4:10]
    else:
        value = msg.fields.get(11)
        if not isinstance(value, str) or not value:
            return None
        mti_class, stan = msg.mti[:2], value.rjust(6, "0")[-6:]
    terminal = msg.fields.get(41)
    return f"{source}|{mti_class}|{stan}|{terminal if isinstance(terminal, str) else ''}"


def _is_repeat(mti: str) -> bool:
    return mti[3] in "13"


def referenced_kind(msg: Message) -> str | None:
    """The kind of the original ``msg`` names in DE 90 (``020`` for an 0200), or None without a usable DE 90."""
    de90 = msg.get(90)
    if isinstance(de90, str) and len(de90) >= 10 and de90[:10].isdigit():
        return de90[:3]
    return None


def needs_lookup(msg: Message, source: str, memory: IdentityMemory) -> list[Lookup]:
    """What rewriting ``msg`` needs from the journal because the memory does not know it: the original a message
    names in DE 90, and the first copy of a repeat (both, for the repeat of a reversal)."""
    key = memory_key(source, msg)
    if key is None:
        return []
    terminal = msg.get(41)
    tid = terminal if isinstance(terminal, str) else None
    found = []
    kind = referenced_kind(msg)
    if kind is not None and memory.get(key, kind) is None:
        de90 = msg.text(90) or ""
        found.append(Lookup(kind, de90[4:10], tid))
    if _is_repeat(msg.mti) and memory.get(key, msg.mti[:3]) is None:
        found.append(Lookup(msg.mti[:3], msg.stan or "", tid))
    return found


def rewrite(msg: Message, source: str, link: LinkIdentity, memory: IdentityMemory,
            now: float | None = None) -> dict[int, FieldValue | None]:
    """Rewrite ``msg`` in place into the link's identity (see the module docstring); return the source's values of
    the fields it set (None: the source had none), for :func:`restore`."""
    fields = msg.fields
    saved: dict[int, FieldValue | None] = {}
    key = None
    de90 = fields.get(90)
    if link.own_stan:
        key = memory_key(source, msg)
        own_key = _own_key(source, msg) if de90 is not None else None
        kind = msg.mti[:3]
        sent = memory.get(key, kind) if key is not None else None
        if sent is None or not (sent.reserved or _is_repeat(msg.mti)):
            # A first copy is numbered afresh, even when the memory knows its source's identity: another acquirer
            # (or this one after its STANs wrapped) sent one like it, and the two must not collide upstream.
            sent = link.fresh(now)
            if key is not None:
                memory.put(key, kind, sent)
        elif sent.reserved and key is not None:  # the original a reversal overtook: sent as that reversal named
            sent = SentAs(sent.stan, sent.when, sent.rrn)
            memory.put(key, kind, sent)
        if own_key is not None and own_key != key:
            # Also under its own STAN: a message naming this one in DE 90 (the reversal of a completion that names
            # its pre-authorization) finds it.
            memory.put(own_key, kind, sent)
        saved[11], saved[7] = fields.get(11), fields.get(7)
        fields[11] = sent.stan
        fields[7] = sent.when
        if sent.rrn is not None:
            saved[37] = fields.get(37)
            fields[37] = sent.rrn
    if link.acquirer is not None:
        saved[32] = fields.get(32)
        fields[32] = link.acquirer
    if link.forwarder is not None:
        saved[33] = fields.get(33)
        fields[33] = link.forwarder
    ref_kind = referenced_kind(msg) if de90 is not None else None
    if ref_kind is not None and key is not None:
        original = memory.get(key, ref_kind)
        if original is None:
            # The original has not been sent (a reversal that overtook it): reserve what it will be sent under.
            fresh = link.fresh(now)
            original = SentAs(fresh.stan, fresh.when, fresh.rrn, reserved=True)
            memory.put(key, ref_kind, original)
        text = str(de90)
        acquirer = link.acquirer.rjust(11, "0")[-11:] if link.acquirer is not None else text[20:31]
        forwarder = link.forwarder.rjust(11, "0")[-11:] if link.forwarder is not None else text[31:42]
        saved[90] = de90
        fields[90] = text[:4] + original.stan + original.when + acquirer.ljust(11, "0") + forwarder.ljust(11, "0")
    return saved


def _own_key(source: str, msg: Message) -> str | None:
    """The memory key of ``msg`` as an original itself (its own MTI class and STAN), whatever its DE 90 names."""
    value = msg.fields.get(11)
    if not isinstance(value, str) or not value:
        return None
    terminal = msg.fields.get(41)
    return f"{source}|{msg.mti[:2]}|{value.rjust(6, '0')[-6:]}|{terminal if isinstance(terminal, str) else ''}"


def remember(msg: Message, source: str, memory: IdentityMemory, lookup: Lookup, found: SentAs | None) -> None:
    """What the journal says ``lookup``'s original was sent under, into the memory (nothing when not found: the
    rewrite then treats it as an original not seen yet)."""
    key = memory_key(source, msg)
    if found is not None and key is not None:
        memory.put(key, lookup.kind, found)


def restore(response: Message, saved: dict[int, FieldValue | None]) -> None:
    """Put the source's identity back into ``response`` where it echoes a rewritten field."""
    fields = response.fields
    for number, value in saved.items():
        if number in fields:
            if value is None:
                del fields[number]
            else:
                fields[number] = value
