"""``/dscgg``: the server's dsc.gg token, audit log channel and status. Admins (Manage Server) only.

- ``/dscgg token set``   opens a modal; the token is validated, stored encrypted, never echoed.
- ``/dscgg token clear`` asks to confirm (buttons only the invoker can press), then forgets it.
- ``/dscgg logs``        ``channel:`` sets the channel where link and token changes are posted (the
  bot checks it can view, send and embed links there, and names what is missing); without a
  channel it turns the audit log off. Both are announced in the affected channel.
- ``/dscgg status``      token (last 4 characters), who set it and when, whether dsc.gg accepts it;
  the log channel, any problem posting there, and the latest changes; the shard serving the server.
- ``/dscgg audit``       the server's history of link and token changes (and refused ones), newest
  first, with page buttons.
- ``/dscgg apikey create|list|revoke``  the server's HTTP API keys: a new key is shown once, in the
  ephemeral reply; the list shows names, creators and last use, never a key; revoke picks a key by name.

Every reply is ephemeral and sent with ``AllowedMentions.none()``. Errors are raised, not answered
here: the tree's renderer (bot/tree.py) turns them into one ephemeral sentence, modal errors included.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.app_commands import Choice, Range
from discord.ext import commands

from bot import checks
from bot.audit_embeds import history_embed, log_status_text
from bot.embeds import escape, shard_text
from bot.errors import relative_time, render
from bot.failures import NotInGuild, UnknownApiKey
from bot.i18n import N_, SOURCE, Tr, for_user, locale_str
from bot.pager import Page
from bot.permissions import command_id_of
from bot.services.apikeys import NAME_MAX
from bot.services.tokens import TokenCheck, TokenStatus
from bot.tree import defer
from bot.views import ConfirmView

if TYPE_CHECKING:
    from bot.client import DscBot, Interaction
    from bot.db.apikeys import ApiKeyRecord

__all__ = ["AdminCog", "TokenModal", "setup"]

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
STATUS_COLOUR = discord.Colour(0x5865F2)
NOTHING_TO_CLEAR = N_("This server had no dsc.gg token stored, so there was nothing to clear.")


def _tail(last4: str, t: Tr) -> str:
    return t._("ending in `{last4}`", last4=last4) if last4 else t._("(too short to show its end)")


class TokenModal(discord.ui.Modal):
    """The form of ``/dscgg token set``, in the language of the admin who opened it."""

    def __init__(self, bot: DscBot, command_id: int | None = None, t: Tr = SOURCE) -> None:
        super().__init__(title=t._("dsc.gg API token"), timeout=600)
        self.token: discord.ui.TextInput[TokenModal] = discord.ui.TextInput(
            label=t._("API token"),
            custom_id="token",
            style=discord.TextStyle.short,
            placeholder=t._("The API key of your app at dsc.gg/developer"),
            min_length=8,
            max_length=200,
            required=True,
        )
        self.add_item(self.token)
        self.bot = bot
        #: The /dscgg command that opened the form: its permission overrides apply to the submit too.
        self.command_id = command_id

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        # The submitter may have lost the permission since opening the modal; shutdown also applies.
        self.bot.tree.admit(interaction)
        await checks.ensure_allowed(interaction, command_id=self.command_id)
        return True

    async def on_submit(self, interaction: discord.Interaction[Any], /) -> None:
        await defer(interaction, ephemeral=True)
        guild_id = checks.ensure_guild(interaction)
        info = await self.bot.tokens.set(guild_id, interaction.user.id, self.token.value)
        t = for_user(interaction)
        await interaction.edit_original_response(
            content=t._(
                "Saved. The token {tail} is now used for this server's dsc.gg commands. It is stored "
                "encrypted and won't be shown again.",
                tail=_tail(info.last4, t),
            ),
            allowed_mentions=NO_MENTIONS,
        )

    async def on_error(  # type: ignore[override]  # Modal's own signature, not View's
        self, interaction: discord.Interaction[Any], error: Exception, /
    ) -> None:
        await self.bot.tree.render_error(interaction, error)


@checks.manage_guild()
@app_commands.guild_only()
class AdminCog(
    commands.GroupCog, group_name="dscgg", group_description=locale_str("Set up dsc.gg for this server")
):
    token = app_commands.Group(name="token", description=locale_str("The dsc.gg API token this server uses"))
    apikey = app_commands.Group(name="apikey", description=locale_str("Keys for this server's HTTP API"))
    #: Seconds the clear confirmation waits for an answer.
    confirm_timeout: float = 60.0

    def __init__(self, bot: DscBot) -> None:
        self.bot = bot
        super().__init__()

    async def cog_load(self) -> None:
        self.bot.pager.register("audit", self._audit_page, command="dscgg audit", guarded=True)

    async def cog_unload(self) -> None:
        self.bot.pager.unregister("audit")

    @token.command(
        name="set", description=locale_str("Set the dsc.gg API token for this server (opens a form)")
    )
    async def token_set(self, interaction: Interaction) -> None:
        modal = TokenModal(self.bot, command_id_of(interaction), for_user(interaction))
        await interaction.response.send_modal(modal)

    @token.command(
        name="clear", description=locale_str("Forget this server's dsc.gg API token (asks to confirm first)")
    )
    async def token_clear(self, interaction: Interaction) -> None:
        await defer(interaction, ephemeral=True)
        guild_id = checks.ensure_guild(interaction)
        t = for_user(interaction)
        stored = await self.bot.tokens.info(guild_id)
        if stored is None:
            await interaction.edit_original_response(
                content=t._(NOTHING_TO_CLEAR), allowed_mentions=NO_MENTIONS
            )
            return

        tail = _tail(stored.last4, t)
        set_token = t.command("dscgg token set")
        view = ConfirmView(
            owner_id=interaction.user.id,
            t=t,
            timeout=self.confirm_timeout,
            confirm_label=t._("Clear"),
            working=t._("Clearing the token…"),
            cancelled=t._("Cancelled. The token {tail} is still set.", tail=tail),
            expired=t._("Cancelled: no answer in time. The token {tail} is still set.", tail=tail),
        )
        view.attach(interaction)
        await interaction.edit_original_response(
            content=t._(
                "Forget this server's dsc.gg token {tail}? Link commands will stop working until an admin "
                "runs {command} again.",
                tail=tail,
                command=set_token,
            ),
            view=view,
            allowed_mentions=NO_MENTIONS,
        )
        await view.wait()
        if view.value is not True:
            return  # the view already said "cancelled" (button or timeout)
        try:
            info = await self.bot.tokens.clear(guild_id, interaction.user.id)
        except Exception:
            await interaction.edit_original_response(
                content=t._("The token was not cleared."), view=None, allowed_mentions=NO_MENTIONS
            )
            raise
        if info is None:  # cleared by someone else while this one was asking
            text = t._(NOTHING_TO_CLEAR)
        else:
            text = t._(
                "Forgot this server's dsc.gg token {tail}. Link commands won't work until an admin runs "
                "{command} again.",
                tail=_tail(info.last4, t),
                command=set_token,
            )
        await interaction.edit_original_response(content=text, view=None, allowed_mentions=NO_MENTIONS)

    @app_commands.command(
        name="logs", description=locale_str("Post link and token changes in a channel (empty: turn off)")
    )
    @app_commands.describe(channel=locale_str("Where to post the audit log; leave empty to turn it off"))
    async def logs(self, interaction: Interaction, channel: discord.TextChannel | None = None) -> None:
        await defer(interaction, ephemeral=True)
        checks.ensure_guild(interaction)
        guild = interaction.guild
        if guild is None:  # a guild this bot instance does not have cached
            raise NotInGuild
        await self.bot.audit.set_channel(guild, channel, actor_id=interaction.user.id)
        t = for_user(interaction)
        if channel is None:
            text = t._(
                "The audit log is off. Turn it back on with {command}.",
                command=t.command("dscgg logs", channel=""),
            )
        else:
            text = t._(
                "Link and token changes will be posted in {channel}. {status} shows the log channel and the "
                "latest changes.",
                channel=channel.mention,
                status=t.command("dscgg status"),
            )
        await interaction.edit_original_response(content=text, allowed_mentions=NO_MENTIONS)

    @app_commands.command(name="status", description=locale_str("Show this server's dsc.gg setup"))
    async def status(self, interaction: Interaction) -> None:
        await defer(interaction, ephemeral=True)
        guild_id = checks.ensure_guild(interaction)
        t = for_user(interaction)
        state = await self.bot.tokens.status(guild_id, interaction.user.id)
        embed = status_embed(state, t)
        log_line = await self.log_channel_line(guild_id, t)
        if log_line is not None:
            embed.add_field(name=t._("Audit log"), value=log_line, inline=False)
        shard = shard_text(*self.bot.shard_of(guild_id), t)
        embed.add_field(name=t._("Served by"), value=shard, inline=False)
        await interaction.edit_original_response(embed=embed, allowed_mentions=NO_MENTIONS)

    @app_commands.command(
        name="audit", description=locale_str("Show this server's history of link and token changes")
    )
    async def audit(self, interaction: Interaction) -> None:
        await defer(interaction, ephemeral=True)
        checks.ensure_guild(interaction)
        await self.bot.pager.start(interaction, "audit")

    @apikey.command(
        name="create", description=locale_str("Create a key for this server's HTTP API (shown once)")
    )
    @app_commands.describe(name=locale_str("What the key is for, e.g. ci or deploy-script"))
    async def apikey_create(self, interaction: Interaction, name: Range[str, 1, NAME_MAX]) -> None:
        await defer(interaction, ephemeral=True)
        guild_id = checks.ensure_guild(interaction)
        new = await self.bot.api_keys.create(guild_id, interaction.user.id, name)
        await interaction.edit_original_response(
            content=api_key_created_text(
                new.record.name, new.key.get_secret_value(), self.bot.api_url, for_user(interaction)
            ),
            allowed_mentions=NO_MENTIONS,
        )

    @apikey.command(name="list", description=locale_str("Show this server's HTTP API keys"))
    async def apikey_list(self, interaction: Interaction) -> None:
        await defer(interaction, ephemeral=True)
        guild_id = checks.ensure_guild(interaction)
        keys = await self.bot.api_keys.list(guild_id)
        await interaction.edit_original_response(
            embed=api_keys_embed(keys, self.bot.api_keys.limit, for_user(interaction)),
            allowed_mentions=NO_MENTIONS,
        )

    async def _key_autocomplete(self, interaction: Interaction, current: str) -> list[Choice[str]]:
        """The server's keys by name (members who may not use /dscgg get nothing). Never raises."""
        try:
            if interaction.guild_id is None or not await checks.may_manage(interaction):
                return []
            keys = await self.bot.api_keys.list(interaction.guild_id)
        except Exception:
            log.exception("API key autocomplete failed in guild %s", interaction.guild_id)
            return []
        wanted = current.strip().lower()
        t = for_user(interaction)
        return [
            Choice(name=key_choice_name(key, t), value=str(key.id))
            for key in keys
            if wanted in key.name.lower() or wanted == str(key.id)
        ][:25]

    @apikey.command(name="revoke", description=locale_str("Revoke one of this server's HTTP API keys"))
    @app_commands.describe(key=locale_str("The key to revoke (pick it by name)"))
    @app_commands.autocomplete(key=_key_autocomplete)
    async def apikey_revoke(self, interaction: Interaction, key: Range[str, 1, 100]) -> None:
        await defer(interaction, ephemeral=True)
        guild_id = checks.ensure_guild(interaction)
        if not key.strip().isdigit():
            raise UnknownApiKey
        record = await self.bot.api_keys.revoke(guild_id, interaction.user.id, int(key.strip()))
        t = for_user(interaction)
        await interaction.edit_original_response(
            content=t._(
                "Revoked the API key **{name}**: requests made with it are refused from now on.",
                name=escape(record.name),
            ),
            allowed_mentions=NO_MENTIONS,
        )

    async def _audit_page(self, bot: DscBot, interaction: Interaction, page: int, args: str) -> Page:
        """The ``audit`` page source: changes recorded while someone browses move the pages, so the
        count, the footer and the buttons follow each read."""
        guild_id = checks.ensure_guild(interaction)
        history = await self.bot.audit.history(guild_id, page)
        embed = history_embed(
            history.events,
            page=history.page + 1,
            pages=history.pages,
            total=history.total,
            t=for_user(interaction),
        )
        return Page(embed, history.page, history.pages)

    async def log_channel_line(self, guild_id: int, t: Tr = SOURCE) -> str | None:
        """The "Audit log" field of ``/dscgg status`` (None: no such field). ``/dscgg logs`` sets it up."""
        return log_status_text(await self.bot.audit.status(guild_id), t)


def token_lines(state: TokenStatus, t: Tr = SOURCE) -> tuple[str, str | None]:
    """(token line, dsc.gg line) of the status embed. The second is None when nothing was checked."""
    set_token = t.command("dscgg token set")
    info = state.info
    if info is None:
        return (t._("Not set. An admin can set one with {command}.", command=set_token), None)
    user = f"<@{info.set_by}>"
    when = discord.utils.format_dt(info.set_at, "R")
    token = t._("Set, {tail}, by {user} {when}.", tail=_tail(info.last4, t), user=user, when=when)
    if not state.readable:
        unreadable = t._(
            "It can no longer be read (the bot's encryption key changed) and must be set again with "
            "{command}.",
            command=set_token,
        )
        return (f"{token}\n{unreadable}", None)
    match state.check:
        case TokenCheck.ACCEPTED:
            check = t._("Accepts the token.")
        case TokenCheck.REJECTED:
            check = t._("**Rejects** the token. Set a current one with {command}.", command=set_token)
        case TokenCheck.UNAVAILABLE:
            check = t._("Couldn't check: dsc.gg is not answering. Try again later.")
        case TokenCheck.RATE_LIMITED:
            check = t._(
                "Couldn't check right now (rate limited). Try again {when}.",
                when=relative_time(state.retry_after or 0),
            )
        case TokenCheck.REFUSED:
            why = render(state.problem, t) if state.problem else t._("dsc.gg refused the request.")
            check = t._("Couldn't check: {reason}", reason=why)
        case _:
            return (token, None)
    return (token, check)


def status_embed(state: TokenStatus, t: Tr = SOURCE) -> discord.Embed:
    embed = discord.Embed(title=t._("dsc.gg for this server"), colour=STATUS_COLOUR)
    token, check = token_lines(state, t)
    embed.add_field(name=t._("Token"), value=token, inline=False)
    if check is not None:
        embed.add_field(name="dsc.gg", value=check, inline=False)
    return embed


def api_key_created_text(name: str, key: str, api_url: str | None, t: Tr = SOURCE) -> str:
    """The one reply that shows a new key; it is never shown again."""
    created = t._("Created the API key **{name}**. Copy it now: it won't be shown again.", name=escape(name))
    revoke = t.command("dscgg apikey revoke")
    if api_url:
        where = f"{api_url}/v1"
        use = t._(
            "Send it as `Authorization: Bearer <key>` to this server's HTTP API on {url}. It can do what an "
            "admin can do in this server only: keep it secret, and revoke it with {command} if it leaks.",
            url=where,
            command=revoke,
        )
    else:
        use = t._(
            "Send it as `Authorization: Bearer <key>` to this server's HTTP API. It can do what an admin "
            "can do in this server only: keep it secret, and revoke it with {command} if it leaks.",
            command=revoke,
        )
    return f"{created}\n```\n{key}\n```\n{use}"


def key_choice_name(key: ApiKeyRecord, t: Tr = SOURCE) -> str:
    """A key as the autocomplete of ``/dscgg apikey revoke`` offers it (at most 100 characters)."""
    when = key.created_at.strftime("%Y-%m-%d")
    return t._("{name} (created {date}, id {id})", name=key.name[:70], date=when, id=key.id)[:100]


def api_keys_embed(keys: Sequence[ApiKeyRecord], limit: int, t: Tr = SOURCE) -> discord.Embed:
    embed = discord.Embed(title=t._("HTTP API keys of this server"), colour=STATUS_COLOUR)
    if not keys:
        embed.description = t._(
            "No API keys yet. Create one with {command}.", command=t.command("dscgg apikey create", name="")
        )
        return embed
    lines = []
    for key in keys:
        created = discord.utils.format_dt(key.created_at, "R")
        params = {"name": escape(key.name), "id": key.id, "user": f"<@{key.created_by}>", "created": created}
        if key.last_used_at is None:
            line = t._("**{name}** (id {id}) · by {user} {created} · never used", **params)
        else:
            used = discord.utils.format_dt(key.last_used_at, "R")
            line = t._("**{name}** (id {id}) · by {user} {created} · last used {used}", used=used, **params)
        lines.append(line)
    embed.description = "\n".join(lines)[:4000]
    embed.set_footer(
        text=t.ngettext(
            "{used} of {count} key · revoke one with {command}",
            "{used} of {count} keys · revoke one with {command}",
            limit,
            used=t.number(len(keys)),
            command=t.command("dscgg apikey revoke").strip("`"),
        )
    )
    return embed


async def setup(bot: DscBot) -> None:
    await bot.add_cog(AdminCog(bot))
