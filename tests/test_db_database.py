"""Database: URLs, migrations (from every older revision and from files written before Alembic),
transactions, restarts — on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

from bot.crypto import TokenCipher
from bot.db import (
    SCHEMA_VERSION,
    AppStateStore,
    AuditEventStore,
    BadDatabaseURL,
    CannotOpenDatabase,
    Database,
    GuildDataStore,
    GuildSettingsStore,
    LinkRecordStore,
    SchemaTooNew,
    TokenStore,
    migrations,
)
from bot.db.apikeys import ApiKeyStore, IdempotencyStore
from bot.db.schema import app_state, metadata
from bot.db.urls import database_url

GUILD = 111111111111111111
USER = 333333333333333333


def table_names(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


async def live_tables(db: Database) -> set[str]:
    async with db.connection() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def insert_state(conn, key: str, value: str) -> None:
    await conn.execute(
        text("INSERT INTO app_state (key, value) VALUES (:key, :value)"), {"key": key, "value": value}
    )


# ------------------------------------------------------------------------------ URLs and opening


def test_revisions_are_numbered_in_order_and_the_head_is_the_schema_version() -> None:
    assert migrations.revisions() == [f"{n:04d}" for n in range(1, len(migrations.revisions()) + 1)]
    assert migrations.revisions()[-1] == SCHEMA_VERSION
    legacy = migrations.LEGACY_REVISIONS
    assert list(legacy) == list(LEGACY_MIGRATIONS)
    assert list(legacy.values()) == migrations.revisions()[: len(legacy)]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("data/bot.sqlite3", "sqlite+aiosqlite:///data/bot.sqlite3"),
        (Path("/srv/bot.sqlite3"), "sqlite+aiosqlite:////srv/bot.sqlite3"),
        ("sqlite:///data/bot.sqlite3", "sqlite+aiosqlite:///data/bot.sqlite3"),
        ("postgresql://bot:pw@db:5432/bot", "postgresql+asyncpg://bot:pw@db:5432/bot"),
        ("postgres://bot@db/bot", "postgresql+asyncpg://bot@db/bot"),
        ("postgresql+asyncpg://bot@db/bot", "postgresql+asyncpg://bot@db/bot"),
    ],
)
def test_database_urls(given: str | Path, expected: str) -> None:
    assert database_url(given).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize(
    "given",
    [
        "mysql://root:hunter2@db/bot",
        "sqlite+aiosqlite://",
        "sqlite://user:hunter2@host/bot.sqlite3",
        "postgresql+psycopg_async_weird://u:hunter2@db/bot",
        "://hunter2",
        "",
    ],
)
def test_bad_database_urls_are_refused_without_echoing_them(given: str) -> None:
    with pytest.raises(BadDatabaseURL) as caught:
        database_url(given)
    assert "hunter2" not in str(caught.value)
    assert "\n" not in str(caught.value)


async def test_unreachable_postgresql_is_one_clear_error_without_the_password() -> None:
    with pytest.raises(CannotOpenDatabase) as caught:
        await Database.connect("postgresql+asyncpg://bot:hunter2@127.0.0.1:1/bot")
    message = str(caught.value)
    assert message.startswith("postgresql+asyncpg://bot:***@127.0.0.1:1/bot: cannot open the database (")
    assert "hunter2" not in message


async def test_unknown_postgresql_role_is_one_clear_error(postgres_server) -> None:
    url = postgres_server.url.set(username="no_such_role_here", password="hunter2")
    with pytest.raises(CannotOpenDatabase) as caught:
        await Database.connect(url)
    assert "no_such_role_here" in str(caught.value)
    assert "hunter2" not in str(caught.value)


async def test_sqlite_file_in_an_unwritable_place_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(CannotOpenDatabase, match="cannot open the database"):
        await Database.connect(blocker / "bot.sqlite3")
    # aiosqlite stops the failed connection's thread without waiting; let it finish on this loop.
    for thread in threading.enumerate():
        if "_connection_worker_thread" in thread.name:
            await asyncio.to_thread(thread.join, 5)


async def test_open_creates_folder_and_full_schema_with_sqlite_settings(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "folder" / "bot.sqlite3"
    async with Database.open(path) as db:
        assert await db.schema_version() == SCHEMA_VERSION
        assert await db.fetch_value("PRAGMA journal_mode") == "wal"
        assert await db.fetch_value("PRAGMA foreign_keys") == 1
        assert await db.fetch_value("PRAGMA synchronous") == 1  # NORMAL
        # Reads outside a transaction run on the event loop: they never wait for a lock there.
        assert await db.fetch_value("PRAGMA busy_timeout") == 0
        async with db.transaction() as conn:  # the same for the connection writes go through
            assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
            assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() == 5000
    assert set(metadata.tables) <= table_names(path)
    # A bot from before Alembic would see a schema newer than it knows, and refuse to start.
    assert user_version(path) == migrations.ALEMBIC_USER_VERSION


async def test_an_empty_database_is_migrated_to_the_newest_schema(empty_database: URL) -> None:
    async with Database.open(empty_database) as db:
        assert await db.schema_version() == SCHEMA_VERSION
        assert set(metadata.tables) | {"alembic_version"} == await live_tables(db)
    async with Database.open(empty_database) as db:  # opening again changes nothing
        assert await db.schema_version() == SCHEMA_VERSION


async def test_connect_and_close(db: Database) -> None:
    other = await Database.connect(db.url)
    await AppStateStore(other).set("k", "v")
    await other.close()
    await other.close()  # closing twice is harmless
    with pytest.raises(RuntimeError, match="closed"):
        await other.fetch_one("SELECT 1")
    with pytest.raises(RuntimeError, match="closed"):
        await AppStateStore(other).set("k", "w")
    assert await AppStateStore(db).get("k") == "v"


async def test_memory_database_works() -> None:
    async with Database.open(":memory:") as db:
        state = AppStateStore(db)
        await asyncio.gather(*(state.set(f"key-{n}", str(n)) for n in range(20)), state.get("key-1"))
        assert await state.get("key-19") == "19"
        assert await db.schema_version() == SCHEMA_VERSION


# ------------------------------------------------------------------ files written before Alembic

# The schema as the bot created it before Alembic: migration N of bot/db/migrations.py then, by
# PRAGMA user_version. Copied as it was; never edit.
LEGACY_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """
        CREATE TABLE guild_tokens (
            guild_id   INTEGER PRIMARY KEY,
            ciphertext TEXT    NOT NULL,
            last4      TEXT    NOT NULL,
            set_by     INTEGER NOT NULL,
            set_at     TEXT    NOT NULL
        )
        """,
        """
        CREATE TABLE link_records (
            guild_id        INTEGER NOT NULL,
            slug            TEXT    NOT NULL,
            created_by      INTEGER NOT NULL,
            last_touched_by INTEGER NOT NULL,
            created_at      TEXT    NOT NULL,
            touched_at      TEXT    NOT NULL,
            PRIMARY KEY (guild_id, slug)
        )
        """,
        "CREATE INDEX link_records_by_touch ON link_records (guild_id, touched_at DESC)",
        """
        CREATE TABLE app_state (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )
        """,
    ),
    2: (
        """
        CREATE TABLE guild_settings (
            guild_id            INTEGER PRIMARY KEY,
            log_channel_id      INTEGER,
            locale              TEXT,
            log_channel_problem TEXT
        )
        """,
        """
        CREATE TABLE audit_events (
            id       INTEGER PRIMARY KEY AUTOINCREMENT,
            guild_id INTEGER NOT NULL,
            kind     TEXT    NOT NULL,
            actor_id INTEGER,
            slug     TEXT,
            payload  TEXT    NOT NULL DEFAULT '{}',
            at       TEXT    NOT NULL
        )
        """,
        "CREATE INDEX audit_events_by_guild ON audit_events (guild_id, id DESC)",
    ),
    3: (
        """
        CREATE TABLE guild_departures (
            guild_id INTEGER PRIMARY KEY,
            left_at  TEXT    NOT NULL
        )
        """,
    ),
    4: (
        """
        CREATE TABLE audit_outbox (
            event_id        INTEGER PRIMARY KEY REFERENCES audit_events (id) ON DELETE CASCADE,
            guild_id        INTEGER NOT NULL,
            also_to         INTEGER,
            attempts        INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT    NOT NULL,
            last_error      TEXT
        )
        """,
        "CREATE INDEX audit_outbox_by_guild ON audit_outbox (guild_id, event_id)",
    ),
    5: (
        """
        CREATE TABLE api_keys (
            id           INTEGER PRIMARY KEY AUTOINCREMENT,
            guild_id     INTEGER NOT NULL,
            name         TEXT    NOT NULL,
            digest       BLOB    NOT NULL UNIQUE,
            created_by   INTEGER NOT NULL,
            created_at   TEXT    NOT NULL,
            last_used_at TEXT
        )
        """,
        "CREATE INDEX api_keys_by_guild ON api_keys (guild_id, id)",
        """
        CREATE TABLE api_idempotency (
            credential  TEXT    NOT NULL,
            key         TEXT    NOT NULL,
            guild_id    INTEGER NOT NULL,
            fingerprint TEXT    NOT NULL,
            status      INTEGER,
            headers     TEXT,
            body        BLOB,
            created_at  TEXT    NOT NULL,
            PRIMARY KEY (credential, key)
        )
        """,
        "CREATE INDEX api_idempotency_by_time ON api_idempotency (created_at)",
    ),
}

LEGACY_TOKEN = "token-written-by-the-old-bot-1234"
LEGACY_DIGEST = bytes(range(32))
CREATED = "2024-05-01T12:00:00.000000+00:00"
TOUCHED = "2024-06-02T08:30:00.250000+00:00"


def write_legacy_database(path: Path, version: int, cipher: TokenCipher) -> None:
    """A database as the bot before Alembic left it at user_version ``version``, with a row in each table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        for number in range(1, version + 1):
            conn.execute("BEGIN IMMEDIATE")
            for statement in LEGACY_MIGRATIONS[number]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        conn.execute(
            "INSERT INTO guild_tokens VALUES (?, ?, ?, ?, ?)",
            (GUILD, cipher.encrypt(GUILD, LEGACY_TOKEN), "1234", USER, CREATED),
        )
        conn.execute(
            "INSERT INTO link_records VALUES (?, 'Old-Link', ?, ?, ?, ?)",
            (GUILD, USER, USER, CREATED, TOUCHED),
        )
        conn.execute("INSERT INTO app_state VALUES ('command_hash', 'abc')")
        if version >= 2:
            conn.execute("INSERT INTO guild_settings VALUES (?, 42, 'fr', NULL)", (GUILD,))
            conn.execute(
                "INSERT INTO audit_events (guild_id, kind, actor_id, slug, payload, at) "
                "VALUES (?, 'link_created', ?, 'Old-Link', '{\"v\":1}', ?)",
                (GUILD, USER, CREATED),
            )
        if version >= 3:
            conn.execute("INSERT INTO guild_departures VALUES (?, ?)", (GUILD + 1, CREATED))
        if version >= 4:
            conn.execute(
                "INSERT INTO audit_outbox (event_id, guild_id, next_attempt_at) VALUES (1, ?, ?)",
                (GUILD, TOUCHED),
            )
        if version >= 5:
            conn.execute(
                "INSERT INTO api_keys (guild_id, name, digest, created_by, created_at) "
                "VALUES (?, 'ci', ?, ?, ?)",
                (GUILD, LEGACY_DIGEST, USER, CREATED),
            )
            conn.execute(
                "INSERT INTO api_idempotency VALUES ('key:1', 'k1', ?, 'POST /x', 201, '{}', X'7B7D', ?)",
                (GUILD, TOUCHED),
            )
    finally:
        conn.close()


@pytest.mark.parametrize("version", sorted(LEGACY_MIGRATIONS))
async def test_a_database_written_before_alembic_is_upgraded_in_place_with_nothing_lost(
    tmp_path: Path, version: int, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "data" / "bot.sqlite3"
    cipher = TokenCipher([Fernet.generate_key().decode()])
    write_legacy_database(path, version, cipher)

    with caplog.at_level("INFO", logger="bot.db.database"):
        db = await Database.connect(path)
    try:
        assert await db.schema_version() == SCHEMA_VERSION
        assert (
            f"schema version {version} (from before Alembic) recorded as revision 000{version}" in caplog.text
        )
        assert await TokenStore(db, cipher).get(GUILD) == LEGACY_TOKEN  # still encrypted, still readable
        info = await TokenStore(db, cipher).info(GUILD)
        assert info is not None
        assert (info.last4, info.set_by, info.set_at) == ("1234", USER, datetime(2024, 5, 1, 12, tzinfo=UTC))
        [record] = await LinkRecordStore(db).page(GUILD, 0, 10)
        assert (record.slug, record.created_by) == ("Old-Link", USER)
        assert record.touched_at == datetime(2024, 6, 2, 8, 30, 0, 250000, tzinfo=UTC)
        assert await LinkRecordStore(db).managed_elsewhere(GUILD + 5, "old-link")  # the new index works
        assert await AppStateStore(db).get("command_hash") == "abc"
        events = AuditEventStore(db)
        if version >= 2:
            assert (await GuildSettingsStore(db).get(GUILD)).locale == "fr"
            [event] = await events.latest(GUILD, 10)
            assert (event.id, event.slug, event.payload) == (1, "Old-Link", {"v": 1})
        if version >= 3:
            assert await GuildDataStore(db).departures() == {GUILD + 1: datetime(2024, 5, 1, 12, tzinfo=UTC)}
        if version >= 4:
            post = await events.next_post(GUILD)
            assert post is not None
            assert post.event.slug == "Old-Link"
        if version >= 5:
            found = await ApiKeyStore(db).lookup(LEGACY_DIGEST)
            assert found is not None
            assert (found[0].name, found[0].created_at) == ("ci", datetime(2024, 5, 1, 12, tzinfo=UTC))
            assert found[1] == LEGACY_DIGEST
            later = IdempotencyStore(db, clock=lambda: datetime(2024, 6, 2, 9, tzinfo=UTC))
            begun = await later.begin("key:1", "k1", GUILD, "POST /x")
            assert begun.response is not None
            assert (begun.response.status, begun.response.body) == (201, b"{}")
        # The API's tables work whatever the version was.
        await ApiKeyStore(db).create(GUILD, "new", bytes(32), USER)
        # Tables added after that version exist and work; new ids follow the old ones.
        await GuildSettingsStore(db).set_log_channel(GUILD, 43)
        new_id = await events.add(GUILD, "link_edited", USER, "Old-Link", {})
        assert new_id == (2 if version >= 2 else 1)
        await GuildDataStore(db).mark_departed(GUILD + 2, datetime.now(UTC))
    finally:
        await db.close()
    assert user_version(path) == migrations.ALEMBIC_USER_VERSION
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    async with Database.open(path) as db:  # opening again is not a second migration
        assert await db.schema_version() == SCHEMA_VERSION
        assert await TokenStore(db, cipher).get(GUILD) == LEGACY_TOKEN


async def test_a_pre_alembic_version_this_code_never_had_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    write_legacy_database(path, 4, TokenCipher([Fernet.generate_key().decode()]))
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 7")
    with pytest.raises(SchemaTooNew, match="version 7 is newer than this bot knows"):
        await Database.connect(path)
    assert user_version(path) == 7
    assert "alembic_version" not in table_names(path)


# ------------------------------------------------------------------------------ Alembic revisions


@pytest.mark.parametrize("start", migrations.revisions()[:-1])
async def test_upgrade_from_every_older_revision_keeps_data(empty_database: URL, start: str) -> None:
    cipher = TokenCipher([Fernet.generate_key().decode()])
    async with Database.open(empty_database, revision=start) as old:
        assert await old.schema_version() == start
        await TokenStore(old, cipher).set(GUILD, "token-from-an-old-revision", set_by=USER)
        await AppStateStore(old).set("command_hash", "abc")
    async with Database.open(empty_database) as db:
        assert await db.schema_version() == SCHEMA_VERSION
        assert await TokenStore(db, cipher).get(GUILD) == "token-from-an-old-revision"
        assert await AppStateStore(db).get("command_hash") == "abc"
        assert set(metadata.tables) <= await live_tables(db)


async def test_newer_schema_is_refused_and_left_untouched(empty_database: URL) -> None:
    async with Database.open(empty_database) as db, db.transaction() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaTooNew) as caught:
        await Database.connect(empty_database)
    assert "version 9999 is newer than this bot knows" in str(caught.value)
    assert (caught.value.found, caught.value.known) == ("9999", SCHEMA_VERSION)
    engine = create_async_engine(empty_database)
    try:
        async with engine.connect() as conn:  # left untouched
            assert (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar() == "9999"
    finally:
        await engine.dispose()


async def test_failed_migration_changes_nothing(
    empty_database: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Database.open(empty_database, revision="0004") as db:
        await AppStateStore(db).set("kept", "yes")
    scripts = tmp_path / "alembic"
    shutil.copytree(migrations.ALEMBIC_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "0099_broken.py").write_text(
        '"""broken"""\n'
        "import sqlalchemy as sa\nfrom alembic import op\n"
        f"revision = '0099'\ndown_revision = '{SCHEMA_VERSION}'\nbranch_labels = None\ndepends_on = None\n"
        "def upgrade():\n"
        "    op.create_table('x', sa.Column('a', sa.Integer))\n"
        "    op.execute('NOT SQL')\n"
    )
    monkeypatch.setattr(migrations, "ALEMBIC_DIR", scripts)
    migrations._script.cache_clear()
    try:
        with pytest.raises(SQLAlchemyError):
            await Database.connect(empty_database)
    finally:
        monkeypatch.undo()
        migrations._script.cache_clear()
    # Every pending revision (0005 and the broken one) is applied together or not at all.
    async with Database.open(empty_database, revision="0004") as db:
        assert await db.schema_version() == "0004"
        assert "x" not in await live_tables(db)
        assert await AppStateStore(db).get("kept") == "yes"


# ------------------------------------------------------------------------------ transactions


async def test_transaction_rolls_back_on_error(db: Database) -> None:
    async def insert_then_fail() -> None:
        async with db.transaction() as conn:
            await insert_state(conn, "a", "1")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await insert_then_fail()
    assert await AppStateStore(db).get("a") is None
    # The database is usable afterwards.
    async with db.transaction() as conn:
        await insert_state(conn, "a", "2")
    assert await AppStateStore(db).get("a") == "2"


async def test_failed_statement_rolls_back_the_whole_transaction(db: Database) -> None:
    async def insert_twice() -> None:
        async with db.transaction() as conn:
            await insert_state(conn, "a", "1")
            await insert_state(conn, "a", "1")

    with pytest.raises(IntegrityError):
        await insert_twice()
    assert await db.fetch_all(select(app_state)) == []


async def test_nested_transaction_is_an_error_not_a_deadlock(db: Database) -> None:
    async def nest() -> None:
        async with db.transaction(), db.transaction():
            pass

    with pytest.raises(RuntimeError, match="not re-entrant"):
        await asyncio.wait_for(nest(), 5)
    async with db.transaction() as conn:
        await insert_state(conn, "after", "ok")


async def test_reads_inside_own_transaction_see_its_writes(db: Database) -> None:
    async with db.transaction() as conn:
        await insert_state(conn, "k", "v")
        assert await asyncio.wait_for(AppStateStore(db).get("k"), 5) == "v"


async def test_other_tasks_do_not_see_uncommitted_writes(db: Database) -> None:
    inside = asyncio.Event()
    release = asyncio.Event()

    async def writer(fail: bool) -> None:
        async with db.transaction() as conn:
            await insert_state(conn, "pending", "x")
            inside.set()
            await release.wait()
            if fail:
                raise RuntimeError("changed my mind")

    task = asyncio.create_task(writer(fail=True))
    await inside.wait()
    assert await asyncio.wait_for(AppStateStore(db).get("pending"), 5) is None
    release.set()
    with pytest.raises(RuntimeError):
        await task
    assert await AppStateStore(db).get("pending") is None

    inside.clear()
    release.clear()
    task = asyncio.create_task(writer(fail=False))
    await inside.wait()
    assert await asyncio.wait_for(AppStateStore(db).get("pending"), 5) is None
    release.set()
    await task
    assert await AppStateStore(db).get("pending") == "x"


async def test_reads_see_another_processs_commit_at_once(db: Database) -> None:
    """Several processes share one database: a read never answers from an older view than the last
    commit, whichever process made it."""
    other = await Database.connect(db.url)
    try:
        assert await AppStateStore(db).get("shared") is None
        await AppStateStore(other).set("shared", "one")
        assert await AppStateStore(db).get("shared") == "one"
        await AppStateStore(other).set("shared", "two")
        assert await AppStateStore(db).get("shared") == "two"
    finally:
        await other.close()


async def test_a_read_of_a_busy_sqlite_file_waits_beside_the_event_loop(tmp_path: Path) -> None:
    """Another process holds the whole file (exclusive locking mode) for a moment: a read waits for it
    (up to the busy timeout) without holding up the event loop, then sees what that process wrote."""
    path = tmp_path / "bot.sqlite3"
    async with Database.open(path) as db:
        await db.engine.dispose()  # no connection of the bot is open when the other process locks
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("PRAGMA locking_mode=EXCLUSIVE")
        other.execute("BEGIN EXCLUSIVE")
        other.execute("INSERT INTO app_state (key, value) VALUES ('held', 'done')")
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        def release() -> None:
            time.sleep(0.3)
            other.execute("COMMIT")
            other.close()

        ticking = asyncio.create_task(tick())
        releasing = asyncio.create_task(asyncio.to_thread(release))
        try:
            assert await asyncio.wait_for(AppStateStore(db).get("held"), 5) == "done"
        finally:
            await releasing
            ticking.cancel()
        assert ticks >= 10  # the loop ran on while the read waited


async def test_task_started_inside_a_transaction_is_not_inside_it_afterwards(db: Database) -> None:
    """A background task started during a transaction (e.g. a worker) outlives it: it opens its own
    transactions, and its reads see committed rows only, like everyone's."""
    transaction_over = asyncio.Event()
    other_inside = asyncio.Event()
    other_release = asyncio.Event()

    async def background() -> str | None:
        await transaction_over.wait()
        async with db.transaction() as conn:  # not "not re-entrant"
            await insert_state(conn, "background", "x")
        await other_inside.wait()
        return await AppStateStore(db).get("uncommitted")

    async with db.transaction() as conn:
        await insert_state(conn, "first", "x")
        started = asyncio.create_task(background())
    transaction_over.set()

    async def other_writer() -> None:
        async with db.transaction() as conn:
            await insert_state(conn, "uncommitted", "x")
            other_inside.set()
            await other_release.wait()
            raise RuntimeError("rolled back")

    writer = asyncio.create_task(other_writer())
    try:
        assert await asyncio.wait_for(started, 5) is None  # never saw the other task's row
        other_release.set()
        with pytest.raises(RuntimeError):
            await asyncio.wait_for(writer, 5)
        assert await AppStateStore(db).get("background") == "x"
        assert await AppStateStore(db).get("uncommitted") is None
    finally:
        other_release.set()  # whatever failed, no transaction is left open for close() to wait on
        for task in (writer, started):
            task.cancel()
        await asyncio.wait_for(asyncio.gather(writer, started, return_exceptions=True), 5)


async def test_read_modify_write_with_for_update_loses_nothing(db: Database) -> None:
    """Each task reads a counter, yields to the others, then writes it back plus one. SQLite runs the
    transactions one at a time; PostgreSQL runs them together, and FOR UPDATE makes each wait for the
    row: either way no increment is lost."""
    async with db.transaction() as conn:
        await insert_state(conn, "counter", "0")

    async def increment() -> None:
        async with db.transaction() as conn:
            value = (
                await conn.execute(
                    select(app_state.c.value).where(app_state.c.key == "counter").with_for_update()
                )
            ).scalar_one()
            await asyncio.sleep(0)
            await conn.execute(
                app_state.update().where(app_state.c.key == "counter").values(value=str(int(value) + 1))
            )

    await asyncio.gather(*(increment() for _ in range(50)))
    assert await AppStateStore(db).get("counter") == "50"


async def test_cancelled_transaction_leaves_the_database_usable(db: Database) -> None:
    started = asyncio.Event()

    async def slow_writer() -> None:
        async with db.transaction() as conn:
            await insert_state(conn, "cancelled", "x")
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


async def test_restart_keeps_everything(empty_database: URL) -> None:
    cipher = TokenCipher([Fernet.generate_key().decode()])
    async with Database.open(empty_database) as db:
        await TokenStore(db, cipher).set(GUILD, "persisted-token-value", set_by=USER)
        await LinkRecordStore(db).record(GUILD, "kept", USER)
        await GuildSettingsStore(db).set_log_channel(GUILD, 99)
        await GuildSettingsStore(db).set_locale(GUILD, "fr")
        await AppStateStore(db).set("command_hash", "h1")
        await AuditEventStore(db).add(GUILD, "token_set", USER, None, {"last4": "alue"})
    async with Database.open(empty_database) as db:
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
