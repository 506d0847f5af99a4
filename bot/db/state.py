"""Process-wide key/value state that must survive restarts (e.g. the hash of the synced commands)."""

from __future__ import annotations

from sqlalchemy import delete, select

from bot.db.database import Database
from bot.db.schema import app_state


class AppStateStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, key: str) -> str | None:
        value = await self._db.fetch_value(select(app_state.c.value).where(app_state.c.key == key))
        return None if value is None else str(value)

    async def set(self, key: str, value: str) -> None:
        statement = self._db.insert(app_state).values(key=key, value=value)
        statement = statement.on_conflict_do_update(
            index_elements=[app_state.c.key], set_={"value": statement.excluded.value}
        )
        async with self._db.transaction() as conn:
            await conn.execute(statement)

    async def delete(self, key: str) -> bool:
        async with self._db.transaction() as conn:
            result = await conn.execute(delete(app_state).where(app_state.c.key == key))
            return result.rowcount > 0
