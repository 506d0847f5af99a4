"""Pure builders of the embeds the bot sends, always within Discord's limits.

Everything that comes from users or from dsc.gg is escaped (no markdown, no mention syntax) and
truncated with an ellipsis. Builders never raise on odd link data: a junk colour is ignored, a bad
image URL is shown as text, a missing timestamp reads "unknown".
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import discord

from bot.i18n import N_, SOURCE, Tr

if TYPE_CHECKING:
    from bot.db.links import LinkRecord
    from bot.dscgg.models import Link

__all__ = [
    "BRAND_COLOUR",
    "EMBED_DESCRIPTION_MAX",
    "EMBED_TITLE_MAX",
    "EMBED_TOTAL_MAX",
    "PAGE_SIZE",
    "embed_size",
    "escape",
    "fit",
    "link_info_embed",
    "link_page_embed",
    "page_count",
    "record_page_embed",
    "shard_text",
    "short_label",
    "slug_label",
    "truncate",
    "type_name",
]

#: Discord's limits on an embed (characters). The limits on a link's own embed preview (its title
#: and description as dsc.gg stores them) are ``bot.validation.TITLE_MAX`` and ``DESCRIPTION_MAX``.
EMBED_TITLE_MAX = 256
EMBED_DESCRIPTION_MAX = 4096
FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
AUTHOR_MAX = 256
EMBED_TOTAL_MAX = 6000
#: Links per page of /top, /search and /link list.
PAGE_SIZE = 10

BRAND_COLOUR = discord.Colour(0x5865F2)
ELLIPSIS = "…"

_DOMAIN_RE = re.compile(
    r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+", re.A
)
_COLOR_RE = re.compile(r"(?:#|0x)?([0-9a-f]{6}|[0-9a-f]{3})", re.A | re.I)
_HTTPS_URL_RE = re.compile(r"https://[^\s<>\"'`]+", re.A)
_TYPE_NAMES = {
    "server": N_("Server invite"),
    "bot": N_("Bot invite"),
    "template": N_("Server template"),
    "link": N_("Link"),
}


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, with an ellipsis when it was cut."""
    if len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    cut = text[: limit - 1]
    # An odd run of trailing backslashes would escape the ellipsis (or swallow the next character).
    trailing = len(cut) - len(cut.rstrip("\\"))
    if trailing % 2:
        cut = cut[:-1]
    return cut + ELLIPSIS


def escape(text: str) -> str:
    """User or dsc.gg text made inert: markdown escaped, mentions broken, URLs left working."""
    return discord.utils.escape_mentions(discord.utils.escape_markdown(text))


def _inline(text: str) -> str:
    """Escaped text on one line (for titles, field names and list entries)."""
    return escape(" ".join(text.split()))


def _domain(link: Link) -> str:
    domain = (getattr(link, "domain", None) or "dsc.gg").strip().lower()
    return domain if _DOMAIN_RE.fullmatch(domain) and len(domain) <= 100 else "dsc.gg"


def _short_url(link: Link) -> str:
    return f"https://{_domain(link)}/{link.slug}"


def _short_label(link: Link) -> str:
    return f"{_domain(link)}/{link.slug}"


def short_label(link: Link) -> str:
    """``dsc.gg/slug`` (the link's own domain when it is a sane host name), escaped for markdown."""
    return _inline(_short_label(link))


def slug_label(slug: str, domain: str = "dsc.gg") -> str:
    """``dsc.gg/slug`` for a slug known only by name, escaped for markdown like ``short_label``."""
    return _inline(f"{domain}/{slug}")


def _safe_url(url: str | None) -> str | None:
    """An https URL Discord will accept in an embed's url/image, or None."""
    if not url:
        return None
    url = url.strip()
    if len(url) > 2000 or not _HTTPS_URL_RE.fullmatch(url):
        return None
    return url


def _colour(value: Any) -> discord.Colour | None:
    """dsc.gg's meta.color (``#rrggbb``, ``rrggbb``, ``#rgb``, an int, junk) as a Colour, or None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return discord.Colour(value) if 0 <= value <= 0xFFFFFF else None
    if not isinstance(value, str):
        return None
    match = _COLOR_RE.fullmatch(value.strip())
    if match is None:
        return None
    digits = match.group(1)
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return discord.Colour(int(digits, 16))


def _when(dt: datetime | None, t: Tr) -> str:
    if dt is None:
        return t._("Never")
    try:
        return f"{discord.utils.format_dt(dt, 'f')} ({discord.utils.format_dt(dt, 'R')})"
    except (OverflowError, OSError, ValueError):
        return t._("Unknown")


def type_name(value: Any, t: Tr = SOURCE) -> str:
    """A link type as the ``type`` choices name it ("Server invite"), in ``t``'s language."""
    raw = str(getattr(value, "value", value) or "").strip()
    name = _TYPE_NAMES.get(raw.lower())
    if name is not None:
        return t._(name)
    return _inline(raw) or t._("Unknown")


def _mention(user_id: int) -> str:
    return f"<@{user_id}>"


def _owner(owner_id: int | None, t: Tr) -> str:
    return f"<@{owner_id}>" if owner_id else t._("Unknown")


@dataclass(slots=True)
class _Part:
    name: str
    value: str
    inline: bool


def embed_size(embed: discord.Embed) -> int:
    """Characters Discord counts towards the 6000 limit."""
    total = len(embed.title or "") + len(embed.description or "")
    total += len(embed.footer.text or "") + len(embed.author.name or "")
    return total + sum(len(f.name or "") + len(f.value or "") for f in embed.fields)


def _fair_cap(lengths: Sequence[int], budget: int) -> int:
    """The largest cap such that the lengths, each cut to at most the cap, add up to ``budget`` or less.

    Cutting every text to a common cap shares the room fairly: short texts stay whole and the long
    ones give up the same amount, so no single entry of a crowded page is cut down to nothing.
    """
    if sum(lengths) <= budget:
        return max(lengths, default=0)
    low, high = 0, max(lengths)  # sum(min(l, low)) <= budget < sum(min(l, high))
    while high - low > 1:
        middle = (low + high) // 2
        if sum(min(length, middle) for length in lengths) <= budget:
            low = middle
        else:
            high = middle
    return low


#: Below this many characters per value, field names are cut too rather than values alone.
_KEEP = 32


def fit(embed: discord.Embed) -> discord.Embed:
    """``embed`` cut to Discord's limits, in place: each part to its own limit, then the whole to 6000.

    The free texts (the description and the field values) share the room left by the title, the
    author, the footer and the field names: each is cut to a common cap (never below one character),
    so every field keeps its beginning, where the builders put the essentials. Field names are cut only
    when they alone nearly fill the embed: then names and texts share one cap. Every cut ends with an
    ellipsis.
    """
    if embed.title:
        embed.title = truncate(embed.title, EMBED_TITLE_MAX)
    if embed.description:
        embed.description = truncate(embed.description, EMBED_DESCRIPTION_MAX)
    if embed.footer.text:
        embed.set_footer(text=truncate(embed.footer.text, FOOTER_MAX), icon_url=embed.footer.icon_url)
    if embed.author.name:
        embed.set_author(
            name=truncate(embed.author.name, AUTHOR_MAX), url=embed.author.url, icon_url=embed.author.icon_url
        )
    fields = [
        _Part(
            truncate(f.name or "", FIELD_NAME_MAX) or "\u200b",
            truncate(f.value or "", FIELD_VALUE_MAX) or "\u200b",
            bool(f.inline),
        )
        for f in embed.fields[:FIELDS_MAX]
    ]
    description = embed.description or ""
    fixed = len(embed.title or "") + len(embed.footer.text or "") + len(embed.author.name or "")

    def total() -> int:
        return fixed + len(description) + sum(len(f.name) + len(f.value) for f in fields)

    if total() > EMBED_TOTAL_MAX:
        budget = EMBED_TOTAL_MAX - fixed
        names = [len(f.name) for f in fields]
        texts = [len(f.value) for f in fields] + ([len(description)] if description else [])
        cap = _fair_cap(texts, budget - sum(names)) if budget > sum(names) else 0
        name_cap = max(names, default=0)
        if cap < _KEEP:  # the names nearly fill the embed (25 fields of 256): they share the cuts
            cap = name_cap = max(1, _fair_cap(names + texts, budget))
        for f in fields:
            f.name = truncate(f.name, name_cap) or "\u200b"
            f.value = truncate(f.value, cap) or "\u200b"
        description = truncate(description, cap)
        if total() > EMBED_TOTAL_MAX:  # only a title/footer near their own limits is left
            description = truncate(description, max(0, len(description) - (total() - EMBED_TOTAL_MAX)))
    embed.description = description or None
    embed.clear_fields()
    for f in fields:
        embed.add_field(name=f.name, value=f.value, inline=f.inline)
    return embed


def _build(
    *,
    title: str,
    description: str = "",
    fields: Sequence[tuple[str, str, bool]] = (),
    footer: str = "",
    colour: discord.Colour | None = None,
    url: str | None = None,
) -> discord.Embed:
    embed = discord.Embed(
        title=title, description=description or None, colour=colour or BRAND_COLOUR, url=url
    )
    for name, value, inline in fields:
        embed.add_field(name=name, value=value, inline=inline)
    if footer:
        embed.set_footer(text=footer)
    return fit(embed)


def link_info_embed(link: Link, t: Tr = SOURCE) -> discord.Embed:
    """Everything `/link info` shows about one link, in ``t``'s language."""
    meta = link.meta
    stats = getattr(link, "stats", None)
    fields = [
        (t._("Redirect"), escape(link.redirect or "") or t._("None"), False),
        (t._("Type"), type_name(link.type, t), True),
        (t._("Owner"), _owner(link.owner_id, t), True),
        (t._("Visibility"), t._("Unlisted") if link.unlisted else t._("Listed"), True),
        (t._("Created"), _when(link.created_at, t), True),
        (t._("Bumped"), _when(link.bumped_at, t), True),
        (t._("Status"), t._("**Disabled**") if link.disabled else t._("Active"), True),
    ]
    if stats is not None:
        clicks = t.ngettext(
            "{count} ({unique} unique)",
            "{count} ({unique} unique)",
            stats.unique_clicks,
            count=t.number(stats.clicks),
            unique=t.number(stats.unique_clicks),
        )
        fields.append((t._("Clicks"), clicks, True))
    if meta.title:
        fields.append((t._("Embed title"), _inline(meta.title), False))
    if meta.description:
        fields.append((t._("Embed description"), escape(meta.description), False))
    colour = _colour(meta.color)
    if colour is not None:
        fields.append((t._("Embed colour"), str(colour), True))
    image = _safe_url(meta.image)
    if meta.image:
        fields.append((t._("Embed image"), escape(meta.image), False))
    embed = _build(
        title=_inline(_short_label(link)),
        fields=fields,
        colour=colour,
        url=_safe_url(_short_url(link)),
    )
    if image is not None:
        embed.set_image(url=image)
    return embed


def page_count(total: int, page_size: int = PAGE_SIZE) -> int:
    """Pages needed for ``total`` items; an empty list still has one (empty) page."""
    return max(1, math.ceil(total / page_size))


def page_footer(page: int, pages: int, items: str, t: Tr) -> str:
    """ "Page 2/5 · 43 links": ``items`` is the count with its noun, already in ``t``'s language."""
    return t._("Page {page}/{pages} · {items}", page=t.number(page), pages=t.number(pages), items=items)


def link_page_embed(
    title: str,
    links: Sequence[Link],
    *,
    page: int,
    pages: int,
    total: int,
    t: Tr = SOURCE,
    first_rank: int = 1,
    empty: str = "",
) -> discord.Embed:
    """One page of a list of dsc.gg links (``/top``, ``/search``): one field per link."""
    fields: list[tuple[str, str, bool]] = []
    for rank, link in enumerate(links, start=first_rank):
        stats = getattr(link, "stats", None)
        details = [type_name(link.type, t)]
        if stats is not None:
            details.append(t.ngettext("{count} click", "{count} clicks", stats.clicks))
        lines = [" · ".join(details)]
        if link.meta.title:
            lines.append(f"**{truncate(_inline(link.meta.title), 200)}**")
        if link.meta.description:
            lines.append(truncate(_inline(link.meta.description), 300))
        fields.append((f"{t.number(rank)}. {_inline(_short_label(link))}", "\n".join(lines), False))
    return _build(
        title=title,
        description="" if links else (empty or t._("No links found.")),
        fields=fields,
        footer=page_footer(page, pages, t.ngettext("{count} link", "{count} links", total), t),
    )


def record_page_embed(
    records: Sequence[LinkRecord],
    *,
    page: int,
    pages: int,
    total: int,
    t: Tr = SOURCE,
    guild_name: str | None = None,
    domain: str = "dsc.gg",
) -> discord.Embed:
    """One page of ``/link list``: the links this server manages (created or adopted through the bot)."""
    lines = []
    for record in records:
        label = f"[{escape(domain)}/{escape(record.slug)}](https://{domain}/{record.slug})"
        when = discord.utils.format_dt(record.touched_at, "R")
        if record.last_touched_by != record.created_by:
            line = t._(
                "{link} · by {creator}, last changed by {changer} · {when}",
                link=label,
                creator=_mention(record.created_by),
                changer=_mention(record.last_touched_by),
                when=when,
            )
        else:
            line = t._(
                "{link} · by {creator} · {when}", link=label, creator=_mention(record.created_by), when=when
            )
        lines.append(line)
    empty = t._(
        "No links yet: links created here with {create} or adopted with {adopt} show up here.",
        create=t.command("link create"),
        adopt=t.command("link adopt"),
    )
    if guild_name:
        title = t._("dsc.gg links of {server}", server=_inline(guild_name))
    else:
        title = t._("This server's dsc.gg links")
    return _build(
        title=title,
        description="\n".join(lines) if lines else empty,
        footer=page_footer(page, pages, t.ngettext("{count} link", "{count} links", total), t),
    )


def shard_text(shard_id: int, shard_count: int, t: Tr = SOURCE) -> str:
    """The ``/dscgg status`` line naming the shard that serves the server (ids from 0, as in SHARD_IDS)."""
    return t._("Shard {shard} of {count}", shard=t.number(shard_id), count=t.number(shard_count))
