"""LinkService: what the /link, /top and /search commands do, without Discord.

Arguments arrive validated (``bot.validation``: ``create`` takes a ``NewLink``, ``edit`` a
``LinkChanges``), so every method starts by getting the server's token (NoToken / TokenUnreadable
before any request) and then talks to dsc.gg. Changes are recorded for the server
(``LinkRecordStore``, which feeds autocomplete and ``/link list``) and audited; refusals by dsc.gg
are audited as ``MUTATION_REFUSED`` and re-raised for the tree to explain.

A server manages only its own links: ``edit``, ``delete`` and ``info`` act on the links it created or
adopted through the bot (a record for that server and slug) and raise ``NotManagedHere`` for any other
before sending anything to dsc.gg, even when the server's token could change the link (two servers
may use one dsc.gg account). ``adopt`` brings a link under the server's management once dsc.gg
confirms that the token's account owns it and no other server manages it.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from bot.audit import AuditEvent, AuditLog, EventKind, FieldChange
from bot.db.links import Claim
from bot.dscgg import errors as api
from bot.dscgg.client import UNSET, UnsetType
from bot.dscgg.models import Link, LinkType
from bot.failures import (
    LinkNotOwned,
    ManagedElsewhere,
    NotManagedHere,
    OwnershipUnconfirmed,
    Reason,
    reason_of,
)
from bot.services.cache import SharedCache
from bot.validation import LinkChanges, NewLink, validate_redirect

if TYPE_CHECKING:
    from bot.db.links import LinkRecord, LinkRecordStore
    from bot.dscgg.client import DscggClient

__all__ = [
    "AdoptResult",
    "CreateResult",
    "DeleteResult",
    "EditResult",
    "LinkService",
    "RecordPage",
    "TokenSource",
]

log = logging.getLogger(__name__)


class TokenSource(Protocol):
    async def token_for(self, guild_id: int) -> str:
        """The guild's token; raises NoToken or TokenUnreadable."""
        ...


@dataclass(frozen=True, slots=True)
class CreateResult:
    link: Link
    #: Set when the link exists but its colour could not be applied: why (the renderer says it and
    #: how to apply the colour with /link edit).
    colour_problem: Reason | None = None


@dataclass(frozen=True, slots=True)
class EditResult:
    link: Link
    changes: tuple[FieldChange, ...]
    #: The fields taken off the link (``remove_*``), in option order.
    removed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DeleteResult:
    #: False when dsc.gg no longer had the link (nothing was deleted there).
    deleted: bool
    #: Whether the link was in this server's list (it is not any more).
    forgotten: bool


@dataclass(frozen=True, slots=True)
class AdoptResult:
    #: The link as dsc.gg shows it; None when it was already managed here (dsc.gg was not asked).
    link: Link | None
    #: False when this server already managed the link (nothing changed).
    adopted: bool


@dataclass(frozen=True, slots=True)
class RecordPage:
    records: Sequence[LinkRecord]
    page: int  # 0-based
    pages: int
    total: int


#: The embed's fields, as ``update_link`` and ``LinkMeta`` name them.
_META = ("title", "description", "image", "color")


def _tri(value: str | None, remove: bool) -> str | UnsetType | None:
    """What update_link gets for a field: None removes it, UNSET leaves it as it is."""
    if remove:
        return None
    return UNSET if value is None else value


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(getattr(value, "value", value))


class LinkService:
    def __init__(
        self,
        client: DscggClient,
        tokens: TokenSource,
        records: LinkRecordStore,
        audit: AuditLog,
        *,
        top_ttl: float = 60.0,
    ) -> None:
        self._client = client
        self._tokens = tokens
        self._records = records
        self._audit = audit
        #: /top answers per type, the same for every server: kept ``top_ttl`` s, one request at a time.
        self.top_cache: SharedCache[LinkType | None, tuple[Link, ...]] = SharedCache(top_ttl)

    # ---------------------------------------------------------------- helpers

    async def token_for(self, guild_id: int) -> str:
        """The guild's token (NoToken / TokenUnreadable); lets a command fail before asking anything."""
        return await self._tokens.token_for(guild_id)

    async def ensure_managed(self, guild_id: int, slug: str) -> None:
        """Raise NotManagedHere unless this server created or adopted ``slug`` through the bot.

        Local only (no dsc.gg call), so a command can refuse before asking anything else.
        """
        if not await self._records.manages(guild_id, slug):
            log.info("Guild %s refused link %s: not managed there", guild_id, slug)
            raise NotManagedHere(slug)

    async def _refused(
        self, guild_id: int, user_id: int, slug: str, action: str, error: BaseException
    ) -> None:
        """Audit a refusal (stored before it is raised). A failure to store it is logged, not raised:
        the admin must still read why the change was refused."""
        event = AuditEvent(
            guild_id=guild_id,
            kind=EventKind.MUTATION_REFUSED,
            actor_id=user_id,
            slug=slug,
            action=action,
            reason=reason_of(error, slug=slug),
        )
        try:
            await self._audit.record(event)
        except Exception:
            log.exception("Could not store the audit event of a refused %s in guild %s", action, guild_id)

    # ---------------------------------------------------------------- /link create

    async def create(self, guild_id: int, user_id: int, new: NewLink) -> CreateResult:
        """Create ``new.slug``; then apply its colour with a follow-up update (dsc.gg ignores it on
        create)."""
        slug, meta = new.slug, new.meta
        token = await self._tokens.token_for(guild_id)
        try:
            await self._client.create_link(
                slug,
                token=token,
                redirect=new.redirect,
                type=new.type,
                title=meta.title,
                description=meta.description,
                image=meta.image,
                unlisted=new.unlisted,
                password=meta.password,
            )
        except api.APIError as exc:
            await self._refused(guild_id, user_id, slug, "create", exc)
            raise
        log.info("Link %s created for guild %s by user %s", slug, guild_id, user_id)

        colour_problem: Reason | None = None
        color: str | None = None  # the colour known to be applied
        try:
            if meta.color is not None:
                try:
                    await self._client.update_link(slug, token=token, color=meta.color)
                    color = meta.color
                except api.DscggError as exc:
                    colour_problem = reason_of(exc, slug=slug)
                    log.info("Colour of new link %s not applied: %s", slug, type_name(exc))
        finally:
            # The link exists on dsc.gg whatever became of its colour (even if a shutdown cancelled
            # the follow-up): the server's record of it and the audit event are committed together.
            changes = [
                FieldChange("redirect", None, new.redirect),
                FieldChange("type", None, _text(new.type)),
            ]
            for name, value in (
                ("title", meta.title),
                ("description", meta.description),
                ("image", meta.image),
                ("color", color),
                ("unlisted", new.unlisted),
            ):
                if value is not None:
                    changes.append(FieldChange(name, None, _text(value)))
            if meta.password is not None:
                changes.append(FieldChange("password", None, "changed"))
            async with self._audit.transaction() as tx:
                await self._records.record(guild_id, slug, user_id, conn=tx.conn)
                await tx.record(
                    AuditEvent(
                        guild_id=guild_id,
                        kind=EventKind.LINK_CREATED,
                        actor_id=user_id,
                        slug=slug,
                        changes=tuple(changes),
                    )
                )

        link = await self._fetch_after_change(slug, token)
        if link is None:  # dsc.gg made it but will not show it right now: describe it from what we sent
            link = Link.model_validate(
                {
                    "id": slug,
                    "redirect": new.redirect,
                    "type": str(new.type),
                    "unlisted": bool(new.unlisted),
                    "meta": {
                        "title": meta.title,
                        "description": meta.description,
                        "image": meta.image,
                        "color": color,
                    },
                }
            )
        return CreateResult(link=link, colour_problem=colour_problem)

    async def _fetch_after_change(self, slug: str, token: str) -> Link | None:
        try:
            return await self._client.get_link(slug, token=token)
        except api.DscggError as exc:
            log.info("Could not read back link %s after changing it: %s", slug, type_name(exc))
            return None

    # ---------------------------------------------------------------- /link edit

    async def edit(self, guild_id: int, user_id: int, changes: LinkChanges) -> EditResult:
        """Send only the fields given; a removed field is sent as null, which dsc.gg stores as "not
        set" (for the password: no password any more).

        The link is read first, to check a new ``type`` against the current redirect and to audit
        before → after. A new redirect of another kind than the link's type also sends that type.
        """
        slug, redirect, type = changes.slug, changes.redirect, changes.type
        unlisted, removed = changes.unlisted, changes.removed
        token = await self._tokens.token_for(guild_id)
        await self.ensure_managed(guild_id, slug)
        before = await self._client.get_link(slug, token=token)

        send_type: LinkType | UnsetType = UNSET
        if changes.redirect_type is not None:
            kind = changes.redirect_type
            if type is not None or kind.value != before.type:
                send_type = kind
        elif type is not None:
            if before.redirect:
                validate_redirect(before.redirect, type)  # the current redirect must fit the new type
            send_type = type

        meta_args = {name: _tri(getattr(changes.meta, name), name in removed) for name in _META}
        password_arg = _tri(changes.meta.password, "password" in removed)

        try:
            await self._client.update_link(
                slug,
                token=token,
                redirect=redirect if redirect is not None else UNSET,
                type=send_type,
                title=meta_args["title"],
                description=meta_args["description"],
                image=meta_args["image"],
                color=meta_args["color"],
                unlisted=unlisted if unlisted is not None else UNSET,
                password=password_arg,
            )
        except api.APIError as exc:
            await self._refused(guild_id, user_id, slug, "edit", exc)
            raise
        log.info("Link %s edited for guild %s by user %s", slug, guild_id, user_id)

        audited: list[FieldChange] = []
        meta_update: dict[str, Any] = {}
        link_update: dict[str, Any] = {}
        if redirect is not None:
            audited.append(FieldChange("redirect", before.redirect or None, redirect))
            link_update["redirect"] = redirect
        if send_type is not UNSET:
            audited.append(FieldChange("type", before.type, send_type.value))
            link_update["type"] = send_type.value
        for name, value in meta_args.items():
            if value is not UNSET:  # None: removed
                audited.append(FieldChange(name, getattr(before.meta, name), value))
                meta_update[name] = value
        if unlisted is not None:
            audited.append(FieldChange("unlisted", _text(before.unlisted), _text(unlisted)))
            link_update["unlisted"] = unlisted
        if password_arg is not UNSET:
            audited.append(FieldChange("password", None, "removed" if password_arg is None else "changed"))
        async with self._audit.transaction() as tx:  # the record and its event, committed together
            await self._records.touch(guild_id, slug, user_id, conn=tx.conn)  # never creates a record
            await tx.record(
                AuditEvent(
                    guild_id=guild_id,
                    kind=EventKind.LINK_EDITED,
                    actor_id=user_id,
                    slug=slug,
                    changes=tuple(audited),
                )
            )
        if meta_update:
            link_update["meta"] = before.meta.model_copy(update=meta_update)
        return EditResult(link=before.model_copy(update=link_update), changes=tuple(audited), removed=removed)

    # ---------------------------------------------------------------- /link delete

    async def delete(self, guild_id: int, user_id: int, slug: str) -> DeleteResult:
        """Delete ``slug`` and forget it. A link dsc.gg no longer has is forgotten too, and the result
        says so (``deleted=False``) instead of raising NotFound. Raises NotManagedHere for a link this
        server does not manage."""
        token = await self._tokens.token_for(guild_id)
        await self.ensure_managed(guild_id, slug)
        try:
            await self._client.delete_link(slug, token=token)
        except api.NotFound:
            forgotten = await self._records.forget(guild_id, slug)
            if forgotten:
                log.info("Forgot record of %s in guild %s: dsc.gg no longer has it", slug, guild_id)
            return DeleteResult(deleted=False, forgotten=forgotten)
        except api.APIError as exc:
            await self._refused(guild_id, user_id, slug, "delete", exc)
            raise
        async with self._audit.transaction() as tx:  # forgotten and audited together
            forgotten = await self._records.forget(guild_id, slug, conn=tx.conn)
            await tx.record(
                AuditEvent(guild_id=guild_id, kind=EventKind.LINK_DELETED, actor_id=user_id, slug=slug)
            )
        log.info("Link %s deleted for guild %s by user %s", slug, guild_id, user_id)
        return DeleteResult(deleted=True, forgotten=forgotten)

    # ---------------------------------------------------------------- reading

    async def info(self, guild_id: int, slug: str) -> Link:
        """The link with its stats; NotManagedHere for a link this server does not manage."""
        token = await self._tokens.token_for(guild_id)
        await self.ensure_managed(guild_id, slug)
        return await self._client.get_link(slug, token=token, with_stats=True)

    # ---------------------------------------------------------------- /link adopt

    async def adopt(self, guild_id: int, user_id: int, slug: str) -> AdoptResult:
        """Bring an existing link under this server's management.

        Already managed here: ``adopted=False``, nothing asked. Managed by another server:
        ManagedElsewhere, nothing asked. Otherwise dsc.gg is asked who owns the link and whether that
        is the account behind this server's token (LinkNotOwned if not, OwnershipUnconfirmed if dsc.gg
        will not say); then it is recorded for this server (atomically: a server that got there first
        wins) and audited. NotFound and other dsc.gg errors propagate.
        """
        token = await self._tokens.token_for(guild_id)
        if await self._records.manages(guild_id, slug):
            return AdoptResult(link=None, adopted=False)
        try:
            if await self._records.managed_elsewhere(guild_id, slug):
                raise ManagedElsewhere(slug)
            try:
                link = await self._client.get_link(slug, token=token, with_stats=True)
            except api.PasswordProtected as exc:  # dsc.gg hides a protected link from all but its owner
                raise LinkNotOwned(slug) from exc
            owned = await self._token_owns(link, token)
            if owned is None:
                raise OwnershipUnconfirmed(slug)
            if not owned:
                raise LinkNotOwned(slug)
            async with self._audit.transaction() as tx:  # the record and its event, committed together
                claim = await self._records.claim(guild_id, slug, user_id, conn=tx.conn)
                if claim is Claim.CLAIMED:
                    await tx.record(
                        AuditEvent(
                            guild_id=guild_id, kind=EventKind.LINK_ADOPTED, actor_id=user_id, slug=slug
                        )
                    )
            if claim is Claim.ALREADY_HERE:
                return AdoptResult(link=link, adopted=False)
            if claim is Claim.ELSEWHERE:
                raise ManagedElsewhere(slug)
        except (ManagedElsewhere, LinkNotOwned, OwnershipUnconfirmed, api.APIError) as exc:
            if not isinstance(exc, api.NotFound):
                await self._refused(guild_id, user_id, slug, "adopt", exc)
            raise
        log.info("Link %s adopted for guild %s by user %s", slug, guild_id, user_id)
        return AdoptResult(link=link, adopted=True)

    async def _token_owns(self, link: Link, token: str) -> bool | None:
        """Whether the dsc.gg account behind ``token`` owns ``link``; None when dsc.gg won't tell.

        dsc.gg has no "whose key is this" call, but it returns an app's key only to that app's owner:
        the token belongs to the link's owner exactly when one of the owner's apps comes back with the
        token as its key. Listing the owner's apps is whitelist-only (OwnershipUnconfirmed with
        ``whitelist_only`` then). Keys are compared in constant time and never logged.
        """
        if link.owner_id is None:
            return None
        try:
            apps = await self._client.get_user_apps(link.owner_id, token=token)
        except api.WhitelistOnly:
            return await self._owns_by_unchanged_update(link, token)
        except api.NotFound:
            return False  # dsc.gg knows no such account: not the one behind a key it accepts
        unchecked = []
        for app in apps:
            if app.key is not None:
                if _same_secret(app.key.get_secret_value(), token):
                    return True
            else:
                unchecked.append(app)
        for app in unchecked[:MAX_APPS_CHECKED]:
            try:
                full = await self._client.get_app(app.id, token=token)
            except api.NotFound:
                continue
            if full.key is not None and _same_secret(full.key.get_secret_value(), token):
                return True
        return False if len(unchecked) <= MAX_APPS_CHECKED else None

    async def _owns_by_unchanged_update(self, link: Link, token: str) -> bool | None:
        """Ownership for apps that are not whitelisted: set the link's redirect to what it already is.

        dsc.gg checks ownership on every update (``owner_mismatch`` for anyone else), and for the owner
        nothing changes. None when the redirect is unknown, so there is nothing harmless to send.
        """
        if not link.redirect:
            return None
        try:
            await self._client.update_link(link.slug, token=token, redirect=link.redirect)
        except api.OwnerMismatch:
            return False
        return True

    async def suggest(self, guild_id: int, prefix: str, limit: int = 25) -> list[str]:
        """Slugs of this server's records matching ``prefix``, for autocomplete: local, no dsc.gg call."""
        return await self._records.search(guild_id, prefix, limit)

    async def list_records(self, guild_id: int, page: int, page_size: int = 10) -> RecordPage:
        """One page (0-based) of the links this server manages; clamped into range."""
        total = await self._records.count(guild_id)
        pages = max(1, -(-total // page_size))
        page = min(max(page, 0), pages - 1)
        records = await self._records.page(guild_id, page * page_size, page_size)
        return RecordPage(records=records, page=page, pages=pages, total=total)

    async def top(self, type: LinkType | None = None) -> list[Link]:
        """The top links; dsc.gg asks no token for these, so none is sent. Empty is ``[]``.

        Shared by every server (``top_cache``): while an answer is fresh nobody asks dsc.gg again,
        and servers asking at the same time wait for the same request.
        """

        async def fetch() -> tuple[Link, ...]:
            return tuple(await self._client.get_top_links(type=type))

        return list(await self.top_cache.get(type, fetch))

    async def search(
        self, guild_id: int, query: str, type: LinkType | None = None, limit: int | None = None
    ) -> list[Link]:
        """Search with the server's token (dsc.gg only allows whitelisted apps). Empty is ``[]``."""
        token = await self._tokens.token_for(guild_id)
        return await self._client.search_links(query, token=token, type=type, limit=limit)


#: Apps of the link's owner looked up one by one (``get_app``) at most, when the list hid their keys.
MAX_APPS_CHECKED = 5


def _same_secret(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def type_name(error: BaseException) -> str:
    """For logs: the error's class and code, never its message (which may quote user input)."""
    code = getattr(error, "code", None)
    return f"{type(error).__name__}({code})" if code else type(error).__name__
