"""Every table of the bot's database, as SQLAlchemy Core ``Table`` objects (the stores' query layer).

This describes the schema at the newest Alembic revision (``bot/db/alembic/versions``); a revision
that changes the schema changes this file too. Snowflakes are ``Snowflake`` (64-bit), times
``UTCDateTime`` (aware UTC on both databases).
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, Integer, LargeBinary, MetaData, Table, Text, func

from bot.db.types import Snowflake, UTCDateTime

__all__ = [
    "api_idempotency",
    "api_keys",
    "app_state",
    "audit_events",
    "audit_outbox",
    "dashboard_sessions",
    "guild_departures",
    "guild_settings",
    "guild_tokens",
    "link_records",
    "metadata",
]

metadata = MetaData()

#: Each guild's dsc.gg token, encrypted (bound to the guild id); last4 only for tokens of 16+ characters.
guild_tokens = Table(
    "guild_tokens",
    metadata,
    Column("guild_id", Snowflake, primary_key=True, autoincrement=False),
    Column("ciphertext", Text, nullable=False),
    Column("last4", Text, nullable=False),
    Column("set_by", Snowflake, nullable=False),
    Column("set_at", UTCDateTime, nullable=False),
)

#: The links each guild manages through the bot.
link_records = Table(
    "link_records",
    metadata,
    Column("guild_id", Snowflake, primary_key=True, autoincrement=False),
    Column("slug", Text, primary_key=True),
    Column("created_by", Snowflake, nullable=False),
    Column("last_touched_by", Snowflake, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("touched_at", UTCDateTime, nullable=False),
)
# Autocomplete lists a guild's links most recently touched first.
Index("link_records_by_touch", link_records.c.guild_id, link_records.c.touched_at.desc())
# Who manages a slug, case ignored (claim, managed_elsewhere).
Index("link_records_by_slug", func.lower(link_records.c.slug))

#: Process-wide key/value state (e.g. the hash of the synced commands).
app_state = Table(
    "app_state",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

guild_settings = Table(
    "guild_settings",
    metadata,
    Column("guild_id", Snowflake, primary_key=True, autoincrement=False),
    Column("log_channel_id", Snowflake),
    Column("locale", Text),
    Column("log_channel_problem", Text),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Snowflake, primary_key=True, autoincrement=True),
    Column("guild_id", Snowflake, nullable=False),
    Column("kind", Text, nullable=False),
    Column("actor_id", Snowflake),
    Column("slug", Text),
    Column("payload", Text, nullable=False, server_default="{}"),
    Column("at", UTCDateTime, nullable=False),
    sqlite_autoincrement=True,
)
# latest() and the keep-last-N trim both walk one guild's events by id.
Index("audit_events_by_guild", audit_events.c.guild_id, audit_events.c.id.desc())

#: Servers the bot left: their data is purged once left_at is older than the retention period.
guild_departures = Table(
    "guild_departures",
    metadata,
    Column("guild_id", Snowflake, primary_key=True, autoincrement=False),
    Column("left_at", UTCDateTime, nullable=False),
)

#: One row per audit event whose log-channel post is still due (deleted once posted or given up on).
audit_outbox = Table(
    "audit_outbox",
    metadata,
    Column(
        "event_id",
        Snowflake,
        ForeignKey("audit_events.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("guild_id", Snowflake, nullable=False),
    Column("also_to", Snowflake),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", Text),
    # The process posting the row and until when it holds it (a claim past that time is free again).
    Column("claimed_by", Text),
    Column("claimed_until", UTCDateTime),
)
# Each guild's posts go out oldest first.
Index("audit_outbox_by_guild", audit_outbox.c.guild_id, audit_outbox.c.event_id)

#: A server's HTTP API keys: only the SHA-256 digest of each key is stored, never the key.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Snowflake, primary_key=True, autoincrement=True),
    Column("guild_id", Snowflake, nullable=False),
    Column("name", Text, nullable=False),
    Column("digest", LargeBinary, nullable=False, unique=True),
    Column("created_by", Snowflake, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime),
    sqlite_autoincrement=True,
)
Index("api_keys_by_guild", api_keys.c.guild_id, api_keys.c.id)

#: The first response to a POST with an Idempotency-Key, per credential (status NULL while running).
api_idempotency = Table(
    "api_idempotency",
    metadata,
    Column("credential", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("guild_id", Snowflake, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("status", Integer),
    Column("headers", Text),
    Column("body", LargeBinary),
    Column("created_at", UTCDateTime, nullable=False),
)
Index("api_idempotency_by_time", api_idempotency.c.created_at)

#: One row per browser logged in to the dashboard, keyed by the SHA-256 digest of the random session id
#: in its cookie (never the id itself). Per user, not per server: a server's purge leaves it alone.
#: access_token is the Discord OAuth token, encrypted (TokenCipher).
dashboard_sessions = Table(
    "dashboard_sessions",
    metadata,
    Column("digest", LargeBinary, primary_key=True),
    Column("user_id", Snowflake, nullable=False),
    Column("csrf", Text, nullable=False),
    Column("access_token", Text, nullable=False),
    Column("token_expires_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("flash", Text),
)
# Sessions idle too long are deleted by their last use.
Index("dashboard_sessions_by_seen", dashboard_sessions.c.last_seen_at)
