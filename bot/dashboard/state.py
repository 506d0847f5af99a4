"""The dashboard's shared state, built once with the API app: settings-derived URLs, the OAuth client,
sessions, the Discord directory, templates and assets."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bot.dashboard.oauth import DiscordOAuth
from bot.dashboard.render import Assets, Templates
from bot.dashboard.sessions import Sessions
from bot.db.sessions import SessionStore
from bot.services.directory import DiscordDirectory

if TYPE_CHECKING:
    from bot.api.deps import ApiState
    from bot.client import DscBot

__all__ = ["Dashboard"]


class Dashboard:
    def __init__(self, api: ApiState) -> None:
        self.api = api
        bot = api.bot
        settings = bot.settings
        #: None until DISCORD_CLIENT_ID and DISCORD_CLIENT_SECRET are both set (the setup page says so).
        self.oauth: DiscordOAuth | None = None
        if settings.discord_client_id is not None and settings.discord_client_secret is not None:
            self.oauth = DiscordOAuth(
                bot.session,
                client_id=settings.discord_client_id,
                client_secret=settings.discord_client_secret,
                authorize_url=settings.discord_oauth_authorize_url,
            )
        self.sessions = Sessions(SessionStore(bot.db), bot.cipher)
        self.directory = DiscordDirectory(bot, bot.audit)
        self.assets = Assets()
        self.templates = Templates(self.assets)

    @property
    def bot(self) -> DscBot:
        return self.api.bot

    @property
    def public_url(self) -> str:
        """``API_PUBLIC_URL`` (or the address the API listens on)."""
        return self.api.public_url

    @property
    def base(self) -> str:
        """The path the dashboard's links start with: empty unless API_PUBLIC_URL has a path."""
        return urlsplit(self.public_url).path.rstrip("/")

    @property
    def origin(self) -> str:
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def https(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def redirect_uri(self) -> str:
        """Where Discord sends the browser back; the Discord application must list it."""
        return f"{self.public_url}/auth/callback"
