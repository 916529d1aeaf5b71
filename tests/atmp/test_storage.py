"""The ATMP's store on SQLite and PostgreSQL: the registry, key sets, dispense outcomes with their cassette counts
(one transaction, never a double count, also when two threads race), deposits, replenishments and totals."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

import atmp.storage.cashbook as cashbook
from atmp.cash import Movement
from atmp.dispense import Action, OutcomeKind, assumed, confirmation, reversal
from atmp.errors import CashError, TerminalExistsError, TerminalNotFoundError, TerminalStateError
from atmp.interface import NoteCounts
from atmp.model import Cassette, DeviceStatus, KeySet, Owner, Terminal, TerminalStatus
from atmp.storage import AtmStore
from atmp.storage.tables import CASSETTES, DISPENSES, KEYS
from atmp.totals import Totals

T0 = datetime(2026, 12, 8, 10, 0, tzinfo=UTC)
DAY = date(2026, 12, 8)
TMK = "U" + "A1" * 16
TPK1, TAK1 = "U" + "B2" * 16, "U" + "C3" * 16
TPK2, TAK2 = "U" + "D4" * 16, "U" + "E5" * 16


def atm(terminal_id: str = "ATM00001", **changes: object) -> Terminal:
    values: dict[str, object] = dict(
        id=terminal_id, location="Main St 1", institution="412345", owner=Owner.OWN, currency="840",
        status=TerminalStatus.IN_SERVICE, low_cash_notes=95,
        cassettes=(Cassette(1, "840", 2000, 100), Cassette(2, "840", 5000, 100), Cassette(3, "840", 1000, 100),
                   Cassette(4, "840", 10000, 100)))
    values.update(changes)
    return Terminal(**values)  # type: ignore[arg-type]


@pytest.fixture
def store(db_engine: Engine) -> AtmStore:
    s = AtmStore(db_engine)
    s.add_terminal(atm(), at=T0, actor="alice")
    return s


def remaining(store: AtmStore, terminal_id: str = "ATM00001") -> list[int]:
    terminal = store.terminal(terminal_id)
    assert terminal is not None
    return [c.remaining for c in terminal.cassettes]


def key(n: int) -> str:
    return f"ATM00001:{n:06d}:1208100000"


# -- registry -------------------------------------------------------------------------------------------------


def test_a_terminal_comes_back_as_it_was_added(store: AtmStore) -> None:
    store.add_terminal(atm("ATM00002", owner=Owner.PARTNER, surcharge=250, cassettes=(Cassette(2, "978", 5000, 7),),
                           keys=KeySet(dukpt_bdk="U" + "9" * 32, pin_format="03", mac=True),
                           status=TerminalStatus.OUT_OF_SERVICE), at=T0, actor="alice")
    assert store.terminal("ATM00001") == atm()
    second = store.terminal("ATM00002")
    assert second is not None and second.owner is Owner.PARTNER and second.surcharge == 250
    assert second.keys == KeySet(dukpt_bdk="U" + "9" * 32, pin_format="03", mac=True)
    assert second.cassettes == (Cassette(2, "978", 5000, 7),)
    assert [t.id for t in store.terminals()] == ["ATM00001", "ATM00002"]
    assert store.terminal("ATM00009") is None
    assert [(e.kind, e.actor) for e in store.events("ATM00002")] == [("added", "alice")]


def test_an_id_is_registered_once(store: AtmStore) -> None:
    with pytest.raises(TerminalExistsError):
        store.add_terminal(atm(location="Elsewhere"), at=T0, actor="bob")
    terminal = store.terminal("ATM00001")
    assert terminal is not None and terminal.location == "Main St 1"


def test_status_changes_follow_the_table_and_are_audited(store: AtmStore) -> None:
    change = store.set_status("ATM00001", "close", at=T0, actor="bob")
    assert (change.before, change.after) == (TerminalStatus.IN_SERVICE, TerminalStatus.CLOSED)
    with pytest.raises(TerminalStateError):
        store.set_status("ATM00001", "enable", at=T0, actor="bob")
    assert store.terminal("ATM00001").status is TerminalStatus.CLOSED  # type: ignore[union-attr]
    store.set_status("ATM00001", "disable", at=T0, actor="carol")
    store.set_status("ATM00001", "disable", at=T0, actor="carol")  # a repeat: no change, no audit row
    statuses = [e.detail for e in store.events("ATM00001", kinds=["status"])]
    assert statuses == ["closed -> out_of_service", "in_service -> closed"]
    with pytest.raises(TerminalNotFoundError):
        store.set_status("ATM00009", "enable", at=T0, actor="bob")


def test_a_terminal_goes_in_service_only_with_a_tmk(store: AtmStore) -> None:
    store.add_terminal(atm("ATM00002", status=TerminalStatus.OUT_OF_SERVICE), at=T0, actor="alice")
    with pytest.raises(TerminalStateError, match="no TMK"):
        store.set_status("ATM00002", "enable", at=T0, actor="bob")
    store.load_tmk("ATM00002", TMK, "ABCDEF", at=T0, actor="alice", how="test")
    assert store.set_status("ATM00002", "enable", at=T0, actor="bob").after is TerminalStatus.IN_SERVICE


def test_device_status_is_kept_and_a_fault_audited(store: AtmStore) -> None:
    before = store.set_device_status("ATM00001", DeviceStatus.from_code("0200"), T0)
    assert before == DeviceStatus()
    assert store.set_device_status("ATM00001", DeviceStatus.from_code("0200"), T0) == DeviceStatus.from_code("0200")
    store.set_device_status("ATM00001", DeviceStatus.from_code("0001"), T0)
    events = store.events("ATM00001", kinds=["fault", "device"])
    assert [(e.kind, e.detail) for e in events] == [
        ("device", "dispenser fault -> ok; printer ok -> warning"), ("fault", "dispenser ok -> fault")]


def test_last_contact_never_goes_back(store: AtmStore) -> None:
    store.touch("ATM00001", T0 + timedelta(seconds=5))
    store.touch_many({"ATM00001": T0, "ATM00009": T0})
    assert store.terminal("ATM00001").last_contact == T0 + timedelta(seconds=5)  # type: ignore[union-attr]


# -- keys ------------------------------------------------------------------------------------------------------


def test_a_tmk_load_asks_for_a_key_exchange_and_drops_pending_keys(store: AtmStore) -> None:
    store.set_pending_keys("ATM00001", TPK1, TAK1, ("111111", "222222"), at=T0)
    store.load_tmk("ATM00001", TMK, "ABCDEF", at=T0, actor="alice", how="2 components: ann, bob")
    keys = store.terminal("ATM00001").keys  # type: ignore[union-attr]
    assert (keys.tmk, keys.tmk_kcv, keys.pending) == (TMK, "ABCDEF", None)
    assert store.terminal("ATM00001").rekey_due  # type: ignore[union-attr]
    assert store.events("ATM00001", kinds=["tmk"])[0].detail == "TMK loaded (2 components: ann, bob), KCV ABCDEF"


def test_a_key_exchange_is_used_only_once_confirmed_and_the_old_keys_stay_for_the_window(store: AtmStore) -> None:
    store.set_pending_keys("ATM00001", TPK1, TAK1, ("111111", "222222"), at=T0)
    assert store.confirm_keys("ATM00001", "111111", "222222", T0)
    store.set_rekey_due("ATM00001", True, at=T0, actor="alice")
    store.set_pending_keys("ATM00001", TPK2, TAK2, ("333333", "444444"), at=T0)
    keys = store.terminal("ATM00001").keys  # type: ignore[union-attr]
    assert keys.current is not None and keys.current.tpk == TPK1  # pending keys are not used yet
    assert not store.confirm_keys("ATM00001", "333333", "999999", T0 + timedelta(seconds=1))  # a wrong KCV: 30
    assert store.terminal("ATM00001").keys.current.tpk == TPK1  # type: ignore[union-attr]
    changed = T0 + timedelta(seconds=2)
    assert store.confirm_keys("ATM00001", "333333", "444444", changed)
    terminal = store.terminal("ATM00001")
    assert terminal is not None and not terminal.rekey_due
    keys = terminal.keys
    assert keys.current is not None and (keys.current.tpk, keys.current.tak) == (TPK2, TAK2)
    assert keys.previous is not None and (keys.previous.tpk, keys.previous.tak_kcv) == (TPK1, "222222")
    assert keys.replaced_at == changed and keys.pending is None
    # a repeat of the confirmation just applied (its answer lost): 00 again, and nothing moves
    assert store.confirm_keys("ATM00001", "333333", "444444", changed + timedelta(seconds=5))
    again = store.terminal("ATM00001")
    assert again is not None and again.keys.replaced_at == changed and again.keys.previous == keys.previous
    assert not store.confirm_keys("ATM00001", "111111", "222222", changed)  # the old keys are not confirmed again
    with pytest.raises(TerminalNotFoundError):
        store.set_pending_keys("ATM00009", TPK1, TAK1, ("111111", "222222"))


def test_the_keys_table_has_no_room_for_a_clear_key(db_engine: Engine, store: AtmStore) -> None:
    store.load_tmk("ATM00001", TMK, "ABCDEF", at=T0, actor="alice", how="test")
    with db_engine.connect() as connection:
        row = connection.execute(select(KEYS)).mappings().one()
    assert {v for v in row.values() if isinstance(v, str)} == {"ATM00001", TMK, "ABCDEF", "01"}


# -- dispense outcomes -----------------------------------------------------------------------------------------


def test_a_confirmation_counts_its_notes_once(store: AtmStore) -> None:
    first = store.record_outcome("ATM00001", key(1), confirmation(7000, NoteCounts((1, 1, 0, 0))),
                                 business_date=DAY, at=T0)
    assert first.action is Action.NEW and first.delta == Movement(dispensed=(1, 1, 0, 0))
    again = store.record_outcome("ATM00001", key(1), confirmation(7000, NoteCounts((1, 1, 0, 0))),
                                 business_date=DAY, at=T0 + timedelta(seconds=1))
    assert again.action is Action.DUPLICATE and again.delta.is_zero
    assert remaining(store) == [99, 99, 100, 100]
    stored = store.outcomes_for("ATM00001", [key(1), key(2)])
    assert list(stored) == [key(1)]
    assert stored[key(1)].outcome.kind is OutcomeKind.DISPENSED and stored[key(1)].business_date == DAY


def test_a_partial_after_the_confirmation_moves_the_difference_and_a_late_confirmation_nothing(
        store: AtmStore) -> None:
    store.record_outcome("ATM00001", key(1), confirmation(7000, NoteCounts((1, 1, 0, 0))), business_date=DAY, at=T0)
    partial = store.record_outcome(
        "ATM00001", key(1), reversal(7000, 2000, "22", NoteCounts((1, 0, 0, 0), (0, 1, 0, 0))),
        business_date=DAY, at=T0)
    assert partial.action is Action.REPLACED
    assert partial.delta == Movement(dispensed=(0, -1, 0, 0), rejected=(0, 1, 0, 0))
    assert partial.stored.outcome.kind is OutcomeKind.PARTIAL and partial.stored.corrections == 1
    late = store.record_outcome("ATM00001", key(1), confirmation(7000, NoteCounts((1, 1, 0, 0))),
                                business_date=DAY, at=T0)
    assert late.action is Action.IGNORED and late.stored.ignored == 1
    assert late.stored.outcome.kind is OutcomeKind.PARTIAL
    terminal = store.terminal("ATM00001")
    assert terminal is not None
    assert [(c.dispensed, c.rejected) for c in terminal.cassettes[:2]] == [(1, 0), (0, 1)]
    kinds = [e.kind for e in store.events("ATM00001")]
    assert kinds[:2] == ["dispense ignored", "dispense replaced"]


def test_a_retract_and_a_capture(store: AtmStore) -> None:
    recorded = store.record_outcome("ATM00001", key(1), reversal(4000, 0, "RT", NoteCounts((2, 0, 0, 0)),
                                                                 captured=True), business_date=DAY, at=T0)
    assert recorded.stored.outcome.kind is OutcomeKind.RETRACTED and recorded.newly_captured
    terminal = store.terminal("ATM00001")
    assert terminal is not None and terminal.cassettes[0].retracted == 2 and terminal.cassettes[0].remaining == 98
    assert [e.detail for e in store.events("ATM00001", kinds=["capture"])] == [f"{key(1)}: card captured"]
    assert store.host_totals("ATM00001", DAY) == Totals()  # the customer was not charged


def test_without_counts_the_host_mixes_and_a_missing_cassette_is_left_out(store: AtmStore) -> None:
    derived = store.record_outcome("ATM00001", key(1), confirmation(18000, None), business_date=DAY, at=T0)
    assert derived.stored.outcome.notes_derived and remaining(store) == [99, 99, 99, 99]
    store.add_terminal(atm("ATM00002", cassettes=(Cassette(1, "840", 2000, 100),)), at=T0, actor="alice")
    odd = store.record_outcome("ATM00002", "ATM00002:000001:1208100000",
                               confirmation(4000, NoteCounts((1, 0, 0, 1))), business_date=DAY, at=T0)
    assert odd.action is Action.NEW and odd.stored.outcome.movement == Movement(dispensed=(1, 0, 0, 0))
    assert odd.notes_mismatch == -2000  # one 20.00 note counted for 40.00
    details = [e.detail for e in store.events("ATM00002", kinds=["notes"])]
    assert any("cassette(s) 4" in d for d in details) and any("-2000" in d for d in details)


def test_the_hosts_assumption_is_replaced_by_the_terminals_word(store: AtmStore) -> None:
    store.record_outcome("ATM00001", key(1), assumed(6000), business_date=DAY, at=T0)
    assert remaining(store) == [100, 99, 99, 100]  # 50 + 10
    word = store.record_outcome("ATM00001", key(1), reversal(6000, 0, "68", None), business_date=DAY, at=T0)
    assert word.action is Action.REPLACED and remaining(store) == [100, 100, 100, 100]


def test_low_cash_is_reported_when_a_cassette_crosses_the_threshold(store: AtmStore) -> None:
    first = store.record_outcome("ATM00001", key(1), confirmation(12000, NoteCounts((6, 0, 0, 0))),
                                 business_date=DAY, at=T0)
    assert first.low_cash == (1,) and first.became_low == (1,)
    second = store.record_outcome("ATM00001", key(2), confirmation(2000, NoteCounts((1, 0, 0, 0))),
                                  business_date=DAY, at=T0)
    assert second.low_cash == (1,) and second.became_low == ()


def test_an_outcome_and_its_cassette_counts_are_one_transaction(store: AtmStore, db_engine: Engine,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*args: object) -> None:
        raise RuntimeError("the node died between the two writes")

    monkeypatch.setattr(cashbook, "_move", crash)
    with pytest.raises(RuntimeError):
        store.record_outcome("ATM00001", key(1), confirmation(7000, NoteCounts((1, 1, 0, 0))),
                             business_date=DAY, at=T0)
    with db_engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(DISPENSES)).scalar() == 0
        assert connection.execute(select(func.sum(CASSETTES.c.dispensed))).scalar() == 0
    monkeypatch.undo()
    assert store.record_outcome("ATM00001", key(1), confirmation(7000, NoteCounts((1, 1, 0, 0))),
                                business_date=DAY, at=T0).action is Action.NEW


def _race(*calls: Callable[[], object]) -> list[object]:
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:  # the test looks at it
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_racing_words_about_one_withdrawal_never_count_twice(store: AtmStore) -> None:
    for n in range(1, 9):
        words = [confirmation(7000, NoteCounts((1, 1, 0, 0))), confirmation(7000, NoteCounts((1, 1, 0, 0))),
                 reversal(7000, 5000, "22", NoteCounts((0, 1, 0, 0), (1, 0, 0, 0)))]
        withdrawal = key(n)
        results = _race(*(lambda w=w, k=withdrawal: store.record_outcome("ATM00001", k, w, business_date=DAY, at=T0)
                          for w in words))
        assert not [r for r in results if isinstance(r, Exception)], results
        actions = sorted(r.action.value for r in results)  # type: ignore[union-attr]
        assert actions.count("new") == 1
    terminal = store.terminal("ATM00001")
    assert terminal is not None
    stood = store.outcomes_for("ATM00001", [key(n) for n in range(1, 9)])
    # Whatever the order, the cassettes hold exactly the sum of the outcomes that stand.
    for i, cassette in enumerate(terminal.cassettes):
        movements = [s.outcome.movement for s in stood.values()]
        assert cassette.dispensed == sum(m.dispensed[i] for m in movements if m is not None)
        assert cassette.rejected == sum(m.rejected[i] for m in movements if m is not None)


def test_two_operators_adding_one_id_at_once_get_one_terminal_and_one_clear_refusal(store: AtmStore) -> None:
    for n in range(2, 6):
        terminal = atm(f"ATM0000{n}")
        results = _race(*(lambda t=terminal: store.add_terminal(t, at=T0, actor="alice") for _ in range(3)))
        assert sorted(type(r).__name__ for r in results) == ["NoneType", "TerminalExistsError",
                                                             "TerminalExistsError"], results
    assert [t.id for t in store.terminals()] == [f"ATM0000{n}" for n in range(1, 6)]


def test_an_unknown_terminal_records_nothing(store: AtmStore) -> None:
    with pytest.raises(TerminalNotFoundError):
        store.record_outcome("ATM00009", "ATM00009:000001:1208100000", confirmation(2000, None),
                             business_date=DAY, at=T0)


# -- deposits, totals, replenishment ---------------------------------------------------------------------------


def test_host_totals_and_a_terminals_report(store: AtmStore) -> None:
    store.record_outcome("ATM00001", key(1), confirmation(7000, None), business_date=DAY, at=T0)
    store.record_outcome("ATM00001", key(2), reversal(6000, 2000, "22", None), business_date=DAY, at=T0)
    store.record_outcome("ATM00001", key(3), reversal(6000, 0, "17", None), business_date=DAY, at=T0)
    store.record_outcome("ATM00001", key(4), confirmation(2000, None), business_date=DAY + timedelta(days=1), at=T0)
    assert store.record_deposit("ATM00001", key(5), 35000, business_date=DAY, at=T0)
    assert store.record_deposit("ATM00001", key(5), 30000, business_date=DAY, at=T0)  # the recycler's recount
    assert not store.record_deposit("ATM00001", key(5), 30000, business_date=DAY, at=T0)
    host = store.host_totals("ATM00001", DAY)
    assert host == Totals(withdrawals=2, withdrawal_amount=9000, deposits=1, deposit_amount=30000)

    agree = store.record_terminal_totals("ATM00001", DAY, host, at=T0)
    assert agree.comparison.agree and agree.reports == 1
    short = store.record_terminal_totals("ATM00001", DAY, Totals(3, 15000, 1, 30000), at=T0, source="operator",
                                         actor="alice")
    assert not short.comparison.agree and short.reports == 2
    assert short.comparison.difference == Totals(1, 6000, 0, 0)
    kept = store.totals_for("ATM00001", DAY)
    assert kept is not None and kept.comparison == short.comparison and kept.source == "operator"
    assert store.totals_for("ATM00001", DAY - timedelta(days=1)) is None


def test_a_replenishment_records_the_discrepancy_and_starts_the_counts_again(store: AtmStore) -> None:
    store.record_outcome("ATM00001", key(1), confirmation(7000, NoteCounts((1, 1, 0, 0))), business_date=DAY, at=T0)
    record = store.replenish("ATM00001", removed={1: 99, 2: 98, 3: 100, 4: 100},
                             loaded={1: 2000, 2: 2000, 3: 2000, 4: 1000}, at=T0, actor="carol")
    assert [c.difference for c in record.replenishment.counts] == [0, -1, 0, 0]
    assert record.replenishment.difference_by_currency() == {"840": -5000}
    assert remaining(store) == [2000, 2000, 2000, 1000]
    assert store.terminal("ATM00001").cassettes[0].dispensed == 0  # type: ignore[union-attr]
    kept = store.replenishments("ATM00001")
    assert [r.replenishment.counts for r in kept] == [record.replenishment.counts] and kept[0].actor == "carol"
    assert store.events("ATM00001", kinds=["replenish"])[0].detail == "discrepancy -5000 840 (minor units)"


def test_a_refused_replenishment_changes_nothing(store: AtmStore) -> None:
    with pytest.raises(CashError, match="no count for cassette 4"):
        store.replenish("ATM00001", removed={1: 99, 2: 98, 3: 100}, loaded={1: 1, 2: 1, 3: 1, 4: 1}, at=T0,
                        actor="carol")
    assert remaining(store) == [100, 100, 100, 100] and store.replenishments("ATM00001") == []
