"""``python -m bot [run|sync|api|migrate-db --to URL]``: settings → logging → HTTP session + database →
HTTP API → DscBot.

``run`` (the default) connects to Discord and serves commands until SIGTERM or SIGINT, and the HTTP API
(``bot.api``) unless API_PORT is empty. Commands are synced at start only when their definitions
changed since the last sync. ``sync`` logs in, forces a command sync (to DEV_GUILD_ID if set, else
globally) and exits. ``api`` serves the HTTP API alone: it logs in to Discord's REST API (audit posts)
but opens no gateway connection and registers no commands, so several can run beside the bot.
``migrate-db --to URL`` copies the database (DATABASE_URL, or the SQLite file DATABASE_PATH) into the
empty database at URL and exits (``bot.db.copy``).

Exit codes: 0 after a clean stop (a signal at any point, start-up included), 1 when Discord refuses the
token, cannot be reached or start-up fails, 2 for a missing or invalid setting. Problems are printed
as one line on stderr, never with a secret or a traceback; details go to the (redacted) log.

On SIGTERM/SIGINT new interactions are answered with "the bot is restarting", running commands get
``bot.client.SHUTDOWN_GRACE`` seconds to finish, and everything is closed within
``bot.client.SHUTDOWN_BUDGET`` seconds of the signal (8 s, under Docker's 10 s grace). A signal before
the bot is connected stops the start-up where it is.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, NoReturn

# Heavier imports (discord.py, aiohttp, the database) happen inside the functions, so that a
# settings error never waits on them and Ctrl+C during start-up is caught by ``main``.
if TYPE_CHECKING:
    from bot.client import DscBot
    from bot.dscgg.ratelimit import Limiter
    from bot.settings import Settings

__all__ = ["LOGIN_TIMEOUT", "main", "migrate_db", "run"]

log = logging.getLogger("bot")

PROG = "dscgg-bot"
#: Seconds Discord gets to answer the login (token check, application info) before start-up fails.
LOGIN_TIMEOUT = 30.0


def _say(message: str) -> None:
    from bot.log import redact

    print(f"{PROG}: {redact(message)}", file=sys.stderr)


class CannotReachDiscord(Exception):
    """Discord's API did not answer the login (no connection, DNS failure, or no answer in time)."""


class _Stopper:
    """What SIGTERM/SIGINT do, depending on how far the start got.

    Before the bot exists (keys, database, migrations) the request is noted and start-up ends right
    after. While the bot logs in, runs setup_hook or connects, the task doing that is cancelled. Once
    the bot is ready, it shuts down: running commands finish, then everything closes.
    """

    def __init__(self) -> None:
        self.signal: str | None = None
        self.bot: DscBot | None = None
        self.starting: asyncio.Task[None] | None = None
        self._shutdown: asyncio.Task[None] | None = None
        self._installed: list[signal.Signals] = []
        #: Set by a signal once ``python -m bot api`` is serving (``stop_serving_armed``): serving ends.
        self.stop_serving = asyncio.Event()
        self.stop_serving_armed = False

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self.request, sig.name)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - not on the main thread / Windows
                log.warning("Cannot handle %s here; stop the bot with Ctrl+C", sig.name)
            else:
                self._installed.append(sig)

    def uninstall(self) -> None:
        loop = asyncio.get_running_loop()
        while self._installed:
            loop.remove_signal_handler(self._installed.pop())

    def request(self, name: str) -> None:
        if self.signal is not None:
            log.info("Received %s again; still shutting down", name)
            return
        self.signal = name
        log.info("Received %s", name)
        bot = self.bot
        if bot is None:
            return  # checked once the database is open, before the bot is built
        from bot.client import SHUTDOWN_GRACE

        bot.begin_shutdown(SHUTDOWN_GRACE)  # the deadline counts from the signal
        if bot.api_only and self.stop_serving_armed:
            self.stop_serving.set()
        elif bot.is_ready():
            self._shutdown = asyncio.get_running_loop().create_task(bot.close(), name="shutdown")
        elif self.starting is not None and not self.starting.done():
            self.starting.cancel()


async def run(
    settings: Settings, *, sync_only: bool = False, api_only: bool = False, handle_signals: bool = True
) -> int:
    """Run the bot (or only sync its commands, or serve only the API) until it stops. Returns the
    process exit code."""
    from bot.log import register_secret

    register_secret(settings.discord_token.get_secret_value())
    _register_database_password(settings)
    stopper = _Stopper()
    if handle_signals:
        stopper.install()  # before the database and migrations, so a signal there is clean too
    try:
        return await _run(settings, stopper, sync_only=sync_only, api_only=api_only)
    finally:
        stopper.uninstall()


async def _run(settings: Settings, stopper: _Stopper, *, sync_only: bool, api_only: bool = False) -> int:
    import aiohttp
    import discord
    from sqlalchemy.exc import SQLAlchemyError

    from bot.api.server import ApiServer, ApiStartError
    from bot.client import DscBot
    from bot.crypto import TokenCipher
    from bot.db import CannotOpenDatabase, Database, SchemaTooNew
    from bot.settings import SettingsError, resolve_encryption_keys

    token = settings.discord_token.get_secret_value()
    if api_only and settings.api_port is None:
        _say("API_PORT is empty, which turns the HTTP API off: set API_PORT to serve it with `api`")
        return 2
    try:
        cipher = TokenCipher(resolve_encryption_keys(settings))
    except SettingsError as exc:
        _say(str(exc))
        return 2
    try:
        async with (
            # The dsc.gg session serves every server's token: no cookie may carry over between them.
            aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session,
            Database.open(settings.database) as db,
            _rate_limiter(settings) as rate_limiter,
        ):
            if stopper.signal is not None:
                log.info("Stopped before connecting to Discord")
                return 0
            bot = DscBot(
                settings,
                db,
                session,
                cipher=cipher,
                force_sync=sync_only,
                rate_limiter=rate_limiter,
                api_only=api_only,
            )
            stopper.bot = bot
            async with bot:
                if settings.api_port is not None and not sync_only and stopper.signal is None:
                    api = ApiServer(bot, host=settings.api_host, port=settings.api_port)
                    try:
                        await api.start()
                    except ApiStartError as exc:
                        log.error("HTTP API not started: %s", exc)
                        _say(str(exc))
                        return 1
                    bot.api = api
                if stopper.signal is None:
                    stopper.starting = asyncio.get_running_loop().create_task(
                        _start(bot, token, sync_only=sync_only, stopper=stopper), name="discord-start"
                    )
                    try:
                        await stopper.starting
                    except asyncio.CancelledError:
                        current = asyncio.current_task()
                        if stopper.signal is None or (current is not None and current.cancelling()):
                            raise
                        log.info("Start-up interrupted by %s", stopper.signal)
    except CannotReachDiscord as exc:
        log.warning("Cannot reach Discord: %s", exc)
        _say(f"cannot reach Discord ({_discord_host()}): {exc}")
        return 1
    except discord.LoginFailure:
        log.error("Discord refused the bot token")
        _say("Discord refused DISCORD_TOKEN: check the bot token in the Discord developer portal")
        return 1
    except (SchemaTooNew, CannotOpenDatabase) as exc:
        log.error("%s", exc)
        _say(str(exc))
        return 1
    except discord.HTTPException as exc:
        log.error("Discord answered HTTP %s (code %s) during start-up: %s", exc.status, exc.code, exc.text)
        _say(f"Discord answered HTTP {exc.status} (code {exc.code}) during start-up")
        return 1
    except discord.ConnectionClosed as exc:
        log.error("Discord closed the gateway connection with code %s: %s", exc.code, exc.reason)
        _say(f"Discord closed the gateway connection (code {exc.code}); see the log")
        return 1
    except SQLAlchemyError as exc:
        log.exception("Database error")
        reason = str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0]
        _say(f"database error: {reason}; the log has the details")
        return 1
    except (aiohttp.ClientError, OSError) as exc:
        log.exception("Start-up failed")
        _say(
            f"start-up failed: {type(exc).__name__}: {getattr(exc, 'strerror', None) or exc or 'see the log'}"
        )
        return 1
    except Exception as exc:
        log.exception("Stopped by an unexpected error")
        _say(f"stopped by an unexpected error ({type(exc).__name__}); the log has the details")
        return 1
    log.info("Stopped")
    return 0


def _register_database_password(settings: Settings) -> None:
    """The database password never reaches the log or the terminal."""
    if settings.database_url is None:
        return
    from bot.db.urls import database_url
    from bot.log import register_secret

    password = database_url(settings.database_url.get_secret_value()).password
    if password:
        register_secret(password)


async def migrate_db(settings: Settings, target: str) -> int:
    """``python -m bot migrate-db --to URL``: copy the bot's database into the empty one at ``target``.

    Prints what it copied and what to change; returns the exit code (2: ``target`` is not a usable URL,
    1: it could not be copied, 0: done).
    """
    from sqlalchemy.exc import SQLAlchemyError

    from bot.db import CannotOpenDatabase, Database, SchemaTooNew
    from bot.db.copy import CopyRefused, copy_database
    from bot.db.urls import BadDatabaseURL, database_url
    from bot.log import register_secret

    _register_database_password(settings)
    try:
        target_url = database_url(target) if "://" in target else None
    except BadDatabaseURL as exc:
        target_url = None
        problem = str(exc)
    else:
        problem = f"is not a database URL; use {_TARGET_EXAMPLE}"
    if target_url is None:
        _say(f"--to {problem}")
        return 2
    if target_url.password:
        register_secret(target_url.password)
    try:
        async with Database.open(settings.database) as source, Database.open(target_url) as destination:
            print(f"Copying {source.name} to {destination.name}")
            print("(Stop the bot first: changes made while copying are not copied.)")
            counts = await copy_database(source, destination)
    except (CannotOpenDatabase, SchemaTooNew, CopyRefused) as exc:
        _say(str(exc))
        return 1
    except SQLAlchemyError as exc:
        log.exception("Copying the database failed")
        reason = str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0]
        _say(f"copying the database failed, nothing was copied: {reason}")
        return 1
    width = max(len(name) for name in counts)
    for name, rows in counts.items():
        print(f"  {name:<{width}}  {rows} row{'s' if rows != 1 else ''}")
    print(f"Copied {sum(counts.values())} rows in one transaction; every table's row count matches.")
    print("Now set this in .env (or the environment) and start the bot:")
    shown = target_url.render_as_string(hide_password=True)
    password_note = " (with the real password in place of ***)" if target_url.password else ""
    print(f"  DATABASE_URL={shown}{password_note}")
    print(
        "Keep TOKEN_ENCRYPTION_KEYS (or the token.key file next to DATABASE_PATH): the stored dsc.gg tokens "
        "were copied still encrypted with it. The old database keeps its rows (like at any start, it was "
        "first brought to the current schema)."
    )
    return 0


_TARGET_EXAMPLE = "postgresql+asyncpg://user:password@host:5432/database"


@contextlib.asynccontextmanager
async def _rate_limiter(settings: Settings) -> AsyncIterator[Limiter | None]:
    """The dsc.gg rate limiter shared through REDIS_URL; None (each process keeps its own) without it."""
    if settings.redis_url is None:
        yield None
        return
    from urllib.parse import urlsplit

    from bot.dscgg.redislimit import RedisRateLimiter
    from bot.log import register_secret

    url = settings.redis_url.get_secret_value()
    register_secret(urlsplit(url).password)
    async with RedisRateLimiter.from_url(url, processes=settings.rate_limit_processes) as limiter:
        if await limiter.ping():  # a failure is logged by the limiter, which then falls back
            log.info("dsc.gg rate limits are shared through Redis")
        yield limiter


def _discord_host() -> str:
    from urllib.parse import urlsplit

    import discord

    return urlsplit(discord.http.Route.BASE).hostname or "discord.com"


async def _start(bot: DscBot, token: str, *, sync_only: bool, stopper: _Stopper | None = None) -> None:
    """Log in (bounded by LOGIN_TIMEOUT until Discord answers), then connect unless only syncing (or
    serving the API alone: then wait for a signal)."""
    import aiohttp

    reached = False
    try:
        async with asyncio.timeout(LOGIN_TIMEOUT) as limit:

            def logged_in() -> None:
                nonlocal reached
                reached = True
                limit.reschedule(None)  # from here on it is the bot's own start-up, not Discord's answer

            bot.on_logged_in = logged_in
            try:
                await bot.login(token)
            except (aiohttp.ClientConnectionError, OSError) as exc:
                if reached:
                    raise
                detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
                raise CannotReachDiscord(detail) from exc
    except TimeoutError:
        if reached:
            raise
        raise CannotReachDiscord(f"no answer within {LOGIN_TIMEOUT:g} s") from None
    if bot.api_only and stopper is not None:
        log.info("Serving the HTTP API only: no gateway connection, no commands")
        stopper.stop_serving_armed = True
        if stopper.signal is None:
            await stopper.stop_serving.wait()
        return
    if not sync_only:
        await bot.connect()


def _interrupted(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    # Until run() installs its own handlers, SIGTERM stops the process like Ctrl+C: quietly, exit 0.
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl+C/SIGTERM before the bot's handlers were in place: nothing to close
        return 0


def _main(argv: Sequence[str] | None) -> int:
    from bot.settings import SettingsError, load_settings

    parser = argparse.ArgumentParser(prog="python -m bot", description="Run the dsc.gg Discord bot.")
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=("run", "sync", "api", "migrate-db"),
        help="run the bot (default), force a command sync and exit, serve the HTTP API alone, "
        "or copy the database into another one (migrate-db)",
    )
    parser.add_argument(
        "--to",
        metavar="URL",
        help="migrate-db: the empty database to copy into, e.g. " + _TARGET_EXAMPLE,
    )
    args = parser.parse_args(argv)
    if (args.command == "migrate-db") != (args.to is not None):
        parser.error("--to URL goes with migrate-db, and migrate-db needs it")
    try:
        settings = load_settings()
    except SettingsError as exc:
        _say(str(exc))
        return 2
    from bot.log import setup_logging

    setup_logging(settings.log_level)
    if args.command == "migrate-db":
        return asyncio.run(migrate_db(settings, args.to))
    return asyncio.run(run(settings, sync_only=args.command == "sync", api_only=args.command == "api"))


if __name__ == "__main__":
    raise SystemExit(main())
