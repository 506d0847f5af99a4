"""Each guild's audit history (the newest ``keep`` events), and the outbox of log-channel posts still due.

An event and its pending post are written in one transaction (``add``), which may be the caller's own
(``conn``): the change an event records and the event itself are committed together. A post is queued
only when the guild has a log channel at that moment (or ``also_to`` names a channel to tell). The
outbox row is deleted once the post went out or was given up on; events with a pending post are
never trimmed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiosqlite

from bot.db.database import Database, from_db_time, to_db_time, utc_now

#: Events kept per guild unless the settings say otherwise (``AUDIT_KEEP``).
DEFAULT_KEEP = 1000


@dataclass(frozen=True, slots=True)
class StoredAuditEvent:
    id: int
    guild_id: int
    kind: str
    actor_id: int | None
    slug: str | None
    payload: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=utc_now)


@dataclass(frozen=True, slots=True)
class PendingPost:
    """A log-channel post still to be made for ``event``."""

    event: StoredAuditEvent
    #: A previous log channel to tell as well (the log channel was changed or turned off).
    also_to: int | None
    #: Failed attempts so far.
    attempts: int
    next_attempt_at: datetime
    last_error: str | None


class AuditEventStore:
    def __init__(
        self, db: Database, keep: int = DEFAULT_KEEP, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self._db = db
        self.keep = keep
        self._clock = clock

    def transaction(self) -> AbstractAsyncContextManager[aiosqlite.Connection]:
        """A write transaction of the database; pass its connection to ``add`` and the other stores."""
        return self._db.transaction()

    # ------------------------------------------------------------------ events

    async def add(
        self,
        guild_id: int,
        kind: str,
        actor_id: int | None,
        slug: str | None,
        payload: Mapping[str, Any],
        *,
        at: datetime | None = None,
        also_to: int | None = None,
        conn: aiosqlite.Connection | None = None,
    ) -> int:
        """Store one event, queue its post when the guild has a log channel (or ``also_to`` is set), and
        drop the guild's events beyond the newest ``keep`` that have no post pending. Returns its id.

        Runs in ``conn``'s transaction when given, else in its own. ``payload`` must be JSON-friendly
        (other values are stored as their str()); it must never hold secrets.
        """
        payload_json = json.dumps(dict(payload), default=str, ensure_ascii=False, separators=(",", ":"))
        moment = to_db_time(at if at is not None else self._clock())
        async with self._db.joining(conn) as db:
            cursor = await db.execute(
                """
                INSERT INTO audit_events (guild_id, kind, actor_id, slug, payload, at)
                VALUES (?, ?, ?, ?, ?, ?)
                """,
                (guild_id, str(kind), actor_id, slug, payload_json, moment),
            )
            event_id = cursor.lastrowid
            assert event_id is not None
            await db.execute(
                """
                INSERT INTO audit_outbox (event_id, guild_id, also_to, next_attempt_at)
                SELECT ?, ?, ?, ?
                WHERE ? IS NOT NULL OR EXISTS (
                    SELECT 1 FROM guild_settings WHERE guild_id = ? AND log_channel_id IS NOT NULL
                )
                """,
                (event_id, guild_id, also_to, to_db_time(self._clock()), also_to, guild_id),
            )
            await db.execute(
                """
                DELETE FROM audit_events
                WHERE guild_id = ?
                  AND id <= (
                      SELECT id FROM audit_events WHERE guild_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?
                  )
                  AND id NOT IN (SELECT event_id FROM audit_outbox WHERE guild_id = ?)
                """,
                (guild_id, guild_id, self.keep, guild_id),
            )
        return event_id

    async def latest(self, guild_id: int, n: int) -> list[StoredAuditEvent]:
        """The guild's newest ``n`` events, newest first."""
        return await self.page(guild_id, 0, n)

    async def page(self, guild_id: int, offset: int, limit: int) -> list[StoredAuditEvent]:
        """``limit`` of the guild's events, newest first, skipping the ``offset`` newest."""
        if limit <= 0:
            return []
        rows = await self._db.fetch_all(
            """
            SELECT e.id, e.guild_id, e.kind, e.actor_id, e.slug, e.payload, e.at FROM audit_events AS e
            WHERE e.guild_id = ? ORDER BY e.id DESC LIMIT ? OFFSET ?
            """,
            (guild_id, limit, max(offset, 0)),
        )
        return [_event(row) for row in rows]

    async def count(self, guild_id: int) -> int:
        row = await self._db.fetch_one("SELECT count(*) FROM audit_events WHERE guild_id = ?", (guild_id,))
        return int(row[0]) if row else 0

    # ------------------------------------------------------------------ outbox

    async def pending_guilds(self) -> list[int]:
        """Guilds with at least one post still due (to resume them at start)."""
        rows = await self._db.fetch_all("SELECT DISTINCT guild_id FROM audit_outbox ORDER BY guild_id")
        return [int(row["guild_id"]) for row in rows]

    async def pending_count(self, guild_id: int | None = None) -> int:
        """Posts still due, of one guild or of all."""
        if guild_id is None:
            row = await self._db.fetch_one("SELECT count(*) FROM audit_outbox")
        else:
            row = await self._db.fetch_one(
                "SELECT count(*) FROM audit_outbox WHERE guild_id = ?", (guild_id,)
            )
        return int(row[0]) if row else 0

    async def next_post(self, guild_id: int) -> PendingPost | None:
        """The guild's oldest post still due, or None."""
        row = await self._db.fetch_one(
            """
            SELECT e.id, e.guild_id, e.kind, e.actor_id, e.slug, e.payload, e.at,
                   o.also_to, o.attempts, o.next_attempt_at, o.last_error
            FROM audit_outbox AS o JOIN audit_events AS e ON e.id = o.event_id
            WHERE o.guild_id = ? ORDER BY o.event_id LIMIT 1
            """,
            (guild_id,),
        )
        if row is None:
            return None
        return PendingPost(
            event=_event(row),
            also_to=row["also_to"],
            attempts=int(row["attempts"]),
            next_attempt_at=from_db_time(row["next_attempt_at"]),
            last_error=row["last_error"],
        )

    async def post_done(self, event_id: int) -> None:
        """The post went out (or was given up on): nothing more to do for this event."""
        async with self._db.transaction() as conn:
            await conn.execute("DELETE FROM audit_outbox WHERE event_id = ?", (event_id,))

    async def post_failed(self, event_id: int, *, retry_at: datetime, error: str) -> None:
        """Count a failed attempt and try again at ``retry_at``."""
        async with self._db.transaction() as conn:
            await conn.execute(
                """
                UPDATE audit_outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?
                WHERE event_id = ?
                """,
                (to_db_time(retry_at), error[:500], event_id),
            )

    async def also_told(self, event_id: int) -> None:
        """The previous log channel was told (or could not be): a retry must not tell it again."""
        async with self._db.transaction() as conn:
            await conn.execute("UPDATE audit_outbox SET also_to = NULL WHERE event_id = ?", (event_id,))

    async def retry_now(self, guild_id: int, *, conn: aiosqlite.Connection | None = None) -> None:
        """Make the guild's pending posts due at once (its log channel was fixed or changed)."""
        async with self._db.joining(conn) as db:
            await db.execute(
                "UPDATE audit_outbox SET next_attempt_at = ? WHERE guild_id = ?",
                (to_db_time(self._clock()), guild_id),
            )


def _event(row: aiosqlite.Row) -> StoredAuditEvent:
    return StoredAuditEvent(
        id=row["id"],
        guild_id=row["guild_id"],
        kind=row["kind"],
        actor_id=row["actor_id"],
        slug=row["slug"],
        payload=_load_payload(row["payload"]),
        at=from_db_time(row["at"]),
    )


def _load_payload(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
