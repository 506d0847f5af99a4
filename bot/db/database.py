"""The process's single SQLite connection: pragmas, migrations and serialized write transactions."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import aiosqlite

from bot.db.migrations import MIGRATIONS, Migration

log = logging.getLogger(__name__)

Params = Iterable[Any] | Mapping[str, Any]

MEMORY = ":memory:"


class _Transaction:
    """Marks a running write transaction of ``database``; ``active`` is cleared when it ends."""

    __slots__ = ("active", "database")

    def __init__(self, database: Database) -> None:
        self.database = database
        self.active = True


# The write transaction the current task (or a task it started meanwhile) is inside. A context
# variable rather than the current task: asyncio.wait_for and gather run code in new tasks. Tasks
# started inside a transaction keep a copy of the context after it ends; ``active`` going False makes
# that copy stale, so such a task takes the lock like any other instead of skipping it.
_current_transaction: contextvars.ContextVar[_Transaction | None] = contextvars.ContextVar(
    "current_transaction", default=None
)


class SchemaTooNew(Exception):
    """The database was written by a newer version of the bot; starting would risk damaging it."""

    def __init__(self, path: str, found: int, known: int) -> None:
        super().__init__(
            f"{path}: database schema version {found} is newer than this bot knows ({known}); "
            "run a newer version of the bot or restore a backup"
        )
        self.found = found
        self.known = known


def to_db_time(moment: datetime) -> str:
    """UTC ISO-8601 with a fixed width, so text order is time order."""
    if moment.tzinfo is None:
        raise ValueError("naive datetimes are ambiguous; pass an aware datetime")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def from_db_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Database:
    """One aiosqlite connection shared by the whole process.

    Writes go through :meth:`transaction`, which holds a lock so coroutines cannot interleave their
    statements inside one SQLite transaction. Reads wait for a running write transaction to finish, so
    they never see uncommitted rows; inside a transaction, read through the connection it yields.
    """

    def __init__(self, connection: aiosqlite.Connection, path: str) -> None:
        self._conn = connection
        self.path = path
        self._lock = asyncio.Lock()
        self._closed = False

    @classmethod
    async def connect(cls, path: str | Path, *, migrations: Sequence[Migration] = MIGRATIONS) -> Self:
        """Open (creating the file and its folder if needed), set pragmas and migrate.

        Raises SchemaTooNew if the file comes from a newer version of the code. ``migrations`` exists
        for tests that build older schema versions.
        """
        location = str(path)
        if location != MEMORY:
            Path(location).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit BEGINs; transaction() issues BEGIN IMMEDIATE itself.
        connection = await aiosqlite.connect(location, isolation_level=None)
        database = cls(connection, location)
        try:
            connection.row_factory = aiosqlite.Row
            await database._configure()
            await database._migrate(migrations)
        except BaseException:
            await database.close()
            raise
        return database

    @classmethod
    @asynccontextmanager
    async def open(
        cls, path: str | Path, *, migrations: Sequence[Migration] = MIGRATIONS
    ) -> AsyncIterator[Self]:
        database = await cls.connect(path, migrations=migrations)
        try:
            yield database
        finally:
            await database.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Wait for a running write to finish instead of cutting it off.
        async with self._lock:
            await self._conn.close()

    async def _configure(self) -> None:
        async with self._conn.execute("PRAGMA journal_mode=WAL") as cursor:
            row = await cursor.fetchone()
        mode = str(row[0]).lower() if row else "unknown"
        if mode != "wal" and self.path != MEMORY:
            # E.g. a network filesystem; the bot still works, with more lock contention.
            log.warning("SQLite could not switch %s to WAL mode (got %s)", self.path, mode)
        for pragma in ("foreign_keys=ON", "busy_timeout=5000", "synchronous=NORMAL"):
            await self._conn.execute(f"PRAGMA {pragma}")

    async def schema_version(self) -> int:
        row = await self.fetch_one("PRAGMA user_version")
        return int(row[0]) if row else 0

    async def _migrate(self, migrations: Sequence[Migration]) -> None:
        known = migrations[-1].version if migrations else 0
        current = await self.schema_version()
        if current > known:
            raise SchemaTooNew(self.path, current, known)
        for migration in migrations:
            if migration.version <= current:
                continue
            async with self.transaction() as conn:
                for statement in migration.statements:
                    await conn.execute(statement)
                # user_version lives in the file header, which is part of the transaction.
                await conn.execute(f"PRAGMA user_version = {int(migration.version)}")
            log.info(
                "Database %s migrated to version %d (%s)", self.path, migration.version, migration.description
            )
            current = migration.version

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """A serialized write transaction: BEGIN IMMEDIATE … COMMIT, ROLLBACK if the body raises.

        Keep it short and never await the network inside it. Not re-entrant: nesting raises.
        """
        self._check_open()
        if self._inside_transaction():
            raise RuntimeError("transaction() is not re-entrant; use the connection it yielded")
        async with self._lock:
            marker = _Transaction(self)
            reset_token = _current_transaction.set(marker)
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
                await self._conn.execute("COMMIT")
            except BaseException:
                await self._rollback()
                raise
            finally:
                marker.active = False
                _current_transaction.reset(reset_token)

    @asynccontextmanager
    async def joining(self, conn: aiosqlite.Connection | None) -> AsyncIterator[aiosqlite.Connection]:
        """``conn`` (the caller's running transaction) when given, else a new :meth:`transaction`.

        Lets a store's write join a transaction its caller opened, so that two changes (e.g. a link
        record and the audit event about it) are committed together or not at all.
        """
        if conn is not None:
            yield conn
            return
        async with self.transaction() as own:
            yield own

    def _inside_transaction(self) -> bool:
        """True in the task running this database's write transaction, and in tasks it started that
        run while it is still open (asyncio.wait_for, gather)."""
        current = _current_transaction.get()
        return current is not None and current.active and current.database is self

    async def _rollback(self) -> None:
        # aiosqlite runs statements in order on one thread, so this ROLLBACK runs after whatever was
        # queued before it, even if the caller was cancelled mid-statement. If BEGIN never ran or COMMIT
        # already succeeded, there is nothing to roll back.
        try:
            await self._conn.execute("ROLLBACK")
        except sqlite3.OperationalError as exc:
            if "no transaction is active" not in str(exc):
                raise

    async def fetch_one(self, sql: str, params: Params = ()) -> aiosqlite.Row | None:
        async with self._reading(), self._conn.execute(sql, params) as cursor:
            row: aiosqlite.Row | None = await cursor.fetchone()
            return row

    async def fetch_all(self, sql: str, params: Params = ()) -> list[aiosqlite.Row]:
        async with self._reading(), self._conn.execute(sql, params) as cursor:
            rows: list[aiosqlite.Row] = list(await cursor.fetchall())
            return rows

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[None]:
        self._check_open()
        if self._inside_transaction():
            # Called from inside this task's own transaction: the lock is already ours.
            yield
            return
        async with self._lock:
            yield

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"database {self.path} is closed")
