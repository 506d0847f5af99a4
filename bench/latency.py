"""Command latency of the real bot process: ``/link info`` against a trivial ``/ping``, same run.

Time from INTERACTION_CREATE leaving the fake gateway to (a) the first callback (the "thinking"
deferral for ``/link info``, the answer itself for ``/ping``) and (b) the final answer (the edit of
the deferred message for ``/link info``), on FakeDiscord's clock. The fake dsc.gg answers with no
added latency. ``/ping`` comes from bench/probe_cog.py, answered by the same process through the
same command tree. Invocations alternate and run one at a time. Goal: added p50 <= 5 ms.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.support import (
    INVITE,
    READY_MARKER,
    bot_process,
    dscgg_process,
    ms,
    new_key,
    percentile,
    seed_tokens,
)
from tests.e2e import Driver
from tests.fakes.discord import FakeDiscord, InteractionRecord

#: Each guild has its own token, so a few hundred /link info stay far under get_link's 100 per 10 s.
GUILDS = 20
WARMUP = 40
ROUNDS = 300
GOAL_MS = 5.0


async def _timed(driver: Driver, command: str, options: dict[str, str], guild: int) -> tuple[float, float]:
    """(first callback, final answer) in seconds after the interaction was sent."""
    fake = driver.fake
    start_index = len(fake.requests)
    record: InteractionRecord = await driver.command(command, options, guild=guild)
    first = await fake.wait_for_callback(record.id, timeout=10)
    await fake.wait_for(lambda: first.status, timeout=10)
    if first.type == 5:

        def edited() -> float | None:
            for request in fake.requests[start_index:]:
                if request.route == "edit_original" and request.params.get("token") == record.token:
                    return request.t_perf if request.status else None
            return None

        final_at: float = await fake.wait_for(edited, timeout=10)
    else:
        final_at = first.t_perf
    return first.t_perf - record.t_sent_perf, final_at - record.t_sent_perf


async def main() -> None:
    seed = {
        "keys": [{"token": f"bench-latency-{i:03d}", "user_id": 100 + i} for i in range(GUILDS)],
        "links": [{"slug": "mine", "owner_id": 100, "redirect": INVITE, "meta": {"title": "Bench"}}],
    }
    key = new_key()
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
        workdir = Path(tmp)
        async with FakeDiscord(guilds=GUILDS) as fake, dscgg_process(seed, "--no-rate-limits") as dscgg_url:
            guilds = fake.guild_ids
            database = workdir / "data" / "bot.sqlite3"
            await seed_tokens(
                database, key, {gid: f"bench-latency-{i:03d}" for i, gid in enumerate(guilds)}, links=["mine"]
            )
            async with bot_process(
                fake, workdir, dscgg_url=dscgg_url, TOKEN_ENCRYPTION_KEYS=key, LOG_LEVEL="WARNING"
            ) as bot:
                await bot.wait_for_log(READY_MARKER, timeout=60)
                driver = Driver(fake)
                samples: dict[str, list[tuple[float, float]]] = {"ping": [], "link info": []}
                started = time.perf_counter()
                for i in range(WARMUP + ROUNDS):
                    guild = guilds[i % GUILDS]
                    ping = await _timed(driver, "ping", {}, guild)
                    info = await _timed(driver, "link info", {"slug": "mine"}, guild)
                    if i >= WARMUP:
                        samples["ping"].append(ping)
                        samples["link info"].append(info)
                elapsed = time.perf_counter() - started
                rejected = [cb for cb in fake.callbacks if not cb.accepted]

    print(f"{ROUNDS} rounds of /ping then /link info (after {WARMUP} warm-up rounds), {elapsed:.1f} s")
    print(f"{'command':>11} {'first p50':>10} {'first p99':>10} {'final p50':>10} {'final p99':>10}  (ms)")
    stats: dict[str, dict[str, float]] = {}
    for name, values in samples.items():
        firsts = [first for first, _ in values]
        finals = [final for _, final in values]
        stats[name] = {
            "first50": percentile(firsts, 50),
            "first99": percentile(firsts, 99),
            "final50": percentile(finals, 50),
            "final99": percentile(finals, 99),
        }
        s = stats[name]
        print(
            f"{'/' + name:>11} {ms(s['first50']):>10} {ms(s['first99']):>10}"
            f" {ms(s['final50']):>10} {ms(s['final99']):>10}"
        )
    added_first = (stats["link info"]["first50"] - stats["ping"]["first50"]) * 1000
    added_final = (stats["link info"]["final50"] - stats["ping"]["final50"]) * 1000
    verdict = "ok" if added_final <= GOAL_MS else "MISSED"
    print(f"added by /link info over /ping, p50: first callback {added_first:+.1f} ms, ", end="")
    print(f"final answer {added_final:+.1f} ms (goal <= {GOAL_MS:g} ms, {verdict})")
    print(f"rejected callbacks: {len(rejected)}")
