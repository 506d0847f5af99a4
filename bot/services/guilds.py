"""GuildLifecycle: what happens to a server's data when the bot leaves it, comes back, or never does.

- The bot is removed from a server (``left``): its dsc.gg token is deleted at once, so a later
  re-invite does not hand it to whoever has Manage Server then, and the server is marked as departed.
- The bot is invited back (``joined``) before the retention period is over: the mark goes, the link
  records, settings and audit history stay (the token has to be set again).
- Otherwise ``purge_expired`` (run at start and then periodically, see ``run``) deletes everything of
  the server once the mark is older than the retention period, in one transaction.
- ``reconcile`` compares the stored servers with the complete list of servers the bot is in (READY,
  only when this process holds every shard) and applies ``left``/``joined`` for the changes it missed
  while offline.

Nothing here knows Discord: the bot's event handlers pass guild ids in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.db.database import utc_now
from bot.db.lifecycle import GuildDataStore

__all__ = ["DEFAULT_PURGE_INTERVAL", "GuildLifecycle", "Reconciled"]

log = logging.getLogger(__name__)

#: Seconds between two purge passes (the first one runs at start).
DEFAULT_PURGE_INTERVAL = 6 * 3600.0


@dataclass(frozen=True, slots=True)
class Reconciled:
    #: Servers with stored data that the bot is no longer in: now marked, their tokens deleted.
    departed: tuple[int, ...]
    #: Servers marked as departed that the bot is in again: the mark is gone, their data stays.
    returned: tuple[int, ...]


class GuildLifecycle:
    def __init__(
        self,
        store: GuildDataStore,
        *,
        retention: timedelta,
        clock: Callable[[], datetime] = utc_now,
        is_member: Callable[[int], bool] = lambda guild_id: False,
        on_token_deleted: Callable[[int], None] = lambda guild_id: None,
    ) -> None:
        """``is_member(guild_id)``: whether the bot is in that server right now, as far as this process
        knows (a purge skips, and unmarks, such a server). ``on_token_deleted(guild_id)``: called after
        a departure deleted the server's token. ``clock`` is injectable for tests."""
        if retention < timedelta(0):
            raise ValueError("retention must not be negative")
        self._store = store
        self.retention = retention
        self.clock = clock
        self._is_member = is_member
        self._on_token_deleted = on_token_deleted
        #: Servers marked as departed (mirrors the table), so that ``joined`` costs nothing for the
        #: thousands of servers that become available at every start.
        self._departed: set[int] = set()

    async def load(self) -> None:
        """Read the departure marks; call once before the gateway delivers events."""
        self._departed = set(await self._store.departures())

    def is_departed(self, guild_id: int) -> bool:
        return guild_id in self._departed

    async def left(self, guild_id: int) -> None:
        """The bot was removed from the server (or left it): delete its token now, purge the rest later."""
        self._departed.add(guild_id)  # before awaiting: a re-invite handled meanwhile then unmarks it
        deleted = await self._store.mark_departed(guild_id, self.clock())
        if deleted:
            self._on_token_deleted(guild_id)
        log.info(
            "Removed from guild %s: %s; its data is purged in %d day(s) unless the bot is invited back",
            guild_id,
            "dsc.gg token deleted" if deleted else "no dsc.gg token was stored",
            self.retention.days,
        )

    async def joined(self, guild_id: int) -> None:
        """The bot is in the server (invited back, or available again): keep its data."""
        if guild_id not in self._departed:
            return
        self._departed.discard(guild_id)
        if await self._store.clear_departure(guild_id):
            log.info("Back in guild %s before its data was purged: its data is kept", guild_id)

    async def reconcile(self, current: Collection[int]) -> Reconciled:
        """Apply what happened while the bot was not connected. ``current`` must be EVERY server the
        bot is in (unavailable ones included), e.g. all the guilds of READY when this process holds
        every shard: a server missing from it is treated as one the bot was removed from."""
        present = set(current)
        returned = sorted(self._departed & present)
        for guild_id in returned:
            await self.joined(guild_id)
        stored = await self._store.guild_ids()
        departed = sorted(stored - present - self._departed)
        for guild_id in departed:
            await self.left(guild_id)
        if departed:
            log.info("%d guild(s) removed the bot while it was offline", len(departed))
        return Reconciled(departed=tuple(departed), returned=tuple(returned))

    async def purge_expired(self) -> list[int]:
        """Delete everything of each server marked as departed longer than the retention period ago;
        one transaction per server. Returns the purged server ids."""
        now = self.clock()
        cutoff = now - self.retention
        marks = await self._store.departures()
        self._departed = set(marks)
        purged: list[int] = []
        for guild_id, left_at in sorted(marks.items()):
            if left_at > cutoff:
                continue
            if self._is_member(guild_id):  # back without the bot noticing the join
                await self.joined(guild_id)
                continue
            if await self._store.purge(guild_id, departed_before=cutoff):
                self._departed.discard(guild_id)
                purged.append(guild_id)
                log.info("Purged the data of guild %s (the bot left it on %s)", guild_id, left_at.date())
        return purged

    async def run(self, interval: float = DEFAULT_PURGE_INTERVAL) -> None:
        """Purge now and then every ``interval`` seconds, until cancelled. A failed pass is logged and
        tried again at the next one."""
        while True:
            try:
                await self.purge_expired()
            except Exception:
                log.exception("Purging the data of servers the bot left failed; trying again later")
            await asyncio.sleep(interval)
