"""The audit log: one embed per event, stored in the database, posted to the server's log channel.

Posting goes through a real discord.py client logged in to FakeDiscord on loopback, so what is checked
is what Discord would have received.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import discord
import pytest
import yarl

from bot.audit import (
    CHANNEL_MISSING,
    NO_PERMISSION,
    AuditEvent,
    AuditLog,
    EventKind,
    FieldChange,
)
from bot.audit_embeds import API_KEY_ACTOR, build_embed, embed_size
from bot.db import AuditEventStore, Database, GuildSettingsStore
from bot.embeds import (
    EMBED_TOTAL_MAX,
    FIELD_NAME_MAX,
    FIELD_VALUE_MAX,
    FIELDS_MAX,
    TITLE_MAX,
    truncate,
)
from bot.errors import InvalidInput, LogChannelUnusable, describe
from bot.settings import Settings
from tests.fakes.discord import EMBED_LINKS, SEND_MESSAGES, VIEW_CHANNEL, FakeDiscord
from tests.fixtures.bot import ADMIN_TOKEN, wired
from tests.harness import ADMIN as HARNESS_ADMIN

GUILD = 1_190_000_000_000_000_000
ADMIN = 222_222_222_222_222_222
AT = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
UNIX = int(AT.timestamp())

PLANTED_PASSWORD = "hunter2-PLANTED-password"
PLANTED_TOKEN = "dscgg_PLANTED_token_0123456789abcdef"


def event(kind: EventKind, *changes: FieldChange, actor: int | None = ADMIN, **kw: Any) -> AuditEvent:
    kw.setdefault("slug", "my-link")
    return AuditEvent(guild_id=GUILD, kind=kind, actor_id=actor, changes=changes, at=AT, **kw)


def as_json(embed: discord.Embed) -> str:
    return json.dumps(embed.to_dict(), ensure_ascii=False)


def field_map(embed: discord.Embed) -> dict[str, str]:
    return {f.name or "": f.value or "" for f in embed.fields}


def assert_within_limits(embed: dict[str, Any]) -> None:
    assert len(embed.get("title", "")) <= TITLE_MAX
    assert len(embed.get("description", "")) <= 4096
    fields = embed.get("fields", [])
    assert len(fields) <= FIELDS_MAX
    for f in fields:
        assert 0 < len(f["name"]) <= FIELD_NAME_MAX
        assert 0 < len(f["value"]) <= FIELD_VALUE_MAX
    total = len(embed.get("title", "")) + len(embed.get("description", ""))
    total += len(embed.get("footer", {}).get("text", ""))
    total += sum(len(f["name"]) + len(f["value"]) for f in fields)
    assert total <= EMBED_TOTAL_MAX


# --------------------------------------------------------------------------------------------------
# Embeds (pure)
# --------------------------------------------------------------------------------------------------


def test_link_created_names_actor_time_link_and_initial_values() -> None:
    embed = build_embed(
        event(
            EventKind.LINK_CREATED,
            FieldChange("redirect", None, "https://discord.gg/abc"),
            FieldChange("password", None, PLANTED_PASSWORD),
            slug="my_link",
        )
    )
    assert embed.title == "Link created"
    assert embed.description == f"<t:{UNIX}:f> — <@{ADMIN}> created **dsc.gg/my\\_link**."
    fields = field_map(embed)
    assert fields["Redirect"] == "https://discord.gg/abc"
    assert fields["Password"] == "set"
    assert PLANTED_PASSWORD not in as_json(embed)


def test_link_edited_shows_before_and_after_of_each_changed_field() -> None:
    embed = build_embed(
        event(
            EventKind.LINK_EDITED,
            FieldChange("redirect", "https://discord.gg/old", "https://discord.gg/new"),
            FieldChange("unlisted", "false", "true"),
            FieldChange("title", None, "Fresh title"),
        )
    )
    assert embed.title == "Link edited"
    assert f"<@{ADMIN}> edited **dsc.gg/my-link**" in (embed.description or "")
    assert field_map(embed) == {
        "Redirect": "https://discord.gg/old → https://discord.gg/new",
        "Unlisted": "false → true",
        "Title": "*(none)* → Fresh title",
    }


@pytest.mark.parametrize(
    ("change", "shown"),
    [
        (FieldChange("password", None, "changed"), "changed"),
        (FieldChange("password", None, "removed"), "removed"),
        (FieldChange("password", None, None), "removed"),
        # A service that passes the real values by mistake still leaks nothing.
        (FieldChange("password", PLANTED_PASSWORD + "-old", PLANTED_PASSWORD), "changed"),
        (FieldChange("Password", PLANTED_PASSWORD, None), "removed"),
    ],
)
def test_password_is_only_ever_changed_or_removed(change: FieldChange, shown: str) -> None:
    embed = build_embed(event(EventKind.LINK_EDITED, change))
    assert [(f.name, f.value) for f in embed.fields] == [("Password", shown)]
    assert PLANTED_PASSWORD not in as_json(embed)


def test_link_deleted() -> None:
    embed = build_embed(event(EventKind.LINK_DELETED))
    assert embed.title == "Link deleted"
    assert f"<@{ADMIN}> deleted **dsc.gg/my-link**." in (embed.description or "")


def test_an_api_key_acts_as_an_api_key_never_as_a_mention() -> None:
    embed = build_embed(event(EventKind.LINK_DELETED, actor=None))
    assert embed.description == f"<t:{UNIX}:f> — {API_KEY_ACTOR} deleted **dsc.gg/my-link**."
    assert "<@" not in as_json(embed)
    assert embed.footer.text is None


@pytest.mark.parametrize(
    ("kind", "title", "words"),
    [
        (EventKind.TOKEN_SET, "dsc.gg token set", "set this server's dsc.gg token"),
        (EventKind.TOKEN_CLEARED, "dsc.gg token removed", "removed this server's dsc.gg token"),
        (
            EventKind.TOKEN_REJECTED,
            "dsc.gg token rejected",
            "tried to set a dsc.gg token, but dsc.gg rejected it",
        ),
    ],
)
def test_token_events_never_carry_the_token(kind: EventKind, title: str, words: str) -> None:
    embed = build_embed(
        event(
            kind, FieldChange("token", PLANTED_TOKEN[:-4], PLANTED_TOKEN), slug=None, reason="dsc.gg said no"
        )
    )
    assert embed.title == title
    assert words in (embed.description or "")
    text = as_json(embed)
    assert PLANTED_TOKEN not in text
    assert PLANTED_TOKEN[:-4] not in text
    assert field_map(embed)["Reason"] == "dsc.gg said no"


def test_refused_mutation_says_who_tried_what_and_why() -> None:
    reason = (
        "dsc.gg/my-link is owned by a different dsc.gg account than the one whose token this server uses."
    )
    embed = build_embed(event(EventKind.MUTATION_REFUSED, action="delete", reason=reason))
    assert embed.title == "Change refused"
    assert f"<@{ADMIN}> tried to delete **dsc.gg/my-link**, but it was refused." in (embed.description or "")
    assert field_map(embed)["Reason"] == discord.utils.escape_markdown(reason)


def test_user_text_is_escaped_and_cannot_mention() -> None:
    nasty = "**bold** @everyone <@&123456789012345678> [click](https://evil.example) `code`"
    embed = build_embed(event(EventKind.LINK_EDITED, FieldChange("title", "plain", nasty)))
    value = field_map(embed)["Title"]
    assert "\\*\\*bold\\*\\*" in value
    assert "@everyone" not in value
    assert "<@&123456789012345678>" not in value
    assert "\\[click](https://evil.example)" in value
    assert "\\`code\\`" in value


def test_oversized_values_are_cut_with_an_ellipsis_to_fit_discord_limits() -> None:
    changes = [FieldChange(f"field_{i}_" + "n" * 300, "b" * 3000, "a" * 3000) for i in range(40)]
    embed = build_embed(
        event(EventKind.LINK_EDITED, *changes, slug="s" * 500, reason="why " * 2000, action="edit " * 100)
    )
    data = embed.to_dict()
    assert_within_limits(dict(data))
    assert embed_size(embed) <= EMBED_TOTAL_MAX
    assert len(embed.fields) == FIELDS_MAX
    names = [f.name for f in embed.fields]
    assert names[-2:] == ["More", "Reason"]
    assert embed.fields[-2].value == "…and 17 more changes"
    assert any((f.value or "").endswith("…") for f in embed.fields)


def test_a_single_huge_value_is_cut_on_both_sides_of_the_arrow() -> None:
    embed = build_embed(event(EventKind.LINK_EDITED, FieldChange("description", "x" * 5000, "y" * 5000)))
    value = field_map(embed)["Description"]
    assert len(value) <= FIELD_VALUE_MAX
    before, after = value.split(" → ")
    assert before.endswith("x…")
    assert after.endswith("y…")


def test_clip_never_leaves_half_an_escape() -> None:
    escaped = discord.utils.escape_markdown("a" * 8 + "_b")  # aaaaaaaa\_b
    cut = truncate(escaped, 10)
    assert cut == "a" * 8 + "…"
    assert truncate("short", 10) == "short"


# --------------------------------------------------------------------------------------------------
# Fixtures: FakeDiscord, a logged-in and connected discord.py client, the audit log
# --------------------------------------------------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(guilds=1) as server:
        yield server


@pytest.fixture
async def client(fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[discord.Client]:
    monkeypatch.setattr(discord.http.Route, "BASE", fake.api_base)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(fake.gateway_url))
    intents = discord.Intents.none()
    intents.guilds = True
    # The fake sends its guilds right after READY; no need for discord.py's 2 s wait for stragglers.
    bot = discord.Client(intents=intents, guild_ready_timeout=0.05)
    runner: asyncio.Task[None] | None = None
    try:
        await bot.login("fake-discord-token")
        runner = asyncio.create_task(bot.connect(reconnect=False))
        await asyncio.wait_for(bot.wait_until_ready(), 10)
        if bot.get_guild(fake.guild().id) is None:
            await bot.wait_for("guild_available", check=lambda g: g.id == fake.guild().id, timeout=10)
        yield bot
    finally:
        await bot.close()
        if runner is not None:
            await asyncio.wait_for(runner, 10)


@pytest.fixture
def guild(client: discord.Client, fake: FakeDiscord) -> discord.Guild:
    found = client.get_guild(fake.guild().id)
    assert found is not None
    assert found.me is not None
    return found


@pytest.fixture
async def audit(
    client: discord.Client, audit_store: AuditEventStore, guild_settings: GuildSettingsStore
) -> AsyncIterator[AuditLog]:
    log = AuditLog(client, audit_store, guild_settings, retry_interval=300.0)
    log.start()
    yield log
    await log.close()


def text_channel(guild: discord.Guild, *, deny: int) -> discord.TextChannel:
    """The guild's bot-log channel as discord.py would cache it, with the bot's role denied ``deny``."""
    me = guild.me
    assert me is not None
    bot_role = next(role for role in me.roles if role.managed)
    channel = guild.get_channel(guild.id + 2)
    assert isinstance(channel, discord.TextChannel)
    payload: Any = {
        "id": str(channel.id),
        "type": 0,
        "guild_id": str(guild.id),
        "name": channel.name,
        "position": channel.position,
        "permission_overwrites": [{"id": str(bot_role.id), "type": 0, "allow": "0", "deny": str(deny)}],
    }
    return discord.TextChannel(state=guild._state, guild=guild, data=payload)


def posts_to(fake: FakeDiscord, channel_id: int) -> list[Any]:
    return [p for p in fake.channel_posts if p.channel_id == channel_id]


def problem_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "bot.audit" and "Cannot post audit events" in r.getMessage()
    ]


# --------------------------------------------------------------------------------------------------
# Database: last N per server, shown in /dscgg status even without a log channel
# --------------------------------------------------------------------------------------------------


async def test_events_are_stored_last_n_per_server_without_a_log_channel(
    db: Database, guild_settings: GuildSettingsStore
) -> None:
    store = AuditEventStore(db, keep=3)
    log = AuditLog(discord.Client(intents=discord.Intents.none()), store, guild_settings)
    log.start()
    try:
        for i in range(5):
            log.record(
                event(
                    EventKind.LINK_EDITED, FieldChange("password", None, PLANTED_PASSWORD), slug=f"link-{i}"
                )
            )
        log.record(AuditEvent(guild_id=GUILD + 16, kind=EventKind.TOKEN_CLEARED, actor_id=None))
        await asyncio.wait_for(log.flush(), 5)

        status = await log.status(GUILD)
        assert [e.slug for e in status.recent] == ["link-4", "link-3", "link-2"]
        assert status.recent[0].changes == (FieldChange("password", None, "changed"),)
        assert status.recent[0].actor_id == ADMIN
        assert status.recent[0].at == AT
        assert [e.kind for e in (await log.status(GUILD + 16)).recent] == [EventKind.TOKEN_CLEARED]

        rows = await db.fetch_all("SELECT payload FROM audit_events", ())
        assert rows
        assert all(PLANTED_PASSWORD not in row["payload"] for row in rows)

        text = await log.status_text(GUILD)
        assert text.startswith("Log channel: **off**")
        assert "dsc.gg/link-4" in text
        assert "dsc.gg/link-1" not in text
        assert len(text) <= 1024
    finally:
        await log.close()


async def test_a_flood_is_bounded_and_drops_are_counted_and_warned_once(
    audit_store: AuditEventStore, guild_settings: GuildSettingsStore, caplog: pytest.LogCaptureFixture
) -> None:
    log = AuditLog(discord.Client(intents=discord.Intents.none()), audit_store, guild_settings, queue_size=10)
    tasks_before = len(asyncio.all_tasks())
    with caplog.at_level(logging.WARNING, logger="bot.audit"):
        for i in range(500):
            log.record(event(EventKind.LINK_CREATED, slug=f"flood-{i}"))
    assert log.pending == 10
    assert log.dropped == 490
    assert len(asyncio.all_tasks()) == tasks_before  # recording spawns nothing
    assert len([r for r in caplog.records if "Dropping audit events" in r.getMessage()]) == 1

    log.start()
    await asyncio.wait_for(log.flush(), 5)
    await log.close()
    stored = await audit_store.latest(GUILD, 50)
    assert sorted(row.slug or "" for row in stored) == sorted(f"flood-{i}" for i in range(10))
    assert any(
        "500" not in r.getMessage() and "490 events were dropped" in r.getMessage() for r in caplog.records
    )


async def test_record_after_close_is_dropped_not_raised(
    audit_store: AuditEventStore, guild_settings: GuildSettingsStore
) -> None:
    log = AuditLog(discord.Client(intents=discord.Intents.none()), audit_store, guild_settings)
    log.start()
    await log.close()
    log.record(event(EventKind.LINK_DELETED))
    assert log.dropped == 1
    assert log.pending == 0


async def test_a_broken_store_does_not_stop_the_worker(
    audit_store: AuditEventStore, guild_settings: GuildSettingsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    real_add = audit_store.add

    async def flaky_add(*args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("disk full")
        await real_add(*args, **kwargs)

    monkeypatch.setattr(audit_store, "add", flaky_add)
    log = AuditLog(discord.Client(intents=discord.Intents.none()), audit_store, guild_settings)
    log.start()
    log.record(event(EventKind.LINK_CREATED, slug="first"))
    log.record(event(EventKind.LINK_CREATED, slug="second"))
    await asyncio.wait_for(log.flush(), 5)
    assert log.running
    await log.close()
    assert [row.slug for row in await audit_store.latest(GUILD, 5)] == ["second"]


# --------------------------------------------------------------------------------------------------
# Choosing the log channel: the bot must be able to post there
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("deny", "missing", "words"),
    [
        (EMBED_LINKS, ["embed_links"], ["Embed Links"]),
        (SEND_MESSAGES, ["send_messages"], ["Send Messages"]),
        (VIEW_CHANNEL, ["view_channel"], ["View Channel"]),
        (VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS, ["view_channel", "send_messages", "embed_links"], []),
    ],
)
async def test_a_channel_the_bot_cannot_post_in_is_refused_naming_what_is_missing(
    audit: AuditLog,
    guild: discord.Guild,
    guild_settings: GuildSettingsStore,
    fake: FakeDiscord,
    deny: int,
    missing: list[str],
    words: list[str],
) -> None:
    channel = text_channel(guild, deny=deny)
    with pytest.raises(LogChannelUnusable) as caught:
        await audit.set_channel(guild, channel, actor_id=ADMIN)
    assert caught.value.channel_id == channel.id
    assert caught.value.missing == missing
    sentence = describe(caught.value)
    for word in words or ["View Channel", "Send Messages", "Embed Links"]:
        assert word in sentence
    assert (await guild_settings.get(guild.id)).log_channel_id is None
    await audit.flush()
    assert fake.channel_posts == []


async def test_the_fakes_locked_channel_is_refused(
    audit: AuditLog, guild: discord.Guild, fake: FakeDiscord
) -> None:
    locked = guild.get_channel(fake.guild().locked_channel_id)
    assert locked is not None
    with pytest.raises(LogChannelUnusable) as caught:
        await audit.set_channel(guild, locked)
    assert caught.value.missing == ["view_channel", "send_messages"]


async def test_a_category_is_not_a_log_channel(audit: AuditLog, guild: discord.Guild) -> None:
    data: Any = {"id": "77", "type": 4, "name": "c", "position": 0, "permission_overwrites": []}
    category = discord.CategoryChannel(state=guild._state, guild=guild, data=data)
    with pytest.raises(InvalidInput):
        await audit.set_channel(guild, category)


async def test_setting_and_turning_off_the_log_channel(
    audit: AuditLog, guild: discord.Guild, fake: FakeDiscord, guild_settings: GuildSettingsStore
) -> None:
    log_channel = guild.get_channel(fake.guild().log_channel_id)
    assert isinstance(log_channel, discord.TextChannel)

    status = await audit.set_channel(guild, log_channel, actor_id=ADMIN)
    assert status.channel_id == log_channel.id
    assert (await guild_settings.get(guild.id)).log_channel_id == log_channel.id
    assert status.describe().startswith(f"Log channel: <#{log_channel.id}>")

    status = await audit.set_channel(guild, None, actor_id=ADMIN)
    assert status.channel_id is None
    assert "off" in status.describe()
    await audit.flush()

    # Turning on is announced in the new channel; turning off in the channel that stops receiving.
    posts = posts_to(fake, log_channel.id)
    assert [p.body["embeds"][0]["description"].split(" — ")[1] for p in posts] == [
        f"<@{ADMIN}> set the audit log channel to <#{log_channel.id}>.",
        f"<@{ADMIN}> turned the audit log off.",
    ]
    audit.record(event(EventKind.LINK_CREATED))
    await audit.flush()
    assert len(fake.channel_posts) == 2  # off means off
    assert [e.kind for e in (await audit.status(guild.id)).recent][:2] == [
        EventKind.LINK_CREATED,
        EventKind.LOG_CHANNEL_CHANGED,
    ]


# --------------------------------------------------------------------------------------------------
# Posting
# --------------------------------------------------------------------------------------------------


async def test_each_event_is_one_embed_in_the_log_channel_and_pings_nobody(
    audit: AuditLog, guild: discord.Guild, fake: FakeDiscord
) -> None:
    log_channel = guild.get_channel(fake.guild().log_channel_id)
    assert log_channel is not None
    await audit.set_channel(guild, log_channel, actor_id=ADMIN)
    audit.record(
        event(
            EventKind.LINK_EDITED,
            FieldChange("title", "old", "@everyone look <@123456789012345678>"),
            FieldChange("password", None, PLANTED_PASSWORD),
        )
    )
    audit.record(event(EventKind.TOKEN_SET, FieldChange("token", None, PLANTED_TOKEN), actor=None, slug=None))
    await asyncio.wait_for(audit.flush(), 5)

    posts = posts_to(fake, log_channel.id)
    assert [p.status for p in posts] == [200, 200, 200]
    for post in posts:
        assert post.body["allowed_mentions"] == {"parse": []}
        assert len(post.body["embeds"]) == 1
        assert "content" not in post.body or not post.body["content"]
    edited, token_set = posts[1].body["embeds"][0], posts[2].body["embeds"][0]
    assert edited["title"] == "Link edited"
    assert {f["name"]: f["value"] for f in edited["fields"]} == {
        "Title": "old → @\u200beveryone look <@\u200b123456789012345678>",
        "Password": "changed",
    }
    assert token_set["description"].endswith(f"{API_KEY_ACTOR} set this server's dsc.gg token.")
    everything = json.dumps([p.body for p in fake.channel_posts])
    assert PLANTED_PASSWORD not in everything
    assert PLANTED_TOKEN not in everything
    assert audit.posted == 3


async def test_a_deleted_channel_is_recorded_once_shown_in_status_and_cleared_by_a_later_success(
    audit: AuditLog,
    guild: discord.Guild,
    fake: FakeDiscord,
    guild_settings: GuildSettingsStore,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log_channel = guild.get_channel(fake.guild().log_channel_id)
    assert log_channel is not None
    await audit.set_channel(guild, log_channel, actor_id=ADMIN)
    await audit.flush()
    writes: list[str | None] = []
    real_set_problem = guild_settings.set_log_channel_problem

    async def spy(guild_id: int, problem: str | None) -> None:
        writes.append(problem)
        await real_set_problem(guild_id, problem)

    monkeypatch.setattr(guild_settings, "set_log_channel_problem", spy)

    fake.delete_channel(log_channel.id)
    audit.retry_interval = 0.0  # keep trying on every event, so "once" is about logging, not attempts
    with caplog.at_level(logging.WARNING, logger="bot.audit"):
        for i in range(3):
            audit.record(event(EventKind.LINK_CREATED, slug=f"lost-{i}"))  # never raises
        await asyncio.wait_for(audit.flush(), 5)

    assert [p.status for p in posts_to(fake, log_channel.id)] == [200, 404, 404, 404]
    assert len(problem_warnings(caplog)) == 1
    assert writes == [CHANNEL_MISSING]
    assert (await guild_settings.get(guild.id)).log_channel_problem == CHANNEL_MISSING
    status = await audit.status_text(guild.id)
    assert "Posting failed: the log channel no longer exists" in status
    assert "dsc.gg/lost-2" in status  # the events themselves were kept

    fake.deleted_channels.discard(log_channel.id)
    audit.record(event(EventKind.LINK_CREATED, slug="back"))
    await asyncio.wait_for(audit.flush(), 5)
    assert posts_to(fake, log_channel.id)[-1].status == 200
    assert writes == [CHANNEL_MISSING, None]
    assert (await guild_settings.get(guild.id)).log_channel_problem is None
    assert "Posting failed" not in await audit.status_text(guild.id)


async def test_after_a_refusal_posting_pauses_instead_of_hammering_discord(
    audit: AuditLog,
    guild: discord.Guild,
    fake: FakeDiscord,
    guild_settings: GuildSettingsStore,
    audit_store: AuditEventStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    log_channel = guild.get_channel(fake.guild().log_channel_id)
    assert log_channel is not None
    await audit.set_channel(guild, log_channel, actor_id=ADMIN)
    fake.forbid_channel(log_channel.id)
    with caplog.at_level(logging.WARNING, logger="bot.audit"):
        for i in range(5):
            audit.record(event(EventKind.LINK_DELETED, slug=f"gone-{i}"))
        await asyncio.wait_for(audit.flush(), 5)

    # The channel-change announcement was the first refusal; everything after waits for the retry.
    assert [p.status for p in posts_to(fake, log_channel.id)] == [403]
    assert len(problem_warnings(caplog)) == 1
    assert (await guild_settings.get(guild.id)).log_channel_problem == NO_PERMISSION
    assert "no longer allowed to post" in await audit.status_text(guild.id)
    assert len(await audit_store.latest(guild.id, 50)) == 6


async def test_choosing_a_channel_again_clears_the_problem(
    audit: AuditLog, guild: discord.Guild, fake: FakeDiscord, guild_settings: GuildSettingsStore
) -> None:
    first = guild.get_channel(fake.guild().log_channel_id)
    second = guild.get_channel(fake.guild().general_channel_id)
    assert first is not None
    assert second is not None
    await audit.set_channel(guild, first, actor_id=ADMIN)
    await audit.flush()
    fake.delete_channel(first.id)
    audit.record(event(EventKind.LINK_CREATED))
    await audit.flush()
    assert (await guild_settings.get(guild.id)).log_channel_problem == CHANNEL_MISSING

    status = await audit.set_channel(guild, second, actor_id=ADMIN)
    assert status.problem is None
    assert status.channel_id == second.id
    audit.record(event(EventKind.LINK_EDITED, FieldChange("unlisted", "false", "true")))
    await audit.flush()
    assert [p.status for p in posts_to(fake, second.id)] == [200, 200]
    assert (await guild_settings.get(guild.id)).log_channel_problem is None


async def test_close_drains_within_its_bound(
    client: discord.Client,
    audit_store: AuditEventStore,
    guild_settings: GuildSettingsStore,
    guild: discord.Guild,
    fake: FakeDiscord,
) -> None:
    await guild_settings.set_log_channel(guild.id, fake.guild().log_channel_id)
    log = AuditLog(client, audit_store, guild_settings, close_timeout=2.0)
    log.start()
    for i in range(3):
        log.record(event(EventKind.LINK_CREATED, slug=f"late-{i}"))
    await log.close()
    assert [p.status for p in fake.channel_posts] == [200, 200, 200]

    fake.set_latency("channel_message", 1.5)
    log = AuditLog(client, audit_store, guild_settings, close_timeout=0.2)
    log.start()
    for i in range(3):
        log.record(event(EventKind.LINK_CREATED, slug=f"stuck-{i}"))
    started = asyncio.get_running_loop().time()
    await log.close()
    assert asyncio.get_running_loop().time() - started < 1.0
    assert log.dropped == 2  # one was in flight when time ran out, two never left the queue
    assert not log.running


# --------------------------------------------------------------------------------------------------
# End to end: the real bot, its real command tree and its audit log with the default settings
# --------------------------------------------------------------------------------------------------


async def ask_to_clear_token(w: Any) -> tuple[Any, str]:
    """``/dscgg token clear`` asks first: its result and the custom_id of its Clear button."""
    asked = await w.run("dscgg token clear")
    message = asked.final_message
    assert message is not None
    [clear] = [b["custom_id"] for b in message.buttons() if b.get("label") == "Clear"]
    return asked, clear


async def test_through_the_command_tree_the_admins_reply_arrives_before_the_log_post(
    tmp_path: Path, settings_factory: Callable[..., Settings]
) -> None:
    async with wired(tmp_path, settings_factory, extensions=("cogs.admin",)) as w:
        log_channel = w.discord.guild(w.guild_id).log_channel_id
        await w.bot.guild_settings.set_log_channel(w.guild_id, log_channel)
        await w.bot.token_store.set(w.guild_id, ADMIN_TOKEN, set_by=HARNESS_ADMIN.id)
        result, clear = await ask_to_clear_token(w)
        # The event is recorded inside the service, before the cog replies; Discord then takes 1.5 s
        # to accept the reply. A post queued when the event is recorded would overtake it.
        w.discord.set_latency("edit_original", 1.5)

        await w.harness.click(result, clear)
        posts = await w.discord.wait_for(lambda: w.discord.requests_to("channel_message"), timeout=5)

        reply = result.final_message
        assert reply is not None
        assert "Forgot this server's dsc.gg token" in reply.content
        edit = [r for r in result.requests if r.route == "edit_original"][-1]  # after the question
        (post,) = posts
        assert int(post.params["channel"]) == log_channel
        assert edit.t_done_perf - edit.t_perf > 1.4  # the reply really was slow
        assert edit.t_done_perf < post.t_perf  # Discord had the reply before the post was even sent
        assert post.status == 200
        assert post.body["allowed_mentions"] == {"parse": []}
        (embed,) = post.body["embeds"]
        assert embed["title"] == "dsc.gg token removed"
        assert f"<@{HARNESS_ADMIN.id}> removed this server's dsc.gg token." in embed["description"]
        assert ADMIN_TOKEN not in json.dumps(post.body)
        assert ADMIN_TOKEN[-4:] not in json.dumps(post.body)


async def test_an_error_reply_also_goes_out_before_the_log_post(
    tmp_path: Path, settings_factory: Callable[..., Settings]
) -> None:
    async with wired(tmp_path, settings_factory, extensions=("cogs.admin",)) as w:
        log_channel = w.discord.guild(w.guild_id).log_channel_id
        await w.bot.guild_settings.set_log_channel(w.guild_id, log_channel)
        w.discord.set_latency("edit_original", 1.5)  # the tree's error reply edits the thinking message

        opened = await w.run("dscgg token set")
        result = await w.harness.submit_modal(opened, {"token": "not-a-real-dscgg-key-123456"})
        posts = await w.discord.wait_for(lambda: w.discord.requests_to("channel_message"), timeout=5)

        reply = result.final_message
        assert reply is not None
        assert "rejected that token" in reply.content
        (edit,) = [r for r in result.requests if r.route == "edit_original"]
        (post,) = posts
        assert edit.t_done_perf < post.t_perf
        assert post.body["embeds"][0]["title"] == "dsc.gg token rejected"


async def test_a_command_cancelled_at_shutdown_still_gets_its_event_posted(
    tmp_path: Path, settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with wired(tmp_path, settings_factory, extensions=("cogs.admin",)) as w:
        log_channel = w.discord.guild(w.guild_id).log_channel_id
        await w.bot.guild_settings.set_log_channel(w.guild_id, log_channel)
        await w.bot.token_store.set(w.guild_id, ADMIN_TOKEN, set_by=HARNESS_ADMIN.id)
        recorded = asyncio.Event()
        real_clear = w.bot.tokens.clear

        async def clear_then_hang(*args: Any, **kwargs: Any) -> Any:
            info = await real_clear(*args, **kwargs)  # records the event
            recorded.set()
            await asyncio.sleep(3600)
            return info

        monkeypatch.setattr(w.bot.tokens, "clear", clear_then_hang)
        asked, clear = await ask_to_clear_token(w)
        await w.harness.click(asked, clear, until=lambda _: recorded.is_set())
        await asyncio.sleep(0.1)
        assert w.bot.audit.held == 1  # waits for the command, which never finishes by itself
        assert w.discord.requests_to("channel_message") == []

        await w.bot.shutdown(grace=0.2)  # cancels the command, then closes the audit log

        (post,) = w.discord.requests_to("channel_message")
        assert post.status == 200
        assert post.body["embeds"][0]["title"] == "dsc.gg token removed"
        assert w.bot.audit.held == 0
        assert w.bot.audit.dropped == 0
