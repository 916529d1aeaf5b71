"""The ATMP's store: the terminal registry and key sets here, cash and totals in :mod:`atmp.storage.cashbook`.

Synchronous SQLAlchemy Core over an :class:`~sqlalchemy.Engine`, like :mod:`switch.storage.saf`: every method is
one short transaction and safe to call from any thread (the node calls it from ``trio.to_thread``, the command
line directly). Database failures surface as :class:`~switch.infra.db.errors.StorageError`; an unknown terminal as
:class:`~atmp.errors.TerminalNotFoundError`. Every change an operator or a terminal makes to the registry writes an
audit row (``atm_events``) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.exc import IntegrityError

from atmp.errors import TerminalExistsError, TerminalNotFoundError, TerminalStateError
from atmp.model import DEVICES, DeviceStatus, Terminal, TerminalStatus, check_cryptogram, check_kcv, next_status
from atmp.records import Event, StatusChange
from atmp.storage.base import Conflict, insert_event, load_terminal, need_terminal, now
from atmp.storage.cashbook import CashBook
from atmp.storage.rows import cassette_of, cassette_row, keys_row, terminal_of, terminal_row, working_values
from atmp.storage.tables import CASSETTES, EVENTS, KEYS, TERMINALS
from switch.infra.db.errors import storage_errors

NODE = "node"  # the actor of what the node records on a terminal's word


class AtmStore(CashBook):
    """The ATMP's tables in one database."""

    # -- the registry -------------------------------------------------------------------------------------------

    def add_terminal(self, terminal: Terminal, *, at: datetime, actor: str) -> None:
        """Register ``terminal`` with its cassettes and key set; :class:`TerminalExistsError` if the id is taken."""

        def body(connection: Connection) -> None:
            if load_terminal(connection, terminal.id) is not None:
                raise TerminalExistsError(terminal.id)
            connection.execute(TERMINALS.insert().values(terminal_row(terminal, at)))
            if terminal.cassettes:
                connection.execute(CASSETTES.insert(), [cassette_row(terminal.id, c) for c in terminal.cassettes])
            connection.execute(KEYS.insert().values(keys_row(terminal.id, terminal.keys, at)))
            cash = ", ".join(f"{c.position}: {c.loaded} notes of {c.denomination} (minor units)"
                             for c in terminal.cassettes) or "none"
            insert_event(connection, terminal.id, "added", f"status {terminal.status.value}; cassettes {cash}", at,
                         actor)
            if terminal.keys.tmk_kcv:
                insert_event(connection, terminal.id, "tmk", f"TMK registered with the terminal, KCV "
                             f"{terminal.keys.tmk_kcv}", at, actor)

        with storage_errors("add terminal"):
            try:
                with self._engine.begin() as connection:
                    body(connection)
            except IntegrityError:
                if self.terminal(terminal.id) is None:
                    raise
                raise TerminalExistsError(terminal.id) from None  # added by another between our check and insert

    def terminals(self) -> list[Terminal]:
        """Every terminal, by id (the engine's terminal cache is built from this)."""

        def body(connection: Connection) -> list[Terminal]:
            cassettes: dict[str, list[Any]] = {}
            for row in connection.execute(select(CASSETTES).order_by(CASSETTES.c.terminal_id, CASSETTES.c.position)
                                          ).mappings():
                cassettes.setdefault(row["terminal_id"], []).append(cassette_of(row))
            keys = {row["terminal_id"]: row for row in connection.execute(select(KEYS)).mappings()}
            return [terminal_of(row, cassettes.get(row["id"], []), keys.get(row["id"]))
                    for row in connection.execute(select(TERMINALS).order_by(TERMINALS.c.id)).mappings()]

        return self._read("list terminals", body)

    def terminal(self, terminal_id: str) -> Terminal | None:
        return self._read("read terminal", lambda connection: load_terminal(connection, terminal_id))

    def set_status(self, terminal_id: str, action: str, *, at: datetime, actor: str) -> StatusChange:
        """Apply an operator's status action (enable, disable, supervisor, close: :data:`atmp.model.
        STATUS_TRANSITIONS`); :class:`~atmp.errors.TerminalStateError` when the table forbids it."""

        def body(connection: Connection) -> StatusChange:
            terminal = need_terminal(connection, terminal_id)
            after = next_status(terminal.status, action)
            if after is TerminalStatus.IN_SERVICE and terminal.keys.tmk is None:
                raise TerminalStateError(f"{terminal_id} has no TMK: a terminal goes in service once its master "
                                         f"key is loaded (bulkhead atm load-tmk {terminal_id})")
            if after is not terminal.status:
                self._guarded_terminal_update(connection, terminal_id, {"status": terminal.status.value},
                                              {"status": after.value, "updated_at": at})
                insert_event(connection, terminal_id, "status", f"{terminal.status.value} -> {after.value}", at, actor)
            return StatusChange(terminal_id, terminal.status, after)

        return self._transact("set terminal status", body)

    def set_device_status(self, terminal_id: str, status: DeviceStatus, at: datetime) -> DeviceStatus:
        """Record the device status a terminal reported (0800 code 281); returns the one before. A change is
        audited (a fault or a warning that appears or clears)."""

        def body(connection: Connection) -> DeviceStatus:
            terminal = need_terminal(connection, terminal_id)
            if terminal.device != status:
                self._guarded_terminal_update(connection, terminal_id, {"device_status": terminal.device.code},
                                              {"device_status": status.code, "updated_at": at})
                kind = "fault" if status.faults else "device"
                insert_event(connection, terminal_id, kind, _device_change(terminal.device, status), at, NODE)
            return terminal.device

        return self._transact("set device status", body)

    def touch(self, terminal_id: str, at: datetime) -> None:
        """The terminal was heard from at ``at`` (never moves its last contact backwards)."""
        self.touch_many({terminal_id: at})

    def touch_many(self, contacts: Mapping[str, datetime]) -> None:
        """:meth:`touch` for many terminals in one transaction (the node batches them); unknown ids are skipped."""
        if not contacts:
            return
        statement = (TERMINALS.update().where(TERMINALS.c.id == bindparam("tid"))
                     .where(TERMINALS.c.last_contact.is_(None) | (TERMINALS.c.last_contact < bindparam("at")))
                     .values(last_contact=bindparam("at")))
        with storage_errors("touch terminals"), self._engine.begin() as connection:
            connection.execute(statement, [{"tid": tid, "at": at} for tid, at in contacts.items()])

    # -- keys ---------------------------------------------------------------------------------------------------

    def load_tmk(self, terminal_id: str, tmk: str, kcv: str, *, at: datetime, actor: str, how: str) -> None:
        """Install a new terminal master key (an LMK cryptogram and its check value). Pending keys, sent under the
        old TMK, are dropped, and a key exchange becomes due so the terminal gets working keys under the new one.
        ``how`` says how it was loaded (components and their custodians, or imported under a ZMK) for the audit."""
        check_cryptogram("tmk", tmk)
        check_kcv("tmk kcv", kcv)

        def body(connection: Connection) -> None:
            terminal = need_terminal(connection, terminal_id)
            connection.execute(KEYS.update().where(KEYS.c.terminal_id == terminal_id).values(
                tmk=tmk, tmk_kcv=kcv, pending_at=None, updated_at=at, **working_values("pending_", None)))
            connection.execute(TERMINALS.update().where(TERMINALS.c.id == terminal_id).values(
                rekey_due=True, updated_at=at))
            old = terminal.keys.tmk_kcv
            insert_event(connection, terminal_id, "tmk", f"TMK loaded ({how}), KCV {kcv}"
                         + (f", replacing KCV {old}" if old else ""), at, actor)

        self._transact("load TMK", body)

    def set_pending_keys(self, terminal_id: str, tpk: str, tak: str, kcvs: tuple[str, str],
                         at: datetime | None = None) -> None:
        """Keep the TPK and TAK (LMK cryptograms) a key exchange (161) just sent, until the terminal confirms them
        (:meth:`confirm_keys`); requests go on being read under the current keys. A newer 161 replaces them."""
        when = at or now()
        values = {"pending_tpk": check_cryptogram("tpk", tpk), "pending_tpk_kcv": check_kcv("tpk kcv", kcvs[0]),
                  "pending_tak": check_cryptogram("tak", tak), "pending_tak_kcv": check_kcv("tak kcv", kcvs[1]),
                  "pending_at": when, "updated_at": when}

        def body(connection: Connection) -> None:
            result = connection.execute(KEYS.update().where(KEYS.c.terminal_id == terminal_id).values(values))
            if result.rowcount == 0:
                raise TerminalNotFoundError(terminal_id)
            insert_event(connection, terminal_id, "keys", f"key exchange: TPK KCV {kcvs[0]}, TAK KCV {kcvs[1]} "
                         "pending confirmation", when, NODE)

        self._transact("set pending keys", body)

    def confirm_keys(self, terminal_id: str, tpk_kcv: str, tak_kcv: str, at: datetime) -> bool:
        """A key confirmation (162): when both check values match the pending keys, they become current, the
        current ones previous (replaced at ``at``) and the key exchange is no longer due; True. Otherwise nothing
        changes (the terminal is answered 30); False. One guarded statement, so two confirmations cannot both
        move the keys."""
        promote = KEYS.update().where(
            KEYS.c.terminal_id == terminal_id, KEYS.c.pending_tpk.is_not(None),
            KEYS.c.pending_tpk_kcv == tpk_kcv, KEYS.c.pending_tak_kcv == tak_kcv,
        ).values(
            # The right-hand sides read the row as it was before this statement (SQL), so this shifts all three.
            previous_tpk=KEYS.c.tpk, previous_tpk_kcv=KEYS.c.tpk_kcv, previous_tak=KEYS.c.tak,
            previous_tak_kcv=KEYS.c.tak_kcv, tpk=KEYS.c.pending_tpk, tpk_kcv=KEYS.c.pending_tpk_kcv,
            tak=KEYS.c.pending_tak, tak_kcv=KEYS.c.pending_tak_kcv, replaced_at=at, pending_at=None, updated_at=at,
            **working_values("pending_", None),
        )

        def body(connection: Connection) -> bool:
            need_terminal(connection, terminal_id)
            if connection.execute(promote).rowcount == 0:
                # A repeat of a confirmation already applied (the terminal did not get our answer): its keys are
                # the current ones and nothing is pending. Answered as the first one was, nothing changes.
                current = connection.execute(select(KEYS.c.tpk_kcv, KEYS.c.tak_kcv, KEYS.c.pending_tpk).where(
                    KEYS.c.terminal_id == terminal_id)).first()
                if current is not None and current[2] is None and (current[0], current[1]) == (tpk_kcv, tak_kcv):
                    return True
                insert_event(connection, terminal_id, "keys", f"key confirmation refused: TPK KCV {tpk_kcv}, TAK KCV "
                             f"{tak_kcv} match no pending keys", at, NODE)
                return False
            connection.execute(TERMINALS.update().where(TERMINALS.c.id == terminal_id).values(
                rekey_due=False, updated_at=at))
            insert_event(connection, terminal_id, "keys", f"keys confirmed: TPK KCV {tpk_kcv}, TAK KCV {tak_kcv} "
                         "current", at, NODE)
            return True

        return self._transact("confirm keys", body)

    def set_rekey_due(self, terminal_id: str, due: bool, *, at: datetime | None = None, actor: str = NODE) -> None:
        """Ask for (or stop asking for) a key exchange: the next 0810 to the terminal carries DE 48 RK."""
        when = at or now()

        def body(connection: Connection) -> None:
            result = connection.execute(TERMINALS.update().where(TERMINALS.c.id == terminal_id).values(
                rekey_due=due, updated_at=when))
            if result.rowcount == 0:
                raise TerminalNotFoundError(terminal_id)
            insert_event(connection, terminal_id, "rekey", "key exchange requested" if due else "key exchange "
                         "request withdrawn", when, actor)

        self._transact("set rekey due", body)

    # -- the audit trail ----------------------------------------------------------------------------------------

    def record_event(self, terminal_id: str, kind: str, detail: str, *, at: datetime, actor: str = NODE) -> int:
        """Write an audit row (a capture, a refused message, an alert); returns its id. ``detail`` must hold no card
        number, PIN block or key: masked values and check values only."""
        with storage_errors("record event"), self._engine.begin() as connection:
            return insert_event(connection, terminal_id, kind, detail, at, actor)

    def events(self, terminal_id: str, limit: int = 20, kinds: Collection[str] = ()) -> list[Event]:
        """The terminal's latest audit rows, newest first."""
        query = select(EVENTS).where(EVENTS.c.terminal_id == terminal_id)
        if kinds:
            query = query.where(EVENTS.c.kind.in_(list(kinds)))
        query = query.order_by(EVENTS.c.id.desc()).limit(limit)
        return self._read("list events", lambda connection: [
            Event(**row) for row in connection.execute(query).mappings()])

    @staticmethod
    def _guarded_terminal_update(connection: Connection, terminal_id: str, expected: dict[str, Any],
                                 values: dict[str, Any]) -> None:
        """Update the terminal only if ``expected`` still holds (else another writer got there first: retry)."""
        statement = TERMINALS.update().where(TERMINALS.c.id == terminal_id)
        for column, value in expected.items():
            statement = statement.where(TERMINALS.c[column] == value)
        if connection.execute(statement.values(values)).rowcount == 0:
            raise Conflict


def _device_change(before: DeviceStatus, after: DeviceStatus) -> str:
    changes = [f"{name.replace('_', ' ')} {before.state(name).value} -> {after.state(name).value}"
               for name in DEVICES if before.state(name) is not after.state(name)]
    return "; ".join(changes)
