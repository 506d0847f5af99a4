"""/top and /search — browse dsc.gg links, for every member of a server.

Replies are ephemeral unless ``public:true``. Results are paginated with buttons only the invoker can
press; they keep working after a restart (``bot.pager``: the sources ``top`` and ``search``). The
results are kept in memory for ``results_ttl`` seconds so paging does not ask dsc.gg again; a press
after that, or after a restart, runs the same request again. A per-member cooldown keeps anyone from
spending the server's dsc.gg rate limit alone; it is spent only once the options passed local
validation, so a refused query costs nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.app_commands import Choice, Range
from discord.ext import commands

from bot import checks
from bot.dscgg.models import Link, LinkType
from bot.embeds import PAGE_SIZE, escape, link_page_embed, page_count, truncate
from bot.failures import InvalidInput, PagesUnavailable
from bot.i18n import Tr, for_user, locale_str
from bot.pager import Page, Recent
from bot.tree import defer
from bot.validation import QUERY_MAX, validate_query
from cogs.links import TYPE_CHOICES

if TYPE_CHECKING:
    from bot.client import DscBot
    from bot.services.links import LinkService

    Interaction = discord.Interaction[DscBot]
else:
    Interaction = discord.Interaction

__all__ = ["COOLDOWN_PER", "COOLDOWN_RATE", "DiscoveryCog", "MemberCooldown", "setup"]

log = logging.getLogger(__name__)

#: One /top or /search per member every 5 seconds, per server.
COOLDOWN_RATE = 1
COOLDOWN_PER = 5.0


def _member_key(interaction: discord.Interaction[DscBot]) -> tuple[int | None, int]:
    return (interaction.guild_id, interaction.user.id)


class MemberCooldown:
    """``rate`` uses per ``per`` seconds for each member of each server, spent by ``spend``.

    Unlike ``app_commands.checks.cooldown`` (a check, spent before the command body runs), the
    command decides when a use counts: after its local validation, before anything is sent.
    """

    def __init__(self, rate: int, per: float) -> None:
        self.rate = rate
        self.per = per
        self._buckets: dict[tuple[int | None, int], app_commands.Cooldown] = {}

    def spend(self, interaction: discord.Interaction[DscBot]) -> None:
        """Count one use; raises ``CommandOnCooldown`` (nothing counted) when the member is too fast."""
        now = time.time()
        self._forget_rested(now)
        key = _member_key(interaction)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = app_commands.Cooldown(self.rate, self.per)
        retry_after = bucket.update_rate_limit(now)
        if retry_after:
            raise app_commands.CommandOnCooldown(bucket, retry_after)

    def _forget_rested(self, now: float) -> None:
        """Drop the buckets that are full again, so the map only holds recent users."""
        rested = [key for key, bucket in self._buckets.items() if bucket.get_tokens(now) >= self.rate]
        for key in rested:
            del self._buckets[key]


def _type(choice: Choice[str] | None) -> LinkType | None:
    return LinkType(choice.value) if choice is not None else None


def _type_arg(text: str, command: str) -> LinkType | None:
    """The ``type`` a page button carries ("" for any); PagesUnavailable when it is none of them."""
    if not text:
        return None
    try:
        return LinkType(text)
    except ValueError:
        raise PagesUnavailable(command) from None


def _link_page(title: str, links: Sequence[Link], page: int, *, empty: str, t: Tr) -> Page:
    total = len(links)
    pages = page_count(total)
    index = min(max(page, 0), pages - 1)
    start = index * PAGE_SIZE
    embed = link_page_embed(
        title,
        links[start : start + PAGE_SIZE],
        page=index + 1,
        pages=pages,
        total=total,
        first_rank=start + 1,
        empty=empty,
        t=t,
    )
    return Page(embed, index, pages)


def _top_title(link_type: LinkType | None, t: Tr) -> str:
    match link_type:
        case LinkType.SERVER:
            return t._("Top dsc.gg servers")
        case LinkType.BOT:
            return t._("Top dsc.gg bots")
        case LinkType.TEMPLATE:
            return t._("Top dsc.gg templates")
    return t._("Top dsc.gg links")


def _search_shown(query: str) -> str:
    return truncate(escape(" ".join(query.split())), 100)


class DiscoveryCog(commands.Cog):
    #: Seconds the results of a /top or /search stay in memory for its page buttons; a press after
    #: that (or after a restart) asks dsc.gg again.
    results_ttl: float = 600.0

    def __init__(self, bot: DscBot) -> None:
        self.bot = bot
        self.top_cooldown = MemberCooldown(COOLDOWN_RATE, COOLDOWN_PER)
        self.search_cooldown = MemberCooldown(COOLDOWN_RATE, COOLDOWN_PER)
        #: ("top", None, args) or ("search", guild id, args) → the links the pages are cut from.
        self.results: Recent[tuple[str, int | None, str], list[Link]] = Recent(ttl=self.results_ttl)

    @property
    def links(self) -> LinkService:
        return self.bot.links

    async def cog_load(self) -> None:
        self.bot.pager.register("top", self._top_page, command="top")
        self.bot.pager.register("search", self._search_page, command="search")

    async def cog_unload(self) -> None:
        self.bot.pager.unregister("top")
        self.bot.pager.unregister("search")

    # ---------------------------------------------------------------- page sources

    async def _top_page(self, bot: DscBot, interaction: Interaction, page: int, args: str) -> Page:
        """args: the link type ("" for all)."""
        link_type = _type_arg(args, "top")
        key = ("top", None, args)
        links = self.results.get(key)
        if links is None:  # a press after the results were forgotten (or the bot restarted)
            links = await self.links.top(link_type)
            self.results.put(key, links)
        t = for_user(interaction)
        empty = t._("dsc.gg has no top links to show right now.")
        return _link_page(_top_title(link_type, t), links, page, empty=empty, t=t)

    async def _search_page(self, bot: DscBot, interaction: Interaction, page: int, args: str) -> Page:
        """args: ``<type>:<limit>:<query>`` (type and limit may be empty)."""
        guild_id = checks.ensure_guild(interaction)
        type_text, limit_text, query = [*args.split(":", 2), "", ""][:3]
        link_type = _type_arg(type_text, "search")
        try:
            limit = int(limit_text) if limit_text else None
            text = validate_query(query)
        except (ValueError, InvalidInput):
            raise PagesUnavailable("search") from None
        if limit is not None and not 1 <= limit <= 100:
            raise PagesUnavailable("search")
        key = ("search", guild_id, args)
        links = self.results.get(key)
        if links is None:
            links = await self.links.search(guild_id, text, link_type, limit)
            self.results.put(key, links)
        shown = _search_shown(text)
        t = for_user(interaction)
        return _link_page(
            t._("dsc.gg links matching “{query}”", query=shown),
            links,
            page,
            empty=t._("No dsc.gg links match “{query}”.", query=shown),
            t=t,
        )

    @app_commands.command(name="top", description=locale_str("Show dsc.gg's top links"))
    @app_commands.guild_only()
    @app_commands.describe(
        type=locale_str("Only links of this kind"),
        public=locale_str("Show the results to everyone in the channel (default: only you)"),
    )
    @app_commands.choices(type=TYPE_CHOICES)
    async def top(
        self, interaction: Interaction, type: Choice[str] | None = None, public: bool = False
    ) -> None:
        checks.ensure_guild(interaction)
        self.top_cooldown.spend(interaction)
        await defer(interaction, ephemeral=not public)
        link_type = _type(type)
        args = link_type.value if link_type else ""
        self.results.put(("top", None, args), await self.links.top(link_type))
        await self.bot.pager.start(interaction, "top", args)

    @app_commands.command(name="search", description=locale_str("Search dsc.gg links"))
    @app_commands.guild_only()
    @app_commands.describe(
        query=locale_str("What to look for"),
        type=locale_str("Only links of this kind"),
        limit=locale_str("How many results at most (1-100)"),
        public=locale_str("Show the results to everyone in the channel (default: only you)"),
    )
    @app_commands.choices(type=TYPE_CHOICES)
    async def search(
        self,
        interaction: Interaction,
        query: Range[str, 1, QUERY_MAX],
        type: Choice[str] | None = None,
        limit: Range[int, 1, 100] | None = None,
        public: bool = False,
    ) -> None:
        guild_id = checks.ensure_guild(interaction)
        text = validate_query(query)
        self.search_cooldown.spend(interaction)
        await defer(interaction, ephemeral=not public)
        link_type = _type(type)
        args = f"{link_type.value if link_type else ''}:{limit or ''}:{text}"
        self.results.put(
            ("search", guild_id, args), await self.links.search(guild_id, text, link_type, limit)
        )
        await self.bot.pager.start(interaction, "search", args)


async def setup(bot: DscBot) -> None:
    await bot.add_cog(DiscoveryCog(bot))
