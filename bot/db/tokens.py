"""Guild dsc.gg API tokens, encrypted at rest and bound to their guild."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.crypto import TokenCipher, TokenUndecryptable
from bot.db.database import Database, utc_now
from bot.db.schema import guild_tokens

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
        self, guild_id: int, token: str, *, set_by: int, conn: AsyncConnection | None = None
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
        statement = self._db.insert(guild_tokens).values(
            guild_id=guild_id, ciphertext=ciphertext, last4=info.last4, set_by=set_by, set_at=info.set_at
        )
        statement = statement.on_conflict_do_update(
            index_elements=[guild_tokens.c.guild_id],
            set_={
                "ciphertext": statement.excluded.ciphertext,
                "last4": statement.excluded.last4,
                "set_by": statement.excluded.set_by,
                "set_at": statement.excluded.set_at,
            },
        )
        async with self._db.joining(conn) as db:
            await db.execute(statement)
        return info

    async def get(self, guild_id: int) -> str | None:
        """The guild's token, or None if none is set. Raises TokenUnreadable if it no longer decrypts."""
        ciphertext = await self._db.fetch_value(
            select(guild_tokens.c.ciphertext).where(guild_tokens.c.guild_id == guild_id)
        )
        if ciphertext is None:
            return None
        try:
            return self._cipher.decrypt(guild_id, ciphertext)
        except TokenUndecryptable as exc:
            raise TokenUnreadable(guild_id) from exc

    async def info(self, guild_id: int) -> TokenInfo | None:
        row = await self._db.fetch_one(
            select(
                guild_tokens.c.guild_id, guild_tokens.c.last4, guild_tokens.c.set_by, guild_tokens.c.set_at
            ).where(guild_tokens.c.guild_id == guild_id)
        )
        if row is None:
            return None
        return TokenInfo(guild_id=row.guild_id, last4=row.last4, set_by=row.set_by, set_at=row.set_at)

    async def clear(self, guild_id: int, *, conn: AsyncConnection | None = None) -> bool:
        """Forget the guild's token. True if there was one. In ``conn``'s transaction when given."""
        async with self._db.joining(conn) as db:
            result = await db.execute(delete(guild_tokens).where(guild_tokens.c.guild_id == guild_id))
            return result.rowcount > 0

    async def rotate_all(self) -> int:
        """Re-encrypt every token that is not under the newest key; returns how many were rotated.

        Rows that no key decrypts are left alone (their guilds will be asked to set the token again).
        The rows are locked while they are rotated (FOR UPDATE): a token set meanwhile by another
        process waits, and is never overwritten by the rotated old one.
        """
        rotated = 0
        async with self._db.transaction() as conn:
            rows = (
                await conn.execute(
                    select(guild_tokens.c.guild_id, guild_tokens.c.ciphertext).with_for_update()
                )
            ).all()
            for row in rows:
                try:
                    new_ciphertext = self._cipher.rotated(row.ciphertext)
                except TokenUndecryptable:
                    log.warning("Stored token of guild %d cannot be decrypted; not rotated", row.guild_id)
                    continue
                if new_ciphertext is None:  # already under the newest key
                    continue
                await conn.execute(
                    update(guild_tokens)
                    .where(guild_tokens.c.guild_id == row.guild_id)
                    .values(ciphertext=new_ciphertext)
                )
                rotated += 1
        if rotated:
            log.info("Re-encrypted %d stored token(s) under the newest key", rotated)
        return rotated
