"""One deadline per command for all its dsc.gg calls together: retries, backoff and rate-limit waits
included (COMMAND_DEADLINE, bot.dscgg.deadline).

The commands run through the real tree against a dsc.gg that never answers ("hang"). The client's
per-request timeout is set far beyond the deadline (as in production: 10 s per request against
12 s per command), so without the deadline every try would wait for it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiohttp
import pytest

from bot.dscgg import DeadlineExceeded, DscggClient, RateLimited, Unavailable, deadline
from tests.fakes.dscgg import FakeDscgg
from tests.fixtures.bot import ADMIN_TOKEN, WiredBot
from tests.fixtures.dscgg import TEST_USER_ID
from tests.harness import ADMIN, Message, Result

#: COMMAND_DEADLINE for these tests, in seconds.
DEADLINE = 1.0
#: The client's own timeout per request: far longer than the deadline.
REQUEST_TIMEOUT = 6.0
#: What answering takes besides waiting on dsc.gg (Discord round trips on loopback), generously.
MARGIN = 2.0
UNAVAILABLE = "dsc.gg is not answering properly, try again later."
SERVER_INVITE = "https://discord.gg/abc123"


@pytest.fixture
async def w(
    make_wired_bot: Callable[..., AbstractAsyncContextManager[WiredBot]],
) -> AsyncIterator[WiredBot]:
    async with make_wired_bot(settings={"command_deadline": DEADLINE}) as wired:
        await wired.bot.token_store.set(wired.guild_id, ADMIN_TOKEN, set_by=ADMIN.id)
        wired.bot.dscgg._timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT, sock_connect=1.0)
        wired.dscgg.add_link("mine", owner_id=ADMIN.id, redirect=SERVER_INVITE, meta={"title": "Old"})
        await wired.bot.link_records.record(wired.guild_id, "mine", ADMIN.id)  # this server manages it
        wired.dscgg.reset()
        yield wired


async def timed_run(w: WiredBot, command: str, options: dict[str, Any]) -> tuple[Result, float]:
    started = time.monotonic()
    result = await w.run(command, options, timeout=4 * REQUEST_TIMEOUT)
    return result, time.monotonic() - started


def assert_unavailable(result: Result) -> None:
    message = result.final_message
    assert message is not None
    assert not message.loading
    assert message.ephemeral
    assert message.content == UNAVAILABLE


def calls(w: WiredBot) -> list[str]:
    return [request.method for request in w.dscgg.requests]


# ------------------------------------------------------------------------------- through commands


async def test_edit_against_a_hanging_dscgg_answers_within_the_deadline(w: WiredBot) -> None:
    w.dscgg.fail_always("hang")
    result, took = await timed_run(w, "link edit", {"slug": "mine", "title": "New"})
    assert_unavailable(result)
    assert took < DEADLINE + MARGIN, f"answered after {took:.1f} s"
    assert calls(w) == ["GET"]  # the one try used the whole deadline: no retry, no update


async def test_edit_whose_update_hangs_answers_within_the_deadline(w: WiredBot) -> None:
    w.dscgg.fail_always("hang", method="PATCH")
    result, took = await timed_run(w, "link edit", {"slug": "mine", "title": "New"})
    assert_unavailable(result)
    assert took < DEADLINE + MARGIN, f"answered after {took:.1f} s"
    assert calls(w) == ["GET", "PATCH"]  # the update is not tried again past the deadline
    assert w.dscgg.links["mine"]["meta"]["title"] == "Old"


async def test_create_against_a_hanging_dscgg_answers_within_the_deadline(w: WiredBot) -> None:
    w.dscgg.fail_always("hang")
    result, took = await timed_run(w, "link create", {"slug": "new", "redirect": SERVER_INVITE})
    assert_unavailable(result)
    assert took < DEADLINE + MARGIN, f"answered after {took:.1f} s"
    assert calls(w) == ["POST"]  # never resent


async def test_each_command_has_its_own_deadline(w: WiredBot) -> None:
    w.dscgg.fail_always("hang")
    assert_unavailable((await timed_run(w, "link edit", {"slug": "mine", "title": "New"}))[0])
    w.dscgg.clear_faults()
    result, _ = await timed_run(w, "link edit", {"slug": "mine", "title": "New"})
    message = result.final_message
    assert message is not None
    assert "dsc.gg/mine" in message.text()
    assert w.dscgg.links["mine"]["meta"]["title"] == "New"


async def test_time_spent_answering_a_question_does_not_count(w: WiredBot) -> None:
    result = await w.run("link delete", {"slug": "mine"})
    assert result.waiting_for_input
    question = result.final_message
    assert question is not None
    await asyncio.sleep(DEADLINE + 0.2)  # the admin thinks it over for longer than the deadline
    await w.harness.click(question, _button(question, "Delete"))
    final = result.final_message
    assert final is not None
    assert final.content == "Deleted **dsc.gg/mine**."
    assert "mine" not in w.dscgg.links


def _button(message: Message, label: str) -> str:
    return next(str(b["custom_id"]) for b in message.buttons() if b.get("label") == label)


# ------------------------------------------------------------------------------------ the client


def _client(session: aiohttp.ClientSession, base_url: str, **options: Any) -> DscggClient:
    settings: dict[str, Any] = {
        "timeout": REQUEST_TIMEOUT,
        "connect_timeout": 1.0,
        "max_rate_limit_wait": 5.0,
        "retries": 5,
        "backoff_base": 0.01,
        "backoff_max": 0.05,
    }
    settings.update(options)
    return DscggClient(session, base_url=base_url, **settings)


async def test_retries_stop_at_the_deadline(
    fake_dscgg: FakeDscgg, dscgg_session: aiohttp.ClientSession, dscgg_token: str
) -> None:
    client = _client(dscgg_session, fake_dscgg.base_url)
    fake_dscgg.fail_always("hang")
    with deadline.within(0.5), pytest.raises(Unavailable):
        await client.get_link("x", token=dscgg_token)
    assert len(fake_dscgg.requests) == 1  # five retries allowed, none fits after the first try


async def test_a_fast_failure_is_retried_while_there_is_time(
    fake_dscgg: FakeDscgg, dscgg_session: aiohttp.ClientSession, dscgg_token: str
) -> None:
    client = _client(dscgg_session, fake_dscgg.base_url, retries=2)
    fake_dscgg.add_link("x", owner_id=TEST_USER_ID)
    fake_dscgg.fail_next("server_error", n=2)
    with deadline.within(5.0):
        link = await client.get_link("x", token=dscgg_token)
    assert link.slug == "x"
    assert len(fake_dscgg.requests) == 3


async def test_no_request_is_sent_once_the_deadline_has_passed(
    fake_dscgg: FakeDscgg, dscgg_session: aiohttp.ClientSession, dscgg_token: str
) -> None:
    client = _client(dscgg_session, fake_dscgg.base_url)
    with deadline.within(0.0):
        with pytest.raises(DeadlineExceeded):
            await client.get_link("x", token=dscgg_token)
        with pytest.raises(DeadlineExceeded):
            await client.create_link("x", token=dscgg_token, redirect=SERVER_INVITE, type="server")
    assert fake_dscgg.requests == []


async def test_a_post_is_never_sent_without_time_to_wait_for_its_answer(
    fake_dscgg: FakeDscgg, dscgg_session: aiohttp.ClientSession, dscgg_token: str
) -> None:
    client = _client(dscgg_session, fake_dscgg.base_url, timeout=1.0, retries=0)
    fake_dscgg.fail_next("hang", method="GET")
    with deadline.within(1.5):
        with pytest.raises(Unavailable):
            await client.get_link("x", token=dscgg_token)  # uses 1 s of the 1.5
        with pytest.raises(DeadlineExceeded):
            await client.create_link("x", token=dscgg_token, redirect=SERVER_INVITE, type="server")
    assert [request.method for request in fake_dscgg.requests] == ["GET"]
    assert "x" not in fake_dscgg.links


async def test_a_rate_limit_wait_that_does_not_fit_is_refused_without_sending(
    fake_dscgg: FakeDscgg, dscgg_session: aiohttp.ClientSession, dscgg_token: str
) -> None:
    # One create per 2 s; the second would wait about 2 s, which the client allows (5 s) but the
    # deadline does not: 2.5 s minus the 1 s a POST must keep for its answer.
    client = _client(dscgg_session, fake_dscgg.base_url, timeout=1.0, limits={"create_link": (1, 2.0)})
    with deadline.within(2.5):
        await client.create_link("a", token=dscgg_token, redirect=SERVER_INVITE, type="server")
        with pytest.raises(RateLimited) as caught:
            await client.create_link("b", token=dscgg_token, redirect=SERVER_INVITE, type="server")
    assert caught.value.retry_after > 1.5
    assert [request.raw_path for request in fake_dscgg.requests] == ["/v2/link/a"]


async def test_a_429_is_not_waited_for_past_the_deadline(
    fake_dscgg: FakeDscgg, dscgg_session: aiohttp.ClientSession, dscgg_token: str
) -> None:
    client = _client(dscgg_session, fake_dscgg.base_url)
    fake_dscgg.add_link("x", owner_id=TEST_USER_ID)
    fake_dscgg.fail_next("rate_limit", retry_after=2)  # within the client's 5 s, not the deadline's 1 s
    with deadline.within(1.0), pytest.raises(RateLimited) as caught:
        await client.get_link("x", token=dscgg_token)
    assert caught.value.from_server  # dsc.gg's own answer, said at once
    assert len(fake_dscgg.requests) == 1


async def test_without_a_deadline_nothing_changes(
    fake_dscgg: FakeDscgg, dscgg_session: aiohttp.ClientSession, dscgg_token: str
) -> None:
    client = _client(dscgg_session, fake_dscgg.base_url, timeout=0.3, retries=1)
    fake_dscgg.fail_always("hang")
    assert deadline.remaining() is None
    with pytest.raises(Unavailable) as caught:
        await client.get_link("x", token=dscgg_token)
    assert not isinstance(caught.value, DeadlineExceeded)
    assert len(fake_dscgg.requests) == 2  # the try and its one retry, each waited for in full


# ---------------------------------------------------------------------------------- the budget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(deadline, "_clock", fake)
    return fake


def test_only_time_inside_calls_counts_and_overlapping_calls_count_once(clock: Clock) -> None:
    with deadline.within(1.0):
        clock.now += 30  # e.g. waiting for the user to press a button: not a dsc.gg call
        assert deadline.remaining() == 1.0
        with deadline.charge() as first:
            assert first == deadline.Window(until=1031.0, total=1.0)
            clock.now += 0.2
            with deadline.charge() as second:  # another call, at the same time
                assert second.until == 1031.0  # both end by the same moment
                clock.now += 0.2
            clock.now += 0.1
        assert deadline.remaining() == pytest.approx(0.5)  # 0.5 s of calls, not 0.7
        with deadline.within(5.0):  # an inner budget never has more than the outer one left
            assert deadline.remaining() == pytest.approx(0.5)
            with deadline.charge():
                clock.now += 0.2
        assert deadline.remaining() == pytest.approx(0.3)  # what the inner one used counts outside
        with deadline.charge():
            clock.now += 1.0
        assert deadline.remaining() == 0.0
    assert deadline.remaining() is None
    with deadline.charge() as unlimited:
        assert unlimited.until == math.inf


async def test_tasks_started_under_a_deadline_share_it(clock: Clock) -> None:
    async def call() -> None:
        with deadline.charge():
            clock.now += 0.4

    deadline.start(1.0)  # this test's own task: gone when it ends
    await asyncio.gather(asyncio.create_task(call()), asyncio.create_task(call()))
    assert deadline.remaining() == pytest.approx(0.2)
