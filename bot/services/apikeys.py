"""ApiKeyService: a server's HTTP API keys — create (shown once), list, revoke, authenticate.

A key is ``dscggbot_`` followed by 43 url-safe characters (256 bits from ``secrets``): the fixed prefix
lets secret scanners find leaked keys. Only its SHA-256 digest is stored; the key itself exists in
memory just long enough to be shown once (``NewKey.key``, a ``SecretStr``, so it is in no repr) and is
never logged. Creating and revoking are audited (by the user who did it, with the key's name).
Authentication looks the digest up (on every request: whether a key is valid is never kept in memory,
so a key revoked in any process is refused on its next request) and compares it in constant time; a
key's last use is written at most once a minute by each process, so that a busy key does not turn every
request into a write.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import SecretStr

from bot.audit import AuditEvent, AuditLog, EventKind, FieldChange
from bot.db.apikeys import ApiKeyRecord, ApiKeyStore, TooManyKeys
from bot.failures import Invalid, InvalidInput, TooManyApiKeys, UnknownApiKey

__all__ = ["KEY_PREFIX", "ApiKeyService", "NewKey", "digest_of", "looks_like_key"]

log = logging.getLogger(__name__)

#: Every API key starts with this (so secret scanners can recognise one).
KEY_PREFIX = "dscggbot_"
#: ``secrets.token_urlsafe(32)``: 32 random bytes, 43 characters.
_KEY_RE = re.compile(r"dscggbot_[A-Za-z0-9_-]{43}", re.ASCII)
NAME_MAX = 100
#: Seconds between two writes of a key's last use.
TOUCH_INTERVAL = 60.0


def looks_like_key(credential: str) -> bool:
    """Whether ``credential`` is meant as an API key (it has the prefix), well-formed or not."""
    return credential.startswith(KEY_PREFIX)


def digest_of(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


@dataclass(frozen=True, slots=True)
class NewKey:
    record: ApiKeyRecord
    #: The key, to show once. ``SecretStr`` keeps it out of reprs and logs.
    key: SecretStr


def validate_name(raw: str) -> str:
    name = " ".join(raw.split())
    if not name:
        raise InvalidInput("name", Invalid.KEY_NAME_EMPTY)
    if len(name) > NAME_MAX:
        raise InvalidInput("name", Invalid.TOO_LONG, length=len(name), limit=NAME_MAX)
    if not name.isprintable():
        raise InvalidInput("name", Invalid.KEY_NAME_INVISIBLE)
    return name


class ApiKeyService:
    def __init__(
        self,
        store: ApiKeyStore,
        audit: AuditLog,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._audit = audit
        self._monotonic = monotonic
        #: key id -> when its last use was last written (monotonic seconds).
        self._touched: dict[int, float] = {}

    @property
    def limit(self) -> int:
        return self._store.limit

    async def create(self, guild_id: int, user_id: int, name: str) -> NewKey:
        """A new key for the server, named ``name`` (InvalidInput if unusable); TooManyApiKeys when the
        server has the most it may have. The key is in the result only."""
        name = validate_name(name)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        try:
            async with self._audit.transaction() as tx:
                record = await self._store.create(guild_id, name, digest_of(key), user_id, conn=tx.conn)
                await tx.record(
                    AuditEvent(
                        guild_id=guild_id,
                        kind=EventKind.API_KEY_CREATED,
                        actor_id=user_id,
                        changes=(FieldChange("name", None, name),),
                    )
                )
        except TooManyKeys as exc:
            raise TooManyApiKeys(exc.limit) from None
        log.info("API key %s created for guild %s by user %s", record.id, guild_id, user_id)
        return NewKey(record=record, key=SecretStr(key))

    async def list(self, guild_id: int) -> list[ApiKeyRecord]:
        return await self._store.keys(guild_id)

    async def count(self, guild_id: int) -> int:
        return await self._store.count(guild_id)

    async def revoke(self, guild_id: int, user_id: int, key_id: int) -> ApiKeyRecord:
        """Revoke the server's key ``key_id`` (effective from the next request); UnknownApiKey if the
        server has no such key."""
        async with self._audit.transaction() as tx:
            record = await self._store.revoke(guild_id, key_id, conn=tx.conn)
            if record is None:
                raise UnknownApiKey
            await tx.record(
                AuditEvent(
                    guild_id=guild_id,
                    kind=EventKind.API_KEY_REVOKED,
                    actor_id=user_id,
                    changes=(FieldChange("name", None, record.name),),
                )
            )
        self._touched.pop(key_id, None)
        log.info("API key %s of guild %s revoked by user %s", key_id, guild_id, user_id)
        return record

    async def authenticate(self, key: str) -> ApiKeyRecord | None:
        """The key's record, or None for a malformed, unknown or revoked key."""
        if not _KEY_RE.fullmatch(key):
            return None
        digest = digest_of(key)
        found = await self._store.lookup(digest)
        if found is None:
            return None
        record, stored = found
        if not hmac.compare_digest(stored, digest):  # pragma: no cover - looked up by this digest
            return None
        now = self._monotonic()
        last = self._touched.get(record.id)
        if last is None or now - last >= TOUCH_INTERVAL:
            self._touched[record.id] = now
            try:
                await self._store.touch(record.id)
            except Exception:  # the request itself is fine; the last use is only informative
                log.exception("Could not note the last use of API key %s", record.id)
        return record
