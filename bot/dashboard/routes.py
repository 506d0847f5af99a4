"""The dashboard's pages. Thin: check the visitor (``pages``), validate like the slash commands
(``bot.validation``), call one service, render a template. A form post that works leaves a message for
the next page and redirects (303); one that is refused shows the same page again, with the sentence the
slash command would have said (``bot.errors.describe``) and what was typed (never a password or key).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot.audit_embeds import EventKind, event_changes, event_details, event_sentence, event_title
from bot.dashboard.oauth import OAuthError, OAuthFailure
from bot.dashboard.pages import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    PageError,
    PageRoute,
    ServerVisit,
    clear_cookie,
    cookie_path,
    dashboard,
    login_link,
    names_of,
    read_form,
    reader,
    redirect,
    render,
    safe_next,
    server_visit,
    set_cookie,
    visit,
)
from bot.dashboard.sessions import IDLE, LOGIN_TTL
from bot.db.tokens import TokenUnreadable as StoredTokenUnreadable
from bot.dscgg.errors import DscggError, RateLimited, Unavailable
from bot.errors import BotError, DiscordUnavailable, InvalidInput, NothingToChange, describe
from bot.failures import Invalid, reason_of
from bot.i18n import Tr
from bot.validation import link_change_options, new_link_options, normalize_slug

if TYPE_CHECKING:
    from bot.db.links import LinkRecord

__all__ = ["router"]

log = logging.getLogger(__name__)

router = APIRouter(route_class=PageRoute, include_in_schema=False)

#: Failures a form shows in words (everything else is a bug: the 500 page).
KNOWN = (BotError, DscggError, StoredTokenUnreadable)
#: Links per page of the Links tab; records read at most (sorted in memory).
LINKS_PER_PAGE: Final = 100
MAX_RECORDS: Final = 5000
#: Audit events per page.
AUDIT_PER_PAGE: Final = 25
_SORTS: Final = ("slug", "created", "changed", "creator")
_LINK_FIELDS: Final = ("redirect", "title", "description", "image", "color")
#: The types a form offers, as the slash commands' choices do.
TYPES: Final = ("server", "bot", "template")


def _status(error: BaseException) -> int:
    if isinstance(error, InvalidInput | NothingToChange):
        return 422
    if isinstance(error, RateLimited):
        return 429
    if isinstance(error, Unavailable | DiscordUnavailable):
        return 503
    return 409


#: Refusals whose way out is setting the server's dsc.gg token (the page links to Settings).
_TOKEN_FIXES: Final = frozenset({"no_token", "token_unreadable", "dscgg.invalid_key", "dscgg.owner_mismatch"})


def _refusal(error: BaseException, t: Tr) -> dict[str, Any]:
    """What a page shows about a refused form: the sentence (in the reader's language), and the field
    it is about."""
    field = error.field if isinstance(error, InvalidInput) else None
    fixed_in_settings = reason_of(error).code in _TOKEN_FIXES
    return {"error": describe(error, t=t), "error_field": field, "token_fix": fixed_in_settings}


def _optional(form: dict[str, str], name: str) -> str | None:
    value = form.get(name, "")
    return value if value.strip() else None


def _create_options(form: dict[str, str]) -> dict[str, Any]:
    """The create form's values: an empty field is not given (the slug and the redirect, which a link
    needs, are given empty), nor is the type when the form leaves it to the redirect."""
    return {
        "slug": form.get("slug", ""),
        "redirect": form.get("redirect", ""),
        "type": form.get("type") or None,
        **{name: _optional(form, name) for name in ("title", "description", "image", "color")},
        "unlisted": True if form.get("unlisted") else None,
        "password": form.get("password") or None,
    }


# ------------------------------------------------------------------------------------------ assets


@router.get("/assets/{name}")
async def asset(request: Request, name: str) -> Response:
    dash = dashboard(request)
    found = dash.assets.get(name)
    if found is None:
        raise PageError(404)
    response = Response(found.body, media_type=found.media_type)
    fresh = request.query_params.get("v") == found.version
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable" if fresh else "no-cache"
    return response


# ------------------------------------------------------------------------------------------ logging in


@router.get("/")
async def home(request: Request) -> Response:
    """The server picker: servers the user may manage, with the bot (open) or without (add it)."""
    seen = await visit(request)
    dash = seen.dashboard
    managed = [guild for guild in seen.login.guilds if guild.manages]
    present = await asyncio.gather(
        *(dash.api.identities.bot_present(guild.id) for guild in managed), return_exceptions=True
    )
    with_bot = [guild for guild, here in zip(managed, present, strict=True) if here is True]
    without_bot = [guild for guild, here in zip(managed, present, strict=True) if here is False]
    unknown = any(not isinstance(here, bool) for here in present)
    assert dash.oauth is not None
    invites = {guild.id: dash.oauth.invite_url(guild.id) for guild in without_bot}
    return await render(
        request,
        "servers.html",
        seen=seen,
        with_bot=sorted(with_bot, key=lambda g: g.name.lower()),
        without_bot=sorted(without_bot, key=lambda g: g.name.lower()),
        invites=invites,
        unknown=unknown,
    )


@router.get("/auth/login")
async def login(request: Request) -> Response:
    dash = dashboard(request)
    if dash.oauth is None:
        raise PageError(503, "setup.html")
    next_path = safe_next(request.query_params.get("next"))
    state, cookie = await dash.sessions.begin_login(next_path)
    set_cookie(request, LOGIN_COOKIE, cookie, max_age=LOGIN_TTL, path=cookie_path(request))
    return RedirectResponse(dash.oauth.authorize_url(dash.redirect_uri, state), status_code=303)


@router.get("/auth/callback")
async def callback(request: Request) -> Response:
    dash = dashboard(request)
    if dash.oauth is None:
        raise PageError(503, "setup.html")
    query = request.query_params
    pending = await dash.sessions.pending_login(request.cookies.get(LOGIN_COOKIE), query.get("state"))
    clear_cookie(request, LOGIN_COOKIE, path=cookie_path(request))
    try:
        if pending is None:
            raise OAuthError(OAuthFailure.STATE)
        if query.get("error") or not query.get("code"):
            raise OAuthError(OAuthFailure.DENIED)
        grant = await dash.oauth.exchange(query["code"], dash.redirect_uri)
        token = grant.access_token.get_secret_value()
        try:
            who = await dash.api.identities.login(token)
        except Exception as exc:
            raise OAuthError(OAuthFailure.UNAVAILABLE) from exc
        previous = await dash.sessions.resume(request.cookies.get(SESSION_COOKIE))
        if previous is not None:  # a new login replaces this browser's session
            await dash.sessions.end(previous)
        cookie = await dash.sessions.start(who.user_id, token, grant.expires_in)
    except OAuthError as exc:
        status = 502 if exc.failure is OAuthFailure.UNAVAILABLE else 400
        return await render(
            request,
            "login_failed.html",
            status=status,
            failure=exc.failure.value,
            login_url=login_link(request, "/"),
        )
    set_cookie(request, SESSION_COOKIE, cookie, max_age=int(IDLE.total_seconds()), path=cookie_path(request))
    return redirect(request, pending.next)


@router.get("/auth/logout")
async def logout_page(request: Request) -> Response:
    seen = await visit(request)
    return await render(request, "logout.html", seen=seen)


@router.post("/auth/logout")
async def logout(request: Request) -> Response:
    seen = await visit(request)
    await read_form(seen)
    await seen.dashboard.sessions.end(seen.session)
    clear_cookie(request, SESSION_COOKIE, path=cookie_path(request))
    if seen.dashboard.oauth is not None:
        await seen.dashboard.oauth.revoke(seen.session.access_token)
    return redirect(request, "/?logged_out=1")


# ------------------------------------------------------------------------------------------ links


def _sort(request: Request) -> tuple[str, bool]:
    sort = request.query_params.get("sort", "slug")
    if sort not in _SORTS:
        sort = "slug"
    descending = (
        request.query_params.get("dir", "desc" if sort in ("created", "changed") else "asc") == "desc"
    )
    return sort, descending


async def _links_page(
    seen: ServerVisit, *, status: int = 200, values: dict[str, str] | None = None, **context: Any
) -> Response:
    request = seen.request
    page = await seen.dashboard.bot.links.list_records(seen.guild_id, 0, MAX_RECORDS)
    # The creators' names (a server has few), also for sorting by them.
    names = await seen.dashboard.directory.user_names(names_of(r.created_by for r in page.records))
    sort, descending = _sort(request)
    keys: dict[str, Callable[[LinkRecord], Any]] = {
        "slug": lambda r: r.slug.lower(),
        "created": lambda r: r.created_at,
        "changed": lambda r: r.touched_at,
        "creator": lambda r: (names.get(r.created_by, "\uffff").lower(), r.created_by),
    }
    records = sorted(page.records, key=keys[sort], reverse=descending)
    pages = max(1, -(-len(records) // LINKS_PER_PAGE))
    try:
        number = min(max(int(request.query_params.get("page", "1")), 1), pages)
    except ValueError:
        number = 1
    shown = records[(number - 1) * LINKS_PER_PAGE : number * LINKS_PER_PAGE]
    return await render(
        request,
        "links.html",
        status=status,
        seen=seen,
        tab="links",
        records=shown,
        total=page.total,
        names=names,
        sort=sort,
        descending=descending,
        page=number,
        pages=pages,
        values=values or {},
        open_form=values is not None,
        types=TYPES,
        **context,
    )


@router.get("/servers/{guild_id}")
async def links_tab(request: Request, guild_id: str) -> Response:
    return await _links_page(await server_visit(request, guild_id))


@router.post("/servers/{guild_id}/links")
async def create_link(request: Request, guild_id: str) -> Response:
    seen = await server_visit(request, guild_id)
    form = await read_form(seen)
    try:
        new = new_link_options(**_create_options(form))
        result = await seen.dashboard.bot.links.create(seen.guild_id, seen.user_id, new)
    except KNOWN as error:
        kept = {name: value for name, value in form.items() if name not in ("password", "csrf")}
        return await _links_page(
            seen, status=_status(error), values=kept, **_refusal(error, reader(seen.request))
        )
    await seen.dashboard.sessions.flash(
        seen.session,
        {
            "kind": "link_created",
            "slug": result.link.slug,
            "password": new.meta.password is not None,
            "colour_problem": None if result.colour_problem is None else result.colour_problem.to_json(),
        },
    )
    return redirect(request, f"/servers/{seen.guild_id}")


def _slug_or_404(seen: ServerVisit, raw: str) -> str:
    try:
        return normalize_slug(raw)
    except InvalidInput:
        raise PageError(404, user=seen.user, csrf=seen.session.csrf, server=seen.guild) from None


def _link_values(link: Any) -> dict[str, str]:
    meta = link.meta
    return {
        "redirect": link.redirect or "",
        "type": str(link.type or ""),
        "title": meta.title or "",
        "description": meta.description or "",
        "image": meta.image or "",
        "color": meta.color or "",
        "unlisted": "1" if link.unlisted else "",
    }


@router.get("/servers/{guild_id}/links/{slug}")
async def link_page(request: Request, guild_id: str, slug: str) -> Response:
    seen = await server_visit(request, guild_id)
    name = _slug_or_404(seen, slug)
    try:
        link = await seen.dashboard.bot.links.info(seen.guild_id, name)
    except KNOWN as error:
        return await render(
            request, "link.html", status=_status(error), seen=seen, tab="links", slug=name, link=None,
            values={}, orig={}, **_refusal(error, reader(seen.request)),
        )  # fmt: skip
    values = _link_values(link)
    return await render(
        request, "link.html", seen=seen, tab="links", slug=name, link=link, values=values, orig=values,
        error=None, error_field=None,
    )  # fmt: skip


def _edit_options(form: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
    """What the edit form changes: each field that differs from the value the form was shown with
    (``orig_<field>``); a field emptied is removed (the redirect, which a link always has, is given
    empty). The password: a new one, the remove box, or both (refused, as by ``/link edit``)."""
    given: dict[str, Any] = {}
    removed: set[str] = set()
    for name in _LINK_FIELDS:
        new, old = form.get(name, "").strip(), form.get(f"orig_{name}", "").strip()
        if new == old:
            continue
        if new or name == "redirect":
            given[name] = new
        else:
            removed.add(name)
    if form.get("type", "") != form.get("orig_type", "") and form.get("type"):
        given["type"] = form["type"]
    unlisted = bool(form.get("unlisted"))
    if unlisted != bool(form.get("orig_unlisted")):
        given["unlisted"] = unlisted
    if form.get("remove_password"):
        removed.add("password")
    if form.get("password"):
        given["password"] = form["password"]
    return given, removed


@router.post("/servers/{guild_id}/links/{slug}")
async def edit_link(request: Request, guild_id: str, slug: str) -> Response:
    seen = await server_visit(request, guild_id)
    name = _slug_or_404(seen, slug)
    form = await read_form(seen)
    try:
        given, removed = _edit_options(form)
        changes = link_change_options(slug=name, removed=removed, **given)
        result = await seen.dashboard.bot.links.edit(seen.guild_id, seen.user_id, changes)
    except KNOWN as error:
        values = {key: value for key, value in form.items() if not key.startswith("orig_")}
        values.pop("password", None)
        orig = {key.removeprefix("orig_"): value for key, value in form.items() if key.startswith("orig_")}
        return await render(
            request, "link.html", status=_status(error), seen=seen, tab="links", slug=name, link=None,
            values=values, orig=orig, **_refusal(error, reader(seen.request)),
        )  # fmt: skip
    fields = [change.field for change in result.changes]
    await seen.dashboard.sessions.flash(
        seen.session, {"kind": "link_edited", "slug": name, "fields": fields, "removed": list(result.removed)}
    )
    return redirect(request, f"/servers/{seen.guild_id}/links/{name}")


@router.get("/servers/{guild_id}/links/{slug}/card")
async def link_card(request: Request, guild_id: str, slug: str) -> Response:
    """The dsc.gg data of one row of the Links tab (loaded by the page's script, row by row)."""
    seen = await server_visit(request, guild_id)
    name = _slug_or_404(seen, slug)
    try:
        link = await seen.dashboard.bot.links.info(seen.guild_id, name)
    except KNOWN as error:
        return await render(
            request, "_card.html", status=_status(error), link=None, error=describe(error, t=reader(request))
        )
    return await render(request, "_card.html", link=link, error=None)


@router.get("/servers/{guild_id}/links/{slug}/delete")
async def delete_link_page(request: Request, guild_id: str, slug: str) -> Response:
    seen = await server_visit(request, guild_id)
    name = _slug_or_404(seen, slug)
    try:
        await seen.dashboard.bot.links.ensure_managed(seen.guild_id, name)
    except KNOWN as error:
        return await render(
            request, "link_delete.html", status=_status(error), seen=seen, tab="links", slug=name,
            **_refusal(error, reader(seen.request)),
        )  # fmt: skip
    return await render(request, "link_delete.html", seen=seen, tab="links", slug=name, error=None)


@router.post("/servers/{guild_id}/links/{slug}/delete")
async def delete_link(request: Request, guild_id: str, slug: str) -> Response:
    seen = await server_visit(request, guild_id)
    name = _slug_or_404(seen, slug)
    await read_form(seen)
    try:
        outcome = await seen.dashboard.bot.links.delete(seen.guild_id, seen.user_id, name)
    except KNOWN as error:
        return await render(
            request, "link_delete.html", status=_status(error), seen=seen, tab="links", slug=name,
            **_refusal(error, reader(seen.request)),
        )  # fmt: skip
    await seen.dashboard.sessions.flash(
        seen.session,
        {"kind": "link_deleted", "slug": name, "deleted": outcome.deleted, "forgotten": outcome.forgotten},
    )
    return redirect(request, f"/servers/{seen.guild_id}")


# ------------------------------------------------------------------------------------------ API keys


async def _keys_page(seen: ServerVisit, *, status: int = 200, **context: Any) -> Response:
    api_keys = seen.dashboard.bot.api_keys
    keys = await api_keys.list(seen.guild_id)
    names = await seen.dashboard.directory.user_names(key.created_by for key in keys)
    context.setdefault("new_key", None)
    context.setdefault("error", None)
    context.setdefault("error_field", None)
    context.setdefault("name", "")
    return await render(
        seen.request, "keys.html", status=status, seen=seen, tab="keys", keys=keys, names=names,
        limit=api_keys.limit, **context,
    )  # fmt: skip


@router.get("/servers/{guild_id}/keys")
async def keys_tab(request: Request, guild_id: str) -> Response:
    return await _keys_page(await server_visit(request, guild_id))


@router.post("/servers/{guild_id}/keys")
async def create_key(request: Request, guild_id: str) -> Response:
    seen = await server_visit(request, guild_id)
    form = await read_form(seen)
    try:
        new = await seen.dashboard.bot.api_keys.create(seen.guild_id, seen.user_id, form.get("name", ""))
    except KNOWN as error:
        return await _keys_page(
            seen, status=_status(error), name=form.get("name", ""), **_refusal(error, reader(seen.request))
        )
    # Shown in this answer only (never stored, never redirected through): the page is not cached.
    return await _keys_page(seen, status=201, new_key=new)


def _key_id(raw: str) -> int:
    return int(raw) if raw.isdigit() and len(raw) <= 18 else 0


@router.get("/servers/{guild_id}/keys/{key_id}/delete")
async def delete_key_page(request: Request, guild_id: str, key_id: str) -> Response:
    seen = await server_visit(request, guild_id)
    number = _key_id(key_id)
    keys = await seen.dashboard.bot.api_keys.list(seen.guild_id)
    key = next((key for key in keys if key.id == number), None)
    if key is None:
        raise PageError(404, user=seen.user, csrf=seen.session.csrf, server=seen.guild, no_key=True)
    return await render(request, "key_delete.html", seen=seen, tab="keys", key=key, error=None)


@router.post("/servers/{guild_id}/keys/{key_id}/delete")
async def delete_key(request: Request, guild_id: str, key_id: str) -> Response:
    seen = await server_visit(request, guild_id)
    await read_form(seen)
    try:
        record = await seen.dashboard.bot.api_keys.revoke(seen.guild_id, seen.user_id, _key_id(key_id))
    except KNOWN as error:
        return await _keys_page(seen, status=_status(error), **_refusal(error, reader(seen.request)))
    await seen.dashboard.sessions.flash(seen.session, {"kind": "key_revoked", "name": record.name})
    return redirect(request, f"/servers/{seen.guild_id}/keys")


# ------------------------------------------------------------------------------------------ audit log


@router.get("/servers/{guild_id}/audit")
async def audit_tab(request: Request, guild_id: str) -> Response:
    seen = await server_visit(request, guild_id)
    raw = request.query_params.get("before", "")
    before = int(raw) if raw.isdigit() and len(raw) <= 18 else None
    events = await seen.dashboard.bot.server_info.events(seen.guild_id, AUDIT_PER_PAGE, before)
    names = await seen.dashboard.directory.user_names(names_of(stored.event.actor_id for stored in events))
    channels: dict[int, str] = {}
    if any(stored.event.kind is EventKind.LOG_CHANNEL_CHANGED for stored in events):
        try:
            channels = {c.id: c.name for c in await seen.dashboard.directory.text_channels(seen.guild_id)}
        except DiscordUnavailable:
            channels = {}
    t = reader(request)
    entries = [
        {
            "id": stored.id,
            "at": stored.event.at,
            "kind": stored.event.kind.value,
            "title": event_title(stored.event.kind, t),
            "sentence": event_sentence(stored.event, t),
            "details": event_details(stored.event, t),
            "changes": event_changes(stored.event, t),
        }
        for stored in events
    ]
    older = entries[-1]["id"] if len(entries) == AUDIT_PER_PAGE else None
    return await render(
        request, "audit.html", seen=seen, tab="audit", entries=entries, names=names, channels=channels,
        older=older, first_page=before is None,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------ settings


async def _settings_page(seen: ServerVisit, *, status: int = 200, **context: Any) -> Response:
    dash = seen.dashboard
    summary = await dash.bot.server_info.summary(seen.guild_id)
    channels: Sequence[Any] | None
    try:
        channels = await dash.directory.text_channels(seen.guild_id)
    except DiscordUnavailable:
        channels = None
    names = await dash.directory.user_names([summary.token.set_by] if summary.token else [])
    context.setdefault("error", None)
    context.setdefault("error_field", None)
    context.setdefault("error_about", None)
    return await render(
        seen.request, "settings.html", status=status, seen=seen, tab="settings", summary=summary,
        channels=channels, names=names, **context,
    )  # fmt: skip


@router.get("/servers/{guild_id}/settings")
async def settings_tab(request: Request, guild_id: str) -> Response:
    return await _settings_page(await server_visit(request, guild_id))


@router.post("/servers/{guild_id}/settings/token")
async def set_token(request: Request, guild_id: str) -> Response:
    seen = await server_visit(request, guild_id)
    form = await read_form(seen)
    try:
        info = await seen.dashboard.bot.tokens.set(seen.guild_id, seen.user_id, form.get("token", ""))
    except KNOWN as error:
        return await _settings_page(
            seen, status=_status(error), error_about="token", **_refusal(error, reader(seen.request))
        )
    await seen.dashboard.sessions.flash(seen.session, {"kind": "token_set", "last4": info.last4})
    return redirect(request, f"/servers/{seen.guild_id}/settings")


@router.get("/servers/{guild_id}/settings/token/clear")
async def clear_token_page(request: Request, guild_id: str) -> Response:
    seen = await server_visit(request, guild_id)
    return await render(request, "token_clear.html", seen=seen, tab="settings")


@router.post("/servers/{guild_id}/settings/token/clear")
async def clear_token(request: Request, guild_id: str) -> Response:
    seen = await server_visit(request, guild_id)
    await read_form(seen)
    cleared = await seen.dashboard.bot.tokens.clear(seen.guild_id, seen.user_id)
    await seen.dashboard.sessions.flash(
        seen.session, {"kind": "token_cleared", "was_set": cleared is not None}
    )
    return redirect(request, f"/servers/{seen.guild_id}/settings")


@router.post("/servers/{guild_id}/settings/log-channel")
async def set_log_channel(request: Request, guild_id: str) -> Response:
    seen = await server_visit(request, guild_id)
    form = await read_form(seen)
    raw = form.get("channel", "")
    try:
        if raw and not (raw.isdigit() and len(raw) <= 20):
            raise InvalidInput("channel", Invalid.CHANNEL_NOT_TEXT)
        channel_id = int(raw) if raw else None
        await seen.dashboard.directory.set_log_channel(seen.guild_id, channel_id, seen.user_id)
    except KNOWN as error:
        return await _settings_page(
            seen, status=_status(error), error_about="channel", **_refusal(error, reader(seen.request))
        )
    await seen.dashboard.sessions.flash(seen.session, {"kind": "log_channel", "on": channel_id is not None})
    return redirect(request, f"/servers/{seen.guild_id}/settings")
