"""In-memory views: the confirmation for deletions (page buttons live in ``bot.pager``).

A view belongs to the person who ran the command: anyone else pressing a button gets an
ephemeral sentence saying so (never a silent "interaction failed"). Every press is answered.

These views are held in memory and expire on purpose (a confirmation should not be answerable
forever); after a restart their buttons are gone. Page buttons, which must keep working, are
``bot.pager.PageButton`` instead: their state lives in the ``custom_id``.

A view edits its message through the newest interaction token it holds: the command's at first, then
that of each accepted button press (a press's token lives 15 minutes and edits the same message).
discord.py restarts a view's timeout on every accepted press, and timeouts are capped below the
token's life, so the edit made on timeout (disabling the buttons) always has a live token.
Errors inside a button callback go to the tree's renderer, like command errors.
"""

from __future__ import annotations

import logging
from typing import Any

import discord

from bot.i18n import N_, SOURCE, Tr, for_user

__all__ = [
    "NOT_YOURS",
    "ConfirmView",
    "OwnedView",
]

log = logging.getLogger(__name__)

#: What someone other than the invoker reads when they press a button (in the presser's language).
NOT_YOURS = N_("Only the person who ran the command can use these buttons.")
#: The labels of ConfirmView's buttons (in the invoker's language).
CONFIRM = N_("Delete")
CANCEL = N_("Cancel")
#: Interaction tokens live 15 minutes; keep a margin so the timeout edit still works.
MAX_TIMEOUT = 14 * 60.0


async def _render_error(interaction: discord.Interaction[Any], error: BaseException) -> None:
    from bot.tree import DscCommandTree  # the tree imports nothing from here; avoid a load-order cycle

    tree = getattr(interaction.client, "tree", None)
    if isinstance(tree, DscCommandTree):
        await tree.render_error(interaction, error)
    else:  # pragma: no cover - the bot always runs with DscCommandTree
        log.error("Error in a view with no DscCommandTree to report it", exc_info=error)


class OwnedView(discord.ui.View):
    """A view whose buttons only the command's invoker may press; edits go through ``interaction``."""

    def __init__(self, *, owner_id: int, timeout: float | None) -> None:
        if timeout is not None:
            timeout = min(timeout, MAX_TIMEOUT)
        super().__init__(timeout=timeout)
        self.owner_id = owner_id
        #: The newest interaction whose token edits the message: the command's (``attach``), then
        #: each accepted press's once it is acknowledged (``adopt``).
        self.interaction: discord.Interaction[Any] | None = None

    def attach(self, interaction: discord.Interaction[Any]) -> None:
        self.interaction = interaction

    def adopt(self, interaction: discord.Interaction[Any]) -> None:
        """Edit through ``interaction`` from now on: an acknowledged press on this view's message.

        Its token is fresher than the command's, and discord.py has just restarted the timeout.
        """
        self.interaction = interaction

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        tree = getattr(interaction.client, "tree", None)
        admit = getattr(tree, "admit", None)
        if admit is not None:
            admit(interaction)  # raises ShuttingDown during shutdown → on_error answers
        if interaction.user.id == self.owner_id:
            return True
        await interaction.response.send_message(
            for_user(interaction)._(NOT_YOURS),
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )
        return False

    async def on_error(
        self, interaction: discord.Interaction[Any], error: Exception, item: discord.ui.Item[Any], /
    ) -> None:
        await _render_error(interaction, error)

    def disable_all(self) -> None:
        for item in self.children:
            if isinstance(item, discord.ui.Button | discord.ui.Select):
                item.disabled = True

    async def _edit_original(self, **fields: Any) -> None:
        """Edit the message through the newest token; it may still be gone (15 min) or the message deleted."""
        interaction = self.interaction
        if interaction is None or interaction.is_expired():
            return
        try:
            await interaction.edit_original_response(
                allowed_mentions=discord.AllowedMentions.none(), **fields
            )
        except discord.NotFound:
            log.debug("Message of interaction %s is gone; not edited", interaction.id)
        except discord.HTTPException as exc:
            log.info("Could not edit the message of interaction %s: HTTP %s", interaction.id, exc.status)


class ConfirmView(OwnedView):
    """Confirm/Cancel for a destructive action.

    The texts are the caller's, in the invoker's language ``t``, which also labels the buttons (the
    defaults speak of a deletion).

    ``value`` is True (confirmed), False (cancelled) or None (no answer in time). The command awaits
    ``wait()`` and acts on ``value``; the view has already acknowledged the button press by editing
    the message into ``working`` (confirm) or ``cancelled`` (cancel), or into ``expired`` on timeout.
    Only the first press counts; a later one (a double click) is acknowledged without changing anything.
    """

    def __init__(
        self,
        *,
        owner_id: int,
        t: Tr = SOURCE,
        timeout: float = 60.0,
        confirm_label: str | None = None,
        working: str | None = None,
        cancelled: str | None = None,
        expired: str | None = None,
    ) -> None:
        super().__init__(owner_id=owner_id, timeout=timeout)
        self.value: bool | None = None
        self.working = working or t._("Deleting…")
        self.cancelled = cancelled or t._("Deletion cancelled.")
        self.expired = expired or t._("Deletion cancelled: no answer in time.")
        self.confirm.label = confirm_label or t._(CONFIRM)
        self.cancel.label = t._(CANCEL)

    @discord.ui.button(label=N_("Delete"), style=discord.ButtonStyle.danger)
    async def confirm(self, interaction: discord.Interaction[Any], button: discord.ui.Button[Any]) -> None:
        if self.value is not None or self.is_finished():
            await interaction.response.defer()  # already answered by an earlier press
            return
        self.value = True
        self.disable_all()
        try:  # acknowledge first, so the command's final edit cannot be overwritten by this one
            await interaction.response.edit_message(
                content=self.working, view=self, allowed_mentions=discord.AllowedMentions.none()
            )
        finally:
            self.stop()

    @discord.ui.button(label=N_("Cancel"), style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction[Any], button: discord.ui.Button[Any]) -> None:
        if self.value is not None or self.is_finished():
            await interaction.response.defer()  # already answered by an earlier press
            return
        self.value = False
        try:
            await interaction.response.edit_message(
                content=self.cancelled, view=None, allowed_mentions=discord.AllowedMentions.none()
            )
        finally:
            self.stop()

    async def on_timeout(self) -> None:
        self.disable_all()
        await self._edit_original(content=self.expired, view=self)
