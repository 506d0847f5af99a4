"""The dsc.gg rate limits shared through Redis: two limiters (as two processes would have) on one Redis
never exceed a limit together; Redis down, hung or back again never hangs a booking nor bursts dsc.gg.

Tests marked with the ``redis_url`` fixture need a real Redis (TEST_REDIS_URL); the others play an
unreachable or hung Redis on loopback and always run.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import pytest
import redis.asyncio as aioredis

from bot.dscgg import DscggClient, DscggError, Endpoint, RateLimited
from bot.dscgg.ratelimit import Refusal, Reservation, bucket_owner
from bot.dscgg.redislimit import RedisRateLimiter, SharedReservation
from tests.fakes.dscgg import FakeDscgg
from tests.fakes.proxy import TcpProxy

TOKEN = "shared-dscgg-key-0123456789"
DELETE = Endpoint.DELETE_LINK
LIMIT, WINDOW = 3, 0.5
LIMITS = {"delete_link": (LIMIT, WINDOW)}
LOGGER = "bot.dscgg.redislimit"
#: Generous: a booking normally takes a millisecond, and at most a couple of 0.25 s timeouts.
BOOKING_BOUND = 2.0

_T = TypeVar("_T")


def _via(url: str, port: int) -> str:
    """``url`` with its host and port replaced by 127.0.0.1:``port`` (credentials and db kept)."""
    parts = urlsplit(url)
    credentials, _, _ = parts.netloc.rpartition("@")
    netloc = f"{credentials}@127.0.0.1:{port}" if credentials else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def _eventually(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> bool:
    for _ in range(int(within / 0.02)):
        if await check():
            return True
        await asyncio.sleep(0.02)
    return await check()


async def _timed(call: Awaitable[_T]) -> tuple[_T, float]:
    started = time.monotonic()
    result = await call
    return result, time.monotonic() - started


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[TcpProxy]:
    parts = urlsplit(redis_url)
    async with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 6379) as tcp_proxy:
        yield tcp_proxy


@pytest.fixture
def limiter_factory(redis_url: str, redis_prefix: str) -> Callable[..., RedisRateLimiter]:
    def build(url: str | None = None, limits: Any = None, **options: Any) -> RedisRateLimiter:
        return RedisRateLimiter.from_url(
            url or redis_url, LIMITS if limits is None else limits, prefix=redis_prefix, **options
        )

    return build


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


# ---------------------------------------------------------------- sharing one Redis


async def test_two_processes_together_get_exactly_the_limit(
    limiter_factory: Callable[..., RedisRateLimiter],
) -> None:
    async with limiter_factory() as first, limiter_factory() as second:
        outcomes = await asyncio.gather(
            *((first, second)[i % 2].book(TOKEN, DELETE, max_wait=0) for i in range(2 * LIMIT + 1))
        )
    granted = [o for o in outcomes if isinstance(o, Reservation)]
    refused = [o for o in outcomes if isinstance(o, Refusal)]
    assert len(granted) == LIMIT
    assert len(refused) == LIMIT + 1
    # Those in flight count from now: the next free slot is a whole window away.
    assert all(WINDOW / 2 < r.retry_after <= WINDOW * 2 for r in refused)
    assert {(r.limit, r.window) for r in refused} == {(LIMIT, WINDOW)}


async def test_a_burst_split_between_two_clients_never_draws_a_429(
    limiter_factory: Callable[..., RedisRateLimiter],
) -> None:
    burst = 3 * LIMIT + 1
    async with (
        FakeDscgg(limits=LIMITS) as fake,
        limiter_factory() as first_limiter,
        limiter_factory() as second_limiter,
        aiohttp.ClientSession() as first_session,
        aiohttp.ClientSession() as second_session,
    ):
        fake.add_key(TOKEN, user_id=1)
        clients = [
            DscggClient(session, base_url=fake.base_url, max_rate_limit_wait=10, rate_limiter=limiter)
            for session, limiter in ((first_session, first_limiter), (second_session, second_limiter))
        ]
        async with asyncio.timeout(30):
            results = await asyncio.gather(
                *(clients[i % 2].delete_link(f"l{i}", token=TOKEN) for i in range(burst)),
                return_exceptions=True,
            )

    # Every one was sent (the fake knows none of these links) and none was over the limit.
    assert all(isinstance(r, DscggError) and not isinstance(r, RateLimited) for r in results), results
    assert len(fake.requests_to("delete_link")) == burst
    assert fake.rate_limited_responses == 0


async def test_what_does_not_fit_the_wait_is_refused_without_a_request(
    limiter_factory: Callable[..., RedisRateLimiter],
) -> None:
    async with (
        FakeDscgg(limits=LIMITS) as fake,
        limiter_factory() as first_limiter,
        limiter_factory() as second_limiter,
        aiohttp.ClientSession() as session,
    ):
        fake.add_key(TOKEN, user_id=1)
        clients = [
            DscggClient(session, base_url=fake.base_url, max_rate_limit_wait=0, rate_limiter=limiter)
            for limiter in (first_limiter, second_limiter)
        ]
        results = await asyncio.gather(
            *(clients[i % 2].delete_link(f"l{i}", token=TOKEN) for i in range(2 * LIMIT + 1)),
            return_exceptions=True,
        )

    refused = [r for r in results if isinstance(r, RateLimited)]
    assert len(refused) == LIMIT + 1
    assert not any(r.from_server for r in refused)
    assert len(fake.requests) == LIMIT
    assert fake.rate_limited_responses == 0


async def test_a_429_seen_by_one_process_holds_the_other(
    limiter_factory: Callable[..., RedisRateLimiter],
) -> None:
    async with (
        FakeDscgg(limits=LIMITS) as fake,
        limiter_factory() as first_limiter,
        limiter_factory() as second_limiter,
        aiohttp.ClientSession() as session,
    ):
        fake.add_key(TOKEN, user_id=1)
        first, second = (
            DscggClient(session, base_url=fake.base_url, max_rate_limit_wait=5, rate_limiter=limiter)
            for limiter in (first_limiter, second_limiter)
        )
        fake.fail_next("rate_limit", retry_after=30, endpoint="delete_link")
        with pytest.raises(RateLimited) as from_dscgg:
            await first.delete_link("a", token=TOKEN)
        await first_limiter.drain()  # the block is written in the background
        with pytest.raises(RateLimited) as held:
            await second.delete_link("b", token=TOKEN)

    assert from_dscgg.value.from_server
    assert not held.value.from_server
    assert 25 < held.value.retry_after <= 30
    assert len(fake.requests) == 1


async def test_keys_hold_only_the_token_hash_and_expire_with_the_window(
    limiter_factory: Callable[..., RedisRateLimiter], redis_client: aioredis.Redis, redis_prefix: str
) -> None:
    async with limiter_factory() as limiter:
        for _ in range(LIMIT):
            reservation = await limiter.book(TOKEN, DELETE, max_wait=0)
            assert isinstance(reservation, Reservation)
            limiter.settle(reservation)
        limiter.block(TOKEN, DELETE, WINDOW)
        await limiter.drain()

    keys = [key.decode() async for key in redis_client.scan_iter(match=f"{redis_prefix}*")]
    assert len(keys) == 3  # the slots, the booking counter and the 429 block
    assert all(TOKEN not in key and bucket_owner(TOKEN) in key for key in keys)
    for key in keys:
        assert 0 < await redis_client.pttl(key) <= WINDOW * 1000 + 50

    async def all_gone() -> bool:
        return not [key async for key in redis_client.scan_iter(match=f"{redis_prefix}*")]

    assert await _eventually(all_gone)


async def test_buckets_are_per_token_and_per_endpoint(
    limiter_factory: Callable[..., RedisRateLimiter],
) -> None:
    async with limiter_factory(limits={"delete_link": (1, 60.0), "update_link": (1, 60.0)}) as limiter:
        outcomes = [
            await limiter.book(TOKEN, DELETE, max_wait=0),
            await limiter.book(TOKEN, Endpoint.UPDATE_LINK, max_wait=0),
            await limiter.book("another-key-0123456789", DELETE, max_wait=0),
            await limiter.book(TOKEN, DELETE, max_wait=0),
        ]
    assert [type(o) for o in outcomes] == [SharedReservation, SharedReservation, SharedReservation, Refusal]


async def test_a_cancelled_waiter_gives_its_slot_back(
    limiter_factory: Callable[..., RedisRateLimiter],
) -> None:
    async with (
        limiter_factory(limits={"delete_link": (1, 1.0)}) as first,
        limiter_factory(limits={"delete_link": (1, 1.0)}) as second,
    ):
        sent = await first.book(TOKEN, DELETE, max_wait=0)
        assert isinstance(sent, Reservation)
        first.release(sent)  # nothing was sent after all
        await first.drain()
        assert isinstance(await second.book(TOKEN, DELETE, max_wait=0), Reservation)


async def test_a_slot_left_in_flight_by_a_dead_process_counts_until_its_lease_ends(
    limiter_factory: Callable[..., RedisRateLimiter],
) -> None:
    limits = {"delete_link": (1, WINDOW)}
    async with limiter_factory(limits=limits, lease=2.0) as dead, limiter_factory(limits=limits) as alive:
        assert isinstance(await dead.book(TOKEN, DELETE, max_wait=0), Reservation)  # never answered
        await asyncio.sleep(WINDOW * 1.2)  # an answered send would have left the window by now
        assert isinstance(await alive.book(TOKEN, DELETE, max_wait=0), Refusal)

        async def granted() -> bool:
            outcome = await alive.book(TOKEN, DELETE, max_wait=0)
            if isinstance(outcome, Reservation):
                alive.settle(outcome)
                return True
            return False

        # Its lease over, it counts from then and leaves the window like any other.
        assert await _eventually(granted)


# ---------------------------------------------------------------- Redis unavailable


async def test_unreachable_redis_falls_back_to_a_share_of_each_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    caplog.set_level(logging.INFO, logger=LOGGER)
    async with RedisRateLimiter.from_url(url, {"delete_link": (4, WINDOW)}, processes=2) as limiter:
        first = [await _timed(limiter.book(TOKEN, DELETE, max_wait=0)) for _ in range(5)]
        # The other processes may have used the whole window just before: it is waited out first.
        assert all(isinstance(outcome, Refusal) for outcome, _ in first)
        assert all(
            0 < outcome.retry_after <= WINDOW * 2 for outcome, _ in first if isinstance(outcome, Refusal)
        )
        await asyncio.sleep(WINDOW * 1.5)
        later = [await _timed(limiter.book(TOKEN, DELETE, max_wait=0)) for _ in range(5)]
        assert not limiter.available

    assert [isinstance(outcome, Reservation) for outcome, _ in later].count(True) == 2  # 4 // 2
    assert max(elapsed for _, elapsed in first + later) < BOOKING_BOUND
    (warning,) = _warnings(caplog)
    assert "1/2" in warning
    assert "ConnectionError" in warning


async def test_a_redis_that_never_answers_never_hangs_a_booking(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    async with TcpProxy() as hung:  # accepts, never replies
        url = f"redis://127.0.0.1:{hung.port}/0"
        limits = {"delete_link": (LIMIT, 10.0)}
        async with RedisRateLimiter.from_url(url, limits, retry_interval=0.1) as limiter:
            outcomes = await asyncio.gather(
                *(_timed(limiter.book(TOKEN, DELETE, max_wait=0)) for _ in range(20))
            )
            # Later bookings try Redis again now and then; each try is bounded too.
            for _ in range(5):
                await asyncio.sleep(0.15)
                outcomes.append(await _timed(limiter.book(TOKEN, DELETE, max_wait=0)))
        assert hung.accepted >= 2  # it was asked again

    assert max(elapsed for _, elapsed in outcomes) < BOOKING_BOUND
    assert all(isinstance(outcome, Refusal) for outcome, _ in outcomes)  # the first window after the loss
    (warning,) = _warnings(caplog)
    assert "TimeoutError" in warning


async def test_redis_lost_while_waiting_never_hangs_the_waiter(
    limiter_factory: Callable[..., RedisRateLimiter], proxy: TcpProxy, redis_url: str
) -> None:
    async with limiter_factory(_via(redis_url, proxy.port), limits={"delete_link": (1, 1.0)}) as limiter:
        sent = await limiter.book(TOKEN, DELETE, max_wait=0)
        assert isinstance(sent, SharedReservation)
        limiter.settle(sent)
        waiting = await limiter.book(TOKEN, DELETE, max_wait=1.5)
        assert isinstance(waiting, SharedReservation)
        assert not limiter.ready(waiting)
        proxy.cut()
        outcome, elapsed = await _timed(limiter.wait(waiting))

    # It would have gone after 1 s; Redis gone, this process may not send before a window has
    # passed since (the other processes may have used it), which is past its 1.5 s.
    assert isinstance(outcome, Refusal)
    assert elapsed < 1.5 + BOOKING_BOUND


async def test_redis_back_again_is_used_again_with_what_was_sent_meanwhile(
    limiter_factory: Callable[..., RedisRateLimiter],
    proxy: TcpProxy,
    redis_url: str,
    redis_client: aioredis.Redis,
    redis_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    window = 2.0
    limits = {"delete_link": (4, window)}
    async with limiter_factory(_via(redis_url, proxy.port), limits=limits, retry_interval=0.1) as limiter:
        before = await limiter.book(TOKEN, DELETE, max_wait=0)
        assert isinstance(before, SharedReservation)
        limiter.settle(before)
        await limiter.drain()

        proxy.cut()
        assert isinstance(await limiter.book(TOKEN, DELETE, max_wait=0), Refusal)  # a window first
        assert not limiter.available
        await asyncio.sleep(window + 0.1)
        meanwhile = await limiter.book(TOKEN, DELETE, max_wait=0)
        assert isinstance(meanwhile, Reservation)
        assert not isinstance(meanwhile, SharedReservation)  # the fallback's
        limiter.settle(meanwhile)

        proxy.restore()
        shared: list[Reservation | Refusal] = []

        async def booked_in_redis() -> bool:
            shared.append(await limiter.book(TOKEN, DELETE, max_wait=0))
            return isinstance(shared[-1], SharedReservation)

        assert await _eventually(booked_in_redis)
        again = shared[-1]
        assert isinstance(again, SharedReservation)
        limiter.settle(again)
        await limiter.drain()
        assert limiter.available

    slots = [key async for key in redis_client.scan_iter(match=f"{redis_prefix}*:w")]
    assert len(slots) == 1
    # The send made through the fallback was written in, so the other processes count it too.
    assert await redis_client.zcard(slots[0]) >= 2
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(_warnings(caplog)) == 1
    assert len([m for m in messages if "shared again" in m]) == 1


async def test_redis_stopped_during_a_burst_draws_no_429_and_answers_every_call(
    limiter_factory: Callable[..., RedisRateLimiter], proxy: TcpProxy, redis_url: str
) -> None:
    limits = {"delete_link": (LIMIT, WINDOW)}
    url = _via(redis_url, proxy.port)
    async with (
        FakeDscgg(limits=limits) as fake,
        limiter_factory(url, limits=limits) as first_limiter,
        limiter_factory(url, limits=limits) as second_limiter,
        aiohttp.ClientSession() as session,
    ):
        fake.add_key(TOKEN, user_id=1)
        clients = [
            DscggClient(session, base_url=fake.base_url, max_rate_limit_wait=1.5, rate_limiter=limiter)
            for limiter in (first_limiter, second_limiter)
        ]

        async def delete(i: int) -> tuple[BaseException | None, float]:
            started = time.monotonic()
            try:
                await clients[i % 2].delete_link(f"l{i}", token=TOKEN)
            except DscggError as error:
                return error, time.monotonic() - started
            return None, time.monotonic() - started

        burst = [asyncio.create_task(delete(i)) for i in range(4 * LIMIT)]

        async def first_sent() -> bool:
            return len(fake.requests) >= LIMIT

        assert await _eventually(first_sent)
        proxy.cut()
        async with asyncio.timeout(30):
            results = await asyncio.gather(*burst)

    # Some waited through the loss and were sent by the fallback; none drew a 429.
    assert len(fake.requests) > LIMIT
    assert fake.rate_limited_responses == 0
    assert all(not isinstance(error, RateLimited) or not error.from_server for error, _ in results)
    assert max(elapsed for _, elapsed in results) < 3.0
