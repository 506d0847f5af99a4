"""Log in with Discord: the OAuth2 authorization code grant, scopes ``identify guilds``.

``authorize_url`` is where ``/auth/login`` sends the browser (``DISCORD_OAUTH_AUTHORIZE_URL``); Discord
sends it back to ``{API_PUBLIC_URL}/auth/callback`` with a code, which ``exchange`` trades for an access
token at ``/oauth2/token`` on the REST base discord.py uses (``discord.http.Route.BASE``), server to
server with the client secret. The token never reaches the browser. ``revoke`` ends it at logout.
"""

from __future__ import annotations

import enum
import logging
import math
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlencode

import aiohttp
import discord
from pydantic import SecretStr

__all__ = ["SCOPES", "DiscordOAuth", "Grant", "OAuthError", "OAuthFailure"]

log = logging.getLogger(__name__)

SCOPES: Final = ("identify", "guilds")
#: What the bot invite link asks for: View Channels, Send Messages and Embed Links (the log channel).
BOT_PERMISSIONS: Final = 19456
_TIMEOUT = aiohttp.ClientTimeout(total=10.0, sock_connect=5.0)


class OAuthFailure(enum.Enum):
    """Why a login did not work (the page says it in words)."""

    DENIED = "denied"  # the user chose Cancel on Discord's page
    STATE = "state"  # the callback does not belong to a login started in this browser (or it is too old)
    REFUSED = "refused"  # Discord refused the code (used, expired, or the client secret is wrong)
    SCOPES = "scopes"  # the user did not grant identify and guilds
    UNAVAILABLE = "unavailable"  # Discord did not answer


class OAuthError(Exception):
    def __init__(self, failure: OAuthFailure) -> None:
        super().__init__(failure.value)
        self.failure = failure


@dataclass(frozen=True, slots=True)
class Grant:
    access_token: SecretStr
    #: Seconds the token is valid for.
    expires_in: float
    scopes: frozenset[str]


class DiscordOAuth:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        client_id: int,
        client_secret: SecretStr,
        authorize_url: str,
    ) -> None:
        self._session = session
        self.client_id = client_id
        self._secret = client_secret
        self._authorize = authorize_url

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        query = {
            "client_id": str(self.client_id),
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": " ".join(SCOPES),
            "state": state,
        }
        return f"{self._authorize}?{urlencode(query)}"

    def invite_url(self, guild_id: int) -> str:
        """The bot's invite, for that server (the "Add to server" link)."""
        query = {
            "client_id": str(self.client_id),
            "scope": "bot applications.commands",
            "permissions": str(BOT_PERMISSIONS),
            "guild_id": str(guild_id),
            "disable_guild_select": "true",
        }
        return f"{self._authorize}?{urlencode(query)}"

    def _client(self) -> dict[str, str]:
        """The client's credentials, sent in the form body (Discord takes them there or as Basic auth)."""
        return {"client_id": str(self.client_id), "client_secret": self._secret.get_secret_value()}

    async def exchange(self, code: str, redirect_uri: str) -> Grant:
        """The access token for ``code``; OAuthError when Discord refuses it or does not answer."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            **self._client(),
        }
        url = discord.http.Route.BASE + "/oauth2/token"
        try:
            async with self._session.post(url, data=form, timeout=_TIMEOUT) as response:
                if response.status in (400, 401):
                    log.info("Discord refused an OAuth code (HTTP %s)", response.status)
                    raise OAuthError(OAuthFailure.REFUSED)
                if response.status != 200:
                    log.warning("Discord answered HTTP %s to an OAuth code exchange", response.status)
                    raise OAuthError(OAuthFailure.UNAVAILABLE)
                data = await response.json()
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            raise OAuthError(OAuthFailure.UNAVAILABLE) from exc
        try:
            token = data["access_token"]
            if not isinstance(token, str) or not token or str(data.get("token_type", "")).lower() != "bearer":
                raise TypeError("not a bearer token")
            expires_in = float(data.get("expires_in", 0))
            if not math.isfinite(expires_in) or expires_in <= 0:
                raise ValueError("no lifetime")
            scopes = frozenset(str(data.get("scope", "")).split())
        except (KeyError, TypeError, ValueError) as exc:
            raise OAuthError(OAuthFailure.UNAVAILABLE) from exc
        if not scopes.issuperset(SCOPES):
            raise OAuthError(OAuthFailure.SCOPES)
        return Grant(SecretStr(token), expires_in, scopes)

    async def revoke(self, token: str) -> None:
        """Tell Discord the access token is no longer needed (logout); failures are only logged."""
        url = discord.http.Route.BASE + "/oauth2/token/revoke"
        form = {"token": token, "token_type_hint": "access_token", **self._client()}
        try:
            async with self._session.post(url, data=form, timeout=_TIMEOUT) as response:
                if response.status != 200:
                    log.info("Discord answered HTTP %s to a token revocation", response.status)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.info("Could not revoke a Discord token at logout: %s", type(exc).__name__)
