"""Which dsc.gg links each guild manages through the bot: those it created or adopted there.

A record is what lets a server change a link with the bot (``LinkService`` refuses the others); it also
feeds autocomplete and ``/link list``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Integer,
    Text,
    bindparam,
    case,
    collate,
    delete,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.db.database import Database, utc_now
from bot.db.schema import link_records

_LINKS = link_records.c


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
        # Built once: the statements of the busiest calls (one per database kind).
        upsert = db.insert(link_records)
        self._upsert = upsert.on_conflict_do_update(
            index_elements=[_LINKS.guild_id, _LINKS.slug],
            set_={
                "last_touched_by": upsert.excluded.last_touched_by,
                "touched_at": upsert.excluded.touched_at,
            },
        )
        self._page = (
            select(
                _LINKS.guild_id,
                _LINKS.slug,
                _LINKS.created_by,
                _LINKS.last_touched_by,
                _LINKS.created_at,
                _LINKS.touched_at,
            )
            .where(_LINKS.guild_id == bindparam("guild_id"))
            .order_by(self._bytewise(func.lower(_LINKS.slug)), self._bytewise(_LINKS.slug))
            .limit(bindparam("limit", type_=Integer))
            .offset(bindparam("offset", type_=Integer))
        )

    async def record(
        self, guild_id: int, slug: str, user_id: int, *, conn: AsyncConnection | None = None
    ) -> None:
        """Remember that ``user_id`` created or changed ``slug``; the first creator and time are kept.

        Runs in ``conn``'s transaction when given (e.g. with the audit event), else in its own.
        """
        now = self._clock()
        values = {"guild_id": guild_id, "slug": slug, "created_by": user_id, "last_touched_by": user_id}
        async with self._db.joining(conn) as db:
            await db.execute(self._upsert, {**values, "created_at": now, "touched_at": now})

    async def touch(
        self, guild_id: int, slug: str, user_id: int, *, conn: AsyncConnection | None = None
    ) -> bool:
        """Note that ``user_id`` changed a link the guild manages. Never creates a record: False (and
        nothing written) when the guild has none for ``slug``. ``conn``: as for ``record``."""
        statement = (
            update(link_records)
            .where(_LINKS.guild_id == guild_id, _LINKS.slug == slug)
            .values(last_touched_by=user_id, touched_at=self._clock())
            .returning(_LINKS.slug)
        )
        async with self._db.joining(conn) as db:
            return (await db.execute(statement)).first() is not None

    async def manages(self, guild_id: int, slug: str) -> bool:
        """Whether the guild has a record for exactly ``slug``."""
        row = await self._db.fetch_one(select(1).where(_LINKS.guild_id == guild_id, _LINKS.slug == slug))
        return row is not None

    async def managed_elsewhere(self, guild_id: int, slug: str) -> bool:
        """Whether another guild has a record for ``slug``, ignoring case (dsc.gg may not tell apart
        slugs that differ only in case, so neither does this guard)."""
        row = await self._db.fetch_one(
            select(1).where(_same_slug(slug), _LINKS.guild_id != guild_id).limit(1)
        )
        return row is not None

    async def claim(
        self, guild_id: int, slug: str, user_id: int, *, conn: AsyncConnection | None = None
    ) -> Claim:
        """Record ``slug`` for the guild unless it or another guild already has it, in one transaction
        (two guilds adopting the same link at once, in any process: only the first gets it; the slug,
        case ignored, is locked until the transaction ends). ``conn``: as for ``record``."""
        now = self._clock()
        async with self._db.joining(conn) as db:
            await self._db.lock(db, "link_records.slug", slug.lower())
            rows = (await db.execute(select(_LINKS.guild_id, _LINKS.slug).where(_same_slug(slug)))).all()
            if any(row.guild_id == guild_id and row.slug == slug for row in rows):
                return Claim.ALREADY_HERE
            if any(row.guild_id != guild_id for row in rows):
                return Claim.ELSEWHERE
            await db.execute(
                link_records.insert().values(
                    guild_id=guild_id,
                    slug=slug,
                    created_by=user_id,
                    last_touched_by=user_id,
                    created_at=now,
                    touched_at=now,
                )
            )
        return Claim.CLAIMED

    async def forget(self, guild_id: int, slug: str, *, conn: AsyncConnection | None = None) -> bool:
        """Drop the record (the link was deleted). True if there was one. ``conn``: as for ``record``."""
        statement = (
            delete(link_records)
            .where(_LINKS.guild_id == guild_id, _LINKS.slug == slug)
            .returning(_LINKS.slug)
        )
        async with self._db.joining(conn) as db:
            return (await db.execute(statement)).first() is not None

    async def search(self, guild_id: int, prefix: str, limit: int = 25) -> list[str]:
        """Slugs containing ``prefix`` (case-insensitive): those starting with it first, then the rest;
        most recently touched first within each group."""
        if limit <= 0:
            return []
        escaped = escape_like(prefix)
        starts_with = _LINKS.slug.ilike(f"{escaped}%", escape="\\")
        rows = await self._db.fetch_all(
            select(_LINKS.slug)
            .where(_LINKS.guild_id == guild_id, _LINKS.slug.ilike(f"%{escaped}%", escape="\\"))
            .order_by(case((starts_with, 0), else_=1), _LINKS.touched_at.desc(), self._bytewise(_LINKS.slug))
            .limit(limit)
        )
        return [row.slug for row in rows]

    async def page(self, guild_id: int, offset: int, limit: int) -> list[LinkRecord]:
        """One page of the guild's records in slug order, case ignored (stable while pages are browsed)."""
        if limit <= 0:
            return []
        rows = await self._db.fetch_all(
            self._page, {"guild_id": guild_id, "limit": limit, "offset": max(offset, 0)}
        )
        return [
            LinkRecord(
                guild_id=row.guild_id,
                slug=row.slug,
                created_by=row.created_by,
                last_touched_by=row.last_touched_by,
                created_at=row.created_at,
                touched_at=row.touched_at,
            )
            for row in rows
        ]

    async def count(self, guild_id: int) -> int:
        value = await self._db.fetch_value(
            select(func.count()).select_from(link_records).where(_LINKS.guild_id == guild_id)
        )
        return int(value or 0)

    def _bytewise(self, expression: ColumnElement[str]) -> ColumnElement[str]:
        """Text ordered by its bytes, as SQLite does; PostgreSQL would otherwise use the database's
        locale (which, e.g., skips punctuation)."""
        return expression if self._db.is_sqlite else collate(expression, "C")


def _same_slug(slug: str) -> ColumnElement[bool]:
    """The record's slug is ``slug``, case ignored (ASCII case on SQLite, as dsc.gg slugs are)."""
    return func.lower(_LINKS.slug) == func.lower(literal(slug, Text))
