"""/link create|edit|delete|info|adopt|list — a server's dsc.gg links, for members with Manage Server
(or whoever the server's command permissions in Server Settings → Integrations allow).

Every subcommand validates its options locally first (``bot.validation``, the rules the HTTP API and
the dashboard follow too: an ephemeral refusal, nothing sent to dsc.gg), then defers ephemerally
before touching the database or the network, and finishes by editing the deferred response. Failures
are raised and the tree turns them into one ephemeral sentence.

``edit``, ``delete`` and ``info`` act only on the links this server created or adopted (the service
refuses the others with a reply naming ``/link adopt``); autocomplete offers only those.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.app_commands import Choice, Range
from discord.ext import commands

from bot import checks
from bot.dscgg.models import LinkType
from bot.embeds import link_info_embed, record_page_embed, short_label, slug_label
from bot.errors import render
from bot.i18n import for_user, locale_str
from bot.pager import Page
from bot.tree import defer
from bot.validation import (
    DESCRIPTION_MAX,
    IMAGE_MAX,
    PASSWORD_MAX,
    REDIRECT_MAX,
    REMOVABLE,
    TITLE_MAX,
    link_change_options,
    new_link_options,
    normalize_slug,
)
from bot.views import ConfirmView

if TYPE_CHECKING:
    from bot.client import DscBot
    from bot.services.links import LinkService

    Interaction = discord.Interaction[DscBot]
else:
    Interaction = discord.Interaction

__all__ = ["TYPE_CHOICES", "LinksCog", "setup"]

log = logging.getLogger(__name__)

NONE = discord.AllowedMentions.none()
#: The slug option takes URLs too (https://www.dsc.gg/name?ref=…), so its cap is above the slug's 120.
SLUG_OPTION_MAX = 300
#: Autocomplete must answer within Discord's 3 seconds; the local store answers in milliseconds.
AUTOCOMPLETE_BUDGET = 2.0

TYPE_CHOICES = [
    Choice(name=locale_str("Server invite"), value="server"),
    Choice(name=locale_str("Bot invite"), value="bot"),
    Choice(name=locale_str("Server template"), value="template"),
]

_DESCRIBE = {
    "slug": locale_str("The link's name, as in dsc.gg/<name> (the full dsc.gg link works too)"),
    "redirect": locale_str(
        "Where the link leads: a discord.gg invite, a bot invite or a discord.new template"
    ),
    "type": locale_str("What the redirect is; worked out from the redirect when left out"),
    "title": locale_str("Title of the link's embed preview"),
    "description": locale_str("Description of the link's embed preview"),
    "image": locale_str("https:// address of the image in the link's embed preview"),
    "color": locale_str("Colour of the link's embed preview, like #5865F2"),
    "unlisted": locale_str("Hide the link from dsc.gg's search and top pages"),
    "password": locale_str("Password visitors must enter before being redirected"),
    "remove_title": locale_str("Take the title off the link's embed preview"),
    "remove_description": locale_str("Take the description off the link's embed preview"),
    "remove_image": locale_str("Take the image off the link's embed preview"),
    "remove_color": locale_str("Take the colour off the link's embed preview"),
    "remove_password": locale_str("Take the password off the link"),
}


def _type(choice: Choice[str] | None) -> LinkType | None:
    return LinkType(choice.value) if choice is not None else None


@checks.manage_guild()
@app_commands.guild_only()
class LinksCog(
    commands.GroupCog, group_name="link", group_description=locale_str("Manage this server's dsc.gg links")
):
    #: Seconds the delete confirmation waits for an answer.
    confirm_timeout: float = 60.0

    def __init__(self, bot: DscBot) -> None:
        self.bot = bot
        super().__init__()

    async def cog_load(self) -> None:
        self.bot.pager.register("list", self._list_page, command="link list", guarded=True)

    async def cog_unload(self) -> None:
        self.bot.pager.unregister("list")

    @property
    def links(self) -> LinkService:
        return self.bot.links

    # ---------------------------------------------------------------- autocomplete

    async def slug_autocomplete(self, interaction: Interaction, current: str) -> list[Choice[str]]:
        """This server's own recorded slugs (no dsc.gg call); nothing for members who may not use /link.

        Command checks do not run for autocomplete, so the permission (the server's command permission
        overrides, else Manage Server) is checked here. Never raises.
        """
        try:
            async with asyncio.timeout(AUTOCOMPLETE_BUDGET):  # the permission check and the lookup
                if interaction.guild_id is None or not await checks.may_manage(interaction):
                    return []
                prefix = current.strip()
                try:
                    prefix = normalize_slug(prefix) if prefix else ""
                except app_commands.AppCommandError:
                    prefix = prefix[-100:]  # half-typed or odd input: still try a plain "contains" match
                slugs = await self.links.suggest(interaction.guild_id, prefix, 25)
            return [Choice(name=slug, value=slug) for slug in slugs if len(slug) <= 100][:25]
        except Exception:
            log.exception("Slug autocomplete failed in guild %s", interaction.guild_id)
            return []

    # ---------------------------------------------------------------- /link create

    @app_commands.command(name="create", description=locale_str("Create a dsc.gg link for this server"))
    @app_commands.describe(**{k: v for k, v in _DESCRIBE.items() if not k.startswith("remove_")})
    @app_commands.choices(type=TYPE_CHOICES)
    async def create(
        self,
        interaction: Interaction,
        slug: Range[str, 1, SLUG_OPTION_MAX],
        redirect: Range[str, 1, REDIRECT_MAX + 2],
        type: Choice[str] | None = None,
        title: Range[str, 1, TITLE_MAX] | None = None,
        description: Range[str, 1, DESCRIPTION_MAX] | None = None,
        image: Range[str, 1, IMAGE_MAX + 2] | None = None,
        color: Range[str, 1, 16] | None = None,
        unlisted: bool | None = None,
        password: Range[str, 1, PASSWORD_MAX] | None = None,
    ) -> None:
        guild_id = checks.ensure_guild(interaction)
        new = new_link_options(
            slug=slug,
            redirect=redirect,
            type=_type(type),
            title=title,
            description=description,
            image=image,
            color=color,
            unlisted=unlisted,
            password=password,
        )

        await defer(interaction)
        result = await self.links.create(guild_id, interaction.user.id, new)
        t = for_user(interaction)
        content = t._("Created **{link}**.", link=short_label(result.link))
        if new.meta.password is not None:
            content += " " + t._("Visitors will be asked for the password.")
        if result.colour_problem:
            content += "\n⚠️ " + t._(
                "The link exists, but its colour was not applied: {reason} Set it with {command}.",
                reason=render(result.colour_problem, t, next_step=False),
                command=t.command("link edit", slug=new.slug, color=new.meta.color or ""),
            )
        await interaction.edit_original_response(
            content=content, embed=link_info_embed(result.link, t), allowed_mentions=NONE
        )

    # ---------------------------------------------------------------- /link edit

    @app_commands.command(
        name="edit", description=locale_str("Change a dsc.gg link; only the options you give change")
    )
    @app_commands.describe(**_DESCRIBE)
    @app_commands.choices(type=TYPE_CHOICES)
    @app_commands.autocomplete(slug=slug_autocomplete)
    async def edit(
        self,
        interaction: Interaction,
        slug: Range[str, 1, SLUG_OPTION_MAX],
        redirect: Range[str, 1, REDIRECT_MAX + 2] | None = None,
        type: Choice[str] | None = None,
        title: Range[str, 1, TITLE_MAX] | None = None,
        description: Range[str, 1, DESCRIPTION_MAX] | None = None,
        image: Range[str, 1, IMAGE_MAX + 2] | None = None,
        color: Range[str, 1, 16] | None = None,
        unlisted: bool | None = None,
        password: Range[str, 1, PASSWORD_MAX] | None = None,
        remove_title: bool | None = None,
        remove_description: bool | None = None,
        remove_image: bool | None = None,
        remove_color: bool | None = None,
        remove_password: bool | None = None,
    ) -> None:
        guild_id = checks.ensure_guild(interaction)
        flags = (remove_title, remove_description, remove_image, remove_color, remove_password)
        changes = link_change_options(
            slug=slug,
            redirect=redirect,
            type=_type(type),
            title=title,
            description=description,
            image=image,
            color=color,
            unlisted=unlisted,
            password=password,
            removed={field for field, flag in zip(REMOVABLE, flags, strict=True) if flag},
        )

        await defer(interaction)
        result = await self.links.edit(guild_id, interaction.user.id, changes)
        t = for_user(interaction)
        changed = ", ".join(
            t._("`{option}` removed", option=t.option_name(change.field))
            if change.field in result.removed
            else f"`{t.option_name(change.field)}`"
            for change in result.changes
        )
        await interaction.edit_original_response(
            content=t._(
                "Updated **{link}**: {changes}.",
                link=short_label(result.link),
                changes=changed or t._("nothing"),
            ),
            embed=link_info_embed(result.link, t),
            allowed_mentions=NONE,
        )

    # ---------------------------------------------------------------- /link delete

    @app_commands.command(
        name="delete", description=locale_str("Delete a dsc.gg link (asks to confirm first)")
    )
    @app_commands.describe(slug=_DESCRIBE["slug"])
    @app_commands.autocomplete(slug=slug_autocomplete)
    async def delete(self, interaction: Interaction, slug: Range[str, 1, SLUG_OPTION_MAX]) -> None:
        guild_id = checks.ensure_guild(interaction)
        name = normalize_slug(slug)
        await defer(interaction)
        await self.links.token_for(guild_id)  # no token: say so now rather than after the question
        await self.links.ensure_managed(guild_id, name)  # nor ask about a link it may not delete

        label = slug_label(name)
        t = for_user(interaction)
        view = ConfirmView(
            owner_id=interaction.user.id,
            t=t,
            timeout=self.confirm_timeout,
            confirm_label=t._("Delete"),
            working=t._("Deleting **{link}**…", link=label),
            expired=t._("Deletion cancelled: no answer in time. **{link}** was not deleted.", link=label),
            cancelled=t._("Deletion cancelled. **{link}** was not deleted.", link=label),
        )
        view.attach(interaction)
        await interaction.edit_original_response(
            content=t._(
                "Delete **{link}** for good? Anyone using the link will get an error page.", link=label
            ),
            view=view,
            allowed_mentions=NONE,
        )
        await view.wait()
        if view.value is not True:
            return  # the view already said "cancelled" (button or timeout)
        try:
            outcome = await self.links.delete(guild_id, interaction.user.id, name)
        except Exception:
            await interaction.edit_original_response(
                content=t._("**{link}** was not deleted.", link=label), view=None, allowed_mentions=NONE
            )
            raise
        if outcome.deleted:
            content = t._("Deleted **{link}**.", link=label)
        elif outcome.forgotten:
            content = t._(
                "**{link}** no longer exists on dsc.gg; it was removed from this server's list.", link=label
            )
        else:
            content = t._("**{link}** no longer exists on dsc.gg; there was nothing to delete.", link=label)
        await interaction.edit_original_response(content=content, view=None, allowed_mentions=NONE)

    # ---------------------------------------------------------------- /link info

    @app_commands.command(name="info", description=locale_str("Show everything about a dsc.gg link"))
    @app_commands.describe(slug=_DESCRIBE["slug"])
    @app_commands.autocomplete(slug=slug_autocomplete)
    async def info(self, interaction: Interaction, slug: Range[str, 1, SLUG_OPTION_MAX]) -> None:
        guild_id = checks.ensure_guild(interaction)
        name = normalize_slug(slug)
        await defer(interaction)
        link = await self.links.info(guild_id, name)
        embed = link_info_embed(link, for_user(interaction))
        await interaction.edit_original_response(embed=embed, allowed_mentions=NONE)

    # ---------------------------------------------------------------- /link adopt

    @app_commands.command(
        name="adopt",
        description=locale_str(
            "Manage an existing dsc.gg link here (your server's dsc.gg account must own it)"
        ),
    )
    @app_commands.describe(slug=_DESCRIBE["slug"])
    async def adopt(self, interaction: Interaction, slug: Range[str, 1, SLUG_OPTION_MAX]) -> None:
        # No autocomplete: this server's records are the links it need not adopt, and other servers'
        # records are not for it to see.
        guild_id = checks.ensure_guild(interaction)
        name = normalize_slug(slug)
        await defer(interaction)
        result = await self.links.adopt(guild_id, interaction.user.id, name)
        label = slug_label(name)
        t = for_user(interaction)
        if not result.adopted:
            await interaction.edit_original_response(
                content=t._("**{link}** is already managed by this server: nothing to adopt.", link=label),
                allowed_mentions=NONE,
            )
            return
        assert result.link is not None
        await interaction.edit_original_response(
            content=t._(
                "Adopted **{link}**: this server can now change it with {edit} and {delete}.",
                link=short_label(result.link),
                edit=t.command("link edit"),
                delete=t.command("link delete"),
            ),
            embed=link_info_embed(result.link, t),
            allowed_mentions=NONE,
        )

    # ---------------------------------------------------------------- /link list

    @app_commands.command(
        name="list", description=locale_str("List the links this server created or adopted here")
    )
    async def list_(self, interaction: Interaction) -> None:
        checks.ensure_guild(interaction)
        await defer(interaction)
        await self.bot.pager.start(interaction, "list")

    async def _list_page(self, bot: DscBot, interaction: Interaction, page: int, args: str) -> Page:
        """The ``list`` page source: links may be created or deleted while someone browses, so the
        page count, the footer and the buttons all follow each read."""
        guild_id = checks.ensure_guild(interaction)
        records = await self.links.list_records(guild_id, page)
        guild_name = interaction.guild.name if interaction.guild is not None else None
        embed = record_page_embed(
            records.records,
            page=records.page + 1,
            pages=records.pages,
            total=records.total,
            guild_name=guild_name,
            t=for_user(interaction),
        )
        return Page(embed, records.page, records.pages)


async def setup(bot: DscBot) -> None:
    await bot.add_cog(LinksCog(bot))
