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
from typing import Any

from sqlalchemy import Row, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.db.database import Database, utc_now
from bot.db.schema import api_idempotency, api_keys, audit_events, guild_settings, guild_tokens, link_records
from bot.db.types import Snowflake

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


_KEYS = api_keys.c
_KEY_COLUMNS = (_KEYS.id, _KEYS.guild_id, _KEYS.name, _KEYS.created_by, _KEYS.created_at, _KEYS.last_used_at)


#: Every authenticated request with an API key: built once.
_LOOKUP = select(*_KEY_COLUMNS, _KEYS.digest).where(_KEYS.digest == bindparam("digest"))


def _key(row: Row[Any]) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=int(row.id),
        guild_id=int(row.guild_id),
        name=str(row.name),
        created_by=int(row.created_by),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
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
        conn: AsyncConnection | None = None,
    ) -> ApiKeyRecord:
        """Store a new key's digest; TooManyKeys when the server has ``limit`` keys already (counted in
        the same transaction, with the server's keys locked, so two creations at once, in any process,
        cannot pass the limit)."""
        now = self._clock()
        async with self._db.joining(conn) as db:
            await self._db.lock(db, "api_keys.guild", guild_id)
            count = (
                await db.execute(select(func.count()).select_from(api_keys).where(_KEYS.guild_id == guild_id))
            ).scalar_one()
            if int(count) >= self.limit:
                raise TooManyKeys(guild_id, self.limit)
            key_id = (
                await db.execute(
                    api_keys.insert()
                    .values(
                        guild_id=guild_id, name=name, digest=digest, created_by=created_by, created_at=now
                    )
                    .returning(_KEYS.id)
                )
            ).scalar_one()
        return ApiKeyRecord(int(key_id), guild_id, name, created_by, now)

    async def keys(self, guild_id: int) -> list[ApiKeyRecord]:
        """The server's keys, oldest first."""
        rows = await self._db.fetch_all(
            select(*_KEY_COLUMNS).where(_KEYS.guild_id == guild_id).order_by(_KEYS.id)
        )
        return [_key(row) for row in rows]

    async def count(self, guild_id: int) -> int:
        value = await self._db.fetch_value(
            select(func.count()).select_from(api_keys).where(_KEYS.guild_id == guild_id)
        )
        return int(value or 0)

    async def get(self, guild_id: int, key_id: int) -> ApiKeyRecord | None:
        row = await self._db.fetch_one(
            select(*_KEY_COLUMNS).where(_KEYS.guild_id == guild_id, _KEYS.id == key_id)
        )
        return None if row is None else _key(row)

    async def revoke(
        self, guild_id: int, key_id: int, *, conn: AsyncConnection | None = None
    ) -> ApiKeyRecord | None:
        """Delete the server's key ``key_id``; returns it, or None if the server has no such key."""
        statement = (
            delete(api_keys).where(_KEYS.guild_id == guild_id, _KEYS.id == key_id).returning(*_KEY_COLUMNS)
        )
        async with self._db.joining(conn) as db:
            row = (await db.execute(statement)).first()
        return None if row is None else _key(row)

    async def lookup(self, digest: bytes) -> tuple[ApiKeyRecord, bytes] | None:
        """The key whose digest is ``digest``, with the stored digest (for a constant-time comparison)."""
        row = await self._db.fetch_one(_LOOKUP, {"digest": digest})
        return None if row is None else (_key(row), bytes(row.digest))

    async def touch(self, key_id: int, at: datetime | None = None) -> None:
        """Note that the key was used at ``at`` (now by default)."""
        async with self._db.transaction() as conn:
            await conn.execute(
                update(api_keys).where(_KEYS.id == key_id).values(last_used_at=at or self._clock())
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


_IDEMPOTENCY = api_idempotency.c


class IdempotencyStore:
    def __init__(
        self, db: Database, *, ttl: timedelta = IDEMPOTENCY_TTL, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._db = db
        self.ttl = ttl
        self._clock = clock

    async def begin(self, credential: str, key: str, guild_id: int, fingerprint: str) -> Begin:
        """Claim ``key`` for ``credential``'s request (``fingerprint``: what the request asks), or find
        the response of the first request that used it within the TTL. Two requests with the same key
        at once (in any process): one claims it, the other finds it in progress."""
        now = self._clock()
        same = (_IDEMPOTENCY.credential == credential, _IDEMPOTENCY.key == key)
        async with self._db.transaction() as conn:
            await self._db.lock(conn, "api_idempotency", f"{credential}\n{key}")
            row = (
                await conn.execute(
                    select(
                        _IDEMPOTENCY.fingerprint,
                        _IDEMPOTENCY.status,
                        _IDEMPOTENCY.headers,
                        _IDEMPOTENCY.body,
                        _IDEMPOTENCY.created_at,
                    ).where(*same)
                )
            ).first()
            if row is not None:
                created: datetime = row.created_at
                stale = now - created >= self.ttl or (row.status is None and now - created >= _STALE_CLAIM)
                if not stale:
                    if row.fingerprint != fingerprint:
                        return Begin(Claimed.MISMATCH)
                    if row.status is None:
                        return Begin(Claimed.IN_PROGRESS)
                    headers = json.loads(row.headers or "{}")
                    return Begin(None, StoredResponse(int(row.status), headers, bytes(row.body or b"")))
                await conn.execute(delete(api_idempotency).where(*same))
            await conn.execute(
                api_idempotency.insert().values(
                    credential=credential, key=key, guild_id=guild_id, fingerprint=fingerprint, created_at=now
                )
            )
        return Begin(Claimed.NEW)

    async def finish(self, credential: str, key: str, response: StoredResponse) -> None:
        """Store the response of the request that claimed ``key``."""
        async with self._db.transaction() as conn:
            await conn.execute(
                update(api_idempotency)
                .where(
                    _IDEMPOTENCY.credential == credential,
                    _IDEMPOTENCY.key == key,
                    _IDEMPOTENCY.status.is_(None),
                )
                .values(
                    status=response.status, headers=json.dumps(dict(response.headers)), body=response.body
                )
            )

    async def abandon(self, credential: str, key: str) -> None:
        """Release a claim: the request ended without a response to replay; a retry acts again."""
        async with self._db.transaction() as conn:
            await conn.execute(
                delete(api_idempotency).where(
                    _IDEMPOTENCY.credential == credential,
                    _IDEMPOTENCY.key == key,
                    _IDEMPOTENCY.status.is_(None),
                )
            )

    async def prune(self) -> int:
        """Forget responses older than the TTL. Returns how many."""
        cutoff = self._clock() - self.ttl
        async with self._db.transaction() as conn:
            result = await conn.execute(delete(api_idempotency).where(_IDEMPOTENCY.created_at < cutoff))
            return result.rowcount


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
        row = await self._db.fetch_one(_OVERVIEW, {"guild": guild_id})
        assert row is not None
        return ServerRow(
            token_last4=row.last4,
            token_set_by=row.set_by,
            token_set_at=row.set_at,
            log_channel_id=row.log_channel_id,
            log_channel_problem=row.log_channel_problem,
            links=int(row.links),
            api_keys=int(row.api_keys),
            audit_events=int(row.audit_events),
        )


def _count_of(table: Any, guild: Any, label: str) -> Any:
    return (
        select(func.count())
        .select_from(table)
        .where(table.c.guild_id == guild)
        .scalar_subquery()
        .label(label)
    )


def _overview() -> Any:
    guild = bindparam("guild", type_=Snowflake)
    wanted = select(guild.label("guild_id")).subquery("q")
    tokens, settings = guild_tokens.c, guild_settings.c
    return select(
        tokens.last4,
        tokens.set_by,
        tokens.set_at,
        settings.log_channel_id,
        settings.log_channel_problem,
        _count_of(link_records, guild, "links"),
        _count_of(api_keys, guild, "api_keys"),
        _count_of(audit_events, guild, "audit_events"),
    ).select_from(
        wanted.outerjoin(guild_tokens, tokens.guild_id == wanted.c.guild_id).outerjoin(
            guild_settings, settings.guild_id == wanted.c.guild_id
        )
    )


#: GET /v1/guilds/{id} in one statement, built once.
_OVERVIEW = _overview()
