"""Rate limits kept before sending: per token, per endpoint, sliding windows, concurrency-safe."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from bot.dscgg import DEFAULT_LIMITS, DscggClient, DscggError, Endpoint, RateLimited, RateLimiter
from bot.dscgg.ratelimit import ANONYMOUS, Refusal, Reservation, bucket_owner, safety_margin
from tests.fakes.dscgg import LIMITS as FAKE_LIMITS
from tests.fakes.dscgg import FakeDscgg

INVITE = "https://discord.gg/abc"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _reserve(
    limiter: RateLimiter, token: str | None, endpoint: Endpoint, max_wait: float = 1e9
) -> Reservation:
    outcome = limiter.reserve(token, endpoint, max_wait=max_wait)
    assert isinstance(outcome, Reservation)
    return outcome


# ---------------------------------------------------------------- the limiter itself


def test_documented_limits() -> None:
    assert DEFAULT_LIMITS[Endpoint.CREATE_LINK] == (3, 60.0)
    assert DEFAULT_LIMITS[Endpoint.UPDATE_LINK] == (8, 10.0)
    assert DEFAULT_LIMITS[Endpoint.DELETE_LINK] == (4, 10.0)
    assert DEFAULT_LIMITS[Endpoint.GET_LINK] == (100, 10.0)
    assert DEFAULT_LIMITS[Endpoint.SEARCH_LINKS] == (90, 10.0)
    assert {
        DEFAULT_LIMITS[e] for e in (Endpoint.GET_USER, Endpoint.GET_USER_LINKS, Endpoint.GET_USER_APPS)
    } == {(50, 10.0)}
    assert DEFAULT_LIMITS[Endpoint.GET_APP] == DEFAULT_LIMITS[Endpoint.GET_TOP_LINKS] == (20, 10.0)
    assert set(DEFAULT_LIMITS) == set(Endpoint)
    assert {str(name): limit for name, limit in DEFAULT_LIMITS.items()} == FAKE_LIMITS


def test_sliding_window_schedules_then_refuses() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"delete_link": (2, 10.0)}, clock=clock)
    margin = safety_margin(10.0)

    first = _reserve(limiter, "t", Endpoint.DELETE_LINK)
    limiter.settle(first)  # answered at once
    clock.now += 3
    second = _reserve(limiter, "t", Endpoint.DELETE_LINK)
    limiter.settle(second)
    third = _reserve(limiter, "t", Endpoint.DELETE_LINK, max_wait=8)

    assert (first.delay, second.delay) == (0, 0)
    # The window slides from the first send, not from a fixed boundary.
    assert third.delay == pytest.approx(7 + margin)
    refused = limiter.reserve("t", Endpoint.DELETE_LINK, max_wait=5)
    assert isinstance(refused, Refusal)
    assert refused.retry_after == pytest.approx(10 + margin)
    assert (refused.limit, refused.window) == (2, 10.0)
    # A refusal reserves nothing: once the window has moved, there is room again.
    clock.now += 10 + margin
    assert _reserve(limiter, "t", Endpoint.DELETE_LINK, max_wait=0).delay == 0


def test_buckets_are_per_token_and_per_endpoint() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"create_link": (1, 60.0)}, clock=clock)

    _reserve(limiter, "guild-a-token", Endpoint.CREATE_LINK)
    assert isinstance(_reserve(limiter, "guild-b-token", Endpoint.CREATE_LINK), Reservation)
    assert _reserve(limiter, "guild-a-token", Endpoint.UPDATE_LINK).delay == 0
    assert isinstance(limiter.reserve("guild-a-token", Endpoint.CREATE_LINK, max_wait=5), Refusal)
    # No token: one shared anonymous bucket.
    _reserve(limiter, None, Endpoint.CREATE_LINK)
    assert isinstance(limiter.reserve("", Endpoint.CREATE_LINK, max_wait=5), Refusal)


def test_bucket_key_is_a_hash_not_the_token() -> None:
    assert bucket_owner(None) == bucket_owner("") == ANONYMOUS
    assert bucket_owner("abc") == bucket_owner("abc") != bucket_owner("abd")
    assert "abc" not in bucket_owner("abc")


def test_block_after_429_and_release_of_unused_slots() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"get_link": (1, 10.0)}, clock=clock)

    limiter.block("t", Endpoint.GET_LINK, 3.0)
    assert _reserve(limiter, "t", Endpoint.GET_LINK).delay == pytest.approx(3.0)
    clock.now += 3
    waiting = limiter.reserve("t", Endpoint.GET_LINK, max_wait=100)
    assert isinstance(waiting, Reservation)
    limiter.release(waiting)
    assert _reserve(limiter, "t", Endpoint.GET_LINK).delay == pytest.approx(waiting.delay)


def test_settle_counts_the_window_from_the_answer() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"update_link": (1, 10.0)}, clock=clock)
    sent = _reserve(limiter, "t", Endpoint.UPDATE_LINK)
    clock.now += 2  # a slow answer
    limiter.settle(sent)
    # dsc.gg may have counted it as late as the answer: the next one waits a full window from there.
    assert _reserve(limiter, "t", Endpoint.UPDATE_LINK).delay == pytest.approx(10 + safety_margin(10.0))


@pytest.mark.parametrize("limit", [(0, 1.0), (1, 0.0), (-1, 10.0)])
def test_nonsense_limits_are_refused(limit: tuple[int, float]) -> None:
    with pytest.raises(ValueError, match="invalid limit"):
        RateLimiter({"get_link": limit})


def test_unknown_endpoint_in_the_table_is_refused() -> None:
    with pytest.raises(ValueError, match="get_everything"):
        RateLimiter({"get_everything": (1, 1.0)})


# ---------------------------------------------------------------- against the fake

SCALED_WINDOW = 0.3


def _scaled() -> dict[str, tuple[int, float]]:
    return {name: (count, SCALED_WINDOW) for name, (count, _) in FAKE_LIMITS.items()}


@pytest.fixture
async def scaled_fake() -> AsyncIterator[FakeDscgg]:
    async with FakeDscgg(limits=_scaled()) as fake:
        fake.add_key("wl", user_id=1, whitelisted=True, premium=True)
        yield fake


def _calls(client: DscggClient) -> dict[Endpoint, Callable[[int], Awaitable[object]]]:
    return {
        Endpoint.GET_LINK: lambda i: client.get_link(f"l{i}", token="wl"),
        Endpoint.CREATE_LINK: lambda i: client.create_link(
            f"new{i}", token="wl", redirect=INVITE, type="server"
        ),
        Endpoint.UPDATE_LINK: lambda i: client.update_link("mine", token="wl", title=f"t{i}"),
        Endpoint.DELETE_LINK: lambda i: client.delete_link(f"l{i}", token="wl"),
        Endpoint.GET_USER: lambda i: client.get_user(1, token="wl"),
        Endpoint.GET_USER_LINKS: lambda i: client.get_user_links(1, token="wl"),
        Endpoint.GET_USER_APPS: lambda i: client.get_user_apps(1, token="wl"),
        Endpoint.GET_APP: lambda i: client.get_app("nope", token="wl"),
        Endpoint.GET_TOP_LINKS: lambda i: client.get_top_links(),
        Endpoint.SEARCH_LINKS: lambda i: client.search_links("x", token="wl"),
    }


@pytest.mark.parametrize("endpoint", list(Endpoint))
async def test_a_burst_above_the_limit_never_draws_a_429(scaled_fake: FakeDscgg, endpoint: Endpoint) -> None:
    count, _ = DEFAULT_LIMITS[endpoint]
    burst = count + count // 2 + 1  # needs exactly two windows' worth of waiting at most
    scaled_fake.add_link("mine", owner_id=1)
    for i in range(burst):
        scaled_fake.add_link(f"l{i}", owner_id=1)
    async with aiohttp.ClientSession() as session:
        client = DscggClient(session, base_url=scaled_fake.base_url, limits=_scaled(), max_rate_limit_wait=5)
        call = _calls(client)[endpoint]

        started = time.monotonic()
        async with asyncio.timeout(30):
            results = await asyncio.gather(*(call(i) for i in range(burst)), return_exceptions=True)
        elapsed = time.monotonic() - started

    assert not [r for r in results if isinstance(r, RateLimited)]
    assert not [r for r in results if isinstance(r, BaseException) and not isinstance(r, DscggError)]
    assert scaled_fake.rate_limited_responses == 0
    assert len(scaled_fake.requests_to(endpoint)) == burst
    windows_needed = -(-burst // count) - 1
    # The lower bound is the point; how close to it a burst lands is bench/client.py's business.
    assert elapsed >= windows_needed * SCALED_WINDOW


async def test_an_over_long_wait_is_refused_without_a_request(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient, dscgg_token: str
) -> None:
    for i in range(3):
        await dscgg_client.create_link(f"s{i}", token=dscgg_token, redirect=INVITE, type="server")

    started = time.monotonic()
    async with asyncio.timeout(10):
        with pytest.raises(RateLimited) as caught:
            await dscgg_client.create_link("s3", token=dscgg_token, redirect=INVITE, type="server")

    # Refused at once rather than after waiting out the minute (or even the 1 s max wait).
    assert time.monotonic() - started < 1.0
    error = caught.value
    assert (error.endpoint, error.limit, error.window, error.from_server) == ("create_link", 3, 60.0, False)
    assert 59 < error.retry_after <= 61
    assert len(fake_dscgg.requests) == 3
    assert "s3" not in fake_dscgg.links


async def test_a_short_wait_is_waited(fake_dscgg: FakeDscgg, dscgg_session: aiohttp.ClientSession) -> None:
    fake_dscgg.add_key("t", user_id=1)
    client = DscggClient(
        dscgg_session, base_url=fake_dscgg.base_url, limits={"get_app": (2, 0.4)}, max_rate_limit_wait=1
    )
    started = time.monotonic()
    for _ in range(3):
        with pytest.raises(DscggError):
            await client.get_app("missing", token="t")
    assert time.monotonic() - started >= 0.4


async def test_two_tokens_have_separate_buckets_and_two_guilds_with_one_token_share(
    fake_dscgg: FakeDscgg, dscgg_session: aiohttp.ClientSession
) -> None:
    fake_dscgg.add_key("shared", user_id=1)
    fake_dscgg.add_key("other", user_id=2)
    client = DscggClient(dscgg_session, base_url=fake_dscgg.base_url, limits={"create_link": (1, 60.0)})

    async def guild_creates(token: str, slug: str) -> BaseException | None:
        try:
            await client.create_link(slug, token=token, redirect=INVITE, type="server")
        except RateLimited as error:
            return error
        return None

    guild_a, guild_b, guild_c = await asyncio.gather(
        guild_creates("shared", "a"), guild_creates("shared", "b"), guild_creates("other", "c")
    )

    assert [guild_a is None, guild_b is None].count(True) == 1
    assert isinstance(guild_a or guild_b, RateLimited)
    assert guild_c is None
    assert len(fake_dscgg.requests) == 2


async def test_many_concurrent_callers_do_not_overshoot(scaled_fake: FakeDscgg) -> None:
    async with aiohttp.ClientSession() as session:
        client = DscggClient(
            session, base_url=scaled_fake.base_url, limits={"delete_link": (4, SCALED_WINDOW)}
        )
        async with asyncio.timeout(30):
            await asyncio.gather(
                *(client.delete_link(f"x{i}", token="wl") for i in range(12)), return_exceptions=True
            )
    arrivals = [r.at for r in scaled_fake.requests_to("delete_link")]
    assert len(arrivals) == 12
    assert scaled_fake.rate_limited_responses == 0
    for i in range(4, 12):
        assert arrivals[i] - arrivals[i - 4] >= SCALED_WINDOW


async def test_a_cancelled_waiter_gives_its_slot_back(scaled_fake: FakeDscgg) -> None:
    async with aiohttp.ClientSession() as session:
        client = DscggClient(session, base_url=scaled_fake.base_url, limits={"get_app": (1, 0.5)})
        async with asyncio.timeout(10):
            await asyncio.gather(client.get_app("a", token="wl"), return_exceptions=True)
            waiter = asyncio.create_task(client.get_app("b", token="wl"))
            await asyncio.sleep(0.05)
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
        reservation = await client.rate_limiter.book("wl", Endpoint.GET_APP, max_wait=5)
    assert isinstance(reservation, Reservation)
    assert reservation.delay < 0.5


async def test_a_wait_never_outlasts_max_rate_limit_wait_when_answers_are_slow(
    fake_dscgg: FakeDscgg, dscgg_session: aiohttp.ClientSession
) -> None:
    # One per 0.3 s, answers take 0.4 s. The second call is booked for 0.3 s from now, within the
    # 0.5 s it may wait; but the first is still in flight then, so it could only go 0.3 s after
    # that answer (0.7 s): it is refused then, not sent after 0.7 s.
    fake_dscgg.add_key("t", user_id=1)
    client = DscggClient(
        dscgg_session, base_url=fake_dscgg.base_url, limits={"get_app": (1, 0.3)}, max_rate_limit_wait=0.5
    )
    fake_dscgg.latency = 0.4
    async with asyncio.timeout(10):
        first = asyncio.create_task(client.get_app("a", token="t"))
        await asyncio.sleep(0)  # the first has booked its slot
        started = time.monotonic()
        with pytest.raises(RateLimited) as caught:
            await client.get_app("b", token="t")
        waited = time.monotonic() - started
        with pytest.raises(DscggError):
            await first

    assert waited < 0.5 + 0.3  # the cap, plus generous slack for a slow machine
    assert not caught.value.from_server
    assert caught.value.retry_after > 0
    assert [r.raw_path for r in fake_dscgg.requests] == ["/v2/app/a"]


async def test_a_refusal_behind_requests_in_flight_promises_a_whole_window(
    fake_dscgg: FakeDscgg, dscgg_session: aiohttp.ClientSession
) -> None:
    # Two in flight for 0.9 s with a limit of 2 per 1 s: dsc.gg may count them as late as their
    # answers, so a third cannot go within 1 s from now, beyond the 0.6 s it may wait.
    fake_dscgg.add_key("t", user_id=1)
    client = DscggClient(
        dscgg_session, base_url=fake_dscgg.base_url, limits={"get_app": (2, 1.0)}, max_rate_limit_wait=0.6
    )
    fake_dscgg.latency = 0.9
    async with asyncio.timeout(10):
        first = [asyncio.create_task(client.get_app("a", token="t")) for _ in range(2)]
        await asyncio.sleep(0.3)
        started = time.monotonic()
        with pytest.raises(RateLimited) as caught:
            await client.get_app("b", token="t")
        waited = time.monotonic() - started
        await asyncio.gather(*first, return_exceptions=True)

    assert waited < 0.6  # refused at once, not after waiting
    assert caught.value.retry_after >= 1.0
    assert len(fake_dscgg.requests) == 2


async def test_many_waiters_are_let_through_in_order_without_overshoot(
    dscgg_session: aiohttp.ClientSession,
) -> None:
    window = 0.2
    async with FakeDscgg(limits={"get_app": (5, window)}) as fake:
        fake.add_key("t", user_id=1)
        client = DscggClient(
            dscgg_session, base_url=fake.base_url, limits={"get_app": (5, window)}, max_rate_limit_wait=30
        )
        async with asyncio.timeout(30):
            results = await asyncio.gather(
                *(client.get_app(f"a{i}", token="t") for i in range(40)), return_exceptions=True
            )
    assert all(isinstance(result, DscggError) and not isinstance(result, RateLimited) for result in results)
    assert fake.rate_limited_responses == 0
    # First come, first served: sent in the order they were called.
    assert [r.raw_path for r in fake.requests] == [f"/v2/app/a{i}" for i in range(40)]
