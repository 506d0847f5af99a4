"""Storage for the HTTP API: a server's API keys (digests only) and idempotent POST responses.

Every SQL statement of the HTTP API is here, behind two small typed classes:

- ``ApiKeyStore``: create (at most ``MAX_KEYS_PER_GUILD`` per server, counted in the same
  transaction as the insert), list, get, revoke, look up by digest, note the last use. A key itself is
  never stored or returned: only its SHA-256 digest, which ``lookup`` takes.
- ``ServerOverviewStore``: a server's token status, log channel and counts in one read (for
  ``GET /v1/guilds/{id}``, which must stay cheap next to a bare request).
- ``IdempotencyStore``: the first response to a POST sent with an ``Idempotency-Key``, per credential,
  for ``IDEMPOTENCY_TTL``. ``begin`` claims the key (or returns what was stored, or says the first
  request is still running), ``finish`` stores the response, ``abandon`` releases a claim whose
  request ended without a response worth replaying.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import aiosqlite

from bot.db.database import Database, from_db_time, to_db_time, utc_now

__all__ = [
    "IDEMPOTENCY_TTL",
    "MAX_KEYS_PER_GUILD",
    "ApiKeyRecord",
    "ApiKeyStore",
    "Begin",
    "Claimed",
    "IdempotencyStore",
    "ServerOverviewStore",
    "ServerRow",
    "StoredResponse",
    "TooManyKeys",
]

#: API keys one server may have at once.
MAX_KEYS_PER_GUILD = 25
#: How long the first response to an Idempotency-Key is replayed.
IDEMPOTENCY_TTL = timedelta(hours=24)
#: A claim older than this whose request never finished (the process died) may be taken over.
_STALE_CLAIM = timedelta(minutes=5)


class TooManyKeys(Exception):
    """The server already has ``MAX_KEYS_PER_GUILD`` keys; nothing was stored."""

    def __init__(self, guild_id: int, limit: int) -> None:
        super().__init__(f"guild {guild_id} already has {limit} API keys")
        self.guild_id = guild_id
        self.limit = limit


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """What is known about a key, without the key (nor its digest)."""

    id: int
    guild_id: int
    name: str
    created_by: int
    created_at: datetime
    last_used_at: datetime | None = None


_KEY_COLUMNS = "id, guild_id, name, created_by, created_at, last_used_at"


def _key(row: aiosqlite.Row) -> ApiKeyRecord:
    last = row["last_used_at"]
    return ApiKeyRecord(
        id=int(row["id"]),
        guild_id=int(row["guild_id"]),
        name=str(row["name"]),
        created_by=int(row["created_by"]),
        created_at=from_db_time(row["created_at"]),
        last_used_at=from_db_time(last) if last else None,
    )


class ApiKeyStore:
    def __init__(
        self, db: Database, *, limit: int = MAX_KEYS_PER_GUILD, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._db = db
        self.limit = limit
        self._clock = clock

    async def create(
        self,
        guild_id: int,
        name: str,
        digest: bytes,
        created_by: int,
        *,
        conn: aiosqlite.Connection | None = None,
    ) -> ApiKeyRecord:
        """Store a new key's digest; TooManyKeys when the server has ``limit`` keys already (counted in
        the same transaction, so two creations at once cannot pass the limit)."""
        now = self._clock()
        async with self._db.joining(conn) as db:
            async with db.execute("SELECT count(*) FROM api_keys WHERE guild_id = ?", (guild_id,)) as cursor:
                row = await cursor.fetchone()
            if row is not None and int(row[0]) >= self.limit:
                raise TooManyKeys(guild_id, self.limit)
            cursor = await db.execute(
                """
                INSERT INTO api_keys (guild_id, name, digest, created_by, created_at)
                VALUES (?, ?, ?, ?, ?)
                """,
                (guild_id, name, digest, created_by, to_db_time(now)),
            )
            key_id = cursor.lastrowid
            assert key_id is not None
        return ApiKeyRecord(key_id, guild_id, name, created_by, now)

    async def keys(self, guild_id: int) -> list[ApiKeyRecord]:
        """The server's keys, oldest first."""
        rows = await self._db.fetch_all(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE guild_id = ? ORDER BY id",  # noqa: S608 (constant)
            (guild_id,),
        )
        return [_key(row) for row in rows]

    async def count(self, guild_id: int) -> int:
        row = await self._db.fetch_one("SELECT count(*) FROM api_keys WHERE guild_id = ?", (guild_id,))
        return int(row[0]) if row else 0

    async def get(self, guild_id: int, key_id: int) -> ApiKeyRecord | None:
        row = await self._db.fetch_one(
            f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE guild_id = ? AND id = ?",  # noqa: S608 (constant)
            (guild_id, key_id),
        )
        return None if row is None else _key(row)

    async def revoke(
        self, guild_id: int, key_id: int, *, conn: aiosqlite.Connection | None = None
    ) -> ApiKeyRecord | None:
        """Delete the server's key ``key_id``; returns it, or None if the server has no such key."""
        async with (
            self._db.joining(conn) as db,
            db.execute(
                f"DELETE FROM api_keys WHERE guild_id = ? AND id = ? RETURNING {_KEY_COLUMNS}",  # noqa: S608
                (guild_id, key_id),
            ) as cursor,
        ):
            row = await cursor.fetchone()
        return None if row is None else _key(row)

    async def lookup(self, digest: bytes) -> tuple[ApiKeyRecord, bytes] | None:
        """The key whose digest is ``digest``, with the stored digest (for a constant-time comparison)."""
        row = await self._db.fetch_one(
            f"SELECT {_KEY_COLUMNS}, digest FROM api_keys WHERE digest = ?",  # noqa: S608 (constant)
            (digest,),
        )
        return None if row is None else (_key(row), bytes(row["digest"]))

    async def touch(self, key_id: int, at: datetime | None = None) -> None:
        """Note that the key was used at ``at`` (now by default)."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE api_keys SET last_used_at = ? WHERE id = ?",
                (to_db_time(at or self._clock()), key_id),
            )


# --------------------------------------------------------------------------------------------------
# Idempotency-Key
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


class Claimed(enum.Enum):
    """What ``IdempotencyStore.begin`` found."""

    NEW = "new"  # claimed for this request: run it, then finish() or abandon()
    IN_PROGRESS = "in_progress"  # the first request with this key is still running
    MISMATCH = "mismatch"  # the key was used for a different request


@dataclass(frozen=True, slots=True)
class Begin:
    claimed: Claimed | None
    #: The first response, to replay (then ``claimed`` is None).
    response: StoredResponse | None = None


class IdempotencyStore:
    def __init__(
        self, db: Database, *, ttl: timedelta = IDEMPOTENCY_TTL, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._db = db
        self.ttl = ttl
        self._clock = clock

    async def begin(self, credential: str, key: str, guild_id: int, fingerprint: str) -> Begin:
        """Claim ``key`` for ``credential``'s request (``fingerprint``: what the request asks), or find
        the response of the first request that used it within the TTL."""
        now = self._clock()
        async with self._db.transaction() as conn:
            async with conn.execute(
                """
                SELECT fingerprint, status, headers, body, created_at FROM api_idempotency
                WHERE credential = ? AND key = ?
                """,
                (credential, key),
            ) as cursor:
                row = await cursor.fetchone()
            if row is not None:
                created = from_db_time(row["created_at"])
                stale = now - created >= self.ttl or (row["status"] is None and now - created >= _STALE_CLAIM)
                if not stale:
                    if row["fingerprint"] != fingerprint:
                        return Begin(Claimed.MISMATCH)
                    if row["status"] is None:
                        return Begin(Claimed.IN_PROGRESS)
                    headers = json.loads(row["headers"] or "{}")
                    return Begin(None, StoredResponse(int(row["status"]), headers, bytes(row["body"] or b"")))
                await conn.execute(
                    "DELETE FROM api_idempotency WHERE credential = ? AND key = ?", (credential, key)
                )
            await conn.execute(
                """
                INSERT INTO api_idempotency (credential, key, guild_id, fingerprint, created_at)
                VALUES (?, ?, ?, ?, ?)
                """,
                (credential, key, guild_id, fingerprint, to_db_time(now)),
            )
        return Begin(Claimed.NEW)

    async def finish(self, credential: str, key: str, response: StoredResponse) -> None:
        """Store the response of the request that claimed ``key``."""
        async with self._db.transaction() as conn:
            await conn.execute(
                """
                UPDATE api_idempotency SET status = ?, headers = ?, body = ?
                WHERE credential = ? AND key = ? AND status IS NULL
                """,
                (response.status, json.dumps(dict(response.headers)), response.body, credential, key),
            )

    async def abandon(self, credential: str, key: str) -> None:
        """Release a claim: the request ended without a response to replay; a retry acts again."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "DELETE FROM api_idempotency WHERE credential = ? AND key = ? AND status IS NULL",
                (credential, key),
            )

    async def prune(self) -> int:
        """Forget responses older than the TTL. Returns how many."""
        cutoff = to_db_time(self._clock() - self.ttl)
        async with self._db.transaction() as conn:
            cursor = await conn.execute("DELETE FROM api_idempotency WHERE created_at < ?", (cutoff,))
            return cursor.rowcount


# --------------------------------------------------------------------------------------------------
# A server at a glance (GET /v1/guilds/{id}): one read instead of five
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerRow:
    token_last4: str | None
    token_set_by: int | None
    token_set_at: datetime | None
    log_channel_id: int | None
    log_channel_problem: str | None
    links: int
    api_keys: int
    audit_events: int


class ServerOverviewStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, guild_id: int) -> ServerRow:
        """The server's token status (never the token), log channel and counts, in one read."""
        row = await self._db.fetch_one(
            """
            SELECT t.last4, t.set_by, t.set_at, s.log_channel_id, s.log_channel_problem,
                   (SELECT count(*) FROM link_records WHERE guild_id = :g) AS links,
                   (SELECT count(*) FROM api_keys WHERE guild_id = :g) AS api_keys,
                   (SELECT count(*) FROM audit_events WHERE guild_id = :g) AS audit_events
            FROM (SELECT :g AS guild_id) AS q
            LEFT JOIN guild_tokens AS t ON t.guild_id = q.guild_id
            LEFT JOIN guild_settings AS s ON s.guild_id = q.guild_id
            """,
            {"g": guild_id},
        )
        assert row is not None
        return ServerRow(
            token_last4=row["last4"],
            token_set_by=row["set_by"],
            token_set_at=from_db_time(row["set_at"]) if row["set_at"] else None,
            log_channel_id=row["log_channel_id"],
            log_channel_problem=row["log_channel_problem"],
            links=int(row["links"]),
            api_keys=int(row["api_keys"]),
            audit_events=int(row["audit_events"]),
        )
