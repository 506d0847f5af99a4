"""Reusable checks: Manage Server for admin commands, and the guild-only guard.

``default_permissions`` is only a *hint* to Discord: server admins can re-grant a command to anyone in
Server Settings → Integrations, and Discord ignores it on subcommands and subcommand groups (only the
top-level command carries it). ``manage_guild()`` therefore always pairs the hint with a runtime check
that reads ``interaction.permissions`` (the member's permissions in that channel, as Discord resolved
them) on every invocation.

Use it on a command function, an ``app_commands.Group`` subclass, or a ``commands.GroupCog`` class::

    @checks.manage_guild()
    @app_commands.guild_only()
    class AdminCog(commands.GroupCog, group_name="dscgg"): ...
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import discord
from discord import app_commands

from bot.errors import MissingManageGuild, NotInGuild

__all__ = ["ensure_guild", "ensure_manage_guild", "manage_guild"]

T = TypeVar("T")


def ensure_guild(interaction: discord.Interaction[Any]) -> int:
    """The guild id of ``interaction``; raises NotInGuild in DMs (and user-installed contexts)."""
    if interaction.guild_id is None:
        raise NotInGuild
    return interaction.guild_id


def ensure_manage_guild(interaction: discord.Interaction[Any]) -> bool:
    """Raises NotInGuild outside servers and MissingManageGuild without Manage Server."""
    ensure_guild(interaction)
    if not interaction.permissions.manage_guild:
        raise MissingManageGuild
    return True


def manage_guild() -> Callable[[T], T]:
    """Manage Server: the ``default_permissions`` hint **and** a runtime check.

    On a function or command: an ``app_commands.check``. On a Group or GroupCog class: the class's
    ``interaction_check`` runs the check first, so every subcommand is covered.
    """

    def decorator(obj: T) -> T:
        app_commands.default_permissions(manage_guild=True)(obj)
        if inspect.isclass(obj):
            _guard_class(obj)
            return obj
        checked: T = app_commands.check(ensure_manage_guild)(obj)
        return checked

    return decorator


def _guard_class(cls: type[Any]) -> None:
    inner = cls.interaction_check

    async def interaction_check(self: Any, interaction: discord.Interaction[Any], /) -> bool:
        ensure_manage_guild(interaction)
        result = inner(self, interaction)
        if inspect.isawaitable(result):
            result = await result
        return bool(result)

    interaction_check.__doc__ = inner.__doc__
    cls.interaction_check = interaction_check
