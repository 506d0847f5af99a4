"""The stores on top of the database: tokens, link records, guild settings, app state, audit events,
API keys, dashboard sessions."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select, text

from bot.crypto import TokenCipher
from bot.db import (
    AppStateStore,
    AuditEventStore,
    Claim,
    Database,
    GuildSettings,
    GuildSettingsStore,
    LinkRecordStore,
    TokenStore,
    TokenUnreadable,
)
from bot.db.apikeys import ApiKeyStore, IdempotencyStore, ServerOverviewStore, TooManyKeys
from bot.db.schema import app_state, audit_events, guild_tokens
from bot.db.sessions import SessionStore, StoredSession

GUILD = 111111111111111111
OTHER_GUILD = 222222222222222222
ADMIN = 333333333333333333
OTHER_ADMIN = 444444444444444444
TOKEN = "dscgg-secret-api-token-WXYZ"


def ticking_clock(start: datetime = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)):
    """A clock that moves one second per reading, so ordering by time is deterministic."""
    ticks = count()
    return lambda: start + timedelta(seconds=next(ticks))


def new_key() -> str:
    return Fernet.generate_key().decode("ascii")


# --- tokens --------------------------------------------------------------------------------------------


async def test_token_round_trip_is_encrypted_at_rest(db: Database, token_store: TokenStore) -> None:
    info = await token_store.set(GUILD, TOKEN, set_by=ADMIN)
    assert (info.guild_id, info.last4, info.set_by) == (GUILD, "WXYZ", ADMIN)
    assert info.set_at.tzinfo is not None
    assert await token_store.get(GUILD) == TOKEN
    row = await db.fetch_one(select(guild_tokens).where(guild_tokens.c.guild_id == GUILD))
    assert row is not None
    assert all(TOKEN not in str(value) for value in tuple(row))
    assert all(TOKEN[-8:] not in str(value) for value in tuple(row))


async def test_token_info_needs_no_key_and_never_shows_the_token(
    db: Database, token_store: TokenStore
) -> None:
    stored = await token_store.set(GUILD, TOKEN, set_by=ADMIN)
    info = await TokenStore(db, TokenCipher([new_key()])).info(GUILD)
    assert info == stored
    assert TOKEN not in repr(info)
    assert await token_store.info(OTHER_GUILD) is None


async def test_short_token_shows_no_tail(token_store: TokenStore) -> None:
    assert (await token_store.set(GUILD, "abc123", set_by=ADMIN)).last4 == ""
    assert await token_store.get(GUILD) == "abc123"


@pytest.mark.parametrize("token", ["8chr-key", "fifteen-chars-k"])
async def test_token_under_16_characters_shows_no_tail(token_store: TokenStore, token: str) -> None:
    """Four characters would be half of an 8-character token, more than a quarter of a 15-character one."""
    assert (await token_store.set(GUILD, token, set_by=ADMIN)).last4 == ""
    assert (await token_store.info(GUILD)).last4 == ""  # type: ignore[union-attr]
    assert (await token_store.set(GUILD, "sixteen-chars-ky", set_by=ADMIN)).last4 == "s-ky"


async def test_empty_token_is_refused(token_store: TokenStore) -> None:
    with pytest.raises(ValueError, match="empty"):
        await token_store.set(GUILD, "", set_by=ADMIN)
    assert await token_store.get(GUILD) is None


async def test_setting_again_replaces_token_and_setter(token_store: TokenStore) -> None:
    await token_store.set(GUILD, TOKEN, set_by=ADMIN)
    info = await token_store.set(GUILD, "second-token-1234", set_by=OTHER_ADMIN)
    assert await token_store.get(GUILD) == "second-token-1234"
    assert await token_store.info(GUILD) == info
    assert info.set_by == OTHER_ADMIN


async def test_tokens_are_per_guild_and_clear(token_store: TokenStore) -> None:
    await token_store.set(GUILD, TOKEN, set_by=ADMIN)
    assert await token_store.get(OTHER_GUILD) is None
    assert await token_store.clear(OTHER_GUILD) is False
    assert await token_store.clear(GUILD) is True
    assert await token_store.get(GUILD) is None
    assert await token_store.info(GUILD) is None
    assert await token_store.clear(GUILD) is False


async def test_ciphertext_copied_to_another_guild_is_unreadable(
    db: Database, token_store: TokenStore
) -> None:
    await token_store.set(GUILD, TOKEN, set_by=ADMIN)
    async with db.transaction() as conn:
        await conn.execute(
            text(
                """
                INSERT INTO guild_tokens (guild_id, ciphertext, last4, set_by, set_at)
                SELECT :other, ciphertext, last4, set_by, set_at FROM guild_tokens WHERE guild_id = :guild
                """
            ),
            {"other": OTHER_GUILD, "guild": GUILD},
        )
    with pytest.raises(TokenUnreadable) as caught:
        await token_store.get(OTHER_GUILD)
    assert caught.value.guild_id == OTHER_GUILD
    assert TOKEN not in str(caught.value)
    assert await token_store.get(GUILD) == TOKEN


async def test_lost_key_makes_token_unreadable_but_info_still_works(
    db: Database, token_store: TokenStore
) -> None:
    await token_store.set(GUILD, TOKEN, set_by=ADMIN)
    after_key_loss = TokenStore(db, TokenCipher([new_key()]))
    with pytest.raises(TokenUnreadable):
        await after_key_loss.get(GUILD)
    assert (await after_key_loss.info(GUILD)) is not None
    # Setting the token again is the way out.
    await after_key_loss.set(GUILD, TOKEN, set_by=ADMIN)
    assert await after_key_loss.get(GUILD) == TOKEN


async def test_rotate_all_moves_rows_to_the_newest_key(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    old, new, lost = new_key(), new_key(), new_key()
    await TokenStore(db, TokenCipher([old])).set(GUILD, TOKEN, set_by=ADMIN)
    await TokenStore(db, TokenCipher([new])).set(OTHER_GUILD, "already-new-1234", set_by=ADMIN)
    await TokenStore(db, TokenCipher([lost])).set(555, "nobody-can-read-this", set_by=ADMIN)

    rotating = TokenStore(db, TokenCipher([new, old]))
    with caplog.at_level(logging.INFO):
        assert await rotating.rotate_all() == 1
        assert await rotating.rotate_all() == 0
    assert TOKEN not in caplog.text

    new_only = TokenStore(db, TokenCipher([new]))
    assert await new_only.get(GUILD) == TOKEN
    assert await new_only.get(OTHER_GUILD) == "already-new-1234"
    with pytest.raises(TokenUnreadable):
        await new_only.get(555)


async def test_token_values_never_reach_the_log(
    db: Database, token_store: TokenStore, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        await token_store.set(GUILD, TOKEN, set_by=ADMIN)
        await token_store.get(GUILD)
        await TokenStore(db, TokenCipher([new_key()])).rotate_all()
        with pytest.raises(TokenUnreadable):
            await TokenStore(db, TokenCipher([new_key()])).get(GUILD)
    assert TOKEN not in caplog.text


# --- link records --------------------------------------------------------------------------------------


async def test_record_keeps_creator_and_updates_last_touch(db: Database) -> None:
    links = LinkRecordStore(db, clock=ticking_clock())
    await links.record(GUILD, "my-link", ADMIN)
    await links.record(GUILD, "my-link", OTHER_ADMIN)
    [record] = await links.page(GUILD, 0, 10)
    assert (record.slug, record.created_by, record.last_touched_by) == ("my-link", ADMIN, OTHER_ADMIN)
    assert record.touched_at - record.created_at == timedelta(seconds=1)
    assert record.created_at.tzinfo is not None
    assert await links.count(GUILD) == 1


async def test_records_are_per_guild_and_forget(link_store: LinkRecordStore) -> None:
    await link_store.record(GUILD, "shared-name", ADMIN)
    await link_store.record(OTHER_GUILD, "shared-name", ADMIN)
    assert await link_store.forget(GUILD, "shared-name") is True
    assert await link_store.forget(GUILD, "shared-name") is False
    assert await link_store.count(GUILD) == 0
    assert await link_store.search(OTHER_GUILD, "") == ["shared-name"]


async def test_search_prefix_first_then_substring_most_recent_first(db: Database) -> None:
    links = LinkRecordStore(db, clock=ticking_clock())
    for slug in ["my-server", "Server-old", "gameserver", "server-new", "unrelated"]:
        await links.record(GUILD, slug, ADMIN)
    assert await links.search(GUILD, "SERVER") == ["server-new", "Server-old", "gameserver", "my-server"]
    # Touching a link moves it up within its group.
    await links.record(GUILD, "my-server", ADMIN)
    assert await links.search(GUILD, "server") == ["server-new", "Server-old", "my-server", "gameserver"]
    assert await links.search(GUILD, "") == [
        "my-server",
        "unrelated",
        "server-new",
        "gameserver",
        "Server-old",
    ]
    assert await links.search(GUILD, "server", limit=2) == ["server-new", "Server-old"]
    assert await links.search(GUILD, "server", limit=0) == []
    assert await links.search(OTHER_GUILD, "server") == []


async def test_search_treats_like_wildcards_literally(link_store: LinkRecordStore) -> None:
    for slug in ["100%-real", "1000-real", "a_b", "axb", "back\\slash", "backslash"]:
        await link_store.record(GUILD, slug, ADMIN)
    assert await link_store.search(GUILD, "100%") == ["100%-real"]
    assert await link_store.search(GUILD, "%") == ["100%-real"]
    assert await link_store.search(GUILD, "a_") == ["a_b"]
    assert await link_store.search(GUILD, "_") == ["a_b"]
    assert await link_store.search(GUILD, "k\\s") == ["back\\slash"]


async def test_search_returns_at_most_25_by_default(link_store: LinkRecordStore) -> None:
    for number in range(30):
        await link_store.record(GUILD, f"link-{number:02d}", ADMIN)
    assert len(await link_store.search(GUILD, "link")) == 25


async def test_page_and_count(link_store: LinkRecordStore) -> None:
    for slug in ["delta", "Alpha", "charlie", "bravo", "echo"]:
        await link_store.record(GUILD, slug, ADMIN)
    assert await link_store.count(GUILD) == 5
    assert [r.slug for r in await link_store.page(GUILD, 0, 2)] == ["Alpha", "bravo"]
    assert [r.slug for r in await link_store.page(GUILD, 2, 2)] == ["charlie", "delta"]
    assert [r.slug for r in await link_store.page(GUILD, 4, 2)] == ["echo"]
    assert await link_store.page(GUILD, 6, 2) == []
    assert await link_store.count(OTHER_GUILD) == 0


async def test_100_concurrent_records_lose_nothing(db: Database, link_store: LinkRecordStore) -> None:
    state = AppStateStore(db)
    await asyncio.gather(
        *(link_store.record(GUILD, f"slug-{number}", ADMIN + number) for number in range(100)),
        *(link_store.record(GUILD, "hot", ADMIN + number) for number in range(20)),
        *(state.set(f"key-{number}", str(number)) for number in range(20)),
    )
    assert await link_store.count(GUILD) == 101
    assert await db.count(app_state) == 20
    if db.is_sqlite:
        assert await db.fetch_value("PRAGMA integrity_check") == "ok"


# --- guild settings and app state ----------------------------------------------------------------------


async def test_guild_settings_default_then_set(guild_settings: GuildSettingsStore) -> None:
    assert await guild_settings.get(GUILD) == GuildSettings(GUILD, None, None, None)
    await guild_settings.set_locale(GUILD, "de")
    await guild_settings.set_log_channel(GUILD, 777)
    await guild_settings.set_log_channel_problem(GUILD, "missing permission: Send Messages")
    assert await guild_settings.get(GUILD) == GuildSettings(
        GUILD, 777, "de", "missing permission: Send Messages"
    )
    assert await guild_settings.get(OTHER_GUILD) == GuildSettings(OTHER_GUILD)


async def test_new_log_channel_clears_the_old_problem(guild_settings: GuildSettingsStore) -> None:
    await guild_settings.set_log_channel(GUILD, 777)
    await guild_settings.set_log_channel_problem(GUILD, "channel deleted")
    await guild_settings.set_log_channel(GUILD, 888)
    assert await guild_settings.get(GUILD) == GuildSettings(GUILD, 888, None, None)
    await guild_settings.set_locale(GUILD, "fr")
    await guild_settings.set_log_channel(GUILD, None)
    assert await guild_settings.get(GUILD) == GuildSettings(GUILD, None, "fr", None)


async def test_app_state(app_state: AppStateStore) -> None:
    assert await app_state.get("command_hash") is None
    await app_state.set("command_hash", "one")
    await app_state.set("command_hash", "two")
    assert await app_state.get("command_hash") == "two"
    assert await app_state.delete("command_hash") is True
    assert await app_state.delete("command_hash") is False
    assert await app_state.get("command_hash") is None


# --- audit events --------------------------------------------------------------------------------------


async def test_audit_round_trip_newest_first(audit_store: AuditEventStore) -> None:
    at = datetime(2024, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)
    await audit_store.add(GUILD, "link_created", ADMIN, "first", {"redirect": "https://discord.gg/x"}, at=at)
    await audit_store.add(GUILD, "token_set", None, None, {"when": at, "changes": [{"field": "password"}]})
    newest, oldest = await audit_store.latest(GUILD, 10)
    assert (newest.kind, newest.actor_id, newest.slug) == ("token_set", None, None)
    assert newest.payload == {"when": str(at), "changes": [{"field": "password"}]}
    assert (oldest.kind, oldest.actor_id, oldest.slug, oldest.at) == ("link_created", ADMIN, "first", at)
    assert oldest.payload == {"redirect": "https://discord.gg/x"}
    assert [event.slug for event in await audit_store.latest(GUILD, 1)] == [None]
    assert await audit_store.latest(GUILD, 0) == []
    assert await audit_store.latest(OTHER_GUILD, 10) == []


async def test_audit_keeps_only_the_last_n_per_guild(db: Database) -> None:
    audit = AuditEventStore(db, keep=5)
    for number in range(12):
        await audit.add(GUILD, "link_edited", ADMIN, f"edit-{number}", {"n": number})
    for number in range(3):
        await audit.add(OTHER_GUILD, "link_edited", ADMIN, f"other-{number}", {})
    assert [event.slug for event in await audit.latest(GUILD, 100)] == [f"edit-{n}" for n in range(11, 6, -1)]
    assert len(await audit.latest(OTHER_GUILD, 100)) == 3
    n = func.count().label("n")
    rows = await db.fetch_all(
        select(audit_events.c.guild_id, n).group_by(audit_events.c.guild_id).order_by(n)
    )
    assert [tuple(row) for row in rows] == [(OTHER_GUILD, 3), (GUILD, 5)]


async def test_audit_keep_holds_under_concurrency(db: Database) -> None:
    audit = AuditEventStore(db, keep=10)
    await asyncio.gather(*(audit.add(GUILD, "link_edited", ADMIN, f"s{n}", {}) for n in range(60)))
    assert len(await audit.latest(GUILD, 100)) == 10


def test_audit_keep_must_be_positive(db: Database) -> None:
    with pytest.raises(ValueError, match="keep"):
        AuditEventStore(db, keep=0)


async def test_audit_pages_newest_first_and_counts(audit_store: AuditEventStore) -> None:
    for number in range(7):
        await audit_store.add(GUILD, "link_edited", ADMIN, f"e{number}", {})
    await audit_store.add(OTHER_GUILD, "link_edited", ADMIN, "elsewhere", {})
    assert await audit_store.count(GUILD) == 7
    assert [e.slug for e in await audit_store.page(GUILD, 0, 3)] == ["e6", "e5", "e4"]
    assert [e.slug for e in await audit_store.page(GUILD, 6, 3)] == ["e0"]
    assert await audit_store.page(GUILD, 7, 3) == []


async def test_a_post_is_queued_only_for_a_guild_with_a_log_channel(
    audit_store: AuditEventStore, guild_settings: GuildSettingsStore
) -> None:
    await audit_store.add(GUILD, "link_created", ADMIN, "quiet", {})
    assert await audit_store.pending_count() == 0
    await guild_settings.set_log_channel(GUILD, 42)
    first = await audit_store.add(GUILD, "link_created", ADMIN, "a", {})
    await audit_store.add(GUILD, "link_created", ADMIN, "b", {})
    await audit_store.add(OTHER_GUILD, "log_channel_changed", ADMIN, None, {}, also_to=7)  # log now off
    assert await audit_store.pending_guilds() == sorted([GUILD, OTHER_GUILD])
    assert await audit_store.pending_count(GUILD) == 2

    post = await audit_store.next_post(GUILD)
    assert post is not None
    assert (post.event.id, post.event.slug, post.attempts, post.also_to) == (first, "a", 0, None)
    later = datetime.now(UTC) + timedelta(minutes=5)
    await audit_store.post_failed(first, retry_at=later, error="HTTP 503")
    post = await audit_store.next_post(GUILD)
    assert post is not None
    assert (post.event.slug, post.attempts, post.last_error) == ("a", 1, "HTTP 503")
    assert post.next_attempt_at == later
    await audit_store.retry_now(GUILD)
    post = await audit_store.next_post(GUILD)
    assert post is not None
    assert post.next_attempt_at < later
    await audit_store.post_done(first)
    post = await audit_store.next_post(GUILD)
    assert post is not None
    assert post.event.slug == "b"  # oldest first

    other = await audit_store.next_post(OTHER_GUILD)
    assert other is not None
    assert other.also_to == 7
    await audit_store.also_told(other.event.id)
    other = await audit_store.next_post(OTHER_GUILD)
    assert other is not None
    assert other.also_to is None


# --- several processes on one database ------------------------------------------------------------------
# Two Database objects on the same database stand for two bot processes: on PostgreSQL their
# transactions really run at the same time; on SQLite they meet SQLite's own file lock.


@pytest.fixture
async def other_process(db: Database) -> AsyncIterator[Database]:
    async with Database.open(db.url) as other:
        yield other


async def test_two_processes_claiming_one_slug_exactly_one_wins(
    db: Database, other_process: Database
) -> None:
    slugs = [f"contested-{n}" for n in range(25)]
    results = await asyncio.gather(
        *(LinkRecordStore(db).claim(GUILD, slug, ADMIN) for slug in slugs),
        *(LinkRecordStore(other_process).claim(OTHER_GUILD, slug.upper(), OTHER_ADMIN) for slug in slugs),
    )
    for first, second in zip(results[: len(slugs)], results[len(slugs) :], strict=True):
        assert sorted([first, second], key=lambda claim: claim.value) == [Claim.CLAIMED, Claim.ELSEWHERE]
    assert await LinkRecordStore(db).count(GUILD) + await LinkRecordStore(db).count(OTHER_GUILD) == len(slugs)


async def test_concurrent_upserts_from_two_processes_lose_no_update(
    db: Database, other_process: Database
) -> None:
    clock = ticking_clock()
    first, second = LinkRecordStore(db, clock=clock), LinkRecordStore(other_process, clock=clock)
    await first.record(GUILD, "hot", ADMIN)
    await asyncio.gather(
        *(first.record(GUILD, "hot", 1000 + n) for n in range(20)),
        *(second.record(GUILD, "hot", 2000 + n) for n in range(20)),
        *(AppStateStore(db).set(f"a-{n}", "x") for n in range(10)),
        *(AppStateStore(other_process).set(f"b-{n}", "y") for n in range(10)),
    )
    [record] = await first.page(GUILD, 0, 10)
    assert record.created_by == ADMIN  # the first creator is kept whatever came after
    assert record.last_touched_by >= 1000
    assert await db.count(app_state) == 20

    await GuildSettingsStore(db).set_log_channel(GUILD, 42)
    event_id = await AuditEventStore(db).add(GUILD, "link_created", ADMIN, "hot", {})
    later = datetime.now(UTC) + timedelta(minutes=1)
    await asyncio.gather(
        *(
            AuditEventStore(database).post_failed(event_id, retry_at=later, error="HTTP 503")
            for database in [db, other_process] * 15
        )
    )
    post = await AuditEventStore(db).next_post(GUILD)
    assert post is not None
    assert post.attempts == 30  # every failed attempt counted


async def test_audit_keep_holds_with_two_processes(db: Database, other_process: Database) -> None:
    await asyncio.gather(
        *(AuditEventStore(database, keep=10).add(GUILD, "link_edited", ADMIN, f"s{n}", {})
          for n, database in enumerate([db, other_process] * 30))
    )  # fmt: skip
    assert await AuditEventStore(db, keep=10).count(GUILD) == 10


async def test_a_token_set_during_rotation_is_not_overwritten(db: Database, other_process: Database) -> None:
    old, new = new_key(), new_key()
    for guild in range(1, 41):
        await TokenStore(db, TokenCipher([old])).set(guild, f"old-token-of-{guild:04d}", set_by=ADMIN)
    rotating = TokenStore(db, TokenCipher([new, old]))
    setting = TokenStore(other_process, TokenCipher([new, old]))
    await asyncio.gather(
        rotating.rotate_all(),
        *(setting.set(guild, f"new-token-of-{guild:04d}", set_by=OTHER_ADMIN) for guild in range(1, 41, 2)),
    )
    reader = TokenStore(db, TokenCipher([new]))
    for guild in range(1, 41):
        expected = f"new-token-of-{guild:04d}" if guild % 2 else f"old-token-of-{guild:04d}"
        assert await reader.get(guild) == expected  # every one under the new key, none lost


# --- the HTTP API's storage -------------------------------------------------------------------------------


async def test_api_keys_round_trip_and_overview(db: Database, token_store: TokenStore) -> None:
    clock = ticking_clock()
    keys = ApiKeyStore(db, limit=3, clock=clock)
    first = await keys.create(GUILD, "ci", b"\x01" * 32, ADMIN)
    second = await keys.create(GUILD, "deploy", b"\x02" * 32, OTHER_ADMIN)
    assert [key.name for key in await keys.keys(GUILD)] == ["ci", "deploy"]
    assert await keys.get(GUILD, first.id) == first
    assert await keys.get(OTHER_GUILD, first.id) is None
    found = await keys.lookup(b"\x02" * 32)
    assert found == (second, b"\x02" * 32)
    used = datetime(2024, 7, 1, 10, 0, 0, 123456, tzinfo=UTC)
    await keys.touch(first.id, used)
    assert (await keys.get(GUILD, first.id)).last_used_at == used  # type: ignore[union-attr]
    assert await keys.revoke(GUILD, second.id) == second
    assert await keys.revoke(GUILD, second.id) is None
    assert await keys.lookup(b"\x02" * 32) is None

    await token_store.set(GUILD, TOKEN, set_by=ADMIN)
    await LinkRecordStore(db).record(GUILD, "listed", ADMIN)
    await AuditEventStore(db).add(GUILD, "link_created", ADMIN, "listed", {})
    row = await ServerOverviewStore(db).get(GUILD)
    assert (row.token_last4, row.token_set_by, row.links, row.api_keys, row.audit_events) == (
        "WXYZ",
        ADMIN,
        1,
        1,
        1,
    )
    assert row.token_set_at is not None
    assert row.token_set_at.tzinfo is not None
    empty = await ServerOverviewStore(db).get(OTHER_GUILD)
    assert (empty.token_last4, empty.log_channel_id, empty.links, empty.api_keys) == (None, None, 0, 0)


async def test_two_processes_creating_keys_never_pass_the_limit(
    db: Database, other_process: Database
) -> None:
    results = await asyncio.gather(
        *(
            ApiKeyStore(database, limit=5).create(GUILD, f"key-{n}", bytes([n]) * 32, ADMIN)
            for n, database in enumerate([db, other_process] * 6)
        ),
        return_exceptions=True,
    )
    assert sum(not isinstance(result, BaseException) for result in results) == 5
    assert all(isinstance(result, TooManyKeys) for result in results if isinstance(result, BaseException))
    assert await ApiKeyStore(db).count(GUILD) == 5


async def test_one_idempotency_key_sent_twice_at_once_is_claimed_once(
    db: Database, other_process: Database
) -> None:
    begun = await asyncio.gather(
        *(
            IdempotencyStore(database).begin("key:1", "same", GUILD, "POST /links")
            for database in [db, other_process] * 5
        )
    )
    assert sorted(b.claimed.value for b in begun if b.claimed) == ["in_progress"] * 9 + ["new"]


# --- dashboard sessions --------------------------------------------------------------------------------


def _stored_session(
    digest: bytes, at: datetime, *, expires_in: timedelta = timedelta(days=7)
) -> StoredSession:
    return StoredSession(
        digest=digest,
        user_id=ADMIN,
        csrf="csrf-token",
        access_token="encrypted-access-token",
        token_expires_at=at + expires_in,
        created_at=at,
        last_seen_at=at,
    )


async def test_session_round_trip_touch_flash_and_delete(db: Database) -> None:
    store = SessionStore(db)
    at = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    await store.add(_stored_session(b"a" * 32, at), idle_before=at - timedelta(days=7))
    assert await store.get(b"a" * 32) == _stored_session(b"a" * 32, at)
    await store.touch(b"a" * 32, at + timedelta(hours=1))
    await store.set_flash(b"a" * 32, '{"kind": "saved"}')
    session = await store.get(b"a" * 32)
    assert session is not None
    assert (session.last_seen_at, session.flash) == (at + timedelta(hours=1), '{"kind": "saved"}')
    assert session.token_expires_at.tzinfo is not None
    assert await store.delete(b"a" * 32) is True
    assert await store.delete(b"a" * 32) is False
    assert await store.get(b"a" * 32) is None


async def test_a_new_session_deletes_idle_and_expired_ones(db: Database) -> None:
    store = SessionStore(db)
    start = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    await store.add(_stored_session(b"idle", start), idle_before=start)
    await store.add(_stored_session(b"expiring", start, expires_in=timedelta(hours=1)), idle_before=start)
    await store.add(_stored_session(b"live", start + timedelta(days=2)), idle_before=start)
    later = start + timedelta(days=3)
    await store.add(_stored_session(b"new", later), idle_before=start + timedelta(days=1))
    assert await store.get(b"idle") is None
    assert await store.get(b"expiring") is None
    assert await store.get(b"live") is not None
    assert await store.count() == 2


async def test_two_processes_agree_on_one_session_secret(db: Database, other_process: Database) -> None:
    secrets = await asyncio.gather(
        *(
            SessionStore(database).secret(f"candidate-{n}")
            for n, database in enumerate([db, other_process] * 3)
        )
    )
    assert len(set(secrets)) == 1
    assert await SessionStore(db).secret("late") == secrets[0]
