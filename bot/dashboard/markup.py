"""The bot's Discord-flavoured sentences as HTML: the audit log's lines and the error sentences of
``bot.errors.describe`` are written once, as Discord markdown, and shown here as escaped HTML.

Only what those sentences use is understood: ``\\x`` escapes, ``**bold**``, ``*italic*``/``_italic_``,
```code```, ``<t:UNIX:STYLE>`` timestamps, ``<@user>`` and ``<#channel>`` mentions. Everything else is
text, escaped: a link title such as ``<script>`` or ``"><img onerror=…>`` stays visible text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from html import escape
from typing import Final

from markupsafe import Markup

__all__ = ["html_time", "markdown_html"]

_TOKEN: Final = re.compile(
    r"\\(?P<escaped>[^\n])"
    r"|\*\*(?P<bold>.+?)\*\*"
    r"|`(?P<code>[^`\n]+)`"
    r"|<t:(?P<time>-?\d{1,12})(?::(?P<style>[tTdDfFR]))?>"
    r"|<@!?(?P<user>\d{1,20})>"
    r"|<#(?P<channel>\d{1,20})>"
    r"|(?<![\w*])\*(?P<star>[^*\n]+?)\*(?![\w*])"
    r"|(?<!\w)_(?P<under>[^_\n]+?)_(?!\w)",
    re.DOTALL,
)


def html_time(at: datetime, *, relative: bool = False) -> Markup:
    """A ``<time>`` element: UTC in the text (the page script shows it in the reader's time zone, or
    relative when ``relative``)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    at = at.astimezone(UTC)
    mode = "relative" if relative else "local"
    return Markup('<time datetime="{}" data-{}>{} UTC</time>').format(
        at.isoformat(timespec="seconds"), mode, at.strftime("%Y-%m-%d %H:%M")
    )


def markdown_html(
    text: str, *, users: Mapping[int, str] | None = None, channels: Mapping[int, str] | None = None
) -> Markup:
    """``text`` (Discord markdown) as safe HTML; ``users``/``channels`` name the mentioned ids."""
    return Markup(_render(text, users or {}, channels or {}))  # noqa: S704 (every piece is escaped)


def _render(text: str, users: Mapping[int, str], channels: Mapping[int, str]) -> str:
    out: list[str] = []
    position = 0
    for match in _TOKEN.finditer(text):
        out.append(escape(text[position : match.start()]))
        position = match.end()
        groups = match.groupdict()
        if groups["escaped"] is not None:
            out.append(escape(groups["escaped"]))
        elif groups["bold"] is not None:
            out.append(f"<strong>{_render(groups['bold'], users, channels)}</strong>")
        elif groups["code"] is not None:
            out.append(f"<code>{escape(groups['code'])}</code>")
        elif groups["time"] is not None:
            at = datetime.fromtimestamp(int(groups["time"]), UTC)
            out.append(str(html_time(at, relative=groups["style"] == "R")))
        elif groups["user"] is not None:
            user_id = int(groups["user"])
            name = users.get(user_id)
            shown = f"@{name}" if name else f"user {user_id}"
            out.append(f'<span class="mention" title="{user_id}">{escape(shown)}</span>')
        elif groups["channel"] is not None:
            channel_id = int(groups["channel"])
            name = channels.get(channel_id)
            shown = f"#{name}" if name else f"channel {channel_id}"
            out.append(f'<span class="mention" title="{channel_id}">{escape(shown)}</span>')
        else:
            inner = groups["star"] if groups["star"] is not None else groups["under"]
            out.append(f"<em>{_render(inner, users, channels)}</em>")
    out.append(escape(text[position:]))
    return "".join(out)
