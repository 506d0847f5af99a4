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

The tree also knows the ids Discord gave its slash commands (``command_id``), for the permission check
of buttons that continue a command (their interactions carry no command id): learned from each sync and
from every command used, else asked of Discord once (``GET …/commands``); without an answer, None.
"""

from __future__ import annotations

import asyncio
import logging
import time
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

#: Seconds ``command_id`` waits for Discord to list the app's commands before answering None.
COMMAND_IDS_WAIT = 1.5
#: Seconds before a listing that failed (or was too slow) is asked for again.
COMMAND_IDS_RETRY = 300.0


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
        #: (guild id, or None for global commands; top-level slash command name) → its id on Discord.
        self._command_ids: dict[tuple[int | None, str], int] = {}
        #: Scopes whose commands were listed by Discord (None: global) → until when not to ask again.
        self._ids_asked: dict[int | None, float] = {}
        self._ids_lock = asyncio.Lock()

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
        self.note_command_id(interaction)
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

    # ---------------------------------------------------------------- command ids

    async def sync(self, *, guild: discord.abc.Snowflake | None = None) -> list[app_commands.AppCommand]:
        synced = await super().sync(guild=guild)
        self._learn(guild.id if guild is not None else None, synced)
        return synced

    def note_command_id(self, interaction: discord.Interaction[Any]) -> None:
        """Remember the id of the slash command ``interaction`` runs (Discord sends it with every use)."""
        data: dict[str, Any] = dict(interaction.data or {})
        if interaction.type is not discord.InteractionType.application_command or data.get("type", 1) != 1:
            return
        try:
            scope = int(data["guild_id"]) if data.get("guild_id") else None
            self._command_ids[scope, str(data["name"])] = int(data["id"])
        except (KeyError, TypeError, ValueError):
            return

    async def command_id(self, name: str, *, guild_id: int | None) -> int | None:
        """The id of the top-level slash command ``name`` as members of ``guild_id`` see it (the
        guild's own copy, e.g. in DEV_GUILD_ID, else the global one); None when Discord cannot say.

        Known from syncs and uses in this process; otherwise Discord is asked for the list once per
        scope, waiting at most ``COMMAND_IDS_WAIT`` seconds (a failure is logged and retried after
        ``COMMAND_IDS_RETRY``). Never raises.
        """
        scopes: tuple[int | None, ...] = (guild_id, None) if guild_id is not None else (None,)
        found = self._known_id(name, scopes)
        if found is not None:
            return found
        dev_guild = getattr(getattr(self.client, "settings", None), "dev_guild_id", None)
        for scope in scopes:
            if scope is not None and scope != dev_guild:
                continue  # only DEV_GUILD_ID has guild commands of this bot
            await self._ask_ids(scope)
        return self._known_id(name, scopes)

    def _known_id(self, name: str, scopes: tuple[int | None, ...]) -> int | None:
        return next((cid for scope in scopes if (cid := self._command_ids.get((scope, name)))), None)

    def _learn(self, scope: int | None, commands: list[app_commands.AppCommand]) -> None:
        for command in commands:
            if command.type is discord.AppCommandType.chat_input:
                self._command_ids[scope, command.name] = command.id

    async def _ask_ids(self, scope: int | None) -> None:
        async with self._ids_lock:
            if self._ids_asked.get(scope, 0.0) > time.monotonic():
                return  # listed already (a command missing from it will not appear), or failed lately
            self._ids_asked[scope] = time.monotonic() + COMMAND_IDS_RETRY
            where = "globally" if scope is None else f"in guild {scope}"
            try:
                async with asyncio.timeout(COMMAND_IDS_WAIT):
                    listed = await self.fetch_commands(guild=discord.Object(scope) if scope else None)
            except Exception as exc:  # HTTP errors, no application id yet, too slow: do without
                log.warning(
                    "Could not list the bot's commands %s (%s); will ask again later",
                    where,
                    type(exc).__name__ if isinstance(exc, TimeoutError) else exc,
                )
                return
            self._ids_asked[scope] = float("inf")
            self._learn(scope, listed)

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
