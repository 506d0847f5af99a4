"""Pure rendering of audit events, in the reader's language: one embed per event, short lines for
``/dscgg status`` and the pages of ``/dscgg audit``.

Nothing here touches the network or the database. Everything a user or dsc.gg typed is escaped once
(markdown and mentions), here. A refusal's reason is data (``bot.failures.Reason``) rendered by
``bot.errors.render`` in the same language; a reason stored as a sentence by an older version is
shown as it is (it was escaped when it was made). Secret fields are shown only as
"set"/"changed"/"removed", and every embed stays inside Discord's limits (``bot.embeds.fit``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

import discord

from bot.audit_events import (
    SECRET_FIELDS,
    AuditEvent,
    EventKind,
    FieldChange,
    LogStatus,
    is_secret,
    sanitize,
    secret_word,
)
from bot.embeds import BRAND_COLOUR, FIELDS_MAX, escape, fit, page_footer, truncate, type_name
from bot.errors import render
from bot.i18n import N_, SOURCE, Tr

__all__ = [
    "API_KEY_ACTOR",
    "SECRET_FIELDS",
    "AuditEvent",
    "EventKind",
    "FieldChange",
    "LogStatus",
    "build_embed",
    "event_changes",
    "event_details",
    "event_sentence",
    "event_title",
    "history_embed",
    "log_status_text",
    "problem_text",
    "safe",
    "sanitize",
    "summary_line",
]

API_KEY_ACTOR: Final = N_("An API key")
NONE_SHOWN: Final = N_("*(none)*")


def safe(text: str, limit: int | None = None) -> str:
    """Untrusted text made inert: markdown escaped, mentions broken, optionally clipped."""
    escaped = escape(text)
    return escaped if limit is None else truncate(escaped, limit)


# --------------------------------------------------------------------------------------------------
# Words
# --------------------------------------------------------------------------------------------------

_LABELS: Final = {
    "redirect": N_("Redirect"),
    "type": N_("Type"),
    "title": N_("Title"),
    "description": N_("Description"),
    "image": N_("Image"),
    "color": N_("Colour"),
    "colour": N_("Colour"),
    "unlisted": N_("Unlisted"),
    "password": N_("Password"),
    "channel": N_("Channel"),
    "token": N_("Token"),
    "name": N_("Name"),
}

_TITLES: Final = {
    EventKind.LINK_CREATED: N_("Link created"),
    EventKind.LINK_EDITED: N_("Link edited"),
    EventKind.LINK_DELETED: N_("Link deleted"),
    EventKind.LINK_ADOPTED: N_("Link adopted"),
    EventKind.TOKEN_SET: N_("dsc.gg token set"),
    EventKind.TOKEN_CLEARED: N_("dsc.gg token removed"),
    EventKind.TOKEN_REJECTED: N_("dsc.gg token rejected"),
    EventKind.TOKEN_MALFORMED: N_("dsc.gg token not saved"),
    EventKind.MUTATION_REFUSED: N_("Change refused"),
    EventKind.LOG_CHANNEL_CHANGED: N_("Log channel changed"),
    EventKind.API_KEY_CREATED: N_("API key created"),
    EventKind.API_KEY_REVOKED: N_("API key revoked"),
}

_COLOURS: Final = {
    EventKind.LINK_CREATED: discord.Colour.green(),
    EventKind.LINK_EDITED: discord.Colour.blurple(),
    EventKind.LINK_DELETED: discord.Colour.red(),
    EventKind.LINK_ADOPTED: discord.Colour.teal(),
    EventKind.TOKEN_SET: discord.Colour.gold(),
    EventKind.TOKEN_CLEARED: discord.Colour.orange(),
    EventKind.TOKEN_REJECTED: discord.Colour.dark_red(),
    EventKind.TOKEN_MALFORMED: discord.Colour.dark_red(),
    EventKind.MUTATION_REFUSED: discord.Colour.dark_red(),
    EventKind.LOG_CHANNEL_CHANGED: discord.Colour.light_grey(),
    EventKind.API_KEY_CREATED: discord.Colour.gold(),
    EventKind.API_KEY_REVOKED: discord.Colour.orange(),
}

_KEY_KINDS: Final = (EventKind.API_KEY_CREATED, EventKind.API_KEY_REVOKED)

#: What a stored log-channel problem code means, for ``/dscgg status``.
_PROBLEMS: Final = {
    "channel_missing": N_("the log channel no longer exists"),
    "no_access": N_("I can no longer see the log channel"),
    "no_permission": N_("I'm no longer allowed to post in the log channel (Send Messages, Embed Links)"),
}

#: Stored words of a change's values, shown in the reader's language.
_VALUE_WORDS: Final = {
    "yes": N_("yes"),
    "no": N_("no"),
    "changed": N_("changed"),
    "removed": N_("removed"),
    "set": N_("set"),
}


def label(field_name: str, t: Tr = SOURCE) -> str:
    known = _LABELS.get(field_name.lower())
    if known is not None:
        return t._(known)
    return field_name.replace("_", " ").strip().capitalize() or t._("Field")


def actor_text(actor_id: int | None, t: Tr = SOURCE, key_name: str | None = None) -> str:
    """A mention of the user (rendered, never pinged) or "An API key (its name)" — never the key itself."""
    if actor_id is not None:
        return f"<@{actor_id}>"
    if key_name:
        return t._("An API key ({name})", name=safe(key_name, 100))
    return t._(API_KEY_ACTOR)


def timestamp(at: datetime, style: str = "f") -> str:
    if at.tzinfo is None:  # naive datetimes in this project are UTC
        at = at.replace(tzinfo=UTC)
    return f"<t:{int(at.timestamp())}:{style}>"


def link_text(slug: str | None) -> str:
    return f"**dsc.gg/{safe(slug, 130)}**" if slug else ""


def _channel(value: str | None, t: Tr) -> str:
    return f"<#{value}>" if value and value.isdigit() else t._("off")


def _refused_sentence(event: AuditEvent, who: str, link: str, t: Tr) -> str:
    action = (event.action or "").strip().lower()
    if not link:
        if action == "token set":
            return t._("{who} tried to set a dsc.gg token, but it was refused.", who=who)
        return t._("{who} tried to make a change, but it was refused.", who=who)
    match action:
        case "create":
            return t._("{who} tried to create {link}, but it was refused.", who=who, link=link)
        case "edit":
            return t._("{who} tried to edit {link}, but it was refused.", who=who, link=link)
        case "delete":
            return t._("{who} tried to delete {link}, but it was refused.", who=who, link=link)
        case "adopt":
            return t._("{who} tried to adopt {link}, but it was refused.", who=who, link=link)
    return t._("{who} tried to change {link}, but it was refused.", who=who, link=link)


def _api_key_sentence(event: AuditEvent, who: str, t: Tr) -> str:
    name = next((c.after or c.before for c in event.changes if c.field == "name"), None)
    created = event.kind is EventKind.API_KEY_CREATED
    if name is None:
        if created:
            return t._("{who} created an API key.", who=who)
        return t._("{who} revoked an API key.", who=who)
    if created:
        return t._("{who} created the API key **{name}**.", who=who, name=safe(name, 100))
    return t._("{who} revoked the API key **{name}**.", who=who, name=safe(name, 100))


def _sentence(event: AuditEvent, t: Tr) -> str:
    """What happened, in one sentence without the time."""
    who = actor_text(event.actor_id, t, event.actor_key)
    link = link_text(event.slug)
    shown = link or t._("a link")
    match event.kind:
        case EventKind.LINK_CREATED:
            return t._("{who} created {link}.", who=who, link=shown)
        case EventKind.LINK_EDITED:
            return t._("{who} edited {link}.", who=who, link=shown)
        case EventKind.LINK_DELETED:
            return t._("{who} deleted {link}.", who=who, link=shown)
        case EventKind.LINK_ADOPTED:
            return t._("{who} adopted {link}: this server now manages it.", who=who, link=shown)
        case EventKind.TOKEN_SET:
            return t._("{who} set this server's dsc.gg token.", who=who)
        case EventKind.TOKEN_CLEARED:
            return t._("{who} removed this server's dsc.gg token.", who=who)
        case EventKind.TOKEN_REJECTED:
            return t._("{who} tried to set a dsc.gg token, but dsc.gg rejected it.", who=who)
        case EventKind.TOKEN_MALFORMED:
            return t._(
                "{who} tried to set a dsc.gg token, but what was pasted isn't a dsc.gg API key, so it was "
                "neither sent to dsc.gg nor saved.",
                who=who,
            )
        case EventKind.MUTATION_REFUSED:
            return _refused_sentence(event, who, link, t)
        case EventKind.LOG_CHANNEL_CHANGED:
            after = next((c.after for c in event.changes if c.field == "channel"), None)
            if after is None:
                return t._("{who} turned the audit log off.", who=who)
            return t._("{who} set the audit log channel to {channel}.", who=who, channel=_channel(after, t))
        case EventKind.API_KEY_CREATED | EventKind.API_KEY_REVOKED:
            return _api_key_sentence(event, who, t)
    return f"{who} ({safe(str(event.kind), 60)})"  # pragma: no cover - new kinds


def problem_text(problem: str, t: Tr = SOURCE) -> str:
    """Words for a stored log-channel problem code (unknown codes are shown escaped, as stored)."""
    known = _PROBLEMS.get(problem)
    return t._(known) if known is not None else safe(problem, 200)


def reason_text(event: AuditEvent, t: Tr = SOURCE) -> str | None:
    """Why the change was refused, in ``t``'s language (markdown, untrusted parts escaped)."""
    if event.reason is None:
        return None
    if isinstance(event.reason, str):
        return event.reason  # a sentence stored by an older version, escaped when it was made
    return render(event.reason, t)


# --------------------------------------------------------------------------------------------------
# Embeds
# --------------------------------------------------------------------------------------------------


def _value(text: str | None, limit: int, t: Tr, field: str) -> str:
    if text is None or text == "":
        return t._(NONE_SHOWN)
    if field == "type":
        return type_name(text, t)
    word = _VALUE_WORDS.get(text.strip().lower()) if field == "unlisted" else None
    return t._(word) if word is not None else safe(text, limit)


def _change_value(kind: EventKind, change: FieldChange, t: Tr, limit: int = 1024) -> str:
    if is_secret(change.field):
        _, after = secret_word(change.before, change.after)
        if kind is EventKind.LINK_CREATED and after == "changed":
            return t._("set")
        return t._(_VALUE_WORDS.get(after or "removed", N_("removed")))
    if kind is EventKind.LOG_CHANNEL_CHANGED:
        return f"{_channel(change.before, t)} → {_channel(change.after, t)}"
    if kind in (EventKind.LINK_CREATED, EventKind.LINK_DELETED, *_KEY_KINDS) and change.before is None:
        return _value(change.after, limit, t, change.field)
    side = (limit - 3) // 2
    return f"{_value(change.before, side, t, change.field)} → {_value(change.after, side, t, change.field)}"


def build_embed(event: AuditEvent, t: Tr = SOURCE) -> discord.Embed:
    """The one embed posted for ``event``, in ``t``'s language (the server's, for the log channel)."""
    event = sanitize(event)
    title = _TITLES.get(event.kind)
    embed = discord.Embed(
        title=t._(title) if title else t._("Audit event"),
        description=f"{timestamp(event.at)} — {_sentence(event, t)}",
        colour=_COLOURS.get(event.kind, discord.Colour.default()),
    )
    reason = reason_text(event, t)
    changes = list(event.changes)
    room = FIELDS_MAX - (1 if reason else 0)
    if len(changes) > room:
        shown, hidden = changes[: room - 1], len(changes) - (room - 1)
    else:
        shown, hidden = changes, 0
    for change in shown:
        embed.add_field(
            name=safe(label(change.field, t)), value=_change_value(event.kind, change, t), inline=False
        )
    if hidden:
        embed.add_field(
            name=t._("More"),
            value=t.ngettext("…and {count} more change", "…and {count} more changes", hidden),
            inline=False,
        )
    if reason:
        # Markdown with its untrusted parts escaped already: not escaped again.
        embed.add_field(name=t._("Reason"), value=reason, inline=False)
    if event.actor_id is not None:
        embed.set_footer(text=t._("User ID {id}", id=event.actor_id))
    return fit(embed)


def summary_line(event: AuditEvent, t: Tr = SOURCE, *, limit: int = 200) -> str:
    """One line for ``/dscgg status``: relative time and what happened."""
    return truncate(f"{timestamp(event.at, 'R')} {_sentence(event, t)}", limit)


#: Characters one entry of a ``/dscgg audit`` page may take (ten of them fit in a description).
_ENTRY_MAX = 400


def event_title(kind: EventKind, t: Tr = SOURCE) -> str:
    """The title of the log channel's embed for this kind of event ("Link created")."""
    title = _TITLES.get(kind)
    return t._(title) if title else t._("Audit event")


def event_sentence(event: AuditEvent, t: Tr = SOURCE) -> str:
    """What happened, in the log channel's words, without the time (markdown, user text escaped)."""
    return _sentence(sanitize(event), t)


def event_details(event: AuditEvent, t: Tr = SOURCE) -> list[str]:
    """The lines under an event on a ``/dscgg audit`` page: what changed, or why it was refused."""
    event = sanitize(event)
    lines = []
    if event.changes and event.kind is not EventKind.LOG_CHANNEL_CHANGED:
        names = t.join(dict.fromkeys(safe(label(change.field, t)) for change in event.changes))
        if event.kind is EventKind.LINK_CREATED:
            lines.append(t._("Set: {fields}", fields=names))
        else:
            lines.append(t._("Changed: {fields}", fields=names))
    reason = reason_text(event, t)
    if reason:
        lines.append(t._("Reason: {reason}", reason=" ".join(reason.split())))
    return lines


def event_changes(event: AuditEvent, t: Tr = SOURCE) -> list[tuple[str, str]]:
    """Each change as the log channel's embed shows it: (field label, value or before → after)."""
    event = sanitize(event)
    return [(safe(label(change.field, t)), _change_value(event.kind, change, t)) for change in event.changes]


def _history_entry(event: AuditEvent, t: Tr) -> str:
    """An event on a ``/dscgg audit`` page: when and what, then what changed or why it was refused."""
    lines = [f"{timestamp(event.at)} — {event_sentence(event, t)}", *event_details(event, t)]
    return truncate("\n".join(lines), _ENTRY_MAX)


def history_embed(
    events: Sequence[AuditEvent], *, page: int, pages: int, total: int, t: Tr = SOURCE
) -> discord.Embed:
    """One page (1-based ``page`` of ``pages``) of ``/dscgg audit``: the server's events, newest first."""
    if events:
        description = "\n\n".join(_history_entry(event, t) for event in events)
    else:
        description = t._(
            "No changes recorded yet: link and token changes made through the bot, and refused ones, "
            "show up here."
        )
    embed = discord.Embed(title=t._("Audit log of this server"), description=description, colour=BRAND_COLOUR)
    items = t.ngettext("{count} event", "{count} events", total)
    embed.set_footer(text=t._("{footer} · newest first", footer=page_footer(page, pages, items, t)))
    return fit(embed)


# --------------------------------------------------------------------------------------------------
# /dscgg status
# --------------------------------------------------------------------------------------------------


def log_status_text(status: LogStatus, t: Tr = SOURCE, *, limit: int = 1024) -> str:
    """The "Audit log" field of ``/dscgg status`` (at most ``limit`` characters): channel or off, any
    problem, the latest events."""
    logs = t.command("dscgg logs", channel="")
    if status.channel_id is None:
        lines = [t._("Log channel: **off** (turn it on with {command})", command=logs)]
    else:
        channel = f"<#{status.channel_id}>"
        lines = [t._("Log channel: {channel}", channel=channel)]
    if status.problem and status.channel_id is not None:
        lines.append(
            t._(
                "⚠️ Posting failed: {problem}. Fix the channel's permissions or pick another one with "
                "{command}.",
                problem=problem_text(status.problem, t),
                command=logs,
            )
        )
    if status.recent:
        lines.append(t._("Latest changes:"))
        lines.extend(f"• {summary_line(event, t)}" for event in status.recent)
    else:
        lines.append(t._("No changes recorded yet."))
    text = ""
    for line in lines:
        candidate = f"{text}\n{line}" if text else line
        if len(candidate) > limit:
            return text if text else truncate(candidate, limit)
        text = candidate
    return text
