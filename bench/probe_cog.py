"""Bench-only extension, never part of the product: ``/ping`` and a READY marker.

Loaded into the real bot by ``tests.e2e_launcher`` when ``E2E_EXTRA_EXTENSIONS=bench.probe_cog``.

- ``/ping`` answers at once with no database or network work: the baseline the latency bench
  compares ``/link info`` with, answered by the same process through the same command tree.
- ``BENCH READY <guilds>`` is printed on stderr when discord.py fires ``on_ready`` (every guild of
  READY received and cached), the moment the memory and startup benches measure at.
"""

from __future__ import annotations

import sys
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands


class BenchProbe(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @app_commands.command(name="ping", description="Answer at once (benchmark baseline)")
    async def ping(self, interaction: discord.Interaction[Any]) -> None:
        await interaction.response.send_message("pong", ephemeral=True)

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        print(f"BENCH READY {len(self.bot.guilds)}", file=sys.stderr, flush=True)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(BenchProbe(bot))
