"""Per-guild bot settings: the audit log channel (and why it is unusable, if it is) and the locale."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.db.database import Database
from bot.db.schema import guild_settings


@dataclass(frozen=True, slots=True)
class GuildSettings:
    guild_id: int
    log_channel_id: int | None = None
    #: Not set by any command yet (see GuildSettingsStore.set_locale).
    locale: str | None = None
    #: Why posting to the log channel last failed (e.g. missing permissions); None when it works.
    log_channel_problem: str | None = None


class GuildSettingsStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, guild_id: int) -> GuildSettings:
        """The guild's settings; defaults when it never set any."""
        columns = guild_settings.c
        row = await self._db.fetch_one(
            select(columns.log_channel_id, columns.locale, columns.log_channel_problem).where(
                columns.guild_id == guild_id
            )
        )
        if row is None:
            return GuildSettings(guild_id)
        return GuildSettings(guild_id, row.log_channel_id, row.locale, row.log_channel_problem)

    async def set_log_channel(
        self, guild_id: int, channel_id: int | None, *, conn: AsyncConnection | None = None
    ) -> None:
        """Choose (or with None, stop using) the log channel. A known problem belonged to the old channel,
        so it is cleared. In ``conn``'s transaction when given."""
        await self._upsert(guild_id, {"log_channel_id": channel_id, "log_channel_problem": None}, conn)

    async def set_log_channel_problem(self, guild_id: int, problem: str | None) -> None:
        await self._upsert(guild_id, {"log_channel_problem": problem}, None)

    async def set_locale(self, guild_id: int, locale: str | None) -> None:
        """Store the guild's preferred locale (None: Discord's). Room for translations: no command
        sets it yet and nothing reads it besides ``get()``."""
        await self._upsert(guild_id, {"locale": locale}, None)

    async def _upsert(self, guild_id: int, values: dict[str, Any], conn: AsyncConnection | None) -> None:
        """Set ``values`` in one statement, creating the row if needed; other columns keep theirs."""
        statement = self._db.insert(guild_settings).values(guild_id=guild_id, **values)
        statement = statement.on_conflict_do_update(
            index_elements=[guild_settings.c.guild_id],
            set_={name: statement.excluded[name] for name in values},
        )
        async with self._db.joining(conn) as db:
            await db.execute(statement)
