"""Storage of the web dashboard: its browser sessions and the secret that signs their cookies.

Every statement of the dashboard is here. A session is keyed by the SHA-256 digest of the random id
in the browser's cookie (a stolen database does not give working cookies); it holds the Discord user,
the session's CSRF token, the user's Discord OAuth access token (encrypted by the caller), when that
token expires, when the session was last used, and a one-shot message for the next page. Sessions are
per user, not per server: ``PER_GUILD_TABLES`` does not list the table and a server's purge leaves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Row, delete, or_, select, update

from bot.db.database import Database
from bot.db.schema import app_state, dashboard_sessions

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


_S = dashboard_sessions.c


def _session(row: Row[Any]) -> StoredSession:
    return StoredSession(
        digest=bytes(row.digest),
        user_id=int(row.user_id),
        csrf=str(row.csrf),
        access_token=str(row.access_token),
        token_expires_at=row.token_expires_at,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        flash=None if row.flash is None else str(row.flash),
    )


class SessionStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def secret(self, candidate: str) -> str:
        """The stored secret; ``candidate`` becomes it when there is none yet (the first process wins)."""
        insert = self._db.insert(app_state).values(key=SECRET_KEY, value=candidate)
        async with self._db.transaction() as conn:
            await conn.execute(insert.on_conflict_do_nothing(index_elements=[app_state.c.key]))
            value = await conn.scalar(select(app_state.c.value).where(app_state.c.key == SECRET_KEY))
        assert value is not None
        return str(value)

    async def add(self, session: StoredSession, *, idle_before: datetime) -> None:
        """Store a new session; sessions idle since before ``idle_before`` or whose Discord token has
        expired by the new one's creation are deleted in the same transaction (so the table holds only
        live sessions, without a timer)."""
        async with self._db.transaction() as conn:
            await conn.execute(
                delete(dashboard_sessions).where(
                    or_(_S.last_seen_at < idle_before, _S.token_expires_at <= session.created_at)
                )
            )
            await conn.execute(
                dashboard_sessions.insert().values(
                    digest=session.digest,
                    user_id=session.user_id,
                    csrf=session.csrf,
                    access_token=session.access_token,
                    token_expires_at=session.token_expires_at,
                    created_at=session.created_at,
                    last_seen_at=session.last_seen_at,
                    flash=session.flash,
                )
            )

    async def get(self, digest: bytes) -> StoredSession | None:
        row = await self._db.fetch_one(select(dashboard_sessions).where(_S.digest == digest))
        return None if row is None else _session(row)

    async def touch(self, digest: bytes, at: datetime) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(update(dashboard_sessions).where(_S.digest == digest).values(last_seen_at=at))

    async def set_flash(self, digest: bytes, flash: str | None) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(update(dashboard_sessions).where(_S.digest == digest).values(flash=flash))

    async def delete(self, digest: bytes) -> bool:
        async with self._db.transaction() as conn:
            result = await conn.execute(delete(dashboard_sessions).where(_S.digest == digest))
            return result.rowcount > 0

    async def count(self) -> int:
        return await self._db.count(dashboard_sessions)
