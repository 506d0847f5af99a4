"""``python -m bot [run|sync]``: settings → logging → HTTP session + database → DscBot.

``run`` (the default) connects to Discord and serves commands until SIGTERM or SIGINT. Commands are
synced at start only when their definitions changed since the last sync. ``sync`` logs in, forces a
command sync (to DEV_GUILD_ID if set, else globally) and exits.

Exit codes: 0 after a clean stop, 1 when Discord refuses the token or start-up fails, 2 for a missing
or invalid setting. Problems are printed as one line on stderr, never with a secret or a traceback.

On SIGTERM/SIGINT new interactions are answered with "the bot is restarting", running commands get
up to ``SHUTDOWN_GRACE`` seconds to finish, then the bot, the HTTP session and the database close.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sqlite3
import sys
from collections.abc import Sequence

import aiohttp
import discord

from bot.crypto import TokenCipher
from bot.db import Database, SchemaTooNew
from bot.log import register_secret, setup_logging
from bot.settings import Settings, SettingsError, load_settings, resolve_encryption_keys

__all__ = ["main", "run"]

log = logging.getLogger("bot")

PROG = "dscgg-bot"
#: Seconds running commands get to finish after SIGTERM/SIGINT (Docker's default grace is 10 s).
SHUTDOWN_GRACE = 8.0


def _say(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


async def run(settings: Settings, *, sync_only: bool = False, handle_signals: bool = True) -> int:
    """Run the bot (or only sync its commands) until it stops. Returns the process exit code."""
    from bot.client import DscBot  # imported here so that settings errors never wait on discord.py

    token = settings.discord_token.get_secret_value()
    register_secret(token)
    try:
        cipher = TokenCipher(resolve_encryption_keys(settings))
    except SettingsError as exc:
        _say(str(exc))
        return 2
    try:
        async with (
            aiohttp.ClientSession() as session,
            Database.open(settings.database_path) as db,
        ):
            bot = DscBot(settings, db, session, cipher=cipher, force_sync=sync_only)
            async with bot:
                if sync_only:
                    await bot.login(token)  # setup_hook runs here and syncs (forced)
                    return 0
                if handle_signals:
                    _install_signal_handlers(bot)
                await bot.start(token)
    except discord.LoginFailure:
        _say("Discord refused DISCORD_TOKEN: check the bot token in the Discord developer portal")
        return 1
    except discord.PrivilegedIntentsRequired:
        _say("Discord refused the requested intents")
        return 1
    except SchemaTooNew as exc:
        _say(str(exc))
        return 1
    except discord.HTTPException as exc:
        _say(f"Discord answered HTTP {exc.status} (code {exc.code}) during start-up")
        return 1
    except sqlite3.Error as exc:
        _say(f"{settings.database_path}: cannot open the database ({exc})")
        return 1
    except (aiohttp.ClientError, OSError) as exc:
        _say(f"start-up failed: {type(exc).__name__}: {getattr(exc, 'strerror', None) or 'see the log'}")
        log.debug("Start-up failure", exc_info=True)
        return 1
    log.info("Stopped")
    return 0


def _install_signal_handlers(bot: discord.Client) -> None:
    from bot.client import DscBot

    assert isinstance(bot, DscBot)
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Task[None]] = []

    def stop(name: str) -> None:
        if stopping:
            log.info("Received %s again; still shutting down", name)
            return
        log.info("Received %s", name)
        stopping.append(loop.create_task(bot.shutdown(SHUTDOWN_GRACE), name="shutdown"))

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop, sig.name)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - not on the main thread / Windows
            log.warning("Cannot handle %s here; stop the bot with Ctrl+C", sig.name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Run the dsc.gg Discord bot.")
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=("run", "sync"),
        help="run the bot (default), or force a command sync and exit",
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        _say(str(exc))
        return 2
    setup_logging(settings.log_level)
    try:
        return asyncio.run(run(settings, sync_only=args.command == "sync"))
    except KeyboardInterrupt:  # only before the signal handlers are in place
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
