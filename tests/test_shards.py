"""Shards: SHARD_COUNT/SHARD_IDS against the fake Discord's sharded gateway, the sync by shard 0 only,
the shard named by /dscgg status, and a health file that needs every shard of the process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest
import yarl
from cryptography.fernet import Fernet

from bot import client as client_module
from bot.client import DscBot
from bot.crypto import TokenCipher
from bot.db import Database
from bot.settings import Settings
from tests.fakes.discord import FakeDiscord, InteractionRecord, shard_of
from tests.fixtures.bot import wired
from tests.harness import ADMIN, Message, Payloads


def status_fields(message: Message) -> dict[str, str]:
    (embed,) = message.embeds
    return {field["name"]: field["value"] for field in embed["fields"]}


# ------------------------------------------------------------------------------- /dscgg status


async def test_status_names_the_shard_serving_the_server(
    tmp_path: Path, settings_factory: Callable[..., Settings]
) -> None:
    async with wired(
        tmp_path, settings_factory, extensions=("cogs.admin",), settings={"shard_count": 4}
    ) as w:
        for guild_id in w.discord.guild_ids:
            result = await w.run("dscgg status", guild=guild_id)
            (message,) = result.messages
            assert status_fields(message)["Served by"] == f"Shard {(guild_id >> 22) % 4} of 4"


async def test_status_of_an_unsharded_bot_names_its_only_shard(
    tmp_path: Path, settings_factory: Callable[..., Settings]
) -> None:
    async with wired(tmp_path, settings_factory, extensions=("cogs.admin",)) as w:
        (message,) = (await w.run("dscgg status")).messages
        assert status_fields(message)["Served by"] == "Shard 0 of 1"


# ----------------------------------------------------------------------------------- command sync


async def syncs_at_start(
    tmp_path: Path, settings_factory: Callable[..., Settings], shard_ids: str, **kwargs: Any
) -> list[Any]:
    """Start a bot running ``shard_ids`` of 4 shards on the shared database; the syncs the fake saw."""
    settings = {"shard_count": 4, "shard_ids": shard_ids}
    async with wired(
        tmp_path, settings_factory, extensions=("cogs.admin",), settings=settings, **kwargs
    ) as w:
        return list(w.discord.syncs)


async def test_only_the_process_running_shard_zero_syncs_the_commands(
    tmp_path: Path, settings_factory: Callable[..., Settings]
) -> None:
    assert await syncs_at_start(tmp_path, settings_factory, "2,3") == []
    (synced,) = await syncs_at_start(tmp_path, settings_factory, "0,1")
    assert synced.scope == "global"
    assert [c["name"] for c in synced.commands] == ["dscgg"]
    assert await syncs_at_start(tmp_path, settings_factory, "0,1") == []  # still only when changed


async def test_python_m_bot_sync_forces_a_sync_without_shard_zero(
    tmp_path: Path, settings_factory: Callable[..., Settings]
) -> None:
    (forced,) = await syncs_at_start(tmp_path, settings_factory, "2,3", force_sync=True)
    assert forced.scope == "global"


# ----------------------------------------------------------------- several shards in one process


@contextlib.asynccontextmanager
async def connected_bot(
    tmp_path: Path,
    settings_factory: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    fake: FakeDiscord,
    **settings: Any,
) -> AsyncIterator[DscBot]:
    """A DscBot logged in and connected over the fake's gateway (every shard of it), until closed."""
    monkeypatch.setattr(discord.http.Route, "BASE", fake.api_base)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(fake.gateway_url))

    async def no_identify_wait(self: DscBot, shard_id: int | None, *, initial: bool = False) -> None:
        """Discord allows one IDENTIFY per 5 s; the fake has no such limit to respect."""

    monkeypatch.setattr(DscBot, "before_identify_hook", no_identify_wait)
    async with (
        aiohttp.ClientSession() as session,
        Database.open(tmp_path / "data" / "bot.sqlite3") as db,
    ):
        bot = DscBot(
            settings_factory(**settings),
            db,
            session,
            cipher=TokenCipher([Fernet.generate_key().decode("ascii")]),
            extensions=("cogs.admin",),
            guild_ready_timeout=0.05,
        )
        async with bot:
            await bot.login("fake-bot-token")
            connection = asyncio.create_task(bot.connect())
            try:
                await asyncio.wait_for(bot.wait_until_ready(), 20)
                yield bot
            finally:
                await bot.close()
                await asyncio.wait_for(connection, 10)


async def final_message(fake: FakeDiscord, record: InteractionRecord) -> Message:
    def answered() -> Message | None:
        data = fake.messages.get(record.original_message_id or 0)
        return Message(data) if data is not None and not Message(data).loading else None

    message: Message = await fake.wait_for(answered, 10)
    return message


async def test_two_shards_in_one_process_connect_and_answer_their_servers(
    tmp_path: Path, settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeDiscord(guilds=8) as fake:
        on_shard = {shard: [g for g in fake.guild_ids if shard_of(g, 4) == shard] for shard in range(4)}
        assert all(len(ids) == 2 for ids in on_shard.values())
        async with connected_bot(
            tmp_path, settings_factory, monkeypatch, fake, shard_count=4, shard_ids="1,3"
        ) as bot:
            assert sorted(s.shard for s in fake.identified_sessions) == [(1, 4), (3, 4)]
            assert sorted(g.id for g in bot.guilds) == sorted(on_shard[1] + on_shard[3])
            assert fake.syncs == []  # shard 0 runs elsewhere

            payloads = Payloads(fake, tree=bot.tree)
            for shard in (1, 3):
                for guild_id in on_shard[shard]:
                    record = await fake.dispatch_interaction(
                        payloads.command("dscgg status", user=ADMIN, guild=guild_id)
                    )
                    message = await final_message(fake, record)
                    assert message.ephemeral
                    assert status_fields(message)["Served by"] == f"Shard {shard} of 4"
                    assert [cb.accepted for cb in fake.callbacks_for(record.id)] == [True]  # answered once


async def test_the_recommended_shard_count_is_used_by_default(
    tmp_path: Path, settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with (
        FakeDiscord(guilds=4, recommended_shards=2) as fake,
        connected_bot(tmp_path, settings_factory, monkeypatch, fake) as bot,
    ):
        assert sorted(s.shard for s in fake.identified_sessions) == [(0, 2), (1, 2)]
        assert bot.shard_count == 2
        assert sorted(g.id for g in bot.guilds) == sorted(fake.guild_ids)
        assert [s.scope for s in fake.syncs] == ["global"]  # this process runs shard 0


async def test_health_file_is_fresh_only_while_every_shard_is_connected(
    tmp_path: Path, settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "HEALTH_INTERVAL", 0.02)
    path = tmp_path / "health" / "alive"
    async with (
        FakeDiscord(guilds=4) as fake,
        connected_bot(tmp_path, settings_factory, monkeypatch, fake, shard_count=2, health_file=path) as bot,
    ):
        assert await eventually(path.exists)
        assert {shard for shard, _ in bot.latencies} == {0, 1}

        # shard 1's connection dropped (discord.py is reconnecting it): the process is not healthy
        original = discord.ShardInfo.is_closed
        monkeypatch.setattr(discord.ShardInfo, "is_closed", lambda shard: shard.id == 1 or original(shard))
        assert await eventually(lambda: not path.exists())
        monkeypatch.setattr(discord.ShardInfo, "is_closed", original)
        assert await eventually(path.exists)

        # shard 0 connected but its heartbeat is not answered
        latencies = type(bot).latencies
        monkeypatch.setattr(type(bot), "latencies", property(lambda b: [(0, float("inf")), (1, 0.05)]))
        assert await eventually(lambda: not path.exists())
        monkeypatch.setattr(type(bot), "latencies", latencies)
        assert await eventually(path.exists)
    assert not path.exists()  # removed on close


async def eventually(predicate: Callable[[], bool], within: float = 5.0) -> bool:
    for _ in range(int(within / 0.02)):
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


async def test_a_process_takes_up_audit_posts_only_for_the_servers_of_its_shards(
    tmp_path: Path, settings_factory: Callable[..., Settings]
) -> None:
    settings = {"shard_count": 4, "shard_ids": "2,3"}
    async with wired(tmp_path, settings_factory, extensions=("cogs.admin",), settings=settings) as w:
        guilds = [(1_190_000_000_000 + i) << 22 for i in range(8)]
        assert [g for g in guilds if w.bot.serves_guild(g)] == [g for g in guilds if shard_of(g, 4) in (2, 3)]
        assert len([g for g in guilds if w.bot.serves_guild(g)]) == 4
