"""A server's data as a whole: marking the servers the bot left, and purging everything of one server.

``PER_GUILD_TABLES`` is the one list of tables that hold rows of a server (each has a ``guild_id``
column). A new per-guild table must be added there, or it outlives the server's purge.
"""

from __future__ import annotations

from datetime import datetime

from bot.db.database import Database, from_db_time, to_db_time

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
        async with self._db.transaction() as conn:
            cursor = await conn.execute("DELETE FROM guild_tokens WHERE guild_id = ?", (guild_id,))
            deleted = cursor.rowcount > 0
            await conn.execute(
                """
                INSERT INTO guild_departures (guild_id, left_at) VALUES (?, ?)
                ON CONFLICT (guild_id) DO NOTHING
                """,
                (guild_id, to_db_time(at)),
            )
            return deleted

    async def clear_departure(self, guild_id: int) -> bool:
        """The bot is back in the server: its data stays. True if it was marked."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute("DELETE FROM guild_departures WHERE guild_id = ?", (guild_id,))
            return cursor.rowcount > 0

    async def departures(self) -> dict[int, datetime]:
        """Every server marked as departed, with the time the bot left it."""
        rows = await self._db.fetch_all("SELECT guild_id, left_at FROM guild_departures")
        return {int(row["guild_id"]): from_db_time(row["left_at"]) for row in rows}

    async def guild_ids(self) -> set[int]:
        """Every server that has any row in any per-guild table."""
        union = " UNION ".join(f"SELECT guild_id FROM {table}" for table in PER_GUILD_TABLES)  # noqa: S608 (constant names)
        rows = await self._db.fetch_all(union)
        return {int(row["guild_id"]) for row in rows}

    async def purge(self, guild_id: int, *, departed_before: datetime) -> bool:
        """Delete every row of the server from every per-guild table, in one transaction, if it is
        still marked as departed at or before ``departed_before`` (checked inside that transaction, so
        a re-invite that cleared the mark meanwhile wins). True if it was purged."""
        async with self._db.transaction() as conn:
            async with conn.execute(
                "SELECT left_at FROM guild_departures WHERE guild_id = ?", (guild_id,)
            ) as cursor:
                row = await cursor.fetchone()
            if row is None or from_db_time(row["left_at"]) > departed_before:
                return False
            for table in PER_GUILD_TABLES:
                await conn.execute(f"DELETE FROM {table} WHERE guild_id = ?", (guild_id,))  # noqa: S608
            return True
