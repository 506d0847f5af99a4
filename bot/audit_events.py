"""Audit events as data: what changed, who did it, and why a change was refused (no words here).

``bot.audit`` stores and posts them; ``bot.audit_embeds`` turns them into embeds and lines in the
reader's language. Secret fields carry only "changed"/"removed", never a value (``sanitize``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Final

from bot.failures import Reason

__all__ = [
    "SECRET_FIELDS",
    "AuditEvent",
    "EventKind",
    "FieldChange",
    "LogStatus",
    "is_secret",
    "sanitize",
    "secret_word",
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
    """One changed field. Secret fields (the password) carry "changed"/"removed", never the value.

    Values are stored as given: booleans as "yes"/"no", link types by their value ("server").
    """

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
    #: For refusals: what was tried ("create", "edit", "delete", "adopt", "token set") and why, as data
    #: (``bot.failures.reason_of``), rendered in the language of whoever reads it. A plain string is a
    #: sentence stored by an older version (markdown, already escaped), shown as it is.
    action: str | None = None
    reason: Reason | str | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: The name of the API key that acted (with ``actor_id`` None); never the key or any part of it.
    actor_key: str | None = None


@dataclass(frozen=True, slots=True)
class LogStatus:
    """The audit log of one server as ``/dscgg status`` shows it (``AuditLog.status``): the log
    channel (None: off), the stored problem code of posting there, the latest events."""

    channel_id: int | None
    problem: str | None
    recent: tuple[AuditEvent, ...]


#: Fields whose values are never shown, only whether they were set, changed or removed.
SECRET_FIELDS: Final = frozenset({"password", "token", "api_key", "key"})


def is_secret(field_name: str) -> bool:
    return field_name.strip().lower() in SECRET_FIELDS


def secret_word(before: str | None, after: str | None) -> tuple[str | None, str | None]:
    """What a secret change may say: never a value, only changed/removed."""
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
        FieldChange(change.field, *secret_word(change.before, change.after))
        if is_secret(change.field)
        else change
        for change in event.changes
    )
    return replace(event, changes=changes)
