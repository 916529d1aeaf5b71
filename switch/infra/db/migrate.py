"""Alembic driven from code, shared by the switch's database and a processor cell's.

Each database has its own scripts folder and version table (the switch: ``alembic_version``; a cell:
``cell_alembic_version``, so both may share one database). :class:`Migrations` is the caller's side
(upgrade, downgrade, revisions; no ``alembic.ini``), :func:`run_env` the body of each ``env.py``.
Failures surface as :class:`~switch.storage.errors.StorageError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, MetaData, event
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from switch.infra.db.engine import make_engine
from switch.infra.db.errors import StorageError, storage_errors

DEFAULT_VERSION_TABLE = "alembic_version"
IncludeName = Callable[[str | None, str, Any], bool]


class Migrations:
    """The migrations in ``script_dir``, recorded in ``version_table``. ``name`` (say "cell") qualifies
    error messages: "cell database upgrade to head: ..." rather than "upgrade to head: ..."."""

    def __init__(self, script_dir: Path, *, version_table: str = DEFAULT_VERSION_TABLE, name: str = "") -> None:
        self.script_dir = script_dir
        self.version_table = version_table
        self._subject = f"{name} database " if name else ""
        self._schema = f"{name} schema" if name else "schema"

    def config(self, url: str) -> Config:
        """An Alembic configuration built in code, for ``alembic.command`` calls (revision, history, ...).

        The URL travels in ``attributes`` rather than a config option, so '%' in it needs no escaping.
        """
        config = Config()
        config.set_main_option("script_location", str(self.script_dir))
        config.set_main_option("path_separator", "os")
        config.attributes["url"] = url
        return config

    def upgrade(self, url: str, revision: str = "head") -> None:
        """Migrate the database at ``url`` up to ``revision`` (creates every table on an empty database)."""
        action = f"{self._subject}upgrade to {revision}"
        with storage_errors(action), self._alembic_errors(action):
            command.upgrade(self.config(url), revision)

    def downgrade(self, url: str, revision: str) -> None:
        """Migrate the database at ``url`` down to ``revision`` ("base" drops every table)."""
        action = f"{self._subject}downgrade to {revision}"
        with storage_errors(action), self._alembic_errors(action):
            command.downgrade(self.config(url), revision)

    @staticmethod
    @contextmanager
    def _alembic_errors(action: str) -> Iterator[None]:
        """Alembic's own errors (unknown revision, multiple heads) as StorageError."""
        try:
            yield
        except CommandError as exc:
            raise StorageError(f"{action}: {exc}") from exc

    def head_revision(self) -> str | None:
        """The newest migration shipped with this version of the package."""
        return ScriptDirectory.from_config(self.config("")).get_current_head()

    def current_revision(self, engine: Engine) -> str | None:
        """The migration the database is at, or None for an empty (never migrated) database."""
        with storage_errors(f"read {self._schema} revision"), engine.connect() as connection:
            migration = MigrationContext.configure(connection, opts={"version_table": self.version_table})
            return migration.get_current_revision()


def run_env(metadata: MetaData, *, version_table: str = DEFAULT_VERSION_TABLE,
            include_name: IncludeName | None = None) -> None:
    """The body of an ``env.py``: run the migrations Alembic asked for, offline (SQL text) or online.

    Online, the URL comes from ``config.attributes["url"]``; a caller that already holds a connection may
    pass it as ``config.attributes["connection"]`` instead. SQLite migrations run in batch mode, because
    SQLite can only change most of a table by copying it (Alembic "batch migrations").
    """
    config = context.config
    options: dict[str, Any] = {"target_metadata": metadata, "version_table": version_table}
    if context.is_offline_mode():
        url = config.attributes["url"]
        context.configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"},
                          render_as_batch=url.startswith("sqlite"), **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    if include_name is not None:
        options["include_name"] = include_name
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_online(connection, options)
        return
    engine = _migration_engine(config.attributes["url"])
    try:
        with engine.connect() as connection:
            _run_online(connection, options)
    finally:
        engine.dispose()


def _migration_engine(url: str) -> Engine:
    """The engine a migration run uses. On SQLite its transactions are taken over from the driver: pysqlite
    begins a transaction only before INSERT, UPDATE and DELETE, so DDL committed statement by statement. A process
    killed during its first migration (a cell stopped while it first started) then left tables without their
    version row, and every later start failed on "table ... already exists". With BEGIN emitted by SQLAlchemy (its
    documented pysqlite recipe) and Alembic told the DDL is transactional, a migration run commits whole or not
    at all, as on PostgreSQL."""
    engine = make_engine(url, poolclass=NullPool)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _no_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            # A batch migration copies a table and drops the old one; with foreign keys enforced that would
            # cascade or fail on the rows that reference it (Alembic's batch-mode advice). The pragma cannot
            # change inside a transaction, so it is set here, before BEGIN.
            dbapi_connection.execute("PRAGMA foreign_keys=OFF")

        @event.listens_for(engine, "begin")
        def _begin(connection: Connection) -> None:
            # IMMEDIATE: the write lock up front. A deferred transaction that reads the version and then
            # writes would fail at once (SQLITE_BUSY_SNAPSHOT in WAL mode) against a concurrent upgrade rather
            # than wait its busy timeout.
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _run_online(connection: Connection, options: dict[str, Any]) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        options = {**options, "transactional_ddl": True}
    context.configure(connection=connection, render_as_batch=sqlite, compare_type=True, **options)
    with context.begin_transaction():
        context.run_migrations()
