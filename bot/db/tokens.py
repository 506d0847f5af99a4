"""Guild dsc.gg API tokens, encrypted at rest and bound to their guild."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import aiosqlite

from bot.crypto import TokenCipher, TokenUndecryptable
from bot.db.database import Database, from_db_time, to_db_time, utc_now

log = logging.getLogger(__name__)

# Shorter tokens show no tail at all: four characters of a short secret is too much of it (half of an
# 8-character one).
_MIN_LENGTH_FOR_LAST4 = 16


class TokenUnreadable(Exception):
    """The guild's stored token no longer decrypts (key lost or rotated away, or a row from another guild).

    The admins have to set the token again. The message holds the guild id only.
    """

    def __init__(self, guild_id: int) -> None:
        super().__init__(f"the stored dsc.gg token of guild {guild_id} can no longer be decrypted")
        self.guild_id = guild_id


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What can be shown about a stored token without decrypting it (it does not hold the token)."""

    guild_id: int
    last4: str
    set_by: int
    set_at: datetime


class TokenStore:
    def __init__(self, db: Database, cipher: TokenCipher, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._db = db
        self._cipher = cipher
        self._clock = clock

    async def set(
        self, guild_id: int, token: str, *, set_by: int, conn: aiosqlite.Connection | None = None
    ) -> TokenInfo:
        """Store (or replace) the guild's token, encrypted; in ``conn``'s transaction when given."""
        if not token:
            raise ValueError("an empty token cannot be stored")
        info = TokenInfo(
            guild_id=guild_id,
            last4=token[-4:] if len(token) >= _MIN_LENGTH_FOR_LAST4 else "",
            set_by=set_by,
            set_at=self._clock(),
        )
        ciphertext = self._cipher.encrypt(guild_id, token)
        async with self._db.joining(conn) as db:
            await db.execute(
                """
                INSERT INTO guild_tokens (guild_id, ciphertext, last4, set_by, set_at)
                VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (guild_id) DO UPDATE SET
                    ciphertext = excluded.ciphertext, last4 = excluded.last4,
                    set_by = excluded.set_by, set_at = excluded.set_at
                """,
                (guild_id, ciphertext, info.last4, set_by, to_db_time(info.set_at)),
            )
        return info

    async def get(self, guild_id: int) -> str | None:
        """The guild's token, or None if none is set. Raises TokenUnreadable if it no longer decrypts."""
        row = await self._db.fetch_one("SELECT ciphertext FROM guild_tokens WHERE guild_id = ?", (guild_id,))
        if row is None:
            return None
        try:
            return self._cipher.decrypt(guild_id, row["ciphertext"])
        except TokenUndecryptable as exc:
            raise TokenUnreadable(guild_id) from exc

    async def info(self, guild_id: int) -> TokenInfo | None:
        row = await self._db.fetch_one(
            "SELECT guild_id, last4, set_by, set_at FROM guild_tokens WHERE guild_id = ?", (guild_id,)
        )
        if row is None:
            return None
        return TokenInfo(
            guild_id=row["guild_id"],
            last4=row["last4"],
            set_by=row["set_by"],
            set_at=from_db_time(row["set_at"]),
        )

    async def clear(self, guild_id: int, *, conn: aiosqlite.Connection | None = None) -> bool:
        """Forget the guild's token. True if there was one. In ``conn``'s transaction when given."""
        async with self._db.joining(conn) as db:
            cursor = await db.execute("DELETE FROM guild_tokens WHERE guild_id = ?", (guild_id,))
            return cursor.rowcount > 0

    async def rotate_all(self) -> int:
        """Re-encrypt every token that is not under the newest key; returns how many were rotated.

        Rows that no key decrypts are left alone (their guilds will be asked to set the token again).
        """
        rotated = 0
        async with self._db.transaction() as conn:
            async with conn.execute("SELECT guild_id, ciphertext FROM guild_tokens") as cursor:
                rows = list(await cursor.fetchall())
            for row in rows:
                try:
                    new_ciphertext = self._cipher.rotated(row["ciphertext"])
                except TokenUndecryptable:
                    log.warning("Stored token of guild %d cannot be decrypted; not rotated", row["guild_id"])
                    continue
                if new_ciphertext is None:  # already under the newest key
                    continue
                await conn.execute(
                    "UPDATE guild_tokens SET ciphertext = ? WHERE guild_id = ?",
                    (new_ciphertext, row["guild_id"]),
                )
                rotated += 1
        if rotated:
            log.info("Re-encrypted %d stored token(s) under the newest key", rotated)
        return rotated
