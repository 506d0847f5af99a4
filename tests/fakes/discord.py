"""FakeDiscord: a loopback stand-in for discord.com's REST API (v10) and JSON gateway.

It speaks just enough of Discord for discord.py 2.7 to log in, connect, sync commands and answer
interactions, and it records every request so tests can assert what a user would have seen.

In process::

    async with FakeDiscord(guilds=3) as fake:
        discord.http.Route.BASE = fake.api_base                  # REST
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
        ...
        await fake.dispatch_interaction(payload)                  # INTERACTION_CREATE to every session
        cb = await fake.wait_for_callback(payload["id"], timeout=5)

Standalone (end-to-end process tests)::

    python -m tests.fakes.discord --port 8765 --guilds 1000 [--shards 4]

prints ``FAKE_DISCORD_API=...`` and ``FAKE_DISCORD_GATEWAY=...`` and serves until SIGINT/SIGTERM. A
small control API under ``/_fake`` (not under ``/api``) lets another process dispatch interactions
(``POST /_fake/interactions``) and read the recordings (``GET /_fake/recordings``).

Faithfulness rules kept on purpose, so bugs surface in tests instead of in production:

- one initial callback per interaction; the second gets 400 ``40060``;
- an initial callback later than ``initial_response_deadline`` (3 s, like Discord) gets 404 ``10062``;
- message, embed, component, modal and autocomplete limits are checked (400 ``50035``);
- the first follow-up after a deferral edits the "thinking" message instead of posting a new one;
- channels can be made deleted (404 ``10003``) or forbidden (403 ``50013``), held (posts to them are
  received but not answered until released) or rate limited (429 with ``retry_after`` and
  ``Retry-After``, like Discord);
- anything the fake does not know answers 404 ``0`` and is recorded in ``unknown_requests``;
- Discord OAuth logins: ``add_oauth_token(token, user_id, guilds=…)`` makes ``GET /users/@me`` and
  ``GET /users/@me/guilds`` answer ``Authorization: Bearer <token>`` as that user (401 for any other
  Bearer token); ``GET /guilds/{id}`` answers the bot for the configured guilds (404 ``10004`` else);
- the authorization code grant: a consent page at ``/oauth2/authorize`` (outside ``/api``: GET shows
  the app, the scopes and an Authorize button for the user ``sign_in(token)`` chose, by default the
  first OAuth login added; POST redirects to ``redirect_uri`` with ``code`` and ``state``, or with
  ``error=access_denied`` for Cancel), ``POST /oauth2/token`` (a code, once, for its access token; the
  client id and secret ``oauth_client`` names, when set) and ``POST /oauth2/token/revoke``;
- ``GET /guilds/{id}/channels``, ``GET /guilds/{id}/members/{bot}`` and ``GET /users/{id}`` (the
  users of the OAuth logins by their names, anyone else as ``user-<last 4 digits>``);
- command permission overrides (Server Settings → Integrations) are served by
  ``GET /applications/{app}/guilds/{guild}/commands/permissions``; ``set_command_permissions`` changes
  them and returns the ``APPLICATION_COMMAND_PERMISSIONS_UPDATE`` payload Discord would dispatch
  (``update_command_permissions`` also sends it to the connected gateway sessions).
- sharding: ``GET /gateway/bot`` recommends ``recommended_shards``; each gateway connection gets
  (READY, GUILD_CREATE) only the guilds of the shard its IDENTIFY named, ``(guild_id >> 22) %
  shard_count == shard_id``, and an interaction goes only to the connections of its guild's shard
  (direct messages: shard 0). Consecutive configured guilds land on consecutive shards.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import copy
import html
import itertools
import json
import secrets
import signal
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import discord
from aiohttp import WSMsgType, web

API_PREFIX = "/api/v10"
DISCORD_EPOCH_MS = 1_420_070_400_000

APP_ID = 1_180_000_000_000_000_001
BOT_USER_ID = APP_ID
OWNER_ID = 1_180_000_000_000_000_099
GUILD_ID_BASE = 1_190_000_000_000_000_000
# 1 << 22: the guild ids' shard bits ((id >> 22) % shard_count) differ from one guild to the next, so
# any number of guilds spreads evenly over the shards, as real guilds do. A multiple of 16: the low bits
# stay free for the ids derived from a guild's (channels, roles).
GUILD_ID_STEP = 1 << 22

# Permission bits (https://discord.com/developers/docs/topics/permissions)
CREATE_INSTANT_INVITE = 1 << 0
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
USE_EXTERNAL_EMOJIS = 1 << 18
CONNECT = 1 << 20
SPEAK = 1 << 21
CHANGE_NICKNAME = 1 << 26
USE_APPLICATION_COMMANDS = 1 << 31
SEND_MESSAGES_IN_THREADS = 1 << 38
ALL_PERMISSIONS = (1 << 53) - 1

EVERYONE_PERMISSIONS = (
    CREATE_INSTANT_INVITE
    | ADD_REACTIONS
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_EXTERNAL_EMOJIS
    | CONNECT
    | SPEAK
    | CHANGE_NICKNAME
    | USE_APPLICATION_COMMANDS
    | SEND_MESSAGES_IN_THREADS
)
BOT_ROLE_PERMISSIONS = EVERYONE_PERMISSIONS | MANAGE_MESSAGES
ADMIN_ROLE_PERMISSIONS = EVERYONE_PERMISSIONS | MANAGE_GUILD

# Application command permission override types
PERMISSION_ROLE, PERMISSION_USER, PERMISSION_CHANNEL = 1, 2, 3

EPHEMERAL = 1 << 6
LOADING = 1 << 7

# Interaction callback types
PONG, CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE = 1, 4, 5, 6, 7
AUTOCOMPLETE_RESULT, MODAL = 8, 9
INITIAL_CALLBACK_TYPES = {1, 4, 5, 6, 7, 8, 9, 12}
# Which callback types each interaction type accepts (1 ping, 2 command, 3 component, 4 autocomplete, 5 modal)
ALLOWED_CALLBACKS: dict[int, set[int]] = {
    1: {PONG},
    2: {CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, MODAL},
    3: {CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE, MODAL},
    4: {AUTOCOMPLETE_RESULT},
    5: {CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE},
}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py only parses bodies whose content-type is exactly "application/json", as Discord sends
    body = json.dumps(data, separators=(",", ":")).encode()
    return web.Response(
        body=body, status=status, headers={"Content-Type": "application/json", **(headers or {})}
    )


def command_permission(target_id: int, kind: int, allow: bool) -> dict[str, Any]:
    """One override as Discord sends it: ``kind`` is PERMISSION_ROLE, _USER or _CHANNEL; a role id equal
    to the guild id is @everyone, a channel id of guild id - 1 is "all channels"."""
    return {"id": str(target_id), "type": kind, "permission": allow}


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


class Snowflakes:
    """Monotonic snowflakes with a real timestamp part (discord.py derives created_at from them)."""

    def __init__(self) -> None:
        self._counter = itertools.count()

    def next(self) -> int:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return (ms << 22) | (next(self._counter) & 0x3FFFFF)


def guild_id_for(index: int) -> int:
    """The id of the index-th configured guild (0-based): cheap, deterministic, no storage."""
    return GUILD_ID_BASE + index * GUILD_ID_STEP


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard Discord serves ``guild_id`` on."""
    return (guild_id >> 22) % shard_count


@dataclass(frozen=True)
class FakeGuild:
    """One configured guild. All ids are derived from the guild id, so building 10 000 is cheap.

    Channels: ``general`` and ``bot-log`` (the bot can post), ``no-access`` (an overwrite denies the
    bot's role View Channel and Send Messages). Roles: ``@everyone`` (id = guild id), the bot's managed
    role, and ``Admin`` (Manage Server).
    """

    id: int
    name: str
    member_count: int = 42
    locale: str = "en-US"

    @property
    def general_channel_id(self) -> int:
        return self.id + 1

    @property
    def log_channel_id(self) -> int:
        return self.id + 2

    @property
    def locked_channel_id(self) -> int:
        return self.id + 3

    @property
    def bot_role_id(self) -> int:
        return self.id + 4

    @property
    def admin_role_id(self) -> int:
        return self.id + 5

    @property
    def everyone_role_id(self) -> int:
        return self.id

    @property
    def channel_ids(self) -> tuple[int, int, int]:
        return (self.general_channel_id, self.log_channel_id, self.locked_channel_id)

    def channel_payload(self, channel_id: int) -> dict[str, Any]:
        names = {
            self.general_channel_id: ("general", 0),
            self.log_channel_id: ("bot-log", 1),
            self.locked_channel_id: ("no-access", 2),
        }
        name, position = names[channel_id]
        overwrites: list[dict[str, Any]] = []
        if channel_id == self.locked_channel_id:
            overwrites.append(
                {
                    "id": str(self.bot_role_id),
                    "type": 0,
                    "allow": "0",
                    "deny": str(VIEW_CHANNEL | SEND_MESSAGES),
                }
            )
        return {
            "id": str(channel_id),
            "type": 0,
            "guild_id": str(self.id),
            "name": name,
            "position": position,
            "parent_id": None,
            "topic": None,
            "nsfw": False,
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "permission_overwrites": overwrites,
            "flags": 0,
        }

    def roles_payload(self) -> list[dict[str, Any]]:
        def role(
            rid: int, name: str, perms: int, position: int, *, managed: bool = False, tags: Any = None
        ) -> dict[str, Any]:
            data: dict[str, Any] = {
                "id": str(rid),
                "name": name,
                "permissions": str(perms),
                "position": position,
                "color": 0,
                "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
                "hoist": False,
                "managed": managed,
                "mentionable": False,
                "icon": None,
                "unicode_emoji": None,
                "flags": 0,
            }
            if tags is not None:
                data["tags"] = tags
            return data

        return [
            role(self.everyone_role_id, "@everyone", EVERYONE_PERMISSIONS, 0),
            role(
                self.bot_role_id,
                "dscgg-bot",
                BOT_ROLE_PERMISSIONS,
                1,
                managed=True,
                tags={"bot_id": str(BOT_USER_ID)},
            ),
            role(self.admin_role_id, "Admin", ADMIN_ROLE_PERMISSIONS, 2),
        ]

    def bot_member_payload(self, bot_user: dict[str, Any]) -> dict[str, Any]:
        return {
            "user": bot_user,
            "roles": [str(self.bot_role_id)],
            "joined_at": "2025-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "nick": None,
            "avatar": None,
            "premium_since": None,
        }

    def payload(self, bot_user: dict[str, Any]) -> dict[str, Any]:
        """A GUILD_CREATE payload: enough for discord.py to compute the bot's channel permissions."""
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(OWNER_ID),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": self.locale,
            "system_channel_id": str(self.general_channel_id),
            "system_channel_flags": 0,
            "features": [],
            "roles": self.roles_payload(),
            "emojis": [],
            "stickers": [],
            "channels": [self.channel_payload(cid) for cid in self.channel_ids],
            "threads": [],
            "members": [self.bot_member_payload(bot_user)],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "member_count": self.member_count,
            "large": self.member_count > 250,
            "unavailable": False,
            "joined_at": "2025-01-01T00:00:00+00:00",
            "max_members": 500_000,
            "vanity_url_code": None,
            "premium_progress_bar_enabled": False,
        }


@dataclass
class RecordedRequest:
    """One HTTP request the fake received, with the answer it gave."""

    method: str
    path: str  # relative to /api/v10, e.g. "/interactions/1/tok/callback"
    route: str  # symbolic route name, e.g. "interaction_callback"; "unknown" when not served
    params: dict[str, str]  # path parameters
    query: dict[str, str]
    body: Any  # parsed JSON (payload_json for multipart), or None
    t_monotonic: float
    t_perf: float
    status: int = 0
    response: Any = None
    t_done_perf: float = 0.0
    files: list[str] = field(default_factory=list)
    authorization: str = field(default="", repr=False)

    @property
    def error_code(self) -> int | None:
        if isinstance(self.response, dict) and self.status >= 400:
            code = self.response.get("code")
            return int(code) if code is not None else None
        return None


@dataclass
class Callback:
    """One POST /interactions/{id}/{token}/callback, accepted or not."""

    interaction_id: int
    token: str
    type: int
    data: dict[str, Any]
    t_monotonic: float
    t_perf: float
    status: int = 0
    error_code: int | None = None

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300

    @property
    def flags(self) -> int:
        return int(self.data.get("flags") or 0)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def content(self) -> str | None:
        return self.data.get("content")

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return list(self.data.get("embeds") or [])

    @property
    def components(self) -> list[dict[str, Any]]:
        return list(self.data.get("components") or [])

    @property
    def allowed_mentions(self) -> dict[str, Any] | None:
        return self.data.get("allowed_mentions")

    @property
    def choices(self) -> list[dict[str, Any]] | None:
        return self.data.get("choices") if self.type == AUTOCOMPLETE_RESULT else None


@dataclass
class InteractionRecord:
    """What the fake knows about one dispatched interaction."""

    payload: dict[str, Any]
    t_sent_monotonic: float
    t_sent_perf: float
    callbacks: list[Callback] = field(default_factory=list)
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    deferred_followup_pending: bool = False  # after type 5 until the first edit / follow-up

    @property
    def id(self) -> int:
        return int(self.payload["id"])

    @property
    def token(self) -> str:
        return str(self.payload["token"])

    @property
    def type(self) -> int:
        return int(self.payload["type"])

    @property
    def initial(self) -> Callback | None:
        return next((cb for cb in self.callbacks if cb.accepted), None)


@dataclass
class SyncRecord:
    """One bulk overwrite of application commands."""

    scope: str  # "global" or "guild"
    guild_id: int | None
    commands: list[dict[str, Any]]
    t_monotonic: float


@dataclass
class ChannelPost:
    """A message the bot posted with POST /channels/{id}/messages (accepted or not)."""

    channel_id: int
    body: dict[str, Any]
    status: int
    message_id: int | None
    t_monotonic: float


@dataclass
class GatewaySession:
    ws: web.WebSocketResponse
    query: dict[str, str]
    session_id: str
    seq: int = 0
    identify: dict[str, Any] | None = None
    heartbeats: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def identified(self) -> bool:
        return self.identify is not None and not self.ws.closed

    @property
    def shard(self) -> tuple[int, int]:
        """(shard id, shard count) from IDENTIFY; (0, 1) for an unsharded connection."""
        shard = (self.identify or {}).get("shard") or (0, 1)
        return int(shard[0]), int(shard[1])

    def serves(self, guild_id: int | None) -> bool:
        """Whether events of ``guild_id`` (None: direct messages, shard 0) go to this connection."""
        shard_id, count = self.shard
        return shard_id == (0 if guild_id is None else shard_of(guild_id, count))


#: The locales Discord accepts as keys of ``name_localizations`` / ``description_localizations``.
DISCORD_LOCALES = frozenset(locale.value for locale in discord.Locale)


def _valid_name(name: object) -> bool:
    """Discord's rule for CHAT_INPUT names: ``^[-_\\p{L}\\p{N}\\p{sc=Deva}\\p{sc=Thai}]{1,32}$``,
    lowercase where a lowercase form exists."""
    if not isinstance(name, str) or not 1 <= len(name) <= 32 or name != name.lower():
        return False
    return all(
        char in "-_"
        or unicodedata.category(char)[0] in "LN"
        or unicodedata.name(char, "").startswith(("DEVANAGARI", "THAI"))
        for char in name
    )


def command_problems(command: Mapping[str, Any], where: str = "") -> list[str]:
    """Why Discord would refuse ``command`` (a CHAT_INPUT command or option, localizations included)."""
    where = f"{where} {command.get('name')}".strip()
    problems: list[str] = []
    names = {"": command.get("name"), **(command.get("name_localizations") or {})}
    descriptions = {"": command.get("description"), **(command.get("description_localizations") or {})}
    for kind, values in (("name", names), ("description", descriptions)):
        for locale, value in values.items():
            if locale and locale not in DISCORD_LOCALES:
                problems.append(f"{where}: unknown locale {locale!r} in {kind}_localizations")
            elif kind == "name" and not _valid_name(value):
                problems.append(f"{where}: invalid name {value!r} ({locale or 'default'})")
            elif kind == "description" and not (isinstance(value, str) and 1 <= len(value) <= 100):
                problems.append(
                    f"{where}: description of {len(str(value))} characters ({locale or 'default'})"
                )
    options = list(command.get("options") or [])
    for locale in {"", *(loc for o in options for loc in (o.get("name_localizations") or {}))}:
        shown = [
            (o.get("name_localizations") or {}).get(locale, o.get("name")) if locale else o.get("name")
            for o in options
        ]
        if len(shown) != len(set(shown)):
            problems.append(f"{where}: option names collide ({locale or 'default'}): {shown}")
    for option in options:
        problems.extend(command_problems(option, where))
        for choice in option.get("choices") or []:
            for locale, value in {"": choice.get("name"), **(choice.get("name_localizations") or {})}.items():
                if (locale and locale not in DISCORD_LOCALES) or not 1 <= len(str(value)) <= 100:
                    problems.append(f"{where} {option.get('name')}: invalid choice name {value!r}")
    return problems


class FakeHTTPError(Exception):
    def __init__(self, status: int, code: int, message: str, errors: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


@dataclass
class _Failure:
    status: int
    code: int
    message: str
    times: int | None  # None: until cleared


@dataclass
class _RateLimit:
    retry_after: float
    times: int | None  # None: until cleared
    via: bool  # discord.py waits out a 429 itself only when the answer came through Discord's proxy


def _limit_errors(data: dict[str, Any]) -> list[str]:
    """Discord's message limits (400 50035 when broken): content, embeds, components."""
    problems: list[str] = []
    content = data.get("content")
    if isinstance(content, str) and len(content) > 2000:
        problems.append("content: must be 2000 or fewer in length")
    embeds = data.get("embeds") or []
    if len(embeds) > 10:
        problems.append("embeds: must be 10 or fewer in length")
    total = 0
    for i, embed in enumerate(embeds):
        for key, limit in (("title", 256), ("description", 4096)):
            value = embed.get(key) or ""
            total += len(value)
            if len(value) > limit:
                problems.append(f"embeds.{i}.{key}: must be {limit} or fewer in length")
        fields = embed.get("fields") or []
        if len(fields) > 25:
            problems.append(f"embeds.{i}.fields: must be 25 or fewer in length")
        for j, fld in enumerate(fields):
            name, value = fld.get("name") or "", fld.get("value") or ""
            total += len(name) + len(value)
            if not name or len(name) > 256:
                problems.append(f"embeds.{i}.fields.{j}.name: must be 1-256 in length")
            if not value or len(value) > 1024:
                problems.append(f"embeds.{i}.fields.{j}.value: must be 1-1024 in length")
        footer = (embed.get("footer") or {}).get("text") or ""
        author = (embed.get("author") or {}).get("name") or ""
        total += len(footer) + len(author)
        if len(footer) > 2048:
            problems.append(f"embeds.{i}.footer.text: must be 2048 or fewer in length")
        if len(author) > 256:
            problems.append(f"embeds.{i}.author.name: must be 256 or fewer in length")
    if total > 6000:
        problems.append("embeds: total length must be 6000 or fewer")
    problems.extend(_component_errors(data.get("components") or [], int(data.get("flags") or 0)))
    return problems


def _component_errors(rows: list[dict[str, Any]], flags: int) -> list[str]:
    problems: list[str] = []
    components_v2 = bool(flags & (1 << 15))
    if not components_v2 and len(rows) > 5:
        problems.append("components: must be 5 or fewer in length")
    seen: set[str] = set()
    for comp in walk_components(rows):
        custom_id = comp.get("custom_id")
        if custom_id is not None:
            if not 1 <= len(custom_id) <= 100:
                problems.append(f"custom_id {custom_id!r}: must be 1-100 in length")
            if custom_id in seen:
                problems.append(f"custom_id {custom_id!r}: must be unique")
            seen.add(custom_id)
        label = comp.get("label")
        if comp.get("type") == 2 and label is not None and len(label) > 80:
            problems.append(f"button label {label!r}: must be 80 or fewer in length")
    for i, row in enumerate(rows):
        if row.get("type") == 1 and len(row.get("components") or []) > 5:
            problems.append(f"components.{i}.components: must be 5 or fewer in length")
    return problems


def walk_components(components: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    """Every component, depth first, through action rows, labels, sections and containers."""
    for comp in components:
        yield comp
        if comp.get("components"):
            yield from walk_components(comp["components"])
        if isinstance(comp.get("component"), dict):
            yield from walk_components([comp["component"]])
        if isinstance(comp.get("accessory"), dict):
            yield from walk_components([comp["accessory"]])


class FakeDiscord:
    """Discord's REST API and gateway on 127.0.0.1; see the module docstring."""

    def __init__(
        self,
        *,
        guilds: int | Sequence[FakeGuild] = 1,
        host: str = "127.0.0.1",
        port: int = 0,
        heartbeat_interval_ms: int = 41_250,
        initial_response_deadline: float | None = 3.0,
        bot_name: str = "dscgg-bot",
        token: str | None = None,
        recommended_shards: int = 1,
    ) -> None:
        self.host = host
        self.recommended_shards = recommended_shards  # GET /gateway/bot's "shards"
        self.port = port
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.initial_response_deadline = initial_response_deadline
        self.token = token  # when set, REST calls with another bot token get 401
        self.snowflakes = Snowflakes()
        if isinstance(guilds, int):
            self._guild_count = guilds
            self._guild_list: list[FakeGuild] | None = None
        else:
            self._guild_list = list(guilds)
            self._guild_count = len(self._guild_list)
        self.bot_user: dict[str, Any] = {
            "id": str(BOT_USER_ID),
            "username": bot_name,
            "global_name": None,
            "discriminator": "0",
            "avatar": None,
            "bot": True,
            "system": False,
            "public_flags": 0,
            "flags": 0,
            "verified": True,
            "mfa_enabled": False,
            "locale": "en-US",
        }
        self.owner_user: dict[str, Any] = {
            "id": str(OWNER_ID),
            "username": "owner",
            "global_name": "Owner",
            "discriminator": "0",
            "avatar": None,
            "public_flags": 0,
        }
        self.app_id = APP_ID
        # Recordings
        self.requests: list[RecordedRequest] = []
        self.unknown_requests: list[RecordedRequest] = []
        self.callbacks: list[Callback] = []
        self.interactions: dict[int, InteractionRecord] = {}
        self._by_token: dict[str, InteractionRecord] = {}
        self.messages: dict[int, dict[str, Any]] = {}
        self.deleted_messages: set[int] = set()
        self.syncs: list[SyncRecord] = []
        self.commands: dict[int | None, list[dict[str, Any]]] = {}  # None: global
        self._command_ids: dict[tuple[int | None, str, int], int] = {}
        #: Command permission overrides: guild id → target (command id, or the app id) → overrides.
        self.command_permissions: dict[int, dict[int, list[dict[str, Any]]]] = {}
        #: Discord OAuth access tokens: token → (user payload, partial guilds as /users/@me/guilds lists).
        self.oauth_tokens: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
        #: The authorization code grant: the accepted client (id, secret; None: any), the access token
        #: of the user signed in to the consent page, codes not yet exchanged, revoked tokens.
        self.oauth_client: tuple[int, str] | None = None
        self.signed_in: str | None = None
        self.oauth_codes: dict[str, tuple[str, str, str]] = {}  # code → (token, redirect_uri, scope)
        self.oauth_expires_in = 604_800
        self.revoked_tokens: list[str] = []
        #: Users that ``GET /users/{id}`` names (the OAuth logins' users are added here).
        self.users: dict[int, dict[str, Any]] = {}
        self.channel_posts: list[ChannelPost] = []
        self.deleted_channels: set[int] = set()
        self.forbidden_channels: set[int] = set()
        self._held_channels: dict[int, asyncio.Event] = {}
        self._rate_limited_channels: dict[int, _RateLimit] = {}
        self.sessions: list[GatewaySession] = []
        self.gateway_connections: list[dict[str, str]] = []
        self.in_flight = 0
        # Fault switches
        self._latency: dict[str, float] = {}
        self._failures: dict[str, _Failure] = {}
        # Runtime
        self._changed: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> FakeDiscord:
        self._changed = asyncio.Event()
        app = web.Application(middlewares=[self._middleware], client_max_size=32 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_post("/_fake/interactions", self._control_dispatch)
        app.router.add_get("/_fake/recordings", self._control_recordings)
        app.router.add_get("/oauth2/authorize", self._consent_page)
        app.router.add_post("/oauth2/authorize", self._consent_answer)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._api)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.host, self.port)
        await self._site.start()
        server = self._site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        for gate in self._held_channels.values():
            gate.set()
        for session in list(self.sessions):
            if not session.ws.closed:
                await session.ws.close(code=1001, message=b"fake shutting down")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_base(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/gateway"

    # -- guilds ------------------------------------------------------------------------------------

    @property
    def guild_count(self) -> int:
        return self._guild_count

    @property
    def guild_ids(self) -> list[int]:
        if self._guild_list is not None:
            return [g.id for g in self._guild_list]
        return [guild_id_for(i) for i in range(self._guild_count)]

    def guilds(self) -> Iterable[FakeGuild]:
        if self._guild_list is not None:
            yield from self._guild_list
        else:
            for i in range(self._guild_count):
                yield FakeGuild(id=guild_id_for(i), name=f"Guild {i}")

    def guild(self, guild_id: int | None = None) -> FakeGuild:
        """The guild with that id (default: the first configured guild)."""
        if guild_id is None:
            return next(iter(self.guilds()))
        if self._guild_list is not None:
            for g in self._guild_list:
                if g.id == guild_id:
                    return g
        else:
            index, rest = divmod(guild_id - GUILD_ID_BASE, GUILD_ID_STEP)
            if rest == 0 and 0 <= index < self._guild_count:
                return FakeGuild(id=guild_id, name=f"Guild {index}")
        raise KeyError(guild_id)

    def guild_payload(self, guild_id: int) -> dict[str, Any]:
        return self.guild(guild_id).payload(self.bot_user)

    def channel(self, channel_id: int) -> tuple[FakeGuild, dict[str, Any]] | None:
        """The guild and channel payload of a configured channel, or None."""
        offset = (channel_id - GUILD_ID_BASE) % GUILD_ID_STEP
        if offset not in (1, 2, 3):
            return None
        try:
            guild = self.guild(channel_id - offset)
        except KeyError:
            return None
        return guild, guild.channel_payload(channel_id)

    def add_oauth_token(
        self,
        token: str,
        user_id: int,
        guilds: Sequence[tuple[int, int, bool] | tuple[int, int, bool, str]] = (),
        name: str = "oauth-user",
    ) -> None:
        """Let ``token`` log in as ``user_id``; ``guilds``: (guild id, permissions, owner[, name]) of each
        server the user is in (named "Guild <id>" unless a name is given)."""
        user = {
            "id": str(user_id),
            "username": name,
            "global_name": None,
            "discriminator": "0",
            "avatar": None,
            "public_flags": 0,
        }
        partial: list[dict[str, Any]] = [
            {
                "id": str(guild[0]),
                "name": guild[3] if len(guild) > 3 else f"Guild {guild[0]}",
                "icon": None,
                "owner": guild[2],
                "permissions": str(guild[1]),
                "features": [],
            }
            for guild in guilds
        ]
        self.oauth_tokens[token] = (user, partial)
        self.users[user_id] = user
        if self.signed_in is None:
            self.signed_in = token

    def sign_in(self, token: str) -> None:
        """The consent page authorizes as the user of the OAuth login ``token`` from now on."""
        self.signed_in = token

    # -- fault switches ----------------------------------------------------------------------------

    def set_latency(self, route: str, seconds: float) -> None:
        """Delay every answer on ``route`` (a route name, or "*" for all) by ``seconds``."""
        self._latency[route] = seconds

    def fail(
        self,
        route: str,
        *,
        status: int = 500,
        code: int = 0,
        message: str = "Internal Server Error",
        times: int | None = None,
    ) -> None:
        """Answer ``route`` with an error, ``times`` times (None: until ``clear_failures``)."""
        self._failures[route] = _Failure(status, code, message, times)

    def clear_failures(self) -> None:
        self._failures.clear()
        self._latency.clear()

    def delete_channel(self, channel_id: int) -> None:
        self.deleted_channels.add(channel_id)

    def forbid_channel(self, channel_id: int) -> None:
        self.forbidden_channels.add(channel_id)

    def hold_channel(self, channel_id: int) -> None:
        """Posts to ``channel_id`` are received (and recorded as requests) but answered only once
        ``release_channel`` is called: a log channel as slow as a test needs. A held post does not count
        as in flight (``wait_idle`` and the harness do not wait for it)."""
        self._held_channels.setdefault(channel_id, asyncio.Event())

    def release_channel(self, channel_id: int) -> None:
        gate = self._held_channels.pop(channel_id, None)
        if gate is not None:
            gate.set()

    def rate_limit_channel(
        self, channel_id: int, retry_after: float, *, times: int | None = None, via: bool = True
    ) -> None:
        """Answer posts to ``channel_id`` with 429 (``times`` times; None: until cleared), as Discord does.

        ``via``: the answer carries Discord's proxy header, so discord.py waits ``retry_after`` and tries
        again by itself (up to 5 tries); without it discord.py raises at once.
        """
        self._rate_limited_channels[channel_id] = _RateLimit(retry_after, times, via)

    def clear_rate_limit(self, channel_id: int) -> None:
        self._rate_limited_channels.pop(channel_id, None)

    # -- command permissions -----------------------------------------------------------------------

    def set_command_permissions(
        self, guild_id: int, target_id: int, permissions: Sequence[dict[str, Any]]
    ) -> dict[str, Any]:
        """Replace the overrides of ``target_id`` (a command id, or ``app_id`` for the whole app) in a
        guild, as an admin would in Server Settings → Integrations (empty: removed). Returns the
        APPLICATION_COMMAND_PERMISSIONS_UPDATE payload."""
        guild = self.command_permissions.setdefault(guild_id, {})
        if permissions:
            guild[target_id] = [dict(p) for p in permissions]
        else:
            guild.pop(target_id, None)
        return self._permissions_payload(guild_id, target_id, list(permissions))

    async def update_command_permissions(
        self, guild_id: int, target_id: int, permissions: Sequence[dict[str, Any]]
    ) -> dict[str, Any]:
        """``set_command_permissions``, then dispatch the event to every identified gateway session."""
        payload = self.set_command_permissions(guild_id, target_id, permissions)
        await self.dispatch("APPLICATION_COMMAND_PERMISSIONS_UPDATE", payload)
        return payload

    def _permissions_payload(
        self, guild_id: int, target_id: int, permissions: list[dict[str, Any]]
    ) -> dict[str, Any]:
        return {
            "id": str(target_id),
            "application_id": str(self.app_id),
            "guild_id": str(guild_id),
            "permissions": copy.deepcopy(permissions),
        }

    # -- waiting -----------------------------------------------------------------------------------

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:  # noqa: ASYNC109 (the API tests use)
        """Wait until ``predicate()`` is truthy (re-checked on every recorded change); return it."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout}s")
            assert self._changed is not None, "FakeDiscord is not started"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.05))

    async def wait_for_callback(self, interaction_id: int | str, timeout: float = 5.0) -> Callback:  # noqa: ASYNC109 (the API tests use)
        """The first callback (accepted or not) for that interaction."""
        iid = int(interaction_id)

        def first() -> Callback | None:
            return next((cb for cb in self.callbacks if cb.interaction_id == iid), None)

        result: Callback = await self.wait_for(first, timeout)
        return result

    async def wait_idle(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 (the API tests use)
        """Wait until no request is being served."""
        await self.wait_for(lambda: self.in_flight == 0, timeout)

    def callbacks_for(self, interaction_id: int | str) -> list[Callback]:
        iid = int(interaction_id)
        return [cb for cb in self.callbacks if cb.interaction_id == iid]

    def requests_for_token(self, token: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.params.get("token") == token]

    def requests_to(self, route: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.route == route]

    # -- gateway -----------------------------------------------------------------------------------

    @property
    def identified_sessions(self) -> list[GatewaySession]:
        return [s for s in self.sessions if s.identified]

    async def dispatch(self, event: str, data: dict[str, Any]) -> int:
        """Send a DISPATCH to every identified session; returns how many got it."""
        sent = 0
        for session in self.identified_sessions:
            await self._send_dispatch(session, event, data)
            sent += 1
        return sent

    def register_interaction(self, payload: dict[str, Any]) -> InteractionRecord:
        """Make the fake accept callbacks and webhooks for this interaction (its clock starts now)."""
        record = InteractionRecord(
            payload=payload, t_sent_monotonic=time.monotonic(), t_sent_perf=time.perf_counter()
        )
        self.interactions[record.id] = record
        self._by_token[record.token] = record
        self._notify()
        return record

    async def dispatch_interaction(self, payload: dict[str, Any]) -> InteractionRecord:
        """Register the interaction and send INTERACTION_CREATE to the sessions of its guild's shard."""
        guild_id = int(payload["guild_id"]) if payload.get("guild_id") else None
        sessions = [s for s in self.identified_sessions if s.serves(guild_id)]
        if not sessions:
            raise RuntimeError(f"no identified gateway session serves guild {guild_id} to dispatch to")
        record = self.register_interaction(payload)
        for session in sessions:
            await self._send_dispatch(session, "INTERACTION_CREATE", payload)
        return record

    def ready_payload(self, session: GatewaySession) -> dict[str, Any]:
        return {
            "v": 10,
            "user": self.bot_user,
            "guilds": [
                {"id": str(gid), "unavailable": True} for gid in self.guild_ids if session.serves(gid)
            ],
            "session_id": session.session_id,
            "resume_gateway_url": self.gateway_url,
            "shard": list(session.shard),
            "application": {"id": str(self.app_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "auth": {},
            "_trace": ["fake-discord"],
        }

    async def _send(self, session: GatewaySession, message: dict[str, Any]) -> None:
        async with session.lock:
            if not session.ws.closed:
                await session.ws.send_str(json.dumps(message, separators=(",", ":")))

    async def _send_dispatch(self, session: GatewaySession, event: str, data: dict[str, Any]) -> None:
        async with session.lock:
            if session.ws.closed:
                return
            session.seq += 1
            frame = {"op": 0, "t": event, "s": session.seq, "d": data}
            await session.ws.send_str(json.dumps(frame, separators=(",", ":")))

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        session = GatewaySession(
            ws=ws, query=dict(request.query), session_id=f"fake-{self.snowflakes.next()}"
        )
        self.sessions.append(session)
        self.gateway_connections.append(dict(request.query))
        self._notify()
        await self._send(
            session, {"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}, "s": None}
        )
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                try:
                    frame = json.loads(msg.data)
                except ValueError:
                    await ws.close(code=4002, message=b"Error while decoding payload.")
                    break
                await self._gateway_op(session, frame)
        finally:
            self._notify()
        return ws

    async def _gateway_op(self, session: GatewaySession, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        data: Any = frame.get("d") or {}
        if op == 1:  # HEARTBEAT
            session.heartbeats += 1
            await self._send(session, {"op": 11})
        elif op == 2:  # IDENTIFY
            session.identify = data
            await self._send_dispatch(session, "READY", self.ready_payload(session))
            for guild in self.guilds():
                if session.serves(guild.id):
                    await self._send_dispatch(session, "GUILD_CREATE", guild.payload(self.bot_user))
            self._notify()
        elif op == 6:  # RESUME: not supported; tell the client to identify afresh
            await self._send(session, {"op": 9, "d": False})
        elif op == 8:  # REQUEST_GUILD_MEMBERS: the bot's own member only
            guild = self.guild(int(data["guild_id"]))
            chunk = {
                "guild_id": str(guild.id),
                "members": [guild.bot_member_payload(self.bot_user)],
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": [],
            }
            if data.get("nonce"):
                chunk["nonce"] = data["nonce"]
            await self._send_dispatch(session, "GUILD_MEMBERS_CHUNK", chunk)
        # op 3 (presence), 4 (voice) and others are accepted and ignored.

    # -- control API (standalone mode) -------------------------------------------------------------

    async def _control_dispatch(self, request: web.Request) -> web.Response:
        payload = await request.json()
        record = await self.dispatch_interaction(payload)
        return _json({"id": str(record.id), "t_sent_perf": record.t_sent_perf})

    async def _control_recordings(self, request: web.Request) -> web.Response:
        return _json(self.recordings())

    def recordings(self) -> dict[str, Any]:
        """Everything recorded, as JSON-able data."""
        return {
            "requests": [
                {
                    "method": r.method,
                    "path": r.path,
                    "route": r.route,
                    "status": r.status,
                    "body": r.body,
                    "t_monotonic": r.t_monotonic,
                }
                for r in self.requests
            ],
            "callbacks": [
                {
                    "interaction_id": str(cb.interaction_id),
                    "type": cb.type,
                    "data": cb.data,
                    "status": cb.status,
                    "error_code": cb.error_code,
                    "t_monotonic": cb.t_monotonic,
                }
                for cb in self.callbacks
            ],
            "syncs": [
                {"scope": s.scope, "guild_id": s.guild_id, "count": len(s.commands)} for s in self.syncs
            ],
            "channel_posts": [
                {"channel_id": str(p.channel_id), "status": p.status, "body": p.body}
                for p in self.channel_posts
            ],
            "interactions": {
                str(i.id): {
                    "t_sent_monotonic": i.t_sent_monotonic,
                    "original_message_id": i.original_message_id,
                }
                for i in self.interactions.values()
            },
            "identified_sessions": len(self.identified_sessions),
            "identified_shards": [list(s.shard) for s in self.identified_sessions],
        }

    # -- REST plumbing -----------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.in_flight += 1
        try:
            response: web.StreamResponse = await handler(request)
            return response
        finally:
            self.in_flight -= 1
            self._notify()

    _ROUTES: tuple[tuple[str, tuple[str, ...], str], ...] = (
        # (method, path segments, route name); "{x}" captures, "@me"/"@original" literal
        ("GET", ("users", "@me"), "get_me"),
        ("GET", ("users", "@me", "guilds"), "get_my_guilds"),
        ("GET", ("guilds", "{guild}"), "get_guild"),
        ("GET", ("guilds", "{guild}", "channels"), "get_guild_channels"),
        ("GET", ("guilds", "{guild}", "members", "{user}"), "get_guild_member"),
        ("GET", ("users", "{user}"), "get_user"),
        ("POST", ("oauth2", "token"), "oauth2_token"),
        ("POST", ("oauth2", "token", "revoke"), "oauth2_revoke"),
        ("GET", ("oauth2", "applications", "@me"), "application_info"),
        ("GET", ("applications", "@me"), "application_info"),
        ("GET", ("gateway",), "gateway"),
        ("GET", ("gateway", "bot"), "gateway_bot"),
        ("PUT", ("applications", "{app}", "commands"), "put_global_commands"),
        ("GET", ("applications", "{app}", "commands"), "get_global_commands"),
        ("PUT", ("applications", "{app}", "guilds", "{guild}", "commands"), "put_guild_commands"),
        ("GET", ("applications", "{app}", "guilds", "{guild}", "commands"), "get_guild_commands"),
        (
            "GET",
            ("applications", "{app}", "guilds", "{guild}", "commands", "permissions"),
            "get_guild_command_permissions",
        ),
        ("POST", ("interactions", "{interaction}", "{token}", "callback"), "interaction_callback"),
        ("GET", ("webhooks", "{app}", "{token}", "messages", "@original"), "get_original"),
        ("PATCH", ("webhooks", "{app}", "{token}", "messages", "@original"), "edit_original"),
        ("DELETE", ("webhooks", "{app}", "{token}", "messages", "@original"), "delete_original"),
        ("POST", ("webhooks", "{app}", "{token}"), "followup"),
        ("GET", ("webhooks", "{app}", "{token}", "messages", "{message}"), "get_webhook_message"),
        ("PATCH", ("webhooks", "{app}", "{token}", "messages", "{message}"), "edit_webhook_message"),
        ("DELETE", ("webhooks", "{app}", "{token}", "messages", "{message}"), "delete_webhook_message"),
        ("POST", ("channels", "{channel}", "messages"), "channel_message"),
        ("GET", ("channels", "{channel}"), "get_channel"),
    )

    def _match(self, method: str, segments: list[str]) -> tuple[str, dict[str, str]] | None:
        for route_method, pattern, name in self._ROUTES:
            if route_method != method or len(pattern) != len(segments):
                continue
            params: dict[str, str] = {}
            for want, got in zip(pattern, segments, strict=True):
                if want.startswith("{"):
                    if got.startswith("@"):
                        break
                    params[want[1:-1]] = got
                elif want != got:
                    break
            else:
                return name, params
        return None

    async def _read_body(self, request: web.Request) -> tuple[Any, list[str]]:
        if not request.body_exists:
            return None, []
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            files = [v.filename for k, v in form.items() if isinstance(v, web.FileField)]
            raw = form.get("payload_json")
            return (json.loads(raw) if isinstance(raw, str) else None), files
        text = await request.text()
        if not text:
            return None, []
        try:
            return json.loads(text), []
        except ValueError:
            return text, []

    async def _api(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        segments = [s for s in path.split("/") if s]
        matched = self._match(request.method, segments)
        body, files = await self._read_body(request)
        record = RecordedRequest(
            method=request.method,
            path=path,
            route=matched[0] if matched else "unknown",
            params=matched[1] if matched else {},
            query=dict(request.query),
            body=body,
            t_monotonic=time.monotonic(),
            t_perf=time.perf_counter(),
            files=files,
            authorization=request.headers.get("Authorization", ""),
        )
        self.requests.append(record)
        self._notify()
        delay = self._latency.get(record.route, self._latency.get("*", 0.0))
        if delay:
            await asyncio.sleep(delay)
        if record.route == "channel_message":
            limited = await self._channel_gates(record)
            if limited is not None:
                return limited
        status, response = await self._serve(request, record)
        record.status, record.response, record.t_done_perf = status, response, time.perf_counter()
        if record.route == "unknown":
            self.unknown_requests.append(record)
        self._notify()
        if response is None:
            return web.Response(status=status)
        return _json(response, status)

    async def _channel_gates(self, record: RecordedRequest) -> web.Response | None:
        """Hold a post to a held channel; answer one to a rate-limited channel with 429."""
        channel_id = int(record.params["channel"])
        gate = self._held_channels.get(channel_id)
        if gate is not None:
            self.in_flight -= 1  # parked on purpose: wait_idle (and the harness) do not wait for it
            self._notify()
            try:
                await gate.wait()
            finally:
                self.in_flight += 1
        limit = self._rate_limited_channels.get(channel_id)
        if limit is None:
            return None
        if limit.times is not None:
            limit.times -= 1
            if limit.times <= 0:
                self._rate_limited_channels.pop(channel_id, None)
        body = {"message": "You are being rate limited.", "retry_after": limit.retry_after, "global": False}
        data = record.body if isinstance(record.body, dict) else {}
        self.channel_posts.append(ChannelPost(channel_id, data, 429, None, record.t_monotonic))
        record.status, record.response, record.t_done_perf = 429, body, time.perf_counter()
        self._notify()
        headers = {"Retry-After": str(limit.retry_after), "X-RateLimit-Scope": "user"}
        if limit.via:
            headers["Via"] = "1.1 google"
        return _json(body, 429, headers)

    async def _serve(self, request: web.Request, record: RecordedRequest) -> tuple[int, Any]:
        if record.route == "unknown":
            return 404, {"code": 0, "message": "404: Not Found"}
        if self.token is not None and not record.route.startswith(("interaction_", "get_original")):
            auth = request.headers.get("Authorization", "")
            if auth.startswith("Bot ") and auth != f"Bot {self.token}":
                return 401, {"code": 0, "message": "401: Unauthorized"}
        failure = self._failures.get(record.route) or self._failures.get("*")
        if failure is not None:
            if failure.times is not None:
                failure.times -= 1
                if failure.times <= 0:
                    self._failures = {k: v for k, v in self._failures.items() if v is not failure}
            if record.route == "interaction_callback":  # still recorded, as a rejected callback
                cb = self._callback_from(record)
                cb.status, cb.error_code = failure.status, failure.code
                known = self._by_token.get(cb.token)
                if known is not None and known.id == cb.interaction_id:
                    known.callbacks.append(cb)
            return failure.status, {"code": failure.code, "message": failure.message}
        handler = getattr(self, "_route_" + record.route)
        try:
            result: tuple[int, Any] = handler(record)
            return result
        except FakeHTTPError as exc:
            return exc.status, exc.body()

    # -- REST routes -------------------------------------------------------------------------------

    def _oauth(self, r: RecordedRequest) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """The OAuth login of a Bearer request; None for a bot request. FakeHTTPError 401 if unknown."""
        if not r.authorization.startswith("Bearer "):
            return None
        login = self.oauth_tokens.get(r.authorization.removeprefix("Bearer "))
        if login is None:
            raise FakeHTTPError(401, 0, "401: Unauthorized")
        return login

    def _route_get_me(self, r: RecordedRequest) -> tuple[int, Any]:
        login = self._oauth(r)
        return 200, self.bot_user if login is None else login[0]

    def _route_get_my_guilds(self, r: RecordedRequest) -> tuple[int, Any]:
        login = self._oauth(r)
        if login is None:
            return 200, [
                {
                    "id": str(g.id),
                    "name": g.name,
                    "icon": None,
                    "owner": False,
                    "permissions": "0",
                    "features": [],
                }
                for g in self.guilds()
            ]
        return 200, login[1]

    #: GUILD_CREATE fields that Discord's REST guild object does not have.
    _GATEWAY_ONLY = frozenset(
        {"channels", "threads", "members", "voice_states", "presences", "stage_instances", "large"}
        | {"guild_scheduled_events", "soundboard_sounds", "member_count", "unavailable", "joined_at"}
    )

    def _route_get_guild(self, r: RecordedRequest) -> tuple[int, Any]:
        """The REST guild object: like GUILD_CREATE without its channels, members and other gateway-only
        fields (they have endpoints of their own)."""
        try:
            payload = self.guild_payload(int(r.params["guild"]))
        except (KeyError, ValueError):
            raise FakeHTTPError(404, 10004, "Unknown Guild") from None
        return 200, {key: value for key, value in payload.items() if key not in self._GATEWAY_ONLY}

    def _configured_guild(self, r: RecordedRequest) -> FakeGuild:
        try:
            return self.guild(int(r.params["guild"]))
        except (KeyError, ValueError):
            raise FakeHTTPError(404, 10004, "Unknown Guild") from None

    def _route_get_guild_channels(self, r: RecordedRequest) -> tuple[int, Any]:
        guild = self._configured_guild(r)
        return 200, [
            guild.channel_payload(cid) for cid in guild.channel_ids if cid not in self.deleted_channels
        ]

    def _route_get_guild_member(self, r: RecordedRequest) -> tuple[int, Any]:
        guild = self._configured_guild(r)
        if r.params["user"] != str(BOT_USER_ID):
            raise FakeHTTPError(404, 10007, "Unknown Member")
        return 200, guild.bot_member_payload(self.bot_user)

    def _route_get_user(self, r: RecordedRequest) -> tuple[int, Any]:
        try:
            user_id = int(r.params["user"])
        except ValueError:
            raise FakeHTTPError(404, 10013, "Unknown User") from None
        user = self.users.get(user_id) or {
            "id": str(user_id),
            "username": f"user-{user_id % 10_000:04d}",
            "global_name": None,
            "discriminator": "0",
            "avatar": None,
            "public_flags": 0,
        }
        return 200, user

    @staticmethod
    def _form(r: RecordedRequest) -> dict[str, str]:
        return dict(parse_qsl(r.body if isinstance(r.body, str) else "", keep_blank_values=True))

    def _oauth_client_ok(self, r: RecordedRequest, form: dict[str, str]) -> bool:
        if self.oauth_client is None:
            return True
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if r.authorization.startswith("Basic "):
            try:
                decoded = base64.b64decode(r.authorization.removeprefix("Basic ")).decode()
            except (ValueError, UnicodeDecodeError):
                return False
            client_id, _, secret = decoded.partition(":")
        return (client_id, secret) == (str(self.oauth_client[0]), self.oauth_client[1])

    def _route_oauth2_token(self, r: RecordedRequest) -> tuple[int, Any]:
        form = self._form(r)
        if not self._oauth_client_ok(r, form):
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        grant = self.oauth_codes.pop(form.get("code", ""), None)
        if grant is None or grant[1] != form.get("redirect_uri"):
            return 400, {"error": "invalid_grant", "error_description": 'Invalid "code" in request.'}
        token, _, scope = grant
        return 200, {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.oauth_expires_in,
            "refresh_token": f"refresh-{secrets.token_hex(8)}",
            "scope": scope,
        }

    def _route_oauth2_revoke(self, r: RecordedRequest) -> tuple[int, Any]:
        form = self._form(r)
        if not self._oauth_client_ok(r, form):
            return 401, {"error": "invalid_client"}
        token = form.get("token", "")
        if self.oauth_tokens.pop(token, None) is not None:
            self.revoked_tokens.append(token)
        return 200, {}

    async def _consent_page(self, request: web.Request) -> web.Response:
        """Discord's "An external application wants to access your account" page, reduced to its form."""
        query = request.query
        problem = self._consent_problem(query)
        if problem is not None:
            return web.Response(status=400, text=problem)
        user = self.oauth_tokens[self.signed_in or ""][0]
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
            for name, value in query.items()
        )
        scopes = "".join(f"<li>{html.escape(scope)}</li>" for scope in query.get("scope", "").split())
        page = (
            "<!doctype html><html lang=en><meta charset=utf-8><title>Discord</title>"
            f"<h1>{html.escape(self.bot_user['username'])} wants to access your account</h1>"
            f"<p>Signed in as <b>{html.escape(user['username'])}</b></p><ul>{scopes}</ul>"
            f'<form method="post">{hidden}'
            '<button type="submit" name="decision" value="cancel">Cancel</button> '
            '<button type="submit" name="decision" value="authorize">Authorize</button></form></html>'
        )
        return web.Response(text=page, content_type="text/html")

    def _consent_problem(self, query: Any) -> str | None:
        if self.signed_in is None or self.signed_in not in self.oauth_tokens:
            return "nobody is signed in to the fake Discord (add_oauth_token, sign_in)"
        if query.get("response_type") != "code" or not query.get("redirect_uri"):
            return "invalid OAuth2 request: response_type=code and redirect_uri are required"
        if self.oauth_client is not None and query.get("client_id") != str(self.oauth_client[0]):
            return "unknown client_id"
        if "identify" not in query.get("scope", "").split():
            return "invalid scope"
        return None

    async def _consent_answer(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        query = {key: str(value) for key, value in form.items() if key != "decision"}
        problem = self._consent_problem(query)
        if problem is not None:
            return web.Response(status=400, text=problem)
        back: dict[str, str] = {"state": query.get("state", "")}
        if form.get("decision") == "authorize":
            code = secrets.token_urlsafe(16)
            self.oauth_codes[code] = (self.signed_in or "", query["redirect_uri"], query.get("scope", ""))
            back["code"] = code
        else:
            back["error"] = "access_denied"
            back["error_description"] = "The resource owner or authorization server denied the request"
        separator = "&" if "?" in query["redirect_uri"] else "?"
        raise web.HTTPFound(query["redirect_uri"] + separator + urlencode(back))

    def _route_application_info(self, r: RecordedRequest) -> tuple[int, Any]:
        return 200, {
            "id": str(self.app_id),
            "name": self.bot_user["username"],
            "icon": None,
            "description": "A fake application",
            "summary": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "owner": self.owner_user,
            "team": None,
            "flags": 0,
            "tags": [],
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "approximate_guild_count": self.guild_count,
            "integration_types_config": {"0": {}},
            "bot": self.bot_user,
        }

    def _route_gateway(self, r: RecordedRequest) -> tuple[int, Any]:
        return 200, {"url": self.gateway_url}

    def _route_gateway_bot(self, r: RecordedRequest) -> tuple[int, Any]:
        return 200, {
            "url": self.gateway_url,
            "shards": self.recommended_shards,
            "session_start_limit": {
                "total": 1000,
                "remaining": 999,
                "reset_after": 14_400_000,
                "max_concurrency": 1,
            },
        }

    def _check_app(self, r: RecordedRequest) -> None:
        if int(r.params["app"]) != self.app_id:
            raise FakeHTTPError(404, 10002, "Unknown Application")

    def _store_commands(self, guild_id: int | None, body: Any) -> list[dict[str, Any]]:
        if not isinstance(body, list):
            raise FakeHTTPError(400, 50035, "Invalid Form Body")
        if len(body) > 100:
            raise FakeHTTPError(400, 30032, "Maximum number of application commands reached (100)")
        problems = [p for cmd in body if int(cmd.get("type", 1)) == 1 for p in command_problems(cmd)]
        if problems:
            errors = {"_errors": [{"code": "BASE_TYPE_BAD_LENGTH", "message": p} for p in problems]}
            raise FakeHTTPError(400, 50035, "Invalid Form Body", errors=errors)
        stored: list[dict[str, Any]] = []
        for cmd in body:
            key = (guild_id, cmd["name"], int(cmd.get("type", 1)))
            cid = self._command_ids.setdefault(key, self.snowflakes.next())
            echo = copy.deepcopy(cmd)
            echo.update(
                id=str(cid),
                application_id=str(self.app_id),
                version=str(self.snowflakes.next()),
                type=int(cmd.get("type", 1)),
                description=cmd.get("description", ""),
                default_member_permissions=cmd.get("default_member_permissions"),
                nsfw=cmd.get("nsfw", False),
            )
            if guild_id is not None:
                echo["guild_id"] = str(guild_id)
            stored.append(echo)
        self.commands[guild_id] = stored
        self.syncs.append(
            SyncRecord(
                scope="global" if guild_id is None else "guild",
                guild_id=guild_id,
                commands=stored,
                t_monotonic=time.monotonic(),
            )
        )
        return stored

    def _route_put_global_commands(self, r: RecordedRequest) -> tuple[int, Any]:
        self._check_app(r)
        return 200, self._store_commands(None, r.body)

    def _route_get_global_commands(self, r: RecordedRequest) -> tuple[int, Any]:
        self._check_app(r)
        return 200, self.commands.get(None, [])

    def _route_put_guild_commands(self, r: RecordedRequest) -> tuple[int, Any]:
        self._check_app(r)
        return 200, self._store_commands(int(r.params["guild"]), r.body)

    def _route_get_guild_commands(self, r: RecordedRequest) -> tuple[int, Any]:
        self._check_app(r)
        return 200, self.commands.get(int(r.params["guild"]), [])

    def _route_get_guild_command_permissions(self, r: RecordedRequest) -> tuple[int, Any]:
        self._check_app(r)
        guild_id = int(r.params["guild"])
        targets = self.command_permissions.get(guild_id, {})
        return 200, [self._permissions_payload(guild_id, target, perms) for target, perms in targets.items()]

    def command_id(self, name: str, guild_id: int | None = None, type: int = 1) -> int | None:
        """The id Discord gave a synced command (guild scope first, then global), or None."""
        for scope in (guild_id, None) if guild_id is not None else (None,):
            cid = self._command_ids.get((scope, name, type))
            if cid is not None and any(c["name"] == name for c in self.commands.get(scope, [])):
                return cid
        return None

    # messages

    def _new_message(
        self,
        *,
        channel_id: int,
        guild_id: int | None,
        data: dict[str, Any],
        interaction: InteractionRecord | None,
        message_type: int = 0,
        flags: int = 0,
    ) -> dict[str, Any]:
        mid = self.snowflakes.next()
        message: dict[str, Any] = {
            "id": str(mid),
            "type": message_type,
            "channel_id": str(channel_id),
            "author": self.bot_user,
            "content": data.get("content") or "",
            "embeds": list(data.get("embeds") or []),
            "components": list(data.get("components") or []),
            "attachments": [],
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "pinned": False,
            "tts": bool(data.get("tts", False)),
            "timestamp": now_iso(),
            "edited_timestamp": None,
            "flags": flags,
            "allowed_mentions": data.get("allowed_mentions"),
        }
        if guild_id is not None:
            message["guild_id"] = str(guild_id)
        if interaction is not None:
            payload = interaction.payload
            user = payload.get("member", {}).get("user") or payload.get("user")
            message["application_id"] = str(self.app_id)
            message["webhook_id"] = str(self.app_id)
            message["interaction_metadata"] = {
                "id": str(interaction.id),
                "type": interaction.type,
                "user": user,
                "authorizing_integration_owners": payload.get("authorizing_integration_owners", {}),
            }
        self.messages[mid] = message
        return message

    @staticmethod
    def _apply_edit(message: dict[str, Any], data: dict[str, Any]) -> None:
        for key in ("content", "embeds", "components", "allowed_mentions"):
            if key in data:
                message[key] = data[key] if data[key] is not None else ([] if key != "content" else "")
        if "attachments" in data:
            message["attachments"] = [a for a in data["attachments"] or [] if "id" in a]
        if "flags" in data and data["flags"] is not None:
            # only SUPPRESS_EMBEDS / IS_COMPONENTS_V2 can change; EPHEMERAL is fixed
            message["flags"] = (message["flags"] & (EPHEMERAL | LOADING)) | (int(data["flags"]) & ~EPHEMERAL)
        message["flags"] &= ~LOADING
        message["edited_timestamp"] = now_iso()

    def _interaction_for(self, r: RecordedRequest) -> InteractionRecord:
        if "app" in r.params and int(r.params["app"]) != self.app_id:
            raise FakeHTTPError(404, 10015, "Unknown Webhook")
        record = self._by_token.get(r.params["token"])
        if record is None:
            if "interaction" in r.params:
                raise FakeHTTPError(404, 10062, "Unknown interaction")
            raise FakeHTTPError(401, 50027, "Invalid Webhook Token")
        return record

    def _callback_from(self, r: RecordedRequest) -> Callback:
        body = r.body if isinstance(r.body, dict) else {}
        cb = Callback(
            interaction_id=int(r.params["interaction"]),
            token=r.params["token"],
            type=int(body.get("type", 0)),
            data=dict(body.get("data") or {}),
            t_monotonic=r.t_monotonic,
            t_perf=r.t_perf,
        )
        self.callbacks.append(cb)
        return cb

    def _route_interaction_callback(self, r: RecordedRequest) -> tuple[int, Any]:
        cb = self._callback_from(r)
        try:
            status, response = self._interaction_callback(r, cb)
        except FakeHTTPError as exc:
            cb.status, cb.error_code = exc.status, exc.code
            raise
        cb.status = status
        return status, response

    def _interaction_callback(self, r: RecordedRequest, cb: Callback) -> tuple[int, Any]:
        record = self._interaction_for(r)
        if record.id != cb.interaction_id:
            raise FakeHTTPError(404, 10062, "Unknown interaction")
        record.callbacks.append(cb)  # status 0 until answered, so it is not its own "initial"
        if record.initial is not None:
            raise FakeHTTPError(400, 40060, "Interaction has already been acknowledged.")
        if (
            self.initial_response_deadline is not None
            and r.t_monotonic - record.t_sent_monotonic > self.initial_response_deadline
        ):
            raise FakeHTTPError(404, 10062, "Unknown interaction")
        if cb.type not in ALLOWED_CALLBACKS.get(record.type, set()):
            raise FakeHTTPError(
                400,
                50035,
                "Invalid Form Body",
                {"type": f"callback type {cb.type} not allowed for this interaction"},
            )
        problems: list[str] = []
        if cb.type in (CHANNEL_MESSAGE, UPDATE_MESSAGE):
            problems = _limit_errors(cb.data)
        elif cb.type == DEFERRED_CHANNEL_MESSAGE and cb.flags & ~EPHEMERAL:
            problems = ["flags: only EPHEMERAL may be set on a deferred response"]
        elif cb.type == AUTOCOMPLETE_RESULT:
            choices = cb.data.get("choices") or []
            if len(choices) > 25:
                problems.append("choices: must be 25 or fewer in length")
            problems += [
                f"choices.{i}.name: must be 1-100 in length"
                for i, c in enumerate(choices)
                if not 1 <= len(c["name"]) <= 100
            ]
        elif cb.type == MODAL:
            title = cb.data.get("title") or ""
            if not 1 <= len(title) <= 45:
                problems.append("title: must be 1-45 in length")
            if not 1 <= len(cb.data.get("components") or []) <= 5:
                problems.append("components: must be 1-5 in length")
        if problems:
            raise FakeHTTPError(400, 50035, "Invalid Form Body", {"_errors": problems})

        payload = record.payload
        channel_id = int(payload.get("channel_id") or payload.get("channel", {}).get("id") or 0)
        guild_id = int(payload["guild_id"]) if payload.get("guild_id") else None
        resource: dict[str, Any] | None = None
        if cb.type in (CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE):
            flags = cb.flags & EPHEMERAL
            if cb.type == DEFERRED_CHANNEL_MESSAGE:
                flags |= LOADING
                record.deferred_followup_pending = True
            message = self._new_message(
                channel_id=channel_id,
                guild_id=guild_id,
                data=cb.data if cb.type == CHANNEL_MESSAGE else {},
                interaction=record,
                message_type=20 if record.type == 2 else 0,
                flags=flags | (cb.flags & ~(EPHEMERAL | LOADING)),
            )
            record.original_message_id = int(message["id"])
            resource = {"type": cb.type, "message": message}
        elif cb.type in (DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE):
            source = payload.get("message")
            if source is None:
                raise FakeHTTPError(400, 50035, "Invalid Form Body", {"type": "no message to update"})
            mid = int(source["id"])
            message = self.messages.setdefault(mid, copy.deepcopy(source))
            record.original_message_id = mid
            if cb.type == UPDATE_MESSAGE:
                self._apply_edit(message, cb.data)
                resource = {"type": cb.type, "message": message}
        r_message = self.messages.get(record.original_message_id or 0)
        response: dict[str, Any] = {
            "interaction": {
                "id": str(record.id),
                "type": record.type,
                "response_message_loading": cb.type == DEFERRED_CHANNEL_MESSAGE,
                "response_message_ephemeral": bool(r_message and r_message["flags"] & EPHEMERAL),
            }
        }
        if record.original_message_id is not None and cb.type in (4, 5, 6, 7):
            response["interaction"]["response_message_id"] = str(record.original_message_id)
        if resource is not None:
            response["resource"] = resource
        if r.query.get("with_response") in ("1", "true", "True"):
            return 200, response
        return 204, None

    def _original(self, record: InteractionRecord) -> dict[str, Any]:
        mid = record.original_message_id
        if mid is None or mid in self.deleted_messages or mid not in self.messages:
            raise FakeHTTPError(404, 10008, "Unknown Message")
        return self.messages[mid]

    def _route_get_original(self, r: RecordedRequest) -> tuple[int, Any]:
        return 200, self._original(self._interaction_for(r))

    def _route_edit_original(self, r: RecordedRequest) -> tuple[int, Any]:
        record = self._interaction_for(r)
        message = self._original(record)
        data = r.body if isinstance(r.body, dict) else {}
        problems = _limit_errors({**message, **data})
        if problems:
            raise FakeHTTPError(400, 50035, "Invalid Form Body", {"_errors": problems})
        self._apply_edit(message, data)
        record.deferred_followup_pending = False
        return 200, message

    def _route_delete_original(self, r: RecordedRequest) -> tuple[int, Any]:
        record = self._interaction_for(r)
        message = self._original(record)
        self.deleted_messages.add(int(message["id"]))
        return 204, None

    def _route_followup(self, r: RecordedRequest) -> tuple[int, Any]:
        record = self._interaction_for(r)
        if record.initial is None:
            raise FakeHTTPError(404, 10015, "Unknown Webhook")
        data = r.body if isinstance(r.body, dict) else {}
        problems = _limit_errors(data)
        if problems:
            raise FakeHTTPError(400, 50035, "Invalid Form Body", {"_errors": problems})
        if record.deferred_followup_pending and record.original_message_id is not None:
            # Discord: the first follow-up after a deferral edits the "thinking" message, keeping its flags
            message = self.messages[record.original_message_id]
            self._apply_edit(message, {k: v for k, v in data.items() if k != "flags"})
            record.deferred_followup_pending = False
        else:
            payload = record.payload
            message = self._new_message(
                channel_id=int(payload.get("channel_id") or payload.get("channel", {}).get("id") or 0),
                guild_id=int(payload["guild_id"]) if payload.get("guild_id") else None,
                data=data,
                interaction=record,
                flags=int(data.get("flags") or 0),
            )
        record.followup_ids.append(int(message["id"]))
        if r.query.get("wait") in ("1", "true", "True"):
            return 200, message
        return 204, None

    def _webhook_message(self, r: RecordedRequest) -> tuple[InteractionRecord, dict[str, Any]]:
        record = self._interaction_for(r)
        mid = int(r.params["message"])
        if mid in self.deleted_messages or mid not in self.messages:
            raise FakeHTTPError(404, 10008, "Unknown Message")
        if mid != record.original_message_id and mid not in record.followup_ids:
            raise FakeHTTPError(404, 10008, "Unknown Message")
        return record, self.messages[mid]

    def _route_get_webhook_message(self, r: RecordedRequest) -> tuple[int, Any]:
        return 200, self._webhook_message(r)[1]

    def _route_edit_webhook_message(self, r: RecordedRequest) -> tuple[int, Any]:
        _, message = self._webhook_message(r)
        data = r.body if isinstance(r.body, dict) else {}
        problems = _limit_errors({**message, **data})
        if problems:
            raise FakeHTTPError(400, 50035, "Invalid Form Body", {"_errors": problems})
        self._apply_edit(message, data)
        return 200, message

    def _route_delete_webhook_message(self, r: RecordedRequest) -> tuple[int, Any]:
        _, message = self._webhook_message(r)
        self.deleted_messages.add(int(message["id"]))
        return 204, None

    def _route_channel_message(self, r: RecordedRequest) -> tuple[int, Any]:
        channel_id = int(r.params["channel"])
        data = r.body if isinstance(r.body, dict) else {}
        post = ChannelPost(
            channel_id=channel_id, body=data, status=0, message_id=None, t_monotonic=r.t_monotonic
        )
        self.channel_posts.append(post)
        found = self.channel(channel_id)
        try:
            if found is None or channel_id in self.deleted_channels:
                raise FakeHTTPError(404, 10003, "Unknown Channel")
            guild, _ = found
            if channel_id in self.forbidden_channels or channel_id == guild.locked_channel_id:
                raise FakeHTTPError(403, 50013, "Missing Permissions")
            problems = _limit_errors(data)
            if problems:
                raise FakeHTTPError(400, 50035, "Invalid Form Body", {"_errors": problems})
        except FakeHTTPError as exc:
            post.status = exc.status
            raise
        message = self._new_message(channel_id=channel_id, guild_id=None, data=data, interaction=None)
        post.status, post.message_id = 200, int(message["id"])
        return 200, message

    def _route_get_channel(self, r: RecordedRequest) -> tuple[int, Any]:
        channel_id = int(r.params["channel"])
        found = self.channel(channel_id)
        if found is None or channel_id in self.deleted_channels:
            raise FakeHTTPError(404, 10003, "Unknown Channel")
        if channel_id in self.forbidden_channels:
            raise FakeHTTPError(403, 50001, "Missing Access")
        return 200, found[1]


async def _serve_forever(port: int, guilds: int, deadline: float | None, shards: int = 1) -> None:
    fake = FakeDiscord(
        guilds=guilds, port=port, initial_response_deadline=deadline, recommended_shards=shards
    )
    await fake.start()
    print(f"FAKE_DISCORD_API={fake.api_base}", flush=True)
    print(f"FAKE_DISCORD_GATEWAY={fake.gateway_url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await fake.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.discord", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--guilds", type=int, default=1, help="number of guilds sent after READY")
    parser.add_argument(
        "--deadline", type=float, default=3.0, help="initial-response deadline in seconds (0: none)"
    )
    parser.add_argument("--shards", type=int, default=1, help="shard count GET /gateway/bot recommends")
    args = parser.parse_args(argv)
    asyncio.run(_serve_forever(args.port, args.guilds, args.deadline or None, args.shards))


if __name__ == "__main__":
    main()
