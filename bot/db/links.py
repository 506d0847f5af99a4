"""Which dsc.gg links each guild created or touched through the bot (for autocomplete and listing)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import aiosqlite

from bot.db.database import Database, from_db_time, to_db_time, utc_now


@dataclass(frozen=True, slots=True)
class LinkRecord:
    guild_id: int
    slug: str
    created_by: int
    last_touched_by: int
    created_at: datetime
    touched_at: datetime


def escape_like(text: str) -> str:
    """Make ``text`` match literally inside a LIKE pattern that uses ESCAPE '\\'."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class LinkRecordStore:
    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._db = db
        self._clock = clock

    async def record(
        self, guild_id: int, slug: str, user_id: int, *, conn: aiosqlite.Connection | None = None
    ) -> None:
        """Remember that ``user_id`` created or changed ``slug``; the first creator and time are kept.

        Runs in ``conn``'s transaction when given (e.g. with the audit event), else in its own.
        """
        now = to_db_time(self._clock())
        async with self._db.joining(conn) as db:
            await db.execute(
                """
                INSERT INTO link_records (guild_id, slug, created_by, last_touched_by, created_at, touched_at)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (guild_id, slug) DO UPDATE SET
                    last_touched_by = excluded.last_touched_by, touched_at = excluded.touched_at
                """,
                (guild_id, slug, user_id, user_id, now, now),
            )

    async def forget(self, guild_id: int, slug: str, *, conn: aiosqlite.Connection | None = None) -> bool:
        """Drop the record (the link was deleted). True if there was one. ``conn``: as for ``record``."""
        async with (
            self._db.joining(conn) as db,
            db.execute(
                "DELETE FROM link_records WHERE guild_id = ? AND slug = ? RETURNING slug", (guild_id, slug)
            ) as cursor,
        ):
            return await cursor.fetchone() is not None

    async def search(self, guild_id: int, prefix: str, limit: int = 25) -> list[str]:
        """Slugs containing ``prefix`` (case-insensitive): those starting with it first, then the rest;
        most recently touched first within each group."""
        if limit <= 0:
            return []
        escaped = escape_like(prefix)
        rows = await self._db.fetch_all(
            r"""
            SELECT slug FROM link_records
            WHERE guild_id = ? AND slug LIKE ? ESCAPE '\'
            ORDER BY slug LIKE ? ESCAPE '\' DESC, touched_at DESC, slug
            LIMIT ?
            """,
            (guild_id, f"%{escaped}%", f"{escaped}%", limit),
        )
        return [row["slug"] for row in rows]

    async def page(self, guild_id: int, offset: int, limit: int) -> list[LinkRecord]:
        """One page of the guild's records in slug order (stable while pages are browsed)."""
        if limit <= 0:
            return []
        rows = await self._db.fetch_all(
            """
            SELECT guild_id, slug, created_by, last_touched_by, created_at, touched_at
            FROM link_records WHERE guild_id = ?
            ORDER BY slug COLLATE NOCASE, slug
            LIMIT ? OFFSET ?
            """,
            (guild_id, limit, max(offset, 0)),
        )
        return [
            LinkRecord(
                guild_id=row["guild_id"],
                slug=row["slug"],
                created_by=row["created_by"],
                last_touched_by=row["last_touched_by"],
                created_at=from_db_time(row["created_at"]),
                touched_at=from_db_time(row["touched_at"]),
            )
            for row in rows
        ]

    async def count(self, guild_id: int) -> int:
        row = await self._db.fetch_one("SELECT count(*) FROM link_records WHERE guild_id = ?", (guild_id,))
        return int(row[0]) if row else 0
