"""Ordered, forward-only schema migrations.

Migration N brings a database from ``PRAGMA user_version`` N-1 to N. Never edit a released migration:
add a new one at the end. Each runs in its own transaction (see Database), so a crash mid-upgrade
leaves the file at the previous version, ready to try again.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "guild tokens, link records, app state",
        (
            """
            CREATE TABLE guild_tokens (
                guild_id   INTEGER PRIMARY KEY,
                ciphertext TEXT    NOT NULL,
                last4      TEXT    NOT NULL,
                set_by     INTEGER NOT NULL,
                set_at     TEXT    NOT NULL
            )
            """,
            """
            CREATE TABLE link_records (
                guild_id        INTEGER NOT NULL,
                slug            TEXT    NOT NULL,
                created_by      INTEGER NOT NULL,
                last_touched_by INTEGER NOT NULL,
                created_at      TEXT    NOT NULL,
                touched_at      TEXT    NOT NULL,
                PRIMARY KEY (guild_id, slug)
            )
            """,
            # Autocomplete lists a guild's links most recently touched first.
            "CREATE INDEX link_records_by_touch ON link_records (guild_id, touched_at DESC)",
            """
            CREATE TABLE app_state (
                key   TEXT PRIMARY KEY,
                value TEXT NOT NULL
            )
            """,
        ),
    ),
    Migration(
        2,
        "guild settings, audit events",
        (
            """
            CREATE TABLE guild_settings (
                guild_id            INTEGER PRIMARY KEY,
                log_channel_id      INTEGER,
                locale              TEXT,
                log_channel_problem TEXT
            )
            """,
            """
            CREATE TABLE audit_events (
                id       INTEGER PRIMARY KEY AUTOINCREMENT,
                guild_id INTEGER NOT NULL,
                kind     TEXT    NOT NULL,
                actor_id INTEGER,
                slug     TEXT,
                payload  TEXT    NOT NULL DEFAULT '{}',
                at       TEXT    NOT NULL
            )
            """,
            # latest() and the keep-last-N trim both walk one guild's events by id.
            "CREATE INDEX audit_events_by_guild ON audit_events (guild_id, id DESC)",
        ),
    ),
    Migration(
        3,
        "servers the bot was removed from",
        (
            # One row per server the bot left (or was removed from): its data is purged once
            # left_at is older than the retention period, unless the bot is invited back first.
            """
            CREATE TABLE guild_departures (
                guild_id INTEGER PRIMARY KEY,
                left_at  TEXT    NOT NULL
            )
            """,
        ),
    ),
    Migration(
        4,
        "audit outbox: log-channel posts still to be made",
        (
            # One row per audit event whose post is still due, written in the event's transaction. The
            # target is the guild's log channel at posting time; also_to is a previous log channel that
            # is told about a channel change. Rows are deleted once posted (or given up on).
            """
            CREATE TABLE audit_outbox (
                event_id        INTEGER PRIMARY KEY REFERENCES audit_events (id) ON DELETE CASCADE,
                guild_id        INTEGER NOT NULL,
                also_to         INTEGER,
                attempts        INTEGER NOT NULL DEFAULT 0,
                next_attempt_at TEXT    NOT NULL,
                last_error      TEXT
            )
            """,
            # Each guild's posts go out oldest first.
            "CREATE INDEX audit_outbox_by_guild ON audit_outbox (guild_id, event_id)",
        ),
    ),
    Migration(
        5,
        "HTTP API keys and idempotent POST responses",
        (
            # A server's API keys: only the SHA-256 digest of each key is stored, never the key.
            """
            CREATE TABLE api_keys (
                id           INTEGER PRIMARY KEY AUTOINCREMENT,
                guild_id     INTEGER NOT NULL,
                name         TEXT    NOT NULL,
                digest       BLOB    NOT NULL UNIQUE,
                created_by   INTEGER NOT NULL,
                created_at   TEXT    NOT NULL,
                last_used_at TEXT
            )
            """,
            "CREATE INDEX api_keys_by_guild ON api_keys (guild_id, id)",
            # The first response to a POST with an Idempotency-Key, per credential, kept 24 hours.
            # status is NULL while the first request is still running.
            """
            CREATE TABLE api_idempotency (
                credential  TEXT    NOT NULL,
                key         TEXT    NOT NULL,
                guild_id    INTEGER NOT NULL,
                fingerprint TEXT    NOT NULL,
                status      INTEGER,
                headers     TEXT,
                body        BLOB,
                created_at  TEXT    NOT NULL,
                PRIMARY KEY (credential, key)
            )
            """,
            "CREATE INDEX api_idempotency_by_time ON api_idempotency (created_at)",
        ),
    ),
    Migration(
        6,
        "web dashboard sessions",
        (
            # One row per browser logged in to the dashboard, keyed by the SHA-256 digest of the random
            # session id in its cookie (never the id itself). Per user, not per server: a server's purge
            # leaves it alone. access_token is the Discord OAuth token, encrypted (TokenCipher).
            """
            CREATE TABLE dashboard_sessions (
                digest           BLOB    PRIMARY KEY,
                user_id          INTEGER NOT NULL,
                csrf             TEXT    NOT NULL,
                access_token     TEXT    NOT NULL,
                token_expires_at TEXT    NOT NULL,
                created_at       TEXT    NOT NULL,
                last_seen_at     TEXT    NOT NULL,
                flash            TEXT
            )
            """,
            "CREATE INDEX dashboard_sessions_by_seen ON dashboard_sessions (last_seen_at)",
        ),
    ),
)

#: The schema version this code writes; a database with a higher user_version is refused.
SCHEMA_VERSION = MIGRATIONS[-1].version
