"""FastAPI dependencies: the API's shared state, the authenticated caller, the server in the path,
``Idempotency-Key`` handling for POSTs, and the reader's language (``Accept-Language``).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Header, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bot.api.auth import Caller, CredentialLimiter, Identities, invalid_token
from bot.api.problems import Problem, rate_limited, retry_in
from bot.db.apikeys import Claimed, StoredResponse
from bot.dscgg import deadline
from bot.i18n import N_, Tr, for_accept_language

if TYPE_CHECKING:
    from bot.client import DscBot

__all__ = [
    "ApiState",
    "GuildScope",
    "Reader",
    "api_state",
    "authenticated",
    "guild_scope",
    "idempotent",
    "reader",
]

_bearer = HTTPBearer(
    auto_error=False,
    description="An API key (`dscggbot_…`, from `/dscgg apikey create`) or a Discord OAuth access token",
)

#: Longest Idempotency-Key accepted.
IDEMPOTENCY_KEY_MAX = 255


@dataclass(slots=True)
class ApiState:
    bot: DscBot
    identities: Identities
    limiter: CredentialLimiter
    #: ``API_PUBLIC_URL`` (problem types, Location headers).
    public_url: str
    #: Seconds the dsc.gg calls of one request may take together (COMMAND_DEADLINE).
    deadline: float


async def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


State = Annotated[ApiState, Depends(api_state)]


async def reader(request: Request) -> Tr:
    """The words of the request's reader: its ``Accept-Language`` negotiated against the catalogs."""
    return for_accept_language(request.headers.get("accept-language"))


Reader = Annotated[Tr, Depends(reader)]


async def authenticated(
    request: Request,
    state: State,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The caller, from ``Authorization: Bearer``; 401 ``invalid-token`` otherwise, 429 past the
    credential's rate limit (counted per credential, before it is checked)."""
    if bearer is None or not bearer.credentials.strip():
        raise invalid_token(N_("Send `Authorization: Bearer <API key or Discord OAuth access token>`."))
    credential = bearer.credentials.strip()
    verdict = state.limiter.hit(hashlib.sha256(credential.encode("utf-8")).hexdigest())
    request.scope.setdefault("state", {})["ratelimit"] = verdict
    if not verdict.allowed:

        def detail(t: Tr) -> str:
            window = t.ngettext(
                "{count} second", "{count} seconds", math.ceil(verdict.window), count=t.number(verdict.window)
            )
            allowed = t.ngettext(
                "This credential may make {count} request per {window}.",
                "This credential may make {count} requests per {window}.",
                verdict.limit,
                window=window,
            )
            return f"{allowed} {retry_in(verdict.reset, t)}"

        raise rate_limited(verdict.reset, detail)
    caller = await state.identities.caller(credential)
    request.scope["state"]["caller"] = caller
    return caller


Authenticated = Annotated[Caller, Depends(authenticated)]


@dataclass(frozen=True, slots=True)
class GuildScope:
    guild_id: int
    caller: Caller

    @property
    def user_id(self) -> int:
        return self.caller.user_id


async def guild_scope(
    state: State,
    caller: Authenticated,
    guild_id: Annotated[str, Path(pattern=r"^[0-9]{1,20}$", description="the Discord server id")],
) -> GuildScope:
    """The server in the path, once the caller may manage it (404 / 403 otherwise). The request's dsc.gg
    calls share one deadline, and its audit events show an API key by name: both are set for the rest
    of the request's own task (uvicorn runs each request in a task of its own)."""
    number = int(guild_id)
    if not 0 < number < 2**64:
        raise Problem("not-found", N_("There is no such server: check the server id in the path."))
    await state.identities.check_guild(caller, number)
    caller.act()
    deadline.start(state.deadline)
    return GuildScope(number, caller)


Guild = Annotated[GuildScope, Depends(guild_scope)]


def users_only(scope: GuildScope) -> None:
    if scope.caller.key is not None:
        raise Problem(
            "api-key-not-allowed",
            N_(
                "API keys cannot create or list API keys. Use a Discord login, or `/dscgg apikey` in Discord."
            ),
        )


async def idempotent(
    request: Request,
    state: State,
    scope: Guild,
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=IDEMPOTENCY_KEY_MAX,
            description="Retry-safe POST: the same key from the same credential within 24 hours "
            "returns the first response instead of acting twice",
        ),
    ] = None,
) -> None:
    """Replays the first response to ``Idempotency-Key`` (raising ``Replay``), or claims the key so the
    envelope stores this request's response."""
    if idempotency_key is None:
        return
    key = idempotency_key.strip()
    if not key:
        raise Problem("invalid-input", N_("The Idempotency-Key header is empty: leave it out or give a key."))
    body = await request.body()
    fingerprint = hashlib.sha256(
        request.method.encode() + b" " + request.url.path.encode() + b"\n" + body
    ).hexdigest()
    credential = scope.caller.credential
    begun = await state.bot.idempotency.begin(credential, key, scope.guild_id, fingerprint)
    if begun.response is not None:
        raise Replay(begun.response)
    if begun.claimed is Claimed.IN_PROGRESS:
        raise Problem(
            "idempotency-in-progress",
            N_("A request with this Idempotency-Key is still running: retry in a moment to get its answer."),
            headers={"Retry-After": "1"},
        )
    if begun.claimed is Claimed.MISMATCH:
        raise Problem(
            "idempotency-key-reused",
            N_("This Idempotency-Key was already used for a different request: use a new key for this one."),
        )
    request.scope["state"]["idempotency"] = (credential, key)


class Replay(Exception):
    """Answer with the stored first response."""

    def __init__(self, response: StoredResponse) -> None:
        super().__init__("replay")
        self.response = response
