"""A server manages only its own links: /link edit|delete|info refuse the others, /link adopt brings an
owned link under the server's management. Real tree, real services, Discord and dsc.gg faked."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from bot.audit import AuditEvent, EventKind, event_from_row
from bot.audit_embeds import build_embed, summary_line
from bot.db import Claim
from bot.errors import NotManagedHere, render
from bot.failures import Reason
from bot.validation import link_change_options
from tests.fixtures.bot import ADMIN_TOKEN, WiredBot
from tests.harness import ADMIN, MEMBER

STRANGER_ID = 4_242_424_242  # a dsc.gg account other than the one whose token the servers use
NOT_MANAGED = (
    "`dsc.gg/{slug}` isn't managed by this server. If this server's dsc.gg account owns it, "
    "bring it here with `/link adopt slug:{slug}`."
)


def calls(w: WiredBot) -> list[tuple[str, str]]:
    return [(r.method, r.endpoint) for r in w.dscgg.requests]


async def audited(w: WiredBot, guild_id: int) -> list[AuditEvent]:
    """The server's stored audit events, oldest first."""
    rows = await w.bot.audit_events.latest(guild_id, 100)
    events = [event_from_row(row) for row in reversed(rows)]
    return [event for event in events if event is not None]


async def slugs(w: WiredBot, guild_id: int) -> list[str]:
    return await w.bot.link_records.search(guild_id, "", 100)


@pytest.fixture
async def two(
    make_wired_bot: Callable[..., AbstractAsyncContextManager[WiredBot]],
) -> AsyncIterator[WiredBot]:
    """Two servers whose admins registered the same dsc.gg token (one account, two communities)."""
    async with make_wired_bot(guilds=2) as w:
        for guild_id in w.discord.guild_ids:
            await w.bot.token_store.set(guild_id, ADMIN_TOKEN, set_by=ADMIN.id)
        yield w


@pytest.fixture
async def w(wired_bot: WiredBot) -> WiredBot:
    """One server with its token; the token's app is whitelisted, so dsc.gg lists its owner's apps."""
    await wired_bot.bot.token_store.set(wired_bot.guild_id, ADMIN_TOKEN, set_by=ADMIN.id)
    wired_bot.dscgg.keys[ADMIN_TOKEN].whitelisted = True
    wired_bot.dscgg.reset()
    return wired_bot


# ------------------------------------------------------------------------------ edit, delete, info


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("link edit", {"slug": "shared", "redirect": "discord.gg/elsewhere"}),
        ("link edit", {"slug": "https://dsc.gg/shared", "remove_password": True}),
        ("link info", {"slug": "shared"}),
        ("link delete", {"slug": "shared"}),
    ],
)
async def test_a_server_cannot_reach_a_link_another_server_created_with_the_same_token(
    two: WiredBot, command: str, options: dict[str, Any]
) -> None:
    a, b = two.discord.guild_ids
    created = await two.run("link create", {"slug": "shared", "redirect": "discord.gg/abc"}, guild=a)
    assert created.final_message is not None
    assert created.final_message.content == "Created **dsc.gg/shared**."
    two.dscgg.reset()

    result = await two.run(command, options, guild=b)
    assert not result.waiting_for_input  # /link delete does not even ask
    [message] = result.messages
    assert message.content == NOT_MANAGED.format(slug="shared")
    assert message.ephemeral
    assert message.buttons() == []
    assert two.dscgg.requests == []  # nothing reached dsc.gg
    assert two.dscgg.links["shared"]["redirect"] == "https://discord.gg/abc"
    assert await slugs(two, b) == []  # and nothing was recorded for B
    assert await slugs(two, a) == ["shared"]


async def test_the_service_itself_refuses_before_asking_dscgg(two: WiredBot) -> None:
    """The HTTP API will call the services directly: the rule lives there, not only in the cog."""
    a, b = two.discord.guild_ids
    two.dscgg.add_link("made-in-a", owner_id=ADMIN.id)
    await two.bot.link_records.record(a, "made-in-a", ADMIN.id)
    two.dscgg.reset()
    with pytest.raises(NotManagedHere):
        await two.bot.links.edit(b, ADMIN.id, link_change_options(slug="made-in-a", title="taken over"))
    with pytest.raises(NotManagedHere):
        await two.bot.links.delete(b, ADMIN.id, "made-in-a")
    with pytest.raises(NotManagedHere):
        await two.bot.links.info(b, "made-in-a")
    assert two.dscgg.requests == []
    assert "made-in-a" in two.dscgg.links
    assert await slugs(two, b) == []


async def test_each_server_still_manages_its_own_links(two: WiredBot) -> None:
    a, b = two.discord.guild_ids
    for guild_id, slug in ((a, "from-a"), (b, "from-b")):
        await two.run("link create", {"slug": slug, "redirect": "discord.gg/abc"}, guild=guild_id)
    edited = await two.run("link edit", {"slug": "from-b", "title": "B's"}, guild=b)
    assert edited.final_message is not None
    assert edited.final_message.content == "Updated **dsc.gg/from-b**: `title`."
    info = await two.run("link info", {"slug": "from-a"}, guild=a)
    assert "dsc.gg/from-a" in info.text()
    choices = (await two.harness.autocomplete("link edit", {"slug": "from"}, focused="slug", guild=b)).choices
    assert choices == [{"name": "from-b", "value": "from-b"}]  # only this server's links are offered


async def test_edit_of_a_link_this_server_never_had_records_nothing(w: WiredBot) -> None:
    """Before, /link edit of any link the token could change also added it to the server's list."""
    w.dscgg.add_link("unknown", owner_id=ADMIN.id)
    result = await w.run("link edit", {"slug": "unknown", "unlisted": True})
    assert result.text() == NOT_MANAGED.format(slug="unknown")
    assert await slugs(w, w.guild_id) == []
    assert w.dscgg.links["unknown"]["unlisted"] is False
    assert w.dscgg.requests == []


# ------------------------------------------------------------------------------------------- adopt


async def test_adopt_brings_an_owned_link_here_then_edit_works(
    w: WiredBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    w.dscgg.add_link("old-one", owner_id=ADMIN.id, meta={"title": "Made on the website"}, clicks=9)
    result = await w.run("link adopt", {"slug": "dsc.gg/old-one"})
    assert result.initial is not None
    assert result.initial.type == 5  # deferred before asking dsc.gg
    assert result.ephemeral
    message = result.final_message
    assert message is not None
    assert message.content == (
        "Adopted **dsc.gg/old-one**: this server can now change it with `/link edit` and `/link delete`."
    )
    assert "Made on the website" in result.text()
    assert message.allowed_mentions is not None
    assert message.allowed_mentions.get("parse") == []
    assert await slugs(w, w.guild_id) == ["old-one"]
    assert calls(w) == [("GET", "get_link"), ("GET", "get_user_apps")]

    [event] = await audited(w, w.guild_id)
    assert (event.kind, event.actor_id, event.slug, event.guild_id) == (
        EventKind.LINK_ADOPTED,
        ADMIN.id,
        "old-one",
        w.guild_id,
    )
    assert build_embed(event).title == "Link adopted"
    assert "adopted **dsc.gg/old-one**: this server now manages it." in summary_line(event)

    edited = await w.run("link edit", {"slug": "old-one", "title": "Now managed here"})
    assert edited.final_message is not None
    assert edited.final_message.content == "Updated **dsc.gg/old-one**: `title`."
    assert w.dscgg.links["old-one"]["meta"]["title"] == "Now managed here"
    listed = await w.run("link list")
    assert "old-one" in listed.text()


async def test_adopt_of_a_link_owned_by_another_account(w: WiredBot, monkeypatch: pytest.MonkeyPatch) -> None:
    w.dscgg.add_link("theirs", owner_id=STRANGER_ID)
    result = await w.run("link adopt", {"slug": "theirs"})
    text = result.text()
    assert text == (
        "`dsc.gg/theirs` is owned by a different dsc.gg account than the one whose token this server uses, "
        "so it can't be adopted here. Ask the link's owner, or set that account's token with "
        "`/dscgg token set`."
    )
    assert result.ephemeral
    assert await slugs(w, w.guild_id) == []
    [event] = await audited(w, w.guild_id)
    assert (event.kind, event.action, event.slug) == (EventKind.MUTATION_REFUSED, "adopt", "theirs")
    assert isinstance(event.reason, Reason)
    assert render(event.reason) == text  # stored as data, read back as the admin read it


async def test_adopt_of_a_password_protected_link_of_another_account(w: WiredBot) -> None:
    """dsc.gg hides a protected link from everyone but its owner: that alone says it isn't ours."""
    w.dscgg.add_link("locked", owner_id=STRANGER_ID, password="pw")
    result = await w.run("link adopt", {"slug": "locked"})
    assert "is owned by a different dsc.gg account" in result.text()
    assert await slugs(w, w.guild_id) == []


async def test_adopt_of_a_link_another_server_manages(two: WiredBot, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = two.discord.guild_ids
    await two.run("link create", {"slug": "ours", "redirect": "discord.gg/abc"}, guild=a)
    two.dscgg.keys[ADMIN_TOKEN].whitelisted = True  # dsc.gg would confirm the account owns it
    two.dscgg.reset()

    result = await two.run("link adopt", {"slug": "OURS"}, guild=b)  # case does not get around it
    assert result.text() == (
        "`dsc.gg/OURS` is already managed by another server that uses this bot, so it can't be adopted "
        "here. Only that server can change it through the bot."
    )
    assert result.ephemeral
    assert two.dscgg.requests == []
    assert await slugs(two, b) == []
    [event] = await audited(two, b)
    assert (event.kind, event.action, event.guild_id) == (EventKind.MUTATION_REFUSED, "adopt", b)
    still = await two.run("link edit", {"slug": "ours", "title": "B's now"}, guild=b)
    assert still.text() == NOT_MANAGED.format(slug="ours")


async def test_adopt_of_an_unknown_slug(w: WiredBot) -> None:
    result = await w.run("link adopt", {"slug": "ghost"})
    assert result.text() == "dsc.gg has no link `dsc.gg/ghost`. Check the spelling and try again."
    assert result.ephemeral
    assert await slugs(w, w.guild_id) == []


async def test_adopt_of_a_link_already_managed_here(w: WiredBot, monkeypatch: pytest.MonkeyPatch) -> None:
    await w.run("link create", {"slug": "mine", "redirect": "discord.gg/abc"})
    before = await audited(w, w.guild_id)
    w.dscgg.reset()
    result = await w.run("link adopt", {"slug": "mine"})
    assert result.text() == "**dsc.gg/mine** is already managed by this server: nothing to adopt."
    assert result.ephemeral
    assert w.dscgg.requests == []
    assert await audited(w, w.guild_id) == before


async def test_adopt_without_a_whitelisted_app_confirms_ownership_with_an_unchanged_update(
    w: WiredBot,
) -> None:
    w.dscgg.keys[ADMIN_TOKEN].whitelisted = False
    w.dscgg.add_link("maybe", owner_id=ADMIN.id, redirect="https://discord.gg/keep", meta={"title": "Kept"})
    before = dict(w.dscgg.links["maybe"])
    result = await w.run("link adopt", {"slug": "maybe"})
    assert result.text().startswith("Adopted **dsc.gg/maybe**")
    assert calls(w) == [("GET", "get_link"), ("GET", "get_user_apps"), ("PATCH", "update_link")]
    assert w.dscgg.requests[-1].json == {"redirect": "https://discord.gg/keep"}  # what it already was
    assert w.dscgg.links["maybe"] == before  # nothing changed on dsc.gg
    assert await slugs(w, w.guild_id) == ["maybe"]


async def test_adopt_without_a_whitelisted_app_of_another_accounts_link(w: WiredBot) -> None:
    w.dscgg.keys[ADMIN_TOKEN].whitelisted = False
    w.dscgg.add_link("theirs", owner_id=STRANGER_ID, redirect="https://discord.gg/other")
    before = dict(w.dscgg.links["theirs"])
    result = await w.run("link adopt", {"slug": "theirs"})
    assert "is owned by a different dsc.gg account" in result.text()
    assert result.ephemeral
    assert w.dscgg.links["theirs"] == before
    assert await slugs(w, w.guild_id) == []
    [event] = await audited(w, w.guild_id)
    assert (event.kind, event.action, event.slug) == (EventKind.MUTATION_REFUSED, "adopt", "theirs")


async def test_adopt_when_dscgg_does_not_name_the_owner(w: WiredBot) -> None:
    payload = {"id": "anon", "owner": None, "redirect": "https://discord.gg/abc", "type": "server"}
    w.dscgg.fail_next("envelope", endpoint="get_link", status=200, body={
        "success": True, "code": "payload_received", "payload": payload,
    })  # fmt: skip
    result = await w.run("link adopt", {"slug": "anon"})
    assert "dsc.gg didn't say who owns it" in result.text()
    assert await slugs(w, w.guild_id) == []


async def test_adopt_asks_for_each_app_when_the_list_hides_the_keys(w: WiredBot) -> None:
    """Only GET /app/:id documents that the key comes back to the app's owner: used when the list is bare."""
    w.dscgg.add_link("mine", owner_id=ADMIN.id)
    [own_app] = [app for app in w.dscgg.apps.values() if app["key"] == ADMIN_TOKEN]
    w.dscgg.add_app("777", owner_id=ADMIN.id)  # another app of the same account, without a key
    bare = [{k: v for k, v in app.items() if k != "key"} for app in w.dscgg.apps.values()]
    w.dscgg.fail_next("envelope", endpoint="get_user_apps", status=200, body={
        "success": True, "code": "payload_received", "payload": bare,
    })  # fmt: skip
    result = await w.run("link adopt", {"slug": "mine"})
    assert result.text().startswith("Adopted **dsc.gg/mine**")
    assert ("GET", "get_app") in calls(w)
    assert any(r.raw_path.endswith(f"/app/{own_app['id']}") for r in w.dscgg.requests_to("get_app"))


async def test_adopt_needs_the_same_permission_as_the_other_link_commands(w: WiredBot) -> None:
    w.dscgg.add_link("mine", owner_id=ADMIN.id)
    result = await w.run("link adopt", {"slug": "mine"}, user=MEMBER)
    assert result.text() == "You need the **Manage Server** permission to use this command."
    assert w.dscgg.requests == []
    assert await slugs(w, w.guild_id) == []


# ------------------------------------------------------------------------------------------- store


async def test_claim_is_atomic_and_ignores_case_across_servers(two: WiredBot) -> None:
    a, b = two.discord.guild_ids
    store = two.bot.link_records
    assert await store.claim(a, "Link", ADMIN.id) is Claim.CLAIMED
    assert await store.claim(a, "Link", MEMBER.id) is Claim.ALREADY_HERE
    assert await store.claim(b, "link", ADMIN.id) is Claim.ELSEWHERE
    assert await store.managed_elsewhere(b, "LINK")
    assert not await store.managed_elsewhere(a, "link")
    assert await store.manages(a, "Link")
    assert not await store.manages(b, "Link")
    assert not await store.touch(b, "Link", ADMIN.id)  # touching never creates a record
    assert await slugs(two, b) == []
