"""The HTTP API's request and response bodies (pydantic): the OpenAPI document comes from these.

JSON in snake_case; Discord ids (and every other id) are strings. Request models forbid unknown
fields, so a typo is a 422 naming the field instead of a silent no-op. Lengths mirror the slash
commands' option limits; the values are then checked by ``bot.validation`` like the commands do.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.dscgg.models import LinkType
from bot.errors import render
from bot.failures import Reason
from bot.i18n import SOURCE, Tr
from bot.validation import DESCRIPTION_MAX, IMAGE_MAX, PASSWORD_MAX, REDIRECT_MAX, TITLE_MAX

if TYPE_CHECKING:
    from bot.db.apikeys import ApiKeyRecord
    from bot.db.links import LinkRecord
    from bot.dscgg.models import Link
    from bot.services.server import ServerSummary, StoredEvent

Snowflake = Annotated[str, Field(pattern=r"^[0-9]{1,20}$", examples=["1190000000000000000"])]
SLUG_INPUT_MAX = 300


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    pass


# ------------------------------------------------------------------------------------------ links


class LinkCreate(_In):
    slug: str = Field(
        min_length=1, max_length=SLUG_INPUT_MAX, description="name, dsc.gg/name or the full link"
    )
    redirect: str = Field(min_length=1, max_length=REDIRECT_MAX + 2)
    type: LinkType | None = Field(default=None, description="worked out from the redirect when left out")
    title: str | None = Field(default=None, min_length=1, max_length=TITLE_MAX)
    description: str | None = Field(default=None, min_length=1, max_length=DESCRIPTION_MAX)
    image: str | None = Field(default=None, min_length=1, max_length=IMAGE_MAX + 2)
    color: str | None = Field(default=None, min_length=1, max_length=16, examples=["#5865F2"])
    unlisted: bool | None = None
    password: str | None = Field(default=None, min_length=1, max_length=PASSWORD_MAX)


class LinkPatch(_In):
    """Absent fields stay as they are; ``null`` removes title, description, image, color or password."""

    redirect: str | None = Field(default=None, min_length=1, max_length=REDIRECT_MAX + 2)
    type: LinkType | None = None
    title: str | None = Field(default=None, min_length=1, max_length=TITLE_MAX)
    description: str | None = Field(default=None, min_length=1, max_length=DESCRIPTION_MAX)
    image: str | None = Field(default=None, min_length=1, max_length=IMAGE_MAX + 2)
    color: str | None = Field(default=None, min_length=1, max_length=16)
    unlisted: bool | None = None
    password: str | None = Field(default=None, min_length=1, max_length=PASSWORD_MAX)


class LinkMetaOut(_Out):
    title: str | None
    description: str | None
    color: str | None
    image: str | None


class LinkStatsOut(_Out):
    clicks: int
    unique_clicks: int


class LinkOut(_Out):
    slug: str
    short_url: str
    redirect: str
    type: str
    domain: str
    owner_id: str | None
    created_at: datetime | None
    bumped_at: datetime | None
    unlisted: bool
    disabled: bool
    meta: LinkMetaOut
    stats: LinkStatsOut | None

    @classmethod
    def of(cls, link: Link) -> LinkOut:
        return cls(
            slug=link.slug,
            short_url=link.short_url,
            redirect=link.redirect,
            type=link.type,
            domain=link.domain,
            owner_id=None if link.owner_id is None else str(link.owner_id),
            created_at=link.created_at,
            bumped_at=link.bumped_at,
            unlisted=link.unlisted,
            disabled=link.disabled,
            meta=LinkMetaOut(
                title=link.meta.title,
                description=link.meta.description,
                color=link.meta.color,
                image=link.meta.image,
            ),
            stats=None
            if link.stats is None
            else LinkStatsOut(clicks=link.stats.clicks, unique_clicks=link.stats.unique_clicks),
        )


class LinkCreated(LinkOut):
    #: Set when the link exists but its colour could not be applied: why, and how to apply it.
    color_problem: str | None = Field(
        default=None,
        description="why the color was not set (for people, in the language of Accept-Language)",
    )


class ChangeOut(_Out):
    field: str
    before: str | None
    after: str | None


class LinkEdited(_Out):
    link: LinkOut
    changes: list[ChangeOut]


class LinkAdopted(_Out):
    adopted: bool = Field(description="false: the server already managed the link")
    link: LinkOut | None


class LinkRecordOut(_Out):
    slug: str
    created_by: str
    last_changed_by: str
    created_at: datetime
    changed_at: datetime

    @classmethod
    def of(cls, record: LinkRecord) -> LinkRecordOut:
        return cls(
            slug=record.slug,
            created_by=str(record.created_by),
            last_changed_by=str(record.last_touched_by),
            created_at=record.created_at,
            changed_at=record.touched_at,
        )


class LinkRecordPage(_Out):
    items: list[LinkRecordOut]
    total: int
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last")


class LinkList(_Out):
    items: list[LinkOut]


# ------------------------------------------------------------------------------------------ server


class TokenStatusOut(_Out):
    set: bool
    last4: str | None
    set_by: str | None
    set_at: datetime | None


class GuildOut(_Out):
    id: str
    dscgg_token: TokenStatusOut
    log_channel_id: str | None
    log_channel_problem: str | None
    links: int = Field(description="links this server manages")
    api_keys: int
    audit_events: int

    @classmethod
    def of(cls, summary: ServerSummary) -> GuildOut:
        token = summary.token
        settings = summary.settings
        return cls(
            id=str(summary.guild_id),
            dscgg_token=TokenStatusOut(
                set=token is not None,
                last4=(token.last4 or None) if token else None,
                set_by=str(token.set_by) if token else None,
                set_at=token.set_at if token else None,
            ),
            log_channel_id=None if settings.log_channel_id is None else str(settings.log_channel_id),
            log_channel_problem=settings.log_channel_problem,
            links=summary.links,
            api_keys=summary.api_keys,
            audit_events=summary.audit_events,
        )


class TokenSet(_In):
    token: str = Field(
        min_length=8,
        max_length=200,
        pattern=r"^[!-~]+$",
        description="the API key of your app at dsc.gg/developer",
    )


# ------------------------------------------------------------------------------------------ audit


class ActorOut(_Out):
    type: Literal["user", "api_key"]
    user_id: str | None
    api_key_name: str | None


class AuditEventOut(_Out):
    id: str
    kind: str
    actor: ActorOut
    slug: str | None
    changes: list[ChangeOut]
    action: str | None
    reason: str | None = Field(
        description="why it was refused, for people: in the language of the request's Accept-Language"
    )
    at: datetime

    @classmethod
    def of(cls, stored: StoredEvent, t: Tr = SOURCE) -> AuditEventOut:
        """The event; its ``reason`` (words for people) in ``t``'s language."""
        event = stored.event
        return cls(
            id=str(stored.id),
            kind=event.kind.value,
            actor=ActorOut(
                type="user" if event.actor_id is not None else "api_key",
                user_id=None if event.actor_id is None else str(event.actor_id),
                api_key_name=event.actor_key,
            ),
            slug=event.slug,
            changes=[ChangeOut(field=c.field, before=c.before, after=c.after) for c in event.changes],
            action=event.action,
            reason=event.reason if not isinstance(event.reason, Reason) else render(event.reason, t),
            at=event.at,
        )


class AuditEventPage(_Out):
    items: list[AuditEventOut]
    next_before: str | None = Field(description="pass as `before` for older events; null when none")


# ------------------------------------------------------------------------------------------ keys


class ApiKeyCreate(_In):
    name: str = Field(min_length=1, max_length=100, description="what the key is for, e.g. ci")


class ApiKeyOut(_Out):
    id: str
    name: str
    created_by: str
    created_at: datetime
    last_used_at: datetime | None

    @classmethod
    def of(cls, record: ApiKeyRecord) -> ApiKeyOut:
        return cls(
            id=str(record.id),
            name=record.name,
            created_by=str(record.created_by),
            created_at=record.created_at,
            last_used_at=record.last_used_at,
        )


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="the key itself: shown in this response only, never again")


class ApiKeyList(_Out):
    items: list[ApiKeyOut]
    limit: int


# ------------------------------------------------------------------------------------------ problems


class FieldError(_Out):
    location: str = Field(description="path, query, header or body")
    field: str
    detail: str
    pointer: str | None = None


class ProblemOut(_Out):
    """RFC 9457 problem details (``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str
    message: str | None = None
    errors: list[FieldError] | None = None


class Health(_Out):
    status: Literal["ok"]
