"""Per-guild bot settings: the audit log channel (and why it is unusable, if it is) and the locale."""

from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from bot.db.database import Database


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
        row = await self._db.fetch_one(
            "SELECT log_channel_id, locale, log_channel_problem FROM guild_settings WHERE guild_id = ?",
            (guild_id,),
        )
        if row is None:
            return GuildSettings(guild_id)
        return GuildSettings(guild_id, row["log_channel_id"], row["locale"], row["log_channel_problem"])

    async def set_log_channel(
        self, guild_id: int, channel_id: int | None, *, conn: aiosqlite.Connection | None = None
    ) -> None:
        """Choose (or with None, stop using) the log channel. A known problem belonged to the old channel,
        so it is cleared. In ``conn``'s transaction when given."""
        async with self._db.joining(conn) as db:
            await db.execute(
                """
                INSERT INTO guild_settings (guild_id, log_channel_id, log_channel_problem) VALUES (?, ?, NULL)
                ON CONFLICT (guild_id) DO UPDATE SET
                    log_channel_id = excluded.log_channel_id, log_channel_problem = NULL
                """,
                (guild_id, channel_id),
            )

    async def set_log_channel_problem(self, guild_id: int, problem: str | None) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                """
                INSERT INTO guild_settings (guild_id, log_channel_problem) VALUES (?, ?)
                ON CONFLICT (guild_id) DO UPDATE SET log_channel_problem = excluded.log_channel_problem
                """,
                (guild_id, problem),
            )

    async def set_locale(self, guild_id: int, locale: str | None) -> None:
        """Store the guild's preferred locale (None: Discord's). Room for translations: no command
        sets it yet and nothing reads it besides ``get()``."""
        async with self._db.transaction() as conn:
            await conn.execute(
                """
                INSERT INTO guild_settings (guild_id, locale) VALUES (?, ?)
                ON CONFLICT (guild_id) DO UPDATE SET locale = excluded.locale
                """,
                (guild_id, locale),
            )
