"""Resident memory after READY: the bot against a bare discord.py client, 1 000 and 10 000 servers.

Both processes run through the e2e launcher against the same FakeDiscord (one GUILD_CREATE per server:
3 channels, 3 roles, the bot's member) with the same intents and cache settings; the bare client is
bench/bare_client.py. VmRSS is read from /proc once discord.py has fired ``on_ready`` (every server
cached) and the process has been idle for a moment; the larger of two readings is kept. The bot gets
a fresh database each time and loads bench/probe_cog.py (its READY marker; a few KiB). Goal: ratio <= 1.3.

Also printed: the cost of one more server in each process (slope between the two counts) and the bot's
fixed extra (its imports: pydantic and pydantic-settings, cryptography, aiosqlite, its own models).
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from bench.support import READY_MARKER, bot_process
from tests.e2e import vm_rss_kib
from tests.fakes.discord import FakeDiscord

SERVER_COUNTS = (1_000, 10_000)
GOAL = 1.3
SETTLE = 1.0


async def rss_after_ready(fake: FakeDiscord, workdir: Path, *, bare: bool) -> int:
    async with bot_process(
        fake, workdir, bare=bare, name="bare" if bare else "bot", LOG_LEVEL="WARNING"
    ) as proc:
        ready = await proc.wait_for_log(READY_MARKER, timeout=120)
        assert int(ready.group(1)) == fake.guild_count, ready.group(0)
        first = vm_rss_kib(proc.pid)
        await asyncio.sleep(SETTLE)
        return max(first, vm_rss_kib(proc.pid))


async def main() -> None:
    print(f"{'servers':>8} {'bare MiB':>9} {'bot MiB':>8} {'ratio':>6}  goal")
    readings: dict[int, tuple[int, int]] = {}
    for count in SERVER_COUNTS:
        async with FakeDiscord(guilds=count) as fake:
            with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
                bare = await rss_after_ready(fake, Path(tmp) / "bare", bare=True)
            with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
                bot = await rss_after_ready(fake, Path(tmp) / "bot", bare=False)
        readings[count] = (bare, bot)
        ratio = bot / bare
        verdict = "ok" if ratio <= GOAL else "MISSED"
        print(f"{count:>8} {bare / 1024:>9.1f} {bot / 1024:>8.1f} {ratio:>6.2f}  <= {GOAL:g} {verdict}")
    (low, (bare_low, bot_low)), (high, (bare_high, bot_high)) = sorted(readings.items())[:2]
    servers = high - low
    bare_slope, bot_slope = (bare_high - bare_low) / servers, (bot_high - bot_low) / servers
    print(
        f"per extra server: bare {bare_slope:.2f} KiB, bot {bot_slope:.2f} KiB; "
        f"fixed extra of the bot: {(bot_low - bare_low) / 1024:.1f} MiB at {low} servers"
    )
