"""Audit log of link and token changes: what changed, who did it, in the server's log channel.

Services call ``AuditLog.record`` after a change or a refused change. Recording never raises and never
delays the reply to the admin.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime


class EventKind(enum.StrEnum):
    LINK_CREATED = "link_created"
    LINK_EDITED = "link_edited"
    LINK_DELETED = "link_deleted"
    TOKEN_SET = "token_set"
    TOKEN_CLEARED = "token_cleared"
    TOKEN_REJECTED = "token_rejected"
    MUTATION_REFUSED = "mutation_refused"


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
    #: For refusals: what was tried ("create", "edit", "delete", "token set") and the friendly reason.
    action: str | None = None
    reason: str | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


class AuditLog:
    """Placeholder until the logging module lands: accepts events and drops them."""

    def record(self, event: AuditEvent) -> None:
        del event
