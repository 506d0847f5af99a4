"""A server's data as a whole: marking the servers the bot left, and purging everything of one server.

``PER_GUILD_TABLES`` is the one list of tables that hold rows of a server (each has a ``guild_id``
column). A new per-guild table must be added there, or it outlives the server's purge.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import TableClause, column, delete, select, table, union

from bot.db.database import Database
from bot.db.schema import guild_departures, guild_tokens
from bot.db.types import Snowflake

__all__ = ["PER_GUILD_TABLES", "GuildDataStore"]

#: Every table holding a server's rows, keyed by ``guild_id``. ``purge`` deletes from each of them in
#: one transaction; ``guild_ids`` reads them all. ``guild_departures`` (the mark itself) goes last.
PER_GUILD_TABLES: tuple[str, ...] = (
    "guild_tokens",
    "link_records",
    "guild_settings",
    "audit_outbox",
    "audit_events",
    "api_keys",
    "api_idempotency",
    "guild_departures",
)


class GuildDataStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def mark_departed(self, guild_id: int, at: datetime) -> bool:
        """The bot left the server: delete its dsc.gg token and mark it as departed at ``at``, in one
        transaction. An existing mark keeps its original time. True if a token was deleted."""
        mark = self._db.insert(guild_departures).values(guild_id=guild_id, left_at=at)
        async with self._db.transaction() as conn:
            result = await conn.execute(delete(guild_tokens).where(guild_tokens.c.guild_id == guild_id))
            await conn.execute(mark.on_conflict_do_nothing(index_elements=[guild_departures.c.guild_id]))
            return result.rowcount > 0

    async def clear_departure(self, guild_id: int) -> bool:
        """The bot is back in the server: its data stays. True if it was marked."""
        async with self._db.transaction() as conn:
            result = await conn.execute(
                delete(guild_departures).where(guild_departures.c.guild_id == guild_id)
            )
            return result.rowcount > 0

    async def departures(self) -> dict[int, datetime]:
        """Every server marked as departed, with the time the bot left it."""
        rows = await self._db.fetch_all(select(guild_departures.c.guild_id, guild_departures.c.left_at))
        return {int(row.guild_id): row.left_at for row in rows}

    async def guild_ids(self) -> set[int]:
        """Every server that has any row in any per-guild table."""
        rows = await self._db.fetch_all(
            union(*(select(_table(name).c.guild_id) for name in PER_GUILD_TABLES))
        )
        return {int(row.guild_id) for row in rows}

    async def purge(self, guild_id: int, *, departed_before: datetime) -> bool:
        """Delete every row of the server from every per-guild table, in one transaction, if it is
        still marked as departed at or before ``departed_before`` (checked inside that transaction,
        with the mark locked, so a re-invite that cleared the mark meanwhile wins, and one that comes
        during the purge waits for it). True if it was purged."""
        async with self._db.transaction() as conn:
            left_at = (
                await conn.execute(
                    select(guild_departures.c.left_at)
                    .where(guild_departures.c.guild_id == guild_id)
                    .with_for_update()
                )
            ).scalar()
            if left_at is None or left_at > departed_before:
                return False
            for name in PER_GUILD_TABLES:
                table_ = _table(name)
                await conn.execute(delete(table_).where(table_.c.guild_id == guild_id))
            return True


def _table(name: str) -> TableClause:
    """A per-guild table by name, with just the ``guild_id`` column these statements need."""
    return table(name, column("guild_id", Snowflake))
