"""The audit log: every event stored at once (with the change it records), posted to the server's log
channel through a per-server outbox, one embed per event.

Posting goes through a real discord.py client logged in to FakeDiscord on loopback, so what is checked
is what Discord would have received.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
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
from bot.audit_embeds import API_KEY_ACTOR, build_embed, log_status_text
from bot.db import AuditEventStore, Database, GuildSettingsStore, LinkRecordStore
from bot.dscgg.errors import BadRequest
from bot.embeds import (
    EMBED_TITLE_MAX,
    EMBED_TOTAL_MAX,
    FIELD_NAME_MAX,
    FIELD_VALUE_MAX,
    FIELDS_MAX,
    embed_size,
    truncate,
)
from bot.errors import InvalidInput, LogChannelUnusable, describe
from bot.settings import Settings
from tests.fakes.discord import EMBED_LINKS, SEND_MESSAGES, VIEW_CHANNEL, FakeDiscord
from tests.fixtures.bot import ADMIN_TOKEN, wired
from tests.harness import ADMIN as HARNESS_ADMIN

GUILD = 1_190_000_000_000_000_000
ADMIN = 222_222_222_222_222_222
#: When the test events happened: recent, since posts of events older than a week are given up on.
AT = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
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
    assert len(embed.get("title", "")) <= EMBED_TITLE_MAX
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
        (
            EventKind.TOKEN_MALFORMED,
            "dsc.gg token not saved",
            "tried to set a dsc.gg token, but what was pasted isn't a dsc.gg API key, so it was neither "
            "sent to dsc.gg nor saved",
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
    assert field_map(embed)["Reason"] == reason


def test_a_refusal_reason_is_shown_as_the_admin_read_it_not_escaped_again() -> None:
    # The sentence bot.errors made: its own markdown, and dsc.gg's words already escaped once.
    reason = describe(BadRequest("Title **Big** news is too long", status=400))
    assert "\\*\\*Big\\*\\*" in reason
    embed = build_embed(event(EventKind.MUTATION_REFUSED, action="create", reason=reason))
    shown = field_map(embed)["Reason"]
    assert shown == reason
    assert "\\\\" not in shown  # an escaped backslash would show up as a literal \*


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
    async with FakeDiscord(guilds=2) as server:
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
    log = AuditLog(client, audit_store, guild_settings, retry_interval=300.0, close_timeout=0.5)
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


class Clock:
    """A wall clock the test moves by hand (the outbox schedules retries in wall-clock time)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def pending(db: Database, guild_id: int = GUILD) -> list[str | None]:
    """Slugs of the guild's events whose post is still due, oldest first."""
    rows = await db.fetch_all(
        "SELECT e.slug FROM audit_outbox o JOIN audit_events e ON e.id = o.event_id "
        "WHERE o.guild_id = :guild ORDER BY o.event_id",
        {"guild": guild_id},
    )
    return [row.slug for row in rows]


def slugs_posted(fake: FakeDiscord, channel_id: int, status: int = 200) -> list[str]:
    """The dsc.gg/<slug> each accepted post to ``channel_id`` names, in order."""
    names = []
    for post in posts_to(fake, channel_id):
        if post.status == status:
            description = post.body["embeds"][0]["description"]
            names.append(description.split("dsc.gg/")[1].split("**")[0] if "dsc.gg/" in description else "")
    return names


# --------------------------------------------------------------------------------------------------
# Recording: stored at once, with the change; kept per server
# --------------------------------------------------------------------------------------------------


async def test_events_are_stored_at_once_last_n_per_server_without_a_log_channel(
    db: Database, guild_settings: GuildSettingsStore
) -> None:
    store = AuditEventStore(db, keep=3)
    log = AuditLog(discord.Client(intents=discord.Intents.none()), store, guild_settings)  # never started
    for i in range(5):
        await log.record(
            event(EventKind.LINK_EDITED, FieldChange("password", None, PLANTED_PASSWORD), slug=f"link-{i}")
        )
    await log.record(AuditEvent(guild_id=GUILD + 16, kind=EventKind.TOKEN_CLEARED, actor_id=None))

    status = await log.status(GUILD)  # no worker ran: stored before record() returned
    assert [e.slug for e in status.recent] == ["link-4", "link-3", "link-2"]
    assert status.recent[0].changes == (FieldChange("password", None, "changed"),)
    assert status.recent[0].actor_id == ADMIN
    assert status.recent[0].at == AT
    assert [e.kind for e in (await log.status(GUILD + 16)).recent] == [EventKind.TOKEN_CLEARED]
    assert await store.pending_count() == 0  # no log channel: nothing to post

    rows = await db.fetch_all("SELECT payload FROM audit_events")
    assert rows
    assert all(PLANTED_PASSWORD not in row.payload for row in rows)

    text = log_status_text(await log.status(GUILD))
    assert text.startswith("Log channel: **off**")
    assert "dsc.gg/link-4" in text
    assert "dsc.gg/link-1" not in text
    assert len(text) <= 1024


async def test_a_change_and_its_event_are_committed_together_or_not_at_all(
    db: Database, guild_settings: GuildSettingsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, records = AuditEventStore(db), LinkRecordStore(db)
    log = AuditLog(discord.Client(intents=discord.Intents.none()), store, guild_settings)
    async with log.transaction() as tx:
        await records.record(GUILD, "kept", ADMIN, conn=tx.conn)
        await tx.record(event(EventKind.LINK_CREATED, slug="kept"))

    async def disk_full(*args: Any, **kwargs: Any) -> int:
        raise OSError("disk full")

    monkeypatch.setattr(store, "add", disk_full)

    async def create(slug: str) -> None:
        async with log.transaction() as tx:
            await records.record(GUILD, slug, ADMIN, conn=tx.conn)
            await tx.record(event(EventKind.LINK_CREATED, slug=slug))

    with pytest.raises(OSError, match="disk full"):
        await create("lost")
    # The event could not be stored, so the change it records was not either (and the caller knows).
    assert await records.search(GUILD, "") == ["kept"]
    monkeypatch.undo()
    assert [row.slug for row in await store.latest(GUILD, 5)] == ["kept"]


async def test_an_event_whose_post_is_pending_is_never_trimmed(
    db: Database, guild_settings: GuildSettingsStore
) -> None:
    store = AuditEventStore(db, keep=3)
    await guild_settings.set_log_channel(GUILD, 123)
    log = AuditLog(discord.Client(intents=discord.Intents.none()), store, guild_settings)  # not posting
    for i in range(6):
        await log.record(event(EventKind.LINK_DELETED, slug=f"gone-{i}"))
    assert await store.count(GUILD) == 6  # beyond keep, but none of them was posted yet
    for _ in range(6):
        post = await store.next_post(GUILD)
        assert post is not None
        await store.post_done(post.event.id)
    await log.record(event(EventKind.LINK_DELETED, slug="last"))
    assert [row.slug for row in await store.latest(GUILD, 10)] == ["last", "gone-5", "gone-4"]


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
    assert log_status_text(status).startswith(f"Log channel: <#{log_channel.id}>")

    status = await audit.set_channel(guild, None, actor_id=ADMIN)
    assert status.channel_id is None
    assert "off" in log_status_text(status)
    await audit.flush()

    # Turning on is announced in the new channel; turning off in the channel that stops receiving.
    posts = posts_to(fake, log_channel.id)
    assert [p.body["embeds"][0]["description"].split(" — ")[1] for p in posts] == [
        f"<@{ADMIN}> set the audit log channel to <#{log_channel.id}>.",
        f"<@{ADMIN}> turned the audit log off.",
    ]
    await audit.record(event(EventKind.LINK_CREATED))
    await audit.flush()
    assert len(fake.channel_posts) == 2  # off means off
    assert [e.kind for e in (await audit.status(guild.id)).recent][:2] == [
        EventKind.LINK_CREATED,
        EventKind.LOG_CHANNEL_CHANGED,
    ]


# --------------------------------------------------------------------------------------------------
# Posting: per server, in order, retried, never lost
# --------------------------------------------------------------------------------------------------


async def test_each_event_is_one_embed_in_the_log_channel_and_pings_nobody(
    audit: AuditLog, guild: discord.Guild, fake: FakeDiscord
) -> None:
    log_channel = guild.get_channel(fake.guild().log_channel_id)
    assert log_channel is not None
    await audit.set_channel(guild, log_channel, actor_id=ADMIN)
    await audit.record(
        event(
            EventKind.LINK_EDITED,
            FieldChange("title", "old", "@everyone look <@123456789012345678>"),
            FieldChange("password", None, PLANTED_PASSWORD),
        )
    )
    await audit.record(
        event(EventKind.TOKEN_SET, FieldChange("token", None, PLANTED_TOKEN), actor=None, slug=None)
    )
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
    assert await audit.events.pending_count() == 0


@pytest.mark.parametrize("trouble", ["slow", "rate_limited"])
async def test_a_slow_or_rate_limited_log_channel_does_not_delay_another_server(
    audit: AuditLog, fake: FakeDiscord, guild_settings: GuildSettingsStore, db: Database, trouble: str
) -> None:
    slow_guild, other_guild = fake.guild_ids
    slow_channel, other_channel = (
        fake.guild(slow_guild).log_channel_id,
        fake.guild(other_guild).log_channel_id,
    )
    await guild_settings.set_log_channel(slow_guild, slow_channel)
    await guild_settings.set_log_channel(other_guild, other_channel)
    if trouble == "slow":
        fake.hold_channel(slow_channel)  # Discord takes its time answering
    else:
        fake.rate_limit_channel(slow_channel, 30.0)  # discord.py waits the 30 s out by itself

    await audit.record(
        AuditEvent(guild_id=slow_guild, kind=EventKind.LINK_CREATED, actor_id=ADMIN, slug="a1")
    )
    await audit.record(
        AuditEvent(guild_id=slow_guild, kind=EventKind.LINK_CREATED, actor_id=ADMIN, slug="a2")
    )
    await fake.wait_for(lambda: fake.requests_to("channel_message"))  # the slow server's post is out
    await audit.record(
        AuditEvent(guild_id=other_guild, kind=EventKind.LINK_CREATED, actor_id=ADMIN, slug="b1")
    )

    await fake.wait_for(lambda: slugs_posted(fake, other_channel) == ["b1"])
    assert slugs_posted(fake, slow_channel) == []  # still stuck, and it held up nobody else
    assert await pending(db, slow_guild) == ["a1", "a2"]
    fake.release_channel(slow_channel)


async def test_a_burst_bigger_than_the_old_queue_loses_nothing(
    audit: AuditLog, fake: FakeDiscord, guild_settings: GuildSettingsStore
) -> None:
    channel = fake.guild().log_channel_id
    await guild_settings.set_log_channel(GUILD, channel)
    burst = 1200
    # Room for every event: posted ones would otherwise be trimmed while the burst is still being
    # stored (on PostgreSQL the posts run alongside it).
    audit.events.keep = burst
    await asyncio.gather(*(audit.record(event(EventKind.LINK_CREATED, slug=f"b{i}")) for i in range(burst)))
    assert await audit.events.count(GUILD) == burst  # every one stored, whatever the posting does
    await asyncio.wait_for(audit.flush(), 120)
    posted = slugs_posted(fake, channel)
    assert len(posted) == burst
    assert sorted(posted) == sorted(f"b{i}" for i in range(burst))
    stored_order = [row.slug for row in reversed(await audit.events.latest(GUILD, burst))]
    assert posted == stored_order  # one server's posts keep their order
    assert await audit.events.pending_count() == 0


async def test_posts_still_pending_are_made_after_a_restart(
    tmp_path: Path, client: discord.Client, fake: FakeDiscord
) -> None:
    path = tmp_path / "restart" / "bot.sqlite3"
    channel = fake.guild().log_channel_id
    fake.hold_channel(channel)  # Discord does not answer before the bot stops
    async with Database.open(path) as db:
        settings = GuildSettingsStore(db)
        await settings.set_log_channel(GUILD, channel)
        log = AuditLog(client, AuditEventStore(db), settings, close_timeout=0.2)
        log.start()
        for i in range(3):
            await log.record(event(EventKind.LINK_CREATED, slug=f"late-{i}"))
        await fake.wait_for(lambda: fake.requests_to("channel_message"))
        await asyncio.wait_for(log.close(), 10)
        assert not log.running
    # The post that was cut off reaches Discord late: it is made again after the restart (at least once).
    fake.release_channel(channel)
    await fake.wait_for(lambda: posts_to(fake, channel))
    fake.channel_posts.clear()

    async with Database.open(path) as db:
        store = AuditEventStore(db)
        assert await pending(db) == ["late-0", "late-1", "late-2"]
        log = AuditLog(client, store, GuildSettingsStore(db))
        log.start()
        await asyncio.wait_for(log.flush(), 10)
        await log.close()
        assert slugs_posted(fake, channel) == ["late-0", "late-1", "late-2"]
        assert await store.pending_count() == 0


async def test_an_event_recorded_after_close_is_kept_for_the_next_start(
    db: Database,
    audit_store: AuditEventStore,
    guild_settings: GuildSettingsStore,
    client: discord.Client,
    fake: FakeDiscord,
) -> None:
    await guild_settings.set_log_channel(GUILD, fake.guild().log_channel_id)
    log = AuditLog(client, audit_store, guild_settings)
    log.start()
    await log.close()
    await log.record(event(EventKind.LINK_DELETED, slug="late"))
    assert await pending(db) == ["late"]
    assert fake.channel_posts == []

    again = AuditLog(client, audit_store, guild_settings)
    again.start()
    await asyncio.wait_for(again.flush(), 5)
    await again.close()
    assert slugs_posted(fake, fake.guild().log_channel_id) == ["late"]


async def test_failures_are_retried_with_doubling_waits_and_a_429_is_honoured(
    client: discord.Client, db: Database, fake: FakeDiscord
) -> None:
    clock = Clock(AT + timedelta(minutes=1))
    store, settings = AuditEventStore(db, clock=clock), GuildSettingsStore(db)
    channel = fake.guild().log_channel_id
    await settings.set_log_channel(GUILD, channel)
    log = AuditLog(
        client, store, settings, backoff_base=2.0, backoff_max=5.0, clock=clock, jitter=lambda: 1.0
    )
    log.start()

    async def attempt(slug: str) -> None:
        """Record an event (which wakes the server's posting) and let what is due be tried."""
        await log.record(event(EventKind.LINK_CREATED, slug=slug))
        await asyncio.wait_for(log.flush(), 5)

    async def head() -> tuple[int, float]:
        post = await store.next_post(GUILD)
        assert post is not None
        return post.attempts, (post.next_attempt_at - clock.now).total_seconds()

    fake.fail("channel_message", status=503, message="Service Unavailable", times=3)
    await attempt("e1")
    assert await head() == (1, 2.0)
    await attempt("e2")  # not due yet: nothing is tried
    assert [r.status for r in fake.requests_to("channel_message")] == [503]
    clock.advance(2)
    await attempt("e3")
    assert await head() == (2, 4.0)
    clock.advance(4)
    await attempt("e4")
    assert await head() == (3, 5.0)  # capped
    clock.advance(5)

    # Discord's 429 without the proxy header reaches the bot: its Retry-After is waited out.
    fake.rate_limit_channel(channel, 42.0, times=1, via=False)
    await attempt("e5")
    attempts, wait = await head()
    assert attempts == 4
    assert wait >= 42.0
    clock.advance(30)
    await attempt("e6")
    assert [r.status for r in fake.requests_to("channel_message")] == [503, 503, 503, 429]
    clock.advance(wait - 30)
    await attempt("e7")
    assert slugs_posted(fake, channel) == ["e1", "e2", "e3", "e4", "e5", "e6", "e7"]  # in order
    await log.close()


async def test_a_deleted_channel_is_recorded_once_and_its_posts_wait_for_a_new_channel(
    db: Database,
    audit: AuditLog,
    guild: discord.Guild,
    fake: FakeDiscord,
    guild_settings: GuildSettingsStore,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = guild.get_channel(fake.guild().log_channel_id)
    second = guild.get_channel(fake.guild().general_channel_id)
    assert first is not None
    assert second is not None
    await audit.set_channel(guild, first, actor_id=ADMIN)
    await audit.flush()
    writes: list[str | None] = []
    real_set_problem = guild_settings.set_log_channel_problem

    async def spy(guild_id: int, problem: str | None) -> None:
        writes.append(problem)
        await real_set_problem(guild_id, problem)

    monkeypatch.setattr(guild_settings, "set_log_channel_problem", spy)

    fake.delete_channel(first.id)
    with caplog.at_level(logging.WARNING, logger="bot.audit"):
        for i in range(3):
            await audit.record(event(EventKind.LINK_CREATED, slug=f"lost-{i}"))
        await asyncio.wait_for(audit.flush(), 5)

    # The first failure pauses the server's posts instead of hammering Discord with the others.
    assert [p.status for p in posts_to(fake, first.id)] == [200, 404]
    assert len(problem_warnings(caplog)) == 1
    assert writes == [CHANNEL_MISSING]
    status = log_status_text(await audit.status(guild.id))
    assert "Posting failed: the log channel no longer exists" in status
    assert "dsc.gg/lost-2" in status  # the history has them
    assert await pending(db) == ["lost-0", "lost-1", "lost-2"]

    # An admin picks another channel: the waiting posts go there, in order, then the change itself.
    status_after = await audit.set_channel(guild, second, actor_id=ADMIN)
    assert status_after.problem is None
    await asyncio.wait_for(audit.flush(), 5)
    posts = posts_to(fake, second.id)
    assert [p.status for p in posts] == [200, 200, 200, 200]
    assert slugs_posted(fake, second.id)[:3] == ["lost-0", "lost-1", "lost-2"]
    assert posts[3].body["embeds"][0]["title"] == "Log channel changed"
    assert (await guild_settings.get(guild.id)).log_channel_problem is None
    assert await audit.events.pending_count() == 0


async def test_a_forbidden_channel_keeps_the_posts_until_it_works_again(
    client: discord.Client,
    guild: discord.Guild,
    fake: FakeDiscord,
    audit_store: AuditEventStore,
    guild_settings: GuildSettingsStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    channel = fake.guild().log_channel_id
    await guild_settings.set_log_channel(guild.id, channel)
    # Retried every 0.05 s instead of every 5 minutes, so that the test sees the permission come back.
    log = AuditLog(client, audit_store, guild_settings, retry_interval=0.05, close_timeout=0.5)
    log.start()
    fake.forbid_channel(channel)
    with caplog.at_level(logging.WARNING, logger="bot.audit"):
        for i in range(5):
            await log.record(event(EventKind.LINK_DELETED, slug=f"gone-{i}"))
        await fake.wait_for(lambda: len(posts_to(fake, channel)) >= 3)
        assert {p.status for p in posts_to(fake, channel)} == {403}
        assert (await guild_settings.get(guild.id)).log_channel_problem == NO_PERMISSION
        assert "no longer allowed to post" in log_status_text(await log.status(guild.id))
        assert len(await audit_store.latest(guild.id, 50)) == 5

        fake.forbidden_channels.discard(channel)  # an admin fixed the channel's permissions
        await fake.wait_for(lambda: len(slugs_posted(fake, channel)) == 5)
    assert slugs_posted(fake, channel) == [f"gone-{i}" for i in range(5)]
    assert len(problem_warnings(caplog)) == 1
    await asyncio.wait_for(log.flush(), 5)
    assert (await guild_settings.get(guild.id)).log_channel_problem is None
    await log.close()


async def test_choosing_the_same_channel_again_resumes_its_posts_at_once(
    audit: AuditLog, guild: discord.Guild, fake: FakeDiscord, guild_settings: GuildSettingsStore
) -> None:
    log_channel = guild.get_channel(fake.guild().log_channel_id)
    assert log_channel is not None
    await audit.set_channel(guild, log_channel, actor_id=ADMIN)
    await asyncio.wait_for(audit.flush(), 5)  # the change is announced there
    fake.forbid_channel(log_channel.id)
    await audit.record(event(EventKind.LINK_EDITED, FieldChange("unlisted", "false", "true")))
    await audit.flush()
    assert (await guild_settings.get(guild.id)).log_channel_problem == NO_PERMISSION

    fake.forbidden_channels.discard(log_channel.id)
    status = await audit.set_channel(guild, log_channel, actor_id=ADMIN)  # retry_interval is 5 minutes
    assert status.problem is None
    await asyncio.wait_for(audit.flush(), 5)
    assert [p.status for p in posts_to(fake, log_channel.id)] == [200, 403, 200]
    assert await audit.events.pending_count() == 0


async def test_a_post_discord_refuses_for_good_is_given_up_but_the_event_kept(
    audit: AuditLog, fake: FakeDiscord, guild_settings: GuildSettingsStore
) -> None:
    channel = fake.guild().log_channel_id
    await guild_settings.set_log_channel(GUILD, channel)
    fake.fail("channel_message", status=400, code=50035, message="Invalid Form Body", times=1)
    await audit.record(event(EventKind.LINK_CREATED, slug="refused"))
    await audit.record(event(EventKind.LINK_CREATED, slug="next"))
    await asyncio.wait_for(audit.flush(), 5)
    assert [p.status for p in fake.requests_to("channel_message")] == [400, 200]
    assert slugs_posted(fake, channel) == ["next"]
    assert [row.slug for row in await audit.events.latest(GUILD, 5)] == ["next", "refused"]


async def test_a_post_still_pending_after_a_week_is_given_up_but_the_event_kept(
    client: discord.Client, db: Database, fake: FakeDiscord
) -> None:
    clock = Clock(AT + timedelta(days=8))
    store, settings = AuditEventStore(db, clock=clock), GuildSettingsStore(db)
    await settings.set_log_channel(GUILD, fake.guild().log_channel_id)
    log = AuditLog(client, store, settings, clock=clock)
    log.start()
    await log.record(event(EventKind.LINK_CREATED, slug="stale"))  # happened 8 days ago
    await log.record(AuditEvent(GUILD, EventKind.LINK_CREATED, actor_id=ADMIN, slug="fresh", at=clock.now))
    await asyncio.wait_for(log.flush(), 5)
    await log.close()
    assert slugs_posted(fake, fake.guild().log_channel_id) == ["fresh"]
    assert [row.slug for row in await store.latest(GUILD, 5)] == ["fresh", "stale"]
    assert await store.pending_count() == 0


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


async def test_the_event_is_stored_before_the_reply_even_when_the_log_channel_is_slow(
    tmp_path: Path, settings_factory: Callable[..., Settings]
) -> None:
    async with wired(tmp_path, settings_factory, extensions=("cogs.admin",)) as w:
        log_channel = w.discord.guild(w.guild_id).log_channel_id
        await w.bot.guild_settings.set_log_channel(w.guild_id, log_channel)
        await w.bot.token_store.set(w.guild_id, ADMIN_TOKEN, set_by=HARNESS_ADMIN.id)
        asked, clear = await ask_to_clear_token(w)
        w.discord.hold_channel(log_channel)  # the post never gets an answer during this test
        w.discord.set_latency("edit_original", 1.0)  # keeps the reply in flight while we look
        asked_edits = len(w.discord.requests_to("edit_original"))

        running = asyncio.create_task(w.harness.click(asked, clear))
        await w.discord.wait_for(lambda: len(w.discord.requests_to("edit_original")) > asked_edits)
        # The reply is on its way: the change and its event are both in the database already.
        assert await w.bot.token_store.info(w.guild_id) is None
        (stored,) = await w.bot.audit_events.latest(w.guild_id, 5)
        assert stored.kind == EventKind.TOKEN_CLEARED
        result = await running

        reply = result.final_message
        assert reply is not None
        assert "Forgot this server's dsc.gg token" in reply.content
        (post,) = await w.discord.wait_for(lambda: w.discord.requests_to("channel_message"))
        assert post.status == 0  # the post is still waiting for Discord: it did not hold up the reply
        w.discord.release_channel(log_channel)
        await w.discord.wait_for(lambda: post.status == 200)
        assert post.body["allowed_mentions"] == {"parse": []}
        (embed,) = post.body["embeds"]
        assert embed["title"] == "dsc.gg token removed"
        assert f"<@{HARNESS_ADMIN.id}> removed this server's dsc.gg token." in embed["description"]
        assert ADMIN_TOKEN not in json.dumps(post.body)
        assert ADMIN_TOKEN[-4:] not in json.dumps(post.body)


async def test_a_token_refused_by_the_local_check_is_not_reported_as_rejected_by_dscgg(
    tmp_path: Path, settings_factory: Callable[..., Settings]
) -> None:
    async with wired(tmp_path, settings_factory, extensions=("cogs.admin",)) as w:
        log_channel = w.discord.guild(w.guild_id).log_channel_id
        await w.bot.guild_settings.set_log_channel(w.guild_id, log_channel)

        opened = await w.run("dscgg token set")
        await w.harness.submit_modal(opened, {"token": "two words-in-one-key"})
        (post,) = await w.discord.wait_for(lambda: w.discord.requests_to("channel_message"))
        await w.discord.wait_for(lambda: post.status)
        (embed,) = post.body["embeds"]
        assert embed["title"] == "dsc.gg token not saved"
        assert "isn't a dsc.gg API key, so it was neither sent to dsc.gg nor saved" in embed["description"]
        assert "rejected" not in json.dumps(embed)
        assert w.dscgg.requests == []
        status = log_status_text(await w.bot.audit.status(w.guild_id))
        assert "isn't a dsc.gg API key" in status
        assert "rejected" not in status


async def test_a_refused_title_with_stars_is_escaped_once_in_the_log_channel(
    tmp_path: Path, settings_factory: Callable[..., Settings]
) -> None:
    async with wired(tmp_path, settings_factory, extensions=("cogs.links",)) as w:
        log_channel = w.discord.guild(w.guild_id).log_channel_id
        await w.bot.guild_settings.set_log_channel(w.guild_id, log_channel)
        await w.bot.token_store.set(w.guild_id, ADMIN_TOKEN, set_by=HARNESS_ADMIN.id)
        # dsc.gg quotes the title back in its refusal.
        w.dscgg.fail_next(
            "code", method="POST", code="bad_request", status=400, message="Title **Big** news is too long"
        )
        await w.run("link create", {"slug": "stars", "redirect": "discord.gg/abc", "title": "**Big** news"})
        await w.run("link create", {"slug": "stars2", "redirect": "discord.gg/abc", "title": "**Big** news"})
        posts = await w.discord.wait_for(
            lambda: (
                len(w.discord.requests_to("channel_message")) == 2
                and all(p.status for p in w.discord.requests_to("channel_message"))
                and w.discord.requests_to("channel_message")
            )
        )
        refused, created = (p.body["embeds"][0] for p in posts)
        reason = {f["name"]: f["value"] for f in refused["fields"]}["Reason"]
        title = {f["name"]: f["value"] for f in created["fields"]}["Title"]
        # Each shows the stars as typed: escaped once (\*), never twice (\\\*, seen as a literal \*).
        assert "\\*\\*Big\\*\\* news is too long" in reason
        assert title == "\\*\\*Big\\*\\* news"
        for text in (reason, title):
            assert "\\\\" not in text


async def test_a_command_cancelled_at_shutdown_keeps_its_event_and_its_post(
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
        assert [row.kind for row in await w.bot.audit_events.latest(w.guild_id, 5)] == ["token_cleared"]

        await w.bot.shutdown(grace=0.2)  # cancels the command, then closes the audit log

        (post,) = await w.discord.wait_for(lambda: w.discord.requests_to("channel_message"))
        assert post.status == 200
        assert post.body["embeds"][0]["title"] == "dsc.gg token removed"
        assert await w.bot.audit_events.pending_count() == 0
