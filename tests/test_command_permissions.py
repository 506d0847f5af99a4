"""Discord's own command permissions (Server Settings → Integrations) decide who may use /link and
/dscgg: mirrored per guild, fetched once, kept current from the gateway; Manage Server without them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import discord
import pytest

from bot.permissions import CommandPermissions, Override, OverrideType, evaluate
from tests.fakes.discord import (
    ADMIN_ROLE_PERMISSIONS,
    EVERYONE_PERMISSIONS,
    PERMISSION_CHANNEL,
    PERMISSION_ROLE,
    PERMISSION_USER,
    command_permission,
)
from tests.fixtures.bot import ADMIN_TOKEN, WiredBot
from tests.harness import ADMIN, ADMINISTRATOR_USER, MEMBER, FakeUser

NEEDS_MANAGE_SERVER = "You need the **Manage Server** permission to use this command."
DENIED = (
    "This server's command permissions (Server Settings → Integrations) don't let you use this command "
    "here. Ask an admin if you need it."
)

GUILD = 1000
APP = 2000
COMMAND = 3000
OTHER_COMMAND = 3001
CHANNEL = 4000
ROLE = 5000
OTHER_ROLE = 5001
USER = 6000


def role(rid: int, allow: bool) -> Override:
    return Override(rid, OverrideType.ROLE, allow)


def user(uid: int, allow: bool) -> Override:
    return Override(uid, OverrideType.USER, allow)


def channel(cid: int, allow: bool) -> Override:
    return Override(cid, OverrideType.CHANNEL, allow)


def decide(
    table: dict[int, Sequence[Override]],
    *,
    roles: Sequence[int] = (),
    administrator: bool = False,
    command_id: int | None = COMMAND,
) -> bool | None:
    return evaluate(
        table,
        command_id=command_id,
        application_id=APP,
        guild_id=GUILD,
        channel_id=CHANNEL,
        user_id=USER,
        role_ids=roles,
        administrator=administrator,
    )


# ------------------------------------------------------------------------------------ the rules


def test_no_override_leaves_the_default_rule() -> None:
    assert decide({}) is None
    assert decide({OTHER_COMMAND: [role(ROLE, True)]}, roles=[ROLE]) is None


def test_a_role_allow_from_any_of_the_members_roles() -> None:
    table: dict[int, Sequence[Override]] = {COMMAND: [role(ROLE, True), role(OTHER_ROLE, False)]}
    assert decide(table, roles=[ROLE, OTHER_ROLE]) is True
    assert decide(table, roles=[OTHER_ROLE]) is False
    assert decide(table, roles=[]) is None


def test_a_user_override_beats_role_overrides() -> None:
    assert decide({COMMAND: [role(ROLE, True), user(USER, False)]}, roles=[ROLE]) is False
    assert decide({COMMAND: [role(ROLE, False), user(USER, True)]}, roles=[ROLE]) is True


def test_everyone_is_the_role_with_the_guild_id_and_yields_to_specific_roles() -> None:
    table: dict[int, Sequence[Override]] = {COMMAND: [role(GUILD, False), role(ROLE, True)]}
    assert decide(table, roles=[ROLE]) is True
    assert decide(table) is False


def test_command_level_overrides_beat_app_level_ones() -> None:
    assert decide({APP: [role(ROLE, True)], COMMAND: [role(ROLE, False)]}, roles=[ROLE]) is False
    assert decide({APP: [user(USER, True)], COMMAND: [role(GUILD, False)]}) is False
    assert decide({APP: [role(ROLE, True)]}, roles=[ROLE]) is True  # app level, nothing on the command


def test_channels_specific_then_all_channels_then_app_level() -> None:
    all_channels = GUILD - 1
    assert decide({COMMAND: [channel(CHANNEL, False), user(USER, True)]}) is False
    assert decide({COMMAND: [channel(all_channels, False)]}) is False
    assert decide({COMMAND: [channel(all_channels, False), channel(CHANNEL, True)]}) is None
    assert decide({APP: [channel(CHANNEL, False)], COMMAND: [channel(all_channels, True)]}) is None
    assert decide({APP: [channel(all_channels, False)]}, roles=[ROLE]) is False


def test_administrator_always_passes() -> None:
    table: dict[int, Sequence[Override]] = {COMMAND: [user(USER, False), channel(CHANNEL, False)]}
    assert decide(table, administrator=True) is True


# ------------------------------------------------------------------------------ through the bot


@pytest.fixture
async def w(wired_bot: WiredBot) -> WiredBot:
    await wired_bot.bot.token_store.set(wired_bot.guild_id, ADMIN_TOKEN, set_by=ADMIN.id)
    return wired_bot


def link_managers(w: WiredBot) -> int:
    return w.guild_id + 9  # a role the server made, say "Link managers"


def manager(w: WiredBot, **kwargs: Any) -> FakeUser:
    """A member with the "Link managers" role and no Manage Server."""
    return FakeUser(id=1_180_000_000_000_000_201, name="manager", roles=(link_managers(w),), **kwargs)


def command_id(w: WiredBot, name: str) -> int:
    cid = w.discord.command_id(name)
    assert cid is not None
    return cid


def fetches(w: WiredBot) -> int:
    return len(w.discord.requests_to("get_guild_command_permissions"))


async def test_a_role_given_link_in_integrations_may_use_it_without_manage_server(w: WiredBot) -> None:
    w.discord.set_command_permissions(
        w.guild_id, command_id(w, "link"), [command_permission(link_managers(w), PERMISSION_ROLE, True)]
    )
    await w.bot.link_records.record(w.guild_id, "ours", ADMIN.id)
    listed = await w.run("link list", user=manager(w))
    assert listed.ephemeral
    assert "ours" in listed.text()
    assert NEEDS_MANAGE_SERVER not in listed.text()
    created = await w.run("link create", {"slug": "new", "redirect": "discord.gg/abc"}, user=manager(w))
    assert created.final_message is not None
    assert created.final_message.content == "Created **dsc.gg/new**."
    choices = (await w.harness.autocomplete("link edit", {}, focused="slug", user=manager(w))).choices
    assert choices is not None
    assert {c["value"] for c in choices} == {"ours", "new"}
    # The grant is for /link only: /dscgg keeps its default rule.
    status = await w.run("dscgg status", user=manager(w))
    assert status.text() == NEEDS_MANAGE_SERVER
    assert fetches(w) == 1  # fetched once for the guild, then read from memory


async def test_a_user_deny_beats_a_role_allow(w: WiredBot) -> None:
    member = manager(w)
    w.discord.set_command_permissions(
        w.guild_id,
        command_id(w, "link"),
        [
            command_permission(link_managers(w), PERMISSION_ROLE, True),
            command_permission(member.id, PERMISSION_USER, False),
        ],
    )
    result = await w.run("link list", user=member)
    assert result.text() == DENIED
    assert result.ephemeral
    assert result.initial is not None
    assert result.initial.type == 4
    autocomplete = await w.harness.autocomplete("link edit", {}, focused="slug", user=member)
    assert autocomplete.choices == []


async def test_a_member_with_manage_server_denied_in_integrations_is_refused(w: WiredBot) -> None:
    w.discord.set_command_permissions(
        w.guild_id, command_id(w, "link"), [command_permission(ADMIN.id, PERMISSION_USER, False)]
    )
    await w.bot.link_records.record(w.guild_id, "ours", ADMIN.id)
    assert (await w.run("link list")).text() == DENIED
    assert (await w.harness.autocomplete("link info", {}, focused="slug")).choices == []
    assert w.dscgg.requests == []
    # An Administrator always passes.
    assert "ours" in (await w.run("link list", user=ADMINISTRATOR_USER)).text()


async def test_a_command_override_beats_an_app_level_one(w: WiredBot) -> None:
    w.discord.set_command_permissions(
        w.guild_id, w.discord.app_id, [command_permission(link_managers(w), PERMISSION_ROLE, True)]
    )
    w.discord.set_command_permissions(
        w.guild_id, command_id(w, "link"), [command_permission(link_managers(w), PERMISSION_ROLE, False)]
    )
    assert (await w.run("link list", user=manager(w))).text() == DENIED
    status = await w.run("dscgg status", user=manager(w))  # the app-level allow still holds there
    assert "Token" in status.text()
    assert NEEDS_MANAGE_SERVER not in status.text()


async def test_a_channel_denied_in_integrations_refuses_even_admins_with_manage_server(w: WiredBot) -> None:
    w.discord.set_command_permissions(
        w.guild_id,
        command_id(w, "link"),
        [command_permission(w.harness.guild.general_channel_id, PERMISSION_CHANNEL, False)],
    )
    assert (await w.run("link list")).text() == DENIED
    listed = await w.run("link list", channel=w.harness.guild.log_channel_id)
    assert listed.text() != DENIED


async def test_an_update_from_the_gateway_takes_effect_without_fetching_again(w: WiredBot) -> None:
    member = manager(w)
    assert (await w.run("link list", user=member)).text() == NEEDS_MANAGE_SERVER
    assert fetches(w) == 1

    event = w.discord.set_command_permissions(
        w.guild_id, command_id(w, "link"), [command_permission(link_managers(w), PERMISSION_ROLE, True)]
    )
    assert await w.harness.gateway_event("APPLICATION_COMMAND_PERMISSIONS_UPDATE", event) == []
    assert "No links" in (await w.run("link list", user=member)).text()

    event = w.discord.set_command_permissions(w.guild_id, command_id(w, "link"), [])  # overrides removed
    await w.harness.gateway_event("APPLICATION_COMMAND_PERMISSIONS_UPDATE", event)
    assert (await w.run("link list", user=member)).text() == NEEDS_MANAGE_SERVER
    assert fetches(w) == 1


async def test_without_overrides_the_rule_is_manage_server(w: WiredBot) -> None:
    assert (await w.run("link list", user=MEMBER)).text() == NEEDS_MANAGE_SERVER
    assert (await w.run("link list", user=manager(w))).text() == NEEDS_MANAGE_SERVER
    assert "No links" in (await w.run("link list")).text()
    assert fetches(w) == 1


async def test_when_discord_will_not_say_the_default_rule_applies_and_is_logged_once(
    w: WiredBot, caplog: pytest.LogCaptureFixture
) -> None:
    w.discord.set_command_permissions(
        w.guild_id, command_id(w, "link"), [command_permission(link_managers(w), PERMISSION_ROLE, True)]
    )
    w.discord.fail("get_guild_command_permissions", status=403, code=50001, message="Missing Access")
    with caplog.at_level(logging.WARNING, logger="bot.permissions"):
        assert (await w.run("link list", user=manager(w))).text() == NEEDS_MANAGE_SERVER
        assert "No links" in (await w.run("link list")).text()
        assert (await w.run("link list", user=manager(w))).text() == NEEDS_MANAGE_SERVER
    warnings = [r for r in caplog.records if r.name == "bot.permissions"]
    assert len(warnings) == 1
    assert "HTTP 403" in warnings[0].getMessage()
    assert fetches(w) == 1  # not asked again on every command


def interaction(guild_id: int = GUILD, *, user_id: int = USER, command: int | None = COMMAND) -> Any:
    """Just what the mirror reads of an Interaction (a plain user: no roles)."""
    return SimpleNamespace(
        guild_id=guild_id,
        permissions=discord.Permissions.none(),
        user=SimpleNamespace(id=user_id),
        application_id=APP,
        channel=None,
        channel_id=CHANNEL,
        type=discord.InteractionType.application_command,
        data={"id": str(command)} if command is not None else {},
    )


async def test_a_slow_answer_is_waited_for_once_then_serves_later_commands(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answer = asyncio.Event()
    calls: list[int] = []

    async def fetch(guild_id: int) -> list[dict[str, Any]]:
        calls.append(guild_id)
        await answer.wait()
        return [{"id": str(COMMAND), "permissions": [{"id": str(USER), "type": 2, "permission": True}]}]

    mirror = CommandPermissions(fetch, wait=0.05)
    with caplog.at_level(logging.WARNING, logger="bot.permissions"):
        assert await mirror.verdict(interaction()) is None  # waited 0.05 s, then the default rule
        started = time.monotonic()
        assert await mirror.verdict(interaction()) is None  # no second wait while it is still out
        assert time.monotonic() - started < 0.05
    answer.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert await mirror.verdict(interaction()) is True  # the late answer counts
    assert calls == [GUILD]
    assert len([r for r in caplog.records if r.name == "bot.permissions"]) == 1
    await mirror.close()


async def test_updates_during_the_first_fetch_win_over_its_answer() -> None:
    answer = asyncio.Event()

    async def fetch(guild_id: int) -> list[dict[str, Any]]:
        await answer.wait()
        return [{"id": str(COMMAND), "permissions": [{"id": str(USER), "type": 2, "permission": True}]}]

    mirror = CommandPermissions(fetch, wait=0.01)
    assert await mirror.verdict(interaction()) is None
    mirror.update(GUILD, COMMAND, [user(USER, False)])  # newer than what the fetch will return
    answer.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert await mirror.verdict(interaction()) is False
    mirror.update(GUILD, COMMAND, [])
    assert await mirror.verdict(interaction()) is None
    mirror.forget(GUILD)
    await mirror.close()


async def test_the_token_form_follows_the_command_permissions_too(w: WiredBot) -> None:
    """A role given /dscgg in Integrations can open the token form and submit it."""
    w.discord.set_command_permissions(
        w.guild_id, command_id(w, "dscgg"), [command_permission(link_managers(w), PERMISSION_ROLE, True)]
    )
    member = manager(w)
    assert not member.permissions & ADMIN_ROLE_PERMISSIONS & ~EVERYONE_PERMISSIONS  # no Manage Server
    opened = await w.run("dscgg token set", user=member)
    assert opened.modal is not None
    done = await w.harness.submit_modal(opened, {"token": ADMIN_TOKEN}, user=member)
    assert "Saved." in done.text()
