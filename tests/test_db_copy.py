"""``python -m bot migrate-db --to URL``: the bot's database copied into an empty one (PostgreSQL, or
another SQLite file), in one transaction, row counts checked, tokens still encrypted."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.engine import URL

from bot.crypto import TokenCipher
from bot.db import (
    AppStateStore,
    AuditEventStore,
    Database,
    GuildDataStore,
    GuildSettingsStore,
    LinkRecordStore,
    TokenStore,
)
from bot.db import copy as copy_module
from bot.db.copy import CopyRefused, copy_database
from bot.db.schema import guild_tokens, metadata
from tests.fixtures.storage import SETTING_NAMES

REPO = Path(__file__).resolve().parents[1]
GUILD = 111111111111111111
OTHER_GUILD = 222222222222222222
ADMIN = 333333333333333333
TOKEN = "dscgg-token-to-be-moved-WXYZ"
LEFT = datetime(2024, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)


async def fill(db: Database, cipher: TokenCipher) -> None:
    """A row in every table; more audit events than one batch, some trimmed (ids with gaps)."""
    await TokenStore(db, cipher).set(GUILD, TOKEN, set_by=ADMIN)
    await TokenStore(db, cipher).set(OTHER_GUILD, "second-token-value-1234", set_by=ADMIN)
    for number in range(30):
        await LinkRecordStore(db).record(GUILD, f"link-{number}", ADMIN)
    await GuildSettingsStore(db).set_log_channel(GUILD, 42)
    events = AuditEventStore(db, keep=5)
    for number in range(12):
        await events.add(OTHER_GUILD, "link_edited", ADMIN, f"e{number}", {"n": number})  # trimmed to 5
    await events.add(GUILD, "link_created", ADMIN, "link-0", {"v": 1})  # with a pending post
    await GuildDataStore(db).mark_departed(OTHER_GUILD + 1, LEFT)
    await AppStateStore(db).set("command_hash", "abc")


async def everything(db: Database) -> dict[str, list[tuple[object, ...]]]:
    rows = {}
    for table in metadata.sorted_tables:
        found = await db.fetch_all(select(table).order_by(*table.primary_key.columns))
        rows[table.name] = [tuple(row) for row in found]
    return rows


async def test_every_row_is_copied_as_it_is(sqlite_db: Database, empty_database: URL) -> None:
    cipher = TokenCipher([Fernet.generate_key().decode()])
    await fill(sqlite_db, cipher)
    async with Database.open(empty_database) as target:
        counts = await copy_database(sqlite_db, target)
        assert counts == {table: len(rows) for table, rows in (await everything(sqlite_db)).items()}
        assert counts["link_records"] == 30
        assert counts["audit_events"] == 6
        assert await everything(target) == await everything(sqlite_db)  # times, ids, payloads alike

        # The tokens are still encrypted (the same ciphertext) and read with the same key.
        ciphertext = await target.fetch_value(
            select(guild_tokens.c.ciphertext).where(guild_tokens.c.guild_id == GUILD)
        )
        assert TOKEN not in ciphertext
        assert await TokenStore(target, cipher).get(GUILD) == TOKEN
        # The bot goes on where it left off: new ids come after the copied ones.
        last = max(event.id for event in await AuditEventStore(target).latest(OTHER_GUILD, 10))
        assert await AuditEventStore(target).add(GUILD, "link_edited", ADMIN, "link-1", {}) > last
        assert await GuildDataStore(target).departures() == {OTHER_GUILD + 1: LEFT}
        post = await AuditEventStore(target).next_post(GUILD)
        assert post is not None
        assert post.event.slug == "link-0"


async def test_a_target_with_rows_is_refused_and_left_alone(sqlite_db: Database, empty_database: URL) -> None:
    await fill(sqlite_db, TokenCipher([Fernet.generate_key().decode()]))
    async with Database.open(empty_database) as target:
        await AppStateStore(target).set("already", "here")
        with pytest.raises(CopyRefused) as caught:
            await copy_database(sqlite_db, target)
        assert "already holds rows (app_state: 1)" in str(caught.value)
        assert "\n" not in str(caught.value)
        assert await target.count(guild_tokens) == 0
        assert await AppStateStore(target).get("already") == "here"


async def test_a_copy_that_fails_half_way_leaves_the_target_empty(
    sqlite_db: Database, empty_database: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    await fill(sqlite_db, TokenCipher([Fernet.generate_key().decode()]))
    real = copy_module._copy_table

    async def fail_on_the_outbox(reading, writing, table):
        if table.name == "audit_outbox":
            raise RuntimeError("disk full")
        return await real(reading, writing, table)

    monkeypatch.setattr(copy_module, "_copy_table", fail_on_the_outbox)
    async with Database.open(empty_database) as target:
        with pytest.raises(RuntimeError, match="disk full"):
            await copy_database(sqlite_db, target)
        assert all(rows == [] for rows in (await everything(target)).values())


async def test_copying_into_itself_is_refused(sqlite_db: Database) -> None:
    with pytest.raises(CopyRefused, match="the database the bot uses now"):
        await copy_database(sqlite_db, sqlite_db)


# ------------------------------------------------------------------------------------- the command


def migrate_db(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k.upper() not in SETTING_NAMES}
    env.update(
        PYTHONPATH=str(REPO),
        DISCORD_TOKEN="dummy-discord-token-for-tests",
        DATABASE_PATH=str(workdir / "data" / "bot.sqlite3"),
        TOKEN_ENCRYPTION_KEYS=KEY,
    )
    return subprocess.run(
        [sys.executable, "-m", "bot", "migrate-db", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


KEY = Fernet.generate_key().decode()


def said(done: subprocess.CompletedProcess[str]) -> list[str]:
    """What the command told the operator on stderr (the rest is the log)."""
    return [line for line in done.stderr.splitlines() if line.startswith("dscgg-bot: ")]


async def test_migrate_db_to_postgresql_then_the_bot_reads_it(tmp_path: Path, postgres_server) -> None:
    async with Database.open(tmp_path / "data" / "bot.sqlite3") as source:
        await fill(source, TokenCipher([KEY]))
    target = await postgres_server.create()
    try:
        with_password = target.set(password="hunter2-db-password")  # trust auth: any password is let in
        url = with_password.render_as_string(hide_password=False)
        done = migrate_db(tmp_path, "--to", url)
        assert done.returncode == 0, done.stderr
        assert "hunter2-db-password" not in done.stdout + done.stderr
        shown = with_password.render_as_string(hide_password=True)
        assert f"DATABASE_URL={shown} (with the real password in place of ***)" in done.stdout
        assert re.search(r"^  link_records +30 rows$", done.stdout, flags=re.MULTILINE)
        assert "still encrypted" in done.stdout
        async with Database.open(target) as moved:
            assert await TokenStore(moved, TokenCipher([KEY])).get(GUILD) == TOKEN
            assert await LinkRecordStore(moved).count(GUILD) == 30

        again = migrate_db(tmp_path, "--to", url)
        assert again.returncode == 1
        [line] = said(again)
        assert line.startswith("dscgg-bot: postgresql+asyncpg://postgres:***@")
        assert "already holds rows" in line
        assert "hunter2-db-password" not in again.stdout + again.stderr
    finally:
        await postgres_server.drop(target)


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (("--to", "mysql://root:hunter2@db/bot"), "--to names a database the bot does not support (mysql)"),
        (("--to", "hunter2"), "--to is not a database URL"),
    ],
)
def test_migrate_db_refuses_a_bad_target_in_one_line(
    tmp_path: Path, args: tuple[str, ...], phrase: str
) -> None:
    done = migrate_db(tmp_path, *args)
    assert done.returncode == 2
    [line] = said(done)
    assert phrase in line
    assert "hunter2" not in done.stderr + done.stdout


def test_migrate_db_needs_to(tmp_path: Path) -> None:
    done = migrate_db(tmp_path)
    assert done.returncode == 2
    assert "--to URL" in done.stderr


def test_unreachable_target_is_one_line(tmp_path: Path) -> None:
    done = migrate_db(tmp_path, "--to", "postgresql+asyncpg://bot:hunter2@127.0.0.1:1/bot")
    assert done.returncode == 1
    [line] = said(done)
    assert line.startswith(
        "dscgg-bot: postgresql+asyncpg://bot:***@127.0.0.1:1/bot: cannot open the database ("
    )
    assert "hunter2" not in done.stderr + done.stdout
