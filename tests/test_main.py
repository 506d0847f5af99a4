"""``python -m bot``: start-up errors in one line, the command-sync policy, login failure, health file."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import discord
import pytest
from aiohttp import web
from cryptography.fernet import Fernet
from discord import app_commands
from discord.ext import commands

from bot import __main__ as entry
from bot import client as client_module
from bot import health
from bot.db import TokenUnreadable
from bot.settings import Settings
from tests.fixtures.bot import wired
from tests.fixtures.storage import SETTING_NAMES

REPO = Path(__file__).resolve().parents[1]
SECRET = "MTE4MDAwMDAwMDAwMDAwMDAwMQ.Gsecret.do-not-print-this-token"


def run_bot(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k.upper() not in SETTING_NAMES}
    clean.update(env, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=tmp_path,  # no .env there
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_missing_token_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = run_bot(tmp_path, {})
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("dscgg-bot: ")
    assert "DISCORD_TOKEN" in lines[0]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"DSCGG_TIMEOUT": "soon"}, "DSCGG_TIMEOUT"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"TOKEN_ENCRYPTION_KEYS": "not-a-fernet-key-but-secret"}, "TOKEN_ENCRYPTION_KEYS"),
    ],
)
def test_invalid_setting_is_one_line_without_secrets(
    tmp_path: Path, env: dict[str, str], setting: str
) -> None:
    done = run_bot(tmp_path, {"DISCORD_TOKEN": SECRET, **env})
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert setting in lines[0]
    assert SECRET not in done.stderr
    assert "not-a-fernet-key-but-secret" not in done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_subcommand_is_refused(tmp_path: Path) -> None:
    done = run_bot(tmp_path, {"DISCORD_TOKEN": SECRET}, "dance")
    assert done.returncode == 2
    assert SECRET not in done.stderr


# ------------------------------------------------------------------------------- login failure


async def test_bad_bot_token_is_one_clear_line(
    settings_factory: Callable[..., Settings],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def unauthorized(request: web.Request) -> web.Response:
        return web.json_response({"message": "401: Unauthorized", "code": 0}, status=401)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", unauthorized)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    monkeypatch.setattr(discord.http.Route, "BASE", f"http://127.0.0.1:{port}/api/v10")
    try:
        code = await entry.run(settings_factory(discord_token=SECRET), handle_signals=False)
    finally:
        await runner.cleanup()
    assert code == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "dscgg-bot: Discord refused DISCORD_TOKEN: check the bot token in the Discord developer portal"
    ]


# --------------------------------------------------------------------------------- sync policy


async def setup(bot: commands.Bot) -> None:
    """Loaded as an extension by the "changed commands" test: one more command in the tree."""

    @app_commands.command(name="extra", description="a command that was not there before")
    async def extra(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("hi", ephemeral=True)

    bot.tree.add_command(extra)


async def boot(tmp_path: Path, settings_factory: Callable[..., Settings], **kwargs: Any) -> list[Any]:
    """Start a bot on the same database as the previous boot; return the syncs the fake saw."""
    kwargs.setdefault("extensions", ("cogs.admin",))
    async with wired(tmp_path, settings_factory, **kwargs) as w:
        return list(w.discord.syncs)


async def test_first_start_syncs_globally_then_not_again(
    tmp_path: Path, settings_factory: Callable[..., Settings]
) -> None:
    (first,) = await boot(tmp_path, settings_factory)
    assert first.scope == "global"
    assert [c["name"] for c in first.commands] == ["dscgg"]
    assert await boot(tmp_path, settings_factory) == []


async def test_changed_commands_sync_again(tmp_path: Path, settings_factory: Callable[..., Settings]) -> None:
    await boot(tmp_path, settings_factory)
    (changed,) = await boot(tmp_path, settings_factory, extensions=("cogs.admin", "tests.test_main"))
    assert sorted(c["name"] for c in changed.commands) == ["dscgg", "extra"]
    assert await boot(tmp_path, settings_factory, extensions=("cogs.admin", "tests.test_main")) == []
    (back,) = await boot(tmp_path, settings_factory)  # removing a command is a change too
    assert [c["name"] for c in back.commands] == ["dscgg"]


async def test_dev_guild_gets_the_commands_and_global_is_left_alone(
    tmp_path: Path, settings_factory: Callable[..., Settings]
) -> None:
    guild_id = 1_190_000_000_000_000_000
    (synced,) = await boot(tmp_path, settings_factory, settings={"dev_guild_id": guild_id})
    assert synced.scope == "guild"
    assert synced.guild_id == guild_id
    assert [c["name"] for c in synced.commands] == ["dscgg"]
    assert await boot(tmp_path, settings_factory, settings={"dev_guild_id": guild_id}) == []
    # the guild's hash is its own: a later global start still syncs globally once
    (global_sync,) = await boot(tmp_path, settings_factory)
    assert global_sync.scope == "global"


async def test_sync_command_forces_a_sync(tmp_path: Path, settings_factory: Callable[..., Settings]) -> None:
    await boot(tmp_path, settings_factory)
    (forced,) = await boot(tmp_path, settings_factory, force_sync=True)
    assert forced.scope == "global"


async def test_failed_sync_is_retried(tmp_path: Path, settings_factory: Callable[..., Settings]) -> None:
    async with wired(tmp_path, settings_factory, extensions=()) as w:
        await setup(w.bot)  # the commands changed since the sync at start
        w.discord.fail("put_global_commands", status=403, code=50001, message="Missing Access", times=1)
        with pytest.raises(discord.HTTPException):
            await w.bot.sync_commands()
        assert await w.bot.sync_commands() is True  # the failed attempt did not record the new hash
        assert await w.bot.sync_commands() is False


# ---------------------------------------------------------------------------------- health file


async def test_health_file_is_touched_while_ready_and_removed_on_close(
    tmp_path: Path, settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "HEALTH_INTERVAL", 0.02)
    path = tmp_path / "health" / "alive"
    async with wired(tmp_path, settings_factory, extensions=(), settings={"health_file": path}) as w:
        monkeypatch.setattr(type(w.bot), "latency", property(lambda self: 0.05))
        assert await eventually(path.exists)
        assert health.main([str(path), "--max-age", "60"]) == 0
        monkeypatch.setattr(type(w.bot), "latency", property(lambda self: float("inf")))
        assert await eventually(lambda: not path.exists())  # not healthy while latency is unknown
        monkeypatch.setattr(type(w.bot), "latency", property(lambda self: 0.05))
        assert await eventually(path.exists)
    assert not path.exists()  # removed on close
    assert health.main([str(path)]) == 1


# ---------------------------------------------------------------------------------- key rotation


async def test_a_start_with_a_new_key_in_front_moves_stored_tokens_onto_it(
    tmp_path: Path, settings_factory: Callable[..., Settings]
) -> None:
    old_key, new_key = (Fernet.generate_key().decode("ascii") for _ in range(2))
    async with wired(tmp_path, settings_factory, extensions=(), keys=[old_key]) as w:
        guild_id = w.guild_id
        await w.bot.token_store.set(guild_id, "dscgg-token-under-the-old-key", set_by=1)

    # Without the rotating start, the new key alone cannot read the token.
    async with wired(tmp_path, settings_factory, extensions=(), keys=[new_key]) as w:
        with pytest.raises(TokenUnreadable):
            await w.bot.token_store.get(guild_id)

    async with wired(tmp_path, settings_factory, extensions=(), keys=[new_key, old_key]):
        pass  # setup_hook re-encrypts under new_key

    async with wired(tmp_path, settings_factory, extensions=(), keys=[new_key]) as w:
        assert await w.bot.token_store.get(guild_id) == "dscgg-token-under-the-old-key"


async def eventually(predicate: Callable[[], bool], within: float = 5.0) -> bool:
    for _ in range(int(within / 0.02)):
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


def test_health_check_staleness(tmp_path: Path) -> None:
    path = tmp_path / "alive"
    path.touch()
    assert health.is_fresh(path, 60)
    old = time.time() - 120
    os.utime(path, (old, old))
    assert not health.is_fresh(path, 60)
    assert health.main([str(path), "--max-age", "60"]) == 1
    assert health.main([str(path), "--max-age", "600"]) == 0
