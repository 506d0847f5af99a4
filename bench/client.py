"""What the dsc.gg client costs, and how tightly it packs bursts under the documented limits.

1. Per-request cost of ``DscggClient.get_link`` against the fake dsc.gg versus a raw aiohttp GET
   of the same URL (read + JSON decode), at concurrency 1 and 64, in the same run. Goal: <= 1.15.
2. A burst above each documented limit, windows scaled to 1 s through the client's limit table
   (the fake enforces the same windows): 429s drawn (goal 0) and total time against the minimum
   the limits allow (goal within 10 %).

The fake runs in its own process so its work does not land on the client's event loop.
"""

from __future__ import annotations

import asyncio
import gc
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from bench.support import dscgg_process, dscgg_stats
from bot.dscgg import DEFAULT_LIMITS, DEFAULT_USER_AGENT, DscggClient, DscggError, Endpoint, Link, RateLimited

TOKEN = "bench-token"
INVITE = "https://discord.gg/bench"
# Many short rounds, interleaved and rotated (each side takes every position in turn, so drift and
# whatever ran just before a block hit all sides alike). A ratio is the median over the rounds of
# client / raw within one round, so slow drift of the machine cancels out; the µs figures are the
# median round of each side. Concurrency 1 swings most from round to round: more, shorter rounds.
#: concurrency -> (rounds, requests per round and side)
ROUNDS = {1: (31, 200), 64: (15, 2000)}
WARM_UP_REQUESTS = 500
BURST_WINDOW = 1.0


#: The fake dsc.gg's content for the bench: one link to read, and room for the bursts.
SEED = {
    "keys": [{"token": TOKEN, "user_id": 1, "whitelisted": True, "premium": True}],
    "links": [
        {
            "slug": "mine",
            "owner_id": 1,
            "redirect": INVITE,
            "meta": {"title": "Bench", "description": "x" * 200},
        },
        *({"slug": f"l{i}", "owner_id": 1} for i in range(250)),
    ],
}


async def per_request_seconds(
    count: int, concurrency: int, call: Callable[[], Awaitable[Any]]
) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) per request."""
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    gc.collect()  # no side pays for garbage another side left behind
    started, cpu_started = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.perf_counter() - started) / count, (time.process_time() - cpu_started) / count


WALL, CPU = 0, 1


def paired_ratio(side: list[tuple[float, float]], baseline: list[tuple[float, float]], field: int) -> float:
    """Median over the rounds of side / baseline, each pair measured in the same round."""
    return statistics.median(mine[field] / theirs[field] for mine, theirs in zip(side, baseline, strict=True))


async def bench_overhead() -> None:
    async with dscgg_process(SEED, "--no-rate-limits") as base_url, aiohttp.ClientSession() as session:
        # The documented 100 per window, with a 1 ms window: the bucket does its usual work at its
        # usual size (about 100 sends) but never makes the client wait.
        client = DscggClient(session, base_url=base_url, limits={"get_link": (100, 0.001)})
        url = f"{base_url}/link/mine"
        # The very headers the client sends, so both sides put the same bytes on the wire.
        headers = {"User-Agent": DEFAULT_USER_AGENT, "Accept": "application/json", "Authorization": TOKEN}

        # What a minimal caller does to get the data: GET, read the body, json.loads it.
        async def raw() -> Any:
            async with session.get(url, headers=headers) as response:
                return json.loads(await response.read())

        async def raw_and_model() -> Any:
            async with session.get(url, headers=headers) as response:
                return Link.model_validate(json.loads(await response.read())["payload"])

        async def through_client() -> Any:
            return await client.get_link("mine", token=TOKEN)

        print("get_link vs raw aiohttp GET (+ JSON decode), same URL, same session, fake in another process")
        print("wall: elapsed per request; cpu: this process's CPU per request (what the client itself costs)")
        print("medians over interleaved rounds (ratios: of client/raw within a round); the fake neither")
        print("rate-limits nor records")
        print(
            f"{'concurrency':>11} {'requests':>9} {'raw wall µs':>12} {'client wall µs':>15} {'ratio':>6}"
            f" {'raw cpu µs':>11} {'client cpu µs':>14} {'ratio':>6}  goal <= 1.15"
        )
        sides = {"raw": raw, "raw+model": raw_and_model, "client": through_client}
        names = list(sides)
        for concurrency, (rounds, count) in ROUNDS.items():
            costs: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
            for call in sides.values():
                await per_request_seconds(WARM_UP_REQUESTS, concurrency, call)
            for round_ in range(rounds):
                shift = round_ % len(names)
                for name in names[shift:] + names[:shift]:
                    costs[name].append(await per_request_seconds(count, concurrency, sides[name]))
            raw_wall, raw_cpu = (statistics.median(values) for values in zip(*costs["raw"], strict=True))
            client_wall, client_cpu = (
                statistics.median(values) for values in zip(*costs["client"], strict=True)
            )
            model_cpu = statistics.median(cpu for _, cpu in costs["raw+model"])
            wall_ratio = paired_ratio(costs["client"], costs["raw"], WALL)
            cpu_ratio = paired_ratio(costs["client"], costs["raw"], CPU)
            model_ratio = paired_ratio(costs["raw+model"], costs["raw"], CPU)
            verdict = "ok" if max(wall_ratio, cpu_ratio) <= 1.15 else "MISSED"
            print(
                f"{concurrency:>11} {count * rounds:>9} {raw_wall * 1e6:>12.0f} {client_wall * 1e6:>15.0f}"
                f" {wall_ratio:>6.2f} {raw_cpu * 1e6:>11.0f} {client_cpu * 1e6:>14.0f}"
                f" {cpu_ratio:>6.2f}  {verdict}"
            )
            print(
                f"{'':>11} reference: raw GET + the same pydantic Link validation:"
                f" {model_cpu * 1e6:.0f} µs cpu ({model_ratio:.2f} x raw);"
                f" client without that validation: {cpu_ratio - (model_ratio - 1):.2f} x raw"
            )


def burst_calls(client: DscggClient) -> dict[Endpoint, Callable[[int], Awaitable[object]]]:
    return {
        Endpoint.GET_LINK: lambda i: client.get_link(f"l{i}", token=TOKEN),
        Endpoint.CREATE_LINK: lambda i: client.create_link(
            f"new{i}", token=TOKEN, redirect=INVITE, type="server"
        ),
        Endpoint.UPDATE_LINK: lambda i: client.update_link("mine", token=TOKEN, title=f"t{i}"),
        Endpoint.DELETE_LINK: lambda i: client.delete_link(f"l{i}", token=TOKEN),
        Endpoint.GET_USER: lambda i: client.get_user(1, token=TOKEN),
        Endpoint.GET_USER_LINKS: lambda i: client.get_user_links(1, token=TOKEN),
        Endpoint.GET_USER_APPS: lambda i: client.get_user_apps(1, token=TOKEN),
        Endpoint.GET_APP: lambda i: client.get_app("none", token=TOKEN),
        Endpoint.GET_TOP_LINKS: lambda i: client.get_top_links(),
        Endpoint.SEARCH_LINKS: lambda i: client.search_links("l1", token=TOKEN, limit=5),
    }


async def bench_bursts() -> None:
    limits = {endpoint: (count, BURST_WINDOW) for endpoint, (count, _) in DEFAULT_LIMITS.items()}
    async with (
        dscgg_process(SEED, "--uniform-window", str(BURST_WINDOW)) as base_url,
        aiohttp.ClientSession() as session,
    ):
        client = DscggClient(session, base_url=base_url, limits=limits, max_rate_limit_wait=30)
        calls = burst_calls(client)
        print(
            f"\nbursts of 2 x limit + 1 at once, every window scaled to {BURST_WINDOW:g} s (client and fake)"
        )
        columns = ("endpoint", 15), ("limit", 6), ("burst", 6), ("429s", 5), ("minimum s", 10), ("took s", 7)
        print(" ".join(f"{name:>{width}}" for name, width in columns), f"{'over':>7}")
        worst_over = 0.0
        total_429 = 0
        for endpoint, (count, window) in limits.items():
            burst = 2 * count + 1
            before = await dscgg_stats(base_url)
            started = time.perf_counter()
            results = await asyncio.gather(
                *(calls[endpoint](i) for i in range(burst)), return_exceptions=True
            )
            elapsed = time.perf_counter() - started
            after = await dscgg_stats(base_url)
            unexpected = [
                r for r in results if isinstance(r, BaseException) and not isinstance(r, DscggError)
            ]
            if unexpected:
                raise unexpected[0]
            served_429 = after["rate_limited_responses"] - before["rate_limited_responses"]
            refused = sum(isinstance(r, RateLimited) for r in results)
            total_429 += served_429
            minimum = (-(-burst // count) - 1) * window
            over = elapsed / minimum - 1
            worst_over = max(worst_over, over)
            note = f"  ({refused} RateLimited)" if refused else ""
            print(
                f"{endpoint:>15} {count:>6} {burst:>6} {served_429:>5} {minimum:>10.2f} {elapsed:>7.3f}"
                f" {over:>+7.1%}{note}"
            )
        print(f"429s in all: {total_429} (goal 0, {'ok' if total_429 == 0 else 'MISSED'})")
        verdict = "ok" if worst_over <= 0.10 else "MISSED"
        print(f"worst time over the minimum: {worst_over:+.1%} (goal <= 10 %, {verdict})")


async def main() -> None:
    await bench_overhead()
    await bench_bursts()
