"""Test kit for the cell engine: a small bank built directly from rows, a software HSM with the Thales test LMK,
and request builders. Test data only (test PANs, test LMK, clear test keys)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from hsm import emv, pinblock
from hsm.cipher import force_odd_parity, tdes_encrypt
from hsm.inprocess import SoftwareBackend
from hsm.keys import ClearKey, KeyCodec
from hsm.lmk import Lmk
from hsm.software import SoftwareHsm
from processors import emvtlv, security
from processors.catalog import Bank, Catalog, Fee, KeySet, Limit, Product
from processors.engine import CellEngine, Decision
from processors.ledger import check_postings
from processors.model import (
    Account,
    Card,
    CardStatus,
    CreditLine,
    Customer,
    Effects,
    Entry,
    Posting,
    ProductKind,
)
from processors.state import CellState
from switch.model.message import Message

T = TypeVar("T")

LMK = Lmk.thales_test()
SOFT_HSM = SoftwareHsm(LMK)
CODEC = KeyCodec(LMK)
ZPK_CLEAR = force_odd_parity(bytes.fromhex("89ABCDEF01234567F0E1D2C3B4A59687"))
MK_AC_CLEAR = force_odd_parity(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"))
KEYS = KeySet(
    name="test",
    zpk=CODEC.to_lmk("001", ClearKey(ZPK_CLEAR), "U"),
    pvk=SOFT_HSM.generate_key("002", "U").under_lmk,
    cvk=SOFT_HSM.generate_key("402", "U").under_lmk,
    imk_ac=CODEC.to_lmk("109", ClearKey(MK_AC_CLEAR), "U"),
)
OWN_ACQUIRER = "00000000001"
FOREIGN_ACQUIRER = "00000000777"
PIN = "1234"

BANK = Bank(country="840", own_acquirers=frozenset({OWN_ACQUIRER}), hold_days=7, pin_tries=3)
DEBIT = Product(
    code="debit", kind=ProductKind.DEBIT, bins=("476173",), currency="USD", keys="test", cvn=18,
    limits={
        "atm": Limit(per_txn=50_000, daily_amount=80_000, daily_count=3),
        "pos": Limit(per_txn=200_000, daily_amount=300_000, daily_count=20),
        "cross_border": Limit(per_txn=30_000, daily_amount=40_000),
    },
    fees={
        "withdrawal.atm.foreign": Fee(fixed=250),
        "withdrawal.atm.cross_border": Fee(fixed=300, rate_bp=100, min=300, max=1500),
    },
)
RESTRICTED = Product(code="gift", kind=ProductKind.DEBIT, bins=("476174",), currency="USD", keys="test",
                     allowed=frozenset({"purchase"}))
CREDIT = Product(
    code="credit", kind=ProductKind.CREDIT, bins=("520000",), currency="USD", keys="test", cvn=10,
    credit_limit=100_000, cash_limit=20_000,
    allowed=frozenset({"purchase", "withdrawal", "refund", "balance"}),
    pricing={"cash_advance.fee": {"fixed": 100}},
)
CATALOG = Catalog(BANK, {p.code: p for p in (DEBIT, RESTRICTED, CREDIT)}, {"test": KEYS})

DEBIT_PAN = "4761730100000011"
SAVINGS_ONLY_PAN = "4761730100000029"
GIFT_PAN = "4761740100000010"
CREDIT_PAN_1 = "5200000100000017"
CREDIT_PAN_2 = "5200000100000025"
OTHER_PAN = "4761730100000037"  # another customer's card


def pan_hash(pan: str) -> str:
    return hmac.new(b"test-data-key", pan.encode(), hashlib.sha256).hexdigest()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (no HSM call) to completion without an event loop."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise AssertionError("the coroutine suspended: it needed the HSM")


def _card(card_id: str, pan: str, customer: str, product: str, account: str, **kw: Any) -> Card:
    return Card(id=card_id, pan_hash=pan_hash(pan), last4=pan[-4:], bin=pan[:6], pan_sealed=b"", customer_id=customer,
                product=product, account_id=account, status=kw.pop("status", CardStatus.ACTIVE),
                expiry=kw.pop("expiry", "2912"), **kw)


@dataclass
class World:
    """A cell (number 1) with two customers, their accounts and cards."""

    state: CellState
    clock: Clock
    engine: CellEngine
    postings: list[Posting] = field(default_factory=list)

    def handle(self, request: Message) -> Decision:
        decision = drive(self.engine.handle(request))
        self.record(decision.effects)
        return decision

    async def ahandle(self, request: Message) -> Decision:
        """As the host does it: effects recorded as soon as the decision returns, then ``finish`` (ARPC)."""
        decision = await self.engine.handle(request)
        self.record(decision.effects)
        if decision.finish is not None:
            await decision.finish()
        return decision

    def record(self, effects: Effects) -> None:
        for kind, row in effects.rows:
            if kind is Posting:
                self.postings.append(Posting(**row))
            elif kind is Entry:
                posting = next(p for p in reversed(self.postings) if p.id == row["posting_id"])
                posting.entries.append(Entry(**row))
        assert check_postings(self.postings) == []

    def account(self, account_id: str) -> Account:
        return self.state.accounts[account_id]

    def card(self, pan: str) -> Card:
        return self.state.cards_by_hash[pan_hash(pan)]


def make_world(*, hsm: bool = False, now: datetime | None = None, seed: bool = True,
               catalog: Catalog = CATALOG) -> World:
    state = CellState(1)
    c1 = Customer("0100000001", 1, "Ada", "CIF-1")
    c2 = Customer("0100000002", 1, "Bob", "CIF-2")
    checking = Account("0100000011", c1.id, "checking", "USD", "debit", ledger_balance=100_000 if seed else 0)
    savings = Account("0100000012", c1.id, "savings", "USD", "debit", ledger_balance=50_000 if seed else 0)
    other = Account("0100000021", c2.id, "checking", "USD", "debit", ledger_balance=10_000 if seed else 0)
    line = CreditLine("0100000031", c1.id, "USD", limit=100_000, cash_limit=20_000)
    credit_a = Account("0100000032", c1.id, "credit", "USD", "credit", credit_line_id=line.id)
    credit_b = Account("0100000033", c1.id, "credit", "USD", "credit", credit_line_id=line.id)
    rows = [c1, c2, checking, savings, other, line, credit_a, credit_b,
            _card("K0100000001", DEBIT_PAN, c1.id, "debit", checking.id,
                  accounts={"20": checking.id, "10": savings.id}),
            _card("K0100000002", OTHER_PAN, c2.id, "debit", other.id),
            _card("K0100000003", GIFT_PAN, c1.id, "gift", checking.id),
            _card("K0100000004", CREDIT_PAN_1, c1.id, "credit", credit_a.id, accounts={"30": credit_a.id}),
            _card("K0100000005", CREDIT_PAN_2, c1.id, "credit", credit_b.id, accounts={"30": credit_b.id}),
            _card("K0100000006", SAVINGS_ONLY_PAN, c1.id, "debit", savings.id)]
    for row in rows:
        state.put(row)
    clock = Clock(now or datetime(2025, 6, 15, 12, 0, tzinfo=UTC))
    backend = SoftwareBackend(SOFT_HSM) if hsm else None
    engine = CellEngine(state, catalog, hsm=backend, pan_hash=pan_hash, clock=clock)
    return World(state, clock, engine)


_stan = 0


def request(mti: str, pc: str, amount: int | None, pan: str = DEBIT_PAN, **extra: str | bytes) -> Message:
    """A request as the generic scheme delivers it; ``extra`` as ``f<n>=value`` (``f32=...``)."""
    global _stan
    _stan += 1
    fields: dict[int, str | bytes] = {
        2: pan, 3: pc, 7: "0615120000", 11: f"{_stan % 1_000_000:06d}", 12: "120000", 13: "0615", 18: "5411",
        22: "901", 25: "00", 32: OWN_ACQUIRER, 37: f"RRN{_stan:09d}", 41: "TERM0001", 49: "840",
    }
    if amount is not None:
        fields[4] = f"{amount:012d}"
    for key, value in extra.items():
        number = int(key[1:])
        if value == "":
            fields.pop(number, None)
        else:
            fields[number] = value
    return Message(mti, fields)


def atm(pc: str, amount: int | None, pan: str = DEBIT_PAN, **extra: str | bytes) -> Message:
    return request("0200", pc, amount, pan, f18="6011", **extra)


def reversal_of(original: Message, mti: str = "0400", replacement: int | None = None, **extra: str | bytes) -> Message:
    """A reversal naming ``original`` in DE 90 (MTI, STAN, DE 7, acquirer), with DE 95 for a partial one."""
    fields = dict(original.fields)
    global _stan
    _stan += 1
    fields[11] = f"{_stan % 1_000_000:06d}"
    fields[90] = de90(original)
    if replacement is not None:
        fields[95] = f"{replacement:012d}" + "0" * 30
    for key, value in extra.items():
        fields[int(key[1:])] = value
    return Message(mti, fields)


def de90(original: Message) -> str:
    """DE 90 naming ``original``: MTI, STAN, DE 7, acquirer (11), forwarding institution (11, zeros)."""
    return f"{original.mti}{original[11]!s}{original[7]!s}{str(original[32]).zfill(11)}{'0' * 11}"


def de54(response: Message) -> list[tuple[str, str, str, int]]:
    from processors.money import parse_additional_amounts

    return parse_additional_amounts(str(response[54]))


# -- card-side cryptography (test only: clear test keys) ----------------------------------------------------

def pin_block(pin: str, pan: str) -> bytes:
    """ISO 9564 format 0 PIN block under the test ZPK, as the switch would send it in DE 52."""
    return tdes_encrypt(ZPK_CLEAR, pinblock.encode(0, pin, pan[-13:-1]))


def set_pin(world: World, pan: str, pin: str = PIN) -> None:
    """PVV from the HSM (FW), as card.set_pin does it."""
    card = world.card(pan)
    card.pvv = SOFT_HSM.generate_pvv("001", KEYS.zpk, KEYS.pvk, pin_block(pin, pan).hex().upper(), "01", pan,
                                     card.pvki)


def track2(pan: str, card: Card, *, chip: bool = False, cvv: str | None = None) -> str:
    """Track 2 in Bulkhead's layout: PAN=YYMM SSS PVKI PVV CVV (iCVV, service code 999, on chip)."""
    code = "999" if chip else card.service_code
    value = cvv if cvv is not None else SOFT_HSM.generate_cvv(KEYS.cvk, pan, card.expiry, code)
    return f"{pan}={card.expiry}{card.service_code}{card.pvki}{card.pvv or '0000'}{value}"


def icc_data(pan: str, psn: str, cvn: int, amount: int, *, atc: str = "0012", tamper: bool = False) -> bytes:
    """DE 55 with an ARQC computed by the card's side (EMV option A ICC key from the test MK-AC)."""
    iad = bytes.fromhex("06010A03A00000") if cvn == 10 else bytes.fromhex("1F4A1200000000000000000000000000")
    objects = {
        "9F02": bytes.fromhex(f"{amount:012d}"),
        "9F03": bytes(6), "9F1A": bytes.fromhex("0840"), "95": bytes(5), "5F2A": bytes.fromhex("0840"),
        "9A": bytes.fromhex("250615"), "9C": b"\x00", "9F37": bytes.fromhex("A1B2C3D4"), "82": bytes.fromhex("3900"),
        "9F36": bytes.fromhex(atc), "9F10": iad,
    }
    data = security.arqc_data(cvn, objects)
    icc = emv.icc_master_key(MK_AC_CLEAR, pan, psn)
    key = emv.ac_session_key(cvn, icc, atc, "A1B2C3D4")
    arqc = emv.application_cryptogram(key, data, emv.profile(cvn).padding)
    if tamper:
        objects["9F02"] = bytes.fromhex(f"{amount + 1:012d}")
    return emvtlv.build([("9F26", arqc), *objects.items()])
