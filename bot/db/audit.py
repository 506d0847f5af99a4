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

from sqlalchemy import Integer, Row, bindparam, delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.db.database import Database, utc_now
from bot.db.schema import audit_events, audit_outbox, guild_settings
from bot.db.types import Snowflake, UTCDateTime

_EVENTS = audit_events.c
_OUTBOX = audit_outbox.c
# Built once (statements are cached by SQLAlchemy per statement object).
_INSERT_EVENT = audit_events.insert().returning(_EVENTS.id)
#: The event's post, queued only when the guild has a log channel.
_QUEUE_IF_LOGGED = audit_outbox.insert().from_select(
    [_OUTBOX.event_id, _OUTBOX.guild_id, _OUTBOX.next_attempt_at],
    select(
        bindparam("event_id", type_=Snowflake),
        bindparam("guild_id", type_=Snowflake),
        bindparam("next_attempt_at", type_=UTCDateTime),
    ).where(
        exists().where(
            guild_settings.c.guild_id == bindparam("guild_id"), guild_settings.c.log_channel_id.is_not(None)
        )
    ),
)
#: The guild's events beyond the newest ``keep``, except those whose post is pending.
_TRIM = delete(audit_events).where(
    _EVENTS.guild_id == bindparam("guild_id"),
    _EVENTS.id
    <= select(_EVENTS.id)
    .where(_EVENTS.guild_id == bindparam("guild_id"))
    .order_by(_EVENTS.id.desc())
    .limit(1)
    .offset(bindparam("keep", type_=Integer))
    .scalar_subquery(),
    _EVENTS.id.not_in(select(_OUTBOX.event_id).where(_OUTBOX.guild_id == bindparam("guild_id"))),
)
_EVENT_COLUMNS = (
    _EVENTS.id,
    _EVENTS.guild_id,
    _EVENTS.kind,
    _EVENTS.actor_id,
    _EVENTS.slug,
    _EVENTS.payload,
    _EVENTS.at,
)

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

    def transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
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
        conn: AsyncConnection | None = None,
    ) -> int:
        """Store one event, queue its post when the guild has a log channel (or ``also_to`` is set), and
        drop the guild's events beyond the newest ``keep`` that have no post pending. Returns its id.

        Runs in ``conn``'s transaction when given, else in its own. ``payload`` must be JSON-friendly
        (other values are stored as their str()); it must never hold secrets.
        """
        payload_json = json.dumps(dict(payload), default=str, ensure_ascii=False, separators=(",", ":"))
        moment = at if at is not None else self._clock()
        async with self._db.joining(conn) as db:
            # One guild's events are added one at a time (in any process), so that the trim below
            # counts every event before it, and the newest ``keep`` are what remains.
            await self._db.lock(db, "audit_events.guild", guild_id)
            event_id = (
                await db.execute(
                    _INSERT_EVENT,
                    {
                        "guild_id": guild_id,
                        "kind": str(kind),
                        "actor_id": actor_id,
                        "slug": slug,
                        "payload": payload_json,
                        "at": moment,
                    },
                )
            ).scalar_one()
            post = {"event_id": event_id, "guild_id": guild_id, "next_attempt_at": self._clock()}
            if also_to is not None:
                await db.execute(audit_outbox.insert(), {**post, "also_to": also_to})
            else:
                await db.execute(_QUEUE_IF_LOGGED, post)
            await db.execute(_TRIM, {"guild_id": guild_id, "keep": self.keep})
        return int(event_id)

    async def latest(self, guild_id: int, n: int) -> list[StoredAuditEvent]:
        """The guild's newest ``n`` events, newest first."""
        return await self.page(guild_id, 0, n)

    async def page(self, guild_id: int, offset: int, limit: int) -> list[StoredAuditEvent]:
        """``limit`` of the guild's events, newest first, skipping the ``offset`` newest."""
        if limit <= 0:
            return []
        rows = await self._db.fetch_all(
            select(*_EVENT_COLUMNS)
            .where(_EVENTS.guild_id == guild_id)
            .order_by(_EVENTS.id.desc())
            .limit(limit)
            .offset(max(offset, 0))
        )
        return [_event(row) for row in rows]

    async def count(self, guild_id: int) -> int:
        value = await self._db.fetch_value(
            select(func.count()).select_from(audit_events).where(_EVENTS.guild_id == guild_id)
        )
        return int(value or 0)

    # ------------------------------------------------------------------ outbox

    async def pending_guilds(self) -> list[int]:
        """Guilds with at least one post still due (to resume them at start)."""
        rows = await self._db.fetch_all(select(_OUTBOX.guild_id).distinct().order_by(_OUTBOX.guild_id))
        return [int(row.guild_id) for row in rows]

    async def pending_count(self, guild_id: int | None = None) -> int:
        """Posts still due, of one guild or of all."""
        statement = select(func.count()).select_from(audit_outbox)
        if guild_id is not None:
            statement = statement.where(_OUTBOX.guild_id == guild_id)
        return int(await self._db.fetch_value(statement) or 0)

    async def next_post(self, guild_id: int) -> PendingPost | None:
        """The guild's oldest post still due, or None."""
        row = await self._db.fetch_one(
            select(
                *_EVENT_COLUMNS,
                _OUTBOX.also_to,
                _OUTBOX.attempts,
                _OUTBOX.next_attempt_at,
                _OUTBOX.last_error,
            )
            .select_from(audit_outbox.join(audit_events, _EVENTS.id == _OUTBOX.event_id))
            .where(_OUTBOX.guild_id == guild_id)
            .order_by(_OUTBOX.event_id)
            .limit(1)
        )
        if row is None:
            return None
        return PendingPost(
            event=_event(row),
            also_to=row.also_to,
            attempts=int(row.attempts),
            next_attempt_at=row.next_attempt_at,
            last_error=row.last_error,
        )

    async def post_done(self, event_id: int) -> None:
        """The post went out (or was given up on): nothing more to do for this event."""
        async with self._db.transaction() as conn:
            await conn.execute(delete(audit_outbox).where(_OUTBOX.event_id == event_id))

    async def post_failed(self, event_id: int, *, retry_at: datetime, error: str) -> None:
        """Count a failed attempt (in the statement itself: no update is lost) and try again at
        ``retry_at``."""
        async with self._db.transaction() as conn:
            await conn.execute(
                update(audit_outbox)
                .where(_OUTBOX.event_id == event_id)
                .values(attempts=_OUTBOX.attempts + 1, next_attempt_at=retry_at, last_error=error[:500])
            )

    async def also_told(self, event_id: int) -> None:
        """The previous log channel was told (or could not be): a retry must not tell it again."""
        async with self._db.transaction() as conn:
            await conn.execute(update(audit_outbox).where(_OUTBOX.event_id == event_id).values(also_to=None))

    async def retry_now(self, guild_id: int, *, conn: AsyncConnection | None = None) -> None:
        """Make the guild's pending posts due at once (its log channel was fixed or changed)."""
        async with self._db.joining(conn) as db:
            await db.execute(
                update(audit_outbox).where(_OUTBOX.guild_id == guild_id).values(next_attempt_at=self._clock())
            )


def _event(row: Row[Any]) -> StoredAuditEvent:
    return StoredAuditEvent(
        id=row.id,
        guild_id=row.guild_id,
        kind=row.kind,
        actor_id=row.actor_id,
        slug=row.slug,
        payload=_load_payload(row.payload),
        at=row.at,
    )


def _load_payload(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
