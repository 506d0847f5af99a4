"""``python -m bot``: start-up errors in one line, the command-sync policy, login failure, health check."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import discord
import pytest
import yarl
from aiohttp import web
from cryptography.fernet import Fernet
from discord import app_commands
from discord.ext import commands

from bot import __main__ as entry
from bot import client as client_module
from bot import health
from bot import log as bot_log
from bot.db import SCHEMA_VERSION, TokenUnreadable
from bot.settings import Settings
from tests.fakes.discord import FakeDiscord
from tests.fixtures.bot import wired
from tests.fixtures.storage import SETTING_NAMES

REPO = Path(__file__).resolve().parents[1]
SECRET = "MTE4MDAwMDAwMDAwMDAwMDAwMQ.Gsecret.do-not-print-this-token"
KEY = Fernet.generate_key().decode("ascii")


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


def test_bad_database_url_is_one_line_without_the_password(tmp_path: Path) -> None:
    done = run_bot(tmp_path, {"DISCORD_TOKEN": SECRET, "DATABASE_URL": "mysql://bot:db-pw-hunter2@db/bot"})
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "dscgg-bot: DATABASE_URL: names a database the bot does not support (mysql); use "
        "sqlite+aiosqlite:///data/bot.sqlite3 or postgresql+asyncpg://user:password@host:5432/database"
    ]
    assert "db-pw-hunter2" not in done.stderr


def test_unreachable_database_is_one_line_without_the_password(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://bot:db-pw-hunter2@127.0.0.1:1/bot"
    done = run_bot(tmp_path, {"DISCORD_TOKEN": SECRET, "DATABASE_URL": url, "TOKEN_ENCRYPTION_KEYS": KEY})
    assert done.returncode == 1
    said = [line for line in done.stderr.splitlines() if line.startswith("dscgg-bot: ")]
    assert said == [
        "dscgg-bot: postgresql+asyncpg://bot:***@127.0.0.1:1/bot: cannot open the database "
        "(Connect call failed ('127.0.0.1', 1))"
    ]
    assert "db-pw-hunter2" not in done.stderr
    assert "Traceback" not in done.stderr


def test_a_database_from_a_newer_bot_stops_the_start_in_one_line(tmp_path: Path) -> None:
    database = tmp_path / "data" / "bot.sqlite3"
    database.parent.mkdir()
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('9999')")
    done = run_bot(tmp_path, {"DISCORD_TOKEN": SECRET, "TOKEN_ENCRYPTION_KEYS": KEY})
    assert done.returncode == 1
    said = [line for line in done.stderr.splitlines() if line.startswith("dscgg-bot: ")]
    assert said == [
        "dscgg-bot: data/bot.sqlite3: database schema version 9999 is newer than this bot knows "
        f"({SCHEMA_VERSION}); run a newer version of the bot or restore a backup"
    ]


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


async def setup(bot: commands.Bot | commands.AutoShardedBot) -> None:
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


def test_health_check_staleness(tmp_path: Path) -> None:
    path = tmp_path / "alive"
    path.touch()
    assert health.is_fresh(path, 60)
    old = time.time() - 120
    os.utime(path, (old, old))
    assert not health.is_fresh(path, 60)
    assert health.main([str(path), "--max-age", "60"]) == 1
    assert health.main([str(path), "--max-age", "600"]) == 0


# ------------------------------------------------------------------- run() against the fake Discord


class RecordingBot(client_module.DscBot):
    """The real DscBot; remembers each instance so a test can look at it after run() returned."""

    built: list[client_module.DscBot] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        RecordingBot.built.append(self)


@pytest.fixture
def live(monkeypatch: pytest.MonkeyPatch) -> Callable[[FakeDiscord], None]:
    """Point discord.py at a FakeDiscord (REST and gateway) and record the DscBot run() builds."""
    RecordingBot.built = []
    monkeypatch.setattr(client_module, "DscBot", RecordingBot)

    def point_at(fake: FakeDiscord) -> None:
        monkeypatch.setattr(discord.http.Route, "BASE", fake.api_base)
        monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(fake.gateway_url))

    return point_at


def _bot_tasks(before: set[asyncio.Task[Any]]) -> list[asyncio.Task[Any]]:
    """Tasks started since ``before`` that are still pending and run the bot's or discord.py's code."""
    left = []
    for task in asyncio.all_tasks() - before:
        if task.done() or task is asyncio.current_task():
            continue
        code = getattr(task.get_coro(), "cr_code", None)
        filename = code.co_filename if code is not None else ""
        if f"{os.sep}bot{os.sep}" in filename or f"{os.sep}discord{os.sep}" in filename:
            left.append(task)
    return left


async def _run_until(
    settings: Settings, fake: FakeDiscord, arrived: Callable[[], object], *, handle_signals: bool = True
) -> tuple[int, float]:
    """run() the bot; once ``arrived()`` is true, send ourselves SIGTERM. Returns (exit code, seconds
    from the signal to run() returning)."""
    running = asyncio.create_task(entry.run(settings, handle_signals=handle_signals))
    try:
        await fake.wait_for(lambda: arrived() or running.done(), timeout=20)
        assert not running.done(), f"run() ended before the signal: {running.result()}"
        signalled = time.monotonic()
        os.kill(os.getpid(), signal.SIGTERM)
        code = await asyncio.wait_for(running, 15)
        return code, time.monotonic() - signalled
    finally:
        if not running.done():
            running.cancel()
            with contextlib.suppress(BaseException):
                await running


@pytest.mark.parametrize(
    ("route", "stage"),
    [("get_me", "login"), ("put_global_commands", "setup_hook")],
)
async def test_sigterm_while_starting_is_a_clean_stop(
    settings_factory: Callable[..., Settings],
    live: Callable[[FakeDiscord], None],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    route: str,
    stage: str,
) -> None:
    caplog.set_level(logging.INFO, logger="bot")
    before = asyncio.all_tasks()
    async with FakeDiscord() as fake:
        live(fake)
        fake.set_latency(route, 4)  # Discord is slow to answer the login / the command sync
        code, took = await _run_until(
            settings_factory(token_encryption_keys=Fernet.generate_key().decode()),
            fake,
            lambda: fake.requests_to(route),
        )
        assert code == 0, capsys.readouterr().err
        assert took < 2, f"{stage}: took {took:.1f} s to stop"
        assert capsys.readouterr().err == ""  # no traceback, no error line
        assert fake.identified_sessions == []  # never connected after the signal
        if stage == "login":
            assert fake.syncs == []  # setup_hook did not sync after the stop was asked for
    (bot,) = RecordingBot.built
    assert bot.is_closed()
    assert not bot.audit.running
    session = bot.http._HTTPClient__session  # type: ignore[attr-defined]
    assert session is discord.utils.MISSING or session.closed, "discord.py's HTTP session was left open"
    assert _bot_tasks(before) == []
    gc.collect()
    await asyncio.sleep(0)
    assert not [r for r in caplog.records if "Unclosed" in r.getMessage()]
    assert "Stopped" in caplog.text


async def test_unreachable_discord_is_one_line_after_the_login_timeout(
    settings_factory: Callable[..., Settings],
    live: Callable[[FakeDiscord], None],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(entry, "LOGIN_TIMEOUT", 0.5)
    async with FakeDiscord() as fake:
        live(fake)
        fake.set_latency("get_me", 3)
        started = time.monotonic()
        code = await asyncio.wait_for(entry.run(settings_factory(), handle_signals=False), 10)
        took = time.monotonic() - started
    assert code == 1
    assert took < 2
    assert capsys.readouterr().err.splitlines() == [
        "dscgg-bot: cannot reach Discord (127.0.0.1): no answer within 0.5 s"
    ]


async def test_refused_connection_to_discord_is_one_line(
    settings_factory: Callable[..., Settings],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(discord.http.Route, "BASE", f"http://127.0.0.1:{port}/api/v10")
    code = await asyncio.wait_for(entry.run(settings_factory(), handle_signals=False), 10)
    assert code == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("dscgg-bot: cannot reach Discord (127.0.0.1): ")
    assert "Traceback" not in line


async def test_unexpected_start_up_error_is_one_redacted_line_and_logged(
    settings_factory: Callable[..., Settings],
    live: Callable[[FakeDiscord], None],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def broken_setup(self: client_module.DscBot) -> None:
        raise RuntimeError(f"something broke near {SECRET}")

    monkeypatch.setattr(RecordingBot, "setup_hook", broken_setup)
    async with FakeDiscord() as fake:
        live(fake)
        code = await asyncio.wait_for(
            entry.run(settings_factory(discord_token=SECRET), handle_signals=False), 10
        )
    assert code == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "dscgg-bot: stopped by an unexpected error (RuntimeError); the log has the details"
    ]
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.exc_info is not None  # the traceback is in the (redacted) log


async def test_run_registers_the_bot_token_for_redaction(
    settings_factory: Callable[..., Settings],
    live: Callable[[FakeDiscord], None],
) -> None:
    token = "bot-token-never-in-any-log-line-4Rk"
    assert bot_log.redact(f"token={token}") == f"token={token}"
    try:
        async with FakeDiscord() as fake:
            live(fake)
            code = await asyncio.wait_for(
                entry.run(settings_factory(discord_token=token), sync_only=True), 10
            )
        assert code == 0
        assert bot_log.redact(f"token={token}") == "token=[redacted]"
    finally:
        for _ in range(3):
            bot_log.unregister_secret(token)


async def test_sigterm_with_a_hung_command_and_slow_log_posts_stops_within_the_budget(
    tmp_path: Path,
    settings_factory: Callable[..., Settings],
    live: Callable[[FakeDiscord], None],
) -> None:
    from bot.crypto import TokenCipher
    from bot.db import Database, GuildSettingsStore, LinkRecordStore, TokenStore
    from tests.e2e import Driver
    from tests.fakes.dscgg import FakeDscgg
    from tests.harness import ADMIN

    key = Fernet.generate_key().decode()
    async with FakeDiscord() as fake, FakeDscgg() as dscgg:
        live(fake)
        dscgg.add_key("dscgg-budget-key-Hq5Tw2Lr9x", user_id=7001, whitelisted=False)
        dscgg.add_link("mine", owner_id=7001, redirect="https://discord.gg/x", clicks=1)
        dscgg.add_link("other", owner_id=7001, redirect="https://discord.gg/y", clicks=1)
        settings = settings_factory(token_encryption_keys=key, dscgg_api_url=dscgg.base_url, dscgg_timeout=60)
        guild_id = fake.guild_ids[0]
        async with Database.open(settings.database_path) as db:
            await TokenStore(db, TokenCipher([key])).set(
                guild_id, "dscgg-budget-key-Hq5Tw2Lr9x", set_by=ADMIN.id
            )
            await GuildSettingsStore(db).set_log_channel(guild_id, fake.guild(guild_id).log_channel_id)
            for slug in ("mine", "other"):  # links this server manages
                await LinkRecordStore(db).record(guild_id, slug, ADMIN.id)
        driver = Driver(fake)
        records: list[Any] = []
        fake.set_latency("channel_message", 10)  # every audit post hangs past the budget

        async def scenario() -> bool:
            await driver.wait_connected()
            edited = await driver.command("link edit", {"slug": "other", "title": "New"})
            await driver.final_message(edited, contains="Updated")  # queues an audit post (hanging)
            asked = await driver.command("link delete", {"slug": "mine"})
            await driver.final_message(asked, contains="for good?")  # buttons nobody will press
            dscgg.latency = 10  # the next dsc.gg call hangs past the grace
            hung = await driver.command("link info", {"slug": "mine"})
            await driver.first_callback(hung)
            await fake.wait_for(lambda: dscgg.requests_to("get_link"), timeout=5)
            records.extend((asked, hung))
            return True

        ready = asyncio.create_task(scenario())
        code, took = await _run_until(settings, fake, lambda: ready.done() and ready.result())
        asked, hung = records
        assert code == 0
        assert took < client_module.SHUTDOWN_BUDGET + 0.5, f"stopped {took:.1f} s after SIGTERM"
        restarting = "The bot is restarting. Try again in a moment."
        for record in (asked, hung):
            message = await driver.final_message(record, contains=restarting, timeout=1)
            assert not message.buttons()


async def test_redis_url_gives_the_dscgg_client_the_shared_limiter(
    settings_factory: Callable[..., Settings],
    live: Callable[[FakeDiscord], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from bot.dscgg.redislimit import RedisRateLimiter

    with socket.socket() as probe:  # a port nothing listens on: Redis is down from the start
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    password = "redis-password-never-in-any-log-line"
    settings = settings_factory(redis_url=f"redis://:{password}@127.0.0.1:{port}/0", rate_limit_processes=3)
    caplog.set_level(logging.INFO)
    try:
        async with FakeDiscord() as fake:
            live(fake)
            assert await asyncio.wait_for(entry.run(settings, sync_only=True), 10) == 0
        (bot,) = RecordingBot.built
        limiter = bot.dscgg.rate_limiter
        assert isinstance(limiter, RedisRateLimiter)
        assert limiter.processes == 3
        # Found unavailable at start: said once, and the bot ran on regardless.
        (warning,) = [r for r in caplog.records if r.name == "bot.dscgg.redislimit"]
        assert "1/3 of each limit" in warning.getMessage()
        assert bot_log.redact(f"url={password}") == "url=[redacted]"
    finally:
        bot_log.unregister_secret(password)
