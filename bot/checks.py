"""Reusable checks: who may use the admin commands, and the guild-only guard.

``default_permissions`` (Manage Server) is Discord's *default* for a command: server admins can
override it in Server Settings → Integrations, allowing or denying roles, members and channels, and
Discord ignores it on subcommands and subcommand groups (only the top-level command carries it).
``manage_guild()`` therefore pairs the hint with a runtime check on every invocation that decides like
Discord does: the server's command permission overrides, mirrored by ``bot.permissions`` (reached as
``interaction.client.command_permissions``), when one applies; otherwise Manage Server, read from
``interaction.permissions`` (the member's permissions in that channel, as Discord resolved them).
Administrator always passes.

Use it on a command function, an ``app_commands.Group`` subclass, or a ``commands.GroupCog`` class::

    @checks.manage_guild()
    @app_commands.guild_only()
    class AdminCog(commands.GroupCog, group_name="dscgg"): ...
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import discord
from discord import app_commands

from bot.failures import CommandDenied, MissingManageGuild, NotInGuild

__all__ = ["ensure_allowed", "ensure_guild", "ensure_manage_guild", "manage_guild", "may_manage"]

T = TypeVar("T")


class PermissionMirror(Protocol):
    async def verdict(
        self, interaction: discord.Interaction[Any], *, command_id: int | None = None
    ) -> bool | None: ...


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


async def _verdict(interaction: discord.Interaction[Any], command_id: int | None) -> bool | None:
    mirror: PermissionMirror | None = getattr(interaction.client, "command_permissions", None)
    if mirror is None:
        return True if interaction.permissions.administrator else None
    return await mirror.verdict(interaction, command_id=command_id)


async def may_manage(interaction: discord.Interaction[Any], *, command_id: int | None = None) -> bool:
    """Whether the member may use the command: its permission overrides, else Manage Server. Never raises
    for a missing permission (for autocomplete, which must not fail)."""
    if interaction.guild_id is None:
        return False
    verdict = await _verdict(interaction, command_id)
    return interaction.permissions.manage_guild if verdict is None else verdict


async def ensure_allowed(interaction: discord.Interaction[Any], *, command_id: int | None = None) -> bool:
    """Raises NotInGuild outside servers, CommandDenied when the server's command permissions refuse
    the member, and MissingManageGuild when none applies and the member lacks Manage Server.

    ``command_id``: the command a form or button continues (their interactions carry none).
    """
    ensure_guild(interaction)
    verdict = await _verdict(interaction, command_id)
    if verdict is None:
        return ensure_manage_guild(interaction)
    if not verdict:
        raise CommandDenied
    return True


def manage_guild() -> Callable[[T], T]:
    """Manage Server by default: the ``default_permissions`` hint **and** a runtime check that
    honours the server's command permission overrides (``ensure_allowed``).

    On a function or command: an ``app_commands.check``. On a Group or GroupCog class: the class's
    ``interaction_check`` runs the check first, so every subcommand is covered.
    """

    def decorator(obj: T) -> T:
        app_commands.default_permissions(manage_guild=True)(obj)
        if inspect.isclass(obj):
            _guard_class(obj)
            return obj
        checked: T = app_commands.check(ensure_allowed)(obj)
        return checked

    return decorator


def _guard_class(cls: type[Any]) -> None:
    inner = cls.interaction_check

    async def interaction_check(self: Any, interaction: discord.Interaction[Any], /) -> bool:
        await ensure_allowed(interaction)
        result = inner(self, interaction)
        if inspect.isawaitable(result):
            result = await result
        return bool(result)

    interaction_check.__doc__ = inner.__doc__
    cls.interaction_check = interaction_check
