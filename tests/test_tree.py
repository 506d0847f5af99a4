"""DscCommandTree: every failure ends in exactly one ephemeral answer; shutdown gate; in-flight drain.

The commands below are loaded as an extension ("tests.test_tree") next to the real cogs, and run
through the harness: real payloads, real CommandTree, replies recorded by the fake Discord.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from bot.client import DscBot
from bot.dscgg import errors as api
from bot.settings import Settings
from bot.tree import defer
from tests.fixtures.bot import WiredBot, wired
from tests.harness import MEMBER, Message, Result

TAKEN = "`dsc.gg/thing` is already taken. Pick another slug and try again."


class Sync:
    """Events shared by the slow command and the test, hung on the bot (discord.py loads the
    extension as a fresh module object, so module globals would not be shared)."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.started = asyncio.Event()


def sync_of(bot: object) -> Sync:
    found: Sync = getattr(bot, "test_sync")  # noqa: B009
    return found


class Boom(commands.Cog):
    @app_commands.command(name="boom-before", description="fails before answering")
    async def before(self, interaction: discord.Interaction, slug: str) -> None:
        raise api.LinkTaken(status=400)

    @app_commands.command(name="boom-deferred", description="fails after an ephemeral defer")
    async def deferred(self, interaction: discord.Interaction, slug: str) -> None:
        await defer(interaction, ephemeral=True)
        raise api.LinkTaken(status=400)

    @app_commands.command(name="boom-plain-defer", description="fails after a defer done directly")
    async def plain_defer(self, interaction: discord.Interaction, slug: str) -> None:
        await interaction.response.defer(ephemeral=True)
        raise api.LinkTaken(status=400)

    @app_commands.command(name="boom-public", description="fails after a public defer")
    async def public(self, interaction: discord.Interaction, slug: str) -> None:
        await interaction.response.defer()
        raise api.LinkTaken(status=400)

    @app_commands.command(name="boom-answered", description="fails after answering")
    async def answered(self, interaction: discord.Interaction, slug: str) -> None:
        await interaction.response.send_message("Here is your result.", ephemeral=True)
        raise api.LinkTaken(status=400)

    @app_commands.command(name="boom-bug", description="has a bug")
    async def bug(self, interaction: discord.Interaction) -> None:
        await defer(interaction)
        raise ZeroDivisionError("secret-ish detail")

    @app_commands.command(name="slow", description="waits for the test")
    async def slow(self, interaction: discord.Interaction) -> None:
        await defer(interaction)
        sync_of(interaction.client).started.set()
        await sync_of(interaction.client).gate.wait()
        await interaction.edit_original_response(content="Finished.")


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Boom())


@pytest.fixture
async def w(tmp_path: Path, settings_factory: Callable[..., Settings]) -> AsyncIterator[WiredBot]:
    async with wired(tmp_path, settings_factory, extensions=("cogs.admin", "tests.test_tree")) as bot:
        bot.bot.test_sync = Sync()  # type: ignore[attr-defined]
        yield bot


def initial_type(result: Result) -> int:
    assert result.initial is not None
    return result.initial.type


def only_message(result: Result) -> Message:
    """The single message the user sees, asserting there is exactly one and no rejected callback."""
    assert not result.rejected_callbacks
    messages = result.messages
    assert len(messages) == 1, messages
    return messages[0]


async def test_error_before_answering_is_one_ephemeral_reply(w: WiredBot) -> None:
    result = await w.run("boom-before", {"slug": "thing"})
    assert initial_type(result) == 4
    message = only_message(result)
    assert message.ephemeral
    assert message.content == TAKEN
    assert message.allowed_mentions == {"parse": []}


@pytest.mark.parametrize("command", ["boom-deferred", "boom-plain-defer"])
async def test_error_after_ephemeral_defer_replaces_the_thinking_message(w: WiredBot, command: str) -> None:
    result = await w.run(command, {"slug": "thing"})
    assert initial_type(result) == 5
    message = only_message(result)
    assert message.ephemeral
    assert not message.loading
    assert message.content == TAKEN
    assert not result.followups


async def test_error_after_public_defer_is_private_and_nothing_hangs_publicly(w: WiredBot) -> None:
    result = await w.run("boom-public", {"slug": "thing"})
    assert initial_type(result) == 5
    assert result.final_message is None  # the public placeholder is gone
    message = only_message(result)
    assert message.ephemeral
    assert message.content == TAKEN


async def test_error_after_an_answer_is_an_ephemeral_follow_up(w: WiredBot) -> None:
    result = await w.run("boom-answered", {"slug": "thing"})
    assert result.final_message is not None
    assert result.final_message.content == "Here is your result."
    (followup,) = result.followups
    assert followup.ephemeral
    assert followup.content == TAKEN


async def test_bug_gets_generic_reply_with_an_id_that_is_logged(
    w: WiredBot, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        result = await w.run("boom-bug")
    message = only_message(result)
    assert message.ephemeral
    error_id = re.search(r"`([0-9a-f]{8})`", message.content)
    assert error_id
    assert "ZeroDivision" not in message.content
    assert "secret-ish" not in message.content
    logged = [r for r in caplog.records if error_id.group(1) in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].exc_info is not None
    assert "/boom-bug" in logged[0].getMessage()


async def test_expired_interaction_is_dropped_without_a_crash(
    w: WiredBot, caplog: pytest.LogCaptureFixture
) -> None:
    payload = w.harness.command_payload("boom-before", {"slug": "thing"})
    old = discord.utils.utcnow() - timedelta(minutes=20)
    payload["id"] = str(discord.utils.time_snowflake(old))  # created 20 minutes ago
    with caplog.at_level(logging.WARNING, logger="bot.tree"):
        result = await w.harness.dispatch(payload)
    assert result.callbacks == []
    assert any("expired" in r.getMessage() for r in caplog.records)


async def test_unknown_interaction_from_discord_is_swallowed(
    w: WiredBot, caplog: pytest.LogCaptureFixture
) -> None:
    w.discord.fail("interaction_callback", status=404, code=10062, message="Unknown interaction")
    with caplog.at_level(logging.WARNING, logger="bot.tree"):
        result = await w.run("boom-before", {"slug": "thing"})  # harness raises if a task crashed
    assert result.errors == []
    assert any("could not be answered" in r.getMessage() for r in caplog.records)


async def test_failed_check_is_answered_by_the_tree(w: WiredBot) -> None:
    result = await w.run("dscgg status", user=MEMBER)
    message = only_message(result)
    assert message.ephemeral
    assert message.content == "You need the **Manage Server** permission to use this command."


async def test_shutdown_refuses_new_commands(w: WiredBot) -> None:
    w.bot.tree.begin_shutdown()
    result = await w.run("boom-before", {"slug": "thing"})
    message = only_message(result)
    assert message.content == "The bot is restarting. Try again in a moment."
    assert message.ephemeral


async def test_drain_lets_running_commands_finish(w: WiredBot) -> None:
    running = asyncio.create_task(w.run("slow"))
    await asyncio.wait_for(sync_of(w.bot).started.wait(), 5)
    assert w.bot.tree.in_flight == 1
    w.bot.tree.begin_shutdown()
    asyncio.get_running_loop().call_later(0.1, sync_of(w.bot).gate.set)
    assert await w.bot.tree.drain(5) == 0
    result = await running
    assert only_message(result).content == "Finished."
    assert w.bot.tree.in_flight == 0


async def test_drain_gives_up_after_the_grace_period(w: WiredBot) -> None:
    w.harness.raise_errors = False
    running = asyncio.create_task(w.run("slow"))
    await asyncio.wait_for(sync_of(w.bot).started.wait(), 5)
    w.bot.tree.begin_shutdown()
    assert await w.bot.tree.drain(0.1) == 1
    await running
    assert w.bot.tree.in_flight == 0


async def test_shutdown_closes_the_bot(w: WiredBot) -> None:
    bot: DscBot = w.bot
    await bot.shutdown(grace=1)
    assert bot.is_closed()
    assert bot.tree.closing
