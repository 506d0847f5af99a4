"""Storage of the web dashboard: its browser sessions and the secret that signs their cookies.

Every SQL statement of the dashboard is here. A session is keyed by the SHA-256 digest of the random id
in the browser's cookie (a stolen database does not give working cookies); it holds the Discord user,
the session's CSRF token, the user's Discord OAuth access token (encrypted by the caller), when that
token expires, when the session was last used, and a one-shot message for the next page. Sessions are
per user, not per server: ``PER_GUILD_TABLES`` does not list the table and a server's purge leaves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

import aiosqlite

from bot.db.database import Database, from_db_time, to_db_time

__all__ = ["SECRET_KEY", "SessionStore", "StoredSession"]

#: The ``app_state`` key of the cookie-signing secret (hex), made once and shared by every process.
SECRET_KEY: Final = "dashboard_session_secret"


@dataclass(frozen=True, slots=True)
class StoredSession:
    digest: bytes
    user_id: int
    csrf: str
    #: The Discord OAuth access token, as encrypted by the caller.
    access_token: str
    token_expires_at: datetime
    created_at: datetime
    last_seen_at: datetime
    #: The message for the next page (JSON written by the caller), if any.
    flash: str | None = None


_COLUMNS = "digest, user_id, csrf, access_token, token_expires_at, created_at, last_seen_at, flash"


def _session(row: aiosqlite.Row) -> StoredSession:
    return StoredSession(
        digest=bytes(row["digest"]),
        user_id=int(row["user_id"]),
        csrf=str(row["csrf"]),
        access_token=str(row["access_token"]),
        token_expires_at=from_db_time(row["token_expires_at"]),
        created_at=from_db_time(row["created_at"]),
        last_seen_at=from_db_time(row["last_seen_at"]),
        flash=None if row["flash"] is None else str(row["flash"]),
    )


class SessionStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def secret(self, candidate: str) -> str:
        """The stored secret; ``candidate`` becomes it when there is none yet (the first process wins)."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO app_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                (SECRET_KEY, candidate),
            )
            async with conn.execute("SELECT value FROM app_state WHERE key = ?", (SECRET_KEY,)) as cursor:
                row = await cursor.fetchone()
        assert row is not None
        return str(row["value"])

    async def add(self, session: StoredSession, *, idle_before: datetime) -> None:
        """Store a new session; sessions idle since before ``idle_before`` or whose Discord token has
        expired by the new one's creation are deleted in the same transaction (so the table holds only
        live sessions, without a timer)."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "DELETE FROM dashboard_sessions WHERE last_seen_at < ? OR token_expires_at <= ?",
                (to_db_time(idle_before), to_db_time(session.created_at)),
            )
            await conn.execute(
                f"INSERT INTO dashboard_sessions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608 (constant)
                (
                    session.digest,
                    session.user_id,
                    session.csrf,
                    session.access_token,
                    to_db_time(session.token_expires_at),
                    to_db_time(session.created_at),
                    to_db_time(session.last_seen_at),
                    session.flash,
                ),
            )

    async def get(self, digest: bytes) -> StoredSession | None:
        row = await self._db.fetch_one(
            f"SELECT {_COLUMNS} FROM dashboard_sessions WHERE digest = ?",  # noqa: S608 (constant)
            (digest,),
        )
        return None if row is None else _session(row)

    async def touch(self, digest: bytes, at: datetime) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE dashboard_sessions SET last_seen_at = ? WHERE digest = ?", (to_db_time(at), digest)
            )

    async def set_flash(self, digest: bytes, flash: str | None) -> None:
        async with self._db.transaction() as conn:
            await conn.execute("UPDATE dashboard_sessions SET flash = ? WHERE digest = ?", (flash, digest))

    async def delete(self, digest: bytes) -> bool:
        async with self._db.transaction() as conn:
            cursor = await conn.execute("DELETE FROM dashboard_sessions WHERE digest = ?", (digest,))
            return cursor.rowcount > 0

    async def count(self) -> int:
        row = await self._db.fetch_one("SELECT count(*) FROM dashboard_sessions")
        return int(row[0]) if row else 0
