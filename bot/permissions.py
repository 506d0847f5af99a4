"""Discord's own command permissions, mirrored per guild, so the runtime check agrees with Discord.

Server admins can change who may use a command in Server Settings → Integrations: allow or deny roles,
members and channels, for one command or for the whole app. Discord applies those overrides before it
offers a command, but a runtime check that only reads Manage Server would still refuse a "Link
managers" role an admin allowed there (and let through a member an admin denied). So the bot keeps a
copy of the overrides and decides the way Discord does (see :func:`evaluate`).

The copy of a guild is fetched once, on first need (``GET /applications/{app}/guilds/{guild}/commands/
permissions``, which works with the bot token), and kept current from the gateway event
``APPLICATION_COMMAND_PERMISSIONS_UPDATE`` (discord.py: ``on_raw_app_command_permissions_update``), so
a change takes effect without fetching again. A fetch that fails or is slow falls back to the default
rule (logged once per guild) and is tried again later. Everything stays in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import discord

__all__ = ["CommandPermissions", "Override", "OverrideType", "command_id_of", "evaluate", "parse_overrides"]

log = logging.getLogger(__name__)

#: Fetches the raw permission objects of every command of the app in one guild.
Fetch = Callable[[int], Awaitable[Sequence[Mapping[str, Any]]]]
#: Overrides of one guild: target (a command id, or the application id for app-wide ones) → overrides.
Table = dict[int, tuple["Override", ...]]


class OverrideType(enum.IntEnum):
    ROLE = 1
    USER = 2
    CHANNEL = 3


@dataclass(frozen=True, slots=True)
class Override:
    """One permission override: ``id`` is a role, user or channel id (``guild_id`` = @everyone,
    ``guild_id - 1`` = all channels); ``allow`` False is a deny."""

    id: int
    type: int
    allow: bool


def parse_overrides(items: Iterable[Mapping[str, Any]]) -> tuple[Override, ...]:
    """Overrides from Discord's JSON (``{"id": "…", "type": 1, "permission": true}``); odd items skipped."""
    parsed = []
    for item in items:
        try:
            parsed.append(Override(int(item["id"]), int(item["type"]), bool(item["permission"])))
        except (KeyError, TypeError, ValueError):
            continue
    return tuple(parsed)


def _channel_verdict(overrides: Sequence[Override], channel_id: int | None, guild_id: int) -> bool | None:
    channels = {o.id: o.allow for o in overrides if o.type == OverrideType.CHANNEL}
    if channel_id is not None and channel_id in channels:
        return channels[channel_id]
    return channels.get(guild_id - 1)  # "all channels"


def _member_verdict(
    overrides: Sequence[Override], user_id: int, role_ids: Collection[int], guild_id: int
) -> bool | None:
    for o in overrides:
        if o.type == OverrideType.USER and o.id == user_id:
            return o.allow
    roles = [
        o.allow for o in overrides if o.type == OverrideType.ROLE and o.id != guild_id and o.id in role_ids
    ]
    if roles:
        return any(roles)  # one allowed role is enough
    return next((o.allow for o in overrides if o.type == OverrideType.ROLE and o.id == guild_id), None)


def evaluate(
    table: Mapping[int, Sequence[Override]],
    *,
    command_id: int | None,
    application_id: int,
    guild_id: int,
    channel_id: int | None,
    user_id: int,
    role_ids: Collection[int],
    administrator: bool,
) -> bool | None:
    """Discord's decision for one member and command: True or False when an override decides, None
    when none applies (the command's default rule, ``default_member_permissions``, decides then).

    - Administrator always passes.
    - Channels: the command's override for this channel, else its "all channels" one, else the same two
      at app level (id = application id). A deny there refuses whatever the member overrides say.
    - Members: the command's user override, else its role overrides (allowed if any of the member's roles
      is allowed, denied if all that have one are denied), else its @everyone override (role id = guild
      id); else the same at app level. Command-level overrides win over app-level ones.
    """
    if administrator:
        return True
    levels = [table.get(command_id, ()) if command_id is not None else (), table.get(application_id, ())]
    for level in levels:
        channel = _channel_verdict(level, channel_id, guild_id)
        if channel is not None:
            if not channel:
                return False
            break
    for level in levels:
        member = _member_verdict(level, user_id, role_ids, guild_id)
        if member is not None:
            return member
    return None


def _channel_of(interaction: discord.Interaction[Any]) -> int | None:
    """Threads take the command permissions of their parent channel."""
    channel = interaction.channel
    if isinstance(channel, discord.Thread):
        return channel.parent_id
    return interaction.channel_id


def command_id_of(interaction: discord.Interaction[Any]) -> int | None:
    """The top-level command's id (application commands and autocomplete carry it)."""
    if interaction.type not in (
        discord.InteractionType.application_command,
        discord.InteractionType.autocomplete,
    ):
        return None
    data: Mapping[str, Any] = interaction.data or {}
    try:
        return int(data["id"])
    except (KeyError, TypeError, ValueError):
        return None


class CommandPermissions:
    """The mirror. ``verdict(interaction)`` decides like Discord: True/False when an override
    applies, None when the default rule does (no override, or the guild's overrides unavailable).

    ``wait``: seconds a command waits for a guild's first fetch before using the default rule (the
    fetch carries on and serves later commands). ``retry_after``: seconds before a failed fetch is
    tried again. ``concurrency``: fetches in flight at once (a burst of first commands from many
    servers, e.g. after a restart, must not flood Discord's API).
    """

    def __init__(
        self,
        fetch: Fetch,
        *,
        wait: float = 1.5,
        retry_after: float = 300.0,
        concurrency: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self.wait = wait
        self.retry_after = retry_after
        self._clock = clock
        self._slots = asyncio.Semaphore(concurrency)
        self._tables: dict[int, Table] = {}
        self._loading: dict[int, asyncio.Task[Table | None]] = {}
        #: Updates that arrived while a guild's fetch was under way: newer than what it may return.
        self._pending: dict[int, Table] = {}
        self._failed_until: dict[int, float] = {}
        #: Guilds whose fetch outlasted ``wait`` once: later commands do not wait for it again.
        self._slow: set[int] = set()
        self._warned: set[int] = set()
        #: How many fetches were made (for tests and logs).
        self.fetches = 0

    # ---------------------------------------------------------------- deciding

    async def verdict(
        self, interaction: discord.Interaction[Any], *, command_id: int | None = None
    ) -> bool | None:
        """See the class docstring. ``command_id`` overrides the interaction's (for a form or button
        that continues a command)."""
        guild_id = interaction.guild_id
        if guild_id is None:
            return None
        if interaction.permissions.administrator:
            return True
        table = await self.table(guild_id)
        if table is None:
            return None
        user = interaction.user
        role_ids: Collection[int] = user._roles if isinstance(user, discord.Member) else ()
        return evaluate(
            table,
            command_id=command_id if command_id is not None else command_id_of(interaction),
            application_id=interaction.application_id,
            guild_id=guild_id,
            channel_id=_channel_of(interaction),
            user_id=user.id,
            role_ids=role_ids,
            administrator=False,
        )

    async def table(self, guild_id: int) -> Table | None:
        """The guild's overrides, fetched on first need; None while they cannot be had."""
        table = self._tables.get(guild_id)
        if table is not None:
            return table
        if self._failed_until.get(guild_id, 0.0) > self._clock():
            return None
        task = self._loading.get(guild_id)
        if task is None:
            task = asyncio.create_task(self._load(guild_id), name=f"command-permissions-{guild_id}")
            self._loading[guild_id] = task
        elif guild_id in self._slow:
            return None  # still no answer: the default rule, without waiting again
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.wait)
        except TimeoutError:
            self._slow.add(guild_id)
            self._warn(guild_id, f"no answer within {self.wait:g} s")
            return None

    # ---------------------------------------------------------------- keeping current

    def update(self, guild_id: int, target_id: int, overrides: Sequence[Override]) -> None:
        """A gateway update: ``overrides`` replace those of ``target_id`` (empty: all removed)."""
        if guild_id in self._tables:
            _put(self._tables[guild_id], target_id, overrides)
        elif guild_id in self._loading:
            self._pending.setdefault(guild_id, {})[target_id] = tuple(overrides)
        # Otherwise nothing is mirrored yet: the first fetch will include this change.

    def forget(self, guild_id: int) -> None:
        """Drop a guild's copy (the bot left it)."""
        self._tables.pop(guild_id, None)
        self._pending.pop(guild_id, None)
        self._failed_until.pop(guild_id, None)
        self._slow.discard(guild_id)
        self._warned.discard(guild_id)
        task = self._loading.pop(guild_id, None)
        if task is not None:
            task.cancel()

    async def close(self) -> None:
        tasks = list(self._loading.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # ---------------------------------------------------------------- internals

    async def _load(self, guild_id: int) -> Table | None:
        try:
            async with self._slots:
                self.fetches += 1
                raw = await self._fetch(guild_id)
            table: Table = {}
            for entry in raw:
                _put(table, int(entry["id"]), parse_overrides(entry.get("permissions") or ()))
        except Exception as exc:
            self._failed_until[guild_id] = self._clock() + self.retry_after
            status = getattr(exc, "status", None)
            self._warn(guild_id, f"HTTP {status}" if status else type(exc).__name__)
            return None
        finally:
            self._loading.pop(guild_id, None)
            self._slow.discard(guild_id)
        for target_id, overrides in self._pending.pop(guild_id, {}).items():
            _put(table, target_id, overrides)
        self._tables[guild_id] = table
        self._failed_until.pop(guild_id, None)
        self._warned.discard(guild_id)
        return table

    def _warn(self, guild_id: int, why: str) -> None:
        if guild_id in self._warned:
            return
        self._warned.add(guild_id)
        log.warning(
            "Could not read the command permissions of guild %s (%s); using the default rule "
            "(Manage Server) there until they can be read",
            guild_id,
            why,
        )


def _put(table: Table, target_id: int, overrides: Sequence[Override]) -> None:
    if overrides:
        table[target_id] = tuple(overrides)
    else:
        table.pop(target_id, None)
