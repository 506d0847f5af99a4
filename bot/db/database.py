"""The bot's database: one SQLAlchemy async engine, SQLite (aiosqlite) or PostgreSQL (asyncpg).

``Database.connect(url)`` builds the engine, checks that the database can be reached and applies the
schema migrations (``bot.db.migrations``). Stores write in ``transaction()`` (or join their caller's
with ``joining(conn)``) and read with ``fetch_one``/``fetch_all``/``fetch_value``, all with SQLAlchemy
Core statements.

SQLite has one writer: its write transactions are ``BEGIN IMMEDIATE`` and take a lock of this
process, so this process's writers queue up instead of failing with "database is locked"; reads run
beside them (WAL). Other processes on the same file wait up to the busy timeout. A SQLite file's reads
outside a transaction run on the event loop's own thread (``_SqliteReads``). PostgreSQL runs real
concurrent transactions (READ COMMITTED): a store that reads before it writes either does it in one
statement or takes a lock (``lock()``, ``SELECT … FOR UPDATE``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import sqlite3
import zlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Self, TypeVar

from sqlalchemy import Integer, Table, bindparam, create_engine, event, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, CursorResult, Engine, Row
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool
from sqlalchemy.sql import Executable

from bot.db import migrations
from bot.db.migrations import SchemaTooNew
from bot.db.types import from_db_time, to_db_time, utc_now
from bot.db.urls import MEMORY, database_url, display

__all__ = [
    "MEMORY",
    "CannotOpenDatabase",
    "Database",
    "SchemaTooNew",
    "from_db_time",
    "to_db_time",
    "utc_now",
]

log = logging.getLogger(__name__)

#: SQLite waits this long (ms) for another process's write to finish before "database is locked".
BUSY_TIMEOUT_MS = 5000
#: close() waits this long (s) for the reads and transactions still running to end.
CLOSE_WAIT = 5.0

Statement = Executable | str


class CannotOpenDatabase(Exception):
    """The database cannot be reached or opened. ``str()`` names it (password hidden) and says why."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: cannot open the database ({reason})")
        self.name = name
        self.reason = reason


class _Transaction:
    """Marks a running write transaction of ``database``; ``active`` is cleared when it ends."""

    __slots__ = ("active", "conn", "database")

    def __init__(self, database: Database, conn: AsyncConnection) -> None:
        self.database = database
        self.conn = conn
        self.active = True


# The write transaction the current task (or a task it started meanwhile) is inside. A context
# variable rather than the current task: asyncio.wait_for and gather run code in new tasks. Tasks
# started inside a transaction keep a copy of the context after it ends; ``active`` going False makes
# that copy stale, so such a task opens its own transactions like any other.
_current_transaction: contextvars.ContextVar[_Transaction | None] = contextvars.ContextVar(
    "current_transaction", default=None
)


class Database:
    """One engine shared by the whole process (see the module docstring)."""

    def __init__(self, engine: AsyncEngine, url: URL) -> None:
        self.engine = engine
        self.url = url
        #: "sqlite" or "postgresql".
        self.dialect: str = engine.dialect.name
        #: The database for people: a SQLite file's path, or the URL without its password.
        self.name = display(url)
        self.is_sqlite = self.dialect == "sqlite"
        self._memory = self.is_sqlite and (url.database or MEMORY) == MEMORY
        # SQLite: one writer at a time (and, in memory, one connection for everything).
        self._lock = asyncio.Lock()
        self._closed = False
        # Connections in use; close() waits for them to be given back.
        self._in_use = 0
        self._idle = asyncio.Event()
        self._idle.set()
        # SQLite file: the reads outside transactions (see _SqliteReads).
        self._reads = _SqliteReads(url) if self.is_sqlite and not self._memory else None

    # ------------------------------------------------------------------ opening and closing

    @classmethod
    async def connect(cls, target: str | Path | URL, *, revision: str = "head") -> Self:
        """Open the database at ``target`` (a URL, or a SQLite file path) and migrate it.

        A SQLite file and its folder are created if missing. Raises CannotOpenDatabase if it cannot
        be reached, SchemaTooNew if it comes from a newer version of the code (and then leaves it
        untouched). ``revision`` other than the newest is for tests that build older schemas.
        """
        url = database_url(target)
        database = cls(_create_engine(url), url)
        try:
            await database._migrate(revision)
        except BaseException:
            await database.close()
            raise
        return database

    @classmethod
    @asynccontextmanager
    async def open(cls, target: str | Path | URL, *, revision: str = "head") -> AsyncIterator[Self]:
        database = await cls.connect(target, revision=revision)
        try:
            yield database
        finally:
            await database.close()

    async def close(self) -> None:
        """Refuse new work, let the reads and transactions still running end (up to CLOSE_WAIT
        seconds), then close every connection."""
        if self._closed:
            return
        self._closed = True
        if self._reads is not None:
            self._reads.close()
        try:
            await asyncio.wait_for(self._idle.wait(), CLOSE_WAIT)
        except TimeoutError:
            log.warning("Database %s closed with %d connection(s) still in use", self.name, self._in_use)
        async with self._writer():
            await self.engine.dispose()

    async def _migrate(self, revision: str) -> None:
        async with self._writer():
            conn = self.engine.connect()
            unreachable: tuple[type[BaseException], ...] = (OSError, SQLAlchemyError, *_driver_errors())
            try:
                await conn.start()
            except unreachable as exc:
                raise CannotOpenDatabase(self.name, _reason(exc)) from exc
            try:
                if self.is_sqlite:
                    await self._check_wal(conn)
                    await conn.rollback()  # ends the read's transaction: the migration's is IMMEDIATE
                    await conn.execution_options(sqlite_begin="IMMEDIATE")
                async with conn.begin():
                    if not self.is_sqlite:
                        # Processes starting together: one migrates, the others wait, then see it done.
                        await _advisory_lock(conn, "migrations", "schema")
                    result = await conn.run_sync(_upgrade, self.name, revision)
            finally:
                await conn.close()
        if result.legacy_version is not None:
            log.info(
                "Database %s: schema version %d (from before Alembic) recorded as revision %s",
                self.name,
                result.legacy_version,
                migrations.LEGACY_REVISIONS[result.legacy_version],
            )
        if result.before != result.after:
            log.info("Database %s migrated from %s to revision %s", self.name, result.before, result.after)

    async def _check_wal(self, conn: AsyncConnection) -> None:
        mode = str((await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()).lower()
        if mode != "wal" and not self._memory:
            # E.g. a network filesystem; the bot still works, with more lock contention.
            log.warning("SQLite could not switch %s to WAL mode (got %s)", self.name, mode)

    async def schema_version(self) -> str | None:
        """The Alembic revision of the database (None before the first migration)."""
        value = await self.fetch_value("SELECT version_num FROM alembic_version")
        return None if value is None else str(value)

    # ------------------------------------------------------------------ transactions

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed when the body ends, rolled back if it raises.

        Keep it short and never await the network inside it. Not re-entrant: nesting raises (pass
        the connection it yields to the stores instead, see ``joining``).
        """
        self._check_open()
        if self._inside_transaction() is not None:
            raise RuntimeError("transaction() is not re-entrant; use the connection it yielded")
        async with self._writer():
            self._check_open()
            async with self._checked_out() as conn:
                if self.is_sqlite:
                    await conn.execution_options(sqlite_begin="IMMEDIATE")
                marker = _Transaction(self, conn)
                reset_token = _current_transaction.set(marker)
                try:
                    async with conn.begin():
                        yield conn
                finally:
                    marker.active = False
                    _current_transaction.reset(reset_token)

    @asynccontextmanager
    async def joining(self, conn: AsyncConnection | None) -> AsyncIterator[AsyncConnection]:
        """``conn`` (the caller's running transaction) when given, else a new :meth:`transaction`.

        Lets a store's write join a transaction its caller opened, so that two changes (e.g. a link
        record and the audit event about it) are committed together or not at all.
        """
        if conn is not None:
            yield conn
            return
        async with self.transaction() as own:
            yield own

    async def lock(self, conn: AsyncConnection, scope: str, key: str | int) -> None:
        """Hold a lock on ``(scope, key)`` until ``conn``'s transaction ends, so that transactions that
        read and then write the same thing (in any process) go one after the other.

        PostgreSQL: an advisory transaction lock. SQLite: nothing to do, a write transaction already
        excludes every other writer.
        """
        if not self.is_sqlite:
            await _advisory_lock(conn, scope, str(key))

    def insert(self, table: Table) -> sqlite.Insert | postgresql.Insert:
        """``INSERT`` with this database's ``on_conflict_do_update`` / ``on_conflict_do_nothing``."""
        return postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)

    # ------------------------------------------------------------------ reads

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """A connection to read with: the current task's own transaction's, else one that sees only
        committed rows (each statement on its own). ``fetch_*`` are cheaper for a single statement."""
        self._check_open()
        marker = self._inside_transaction()
        if marker is not None:
            yield marker.conn
            return
        async with self._reader(), self._checked_out() as conn:
            if self.is_sqlite:
                await conn.execution_options(sqlite_begin="NONE")
            else:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction that sees the database as it was at its first read (e.g. to copy it)."""
        self._check_open()
        async with self._reader(), self._checked_out() as conn:
            if not self.is_sqlite:
                await conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            async with conn.begin():
                yield conn

    async def fetch_one(
        self, statement: Statement, params: Mapping[str, Any] | None = None
    ) -> Row[Any] | None:
        return await self._read(statement, params, CursorResult.first)

    async def fetch_all(
        self, statement: Statement, params: Mapping[str, Any] | None = None
    ) -> list[Row[Any]]:
        return await self._read(statement, params, _all)

    async def fetch_value(self, statement: Statement, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row, or None."""
        return await self._read(statement, params, CursorResult.scalar)

    async def _read(
        self,
        statement: Statement,
        params: Mapping[str, Any] | None,
        take: Callable[[CursorResult[Any]], _T],
    ) -> _T:
        if self._reads is not None and self._inside_transaction() is None:
            # Still a point where other tasks get their turn, as every read through a thread was.
            await asyncio.sleep(0)
            self._check_open()
            with contextlib.suppress(_SqliteReads.Busy):
                return self._reads.run(_executable(statement), params, take)
        async with self.connection() as conn:
            return take(await conn.execute(_executable(statement), params))

    async def count(self, table: Table) -> int:
        return int(await self.fetch_value(select(func.count()).select_from(table)) or 0)

    # ------------------------------------------------------------------ internals

    @asynccontextmanager
    async def _checked_out(self) -> AsyncIterator[AsyncConnection]:
        """A connection of the pool, counted until it is given back (see close())."""
        self._in_use += 1
        self._idle.clear()
        try:
            async with self.engine.connect() as conn:
                yield conn
        finally:
            self._give_back()

    def _give_back(self) -> None:
        self._in_use -= 1
        if not self._in_use:
            self._idle.set()

    def _writer(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return self._lock if self.is_sqlite else contextlib.nullcontext()

    def _reader(self) -> contextlib.AbstractAsyncContextManager[Any]:
        # An in-memory database is one connection: a read must not run inside another task's write.
        return self._lock if self._memory else contextlib.nullcontext()

    def _inside_transaction(self) -> _Transaction | None:
        """This database's write transaction that the current task is in (or a task it started that
        runs while it is still open: asyncio.wait_for, gather)."""
        current = _current_transaction.get()
        if current is not None and current.active and current.database is self:
            return current
        return None

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"database {self.name} is closed")


_T = TypeVar("_T")


def _all(result: CursorResult[Any]) -> list[Row[Any]]:
    return list(result.all())


class _SqliteReads:
    """A SQLite file's reads outside transactions, on the event loop's thread: one kept connection of
    the synchronous driver. A point read there takes microseconds, where each trip to aiosqlite's
    thread and back (a read makes four: cursor, execute, fetch, close) costs about 0.1 ms of CPU.
    No BEGIN: each statement sees what is committed when it runs (WAL), beside the writer, as in
    every other process. It never waits for a lock (busy_timeout 0, so the loop is never held up):
    a read that finds the database busy (a crashed writer's recovery; a file where WAL is
    unavailable) raises ``Busy``, and goes through aiosqlite, which waits up to the busy timeout."""

    class Busy(Exception):
        pass

    def __init__(self, url: URL) -> None:
        # timeout=0: not even connecting waits (the driver's default is 5 s).
        self._engine: Engine = create_engine(
            url.set(drivername="sqlite+pysqlite"), poolclass=StaticPool, connect_args={"timeout": 0}
        )
        event.listen(self._engine, "connect", _sqlite_connected)
        event.listen(self._engine, "connect", _no_busy_wait)  # after it: its busy_timeout is the writers'
        event.listen(self._engine, "begin", _sqlite_begin)
        self._conn: Connection | None = None

    def run(
        self, statement: Executable, params: Mapping[str, Any] | None, take: Callable[[CursorResult[Any]], _T]
    ) -> _T:
        try:
            if self._conn is None:
                self._conn = self._engine.connect().execution_options(sqlite_begin="NONE")
            return take(self._conn.execute(statement, params))
        except DBAPIError as exc:
            code = getattr(exc.orig, "sqlite_errorcode", 0) & 0xFF  # the primary code
            if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise self.Busy from exc
            raise

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        self._engine.dispose()


def _no_busy_wait(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    dbapi_connection.execute("PRAGMA busy_timeout=0")


# ---------------------------------------------------------------------------------------------------


def _create_engine(url: URL) -> AsyncEngine:
    if url.get_backend_name() != "sqlite":
        # pre_ping: a connection that PostgreSQL dropped (restart, failover) is replaced, not used.
        return create_async_engine(url, pool_pre_ping=True)
    memory = (url.database or MEMORY) == MEMORY
    if not memory:
        with contextlib.suppress(OSError):  # reported when connecting, with the reason
            Path(url.database or "").parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, poolclass=StaticPool) if memory else create_async_engine(url)
    event.listen(engine.sync_engine, "connect", _sqlite_connected)
    event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connected(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    # No implicit BEGINs from the driver: _sqlite_begin issues them (IMMEDIATE for writes).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        for pragma in ("foreign_keys=ON", f"busy_timeout={BUSY_TIMEOUT_MS}", "synchronous=NORMAL"):
            cursor.execute(f"PRAGMA {pragma}")
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    if mode == "NONE":
        return
    # Straight to the driver's connection: one trip to aiosqlite's thread instead of a cursor's three.
    dbapi_connection: Any = conn.connection.dbapi_connection
    dbapi_connection.execute("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN DEFERRED")


def _upgrade(connection: Connection, name: str, revision: str) -> migrations.MigrationResult:
    return migrations.upgrade(connection, name=name, target=revision)


async def _advisory_lock(conn: AsyncConnection, scope: str, key: str) -> None:
    statement = text("SELECT pg_advisory_xact_lock(:scope, :key)").bindparams(
        bindparam("scope", type_=Integer), bindparam("key", type_=Integer)
    )
    await conn.execute(statement, {"scope": _int4(scope), "key": _int4(key)})


def _int4(value: str) -> int:
    """A stable 32-bit signed number for ``value`` (the same in every process)."""
    number = zlib.crc32(value.encode("utf-8"))
    return number - 2**32 if number >= 2**31 else number


def _executable(statement: Statement) -> Executable:
    return text(statement) if isinstance(statement, str) else statement


def _driver_errors() -> tuple[type[BaseException], ...]:
    try:
        import asyncpg  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - a dependency
        return ()
    return (asyncpg.PostgresError, asyncpg.InterfaceError)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
