"""Shared pieces of the process benches (latency, concurrency, memory, startup).

The bot runs as a real process through ``tests.e2e_launcher`` (see ``tests/e2e``); FakeDiscord runs
in the bench's own event loop so that interactions can be sent "at once" and timed on its clock;
FakeDscgg runs in a process of its own so that its work does not land on that loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from cryptography.fernet import Fernet

from bot.crypto import TokenCipher
from bot.db import Database, LinkRecordStore, TokenStore
from tests.e2e import REPO_ROOT, BotProcess, bot_env
from tests.fakes.discord import FakeDiscord

#: Printed on stderr by bench/probe_cog.py and bench/bare_client.py once discord.py fires on_ready.
READY_MARKER = r"BENCH READY (\d+)"
PROBE_EXTENSION = "bench.probe_cog"
BARE_CLIENT = "bench.bare_client"
INVITE = "https://discord.gg/bench"


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def new_key() -> str:
    return Fernet.generate_key().decode("ascii")


async def seed_tokens(
    database: Path, key: str, tokens: Mapping[int, str], *, set_by: int = 1, links: Sequence[str] = ()
) -> None:
    """Store ``{guild_id: dsc.gg token}`` in the bot's database, encrypted with ``key``, before it starts;
    ``links``: slugs every one of those servers manages (as if created there)."""
    database.parent.mkdir(parents=True, exist_ok=True)
    async with Database.open(database) as db:
        store = TokenStore(db, TokenCipher([key]))
        records = LinkRecordStore(db)
        for guild_id, token in tokens.items():
            await store.set(guild_id, token, set_by=set_by)
            for slug in links:
                await records.record(guild_id, slug, set_by)


@contextlib.asynccontextmanager
async def dscgg_process(seed: Mapping[str, Any], *options: str) -> AsyncIterator[str]:
    """``python -m tests.fakes.dscgg`` seeded with ``seed``; yields its base URL (…/v2)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(seed, handle)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fakes.dscgg", "--port", "0", "--seed-file", handle.name, "--no-record",
        *options, cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=30)).decode()
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        Path(handle.name).unlink(missing_ok=True)  # noqa: ASYNC240 - a local temporary file


async def dscgg_stats(base_url: str) -> dict[str, int]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(base_url.removesuffix("/v2") + "/_fake/stats") as response,
    ):
        stats: dict[str, int] = await response.json()
        return stats


@contextlib.asynccontextmanager
async def bot_process(
    fake: FakeDiscord,
    workdir: Path,
    *,
    dscgg_url: str = "http://127.0.0.1:9/v2",
    bare: bool = False,
    probe: bool = True,
    name: str = "bot",
    **settings: str,
) -> AsyncIterator[BotProcess]:
    """The bot (or, with ``bare``, the bare discord.py client) against ``fake``; always stopped after."""
    env = bot_env(fake, dscgg_url, workdir, **settings)
    if bare:
        env["E2E_BOT_MODULE"] = BARE_CLIENT
    elif probe:
        env["E2E_EXTRA_EXTENSIONS"] = PROBE_EXTENSION
    process = BotProcess(env=env, workdir=workdir, name=name)
    try:
        await process.start()
        yield process
    finally:
        await process.stop(timeout=15)
