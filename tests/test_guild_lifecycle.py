"""A server's data over its life: the bot removed (token gone at once), invited back (data kept) or
not (everything purged after the retention period), and removals that happened while it was offline.

Gateway events go through discord.py's own parsers (``parse_guild_delete`` / ``parse_guild_create``),
so the bot's real event handlers run; the purge clock is injected.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

import bot.db.lifecycle as lifecycle_store
from bot.db import PER_GUILD_TABLES, Database, GuildDataStore, LinkRecordStore, TokenStore
from bot.db.schema import metadata
from bot.services.guilds import GuildLifecycle, Reconciled
from bot.settings import Settings
from tests.fixtures.bot import ADMIN_TOKEN, WiredBot, wired
from tests.harness import ADMIN

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
RETENTION = timedelta(days=30)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def w(tmp_path: Path, settings_factory: Callable[..., Settings]) -> Any:
    async with wired(tmp_path, settings_factory) as bot:
        yield bot


@pytest.fixture
def clock(w: WiredBot) -> Clock:
    clock = Clock(T0)
    w.bot.lifecycle.clock = clock
    return clock


async def gateway(parse: Callable[[], None]) -> None:
    """Feed one gateway event to discord.py and wait for the handlers it dispatched."""
    before = asyncio.all_tasks()
    parse()
    spawned = asyncio.all_tasks() - before
    if spawned:
        _, pending = await asyncio.wait(spawned, timeout=5)
        assert not pending, pending


async def remove_bot(w: WiredBot, guild_id: int) -> None:
    """GUILD_DELETE without ``unavailable``: kicked, banned, or the server was deleted."""
    await gateway(lambda: w.bot._connection.parse_guild_delete({"id": str(guild_id)}))
    assert w.bot.get_guild(guild_id) is None


async def invite_bot(w: WiredBot, guild_id: int) -> None:
    """GUILD_CREATE of a server the bot just joined (no ``unavailable`` key: discord.py's guild_join)."""
    payload = w.discord.guild_payload(guild_id)
    payload.pop("unavailable")
    await gateway(lambda: w.bot._connection.parse_guild_create(payload))
    assert w.bot.get_guild(guild_id) is not None


async def fill(w: WiredBot, guild_id: int, slug: str) -> None:
    """A token, a link record, a log channel and an audit event for the server."""
    await w.bot.token_store.set(guild_id, ADMIN_TOKEN, set_by=ADMIN.id)
    await w.bot.link_records.record(guild_id, slug, ADMIN.id)
    await w.bot.guild_settings.set_log_channel(guild_id, guild_id + 2)
    await w.bot.audit_events.add(guild_id, "link_created", ADMIN.id, slug, {})


async def holdings(w: WiredBot, guild_id: int) -> dict[str, Any]:
    settings = await w.bot.guild_settings.get(guild_id)
    return {
        "token": await w.bot.token_store.info(guild_id) is not None,
        "links": await w.bot.link_records.search(guild_id, "", 10),
        "log_channel": settings.log_channel_id,
        "history": [event.slug for event in await w.bot.audit_events.latest(guild_id, 10)],
    }


# ------------------------------------------------------------------------------ removed from a server


async def test_removal_deletes_the_token_at_once_and_a_reinvite_does_not_bring_it_back(
    w: WiredBot, clock: Clock
) -> None:
    await fill(w, w.guild_id, "ours")
    w.dscgg.add_link("ours", owner_id=ADMIN.id)

    await remove_bot(w, w.guild_id)
    assert await w.bot.token_store.info(w.guild_id) is None
    await invite_bot(w, w.guild_id)

    result = await w.run("link info", {"slug": "ours"})  # whoever has Manage Server now
    assert result.ephemeral
    assert "This server hasn't set up a dsc.gg token yet" in result.text()
    assert "/dscgg token set" in result.text()
    assert w.dscgg.requests == []  # the old token was never used
    # the rest is still there: the re-invite came within the retention period
    assert await holdings(w, w.guild_id) == {
        "token": False,
        "links": ["ours"],
        "log_channel": w.guild_id + 2,
        "history": ["ours"],
    }


async def test_a_server_that_only_became_unavailable_keeps_everything(w: WiredBot, clock: Clock) -> None:
    await fill(w, w.guild_id, "ours")
    await gateway(lambda: w.bot._connection.parse_guild_delete({"id": str(w.guild_id), "unavailable": True}))
    clock.now = T0 + 10 * RETENTION
    assert await w.bot.lifecycle.purge_expired() == []
    assert (await holdings(w, w.guild_id))["token"] is True


# ------------------------------------------------------------------------------------------- purge


async def test_everything_of_a_server_is_purged_after_the_retention_period_and_nothing_else(
    w: WiredBot, clock: Clock
) -> None:
    gone, staying, left_later = w.guild_id, w.guild_id + 1, w.guild_id + 2
    for guild_id, slug in ((gone, "gone"), (staying, "staying"), (left_later, "later")):
        await fill(w, guild_id, slug)

    await remove_bot(w, gone)
    clock.now = T0 + timedelta(days=5)
    await w.bot.lifecycle.left(left_later)  # another server, removed five days later

    clock.now = T0 + RETENTION - timedelta(seconds=1)
    assert await w.bot.lifecycle.purge_expired() == []
    assert (await holdings(w, gone))["links"] == ["gone"]

    clock.now = T0 + RETENTION
    assert await w.bot.lifecycle.purge_expired() == [gone]
    assert await holdings(w, gone) == {"token": False, "links": [], "log_channel": None, "history": []}
    assert gone not in await w.bot.guild_data.guild_ids()  # no row left anywhere, the mark included
    assert await holdings(w, staying) == {
        "token": True,
        "links": ["staying"],
        "log_channel": staying + 2,
        "history": ["staying"],
    }
    assert await holdings(w, left_later) == {
        "token": False,  # deleted when the bot was removed
        "links": ["later"],
        "log_channel": left_later + 2,
        "history": ["later"],
    }

    # Invited back after the purge: a fresh start.
    await invite_bot(w, gone)
    result = await w.run("link list")
    assert "No links yet" in result.text()


async def test_a_reinvite_within_the_retention_period_keeps_the_data(w: WiredBot, clock: Clock) -> None:
    await fill(w, w.guild_id, "ours")
    await remove_bot(w, w.guild_id)
    clock.now = T0 + timedelta(days=29)
    await invite_bot(w, w.guild_id)

    clock.now = T0 + 3 * RETENTION
    assert await w.bot.lifecycle.purge_expired() == []
    assert await holdings(w, w.guild_id) == {
        "token": False,
        "links": ["ours"],
        "log_channel": w.guild_id + 2,
        "history": ["ours"],
    }
    result = await w.run("link list")
    assert "dsc.gg/ours" in result.text()


async def test_a_server_the_bot_is_in_is_never_purged_even_if_the_join_was_missed(
    w: WiredBot, clock: Clock
) -> None:
    await fill(w, w.guild_id, "ours")
    await w.bot.lifecycle.left(w.guild_id)  # e.g. the join event was lost; discord.py has the guild
    clock.now = T0 + 2 * RETENTION
    assert await w.bot.lifecycle.purge_expired() == []
    assert (await holdings(w, w.guild_id))["links"] == ["ours"]
    assert not w.bot.lifecycle.is_departed(w.guild_id)


async def test_the_purge_is_all_or_nothing(
    db: Database, cipher: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = GuildDataStore(db)
    await TokenStore(db, cipher).set(1, ADMIN_TOKEN, set_by=2)
    await LinkRecordStore(db).record(1, "x", 2)
    await store.mark_departed(1, T0)
    assert await TokenStore(db, cipher).info(1) is None  # the token goes with the mark
    # A table that fails half-way through: nothing may be deleted.
    broken = (*PER_GUILD_TABLES[:2], "no_such_table", *PER_GUILD_TABLES[2:])
    monkeypatch.setattr(lifecycle_store, "PER_GUILD_TABLES", broken)
    with pytest.raises(Exception, match="no_such_table"):
        await store.purge(1, departed_before=T0)
    monkeypatch.undo()
    assert await store.guild_ids() == {1}
    assert await LinkRecordStore(db).search(1, "") == ["x"]
    assert await store.departures() == {1: T0}
    assert await store.purge(1, departed_before=T0)
    assert await store.guild_ids() == set()


async def test_every_table_keyed_by_guild_is_in_the_purge_list(db: Database) -> None:
    """A new per-guild table must be added to PER_GUILD_TABLES, or it would outlive the purge."""

    def keyed_tables(sync: Connection) -> set[str]:
        schema = inspect(sync)
        return {
            table
            for table in schema.get_table_names()
            if any(column["name"] == "guild_id" for column in schema.get_columns(table))
        }

    async with db.connection() as conn:
        assert await conn.run_sync(keyed_tables) == set(PER_GUILD_TABLES)
    described = {table.name for table in metadata.tables.values() if "guild_id" in table.c}
    assert described == set(PER_GUILD_TABLES)


async def test_retention_must_not_be_negative(db: Database) -> None:
    with pytest.raises(ValueError, match="negative"):
        GuildLifecycle(GuildDataStore(db), retention=timedelta(days=-1))


# ------------------------------------------------------------------------- removed while offline


async def test_a_server_that_removed_the_bot_while_it_was_offline_loses_its_token_at_the_next_ready(
    w: WiredBot, clock: Clock
) -> None:
    elsewhere = w.guild_id + 1  # has data, but READY did not list it
    await fill(w, w.guild_id, "ours")
    await fill(w, elsewhere, "theirs")
    # Still a member, only unavailable (an outage): READY lists such servers too.
    await gateway(lambda: w.bot._connection.parse_guild_delete({"id": str(w.guild_id), "unavailable": True}))

    assert await w.bot.reconcile_guilds() == Reconciled(departed=(elsewhere,), returned=())
    assert (await holdings(w, elsewhere))["token"] is False
    assert (await holdings(w, w.guild_id))["token"] is True
    clock.now = T0 + RETENTION
    assert await w.bot.lifecycle.purge_expired() == [elsewhere]
    assert (await holdings(w, w.guild_id))["links"] == ["ours"]


async def test_a_process_without_every_shard_never_deduces_departures(w: WiredBot) -> None:
    elsewhere = w.guild_id + 1  # could be on a shard this process does not run
    await fill(w, elsewhere, "theirs")
    w.bot.shard_count = 2
    w.bot.shard_ids = None  # SHARD_IDS unset: this process launches both shards
    assert w.bot.holds_every_shard()
    w.bot.shard_ids = [0]  # SHARD_IDS=0: the other shard runs elsewhere
    assert not w.bot.holds_every_shard()
    assert await w.bot.reconcile_guilds() is None
    assert (await holdings(w, elsewhere))["token"] is True
    assert not w.bot.lifecycle.is_departed(elsewhere)


async def test_a_server_marked_departed_is_unmarked_when_ready_lists_it(w: WiredBot, clock: Clock) -> None:
    await fill(w, w.guild_id, "ours")
    await w.bot.lifecycle.left(w.guild_id)  # invited back while the bot was offline
    assert await w.bot.reconcile_guilds() == Reconciled(departed=(), returned=(w.guild_id,))
    assert await w.bot.guild_data.departures() == {}


async def test_departures_found_at_start_are_purged_by_the_background_task(
    tmp_path: Path, settings_factory: Callable[..., Settings]
) -> None:
    async with wired(tmp_path, settings_factory) as w:
        elsewhere = w.guild_id + 1
        await fill(w, elsewhere, "theirs")
        await w.bot.reconcile_guilds()
        assert w.bot.lifecycle.is_departed(elsewhere)

    async with wired(tmp_path, settings_factory, settings={"guild_data_retention_days": 0}) as w:
        assert w.bot.lifecycle.retention == timedelta(0)
        for _ in range(250):  # the first pass runs once the bot is connected
            if elsewhere not in await w.bot.guild_data.guild_ids():
                break
            await asyncio.sleep(0.02)
        assert await holdings(w, elsewhere) == {
            "token": False,
            "links": [],
            "log_channel": None,
            "history": [],
        }
