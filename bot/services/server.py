"""ServerService: a server as the bot knows it, in data (for ``GET /v1/guilds/{id}``), and its audit
history by event id (``GET /v1/guilds/{id}/audit-events?before=``).

Reads only: the stores and the audit log own every change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.audit import AuditEvent, event_from_row

if TYPE_CHECKING:
    from bot.db import AuditEventStore, GuildSettings, GuildSettingsStore, LinkRecordStore, TokenInfo
    from bot.db.apikeys import ApiKeyStore
    from bot.services.tokens import TokenService

__all__ = ["ServerService", "ServerSummary", "StoredEvent"]

#: Events read per step while looking for those before an id.
_SCAN = 200


@dataclass(frozen=True, slots=True)
class ServerSummary:
    guild_id: int
    token: TokenInfo | None
    settings: GuildSettings
    links: int
    api_keys: int
    audit_events: int


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: int
    event: AuditEvent


class ServerService:
    def __init__(
        self,
        tokens: TokenService,
        settings: GuildSettingsStore,
        records: LinkRecordStore,
        api_keys: ApiKeyStore,
        events: AuditEventStore,
    ) -> None:
        self._tokens = tokens
        self._settings = settings
        self._records = records
        self._api_keys = api_keys
        self._events = events

    async def summary(self, guild_id: int) -> ServerSummary:
        """Token status (never the token), log channel and counts; no dsc.gg call."""
        return ServerSummary(
            guild_id=guild_id,
            token=await self._tokens.info(guild_id),
            settings=await self._settings.get(guild_id),
            links=await self._records.count(guild_id),
            api_keys=await self._api_keys.count(guild_id),
            audit_events=await self._events.count(guild_id),
        )

    async def events(self, guild_id: int, limit: int, before: int | None = None) -> Sequence[StoredEvent]:
        """Up to ``limit`` of the server's events, newest first; only those older than event ``before``
        when given (ids grow with time)."""
        found: list[StoredEvent] = []
        offset = 0
        while len(found) < limit:
            rows = await self._events.page(guild_id, offset, _SCAN if before is not None else limit)
            if not rows:
                break
            offset += len(rows)
            for row in rows:
                if before is not None and row.id >= before:
                    continue
                event = event_from_row(row)
                if event is not None:
                    found.append(StoredEvent(row.id, event))
                if len(found) >= limit:
                    break
        return found
