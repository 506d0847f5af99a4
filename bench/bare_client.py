"""The baseline of the memory and startup benches: a bare discord.py client configured like DscBot.

Same intents (``Intents.none()`` + guilds) and cache settings (no message cache, no member cache,
no chunking), no commands, no database, no dsc.gg client. Run through the e2e launcher::

    E2E_BOT_MODULE=bench.bare_client python -m tests.e2e_launcher

Prints ``BENCH READY <guilds>`` on stderr at ``on_ready`` and runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import discord


def make_client() -> discord.Client:
    intents = discord.Intents.none()
    intents.guilds = True
    return discord.Client(
        intents=intents,
        max_messages=None,
        member_cache_flags=discord.MemberCacheFlags.none(),
        chunk_guilds_at_startup=False,
        allowed_mentions=discord.AllowedMentions.none(),
    )


async def main() -> None:
    client = make_client()

    @client.event
    async def on_ready() -> None:
        print(f"BENCH READY {len(client.guilds)}", file=sys.stderr, flush=True)

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: loop.create_task(client.close()))
    async with client:
        await client.start(os.environ["DISCORD_TOKEN"])


if __name__ == "__main__":
    asyncio.run(main())
