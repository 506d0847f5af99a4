"""Store operations per second: PostgreSQL against SQLite, same operations, same run.

The two operations a command does most: a WRITE is what ``/link create`` stores — a link record
upserted and its audit event (with its log-channel post queued) in one transaction, as
``LinkService`` does through ``AuditLog.transaction()``; a READ is one page of a server's links
(``/link list``, ``LinkRecordStore.page``, 10 of 200). Each is run OPERATIONS times spread over
SERVERS servers, first one at a time (1 worker), then 16 at a time (16 concurrent commands), on a new
SQLite file and on a new database of the PostgreSQL server at ``BENCH_DATABASE_URL`` (else
``TEST_DATABASE_URL``, else ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``), created for the
run and dropped after it. PostgreSQL unreachable: its column is skipped, with the reason.

Both run on this machine, so PostgreSQL's figures include a loopback round trip per statement;
SQLite's include aiosqlite's thread hop. No goal: the figures say what a server costs per operation.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from bot.crypto import TokenCipher
from bot.db import (
    AuditEventStore,
    CannotOpenDatabase,
    Database,
    GuildSettingsStore,
    LinkRecordStore,
    TokenStore,
)
from bot.db.urls import database_url, display

DEFAULT_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
OPERATIONS = 2000
SERVERS = 50
LINKS_PER_SERVER = 200
PAGE = 10
CONCURRENCY = (1, 16)
FIRST_GUILD = 1_100_000_000_000_000_000


async def _admin(server: URL, statement: str) -> None:
    engine = create_async_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def _run(operation: Callable[[int], Awaitable[object]], workers: int) -> float:
    """Operations per second of ``operation(i)`` for i in 0..OPERATIONS-1, ``workers`` at a time."""
    numbers = iter(range(OPERATIONS))

    async def worker() -> None:
        for number in numbers:
            await operation(number)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return OPERATIONS / (time.perf_counter() - started)


async def _measure(db: Database) -> dict[str, float]:
    links, events = LinkRecordStore(db), AuditEventStore(db, keep=1000)
    settings, tokens = GuildSettingsStore(db), TokenStore(db, TokenCipher([Fernet.generate_key().decode()]))
    guilds = [FIRST_GUILD + n for n in range(SERVERS)]
    for guild in guilds:  # as in a server in use: a token, a log channel, links to list
        async with db.transaction() as conn:
            await tokens.set(guild, f"bench-token-{guild}", set_by=1, conn=conn)
            await settings.set_log_channel(guild, guild + 1, conn=conn)
            for number in range(LINKS_PER_SERVER):
                await links.record(guild, f"seeded-{number:03d}", 1, conn=conn)

    async def write(number: int) -> None:
        guild = guilds[number % SERVERS]
        async with events.transaction() as conn:
            await links.record(guild, f"link-{number}", 2, conn=conn)
            await events.add(guild, "link_created", 2, f"link-{number}", {"v": 1}, conn=conn)

    async def read(number: int) -> None:
        page = await links.page(guilds[number % SERVERS], (number % 20) * PAGE, PAGE)
        assert len(page) == PAGE

    figures: dict[str, float] = {}
    for workers in CONCURRENCY:
        figures[f"write x{workers}"] = await _run(write, workers)
        figures[f"read x{workers}"] = await _run(read, workers)
    return figures


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as tmp:
        async with Database.open(Path(tmp) / "bot.sqlite3") as db:
            sqlite = await _measure(db)

    server = database_url(
        os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL") or DEFAULT_SERVER
    )
    name = f"dscgg_bench_{secrets.token_hex(4)}"
    postgres: dict[str, float] | None = None
    skipped = ""
    try:
        await _admin(server, f'CREATE DATABASE "{name}"')
    except Exception as exc:  # unreachable, refused, no right to create a database
        skipped = f"PostgreSQL at {display(server)} skipped: {type(exc).__name__}: {str(exc).splitlines()[0]}"
    else:
        try:
            async with Database.open(server.set(database=name)) as db:
                postgres = await _measure(db)
        except CannotOpenDatabase as exc:
            skipped = f"PostgreSQL skipped: {exc}"
        finally:
            await _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    print(
        f"store operations per second, {OPERATIONS} each over {SERVERS} servers; 'xN': N at a time "
        f"(write = link record + audit event in one transaction; read = a page of {PAGE} of "
        f"{LINKS_PER_SERVER} links)"
    )
    print(f"{'':<10} {'SQLite':>9} {'PostgreSQL':>11} {'PG/SQLite':>10}")
    for label, rate in sqlite.items():
        if postgres is None:
            print(f"{label:<10} {rate:>9.0f} {'-':>11} {'-':>10}")
        else:
            print(f"{label:<10} {rate:>9.0f} {postgres[label]:>11.0f} {postgres[label] / rate:>10.2f}")
    if postgres is None:
        print(skipped)
    else:
        print(f"PostgreSQL: a new database on {display(server)}, dropped after the run")
