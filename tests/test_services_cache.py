"""SharedCache: fresh answers shared, one fetch per key at a time, failures not kept."""

from __future__ import annotations

import asyncio

import pytest

from bot.services.cache import SharedCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Upstream:
    """A fetch that counts its calls and answers when ``release`` is set."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.release.set()
        self.error: Exception | None = None

    async def fetch(self) -> str:
        self.calls += 1
        call = self.calls
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return f"answer {call}"


async def test_concurrent_asks_share_one_fetch() -> None:
    cache: SharedCache[str, str] = SharedCache(60)
    upstream = Upstream()
    upstream.release.clear()
    asks = [asyncio.create_task(cache.get("top", upstream.fetch)) for _ in range(30)]
    await asyncio.sleep(0)
    upstream.release.set()
    assert await asyncio.gather(*asks) == ["answer 1"] * 30
    assert upstream.calls == 1


async def test_a_fresh_answer_is_kept_until_the_ttl_then_fetched_again() -> None:
    clock = Clock()
    cache: SharedCache[str, str] = SharedCache(60, clock=clock)
    upstream = Upstream()
    assert await cache.get("top", upstream.fetch) == "answer 1"
    clock.now = 59.9
    assert await cache.get("top", upstream.fetch) == "answer 1"
    clock.now = 60.0
    assert await cache.get("top", upstream.fetch) == "answer 2"
    assert upstream.calls == 2


async def test_keys_are_kept_apart() -> None:
    cache: SharedCache[str | None, str] = SharedCache(60)
    upstream = Upstream()
    assert await cache.get(None, upstream.fetch) == "answer 1"
    assert await cache.get("bot", upstream.fetch) == "answer 2"
    assert await cache.get(None, upstream.fetch) == "answer 1"


async def test_a_failure_reaches_everyone_waiting_and_is_not_kept() -> None:
    cache: SharedCache[str, str] = SharedCache(60)
    upstream = Upstream()
    upstream.release.clear()
    upstream.error = RuntimeError("down")
    asks = [asyncio.create_task(cache.get("top", upstream.fetch)) for _ in range(3)]
    await asyncio.sleep(0)
    upstream.release.set()
    outcomes = await asyncio.gather(*asks, return_exceptions=True)
    assert all(isinstance(outcome, RuntimeError) for outcome in outcomes)
    upstream.error = None
    assert await cache.get("top", upstream.fetch) == "answer 2"
    assert upstream.calls == 2


async def test_a_cancelled_asker_does_not_cancel_the_fetch_for_the_others() -> None:
    cache: SharedCache[str, str] = SharedCache(60)
    upstream = Upstream()
    upstream.release.clear()
    first = asyncio.create_task(cache.get("top", upstream.fetch))
    second = asyncio.create_task(cache.get("top", upstream.fetch))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    upstream.release.set()
    assert await second == "answer 1"
    assert await cache.get("top", upstream.fetch) == "answer 1"
    assert upstream.calls == 1


async def test_ttl_zero_keeps_nothing_but_still_shares_a_fetch_in_progress() -> None:
    cache: SharedCache[str, str] = SharedCache(0)
    upstream = Upstream()
    upstream.release.clear()
    asks = [asyncio.create_task(cache.get("top", upstream.fetch)) for _ in range(3)]
    await asyncio.sleep(0)
    upstream.release.set()
    assert await asyncio.gather(*asks) == ["answer 1"] * 3
    assert await cache.get("top", upstream.fetch) == "answer 2"


@pytest.mark.parametrize("ttl", [-1.0, float("nan")])
def test_a_negative_ttl_is_refused(ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        SharedCache[str, str](ttl)
