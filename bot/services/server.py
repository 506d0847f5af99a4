"""ServerService: a server as the bot knows it, in data (for ``GET /v1/guilds/{id}``), and its audit
history by event id (``GET /v1/guilds/{id}/audit-events?before=``).

Reads only: the stores and the audit log own every change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.audit import AuditEvent, event_from_row
from bot.db import GuildSettings, TokenInfo

if TYPE_CHECKING:
    from bot.db import AuditEventStore
    from bot.db.apikeys import ServerOverviewStore

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
    def __init__(self, overview: ServerOverviewStore, events: AuditEventStore) -> None:
        self._overview = overview
        self._events = events

    async def summary(self, guild_id: int) -> ServerSummary:
        """Token status (never the token), log channel and counts; one database read, no dsc.gg call."""
        row = await self._overview.get(guild_id)
        token = None
        if row.token_set_by is not None and row.token_set_at is not None:
            token = TokenInfo(guild_id, row.token_last4 or "", row.token_set_by, row.token_set_at)
        return ServerSummary(
            guild_id=guild_id,
            token=token,
            settings=GuildSettings(guild_id, row.log_channel_id, None, row.log_channel_problem),
            links=row.links,
            api_keys=row.api_keys,
            audit_events=row.audit_events,
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
