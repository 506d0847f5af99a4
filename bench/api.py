"""The HTTP API of the real bot process: what authentication and the server lookup cost.

Same process, same run: ``GET /v1/guilds/{id}`` with an API key (rate limit, key lookup by digest,
the server's token status, settings and counts from the database) against a bare endpoint on the same
server (``GET /problems/not-found``: the same envelope and router, no credential, no database).

- throughput: requests/s of each with 8 concurrent clients, in alternating 2-second rounds; goal:
  authenticated ÷ bare >= 0.5;
- added latency: one request at a time, alternating, p50 and p99 of authenticated minus bare;
- memory: RSS of the bot after READY with the API off, and with it on after the load above; goal:
  at most 15 MiB added.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.support import READY_MARKER, bot_process, ms, new_key, percentile, seed_tokens
from bot.db import Database
from bot.db.apikeys import ApiKeyStore
from bot.services.apikeys import KEY_PREFIX, digest_of
from tests.e2e import vm_rss_kib
from tests.fakes.discord import FakeDiscord

CONCURRENCY = 8
ROUND_SECONDS = 2.0
ROUNDS = 3
LATENCY_SAMPLES = 400
RATIO_GOAL = 0.5
RSS_GOAL_MIB = 15.0
#: The bench key must not hit the per-credential limit.
RATE_LIMIT = "100000000"


async def _load(session: aiohttp.ClientSession, url: str, headers: dict[str, str], seconds: float) -> int:
    """Requests answered 200 by CONCURRENCY clients in ``seconds``."""
    done = 0
    until = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done
        while time.perf_counter() < until:
            async with session.get(url, headers=headers) as response:
                await response.read()
                if response.status == 200:
                    done += 1

    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    return done


async def _once(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    async with session.get(url, headers=headers) as response:
        await response.read()
        assert response.status == 200, response.status
    return time.perf_counter() - started


async def _rss_after_ready(fake: FakeDiscord, workdir: Path, db_key: str) -> int:
    async with bot_process(
        fake, workdir, name="rss", LOG_LEVEL="WARNING", TOKEN_ENCRYPTION_KEYS=db_key
    ) as bot:
        await bot.wait_for_log(READY_MARKER, timeout=60)
        await asyncio.sleep(1.0)
        return vm_rss_kib(bot.pid)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def main() -> None:
    port = _free_port()
    db_key = new_key()
    api_key = KEY_PREFIX + "b" * 43
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        workdir = Path(tmp)
        async with FakeDiscord(guilds=1) as fake:
            guild = fake.guild_ids[0]
            database = workdir / "data" / "bot.sqlite3"
            await seed_tokens(database, db_key, {guild: "bench-api-token-0001"}, links=["one", "two"])
            async with Database.open(database) as db:
                await ApiKeyStore(db).create(guild, "bench", digest_of(api_key), 1)
            async with bot_process(
                fake,
                workdir,
                TOKEN_ENCRYPTION_KEYS=db_key,
                LOG_LEVEL="WARNING",
                API_PORT=str(port),
                API_RATE_LIMIT=RATE_LIMIT,
            ) as bot:
                await bot.wait_for_log(READY_MARKER, timeout=60)
                base = f"http://127.0.0.1:{port}"
                authed = (f"{base}/v1/guilds/{guild}", {"Authorization": f"Bearer {api_key}"})
                bare: tuple[str, dict[str, str]] = (f"{base}/problems/not-found", {})
                connector = aiohttp.TCPConnector(limit=CONCURRENCY)
                async with aiohttp.ClientSession(connector=connector) as session:
                    for url, headers in (authed, bare):  # warm up
                        await _load(session, url, headers, 0.5)
                    counts = {"auth": 0, "bare": 0}
                    for _ in range(ROUNDS):
                        counts["bare"] += await _load(session, *bare, ROUND_SECONDS)
                        counts["auth"] += await _load(session, *authed, ROUND_SECONDS)
                    samples: dict[str, list[float]] = {"auth": [], "bare": []}
                    for _ in range(LATENCY_SAMPLES):
                        samples["bare"].append(await _once(session, *bare))
                        samples["auth"].append(await _once(session, *authed))
                rss_on = vm_rss_kib(bot.pid)
            rss_off = await _rss_after_ready(fake, workdir, db_key)

    seconds = ROUNDS * ROUND_SECONDS
    bare_rps, auth_rps = counts["bare"] / seconds, counts["auth"] / seconds
    ratio = auth_rps / bare_rps if bare_rps else 0.0
    print(f"{CONCURRENCY} concurrent clients, {ROUNDS} alternating rounds of {ROUND_SECONDS:g} s each")
    print(f"bare GET /problems/not-found:         {bare_rps:8.0f} requests/s")
    print(f"authenticated GET /v1/guilds/{{id}}:    {auth_rps:8.0f} requests/s")
    verdict = "ok" if ratio >= RATIO_GOAL else "MISSED"
    print(f"authenticated / bare: {ratio:.2f} (goal >= {RATIO_GOAL:g}, {verdict})")
    for p in (50, 99):
        bare_p, auth_p = percentile(samples["bare"], p), percentile(samples["auth"], p)
        added_ms = (auth_p - bare_p) * 1000
        print(f"p{p}: bare {ms(bare_p)} ms, authenticated {ms(auth_p)} ms, added {added_ms:+.2f} ms")
    added = (rss_on - rss_off) / 1024
    verdict = "ok" if added <= RSS_GOAL_MIB else "MISSED"
    print(
        f"RSS after READY: API off {rss_off / 1024:.1f} MiB, API on after the load {rss_on / 1024:.1f} MiB, "
        f"added {added:+.1f} MiB (goal <= {RSS_GOAL_MIB:g} MiB, {verdict})"
    )
