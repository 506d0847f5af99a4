"""Page buttons that keep working: state in the custom_id, presses after a restart, quick presses.

The command tests (test_discovery_commands.py, test_link_commands.py) page through /top, /search and
/link list within one process; these tests restart the bot between the command and the press (a new
DscBot on the same database, Discord and dsc.gg, with nothing in memory), press twice at once, and
press buttons whose custom_id this bot could not have written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import discord
import pytest

from bot.audit import AuditEvent, EventKind
from bot.client import DscBot
from bot.crypto import TokenCipher
from bot.errors import PagesUnavailable, describe
from bot.pager import CUSTOM_ID_MAX, LAST_PAGE, Button, Page, PageKey, Pager
from bot.views import NOT_YOURS
from tests.fakes.discord import EVERYONE_PERMISSIONS, PERMISSION_ROLE, PERMISSION_USER, command_permission
from tests.fixtures.bot import ADMIN_TOKEN, WiredBot
from tests.harness import ADMIN, ADMINISTRATOR_USER, MEMBER, OTHER_MEMBER, FakeUser, Harness, Message, Result

OWNER_ID = 5_555_555_555
UNAVAILABLE = "These page buttons don't work any more."
NEEDS_MANAGE_SERVER = "You need the **Manage Server** permission to use this command."
DENIED = (
    "This server's command permissions (Server Settings → Integrations) don't let you use this command "
    "here. Ask an admin if you need it."
)
#: The admin who ran the command, after Manage Server was taken from them.
DEMOTED = ADMIN.with_permissions(EVERYONE_PERMISSIONS)


# ------------------------------------------------------------------------------------------ helpers


@contextlib.asynccontextmanager
async def restarted(w: WiredBot) -> AsyncIterator[Harness]:
    """The bot process restarted: the old bot is closed, and a new one, with no view, page or
    result in memory, logs in on the same database, Discord and dsc.gg."""
    await w.harness.close()
    bot = DscBot(w.settings, w.db, w.bot.session, cipher=TokenCipher(w.keys), dscgg=w.bot.dscgg)
    async with Harness(bot, w.discord) as harness:
        assert harness.bot._connection._view_store._views == {}
        yield harness


def shown(result: Result) -> Message:
    message = result.final_message
    assert message is not None
    return message


def seed(w: WiredBot, n: int, **kwargs: Any) -> None:
    for i in range(n):
        w.dscgg.add_link(f"top{i:02d}", owner_id=OWNER_ID, clicks=1000 - i, **kwargs)


def button(message: Message | None, label: str) -> str:
    assert message is not None
    for comp in message.buttons():
        if comp.get("label") == label:
            return str(comp["custom_id"])
    raise AssertionError(f"no {label!r} button in {[c.get('label') for c in message.buttons()]}")


def footer(message: Message | None) -> str:
    assert message is not None
    return str(message.embeds[0]["footer"]["text"])


def first_field(message: Message | None) -> str:
    assert message is not None
    return str(message.embeds[0]["fields"][0]["name"])


def acknowledged(press: Result) -> None:
    """Answered at once with a deferred update, and nothing Discord refused."""
    assert press.initial is not None
    assert press.initial.type == 6
    assert press.rejected_callbacks == []


def edits_of(w: WiredBot, presses: list[Result]) -> list[str]:
    """The footers of the message edits the presses made, in the order Discord received them."""
    tokens = {press.token for press in presses}
    return [
        r.body["embeds"][0]["footer"]["text"]
        for r in w.discord.requests
        if r.route == "edit_original" and r.params.get("token") in tokens
    ]


async def with_token(w: WiredBot) -> None:
    await w.bot.token_store.set(w.guild_id, ADMIN_TOKEN, set_by=ADMIN.id)
    w.dscgg.keys[ADMIN_TOKEN].whitelisted = True


def only_reply(press: Result) -> str:
    """The one ephemeral sentence a press was answered with: its own reply, or (when the press was
    acknowledged first) the follow-up."""
    assert press.initial is not None
    assert press.rejected_callbacks == []
    if press.initial.type == 4:
        assert press.initial.ephemeral
        assert press.followups == []
        return press.initial.content or ""
    assert press.initial.type == 6
    [reply] = press.followups
    assert reply.ephemeral
    return reply.content


def retarget(message: Message | None, label: str, custom_id: str) -> None:
    """Give the button ``label`` of the stored message another custom_id (as an old build, or a
    forged client, might have)."""
    assert message is not None
    for comp in message.buttons():
        if comp.get("label") == label:
            comp["custom_id"] = custom_id
            return
    raise AssertionError(f"no {label!r} button")


# ---------------------------------------------------------------------------------- the custom_id


def test_a_key_survives_its_custom_id() -> None:
    key = PageKey("search", 3, 1_180_000_000_000_000_101, Button.NEXT, "bot:25:a:b ü 🎉")
    assert key.custom_id == "pg:search:3:1180000000000000101:n:bot:25:a:b ü 🎉"
    assert PageKey.parse(key.custom_id) == key
    bare = PageKey("list", 0, 1, Button.LAST)
    assert bare.custom_id == "pg:list:0:1:l"
    assert PageKey.parse(bare.custom_id) == bare
    stashed = PageKey("search", 0, 1, Button.FIRST, "AbC-_9", stashed=True)
    assert stashed.custom_id == "pg:search:0:1:f~AbC-_9"
    assert PageKey.parse(stashed.custom_id) == stashed


@pytest.mark.parametrize(
    "custom_id",
    ["pg:", "pg:top", "pg:top:x:1:n", "pg:top:0:1:z", "pg:Top:0:1:n", "pg:top:0::n", "pg:top:-1:1:n"],
)
def test_malformed_custom_ids_parse_to_nothing(custom_id: str) -> None:
    assert PageKey.parse(custom_id) is None


def test_buttons_lead_where_they_say() -> None:
    assert [Button.FIRST.target(4), Button.PREVIOUS.target(4), Button.NEXT.target(4)] == [0, 3, 5]
    assert Button.PREVIOUS.target(0) == 0
    assert Button.LAST.target(4) == LAST_PAGE
    assert Button.POSITION.target(4) == 4


def test_arguments_too_long_for_a_custom_id_are_kept_in_memory() -> None:
    pager = Pager()
    query = "🎉" * 45  # 45 characters, 90 UTF-16 code units as Discord counts them
    key = pager._fit(PageKey("search", 0, 1_180_000_000_000_000_101, Button.NEXT, f"::{query}"))
    assert key.stashed
    assert len(key.custom_id.encode("utf-16-le")) // 2 <= CUSTOM_ID_MAX
    assert pager._unstash(key.args) == f"::{query}"
    short = pager._fit(PageKey("search", 0, 1, Button.NEXT, "::tickets"))
    assert not short.stashed


async def test_sources_have_short_unique_names() -> None:
    async def render(bot: Any, interaction: Any, page: int, args: str) -> Page:
        return Page(discord.Embed(), 0, 1)

    pager = Pager()
    pager.register("audit", render, command="/dscgg audit")
    with pytest.raises(ValueError, match="already"):
        pager.register("audit", render)
    for bad in ("Audit", "a:b", "", "x" * 17):
        with pytest.raises(ValueError, match="must match"):
            pager.register(bad, render)
    pager.unregister("audit")
    pager.register("audit", render)


def test_a_guarded_source_names_its_command() -> None:
    async def render(bot: Any, interaction: Any, page: int, args: str) -> Page:
        return Page(discord.Embed(), 0, 1)

    with pytest.raises(ValueError, match="must name its command"):
        Pager().register("audit", render, guarded=True)


def test_the_unavailable_sentence_names_the_command() -> None:
    assert describe(PagesUnavailable("search")) == (
        "These page buttons don't work any more. Run `/search` again to get fresh pages."
    )
    assert describe(PagesUnavailable()) == (
        "These page buttons don't work any more. Run the command again to get fresh pages."
    )


# ------------------------------------------------------------------------------ after a restart


async def test_top_pages_after_a_restart(wired_bot: WiredBot) -> None:
    w = wired_bot
    seed(w, 35)
    result = await w.run("top", {"type": "server"}, user=MEMBER)
    message = shown(result)
    assert footer(message) == "Page 1/4 · 35 links"
    async with restarted(w) as h:
        press = await h.click(message, button(message, "Next ›"), user=MEMBER)
        acknowledged(press)
        assert footer(message) == "Page 2/4 · 35 links"
        assert first_field(message) == "11. dsc.gg/top10"
        assert message.embeds[0]["title"] == "Top dsc.gg servers"
        assert message.ephemeral  # as the command chose
        # The new process asked dsc.gg once, with the same type; the next press reuses that answer.
        assert [r.query for r in w.dscgg.requests] == [{"type": "server"}, {"type": "server"}]
        acknowledged(await h.click(message, button(message, "»"), user=MEMBER))
        assert footer(message) == "Page 4/4 · 35 links"
        assert len(w.dscgg.requests) == 2


async def test_a_public_search_pages_after_a_restart(wired_bot: WiredBot) -> None:
    w = wired_bot
    await with_token(w)
    seed(w, 30)
    w.dscgg.add_link("unrelated", owner_id=OWNER_ID)
    result = await w.run("search", {"query": "top", "limit": 25, "public": True}, user=MEMBER)
    message = shown(result)
    assert footer(message) == "Page 1/3 · 25 links"
    async with restarted(w) as h:
        press = await h.click(message, button(message, "»"), user=MEMBER)
        acknowledged(press)
        assert footer(message) == "Page 3/3 · 25 links"
        assert first_field(message) == "21. dsc.gg/top20"
        assert not message.ephemeral
        assert message.embeds[0]["title"] == "dsc.gg links matching “top”"
        [_, again] = w.dscgg.requests
        assert again.endpoint == "search_links"
        assert again.query == {"q": "top", "limit": "25"}
        assert again.headers["Authorization"] == ADMIN_TOKEN


async def test_link_list_pages_after_a_restart(wired_bot: WiredBot) -> None:
    w = wired_bot
    for i in range(23):
        await w.bot.link_records.record(w.guild_id, f"link{i:02d}", ADMIN.id)
    result = await w.run("link list")
    message = shown(result)
    assert footer(message) == "Page 1/3 · 23 links"
    async with restarted(w) as h:
        acknowledged(await h.click(message, button(message, "Next ›"), user=ADMIN))
        assert footer(message) == "Page 2/3 · 23 links"
        assert "link10" in message.text()
        acknowledged(await h.click(message, button(message, "‹ Prev"), user=ADMIN))
        assert footer(message) == "Page 1/3 · 23 links"


async def test_a_strangers_press_after_a_restart_is_refused(wired_bot: WiredBot) -> None:
    w = wired_bot
    seed(w, 15)
    result = await w.run("top", {"public": True}, user=MEMBER)
    message = shown(result)
    async with restarted(w) as h:
        other = await h.click(message, button(message, "Next ›"), user=OTHER_MEMBER)
        assert other.initial is not None
        assert other.initial.type == 4
        assert other.initial.ephemeral
        assert other.initial.content == NOT_YOURS
        assert footer(message) == "Page 1/2 · 15 links"
        assert len(w.dscgg.requests) == 1  # nothing rendered for a stranger


# ------------------------------------------------------------------------------ quick presses


async def test_two_quick_presses_of_next_end_two_pages_later(wired_bot: WiredBot) -> None:
    w = wired_bot
    seed(w, 35)
    result = await w.run("top", user=MEMBER)
    message = shown(result)
    # Both presses leave the client before the first edit arrives: both carry page 1's custom_id.
    payloads = [
        w.harness.payloads.component(message, button(message, "Next ›"), user=MEMBER, origin=result.payload)
        for _ in range(2)
    ]
    presses = list(await asyncio.gather(*(w.harness.dispatch(p) for p in payloads)))
    for press in presses:
        acknowledged(press)
    assert footer(message) == "Page 3/4 · 35 links"
    assert first_field(message) == "21. dsc.gg/top20"
    assert edits_of(w, presses) == ["Page 2/4 · 35 links", "Page 3/4 · 35 links"]
    assert button(message, "3/4")


async def test_a_press_waits_for_the_one_before_and_edits_land_in_order(
    wired_bot: WiredBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first press's page is still being read when the second press arrives: the second one is
    acknowledged at once, moves on from the page the first one shows, and edits after it."""
    w = wired_bot
    for i in range(35):
        await w.bot.link_records.record(w.guild_id, f"l{i:02d}", ADMIN.id)
    result = await w.run("link list")
    message = shown(result)
    payloads = [
        w.harness.payloads.component(message, button(message, "Next ›"), user=ADMIN, origin=result.payload)
        for _ in range(2)
    ]
    original = w.bot.links.list_records
    reads: list[int] = []

    def deferred_updates() -> int:
        ids = {int(p["id"]) for p in payloads}
        return sum(
            1 for cb in w.discord.callbacks if cb.interaction_id in ids and cb.type == 6 and cb.accepted
        )

    async def slow_first_read(guild_id: int, page: int, *args: Any) -> Any:
        reads.append(page)
        if len(reads) == 1:
            await w.discord.wait_for(lambda: deferred_updates() == 2)  # the second press is in
        return await original(guild_id, page, *args)

    monkeypatch.setattr(w.bot.links, "list_records", slow_first_read)
    presses = list(await asyncio.gather(*(w.harness.dispatch(p) for p in payloads)))
    for press in presses:
        acknowledged(press)
    assert reads == [1, 2]
    assert edits_of(w, presses) == ["Page 2/4 · 35 links", "Page 3/4 · 35 links"]
    assert footer(message) == "Page 3/4 · 35 links"


async def test_a_late_press_after_a_quick_one_still_moves_on(wired_bot: WiredBot) -> None:
    """A press that left the client before the previous edit arrived, but reaches the bot after
    that press was done, still counts from the page now shown."""
    w = wired_bot
    seed(w, 35)
    result = await w.run("top", user=MEMBER)
    message = shown(result)
    stale = w.harness.payloads.component(
        message, button(message, "Next ›"), user=MEMBER, origin=result.payload
    )
    acknowledged(await w.harness.click(result, button(message, "Next ›"), user=MEMBER))
    assert footer(message) == "Page 2/4 · 35 links"
    acknowledged(await w.harness.dispatch(stale))
    assert footer(message) == "Page 3/4 · 35 links"


# ------------------------------------------------------------------ custom_ids nobody can serve


@pytest.mark.parametrize(
    ("custom_id", "sentence"),
    [
        ("pg:", "Run the command again"),
        ("pg:top:zero:1:n", "Run the command again"),
        ("pg:nosuch:0:{owner}:n", "Run the command again"),
        ("pg:top:0:{owner}:n:weird", "Run `/top` again"),
        ("pg:search:0:{owner}:n:server:500:x", "Run `/search` again"),
        ("pg:search:0:{owner}:n::10:", "Run `/search` again"),
        ("pg:search:0:{owner}:n~neverstored", "Run `/search` again"),
    ],
)
async def test_a_custom_id_nobody_can_serve_gets_a_friendly_sentence(
    wired_bot: WiredBot, custom_id: str, sentence: str
) -> None:
    w = wired_bot
    await with_token(w)
    seed(w, 15)
    result = await w.run("top", user=MEMBER)
    message = shown(result)
    forged = custom_id.format(owner=MEMBER.id)
    retarget(message, "Next ›", forged)
    press = await w.harness.click(result, forged, user=MEMBER)
    text = only_reply(press)
    assert text.startswith(UNAVAILABLE)
    assert sentence in text
    assert footer(message) == "Page 1/2 · 15 links"
    assert len(w.dscgg.requests) == 1


async def test_a_search_too_long_for_a_custom_id_pages_until_a_restart(wired_bot: WiredBot) -> None:
    w = wired_bot
    await with_token(w)
    query = "the friendliest community server for " + "rust and python " * 3 + "developers"
    assert len(query) > 80
    for i in range(12):
        w.dscgg.add_link(f"dev{i:02d}", owner_id=OWNER_ID, meta={"title": f"{query} #{i}"})
    result = await w.run("search", {"query": query}, user=MEMBER)
    message = shown(result)
    assert all(len(cid) <= CUSTOM_ID_MAX for cid in message.custom_ids)
    acknowledged(await w.harness.click(result, button(message, "Next ›"), user=MEMBER))
    assert footer(message) == "Page 2/2 · 12 links"
    async with restarted(w) as h:
        press = await h.click(message, button(message, "«"), user=MEMBER)
        assert press.initial is not None
        assert press.initial.ephemeral
        assert press.initial.content == (
            "These page buttons don't work any more. Run `/search` again to get fresh pages."
        )
        assert footer(message) == "Page 2/2 · 12 links"


async def test_a_press_during_shutdown_is_told_the_bot_is_restarting(wired_bot: WiredBot) -> None:
    w = wired_bot
    seed(w, 15)
    result = await w.run("top", user=MEMBER)
    message = shown(result)
    w.bot.tree.begin_shutdown()
    press = await w.harness.click(result, button(message, "Next ›"), user=MEMBER)
    assert press.initial is not None
    assert press.initial.ephemeral
    assert press.initial.content == "The bot is restarting. Try again in a moment."
    assert footer(message) == "Page 1/2 · 15 links"


# ------------------------------------------------------------------------ pages only admins may see


async def listed(w: WiredBot, n: int = 23, *, user: FakeUser = ADMIN) -> Message:
    for i in range(n):
        await w.bot.link_records.record(w.guild_id, f"link{i:02d}", ADMIN.id)
    message = shown(await w.run("link list", user=user))
    assert footer(message) == "Page 1/3 · 23 links"
    return message


def link_id(w: WiredBot) -> int:
    cid = w.discord.command_id("link")
    assert cid is not None
    return cid


def link_managers(w: WiredBot) -> int:
    return w.guild_id + 9  # a role the server made, say "Link managers"


async def test_a_member_who_lost_manage_server_cannot_page_the_link_list(wired_bot: WiredBot) -> None:
    w = wired_bot
    message = await listed(w)
    press = await w.harness.click(message, button(message, "Next ›"), user=DEMOTED)
    assert only_reply(press) == NEEDS_MANAGE_SERVER
    assert footer(message) == "Page 1/3 · 23 links"
    assert edits_of(w, [press]) == []
    # Someone else, even with Manage Server, is still told the buttons are not theirs.
    other = await w.harness.click(message, button(message, "Next ›"), user=ADMINISTRATOR_USER)
    assert only_reply(other) == NOT_YOURS
    # Given Manage Server back, the same member pages on.
    acknowledged(await w.harness.click(message, button(message, "Next ›"), user=ADMIN))
    assert footer(message) == "Page 2/3 · 23 links"


async def test_a_member_who_lost_manage_server_cannot_page_the_audit_log_after_a_restart(
    wired_bot: WiredBot,
) -> None:
    w = wired_bot
    for i in range(13):
        await w.bot.audit.record(
            AuditEvent(w.guild_id, EventKind.LINK_DELETED, actor_id=ADMIN.id, slug=f"l{i}")
        )
    message = shown(await w.run("dscgg audit"))
    assert footer(message) == "Page 1/2 · 13 events · newest first"
    async with restarted(w) as h:
        press = await h.click(message, button(message, "»"), user=DEMOTED)
        assert only_reply(press) == NEEDS_MANAGE_SERVER
        assert footer(message) == "Page 1/2 · 13 events · newest first"
        acknowledged(await h.click(message, button(message, "»"), user=ADMIN))
        assert footer(message) == "Page 2/2 · 13 events · newest first"


async def test_an_override_denying_the_member_on_link_refuses_their_presses(wired_bot: WiredBot) -> None:
    w = wired_bot
    message = await listed(w)
    event = w.discord.set_command_permissions(
        w.guild_id, link_id(w), [command_permission(ADMIN.id, PERMISSION_USER, False)]
    )
    assert await w.harness.gateway_event("APPLICATION_COMMAND_PERMISSIONS_UPDATE", event) == []
    press = await w.harness.click(message, button(message, "Next ›"), user=ADMIN)
    assert only_reply(press) == DENIED
    assert footer(message) == "Page 1/3 · 23 links"


async def test_after_a_restart_a_press_finds_the_commands_overrides(wired_bot: WiredBot) -> None:
    """The new process has not synced (nothing changed): it asks Discord for its commands' ids once."""
    w = wired_bot
    message = await listed(w)
    w.discord.set_command_permissions(
        w.guild_id, link_id(w), [command_permission(ADMIN.id, PERMISSION_USER, False)]
    )
    async with restarted(w) as h:
        assert len(w.discord.syncs) == 1  # only the first process synced
        for label in ("Next ›", "»"):
            assert only_reply(await h.click(message, button(message, label), user=ADMIN)) == DENIED
        assert footer(message) == "Page 1/3 · 23 links"
        assert len(w.discord.requests_to("get_global_commands")) == 1


async def test_a_role_given_link_in_integrations_pages_after_a_restart(wired_bot: WiredBot) -> None:
    """Allowed on /link without Manage Server: the press looks at /link's own overrides, as the
    command did, rather than only at the app-wide ones."""
    w = wired_bot
    manager = FakeUser(id=1_180_000_000_000_000_201, name="manager", roles=(link_managers(w),))
    w.discord.set_command_permissions(
        w.guild_id, link_id(w), [command_permission(link_managers(w), PERMISSION_ROLE, True)]
    )
    message = await listed(w, user=manager)
    acknowledged(await w.harness.click(message, button(message, "Next ›"), user=manager))
    assert footer(message) == "Page 2/3 · 23 links"
    async with restarted(w) as h:
        acknowledged(await h.click(message, button(message, "Next ›"), user=manager))
        assert footer(message) == "Page 3/3 · 23 links"


async def test_when_discord_will_not_list_the_commands_the_default_rule_decides(
    wired_bot: WiredBot, caplog: pytest.LogCaptureFixture
) -> None:
    """Without /link's id only the app-wide overrides and Manage Server apply: the admin still pages,
    the member who lost Manage Server is still refused, and the failure is logged."""
    w = wired_bot
    message = await listed(w)
    w.discord.fail("get_global_commands", status=503, message="Service Unavailable")
    async with restarted(w) as h:
        with caplog.at_level(logging.WARNING, logger="bot.tree"):
            acknowledged(await h.click(message, button(message, "Next ›"), user=ADMIN))
            assert footer(message) == "Page 2/3 · 23 links"
            press = await h.click(message, button(message, "Next ›"), user=DEMOTED)
            assert only_reply(press) == NEEDS_MANAGE_SERVER
        assert footer(message) == "Page 2/3 · 23 links"
        assert len(w.discord.requests_to("get_global_commands")) == 1  # not asked on every press
        [warning] = [r for r in caplog.records if r.name == "bot.tree"]
        assert "Could not list the bot's commands globally" in warning.getMessage()


async def test_top_pages_need_no_permission(wired_bot: WiredBot) -> None:
    w = wired_bot
    seed(w, 35)
    message = shown(await w.run("top", user=MEMBER))
    async with restarted(w) as h:
        acknowledged(await h.click(message, button(message, "Next ›"), user=MEMBER))
        assert footer(message) == "Page 2/4 · 35 links"
        other = await h.click(message, button(message, "Next ›"), user=OTHER_MEMBER)
        assert only_reply(other) == NOT_YOURS
    assert w.discord.requests_to("get_guild_command_permissions") == []
    assert w.discord.requests_to("get_global_commands") == []


async def test_in_the_dev_guild_a_press_finds_the_guild_commands_overrides(
    make_wired_bot: Callable[..., contextlib.AbstractAsyncContextManager[WiredBot]],
) -> None:
    """With DEV_GUILD_ID the commands are the guild's own copies, with ids of their own."""
    guild_id = 1_190_000_000_000_000_000  # the fake's first server
    async with make_wired_bot(settings={"dev_guild_id": guild_id}) as w:
        assert w.guild_id == guild_id
        message = await listed(w)
        guild_link = w.discord.command_id("link", guild_id)
        assert guild_link is not None
        w.discord.set_command_permissions(
            w.guild_id, guild_link, [command_permission(ADMIN.id, PERMISSION_USER, False)]
        )
        async with restarted(w) as h:
            assert only_reply(await h.click(message, button(message, "Next ›"), user=ADMIN)) == DENIED
            assert footer(message) == "Page 1/3 · 23 links"
            assert [r.params["guild"] for r in w.discord.requests_to("get_guild_commands")] == [str(guild_id)]
