"""DiscordDirectory: what the web dashboard needs to know about Discord itself, with or without the
gateway's cache.

- ``text_channels(guild_id)``: the server's text channels, for picking the log channel;
- ``user_names(ids)``: display names for the user ids the dashboard shows (who created a link or a key,
  who did what in the audit log);
- ``set_log_channel(guild_id, channel_id, actor_id)``: what ``/dscgg logs`` does, from ids.

A bot connected to the gateway answers from its cache. ``python -m bot api`` (no gateway), or a server
not in this process's shards, asks Discord's REST API with the bot token: the server (roles), its
channels (overwrites) and the bot's member (roles), so the permission check of ``AuditLog.set_channel``
runs on the same objects as for the command. Answers from REST are kept ``ttl`` seconds (user names
an hour). Discord not answering is ``DiscordUnavailable``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import aiohttp
import discord

from bot.failures import DiscordUnavailable, Invalid, InvalidInput
from bot.services.cache import SharedCache

if TYPE_CHECKING:
    from bot.audit import AuditLog, LogStatus
    from bot.client import DscBot

__all__ = ["ChannelChoice", "DiscordDirectory"]

#: Seconds a server's channels fetched over REST are kept.
CHANNELS_TTL: Final = 60.0
#: Seconds a user's name is kept.
NAMES_TTL: Final = 3600.0
#: User names fetched at once.
_NAME_FETCHES: Final = 4
_REST_ERRORS = (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class ChannelChoice:
    id: int
    name: str
    #: The category it is in, if any.
    category: str | None = None


def _choices(channels: Iterable[discord.abc.GuildChannel]) -> list[ChannelChoice]:
    texts = [channel for channel in channels if isinstance(channel, discord.TextChannel)]
    texts.sort(key=lambda c: (c.category.position if c.category else -1, c.position, c.id))
    return [ChannelChoice(c.id, c.name, c.category.name if c.category else None) for c in texts]


class DiscordDirectory:
    def __init__(self, bot: DscBot, audit: AuditLog, *, ttl: float = CHANNELS_TTL) -> None:
        self._bot = bot
        self._audit = audit
        self._channels: SharedCache[int, tuple[ChannelChoice, ...]] = SharedCache(ttl)
        self._names: SharedCache[int, str] = SharedCache(NAMES_TTL)
        self._fetching = asyncio.Semaphore(_NAME_FETCHES)

    def _cached_guild(self, guild_id: int) -> discord.Guild | None:
        if self._bot.api_only or not self._bot.is_ready():
            return None
        return self._bot.get_guild(guild_id)

    async def text_channels(self, guild_id: int) -> list[ChannelChoice]:
        """The server's text channels, in Discord's order (by category, then position)."""
        guild = self._cached_guild(guild_id)
        if guild is not None:
            return _choices(guild.channels)

        async def fetch() -> tuple[ChannelChoice, ...]:
            guild = await self._fetch_guild(guild_id)
            try:
                return tuple(_choices(await guild.fetch_channels()))
            except _REST_ERRORS as exc:
                raise DiscordUnavailable from exc

        return list(await self._channels.get(guild_id, fetch))

    async def set_log_channel(self, guild_id: int, channel_id: int | None, actor_id: int) -> LogStatus:
        """``/dscgg logs`` from ids: ``channel_id`` None turns the log off. InvalidInput for a channel
        that is not one of the server's text channels; otherwise as ``AuditLog.set_channel``."""
        guild = self._cached_guild(guild_id)
        if guild is None:
            guild = await self._fetch_guild(guild_id)
            channels: Sequence[discord.abc.GuildChannel] = []
            if channel_id is not None:
                try:
                    channels = await guild.fetch_channels()
                except _REST_ERRORS as exc:
                    raise DiscordUnavailable from exc
        else:
            channels = guild.channels
        channel = None
        if channel_id is not None:
            channel = next((c for c in channels if c.id == channel_id), None)
            if not isinstance(channel, discord.TextChannel):
                raise InvalidInput("channel", Invalid.CHANNEL_NOT_TEXT)
        try:
            return await self._audit.set_channel(guild, channel, actor_id=actor_id)
        except _REST_ERRORS as exc:  # fetching the bot's member for the permission check
            raise DiscordUnavailable from exc

    async def _fetch_guild(self, guild_id: int) -> discord.Guild:
        try:
            return await self._bot.fetch_guild(guild_id, with_counts=False)
        except _REST_ERRORS as exc:
            raise DiscordUnavailable from exc

    async def user_names(self, user_ids: Iterable[int]) -> dict[int, str]:
        """Display names (global name, else user name) of ``user_ids``; an id Discord does not know, or
        cannot name right now, is left out (the caller shows the id)."""
        wanted = sorted(set(user_ids))
        names = await asyncio.gather(*(self._name(user_id) for user_id in wanted))
        return {user_id: name for user_id, name in zip(wanted, names, strict=True) if name}

    async def _name(self, user_id: int) -> str:
        user = self._bot.get_user(user_id)
        if user is not None:
            return user.global_name or user.name

        async def fetch() -> str:
            async with self._fetching:
                try:
                    found = await self._bot.fetch_user(user_id)
                except discord.NotFound:
                    return ""  # kept: Discord has no such user
            return found.global_name or found.name

        try:
            return await self._names.get(user_id, fetch)
        except _REST_ERRORS:
            return ""  # not kept: asked again next time
