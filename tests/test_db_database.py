"""Database: pragmas, migrations from every older version, serialized transactions, restarts."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.crypto import TokenCipher
from bot.db import (
    MIGRATIONS,
    SCHEMA_VERSION,
    AppStateStore,
    AuditEventStore,
    Database,
    GuildSettingsStore,
    LinkRecordStore,
    SchemaTooNew,
    TokenStore,
)

GUILD = 111111111111111111
USER = 333333333333333333


def table_names(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def test_migrations_are_numbered_one_to_n() -> None:
    assert [migration.version for migration in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert SCHEMA_VERSION == len(MIGRATIONS) >= 2


async def test_open_creates_folder_and_full_schema(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "folder" / "bot.sqlite3"
    async with Database.open(path) as db:
        assert await db.schema_version() == SCHEMA_VERSION
        assert (await db.fetch_one("PRAGMA journal_mode"))[0] == "wal"  # type: ignore[index]
        assert (await db.fetch_one("PRAGMA foreign_keys"))[0] == 1  # type: ignore[index]
        assert (await db.fetch_one("PRAGMA busy_timeout"))[0] == 5000  # type: ignore[index]
        assert (await db.fetch_one("PRAGMA synchronous"))[0] == 1  # type: ignore[index]  # NORMAL
    assert {"guild_tokens", "link_records", "app_state", "guild_settings", "audit_events"} <= table_names(
        path
    )
    assert user_version(path) == SCHEMA_VERSION


async def test_connect_and_close(tmp_path: Path) -> None:
    db = await Database.connect(tmp_path / "bot.sqlite3")
    await AppStateStore(db).set("k", "v")
    await db.close()
    await db.close()  # closing twice is harmless
    with pytest.raises(RuntimeError, match="closed"):
        await db.fetch_one("SELECT 1")
    with pytest.raises(RuntimeError, match="closed"):
        await AppStateStore(db).set("k", "w")


async def test_memory_database_works() -> None:
    async with Database.open(":memory:") as db:
        state = AppStateStore(db)
        await state.set("answer", "42")
        assert await state.get("answer") == "42"
        assert await db.schema_version() == SCHEMA_VERSION


async def test_upgrade_from_version_1_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    cipher = TokenCipher([Fernet.generate_key().decode()])
    async with Database.open(path, migrations=MIGRATIONS[:1]) as old:
        assert await old.schema_version() == 1
        await TokenStore(old, cipher).set(GUILD, "token-from-version-one", set_by=USER)
        await LinkRecordStore(old).record(GUILD, "old-link", USER)
        await AppStateStore(old).set("command_hash", "abc")
    assert "audit_events" not in table_names(path)
    assert "guild_settings" not in table_names(path)

    async with Database.open(path) as db:
        assert await db.schema_version() == SCHEMA_VERSION
        assert await TokenStore(db, cipher).get(GUILD) == "token-from-version-one"
        assert await LinkRecordStore(db).search(GUILD, "old") == ["old-link"]
        assert await AppStateStore(db).get("command_hash") == "abc"
        # Version 2 tables exist and work.
        await GuildSettingsStore(db).set_log_channel(GUILD, 42)
        await AuditEventStore(db).add(GUILD, "link_created", USER, "old-link", {})
        assert (await GuildSettingsStore(db).get(GUILD)).log_channel_id == 42
        assert len(await AuditEventStore(db).latest(GUILD, 5)) == 1


@pytest.mark.parametrize("start_version", range(len(MIGRATIONS)))
async def test_upgrade_from_every_older_version(tmp_path: Path, start_version: int) -> None:
    path = tmp_path / "bot.sqlite3"
    async with Database.open(path, migrations=MIGRATIONS[:start_version]) as old:
        assert await old.schema_version() == start_version
    async with Database.open(path) as db:
        assert await db.schema_version() == SCHEMA_VERSION
        assert (await db.fetch_one("PRAGMA integrity_check"))[0] == "ok"  # type: ignore[index]
    # Opening again is a no-op, not a second migration.
    async with Database.open(path) as db:
        assert await db.schema_version() == SCHEMA_VERSION


async def test_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    async with Database.open(path):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaTooNew) as caught:
        await Database.connect(path)
    assert f"version {SCHEMA_VERSION + 1}" in str(caught.value)
    assert caught.value.found == SCHEMA_VERSION + 1
    assert caught.value.known == SCHEMA_VERSION
    assert user_version(path) == SCHEMA_VERSION + 1


async def test_failed_migration_rolls_back_to_previous_version(tmp_path: Path) -> None:
    from bot.db import Migration

    path = tmp_path / "bot.sqlite3"
    broken = (*MIGRATIONS, Migration(SCHEMA_VERSION + 1, "broken", ("CREATE TABLE x (a)", "NOT SQL")))
    with pytest.raises(sqlite3.OperationalError):
        await Database.connect(path, migrations=broken)
    assert user_version(path) == SCHEMA_VERSION
    assert "x" not in table_names(path)


async def test_transaction_rolls_back_on_error(db: Database) -> None:
    async def insert_then_fail() -> None:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO app_state (key, value) VALUES ('a', '1')")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await insert_then_fail()
    assert await db.fetch_one("SELECT * FROM app_state WHERE key = 'a'") is None
    # The connection is usable afterwards.
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO app_state (key, value) VALUES ('a', '2')")
    assert (await db.fetch_one("SELECT value FROM app_state WHERE key = 'a'"))["value"] == "2"  # type: ignore[index]


async def test_failed_statement_rolls_back_the_whole_transaction(db: Database) -> None:
    async def insert_twice() -> None:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO app_state (key, value) VALUES ('a', '1')")
            await conn.execute("INSERT INTO app_state (key, value) VALUES ('a', '1')")

    with pytest.raises(sqlite3.IntegrityError):
        await insert_twice()
    assert await db.fetch_all("SELECT * FROM app_state") == []


async def test_nested_transaction_is_an_error_not_a_deadlock(db: Database) -> None:
    async def nest() -> None:
        async with db.transaction(), db.transaction():
            pass

    with pytest.raises(RuntimeError, match="not re-entrant"):
        await asyncio.wait_for(nest(), 2)
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO app_state (key, value) VALUES ('after', 'ok')")


async def test_reads_inside_own_transaction_do_not_deadlock(db: Database) -> None:
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO app_state (key, value) VALUES ('k', 'v')")
        row = await asyncio.wait_for(db.fetch_one("SELECT value FROM app_state WHERE key = 'k'"), 2)
        assert row is not None
        assert row["value"] == "v"


async def test_other_tasks_do_not_see_uncommitted_writes(db: Database) -> None:
    inside = asyncio.Event()
    release = asyncio.Event()

    async def writer() -> None:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO app_state (key, value) VALUES ('pending', 'x')")
            inside.set()
            await release.wait()
            raise RuntimeError("changed my mind")

    task = asyncio.create_task(writer())
    await inside.wait()
    reader = asyncio.create_task(db.fetch_one("SELECT * FROM app_state WHERE key = 'pending'"))
    await asyncio.sleep(0.05)
    assert not reader.done()  # waits for the write transaction
    release.set()
    with pytest.raises(RuntimeError):
        await task
    assert await reader is None


async def test_task_started_inside_a_transaction_is_not_inside_it_afterwards(db: Database) -> None:
    """A background task started during a transaction (e.g. a worker) outlives it: it may open its
    own transactions, and its reads wait for other tasks' transactions like everyone's."""
    transaction_over = asyncio.Event()
    other_inside = asyncio.Event()
    other_release = asyncio.Event()

    async def background() -> str | None:
        await transaction_over.wait()
        async with db.transaction() as conn:  # not "not re-entrant"
            await conn.execute("INSERT INTO app_state (key, value) VALUES ('background', 'x')")
        await other_inside.wait()
        row = await db.fetch_one("SELECT value FROM app_state WHERE key = 'uncommitted'")
        return None if row is None else str(row["value"])

    async with db.transaction() as conn:
        await conn.execute("INSERT INTO app_state (key, value) VALUES ('first', 'x')")
        started = asyncio.create_task(background())
    transaction_over.set()

    async def other_writer() -> None:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO app_state (key, value) VALUES ('uncommitted', 'x')")
            other_inside.set()
            await other_release.wait()
            raise RuntimeError("rolled back")

    writer = asyncio.create_task(other_writer())
    try:
        await asyncio.wait_for(other_inside.wait(), 2)
        await asyncio.sleep(0.05)
        assert not started.done()  # its read waits for the other task's transaction …
        other_release.set()
        with pytest.raises(RuntimeError):
            await asyncio.wait_for(writer, 2)
        assert await asyncio.wait_for(started, 2) is None  # … and never saw the rolled-back row
        assert await AppStateStore(db).get("background") == "x"
    finally:
        other_release.set()  # whatever failed, no transaction is left open for close() to wait on
        for task in (writer, started):
            task.cancel()
        await asyncio.wait_for(asyncio.gather(writer, started, return_exceptions=True), 2)


async def test_interleaved_transactions_are_serialized(db: Database) -> None:
    """Each task reads a counter, yields to the others, then writes it back plus one: with interleaving
    this would lose increments or fail with "cannot start a transaction within a transaction"."""
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO app_state (key, value) VALUES ('counter', '0')")

    async def increment() -> None:
        async with db.transaction() as conn:
            async with conn.execute("SELECT value FROM app_state WHERE key = 'counter'") as cursor:
                row = await cursor.fetchone()
            assert row is not None
            await asyncio.sleep(0)
            await conn.execute(
                "UPDATE app_state SET value = ? WHERE key = 'counter'", (str(int(row[0]) + 1),)
            )

    await asyncio.gather(*(increment() for _ in range(100)))
    assert await AppStateStore(db).get("counter") == "100"


async def test_cancelled_transaction_leaves_the_connection_usable(db: Database) -> None:
    started = asyncio.Event()

    async def slow_writer() -> None:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO app_state (key, value) VALUES ('cancelled', 'x')")
            started.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(slow_writer())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await AppStateStore(db).get("cancelled") is None
    await AppStateStore(db).set("next", "fine")
    assert await AppStateStore(db).get("next") == "fine"


async def test_restart_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    cipher = TokenCipher([Fernet.generate_key().decode()])
    async with Database.open(path) as db:
        await TokenStore(db, cipher).set(GUILD, "persisted-token-value", set_by=USER)
        await LinkRecordStore(db).record(GUILD, "kept", USER)
        await GuildSettingsStore(db).set_log_channel(GUILD, 99)
        await GuildSettingsStore(db).set_locale(GUILD, "fr")
        await AppStateStore(db).set("command_hash", "h1")
        await AuditEventStore(db).add(GUILD, "token_set", USER, None, {"last4": "alue"})
    async with Database.open(path) as db:
        assert await TokenStore(db, cipher).get(GUILD) == "persisted-token-value"
        info = await TokenStore(db, cipher).info(GUILD)
        assert info is not None
        assert info.set_by == USER
        assert await LinkRecordStore(db).count(GUILD) == 1
        settings = await GuildSettingsStore(db).get(GUILD)
        assert (settings.log_channel_id, settings.locale) == (99, "fr")
        assert await AppStateStore(db).get("command_hash") == "h1"
        [event] = await AuditEventStore(db).latest(GUILD, 10)
        assert event.payload == {"last4": "alue"}
