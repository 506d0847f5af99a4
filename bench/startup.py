"""Start-up time: process start to READY, the bot against a bare discord.py client, same run.

"READY" is the moment FakeDiscord receives IDENTIFY and sends READY (recorded on its clock, the same
monotonic clock the spawn time is taken on): the process has imported everything, opened its
database, logged in and connected. ``on_ready`` (all servers cached; discord.py then waits its
``guild_ready_timeout`` of 2 s for more, in both processes alike) is shown for information.
The bot's first start (migrations, first command sync) is a warm-up and not counted; the runs after
it reuse that database, as a restart does. Runs alternate; medians of REPEATS. Goal: ratio <= 1.5.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.support import READY_MARKER, bot_process
from tests.fakes.discord import FakeDiscord, GatewaySession

REPEATS = 7
SERVERS = 100
GOAL = 1.5


class TimedFakeDiscord(FakeDiscord):
    """Records when each IDENTIFY arrives (i.e. when READY is sent)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.identified_at: list[float] = []

    async def _gateway_op(self, session: GatewaySession, frame: dict[str, Any]) -> None:
        if frame.get("op") == 2:
            self.identified_at.append(time.monotonic())
        await super()._gateway_op(session, frame)


async def one_start(fake: TimedFakeDiscord, workdir: Path, *, bare: bool) -> tuple[float, float]:
    """(spawn → READY sent, spawn → on_ready) in seconds."""
    seen = len(fake.identified_at)
    async with bot_process(
        fake, workdir, bare=bare, name="bare" if bare else "bot", LOG_LEVEL="WARNING"
    ) as proc:
        await proc.wait_for_log(READY_MARKER, timeout=60)
        on_ready = time.monotonic() - proc.started_at
        assert len(fake.identified_at) == seen + 1
        return fake.identified_at[seen] - proc.started_at, on_ready


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        root = Path(tmp)
        fake = TimedFakeDiscord(guilds=SERVERS)
        async with fake:
            await one_start(fake, root / "bot", bare=False)  # warm-up: migrations + first sync
            await one_start(fake, root / "bare", bare=True)
            runs: dict[str, list[tuple[float, float]]] = {"bare": [], "bot": []}
            for _ in range(REPEATS):
                runs["bare"].append(await one_start(fake, root / "bare", bare=True))
                runs["bot"].append(await one_start(fake, root / "bot", bare=False))
            syncs = len(fake.syncs)

    print(f"{REPEATS} starts each, {SERVERS} servers; medians (s)")
    print(f"{'':>6} {'to READY':>9} {'to on_ready':>12}  (all READY times)")
    medians: dict[str, float] = {}
    for name, values in runs.items():
        to_ready = [ready for ready, _ in values]
        medians[name] = statistics.median(to_ready)
        on_ready = statistics.median(done for _, done in values)
        listed = ", ".join(f"{value:.2f}" for value in to_ready)
        print(f"{name:>6} {medians[name]:>9.3f} {on_ready:>12.3f}  ({listed})")
    ratio = medians["bot"] / medians["bare"]
    print(f"ratio bot/bare to READY: {ratio:.2f} (goal <= {GOAL:g}, {'ok' if ratio <= GOAL else 'MISSED'})")
    print(f"command syncs over all bot starts: {syncs} (1 expected: the warm-up)")
