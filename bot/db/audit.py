"""The last N audit events of each guild, for `/dscgg logs`."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.db.database import Database, from_db_time, to_db_time, utc_now


@dataclass(frozen=True, slots=True)
class StoredAuditEvent:
    id: int
    guild_id: int
    kind: str
    actor_id: int | None
    slug: str | None
    payload: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=utc_now)


class AuditEventStore:
    def __init__(self, db: Database, keep: int = 50, *, clock: Callable[[], datetime] = utc_now) -> None:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self._db = db
        self.keep = keep
        self._clock = clock

    async def add(
        self,
        guild_id: int,
        kind: str,
        actor_id: int | None,
        slug: str | None,
        payload: Mapping[str, Any],
        *,
        at: datetime | None = None,
    ) -> None:
        """Store one event and drop the guild's events beyond the newest ``keep``, in one transaction.

        ``payload`` must be JSON-friendly (other values are stored as their str()); it must never hold
        secrets.
        """
        payload_json = json.dumps(dict(payload), default=str, ensure_ascii=False, separators=(",", ":"))
        moment = to_db_time(at if at is not None else self._clock())
        async with self._db.transaction() as conn:
            await conn.execute(
                """
                INSERT INTO audit_events (guild_id, kind, actor_id, slug, payload, at)
                VALUES (?, ?, ?, ?, ?, ?)
                """,
                (guild_id, str(kind), actor_id, slug, payload_json, moment),
            )
            await conn.execute(
                """
                DELETE FROM audit_events WHERE guild_id = ? AND id < (
                    SELECT min(id) FROM (
                        SELECT id FROM audit_events WHERE guild_id = ? ORDER BY id DESC LIMIT ?
                    )
                )
                """,
                (guild_id, guild_id, self.keep),
            )

    async def latest(self, guild_id: int, n: int) -> list[StoredAuditEvent]:
        """The guild's newest ``n`` events, newest first."""
        if n <= 0:
            return []
        rows = await self._db.fetch_all(
            """
            SELECT id, guild_id, kind, actor_id, slug, payload, at FROM audit_events
            WHERE guild_id = ? ORDER BY id DESC LIMIT ?
            """,
            (guild_id, n),
        )
        return [
            StoredAuditEvent(
                id=row["id"],
                guild_id=row["guild_id"],
                kind=row["kind"],
                actor_id=row["actor_id"],
                slug=row["slug"],
                payload=_load_payload(row["payload"]),
                at=from_db_time(row["at"]),
            )
            for row in rows
        ]


def _load_payload(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
