"""/top and /search through the real tree, with Discord and dsc.gg faked on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from bot.dscgg import Endpoint
from cogs.discovery import DiscoveryCog
from tests.fixtures.bot import ADMIN_TOKEN, WiredBot
from tests.harness import ADMIN, MEMBER, OTHER_MEMBER, HarnessError, Message, Result

OWNER_ID = 5_555_555_555


@pytest.fixture
def w(wired_bot: WiredBot) -> WiredBot:
    """No token registered: /top must work without one."""
    return wired_bot


@pytest.fixture
async def with_token(wired_bot: WiredBot) -> WiredBot:
    await wired_bot.bot.token_store.set(wired_bot.guild_id, ADMIN_TOKEN, set_by=ADMIN.id)
    return wired_bot


def whitelist(w: WiredBot) -> None:
    w.dscgg.keys[ADMIN_TOKEN].whitelisted = True


def seed(w: WiredBot, n: int, **kwargs: Any) -> None:
    for i in range(n):
        w.dscgg.add_link(f"top{i:02d}", owner_id=OWNER_ID, clicks=1000 - i, **kwargs)


def cog(w: WiredBot) -> Any:
    found = w.bot.get_cog("DiscoveryCog")
    assert found is not None
    assert type(found).__name__ == DiscoveryCog.__name__
    return found


def button(message: Message | None, label: str) -> str:
    assert message is not None
    for comp in message.buttons():
        if comp.get("label") == label:
            return str(comp["custom_id"])
    raise AssertionError(f"no {label!r} button in {[c.get('label') for c in message.buttons()]}")


def footer(result: Result) -> str:
    message = result.final_message
    assert message is not None
    return str(message.embeds[0]["footer"]["text"])


# ---------------------------------------------------------------------------------------------- top


async def test_top_works_for_a_member_without_a_token_and_is_ephemeral(w: WiredBot) -> None:
    seed(w, 40)
    result = await w.run("top", user=MEMBER)
    assert result.initial is not None
    assert result.initial.type == 5
    assert result.initial.ephemeral
    assert result.ephemeral
    [request] = w.dscgg.requests
    assert request.endpoint == "get_top_links"
    assert "Authorization" not in request.headers
    message = result.final_message
    assert message is not None
    assert not message.loading
    embed = message.embeds[0]
    assert embed["title"] == "Top dsc.gg links"
    assert embed["fields"][0]["name"] == "1. dsc.gg/top00"
    assert "1,000 clicks" not in embed["fields"][0]["value"]  # /top carries no stats
    assert footer(result) == "Page 1/4 · 40 links"
    assert message.allowed_mentions is not None
    assert message.allowed_mentions.get("parse") == []


async def test_top_pages_forward_and_back(w: WiredBot) -> None:
    seed(w, 25)
    result = await w.run("top", user=MEMBER)
    message = result.final_message
    assert message is not None
    press = await w.harness.click(result, button(message, "Next ›"), user=MEMBER)
    assert press.initial is not None
    assert press.initial.type == 6  # acknowledged at once, then the message is edited
    assert press.rejected_callbacks == []
    assert footer(result) == "Page 2/3 · 25 links"
    assert message.embeds[0]["fields"][0]["name"] == "11. dsc.gg/top10"
    await w.harness.click(result, button(message, "»"), user=MEMBER)
    assert footer(result) == "Page 3/3 · 25 links"
    assert len(message.embeds[0]["fields"]) == 5
    await w.harness.click(result, button(message, "«"), user=MEMBER)
    assert footer(result) == "Page 1/3 · 25 links"
    assert len(w.dscgg.requests) == 1  # pages come from the one answer


async def test_top_filters_by_type(w: WiredBot) -> None:
    seed(w, 3)
    w.dscgg.add_link(
        "abot", owner_id=OWNER_ID, type="bot", redirect="https://discord.com/oauth2/authorize?client_id=1"
    )
    result = await w.run("top", {"type": "bot"})
    assert w.dscgg.requests[0].query == {"type": "bot"}
    message = result.final_message
    assert message is not None
    assert message.embeds[0]["title"] == "Top dsc.gg bots"
    assert [f["name"] for f in message.embeds[0]["fields"]] == ["1. dsc.gg/abot"]


async def test_top_public_is_visible_but_only_the_invoker_pages(w: WiredBot) -> None:
    seed(w, 15)
    result = await w.run("top", {"public": True}, user=MEMBER)
    assert result.initial is not None
    assert result.initial.type == 5
    assert not result.initial.ephemeral
    assert not result.ephemeral
    other = await w.harness.click(result, button(result.final_message, "Next ›"), user=OTHER_MEMBER)
    assert other.initial is not None
    assert other.initial.type == 4
    assert other.initial.ephemeral
    assert other.initial.content == "Only the person who ran the command can use these buttons."
    assert footer(result) == "Page 1/2 · 15 links"


async def test_top_buttons_do_not_expire(w: WiredBot) -> None:
    """Page buttons have no timeout: however long after the command, a press pages through the
    results, editing the message with its own token (the command's may have expired long ago)."""
    seed(w, 15)
    result = await w.run("top", user=MEMBER)
    message = result.final_message
    assert message is not None
    command_requests = len(result.requests)
    assert await w.harness.expire_views() == []  # whatever held a timer has run out
    assert not any(b.get("disabled") for b in message.buttons() if b.get("label") in ("Next ›", "»"))
    press = await w.harness.click(result, button(message, "Next ›"), user=MEMBER)
    assert press.initial is not None
    assert press.initial.type == 6
    assert [r.route for r in press.requests] == ["interaction_callback", "edit_original"]
    assert len(result.requests) == command_requests
    assert footer(result) == "Page 2/2 · 15 links"


@pytest.mark.parametrize("fault", [None, {"kind": "code", "code": "not_found", "status": 404}])
async def test_top_with_no_results(w: WiredBot, fault: dict[str, Any] | None) -> None:
    if fault is not None:
        kind = fault.pop("kind")
        w.dscgg.fail_next(kind, **fault)
    result = await w.run("top")
    message = result.final_message
    assert message is not None
    assert "dsc.gg has no top links to show right now." in message.text()
    assert message.buttons() == []
    assert footer(result) == "Page 1/1 · 0 links"


async def test_top_escapes_link_text(w: WiredBot) -> None:
    w.dscgg.add_link(
        "x",
        owner_id=OWNER_ID,
        meta={"title": "@everyone **free nitro**", "description": "<@&123456789012345678>"},
    )
    result = await w.run("top")
    text = result.text()
    assert "@everyone" not in text
    assert "\\*\\*free nitro\\*\\*" in text
    assert "<@&123456789012345678>" not in text


async def test_top_cooldown_is_per_member(w: WiredBot) -> None:
    seed(w, 2)
    first = await w.run("top", user=MEMBER)
    assert "Top dsc.gg links" in first.text()
    again = await w.run("top", user=MEMBER)
    assert again.initial is not None
    assert again.initial.type == 4
    assert again.ephemeral
    assert "You're going a bit fast" in again.text()
    assert "<t:" in again.text()
    assert len(w.dscgg.requests) == 1
    other = await w.run("top", user=OTHER_MEMBER)
    assert "Top dsc.gg links" in other.text()
    assert len(w.dscgg.requests) == 1  # the first answer is still fresh: shared, not asked again


async def test_top_when_dscgg_is_down(w: WiredBot) -> None:
    w.dscgg.fail_always("server_error")
    result = await w.run("top", {"public": True})
    [message] = result.messages
    assert message.content == "dsc.gg is not answering properly, try again later."
    assert message.ephemeral  # the error is never public, even for public:true


async def test_slow_top_is_acknowledged_in_time(w: WiredBot) -> None:
    seed(w, 1)
    w.dscgg.latency = 1.5
    result = await w.run("top", timeout=20)
    assert result.first_response_seconds is not None
    assert result.first_response_seconds < 3.0
    # Answered before dsc.gg was asked (both fakes stamp with time.monotonic()).
    [first, *_] = result.callbacks
    assert first.type == 5
    assert w.dscgg.requests
    assert first.t_monotonic < w.dscgg.requests[0].at
    message = result.final_message
    assert message is not None
    assert not message.loading
    assert "dsc.gg/top00" in message.text()


async def test_discovery_is_not_offered_in_dms(w: WiredBot) -> None:
    for command in ("top", "search"):
        with pytest.raises(HarnessError, match="guild-only"):
            await w.run(command, {"query": "x"} if command == "search" else {}, dm=True)


# ------------------------------------------------------------------------------------------- search


async def test_search_with_a_whitelisted_token(with_token: WiredBot) -> None:
    w = with_token
    whitelist(w)
    seed(w, 12)
    w.dscgg.add_link("other", owner_id=OWNER_ID)
    result = await w.run("search", {"query": "top", "limit": 11}, user=MEMBER)
    assert result.ephemeral
    [request] = w.dscgg.requests
    assert request.endpoint == "search_links"
    assert request.headers["Authorization"] == ADMIN_TOKEN
    assert request.query == {"q": "top", "limit": "11"}
    message = result.final_message
    assert message is not None
    assert message.embeds[0]["title"] == "dsc.gg links matching “top”"
    assert footer(result) == "Page 1/2 · 11 links"
    assert ADMIN_TOKEN not in result.text()


async def test_search_query_is_sent_as_typed(with_token: WiredBot) -> None:
    w = with_token
    whitelist(w)
    result = await w.run("search", {"query": "a b&c#x", "type": "template"})
    [request] = w.dscgg.requests
    assert request.query == {"q": "a b&c#x", "type": "template"}
    assert "No dsc.gg links match “a b&c#x”." in result.text()


async def test_search_without_whitelisting_explains_it(with_token: WiredBot) -> None:
    result = await with_token.run("search", {"query": "x"}, user=MEMBER)
    text = result.text()
    assert "**whitelisted** dsc.gg app" in text
    assert "dsc.gg/developer" in text
    assert "`/top` still works" in text
    assert "whitelist_only" not in text
    assert result.ephemeral


async def test_search_without_a_token(w: WiredBot) -> None:
    result = await w.run("search", {"query": "x"}, user=MEMBER)
    assert "/dscgg token set" in result.text()
    assert w.dscgg.requests == []


@pytest.mark.parametrize("query", ["   ", "\t"])
async def test_blank_search_is_refused_locally(with_token: WiredBot, query: str) -> None:
    result = await with_token.run("search", {"query": query})
    assert result.initial is not None
    assert result.initial.type == 4
    assert "Check the `query` option" in result.text()
    assert with_token.dscgg.requests == []


async def test_search_public_error_stays_private(with_token: WiredBot) -> None:
    result = await with_token.run("search", {"query": "x", "public": True})
    [message] = result.messages
    assert message.ephemeral
    assert "whitelisted" in message.content


async def test_search_cooldown(with_token: WiredBot) -> None:
    w = with_token
    whitelist(w)
    await w.run("search", {"query": "x"})
    again = await w.run("search", {"query": "y"})
    assert "You're going a bit fast" in again.text()
    assert len(w.dscgg.requests) == 1


@pytest.mark.parametrize("query", ["   ", "a\x07b"])
async def test_a_refused_search_does_not_spend_the_cooldown(with_token: WiredBot, query: str) -> None:
    w = with_token
    whitelist(w)
    seed(w, 2)
    refused = await w.run("search", {"query": query})
    assert "Check the `query` option" in refused.text()
    corrected = await w.run("search", {"query": "top"})
    assert "You're going a bit fast" not in corrected.text()
    assert "dsc.gg/top00" in corrected.text()
    assert len(w.dscgg.requests) == 1
    again = await w.run("search", {"query": "top"})
    assert again.initial is not None
    assert again.initial.type == 4
    assert "You're going a bit fast" in again.text()
    assert len(w.dscgg.requests) == 1


# ------------------------------------------------------------------- /top shared by every server


@pytest.fixture
async def servers(
    make_wired_bot: Callable[..., AbstractAsyncContextManager[WiredBot]],
) -> AsyncIterator[WiredBot]:
    """30 servers, none with a token."""
    async with make_wired_bot(guilds=30) as wired:
        yield wired


def top_of(result: Result) -> list[str]:
    message = result.final_message
    assert message is not None, result.text()
    assert not message.loading
    if not message.embeds:
        return [message.content]
    return [field["name"] for field in message.embeds[0].get("fields", [])]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_thirty_servers_asking_top_at_once_make_one_request(servers: WiredBot) -> None:
    w = servers
    seed(w, 3)
    w.dscgg.latency = 0.2  # the answer is still on its way while the others ask
    results = await asyncio.gather(
        *(w.run("top", user=MEMBER, guild=guild_id) for guild_id in w.harness.guild_ids)
    )
    assert len(results) == 30
    for result in results:
        assert top_of(result) == ["1. dsc.gg/top00", "2. dsc.gg/top01", "3. dsc.gg/top02"]
    assert len(w.dscgg.requests) == 1
    assert w.dscgg.rate_limited_responses == 0


async def test_asks_during_a_request_wait_for_it_even_when_nothing_is_kept(
    make_wired_bot: Callable[..., AbstractAsyncContextManager[WiredBot]],
) -> None:
    async with make_wired_bot(guilds=5, settings={"top_cache_ttl": 0}) as w:
        seed(w, 1)
        w.dscgg.latency = 0.3
        results = await asyncio.gather(
            *(w.run("top", user=MEMBER, guild=guild_id) for guild_id in w.harness.guild_ids)
        )
        assert all(top_of(result) == ["1. dsc.gg/top00"] for result in results)
        assert len(w.dscgg.requests) == 1
        await w.run("top", user=OTHER_MEMBER)
        assert len(w.dscgg.requests) == 2  # TOP_CACHE_TTL=0: a later ask goes to dsc.gg again


async def test_top_is_asked_again_once_the_kept_answer_is_stale(w: WiredBot) -> None:
    clock = Clock()
    w.bot.links.top_cache.clock = clock
    seed(w, 1)
    assert top_of(await w.run("top", user=MEMBER)) == ["1. dsc.gg/top00"]
    w.dscgg.add_link("newcomer", owner_id=OWNER_ID, clicks=10_000)
    clock.now += 59.0
    assert top_of(await w.run("top", user=OTHER_MEMBER)) == ["1. dsc.gg/top00"]  # still fresh
    assert len(w.dscgg.requests) == 1
    clock.now += 1.0  # 60 s: TOP_CACHE_TTL's default
    assert top_of(await w.run("top", user=ADMIN)) == ["1. dsc.gg/newcomer", "2. dsc.gg/top00"]
    assert len(w.dscgg.requests) == 2


async def test_top_is_kept_per_type(w: WiredBot) -> None:
    seed(w, 1)
    await w.run("top", user=MEMBER)
    result = await w.run("top", {"type": "bot"}, user=OTHER_MEMBER)
    assert top_of(result) == []
    assert "dsc.gg has no top links to show right now." in result.text()
    assert [request.query for request in w.dscgg.requests] == [{}, {"type": "bot"}]


async def test_a_failed_top_is_not_kept(w: WiredBot) -> None:
    seed(w, 1)
    w.dscgg.fail_next("server_error", n=3)  # the try and both retries
    failed = await w.run("top", user=MEMBER)
    assert top_of(failed) == ["dsc.gg is not answering properly, try again later."]
    assert top_of(await w.run("top", user=OTHER_MEMBER)) == ["1. dsc.gg/top00"]
    assert len(w.dscgg.requests) == 4


async def test_a_top_rate_limit_does_not_blame_the_servers_token(w: WiredBot) -> None:
    w.dscgg.fail_next("rate_limit", retry_after=30)  # dsc.gg itself says no
    text = (await w.run("top", user=MEMBER)).text()
    assert "this server's token" not in text
    assert "dsc.gg is rate limiting this bot for loading the top links" in text
    assert "shared by everyone using this bot" in text

    w.bot.links.top_cache.clear()
    w.bot.dscgg.rate_limiter.block(None, Endpoint.GET_TOP_LINKS, 30)  # our own count says no
    text = (await w.run("top", user=OTHER_MEMBER)).text()
    assert "this server's token" not in text
    assert "That would go over dsc.gg's limit for loading the top links" in text
    assert "shared by everyone using this bot" in text
    assert len(w.dscgg.requests) == 1
