"""What a network simulator originates towards the bank (the issuer direction): requests, reversals, repeats and
STIP advices for the bank's cards, down the connection the bank opened, matched with the bank's answers.

A network sends the bank what its acquirers sent it, under its own identity: its own STAN (DE 11, one sequence per
connection), transmission time (DE 7), acquiring and forwarding institution (DE 32, 33: the network's member ids,
:class:`Identity`), and the fields its dialect adds:

- VISA: DE 19 acquiring country, DE 60 (additional POS information: the value the VISA node test sends), DE 62 with
  62.1 authorization characteristics indicator ``Y`` and 62.2 a transaction identifier V.I.P. assigns (15 digits),
  DE 63 with 63.1 network id ``0002`` (VisaNet's, as the public base1 samples carry). A STIP advice (0120: VISA
  stood in for the bank and approved) carries 63.4, the STIP/switch reason code (reference section 10.3; the
  codes are not public: the simulator sends ``stip_reason``, default ``9020``, this project's choice).
- UnionPay: DE 60 (reserved: the public 0200 purchase sample's ``000006000300000000000012000``).
- Mastercard: DE 15 (the settlement date, today UTC), DE 48 with its transaction category code (``R`` retail, as
  the public samples), DE 61 POS data (the public 0100 samples' layout: attended, card and cardholder present,
  terminal input capability 3, the acquirer's country) and DE 63 (network data: the financial network code ``MCC``
  and a 6-character Banknet reference). A STIP advice (0120: the Authorization Platform stood in for the bank)
  carries DE 60, the advice reason code and detail (``141`` and ``0000``: this project's stand-in, the codes are
  not public), and DE 121, the authorizing agent (the simulator's forwarding institution id).
- American Express: DE 19 (acquiring country); the network builds its ISO 8583:1993 fields (POS data code,
  function and reason codes, DE 56) from the canonical message as it would for any request.
- Other networks (generic): the ISO 8583:1987 fields alone.

Merchant name and location (DE 43) is ASCII: the bank's cells are reached over generic links, which carry DE 43 as
ASCII (a GBK name would be answered 30 there, README "UnionPay").

As a load generator (the benchmark's issuer direction, ``bench/scenarios.py`` ``net-*-issuer``): ``inflight``
requests outstanding per connection, each answer sending the next (closed loop), for ``warmup_s`` + ``duration_s``
seconds from the first connection's start; what was sent inside the measured window is counted apart
(:class:`Measured`) with its latencies, as the benchmark's own generator counts it (bench/loadgen.py).

Sans-I/O but for time: :class:`Originator` builds and matches; :mod:`switch.sim.issuer` puts it on a connection.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from hsm.testing import TestPinPad
from switch.exchange.reversal import build_reversal
from switch.model.message import FieldValue, Message

STAN_MODULO = 999_999
_VISA_NETWORK_ID = "0002"  # 63.1 of the public base1 samples (VisaNet)
_UNIONPAY_DE60 = "000006000300000000000012000"  # DE 60 of the public UnionPay 0200 purchase sample (ALATKA_0200_GBK)
_VISA_DE60 = "050000000700"  # DE 60 as the VISA node test sends it (terminal type, entry capability, ...)
_MASTERCARD_TCC = "R"  # DE 48 position 1: retail (the public 0100 samples)
_MASTERCARD_NETWORK = "MCC"  # DE 63.1: the financial network code (Mastercard's own)
_MASTERCARD_STIP = "141" + "0000"  # DE 60 of a STIP advice: advice reason and detail codes (not public)
MERCHANT_NAME = "BULKHEAD NETWORK SIM".ljust(25) + "SHANGHAI".ljust(13) + "CN"  # DE 43: 25 + 13 + 2 (ASCII)
REVERSAL_REASON = "17"  # DE 39 of a reversal: customer cancellation (ISO 8583:1987)
PARTIAL_REASON = "32"  # DE 39 of a partial reversal: completed partially
KINDS = ("0100", "0200")


# VISA's bitmap-structured private fields in canonical form (the hex of their bytes), built here because nothing in
# switch imports a network (.importlinter "networks"); the layouts are schemes.visa.fields.DE62/DE63's and the tests
# read what is built here with schemes.visa.fields.parse_de62/parse_de63.
def _visa_de62(aci: str, transaction_id: str) -> str:
    """DE 62: an 8-byte bitmap naming 62.1 and 62.2, 62.1 (1 EBCDIC character), 62.2 (15 digits, packed BCD with a
    0 pad nibble first)."""
    return ("C0" + "00" * 7) + aci.encode("cp500").hex().upper() + transaction_id.rjust(16, "0")


def _visa_de63(subfields: dict[int, str]) -> str:
    """DE 63: a 3-byte bitmap, then 63.1-63.4 (each 4 digits: 2 bytes of packed BCD) in order."""
    bitmap = 0
    for sub in subfields:
        bitmap |= 0x800000 >> (sub - 1)
    return f"{bitmap:06X}" + "".join(subfields[sub] for sub in sorted(subfields))


@dataclass(frozen=True)
class Identity:
    """Who the network says it is on what it originates: DE 32 (acquiring institution), DE 33 (forwarding)."""

    acquirer: str
    forwarder: str


# Defaults per network: DE 32/33 of the public samples (VISA's base1 sample DE 32 432109; UnionPay's 0200 sample
# DE 32/33 92010000 and UnionPay's own domestic id 00010000, reference section 7.1). Configurable per simulator.
IDENTITIES: dict[str, Identity] = {
    "visa": Identity("432109", "400000"),
    "unionpay": Identity("92010000", "00010000"),
    # Mastercard: DE 32/33 of the public 0100 sample (danil/iso8583: 005037 and 200154; at most 6 digits there).
    "mastercard": Identity("005037", "200154"),
    # American Express: the acquiring institution id a public AmEx interface sends (Hypercom ATP ``ACQ_INSTN_ID``).
    "amex": Identity("06370100", "06370100"),
}
GENERIC_IDENTITY = Identity("00000000002", "00000000002")


@dataclass(frozen=True)
class OriginateConfig:
    """What to originate. ``rate`` requests a second (0: one at a time, each after the previous answer); ``count``
    stops after that many requests (None: until cancelled). Every ``reversal_every``-th approved request is
    reversed (0400; in part, leaving ``partial_amount`` in place, when that is set: DE 95), every ``repeat_every``-th
    is sent again as a repeat (0101/0201) once answered, and every
    ``stip_every``-th origination is an 0120 STIP advice instead of a request (0: never), sent again as a repeat
    (0121) with ``stip_repeat``. With ``pin`` and ``zpk`` (a ZPK cryptogram under the public test LMK: the link's
    zone PIN key) requests carry the PIN as an ISO format 0 block under the zone key.

    As a load generator: ``inflight`` > 0 keeps that many requests outstanding per connection (closed loop: each
    answer or timeout frees a slot that is refilled at once; instead of ``rate``), and ``duration_s`` stops
    originating ``warmup_s`` + ``duration_s`` seconds after the first connection started (:class:`LoadWindow`)."""

    cards: tuple[str, ...]
    rate: float = 0.0
    count: int | None = None
    mti: str = "0200"
    amount: int = 1000
    currency: str = "840"
    country: str = "840"  # DE 19 acquiring institution country (VISA)
    identity: Identity | None = None  # None: the network's default (IDENTITIES)
    reversal_every: int = 0
    partial_amount: int | None = None  # reversals are partial: DE 95 with this actual amount
    repeat_every: int = 0
    stip_every: int = 0
    stip_reason: str = "9020"
    stip_repeat: bool = False  # send each STIP advice again as a repeat (0121) once answered
    pin: str | None = field(default=None, repr=False)
    zpk: str | None = None
    timeout_s: float = 10.0
    inflight: int = 0
    duration_s: float | None = None
    warmup_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.cards:
            raise ValueError("originate: at least one card")
        for pan in self.cards:
            if not (pan.isdigit() and 12 <= len(pan) <= 19):
                raise ValueError("originate: a card is 12 to 19 digits")
        if self.mti not in KINDS:
            raise ValueError(f"originate: mti is one of {', '.join(KINDS)}")
        if self.rate < 0 or self.amount < 0 or self.amount >= 10**12:
            raise ValueError("originate: rate and amount must be non-negative (amount up to 12 digits)")
        if self.partial_amount is not None and not 0 < self.partial_amount < self.amount:
            raise ValueError("originate: partial_amount is more than 0 and less than the amount")
        if len(self.stip_reason) != 4 or not self.stip_reason.isdigit():
            raise ValueError("originate: stip_reason is 4 digits")
        if (self.pin is None) != (self.zpk is None):
            raise ValueError("originate: a PIN needs the zone PIN key (zpk) and the other way round")
        if self.inflight < 0 or (self.inflight and self.rate):
            raise ValueError("originate: inflight (closed loop) is a non-negative count, and excludes a rate")
        if (self.duration_s is not None and self.duration_s <= 0) or self.warmup_s < 0:
            raise ValueError("originate: duration must be positive and warmup not negative")


@dataclass
class LoadWindow:
    """A timed run's clock, shared by the server's connections: it starts when the first connection starts
    originating; the ``warmup`` seconds after are not measured, the ``duration`` seconds after them are, and then
    nothing more is originated."""

    warmup: float
    duration: float
    started: float | None = None

    def start(self, now: float) -> bool:
        """Start the clock unless it runs; True for the caller that started it."""
        if self.started is not None:
            return False
        self.started = now
        return True

    def measured(self, t: float) -> bool:
        """``t`` lies in the measured window."""
        return self.started is not None and 0 <= t - self.started - self.warmup < self.duration

    def over(self, now: float) -> bool:
        return self.started is not None and now - self.started >= self.warmup + self.duration


@dataclass
class Measured:
    """What the measured window saw, as bench/loadgen.py counts it: ``answered`` the answers received in the
    window (what TPS counts); ``codes``, ``latencies`` (seconds) and ``timeouts`` those of requests sent in it."""

    sent: int = 0
    answered: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    timeouts: int = 0


@dataclass
class OriginateStats:
    """What the simulator originated and how the bank answered (the CLI's summary, tests); with a
    :class:`LoadWindow`, the measured window's figures apart."""

    sent: Counter[str] = field(default_factory=Counter)  # per MTI
    answered: Counter[str] = field(default_factory=Counter)  # per DE 39 of the bank's answers
    rejected: int = 0  # the bank sent one of ours back under its reject form
    timeouts: int = 0
    unmatched: int = 0  # answers to nothing pending (late, or never sent)
    repeats_differing: int = 0  # a repeat answered with another code than its original
    window: LoadWindow | None = None
    measured: Measured = field(default_factory=Measured)

    def summary(self) -> str:
        sent = ", ".join(f"{mti}: {n}" for mti, n in sorted(self.sent.items())) or "-"
        answered = ", ".join(f"{code}: {n}" for code, n in sorted(self.answered.items())) or "-"
        return (f"originated {sent}; answered {answered}; rejected by the bank {self.rejected}; "
                f"timeouts {self.timeouts}; unmatched {self.unmatched}")


@dataclass
class _Pending:
    request: Message
    sent_at: float
    repeat_of: str | None = None  # for a repeat: the code its original got


Send = Callable[[Message], None]


class Originator:
    """One connection's originations (the network's STAN sequence, what is in flight). ``send`` puts a message on
    the connection; ``key`` is the network's match key (request and answer)."""

    def __init__(self, scheme: str, config: OriginateConfig, stats: OriginateStats, key: Callable[[Message], Hashable],
                 send: Send, *, clock: Callable[[], float] = time.monotonic, stan_start: int = 0,
                 zpk: Callable[[], str | None] | None = None) -> None:
        self.scheme = scheme
        self.config = config
        self.stats = stats
        self.identity = config.identity or IDENTITIES.get(scheme, GENERIC_IDENTITY)
        self._key = key
        self._send = send
        self._clock = clock
        # The zone PIN key now (the simulator's, which a key exchange changes: switch.sim.simkeys); None: config's.
        self._zpk = zpk
        self._stan = stan_start
        self._seq = 0  # originations (requests and advices): picks the card and the STIP turn
        self._approved = 0  # approved requests: picks the reversal and repeat turns
        self.pending: dict[Hashable, _Pending] = {}
        self.idle = True  # nothing in flight (one at a time when rate is 0)

    @property
    def done(self) -> bool:
        """The configured count is originated (and nothing is owed an answer)."""
        return self.config.count is not None and self._seq >= self.config.count and not self.pending

    @property
    def exhausted(self) -> bool:
        """Nothing more to originate: the count is reached, or the timed run's window is over."""
        if self.config.count is not None and self._seq >= self.config.count:
            return True
        window = self.stats.window
        return window is not None and window.over(self._clock())

    def start_clock(self) -> bool:
        """Start the timed run's shared clock unless it runs; True for the connection that started it."""
        window = self.stats.window
        return window is not None and window.start(self._clock())

    def fill(self) -> None:
        """Closed loop: originate until ``inflight`` requests are outstanding (or nothing more is to be sent)."""
        while len(self.pending) < self.config.inflight and not self.exhausted:
            self.originate()

    # -- building -------------------------------------------------------------------------------------------
    def next_stan(self) -> str:
        self._stan = self._stan % STAN_MODULO + 1
        return f"{self._stan:06d}"

    def originate(self) -> Message:
        """The next request (or STIP advice), sent."""
        cfg = self.config
        self._seq += 1
        pan = cfg.cards[(self._seq - 1) % len(cfg.cards)]
        stip = cfg.stip_every > 0 and self._seq % cfg.stip_every == 0
        msg = self.request(pan, "0120" if stip else cfg.mti)
        self._put(msg)
        return msg

    def request(self, pan: str, mti: str) -> Message:
        """A request (0100, 0200) or a STIP advice (0120) for ``pan`` in this network's dialect."""
        cfg, ident = self.config, self.identity
        now = time.gmtime()
        stan = self.next_stan()
        fields: dict[int, FieldValue] = {
            2: pan, 3: "000000", 4: f"{cfg.amount:012d}", 7: time.strftime("%m%d%H%M%S", now), 11: stan,
            12: time.strftime("%H%M%S", now), 13: time.strftime("%m%d", now), 18: "5999",
            22: "012", 25: "00", 32: ident.acquirer, 33: ident.forwarder,
            37: f"{time.strftime('%y%j', now)[1:]}{now.tm_hour:02d}{stan}",  # YDDDhh + STAN, as acquirers number
            41: "NETSIM01", 42: "BULKHEADNETSIM1", 43: MERCHANT_NAME, 49: cfg.currency,
        }
        zpk = self._zpk() if self._zpk is not None else cfg.zpk
        if cfg.pin is not None and zpk is not None and mti != "0120":
            fields[22] = "011"  # keyed, PIN entry capability
            fields[52] = TestPinPad().pin_block("ZPK", zpk, cfg.pin, pan)
        if mti == "0120":
            fields[38] = f"S{self._seq % 100_000:05d}"  # the network's stand-in approval
            fields[39] = "00"
        if self.scheme == "visa":
            fields[19] = cfg.country
            fields[60] = _VISA_DE60
            fields[62] = _visa_de62("Y", f"{int(time.time()) % 10**9:09d}{self._seq % 10**6:06d}")
            de63 = {1: _VISA_NETWORK_ID}
            if mti == "0120":
                de63[4] = cfg.stip_reason
            fields[63] = _visa_de63(de63)
        elif self.scheme == "unionpay":
            fields[60] = _UNIONPAY_DE60
        elif self.scheme == "mastercard":
            fields[15] = time.strftime("%m%d", now)
            fields[48] = _MASTERCARD_TCC
            fields[61] = "00000000003" + "00" + cfg.country  # 61.1-61.11, authorization life cycle, country
            fields[63] = _MASTERCARD_NETWORK + f"S{self._seq % 100_000:05d}"
            if mti == "0120":
                fields[60] = _MASTERCARD_STIP
                fields[121] = ident.forwarder
        elif self.scheme == "amex":
            fields[19] = cfg.country
        return Message(mti, fields)

    def _put(self, msg: Message, repeat_of: str | None = None) -> None:
        now = self._clock()
        self.pending[self._key(msg)] = _Pending(msg, now, repeat_of)
        self.stats.sent[msg.mti] += 1
        window = self.stats.window
        if window is not None and window.measured(now):
            self.stats.measured.sent += 1
        self.idle = False
        self._send(msg)

    # -- answers --------------------------------------------------------------------------------------------
    def on_answer(self, msg: Message) -> None:
        """An answer from the bank: counted, and a reversal or repeat of it sent when its turn comes."""
        pending = self.pending.pop(self._key(msg), None)
        if pending is None:
            self.stats.unmatched += 1
            return
        self.idle = not self.pending
        code = msg.response_code or ""
        self.stats.answered[code] += 1
        window = self.stats.window
        if window is not None:
            now = self._clock()
            measured = self.stats.measured
            if window.measured(now):
                measured.answered += 1
            if window.measured(pending.sent_at):
                measured.codes[code] += 1
                measured.latencies.append(now - pending.sent_at)
        self._follow_up(pending, msg, code)
        if self.config.inflight:
            self.fill()  # closed loop: the answer's slot goes to the next request at once

    def _follow_up(self, pending: _Pending, msg: Message, code: str) -> None:
        """The reversal or repeat of an answered request, when its turn comes."""
        request = pending.request
        if pending.repeat_of is not None:
            if code != pending.repeat_of:
                self.stats.repeats_differing += 1
            return
        if code != "00":
            return
        if request.mti == "0120":
            if self.config.stip_repeat:
                self._put(self._repeat(request), repeat_of=code)
            return
        if request.mti not in KINDS:
            return
        self._approved += 1
        cfg = self.config
        if cfg.repeat_every and self._approved % cfg.repeat_every == 0:
            self._put(self._repeat(request), repeat_of=code)
        elif cfg.reversal_every and self._approved % cfg.reversal_every == 0:
            self._put(self.reversal(request, msg))

    @staticmethod
    def _repeat(request: Message) -> Message:
        """The repeat of ``request`` (function digit 1): the same message, STAN and DE 7 included."""
        repeat = request.copy()
        repeat.mti = request.mti[:3] + "1"
        return repeat

    def reversal(self, original: Message, answer: Message) -> Message:
        """The 0400 reversing ``original`` (in full, or but for ``partial_amount``): its identity in DE 90, a STAN and
        DE 7 of its own."""
        approval = answer.get(38)
        reason = REVERSAL_REASON if self.config.partial_amount is None else PARTIAL_REASON
        rev = build_reversal(original, reason, approval if isinstance(approval, str) else None,
                             time.strftime("%m%d%H%M%S", time.gmtime()))
        rev[11] = self.next_stan()
        for number in (15, 19, 48, 60, 61, 62, 63):  # the dialect's own fields travel with the reversal too
            value = original.get(number)
            if value is not None:
                rev[number] = value
        partial = self.config.partial_amount
        if partial is not None:  # the actual amount (and its settlement amount: same currency), no fees
            rev[95] = f"{partial:012d}" * 2 + "0" * 18
        return rev

    def on_rejected(self, msg: Message | None) -> None:
        """The bank sent one of our messages back in the network's reject form."""
        self.stats.rejected += 1
        if msg is not None and self.pending.pop(self._key(msg), None) is not None:
            self.idle = not self.pending

    def expire(self, *, everything: bool = False) -> None:
        """Count and forget what has waited longer than the timeout (``everything``: all that is pending)."""
        limit = float("inf") if everything else self._clock() - self.config.timeout_s
        window = self.stats.window
        for key in [k for k, p in self.pending.items() if p.sent_at < limit]:
            pending = self.pending.pop(key)
            self.stats.timeouts += 1
            if window is not None and window.measured(pending.sent_at):
                self.stats.measured.timeouts += 1
        self.idle = not self.pending
