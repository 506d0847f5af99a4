"""Pure rendering of audit events: one embed per event, short lines for ``/dscgg status`` and the pages
of ``/dscgg audit``.

Nothing here touches the network or the database. Everything a user or dsc.gg typed is escaped once
(markdown and mentions), here; a refusal's ``reason`` is the sentence the admin read
(``bot.errors.audit_reason``), already markdown with its untrusted parts escaped, and is shown as it
is. Secret fields are shown only as "set"/"changed"/"removed", and every embed stays inside Discord's
limits (title 256, description 4096, field name 256, field value 1024, 25 fields, 6000 characters in
all), cutting with an ellipsis where it must.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

import discord

from bot.embeds import (
    BRAND_COLOUR,
    DESCRIPTION_MAX,
    EMBED_TOTAL_MAX,
    FIELD_NAME_MAX,
    FIELD_VALUE_MAX,
    FIELDS_MAX,
    TITLE_MAX,
    escape,
    truncate,
)

__all__ = [
    "API_KEY_ACTOR",
    "SECRET_FIELDS",
    "AuditEvent",
    "EventKind",
    "FieldChange",
    "build_embed",
    "embed_size",
    "event_changes",
    "event_details",
    "event_sentence",
    "event_title",
    "history_embed",
    "problem_text",
    "safe",
    "sanitize",
    "summary_line",
]


class EventKind(enum.StrEnum):
    LINK_CREATED = "link_created"
    LINK_EDITED = "link_edited"
    LINK_DELETED = "link_deleted"
    #: An existing link brought under this server's management (``/link adopt``).
    LINK_ADOPTED = "link_adopted"
    TOKEN_SET = "token_set"
    TOKEN_CLEARED = "token_cleared"
    TOKEN_REJECTED = "token_rejected"
    #: What was pasted into ``/dscgg token set`` cannot be a dsc.gg key: refused before asking dsc.gg.
    TOKEN_MALFORMED = "token_malformed"
    MUTATION_REFUSED = "mutation_refused"
    #: The log channel itself was set, changed or turned off (``changes``: one "channel" change).
    LOG_CHANNEL_CHANGED = "log_channel_changed"
    #: An HTTP API key was created or revoked (``changes``: its "name"; never the key).
    API_KEY_CREATED = "api_key_created"
    API_KEY_REVOKED = "api_key_revoked"


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One changed field. Secret fields (the password) carry "changed"/"removed", never the value."""

    field: str
    before: str | None
    after: str | None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    guild_id: int
    kind: EventKind
    #: The Discord user who acted; None when an API key acted (shown as "An API key").
    actor_id: int | None
    slug: str | None = None
    changes: tuple[FieldChange, ...] = ()
    #: For refusals: what was tried ("create", "edit", "delete", "adopt", "token set") and the friendly
    #: reason. ``reason`` is the sentence the admin read (``bot.errors.audit_reason``): markdown whose
    #: untrusted parts are already escaped, so it is shown without escaping it again.
    action: str | None = None
    reason: str | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: The name of the API key that acted (with ``actor_id`` None); never the key or any part of it.
    actor_key: str | None = None


# --------------------------------------------------------------------------------------------------
# Limits and text hygiene
# --------------------------------------------------------------------------------------------------

API_KEY_ACTOR: Final = "An API key"
#: Fields whose values are never shown, only whether they were set, changed or removed.
SECRET_FIELDS: Final = frozenset({"password", "token", "api_key", "key"})
NONE_SHOWN: Final = "*(none)*"


def safe(text: str, limit: int | None = None) -> str:
    """Untrusted text made inert: markdown escaped, mentions broken, optionally clipped."""
    escaped = escape(text)
    return escaped if limit is None else truncate(escaped, limit)


def is_secret(field_name: str) -> bool:
    return field_name.strip().lower() in SECRET_FIELDS


def _secret_word(before: str | None, after: str | None) -> tuple[str | None, str | None]:
    """What a secret change may say: never a value, only set/changed/removed."""
    del before  # the old secret is as secret as the new one
    if after is None or after.strip().lower() == "removed":
        return (None, "removed")
    return (None, "changed")


def sanitize(event: AuditEvent) -> AuditEvent:
    """The event with every secret field's values replaced by "changed"/"removed".

    Services already pass those words; this makes sure a mistake upstream cannot leak a password
    into the database or a log channel.
    """
    if not any(is_secret(change.field) for change in event.changes):
        return event
    changes = tuple(
        FieldChange(change.field, *_secret_word(change.before, change.after))
        if is_secret(change.field)
        else change
        for change in event.changes
    )
    return AuditEvent(
        guild_id=event.guild_id,
        kind=event.kind,
        actor_id=event.actor_id,
        slug=event.slug,
        changes=changes,
        action=event.action,
        reason=event.reason,
        at=event.at,
        actor_key=event.actor_key,
    )


# --------------------------------------------------------------------------------------------------
# Words
# --------------------------------------------------------------------------------------------------

_LABELS: Final = {
    "redirect": "Redirect",
    "type": "Type",
    "title": "Title",
    "description": "Description",
    "image": "Image",
    "color": "Colour",
    "colour": "Colour",
    "unlisted": "Unlisted",
    "password": "Password",
    "channel": "Channel",
    "token": "Token",
    "name": "Name",
}

_TITLES: Final = {
    EventKind.LINK_CREATED: "Link created",
    EventKind.LINK_EDITED: "Link edited",
    EventKind.LINK_DELETED: "Link deleted",
    EventKind.LINK_ADOPTED: "Link adopted",
    EventKind.TOKEN_SET: "dsc.gg token set",
    EventKind.TOKEN_CLEARED: "dsc.gg token removed",
    EventKind.TOKEN_REJECTED: "dsc.gg token rejected",
    EventKind.TOKEN_MALFORMED: "dsc.gg token not saved",
    EventKind.MUTATION_REFUSED: "Change refused",
    EventKind.LOG_CHANNEL_CHANGED: "Log channel changed",
    EventKind.API_KEY_CREATED: "API key created",
    EventKind.API_KEY_REVOKED: "API key revoked",
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
    "channel_missing": "the log channel no longer exists",
    "no_access": "I can no longer see the log channel",
    "no_permission": "I'm no longer allowed to post in the log channel (Send Messages, Embed Links)",
}


def label(field_name: str) -> str:
    return _LABELS.get(field_name.lower(), field_name.replace("_", " ").strip().capitalize() or "Field")


def actor_text(actor_id: int | None, key_name: str | None = None) -> str:
    """A mention of the user (rendered, never pinged) or "An API key (its name)" — never the key itself."""
    if actor_id is not None:
        return f"<@{actor_id}>"
    return f"{API_KEY_ACTOR} ({safe(key_name, 100)})" if key_name else API_KEY_ACTOR


def timestamp(at: datetime, style: str = "f") -> str:
    if at.tzinfo is None:  # naive datetimes in this project are UTC
        at = at.replace(tzinfo=UTC)
    return f"<t:{int(at.timestamp())}:{style}>"


def link_text(slug: str | None) -> str:
    return f"**dsc.gg/{safe(slug, 130)}**" if slug else "a link"


def _channel(value: str | None) -> str:
    return f"<#{value}>" if value and value.isdigit() else "off"


def _sentence(event: AuditEvent) -> str:
    """What happened, in one sentence without the time."""
    who = actor_text(event.actor_id, event.actor_key)
    link = link_text(event.slug)
    match event.kind:
        case EventKind.LINK_CREATED:
            return f"{who} created {link}."
        case EventKind.LINK_EDITED:
            return f"{who} edited {link}."
        case EventKind.LINK_DELETED:
            return f"{who} deleted {link}."
        case EventKind.LINK_ADOPTED:
            return f"{who} adopted {link}: this server now manages it."
        case EventKind.TOKEN_SET:
            return f"{who} set this server's dsc.gg token."
        case EventKind.TOKEN_CLEARED:
            return f"{who} removed this server's dsc.gg token."
        case EventKind.TOKEN_REJECTED:
            return f"{who} tried to set a dsc.gg token, but dsc.gg rejected it."
        case EventKind.TOKEN_MALFORMED:
            return (
                f"{who} tried to set a dsc.gg token, but what was pasted isn't a dsc.gg API key, "
                "so it was neither sent to dsc.gg nor saved."
            )
        case EventKind.MUTATION_REFUSED:
            action = safe(event.action or "change", 60)
            target = f" {link}" if event.slug else ""
            return f"{who} tried to {action}{target}, but it was refused."
        case EventKind.LOG_CHANNEL_CHANGED:
            after = next((c.after for c in event.changes if c.field == "channel"), None)
            if after is None:
                return f"{who} turned the audit log off."
            return f"{who} set the audit log channel to {_channel(after)}."
        case EventKind.API_KEY_CREATED | EventKind.API_KEY_REVOKED:
            name = next((c.after or c.before for c in event.changes if c.field == "name"), None)
            what = f"the API key **{safe(name, 100)}**" if name else "an API key"
            done = "created" if event.kind is EventKind.API_KEY_CREATED else "revoked"
            return f"{who} {done} {what}."
    return f"{who} did something ({safe(str(event.kind), 60)})."  # pragma: no cover - new kinds


def problem_text(problem: str) -> str:
    """Words for a stored log-channel problem code (unknown codes are shown escaped, as stored)."""
    return _PROBLEMS.get(problem, safe(problem, 200))


# --------------------------------------------------------------------------------------------------
# Embeds
# --------------------------------------------------------------------------------------------------


def _value(text: str | None, limit: int) -> str:
    return NONE_SHOWN if text is None or text == "" else safe(text, limit)


def _change_value(kind: EventKind, change: FieldChange, limit: int = FIELD_VALUE_MAX) -> str:
    if is_secret(change.field):
        _, after = _secret_word(change.before, change.after)
        if kind is EventKind.LINK_CREATED and after == "changed":
            return "set"
        return after or "removed"
    if kind is EventKind.LOG_CHANNEL_CHANGED:
        return f"{_channel(change.before)} → {_channel(change.after)}"
    if kind in (EventKind.LINK_CREATED, EventKind.LINK_DELETED, *_KEY_KINDS) and change.before is None:
        return _value(change.after, limit)
    side = (limit - 3) // 2
    return f"{_value(change.before, side)} → {_value(change.after, side)}"


def embed_size(embed: discord.Embed) -> int:
    """Characters Discord counts towards the 6000 limit."""
    total = len(embed.title or "") + len(embed.description or "")
    total += len(embed.footer.text or "") + len(embed.author.name or "")
    return total + sum(len(f.name or "") + len(f.value or "") for f in embed.fields)


def _fit(embed: discord.Embed) -> discord.Embed:
    """Shrink the longest field texts (names or values) until the whole embed fits in 6000 characters."""
    floor = 16
    excess = embed_size(embed) - EMBED_TOTAL_MAX
    while excess > 0 and embed.fields:
        texts = [(len(f.value or ""), i, "value") for i, f in enumerate(embed.fields)]
        texts += [(len(f.name or ""), i, "name") for i, f in enumerate(embed.fields)]
        length, index, part = max(texts)
        if length <= floor:
            break
        target = embed.fields[index]
        name, value = target.name or "\u200b", target.value or "\u200b"
        if part == "value":
            value = truncate(value, max(floor, length - excess))
        else:
            name = truncate(name, max(floor, length - excess))
        embed.set_field_at(index, name=name, value=value, inline=target.inline)
        excess = embed_size(embed) - EMBED_TOTAL_MAX
    if excess > 0:  # pragma: no cover - only with an absurd description
        embed.description = truncate(embed.description or "", max(1, len(embed.description or "") - excess))
    return embed


def build_embed(event: AuditEvent) -> discord.Embed:
    """The one embed posted for ``event``."""
    event = sanitize(event)
    embed = discord.Embed(
        title=truncate(_TITLES.get(event.kind, "Audit event"), TITLE_MAX),
        description=truncate(f"{timestamp(event.at)} — {_sentence(event)}", DESCRIPTION_MAX),
        colour=_COLOURS.get(event.kind, discord.Colour.default()),
    )
    changes = list(event.changes)
    room = FIELDS_MAX - (1 if event.reason else 0)
    if len(changes) > room:
        shown, hidden = changes[: room - 1], len(changes) - (room - 1)
    else:
        shown, hidden = changes, 0
    for change in shown:
        embed.add_field(
            name=truncate(safe(label(change.field)), FIELD_NAME_MAX),
            value=truncate(_change_value(event.kind, change), FIELD_VALUE_MAX),
            inline=False,
        )
    if hidden:
        embed.add_field(name="More", value=f"…and {hidden} more changes", inline=False)
    if event.reason:
        # Already markdown with its untrusted parts escaped (see AuditEvent.reason): not escaped again.
        embed.add_field(name="Reason", value=truncate(event.reason, FIELD_VALUE_MAX), inline=False)
    if event.actor_id is not None:
        embed.set_footer(text=f"User ID {event.actor_id}")
    return _fit(embed)


def summary_line(event: AuditEvent, *, limit: int = 200) -> str:
    """One line for ``/dscgg status``: relative time and what happened."""
    return truncate(f"{timestamp(event.at, 'R')} {_sentence(event)}", limit)


#: Characters one entry of a ``/dscgg audit`` page may take (ten of them fit in a description).
_ENTRY_MAX = 400


def event_title(kind: EventKind) -> str:
    """The title of the log channel's embed for this kind of event ("Link created")."""
    return _TITLES.get(kind, "Audit event")


def event_sentence(event: AuditEvent) -> str:
    """What happened, in the log channel's words, without the time (markdown, user text escaped)."""
    return _sentence(sanitize(event))


def event_details(event: AuditEvent) -> list[str]:
    """The lines under an event on a ``/dscgg audit`` page: what changed, or why it was refused."""
    event = sanitize(event)
    lines = []
    if event.changes and event.kind is not EventKind.LOG_CHANNEL_CHANGED:
        names = ", ".join(dict.fromkeys(safe(label(change.field)) for change in event.changes))
        lines.append(f"{'Set' if event.kind is EventKind.LINK_CREATED else 'Changed'}: {names}")
    if event.reason:
        lines.append(f"Reason: {' '.join(event.reason.split())}")
    return lines


def event_changes(event: AuditEvent) -> list[tuple[str, str]]:
    """Each change as the log channel's embed shows it: (field label, value or before → after)."""
    event = sanitize(event)
    return [(safe(label(change.field)), _change_value(event.kind, change)) for change in event.changes]


def _history_entry(event: AuditEvent) -> str:
    """An event on a ``/dscgg audit`` page: when and what, then what changed or why it was refused."""
    lines = [f"{timestamp(event.at)} — {event_sentence(event)}", *event_details(event)]
    return truncate("\n".join(lines), _ENTRY_MAX)


def history_embed(events: Sequence[AuditEvent], *, page: int, pages: int, total: int) -> discord.Embed:
    """One page (1-based ``page`` of ``pages``) of ``/dscgg audit``: the server's events, newest first."""
    if events:
        description = "\n\n".join(_history_entry(event) for event in events)
    else:
        description = (
            "No changes recorded yet: link and token changes made through the bot, and refused ones, "
            "show up here."
        )
    embed = discord.Embed(
        title="Audit log of this server",
        description=truncate(description, DESCRIPTION_MAX),
        colour=BRAND_COLOUR,
    )
    noun = "event" if total == 1 else "events"
    embed.set_footer(text=f"Page {page}/{pages} · {total} {noun} · newest first")
    return embed
