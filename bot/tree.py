"""The command tree: one error renderer, in-flight tracking, and the shutdown gate.

``DscCommandTree.on_error`` is the only place that sends error sentences (``bot.errors.describe``).
Each failed interaction gets exactly one ephemeral answer:

- not answered yet → ``response.send_message(ephemeral=True)``;
- deferred and still "thinking…" ephemerally → the thinking message is edited into the error;
- deferred and still "thinking…" publicly (``/top public:true``) → the error goes out as an
  ephemeral follow-up and the public thinking message is deleted (it would otherwise hang). A
  follow-up sent while the deferral is pending would *become* the public message, so the
  placeholder is resolved first;
- anything else (already answered) → an ephemeral follow-up.

Expired interactions (15 minutes, or 10062 Unknown interaction) are logged and dropped; on_error
never raises.

Each command also notes its server's language (``guild_locale``) in ``guild_settings.locale`` when it
changed, so that posts to the server's log channel speak it (``bot.audit``); a process writes it once
per server unless it changes.

During shutdown ``interaction_check`` turns new interactions away with a friendly sentence, while
those already running are awaited by ``drain()``. Those that do not finish in time are cancelled and
then answered once with the same sentence, so none is left on "thinking…" or with live-looking
buttons (an unfinished ephemeral answer is replaced by the sentence).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot import errors
from bot.dscgg import deadline
from bot.i18n import for_user

if TYPE_CHECKING:
    from bot.client import DscBot

__all__ = ["DscCommandTree", "defer"]

log = logging.getLogger(__name__)

#: Interaction.extras key under which ``defer()`` records how the interaction was deferred.
EPHEMERAL_KEY = "dscgg.deferred_ephemeral"

#: Discord error codes that mean the interaction can no longer be answered.
_GONE_CODES = frozenset({10062, 10015, 50027})  # unknown interaction, unknown webhook, invalid token


async def defer(interaction: discord.Interaction[Any], *, ephemeral: bool = True) -> None:
    """``interaction.response.defer(thinking…)`` that remembers whether the answer will be ephemeral.

    The error renderer still asks Discord for the original response, because only that tells
    whether the message is still "thinking…" (the command may have edited it since); what is
    recorded here is the fallback when that lookup fails.
    """
    interaction.extras[EPHEMERAL_KEY] = ephemeral
    await interaction.response.defer(ephemeral=ephemeral, thinking=True)


class DscCommandTree(app_commands.CommandTree["DscBot"]):
    def __init__(self, client: DscBot, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self._closing = False
        #: Running interactions: the task handling each one, and the interaction it answers.
        self._in_flight: dict[asyncio.Task[Any], discord.Interaction[Any]] = {}
        #: guild id → the guild_locale last stored for it by this process.
        self._guild_locales: dict[int, str | None] = {}

    # ---------------------------------------------------------------- shutdown gate and tracking

    @property
    def closing(self) -> bool:
        return self._closing

    @property
    def in_flight(self) -> int:
        """How many interactions are being handled right now."""
        return sum(1 for task in self._in_flight if not task.done())

    def admit(self, interaction: discord.Interaction[Any]) -> None:
        """Let an interaction in, or raise ShuttingDown; tracks the running task until it finishes.

        The tree calls this for application commands; modals and views call it from their own
        ``interaction_check`` so that shutdown waits for them too. The first call in a task also gives
        it the command deadline: all the dsc.gg calls it (and tasks it starts) makes get
        ``COMMAND_DEADLINE`` seconds together (``bot.dscgg.deadline``, in this task's own context).
        """
        if self._closing:
            raise errors.ShuttingDown
        task = asyncio.current_task()
        if task is not None and task not in self._in_flight:
            self._in_flight[task] = interaction
            task.add_done_callback(self._forget)
            deadline.start(self.client.settings.command_deadline)

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._in_flight.pop(task, None)

    async def interaction_check(self, interaction: discord.Interaction[DscBot], /) -> bool:
        if interaction.type is discord.InteractionType.autocomplete:
            # Autocomplete has no message to carry a sentence; during shutdown it just gets nothing.
            return not self._closing
        self.admit(interaction)
        await self.note_guild_locale(interaction)
        return True

    async def note_guild_locale(self, interaction: discord.Interaction[Any]) -> None:
        """Store the server's language (``guild_locale``) when it differs from the one last stored.

        The server's log channel is written in it. Never raises: a command is not refused for this.
        """
        guild_id = interaction.guild_id
        locale = interaction.guild_locale
        if guild_id is None or locale is None:
            return
        code = locale.value
        if self._guild_locales.get(guild_id) == code:
            return
        store = getattr(self.client, "guild_settings", None)
        if store is None:
            return
        try:
            if (await store.get(guild_id)).locale != code:
                await store.set_locale(guild_id, code)
            self._guild_locales[guild_id] = code
        except Exception:
            log.exception("Could not store the locale of guild %s", guild_id)

    def begin_shutdown(self) -> None:
        """From now on, new interactions are refused with "the bot is restarting"."""
        self._closing = True

    async def drain(self, grace: float = 10.0, *, settle: float = 1.0) -> int:
        """Wait up to ``grace`` seconds for running interactions; cancel the rest.

        Cancelled ones get up to ``settle`` seconds, all together, to end and to be answered with
        the "restarting" sentence (best effort). Returns how many had to be cancelled.
        """
        current = asyncio.current_task()
        pending = {task: i for task, i in self._in_flight.items() if task is not current and not task.done()}
        if not pending:
            return 0
        log.info("Waiting up to %.0f s for %d running command(s) to finish", grace, len(pending))
        _, still_running = await asyncio.wait(pending, timeout=grace) if grace > 0 else ((), set(pending))
        if not still_running:
            return 0
        for task in still_running:
            task.cancel()
        log.warning("Cancelled %d command(s) that did not finish in time", len(still_running))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settle
        await asyncio.wait(still_running, timeout=settle)
        answers = [
            loop.create_task(self.render_error(pending[task], errors.ShuttingDown(), unfinished=True))
            for task in still_running
        ]
        _, unanswered = await asyncio.wait(answers, timeout=max(deadline - loop.time(), 0.05))
        for answer in unanswered:
            answer.cancel()
        if unanswered:
            await asyncio.wait(unanswered, timeout=0.1)
        return len(still_running)

    # ---------------------------------------------------------------- errors into one reply

    async def on_error(
        self, interaction: discord.Interaction[DscBot], error: app_commands.AppCommandError, /
    ) -> None:
        await self.render_error(interaction, error)

    async def render_error(
        self, interaction: discord.Interaction[Any], error: BaseException, *, unfinished: bool = False
    ) -> None:
        """Describe ``error`` and answer ``interaction`` with it, ephemerally, once. Never raises.

        Modals and views route their ``on_error`` here, so there is one renderer for everything.
        ``unfinished``: the interaction's task was cancelled, so an ephemeral answer it already gave
        (e.g. a question with buttons nobody will handle any more) is replaced by the sentence.
        """
        try:
            original = errors.unwrap(error)
            if not errors.is_unexpected(original):
                self._log_expected(interaction, original)
            text = errors.describe(original, interaction)
            await self._send(interaction, text, unfinished=unfinished)
        except Exception:
            log.exception("The error handler itself failed for interaction %s", interaction.id)

    @staticmethod
    def _log_expected(interaction: discord.Interaction[Any], error: BaseException) -> None:
        command = interaction.command.qualified_name if interaction.command else None
        level = logging.INFO
        if isinstance(error, discord.app_commands.CommandSignatureMismatch | app_commands.CommandNotFound):
            level = logging.WARNING  # the tree and Discord disagree: a sync is due
        elif type(error).__name__ == "UnknownAPIError":
            level = logging.WARNING
        log.log(
            level,
            "%s failed for user %s in guild %s: %s: %s",
            f"/{command}" if command else f"Interaction {interaction.id}",
            interaction.user.id,
            interaction.guild_id,
            type(error).__name__,
            error,
        )

    async def _send(
        self, interaction: discord.Interaction[Any], text: str, *, unfinished: bool = False
    ) -> None:
        if interaction.type is discord.InteractionType.autocomplete:
            return  # nothing can be shown there; the error is logged already
        if interaction.is_expired():
            log.warning("Interaction %s expired before its error could be shown", interaction.id)
            return
        mentions = discord.AllowedMentions.none()
        try:
            response = interaction.response
            if not response.is_done():
                await response.send_message(text, ephemeral=True, allowed_mentions=mentions)
                return
            replaceable = unfinished and interaction.type in (
                discord.InteractionType.application_command,
                discord.InteractionType.modal_submit,
            )
            if response.type is discord.InteractionResponseType.deferred_channel_message or (
                replaceable and response.type is discord.InteractionResponseType.channel_message
            ):
                ephemeral, thinking = await self._deferred_state(interaction)
                if ephemeral and (thinking or replaceable):
                    await interaction.edit_original_response(
                        content=text, embeds=[], attachments=[], view=None, allowed_mentions=mentions
                    )
                    return
                if thinking:
                    await self._replace_public_thinking(interaction, text)
                    return
            await interaction.followup.send(text, ephemeral=True, allowed_mentions=mentions)
        except discord.HTTPException as exc:
            if exc.code in _GONE_CODES or exc.status == 404:
                log.warning(
                    "Interaction %s could not be answered any more (Discord error %s)",
                    interaction.id,
                    exc.code,
                )
            else:
                log.error(
                    "Discord refused the error reply for interaction %s: HTTP %s, code %s",
                    interaction.id,
                    exc.status,
                    exc.code,
                )

    @staticmethod
    async def _deferred_state(interaction: discord.Interaction[Any]) -> tuple[bool, bool]:
        """(ephemeral, still thinking) for a deferred interaction."""
        try:
            message = await interaction.original_response()
        except discord.HTTPException:
            # Could not look: trust what defer() recorded, else assume the admin-command default.
            return bool(interaction.extras.get(EPHEMERAL_KEY, True)), True
        return message.flags.ephemeral, message.flags.loading

    @staticmethod
    async def _replace_public_thinking(interaction: discord.Interaction[Any], text: str) -> None:
        """A public "thinking…" message must not carry the error, nor hang.

        A follow-up sent while a deferral is pending *becomes* the deferred (public) message, so the
        placeholder is resolved first, the error goes out as a new ephemeral follow-up, and the
        placeholder is then deleted.
        """
        mentions = discord.AllowedMentions.none()
        await interaction.edit_original_response(
            content=for_user(interaction)._("This command didn't finish."),
            embeds=[],
            attachments=[],
            view=None,
            allowed_mentions=mentions,
        )
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=mentions)
        try:
            await interaction.delete_original_response()
        except discord.HTTPException as exc:
            log.info("Could not remove the public placeholder of %s: %s", interaction.id, exc.code)
