"""Who is calling: API keys and Discord OAuth access tokens, per-credential rate limits.

``Authorization: Bearer <credential>``. A credential with the ``dscggbot_`` prefix is an API key: it
is looked up by digest (``ApiKeyService.authenticate``) and gives admin access to its own server only
(any other server's path answers 404, as if that server did not exist). Anything else is a Discord
OAuth access token, resolved with ``GET /users/@me`` and ``/users/@me/guilds`` on discord.py's REST
base (``discord.http.Route.BASE``), kept 60 s per token digest; it gives access to the servers where
the user has Manage Server (or owns them) and the bot is present. Credentials are never logged and
never kept in memory other than as a digest.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import aiohttp
import discord

from bot.api.problems import Problem, Text, rate_limited
from bot.audit import act_as_key
from bot.i18n import N_
from bot.services.apikeys import looks_like_key
from bot.services.cache import SharedCache

if TYPE_CHECKING:
    from bot.client import DscBot
    from bot.db.apikeys import ApiKeyRecord

__all__ = ["Caller", "CredentialLimiter", "Identities", "Login", "LoginGuild", "Verdict"]

#: Seconds a resolved Discord login (and a server's "bot is there") is kept.
IDENTITY_TTL: Final = 60.0
_MANAGE_GUILD: Final = 1 << 5
_ADMINISTRATOR: Final = 1 << 3
_DISCORD_TIMEOUT = aiohttp.ClientTimeout(total=5.0, sock_connect=3.0)

INVALID_TOKEN_HEADERS: Final = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def invalid_token(detail: Text) -> Problem:
    return Problem("invalid-token", detail, headers=INVALID_TOKEN_HEADERS)


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller."""

    #: Stable and secret-free: ``key:<id>`` or ``user:<discord id>`` (rate limits, Idempotency-Key).
    credential: str
    #: The Discord user: the OAuth user, or for a key the admin who created it (recorded as who
    #: created or changed a link; the audit log shows the key instead).
    user_id: int
    key: ApiKeyRecord | None = None
    #: OAuth: the servers the user may manage (Manage Server or owner) and all they are in.
    manages: frozenset[int] = frozenset()
    member_of: frozenset[int] = frozenset()

    def act(self) -> None:
        """From now on in this request's task, audit events show this caller (an API key by its name)."""
        if self.key is not None:
            act_as_key(self.key.name)


@dataclass(frozen=True, slots=True)
class LoginGuild:
    """A server of a Discord login, as ``/users/@me/guilds`` lists it."""

    id: int
    name: str
    #: Manage Server, Administrator or owner.
    manages: bool


@dataclass(frozen=True, slots=True)
class Login:
    """A resolved Discord login (the web dashboard shows its name and servers)."""

    user_id: int
    manages: frozenset[int]
    member_of: frozenset[int]
    name: str = ""
    guilds: tuple[LoginGuild, ...] = ()

    def caller(self) -> Caller:
        return Caller(f"user:{self.user_id}", self.user_id, manages=self.manages, member_of=self.member_of)


class Identities:
    """Resolves credentials into callers and checks server access."""

    def __init__(self, bot: DscBot, *, ttl: float = IDENTITY_TTL) -> None:
        self._bot = bot
        self._logins: SharedCache[bytes, Login] = SharedCache(ttl)
        self._present: SharedCache[int, bool] = SharedCache(ttl)

    async def caller(self, credential: str) -> Caller:
        if looks_like_key(credential):
            record = await self._bot.api_keys.authenticate(credential)
            if record is None:
                raise invalid_token(N_("This API key is malformed, revoked or unknown. Create a new one."))
            return Caller(f"key:{record.id}", record.created_by, key=record)
        return (await self.login(credential)).caller()

    async def login(self, token: str) -> Login:
        """The Discord user of an OAuth access token and their servers (kept ``ttl`` seconds per token
        digest); Problem ``invalid-token`` when Discord refuses the token."""
        digest = hashlib.sha256(token.encode("utf-8")).digest()
        return await self._logins.get(digest, lambda: self._resolve(token))

    async def check_guild(self, caller: Caller, guild_id: int) -> None:
        """404 unless the caller may manage ``guild_id`` (an API key: only its own server)."""
        missing = Problem(
            "not-found", N_("There is no such server for this credential: check the server id in the path.")
        )
        if caller.key is not None:
            if caller.key.guild_id != guild_id:
                raise missing
            return
        if guild_id not in caller.member_of or not await self.bot_present(guild_id):
            raise missing
        if guild_id not in caller.manages:
            raise Problem(
                "missing-permission",
                N_("You need the Manage Server permission in this server (or to own it) to manage it here."),
            )

    async def bot_present(self, guild_id: int) -> bool:
        """Whether the bot is in the server (the guild cache once ready, else Discord, kept ``ttl`` s)."""
        bot = self._bot
        if bot.is_ready() and not bot.api_only:
            return bot.get_guild(guild_id) is not None
        return await self._present.get(guild_id, lambda: self._fetch_presence(guild_id))

    async def _fetch_presence(self, guild_id: int) -> bool:
        try:
            await self._bot.http.request(discord.http.Route("GET", "/guilds/{guild_id}", guild_id=guild_id))
        except (discord.NotFound, discord.Forbidden):
            return False
        except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise Problem("discord-unavailable", N_("Discord did not answer; retry in a moment.")) from exc
        return True

    async def _resolve(self, token: str) -> Login:
        if not token or not token.isascii() or not token.isprintable() or " " in token or len(token) > 512:
            raise invalid_token(
                N_("This credential is malformed. Send an API key or a Discord access token.")
            )
        me = await self._discord_get("/users/@me", token)
        guilds = await self._discord_get("/users/@me/guilds", token)
        try:
            user_id = int(me["id"])
            name = str(me.get("global_name") or me.get("username") or user_id)
            manages, member_of, listed = set(), set(), []
            for guild in guilds:
                guild_id = int(guild["id"])
                member_of.add(guild_id)
                permissions = int(guild.get("permissions") or 0)
                admin = bool(guild.get("owner") or permissions & (_MANAGE_GUILD | _ADMINISTRATOR))
                if admin:
                    manages.add(guild_id)
                listed.append(LoginGuild(guild_id, str(guild.get("name") or guild_id), admin))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise Problem("discord-unavailable", N_("Discord answered garbage; retry in a moment.")) from exc
        return Login(user_id, frozenset(manages), frozenset(member_of), name, tuple(listed))

    async def _discord_get(self, path: str, token: str) -> Any:
        url = discord.http.Route.BASE + path
        try:
            async with self._bot.session.get(
                url, headers={"Authorization": f"Bearer {token}"}, timeout=_DISCORD_TIMEOUT
            ) as response:
                if response.status == 401:
                    raise invalid_token(
                        N_("Discord does not accept this access token (expired or revoked). Log in again.")
                    )
                if response.status == 429:
                    retry = _float(response.headers.get("Retry-After"), 1.0)
                    raise rate_limited(retry, N_("Discord is rate limiting this login. Retry later."))
                if response.status != 200:
                    raise Problem(
                        "discord-unavailable",
                        N_("Discord answered HTTP {status} while checking your login; retry later."),
                        params={"status": response.status},
                    )
                return await response.json()
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            raise Problem(
                "discord-unavailable", N_("Discord did not answer while checking your login; retry later.")
            ) from exc


def _float(value: str | None, default: float) -> float:
    try:
        number = float(value) if value is not None else default
    except ValueError:
        return default
    return number if math.isfinite(number) and number >= 0 else default


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    limit: int
    window: float
    remaining: int
    #: Seconds until the window resets.
    reset: float

    def headers(self) -> dict[str, str]:
        """RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers)."""
        window = math.ceil(self.window)
        return {
            "RateLimit-Policy": f'"default";q={self.limit};w={window}',
            "RateLimit": f'"default";r={self.remaining};t={math.ceil(self.reset)}',
        }


class CredentialLimiter:
    """``limit`` requests per ``window`` seconds per credential (fixed windows, in memory)."""

    def __init__(self, limit: int, window: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}

    def hit(self, credential: str) -> Verdict:
        now = self._clock()
        start, used = self._windows.get(credential, (now, 0))
        if now - start >= self.window:
            start, used = now, 0
        allowed = used < self.limit
        if allowed:
            used += 1
        self._windows[credential] = (start, used)
        if len(self._windows) > 10_000:
            self._prune(now)
        reset = max(start + self.window - now, 0.0)
        return Verdict(allowed, self.limit, self.window, self.limit - used, reset)

    def _prune(self, now: float) -> None:
        for key in [k for k, (start, _) in self._windows.items() if now - start >= self.window]:
            del self._windows[key]
