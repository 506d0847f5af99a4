"""End-to-end, scaled out: two real ``python -m bot`` processes (SHARD_COUNT=2, one shard each) on one
PostgreSQL database and one Redis, serving two servers that share one dsc.gg token.

The fake dsc.gg enforces the documented per-key limits with every window scaled by ``WINDOW_SCALE``,
and the bots' limiters use the same scaled windows (``E2E_DSCGG_WINDOW_SCALE``): "3 creates per 60 s"
becomes "3 per 0.6 s", so a burst of 30 takes seconds. What is checked is what dsc.gg and the admins
saw, and what PostgreSQL holds. Needs TEST_DATABASE_URL and TEST_REDIS_URL (``tests.fixtures.services``).
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.engine import URL, make_url

from bot.audit_events import EventKind
from bot.db import Database
from bot.db.schema import audit_events, link_records
from tests.e2e import BotProcess, Driver, bot_env
from tests.fakes.discord import FakeDiscord, InteractionRecord
from tests.fakes.dscgg import FakeDscgg
from tests.fakes.proxy import TcpProxy
from tests.fixtures.storage import PostgresServer
from tests.harness import Message

pytestmark = pytest.mark.e2e

INVITE = "https://discord.gg/e2escale"
#: dsc.gg's windows, scaled: create_link's 3 per 60 s becomes 3 per 0.6 s (the limiter's margin: 6 ms).
WINDOW_SCALE = 0.01
BURST = 30
CREATED = "Created **dsc.gg/"


@pytest.fixture
async def database(postgres_server: PostgresServer) -> AsyncIterator[URL]:
    """A fresh PostgreSQL database for the test, dropped afterwards."""
    url = await postgres_server.create()
    try:
        yield url
    finally:
        await postgres_server.drop(url)


@pytest.fixture
async def dscgg() -> AsyncIterator[tuple[FakeDscgg, str]]:
    """The fake dsc.gg and a token of its own (Redis buckets are per token: no other run shares them)."""
    token = f"dscgg-scale-{secrets.token_hex(8)}"
    async with FakeDscgg(window_scale=WINDOW_SCALE) as fake:
        fake.add_key(token, user_id=7101, whitelisted=False)
        yield fake, token


@pytest.fixture
async def discord_fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(guilds=2) as fake:  # consecutive guilds: shard 0 and shard 1 of 2
        yield fake


@pytest.fixture
async def processes() -> AsyncIterator[list[BotProcess]]:
    started: list[BotProcess] = []
    yield started
    for process in started:
        await process.stop(timeout=10)


async def start_shards(
    processes: list[BotProcess],
    fake: FakeDiscord,
    dscgg: FakeDscgg,
    tmp_path: Path,
    database: URL,
    redis_url: str,
    **settings: str,
) -> tuple[BotProcess, BotProcess]:
    """Both processes, each running one of the 2 shards, connected."""
    shared = {
        "DATABASE_URL": database.render_as_string(hide_password=False),
        "REDIS_URL": redis_url,
        "RATE_LIMIT_PROCESSES": "2",
        "SHARD_COUNT": "2",
        "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "E2E_DSCGG_WINDOW_SCALE": str(WINDOW_SCALE),
        **settings,
    }
    bots = []
    for shard in (0, 1):
        workdir = tmp_path / f"shard{shard}"
        env = bot_env(fake, dscgg.base_url, workdir, SHARD_IDS=str(shard), **shared)
        env["HEALTH_FILE"] = str(workdir / "health")
        bot = BotProcess(env=env, workdir=workdir, name=f"shard{shard}")
        processes.append(bot)
        bots.append(await bot.start())
    await fake.wait_for(lambda: sorted(s.shard[0] for s in fake.identified_sessions) == [0, 1], 40)
    return bots[0], bots[1]


async def set_token(driver: Driver, guild: int, token: str) -> None:
    opened = await driver.command("dscgg token set", guild=guild)
    submitted = await driver.submit_modal(opened, {"token": token})
    await driver.final_message(submitted, contains="Saved.")


async def burst(driver: Driver, guilds: list[int], prefix: str) -> list[tuple[str, int, InteractionRecord]]:
    """``BURST`` /link create, alternately in each server, all sent at once: (slug, guild, record)."""
    sent = [(f"{prefix}{i:02d}", guilds[i % len(guilds)]) for i in range(BURST)]
    records = await asyncio.gather(
        *(driver.command("link create", {"slug": slug, "redirect": INVITE}, guild=g) for slug, g in sent)
    )
    return [(slug, guild, record) for (slug, guild), record in zip(sent, records, strict=True)]


async def answer(driver: Driver, record: InteractionRecord, timeout: float) -> tuple[str, float]:  # noqa: ASYNC109
    """The command's final text and the seconds from sending it to seeing it."""
    message = await driver.final_message(record, timeout=timeout)
    return message.text(), time.monotonic() - record.t_sent_monotonic


async def assert_committed(database: URL, reported: dict[str, int]) -> None:
    """Every link reported as created has its record and its audit event in PostgreSQL."""
    async with Database.open(make_url(database)) as db:
        records = {(r.guild_id, r.slug) for r in await db.fetch_all(select(link_records))}
        events = {
            (r.guild_id, r.slug)
            for r in await db.fetch_all(
                select(audit_events).where(audit_events.c.kind == EventKind.LINK_CREATED.value)
            )
        }
    expected = {(guild, slug) for slug, guild in reported.items()}
    assert expected <= records
    assert expected <= events


async def test_two_shard_processes_share_the_token_limits_and_survive_a_sigkill(
    discord_fake: FakeDiscord,
    dscgg: tuple[FakeDscgg, str],
    processes: list[BotProcess],
    tmp_path: Path,
    database: URL,
    redis_url: str,
) -> None:
    fake_dscgg, token = dscgg
    first, second = await start_shards(
        processes,
        discord_fake,
        fake_dscgg,
        tmp_path,
        database,
        redis_url,
        # Room to wait for a slot through the whole burst (a POST keeps DSCGG_TIMEOUT of the deadline).
        DSCGG_TIMEOUT="3",
        COMMAND_DEADLINE="15",
        DSCGG_MAX_RATE_LIMIT_WAIT="12",
    )
    driver = Driver(discord_fake)
    guilds = discord_fake.guild_ids
    for guild in guilds:  # two servers on two shards (two processes), one dsc.gg token
        await set_token(driver, guild, token)

    started = time.monotonic()
    sent = await burst(driver, guilds, "k")
    # Mid-burst: the process serving the second server is killed.
    await fake_dscgg_wait(fake_dscgg, BURST // 3)
    second.send_signal(signal.SIGKILL)
    await second.wait(timeout=10)

    # The other process goes on: every command of its server is answered, each link created.
    survivors = [(slug, record) for slug, guild, record in sent if guild == guilds[0]]
    answers = await asyncio.gather(*(answer(driver, record, 40) for _, record in survivors))
    took = time.monotonic() - started
    # Each is created, or refused with the friendly "over dsc.gg's limit" (slots the killed process
    # booked hold the window until the shared limiter's lease on them runs out): never left hanging.
    assert all(CREATED in text or "over dsc.gg's limit" in text for text, _ in answers)
    assert any(CREATED in text for text, _ in answers)
    assert fake_dscgg.rate_limited_responses == 0  # not one upstream 429, with two processes at it
    reported = {
        slug: guilds[0] for (slug, _), (text, _) in zip(survivors, answers, strict=True) if CREATED in text
    }
    for slug, guild, record in sent:  # what the killed process reported before it died
        data = discord_fake.messages.get(record.original_message_id or 0)
        if guild == guilds[1] and data is not None and CREATED in Message(data).text():
            reported[slug] = guild
    assert set(reported) <= set(fake_dscgg.links)
    await assert_committed(database, reported)
    print(f"\nburst of {BURST} over 2 processes, one killed: {took:.2f} s, 429s: 0")
    assert first.returncode is None


async def fake_dscgg_wait(fake: FakeDscgg, creates: int) -> None:
    def enough() -> bool:
        return len(fake.requests_to("create_link")) >= creates

    deadline = time.monotonic() + 30
    while not enough():
        assert time.monotonic() < deadline, "the burst did not reach dsc.gg"
        await asyncio.sleep(0.01)


async def test_redis_stopped_during_a_burst_no_429_and_every_command_answered_in_time(
    discord_fake: FakeDiscord,
    dscgg: tuple[FakeDscgg, str],
    processes: list[BotProcess],
    tmp_path: Path,
    database: URL,
    redis_url: str,
) -> None:
    fake_dscgg, token = dscgg
    target = make_url(redis_url.replace("redis://", "postgresql://", 1))  # only to parse host and port
    async with TcpProxy(target.host or "127.0.0.1", target.port or 6379) as proxy:
        proxied = redis_url.replace(f"{target.host}:{target.port or 6379}", f"127.0.0.1:{proxy.port}", 1)
        # The default settings: a create waits at most 2 s for a slot (COMMAND_DEADLINE - DSCGG_TIMEOUT).
        await start_shards(processes, discord_fake, fake_dscgg, tmp_path, database, proxied)
        driver = Driver(discord_fake)
        guilds = discord_fake.guild_ids
        for guild in guilds:
            await set_token(driver, guild, token)

        sent = await burst(driver, guilds, "r")
        await fake_dscgg_wait(fake_dscgg, 4)
        proxy.cut()  # Redis is gone mid-burst
        answers = await asyncio.gather(*(answer(driver, record, 20) for _, _, record in sent))

    assert fake_dscgg.rate_limited_responses == 0
    for _, _, record in sent:  # acknowledged within Discord's 3 s
        first = record.callbacks[0]
        assert first.accepted
        assert first.t_monotonic - record.t_sent_monotonic < 3.0
    slowest = max(seconds for _, seconds in answers)
    created = sum(CREATED in text for text, _ in answers)
    print(f"\nRedis cut mid-burst: {created}/{BURST} created, slowest answer {slowest:.2f} s, 429s: 0")
    assert slowest < 3.0
