"""30 servers asking ``/top`` at once: how many requests reach dsc.gg, and how many asks are refused.

dsc.gg's top links are fetched without a token, so every server shares one anonymous bucket
(20 per 10 s). 30 guilds, none with a token; once the bot is READY, one ``/top`` per guild is sent
through the gateway in one burst, while the fake dsc.gg takes 200 ms per answer (so the first
request is still in flight when the others arrive). Counted: requests that reached dsc.gg during the
burst (goal 1: one shared answer), and asks not answered with the list (goal 0), a rate-limit
sentence, another error or no answer at all, plus 429s served by dsc.gg.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.support import READY_MARKER, bot_process, dscgg_process, dscgg_stats, ms, percentile
from tests.e2e import Driver
from tests.fakes.discord import LOADING, FakeDiscord, InteractionRecord

SERVERS = 30
DSCGG_LATENCY = 0.2
TITLE = "Top dsc.gg links"


def _final(fake: FakeDiscord, record: InteractionRecord) -> dict[str, Any] | None:
    message = fake.messages.get(record.original_message_id or 0)
    if message is None or int(message.get("flags") or 0) & LOADING:
        return None
    return message


def _is_list(message: dict[str, Any] | None) -> bool:
    embeds = (message or {}).get("embeds") or []
    return bool(embeds) and embeds[0].get("title") == TITLE


async def main() -> None:
    seed = {
        "links": [
            {
                "slug": f"top{i:02d}",
                "owner_id": 10_000,
                "redirect": "https://discord.gg/bench",
                "clicks": 100 - i,
            }
            for i in range(25)
        ]
    }
    with tempfile.TemporaryDirectory(prefix="bench-top-burst-") as tmp:
        workdir = Path(tmp)
        async with (
            FakeDiscord(guilds=SERVERS) as fake,
            dscgg_process(seed, "--latency", str(DSCGG_LATENCY)) as dscgg_url,
            bot_process(fake, workdir, dscgg_url=dscgg_url, LOG_LEVEL="WARNING") as bot,
        ):
            await bot.wait_for_log(READY_MARKER, timeout=60)
            driver = Driver(fake)
            payloads = [driver.payloads.command("top", {}, guild=guild) for guild in fake.guild_ids]
            before = await dscgg_stats(dscgg_url)
            started = time.perf_counter()
            records: list[InteractionRecord] = list(
                await asyncio.gather(*(fake.dispatch_interaction(p) for p in payloads))
            )
            sent_in = time.perf_counter() - started
            deadline = time.monotonic() + 30
            # Polled, not re-checked on every request, so the fake's loop stays free for the bot.
            while time.monotonic() < deadline and not all(_final(fake, r) for r in records):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            answered_at = {
                r.token: request.t_monotonic - r.t_sent_monotonic
                for r in records
                for request in fake.requests
                if request.route == "edit_original"
                and request.status
                and request.params.get("token") == r.token
            }
            finals = [_final(fake, r) for r in records]
            after = await dscgg_stats(dscgg_url)

    upstream = after["requests"] - before["requests"]
    rate_limited = after["rate_limited_responses"] - before["rate_limited_responses"]
    refused = sum(1 for message in finals if not _is_list(message))
    rejected = sum(1 for r in records for cb in r.callbacks if not cb.accepted)
    times = list(answered_at.values())

    print(f"{SERVERS} /top from {SERVERS} servers at once (no token), sent in {sent_in * 1000:.0f} ms;")
    print(f"dsc.gg answers in {DSCGG_LATENCY * 1000:.0f} ms")
    if times:
        print(
            f"final answer: p50 {ms(percentile(times, 50))} ms, max {ms(max(times))} ms "
            f"({len(times)} of {SERVERS} answered)"
        )
    print(f"requests that reached dsc.gg: {upstream} (goal 1, {'ok' if upstream == 1 else 'MISSED'})")
    print(
        f"asks refused or unanswered: {refused} (goal 0, {'ok' if refused == 0 else 'MISSED'}); "
        f"429s from dsc.gg: {rate_limited}; refused callbacks: {rejected}"
    )
