"""Process-wide key/value state that must survive restarts (e.g. the hash of the synced commands)."""

from __future__ import annotations

from bot.db.database import Database


class AppStateStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, key: str) -> str | None:
        row = await self._db.fetch_one("SELECT value FROM app_state WHERE key = ?", (key,))
        return None if row is None else str(row["value"])

    async def set(self, key: str, value: str) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                """
                INSERT INTO app_state (key, value) VALUES (?, ?)
                ON CONFLICT (key) DO UPDATE SET value = excluded.value
                """,
                (key, value),
            )

    async def delete(self, key: str) -> bool:
        async with self._db.transaction() as conn:
            cursor = await conn.execute("DELETE FROM app_state WHERE key = ?", (key,))
            return cursor.rowcount > 0
