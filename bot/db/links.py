"""Which dsc.gg links each guild manages through the bot: those it created or adopted there.

A record is what lets a server change a link with the bot (``LinkService`` refuses the others); it also
feeds autocomplete and ``/link list``.
"""

from __future__ import annotations

import enum
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


class Claim(enum.Enum):
    """What ``LinkRecordStore.claim`` did."""

    CLAIMED = "claimed"  # the guild manages the link from now on
    ALREADY_HERE = "already_here"  # the guild already managed it; nothing changed
    ELSEWHERE = "elsewhere"  # another guild manages it; nothing changed


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

    async def touch(
        self, guild_id: int, slug: str, user_id: int, *, conn: aiosqlite.Connection | None = None
    ) -> bool:
        """Note that ``user_id`` changed a link the guild manages. Never creates a record: False (and
        nothing written) when the guild has none for ``slug``. ``conn``: as for ``record``."""
        now = to_db_time(self._clock())
        async with (
            self._db.joining(conn) as db,
            db.execute(
                """
                UPDATE link_records SET last_touched_by = ?, touched_at = ?
                WHERE guild_id = ? AND slug = ? RETURNING slug
                """,
                (user_id, now, guild_id, slug),
            ) as cursor,
        ):
            return await cursor.fetchone() is not None

    async def manages(self, guild_id: int, slug: str) -> bool:
        """Whether the guild has a record for exactly ``slug``."""
        row = await self._db.fetch_one(
            "SELECT 1 FROM link_records WHERE guild_id = ? AND slug = ?", (guild_id, slug)
        )
        return row is not None

    async def managed_elsewhere(self, guild_id: int, slug: str) -> bool:
        """Whether another guild has a record for ``slug``, ignoring case (dsc.gg may not tell apart
        slugs that differ only in case, so neither does this guard)."""
        row = await self._db.fetch_one(
            "SELECT 1 FROM link_records WHERE slug = ? COLLATE NOCASE AND guild_id != ? LIMIT 1",
            (slug, guild_id),
        )
        return row is not None

    async def claim(
        self, guild_id: int, slug: str, user_id: int, *, conn: aiosqlite.Connection | None = None
    ) -> Claim:
        """Record ``slug`` for the guild unless it or another guild already has it, in one transaction
        (two guilds adopting the same link at once: only the first gets it). ``conn``: as for ``record``."""
        now = to_db_time(self._clock())
        async with self._db.joining(conn) as conn:
            async with conn.execute(
                "SELECT guild_id, slug FROM link_records WHERE slug = ? COLLATE NOCASE", (slug,)
            ) as cursor:
                rows = list(await cursor.fetchall())
            if any(row["guild_id"] == guild_id and row["slug"] == slug for row in rows):
                return Claim.ALREADY_HERE
            if any(row["guild_id"] != guild_id for row in rows):
                return Claim.ELSEWHERE
            await conn.execute(
                """
                INSERT INTO link_records (guild_id, slug, created_by, last_touched_by, created_at, touched_at)
                VALUES (?, ?, ?, ?, ?, ?)
                """,
                (guild_id, slug, user_id, user_id, now, now),
            )
        return Claim.CLAIMED

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
