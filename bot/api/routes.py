"""The ``/v1`` resources. Thin: validate (pydantic, then ``bot.validation`` like the commands), call one
service, render. Every change goes through the services the slash commands use, so the rules (which
links a server may manage) and the audit trail are the same.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from bot.api.deps import Authenticated, Guild, Reader, State, idempotent, users_only
from bot.api.problems import Problem, invalid_input, invalid_value
from bot.api.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyList,
    ApiKeyOut,
    AuditEventOut,
    AuditEventPage,
    ChangeOut,
    GuildOut,
    LinkAdopted,
    LinkCreate,
    LinkCreated,
    LinkEdited,
    LinkList,
    LinkOut,
    LinkPatch,
    LinkRecordOut,
    LinkRecordPage,
    TokenSet,
)
from bot.dscgg.models import LinkType
from bot.errors import InvalidInput, render
from bot.i18n import N_
from bot.validation import link_change_options, new_link_options, normalize_slug, validate_query

__all__ = ["router"]

router = APIRouter(prefix="/v1")


def _slug(raw: str, location: str = "path") -> str:
    try:
        return normalize_slug(raw)
    except InvalidInput as exc:
        raise invalid_value(location, "slug", exc) from None


# ------------------------------------------------------------------------------------------ server


@router.get(
    "/guilds/{guild_id}", tags=["server"], summary="The server as the bot knows it", response_model=GuildOut
)
async def get_guild(state: State, scope: Guild) -> Response:
    summary = await state.bot.server_info.summary(scope.guild_id)
    # Serialized directly (the model is already valid): this is the API's most frequent read.
    return Response(GuildOut.of(summary).model_dump_json(), media_type="application/json")


@router.put(
    "/guilds/{guild_id}/dscgg-token",
    tags=["server"],
    status_code=204,
    summary="Set the server's dsc.gg token (checked with dsc.gg first, like /dscgg token set)",
)
async def put_token(state: State, scope: Guild, body: TokenSet) -> Response:
    await state.bot.tokens.set(scope.guild_id, scope.user_id, body.token)
    return Response(status_code=204)


@router.delete(
    "/guilds/{guild_id}/dscgg-token", tags=["server"], status_code=204, summary="Forget the server's token"
)
async def delete_token(state: State, scope: Guild) -> Response:
    await state.bot.tokens.clear(scope.guild_id, scope.user_id)
    return Response(status_code=204)


# ------------------------------------------------------------------------------------------ links


def _cursor(page: int) -> str:
    return base64.urlsafe_b64encode(f"p{page}".encode()).decode().rstrip("=")


def _page_of(cursor: str | None) -> int:
    if cursor is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        page = int(text.removeprefix("p")) if text.startswith("p") else -1
    except (binascii.Error, UnicodeDecodeError, ValueError):
        page = -1
    if not 0 <= page < 1_000_000:
        raise invalid_input(
            "query", "cursor", N_("it is not a cursor this API gave; leave it out to start over")
        )
    return page


@router.get("/guilds/{guild_id}/links", tags=["links"], summary="The links this server manages")
async def list_links(
    state: State,
    scope: Guild,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> LinkRecordPage:
    wanted = _page_of(cursor)
    page = await state.bot.links.list_records(scope.guild_id, wanted, limit)
    items = [LinkRecordOut.of(record) for record in page.records] if page.page == wanted else []
    next_cursor = _cursor(wanted + 1) if wanted + 1 < page.pages else None
    return LinkRecordPage(items=items, total=page.total, next_cursor=next_cursor)


@router.post(
    "/guilds/{guild_id}/links",
    tags=["links"],
    status_code=201,
    summary="Create a link (like /link create)",
    dependencies=[Depends(idempotent)],
)
async def create_link(
    state: State, scope: Guild, body: LinkCreate, response: Response, t: Reader
) -> LinkCreated:
    new = new_link_options(**body.model_dump())
    result = await state.bot.links.create(scope.guild_id, scope.user_id, new)
    response.headers["Location"] = f"{state.public_url}/v1/guilds/{scope.guild_id}/links/{new.slug}"
    colour = None if result.colour_problem is None else render(result.colour_problem, t)
    return LinkCreated(**LinkOut.of(result.link).model_dump(), color_problem=colour)


@router.get(
    "/guilds/{guild_id}/links/{slug}", tags=["links"], summary="A link, from dsc.gg (like /link info)"
)
async def get_link(state: State, scope: Guild, slug: str) -> LinkOut:
    return LinkOut.of(await state.bot.links.info(scope.guild_id, _slug(slug)))


@router.patch(
    "/guilds/{guild_id}/links/{slug}",
    tags=["links"],
    summary="Change a link: absent fields stay, null removes title, description, image, color or password",
)
async def patch_link(state: State, scope: Guild, slug: str, body: LinkPatch) -> LinkEdited:
    changes = link_change_options(
        slug=_slug(slug),
        removed={field for field in body.model_fields_set if getattr(body, field) is None},
        **body.model_dump(exclude_none=True),
    )
    result = await state.bot.links.edit(scope.guild_id, scope.user_id, changes)
    return LinkEdited(
        link=LinkOut.of(result.link),
        changes=[ChangeOut(field=c.field, before=c.before, after=c.after) for c in result.changes],
    )


@router.delete("/guilds/{guild_id}/links/{slug}", tags=["links"], status_code=204, summary="Delete a link")
async def delete_link(state: State, scope: Guild, slug: str) -> Response:
    outcome = await state.bot.links.delete(scope.guild_id, scope.user_id, _slug(slug))
    if not outcome.deleted and not outcome.forgotten:
        raise Problem(
            "not-found", N_("dsc.gg has no such link, and this server did not manage one by that name.")
        )
    return Response(status_code=204)


@router.post(
    "/guilds/{guild_id}/links/{slug}/adopt",
    tags=["links"],
    summary="Manage an existing link of the server's dsc.gg account here (like /link adopt)",
    dependencies=[Depends(idempotent)],
)
async def adopt_link(state: State, scope: Guild, slug: str) -> LinkAdopted:
    result = await state.bot.links.adopt(scope.guild_id, scope.user_id, _slug(slug))
    return LinkAdopted(adopted=result.adopted, link=None if result.link is None else LinkOut.of(result.link))


# ------------------------------------------------------------------------------------------ discovery


@router.get("/top", tags=["discovery"], summary="dsc.gg's top links (shared by every server)")
async def top(state: State, caller: Authenticated, type: LinkType | None = None) -> LinkList:
    return LinkList(items=[LinkOut.of(link) for link in await state.bot.links.top(type)])


@router.get("/guilds/{guild_id}/search", tags=["discovery"], summary="Search dsc.gg with the server's token")
async def search(
    state: State,
    scope: Guild,
    q: Annotated[str, Query(min_length=1, max_length=200)],
    type: LinkType | None = None,
    limit: Annotated[int | None, Query(ge=1, le=100)] = None,
) -> LinkList:
    try:
        query = validate_query(q)
    except InvalidInput as exc:
        raise invalid_value("query", "q", exc) from None
    return LinkList(
        items=[LinkOut.of(link) for link in await state.bot.links.search(scope.guild_id, query, type, limit)]
    )


# ------------------------------------------------------------------------------------------ audit


@router.get("/guilds/{guild_id}/audit-events", tags=["audit"], summary="The audit log, newest first")
async def audit_events(
    state: State,
    scope: Guild,
    t: Reader,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    before: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$", description="an event id")] = None,
) -> AuditEventPage:
    events = await state.bot.server_info.events(scope.guild_id, limit, int(before) if before else None)
    items = [AuditEventOut.of(stored, t) for stored in events]
    return AuditEventPage(items=items, next_before=items[-1].id if len(items) == limit else None)


# ------------------------------------------------------------------------------------------ API keys


@router.get(
    "/guilds/{guild_id}/api-keys", tags=["api keys"], summary="The server's API keys (Discord users only)"
)
async def list_keys(state: State, scope: Guild) -> ApiKeyList:
    users_only(scope)
    keys = await state.bot.api_keys.list(scope.guild_id)
    return ApiKeyList(items=[ApiKeyOut.of(key) for key in keys], limit=state.bot.api_keys.limit)


@router.post(
    "/guilds/{guild_id}/api-keys",
    tags=["api keys"],
    status_code=201,
    summary="Create an API key; the key is in this response only (Discord users only)",
    dependencies=[Depends(idempotent)],
)
async def create_key(state: State, scope: Guild, body: ApiKeyCreate, response: Response) -> ApiKeyCreated:
    users_only(scope)
    new = await state.bot.api_keys.create(scope.guild_id, scope.user_id, body.name)
    response.headers["Location"] = f"{state.public_url}/v1/guilds/{scope.guild_id}/api-keys/{new.record.id}"
    response.headers["Cache-Control"] = "no-store"
    return ApiKeyCreated(**ApiKeyOut.of(new.record).model_dump(), key=new.key.get_secret_value())


@router.delete(
    "/guilds/{guild_id}/api-keys/{key_id}", tags=["api keys"], status_code=204, summary="Revoke an API key"
)
async def revoke_key(state: State, scope: Guild, key_id: str) -> Response:
    users_only(scope)
    if not key_id.isdigit() or len(key_id) > 18:
        raise Problem("not-found", N_("This server has no such API key."))
    await state.bot.api_keys.revoke(scope.guild_id, scope.user_id, int(key_id))
    return Response(status_code=204)
