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

if TYPE_CHECKING:
    from bot.db.links import LinkRecord
    from bot.dscgg.models import Link

__all__ = [
    "BRAND_COLOUR",
    "EMBED_TOTAL_MAX",
    "PAGE_SIZE",
    "escape",
    "link_info_embed",
    "link_page_embed",
    "page_count",
    "record_page_embed",
    "shard_text",
    "short_label",
    "slug_label",
    "truncate",
]

TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
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
_TYPE_NAMES = {"server": "Server invite", "bot": "Bot invite", "template": "Server template", "link": "Link"}


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


def _when(dt: datetime | None) -> str:
    if dt is None:
        return "Never"
    try:
        return f"{discord.utils.format_dt(dt, 'f')} ({discord.utils.format_dt(dt, 'R')})"
    except (OverflowError, OSError, ValueError):
        return "Unknown"


def _type_name(value: Any) -> str:
    raw = str(getattr(value, "value", value) or "").strip()
    return _TYPE_NAMES.get(raw.lower(), _inline(raw) or "Unknown")


def _owner(owner_id: int | None) -> str:
    return f"<@{owner_id}>" if owner_id else "Unknown"


@dataclass(slots=True)
class _Field:
    name: str
    value: str
    inline: bool = False


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


def _fit(title: str, description: str, fields: list[_Field], footer: str) -> tuple[str, str, list[_Field]]:
    """Cut the texts so the whole embed fits in Discord's 6000-character total.

    The free texts (the description and the field values) share the room left by the title, the
    footer and the field names: each is cut to a common cap (never below one character), so every
    field keeps its beginning, where the builders put the essentials. Field names are cut the same
    way only if that is still not enough.
    """
    title = truncate(title, TITLE_MAX)
    description = truncate(description, DESCRIPTION_MAX)
    fields = fields[:FIELDS_MAX]
    for f in fields:
        f.name = truncate(f.name, FIELD_NAME_MAX) or "\u200b"
        f.value = truncate(f.value, FIELD_VALUE_MAX) or "\u200b"

    def total() -> int:
        return len(title) + len(description) + len(footer) + sum(len(f.name) + len(f.value) for f in fields)

    if total() <= EMBED_TOTAL_MAX:
        return title, description, fields

    fixed = len(title) + len(footer) + sum(len(f.name) for f in fields)
    texts = [len(f.value) for f in fields] + ([len(description)] if description else [])
    cap = max(1, _fair_cap(texts, EMBED_TOTAL_MAX - fixed))
    for f in fields:
        f.value = truncate(f.value, cap) or "\u200b"
    description = truncate(description, cap)

    excess = total() - EMBED_TOTAL_MAX
    if excess > 0:  # the names alone nearly fill the embed (25 fields of 256 characters)
        names = [len(f.name) for f in fields]
        name_cap = max(1, _fair_cap(names, sum(names) - excess))
        for f in fields:
            f.name = truncate(f.name, name_cap) or "\u200b"
    if total() > EMBED_TOTAL_MAX:  # only a title/footer near their own limits is left
        description = truncate(description, max(0, len(description) - (total() - EMBED_TOTAL_MAX)))
    return title, description, fields


def _build(
    *,
    title: str,
    description: str = "",
    fields: list[_Field] | None = None,
    footer: str = "",
    colour: discord.Colour | None = None,
    url: str | None = None,
) -> discord.Embed:
    footer = truncate(footer, FOOTER_MAX)
    title, description, fitted = _fit(title, description, fields or [], footer)
    embed = discord.Embed(
        title=title, description=description or None, colour=colour or BRAND_COLOUR, url=url
    )
    for f in fitted:
        embed.add_field(name=f.name, value=f.value, inline=f.inline)
    if footer:
        embed.set_footer(text=footer)
    return embed


def link_info_embed(link: Link) -> discord.Embed:
    """Everything `/link info` shows about one link."""
    meta = link.meta
    stats = getattr(link, "stats", None)
    fields = [
        _Field("Redirect", escape(link.redirect or "") or "None"),
        _Field("Type", _type_name(link.type), inline=True),
        _Field("Owner", _owner(link.owner_id), inline=True),
        _Field("Visibility", "Unlisted" if link.unlisted else "Listed", inline=True),
        _Field("Created", _when(link.created_at), inline=True),
        _Field("Bumped", _when(link.bumped_at), inline=True),
        _Field("Status", "**Disabled**" if link.disabled else "Active", inline=True),
    ]
    if stats is not None:
        fields.append(_Field("Clicks", f"{stats.clicks:,} ({stats.unique_clicks:,} unique)", inline=True))
    if meta.title:
        fields.append(_Field("Embed title", _inline(meta.title)))
    if meta.description:
        fields.append(_Field("Embed description", escape(meta.description)))
    colour = _colour(meta.color)
    if colour is not None:
        fields.append(_Field("Embed colour", str(colour), inline=True))
    image = _safe_url(meta.image)
    if meta.image:
        fields.append(_Field("Embed image", escape(meta.image)))
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


def _page_footer(page: int, pages: int, total: int, noun: str) -> str:
    items = f"{total} {noun}" + ("" if total == 1 else "s")
    return f"Page {page}/{pages} · {items}"


def link_page_embed(
    title: str,
    links: Sequence[Link],
    *,
    page: int,
    pages: int,
    total: int,
    first_rank: int = 1,
    empty: str = "No links found.",
) -> discord.Embed:
    """One page of a list of dsc.gg links (``/top``, ``/search``): one field per link."""
    fields: list[_Field] = []
    for rank, link in enumerate(links, start=first_rank):
        stats = getattr(link, "stats", None)
        details = [_type_name(link.type)]
        if stats is not None:
            details.append(f"{stats.clicks:,} clicks")
        lines = [" · ".join(details)]
        if link.meta.title:
            lines.append(f"**{truncate(_inline(link.meta.title), 200)}**")
        if link.meta.description:
            lines.append(truncate(_inline(link.meta.description), 300))
        fields.append(_Field(f"{rank}. {_inline(_short_label(link))}", "\n".join(lines)))
    return _build(
        title=title,
        description="" if links else empty,
        fields=fields,
        footer=_page_footer(page, pages, total, "link"),
    )


def record_page_embed(
    records: Sequence[LinkRecord],
    *,
    page: int,
    pages: int,
    total: int,
    guild_name: str | None = None,
    domain: str = "dsc.gg",
) -> discord.Embed:
    """One page of ``/link list``: the links this server manages (created or adopted through the bot)."""
    lines = []
    for record in records:
        label = f"{escape(domain)}/{escape(record.slug)}"
        line = f"[{label}](https://{domain}/{record.slug}) · by <@{record.created_by}>"
        if record.last_touched_by != record.created_by:
            line += f", last changed by <@{record.last_touched_by}>"
        line += f" · {discord.utils.format_dt(record.touched_at, 'R')}"
        lines.append(line)
    empty = "No links yet: links created here with `/link create` or adopted with `/link adopt` show up here."
    return _build(
        title=f"dsc.gg links of {_inline(guild_name)}" if guild_name else "This server's dsc.gg links",
        description="\n".join(lines) if lines else empty,
        footer=_page_footer(page, pages, total, "link"),
    )


def shard_text(shard_id: int, shard_count: int) -> str:
    """The ``/dscgg status`` line naming the shard that serves the server (ids from 0, as in SHARD_IDS)."""
    return f"Shard {shard_id} of {shard_count}"
