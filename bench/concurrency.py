"""500 servers at once: every interaction acknowledged within Discord's 3 s, no 429 from dsc.gg.

500 guilds, each with its own dsc.gg token (stored in the bot's database before it starts; the fake
dsc.gg knows all 500 keys and enforces the documented per-key limits). Once the bot is READY, one
``/link info`` per guild is sent through the gateway in one burst. Times are on FakeDiscord's clock,
from each INTERACTION_CREATE to its first callback (the acknowledgement) and to its final answer.
Goals: every acknowledgement within 3 s, zero 429s served by dsc.gg.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from bench.support import (
    INVITE,
    READY_MARKER,
    bot_process,
    dscgg_process,
    dscgg_stats,
    ms,
    new_key,
    percentile,
    seed_tokens,
)
from tests.e2e import Driver
from tests.fakes.discord import LOADING, FakeDiscord, InteractionRecord

SERVERS = 500
ACK_DEADLINE = 3.0


def _token(index: int) -> str:
    return f"bench-concurrency-{index:04d}"


def _answered(fake: FakeDiscord, record: InteractionRecord) -> bool:
    message = fake.messages.get(record.original_message_id or 0)
    return message is not None and not int(message.get("flags") or 0) & LOADING


async def main() -> None:
    seed = {
        "keys": [{"token": _token(i), "user_id": 10_000 + i} for i in range(SERVERS)],
        "links": [{"slug": "mine", "owner_id": 10_000, "redirect": INVITE, "meta": {"title": "Bench"}}],
    }
    key = new_key()
    with tempfile.TemporaryDirectory(prefix="bench-concurrency-") as tmp:
        workdir = Path(tmp)
        async with FakeDiscord(guilds=SERVERS) as fake, dscgg_process(seed) as dscgg_url:
            guilds = fake.guild_ids
            await seed_tokens(
                workdir / "data" / "bot.sqlite3",
                key,
                {gid: _token(i) for i, gid in enumerate(guilds)},
                links=["mine"],
            )
            async with bot_process(
                fake, workdir, dscgg_url=dscgg_url, TOKEN_ENCRYPTION_KEYS=key, LOG_LEVEL="WARNING"
            ) as bot:
                await bot.wait_for_log(READY_MARKER, timeout=60)
                driver = Driver(fake)
                payloads = [driver.payloads.command("link info", {"slug": "mine"}, guild=g) for g in guilds]
                before = await dscgg_stats(dscgg_url)
                first_request = len(fake.requests)
                started = time.perf_counter()
                records: list[InteractionRecord] = list(
                    await asyncio.gather(*(fake.dispatch_interaction(p) for p in payloads))
                )
                sent_in = time.perf_counter() - started
                by_token = {r.token: r for r in records}
                deadline = time.monotonic() + 60
                # Polled, not re-checked on every request, so the fake's loop stays free for the bot.
                while time.monotonic() < deadline and not all(_answered(fake, r) for r in records):  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
                finals = {token: 0.0 for token in by_token}
                for request in fake.requests[first_request:]:
                    token = request.params.get("token", "")
                    if request.route == "edit_original" and request.status and token in by_token:
                        finals[token] = request.t_monotonic - by_token[token].t_sent_monotonic
                after = await dscgg_stats(dscgg_url)

    acks = [r.initial.t_monotonic - r.t_sent_monotonic for r in records if r.initial is not None]
    refused = sum(1 for r in records for cb in r.callbacks if not cb.accepted)
    unanswered = sum(1 for value in finals.values() if not value)
    answered = [value for value in finals.values() if value]
    late = sum(1 for ack in acks if ack > ACK_DEADLINE) + (len(records) - len(acks))
    rate_limited = after["rate_limited_responses"] - before["rate_limited_responses"]
    dscgg_requests = after["requests"] - before["requests"]

    print(f"{SERVERS} /link info from {SERVERS} servers (one token each), sent in {sent_in * 1000:.0f} ms")
    print(f"{'':>14} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    print(
        f"{'acknowledged':>14} {ms(percentile(acks, 50)):>8} {ms(percentile(acks, 99)):>8} {ms(max(acks)):>8}"
    )
    print(
        f"{'final answer':>14} {ms(percentile(answered, 50)):>8} {ms(percentile(answered, 99)):>8}"
        f" {ms(max(answered)):>8}"
    )
    print(
        f"acknowledged later than {ACK_DEADLINE:g} s or never: {late} "
        f"(goal 0, {'ok' if late == 0 else 'MISSED'}); refused callbacks: {refused}; "
        f"without a final answer: {unanswered}"
    )
    print(
        f"dsc.gg: {dscgg_requests} requests, {rate_limited} answered 429 "
        f"(goal 0, {'ok' if rate_limited == 0 else 'MISSED'})"
    )
