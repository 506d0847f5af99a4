"""Bot-level errors and THE table that turns every failure into a sentence.

``describe()`` is the only place where an exception becomes words a user reads. Each sentence says
what went wrong and what to do next. None of them contains a traceback, a Python class name or a
bare dsc.gg error code (``owner_mismatch`` and friends are for logs, not for people).

``DscCommandTree.on_error`` (bot/tree.py) is the only place that sends these sentences.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.db.tokens import TokenUnreadable as StoredTokenUnreadable
from bot.dscgg import errors as api
from bot.embeds import escape, truncate

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "BotError",
    "CommandDenied",
    "DiscordUnavailable",
    "InvalidInput",
    "LinkNotOwned",
    "LogChannelUnusable",
    "ManagedElsewhere",
    "MissingManageGuild",
    "NoToken",
    "NotInGuild",
    "NotManagedHere",
    "OwnershipUnconfirmed",
    "PagesUnavailable",
    "ShuttingDown",
    "TokenRejected",
    "TokenUnreadable",
    "TooManyApiKeys",
    "UnknownApiKey",
    "audit_reason",
    "describe",
    "is_unexpected",
    "new_error_id",
    "unwrap",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# Bot-level errors. Subclasses of AppCommandError, so discord.py passes them to the error handlers
# unwrapped. Their str() is for logs; users read describe().
# --------------------------------------------------------------------------------------------------


class BotError(app_commands.AppCommandError):
    """Base class of the failures the bot itself raises on purpose."""


class NoToken(BotError):
    """This server has not registered a dsc.gg token yet."""

    def __init__(self, guild_id: int | None = None) -> None:
        self.guild_id = guild_id
        super().__init__(f"no dsc.gg token stored for guild {guild_id}")


class TokenUnreadable(BotError):
    """The stored token no longer decrypts (key removed or rotated away, or the row was tampered with).

    Wraps the storage layer's exception; raise it ``from`` the original.
    """

    def __init__(self, guild_id: int | None = None) -> None:
        self.guild_id = guild_id
        super().__init__(f"stored dsc.gg token of guild {guild_id} cannot be decrypted")


class TokenRejected(BotError):
    """dsc.gg refused a token an admin just entered with ``/dscgg token set``. Nothing was stored."""

    def __init__(self) -> None:
        super().__init__("dsc.gg rejected the submitted token")


class InvalidInput(BotError):
    """A command option failed local validation (raised by ``bot.validation``).

    ``field`` is the option's name as the user sees it; ``problem`` is a short phrase such as
    ``"must start with https://"``.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"invalid {field}: {problem}")


class NotInGuild(BotError):
    """A guild-only command reached us from a DM (or a server the bot is not in)."""

    def __init__(self) -> None:
        super().__init__("command used outside a server")


class MissingManageGuild(BotError):
    """The invoking member lacks Manage Server."""

    def __init__(self) -> None:
        super().__init__("member lacks manage_guild")


class CommandDenied(BotError):
    """The server's command permissions (Server Settings → Integrations) refuse the member here."""

    def __init__(self) -> None:
        super().__init__("command permissions deny the member")


class NothingToChange(BotError):
    """``/link edit`` was given no option besides the slug."""

    def __init__(self, slug: str) -> None:
        self.slug = slug
        super().__init__("no field to change")


class NotManagedHere(BotError):
    """The link is not one this server created or adopted through the bot, so it may not change it."""

    def __init__(self, slug: str) -> None:
        self.slug = slug
        super().__init__("link not managed by this guild")


class ManagedElsewhere(BotError):
    """``/link adopt``: another server already manages the link through the bot."""

    def __init__(self, slug: str) -> None:
        self.slug = slug
        super().__init__("link managed by another guild")


class LinkNotOwned(BotError):
    """``/link adopt``: the link belongs to another dsc.gg account than the server's token's."""

    def __init__(self, slug: str) -> None:
        self.slug = slug
        super().__init__("link owned by another dsc.gg account")


class OwnershipUnconfirmed(BotError):
    """``/link adopt``: dsc.gg did not let the bot find out whether the server's account owns the link
    (it named no owner, or the owner has more apps than the bot checks)."""

    def __init__(self, slug: str) -> None:
        self.slug = slug
        super().__init__("link ownership could not be confirmed")


class LogChannelUnusable(BotError):
    """The bot cannot post audit messages in the chosen log channel."""

    def __init__(self, channel_id: int, missing: Sequence[str]) -> None:
        self.channel_id = channel_id
        self.missing = list(missing)
        super().__init__(f"log channel {channel_id} unusable, missing {', '.join(self.missing)}")


class PagesUnavailable(BotError):
    """A page button that cannot be served: its ``custom_id`` is malformed or names no known source,
    or the arguments it pointed to were only kept in memory and the bot has restarted since.

    ``command`` (e.g. ``"/search"``) is how to get fresh pages, when known.
    """

    def __init__(self, command: str | None = None) -> None:
        self.command = command
        super().__init__(f"page buttons of {command or 'an unknown command'} cannot be served")


class TooManyApiKeys(BotError):
    """The server already has as many API keys as allowed; nothing was created."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"already {limit} API keys")


class UnknownApiKey(BotError):
    """The server has no API key with that id (revoked already, or never one of its keys)."""

    def __init__(self) -> None:
        super().__init__("no such API key")


class DiscordUnavailable(BotError):
    """Discord's REST API did not answer (or refused) a lookup the bot needed, such as a server's
    channels for the web dashboard."""

    def __init__(self) -> None:
        super().__init__("Discord did not answer a REST call")


class ShuttingDown(BotError):
    """The process is stopping; new interactions are turned away."""

    def __init__(self) -> None:
        super().__init__("bot is shutting down")


# --------------------------------------------------------------------------------------------------
# Words
# --------------------------------------------------------------------------------------------------

SET_TOKEN = "`/dscgg token set`"
GENERIC = (
    "Something went wrong on my side and the command did not finish. "
    "If it keeps happening, give the bot's operator this error id: `{error_id}`."
)

#: What each dsc.gg endpoint does, in words, with its documented limit (requests, seconds).
ENDPOINTS: dict[str, tuple[str, int, int]] = {
    "get_link": ("looking up links", 100, 10),
    "create_link": ("creating links", 3, 60),
    "update_link": ("editing links", 8, 10),
    "delete_link": ("deleting links", 4, 10),
    "get_user": ("looking up accounts", 50, 10),
    "get_user_links": ("listing an account's links", 50, 10),
    "get_user_apps": ("listing an account's apps", 50, 10),
    "get_app": ("looking up apps", 20, 10),
    "get_top_links": ("loading the top links", 20, 10),
    "search_links": ("searching links", 90, 10),
}

#: Discord permission names as the client shows them, where title-casing the flag is not enough.
_PERMISSION_NAMES = {
    "manage_guild": "Manage Server",
    "embed_links": "Embed Links",
    "send_messages": "Send Messages",
    "view_channel": "View Channel",
    "read_messages": "View Channel",
    "use_external_emojis": "Use External Emoji",
}


def new_error_id() -> str:
    """A short id that ties a user's error message to the log line with the traceback."""
    return secrets.token_hex(4)


def unwrap(error: BaseException) -> BaseException:
    """The exception that actually happened, without discord.py's CommandInvokeError wrapping."""
    while isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    return error


def permission_name(flag: str) -> str:
    return _PERMISSION_NAMES.get(flag, flag.replace("_", " ").replace("guild", "server").title())


def _permission_list(flags: Sequence[str]) -> str:
    names = [f"**{permission_name(flag)}**" for flag in flags]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def relative_time(seconds_from_now: float, *, now: float | None = None) -> str:
    """A Discord relative timestamp (``<t:UNIX:R>``) at least one second in the future."""
    start = time.time() if now is None else now
    return f"<t:{math.ceil(start + max(1.0, seconds_from_now))}:R>"


def _plain(text: str, *, limit: int = 300) -> str:
    """Untrusted text (the API's message) made safe to show: no markdown, no mentions, bounded."""
    return escape(truncate(" ".join(text.split()), limit))


def _code(slug: str) -> str:
    """A slug for inside backticks (shown literally there, so not escaped; backticks removed)."""
    return " ".join(slug.split()).replace("`", "")[:120]


def _slug(interaction: discord.Interaction[Any] | None) -> str | None:
    """The ``slug`` option of the command being answered, as dsc.gg knows it, for friendlier replies.

    Admins may paste ``https://dsc.gg/name``; the reply should still say ``dsc.gg/name``.
    """
    from bot.validation import normalize_slug  # validation raises InvalidInput from this module

    if interaction is None:
        return None
    try:
        value = getattr(interaction.namespace, "slug", None)
    except Exception:  # namespace is only there for application commands
        return None
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return normalize_slug(value)
    except InvalidInput:
        return value.strip().replace("`", "")[:120]


def _rate_limited(error: api.RateLimited) -> str:
    what, limit, window = ENDPOINTS.get(error.endpoint, ("this kind of request", 0, 0))
    limit = error.limit or limit
    window = int(error.window) if error.window else window
    rule = f" ({limit} per {window} seconds)" if limit and window else ""
    when = relative_time(error.retry_after)
    if error.anonymous:
        # Calls without a token (the top links) share one bucket: everyone using this bot, every server.
        shared = "shared by everyone using this bot"
        if error.from_server:
            return f"dsc.gg is rate limiting this bot for {what}{rule}, a limit {shared}. Try again {when}."
        return f"That would go over dsc.gg's limit for {what}{rule}, {shared}. Try again {when}."
    if error.from_server:
        return f"dsc.gg is rate limiting this server's token for {what}{rule}. Try again {when}."
    return f"That would go over dsc.gg's limit for {what}{rule} for this server's token. Try again {when}."


def _api_error(error: api.APIError, interaction: discord.Interaction[Any] | None) -> str:
    slug = _slug(interaction)
    link = f"`dsc.gg/{slug}`" if slug else "that link"
    subject = link if slug else "That link"  # at the start of a sentence
    match error:
        case api.InvalidKey():
            return (
                "dsc.gg rejected the token stored for this server. "
                f"An admin needs to run {SET_TOKEN} again with a current key from https://dsc.gg/developer."
            )
        case api.OwnerMismatch():
            return (
                f"{subject} is owned by a different dsc.gg account than the "
                "one whose token this server uses, so this server can't change it. Ask the link's owner, or "
                f"set that account's token with {SET_TOKEN}."
            )
        case api.WhitelistOnly():
            return (
                "This needs a **whitelisted** dsc.gg app, and the token this server uses belongs to an app "
                "that isn't whitelisted. The app's owner can ask for whitelisting at "
                "https://dsc.gg/developer (open the app there and request it). "
                "`/top` still works meanwhile."
            )
        case api.LinkTaken():
            return f"{subject} is already taken. Pick another slug and try again."
        case api.NotFound():
            if slug:
                return f"dsc.gg has no link {link}. Check the spelling and try again."
            return "dsc.gg couldn't find that. Check the spelling and try again."
        case api.OwnerBlacklisted():
            return (
                "dsc.gg has blacklisted the owner of this account or link, so it won't do this. "
                "If you think that's a mistake, contact dsc.gg support."
            )
        case api.BadRequest():
            if error.message.strip():
                reason = _plain(error.message).rstrip()
                if not reason.endswith((".", "!", "?", "…")):
                    reason += "."
                return f"dsc.gg refused the request: {reason} Check the options and try again."
            return "dsc.gg refused the request as invalid. Check the options and try again."
        case api.VersionDeprecated():
            return (
                "dsc.gg no longer supports the API version this bot uses, so the bot can't reach it "
                "right now. The bot's operator needs to update the bot."
            )
        case api.PasswordProtected():
            return f"{subject} is protected by a password, so dsc.gg won't share it with this token."
    return (
        "dsc.gg refused the request with an error this bot doesn't know yet. "
        "Try again later; if it keeps happening, tell the bot's operator."
    )


def _check_failure(error: app_commands.CheckFailure) -> str:
    match error:
        case app_commands.NoPrivateMessage():
            return "This command only works in a server, not in direct messages."
        case app_commands.MissingPermissions():
            perms = _permission_list(error.missing_permissions)
            return f"You need the {perms} permission to use this command."
        case app_commands.BotMissingPermissions():
            perms = _permission_list(error.missing_permissions)
            return f"I'm missing the {perms} permission here. Ask an admin to grant it, then try again."
        case app_commands.CommandOnCooldown():
            return (
                f"You're going a bit fast. You can use this command again {relative_time(error.retry_after)}."
            )
        case app_commands.MissingRole() | app_commands.MissingAnyRole():
            return "You don't have the role this command needs."
    return "You can't use this command here."


def _bot_error(error: BotError) -> str:
    match error:
        case NoToken():
            return (
                "This server hasn't set up a dsc.gg token yet. "
                f"An admin (Manage Server) needs to run {SET_TOKEN} first."
            )
        case TokenUnreadable():
            return (
                "This server's dsc.gg token can no longer be read (the bot's encryption key changed). "
                f"An admin needs to set it again with {SET_TOKEN}."
            )
        case TokenRejected():
            return (
                "dsc.gg rejected that token, so nothing was saved. Copy your app's API key from "
                f"https://dsc.gg/developer and run {SET_TOKEN} again."
            )
        case InvalidInput():
            problem = error.problem.strip().rstrip(".")
            return f"Check the `{error.field}` option: {problem}."
        case NotInGuild():
            return "This command only works in a server, not in direct messages."
        case MissingManageGuild():
            return "You need the **Manage Server** permission to use this command."
        case CommandDenied():
            return (
                "This server's command permissions (Server Settings → Integrations) don't let you use "
                "this command here. Ask an admin if you need it."
            )
        case NothingToChange():
            return (
                f"Nothing to change on **dsc.gg/{_plain(error.slug, limit=120)}**: give at least one option "
                "besides `slug`, for example `redirect`, `title` or `unlisted`."
            )
        case NotManagedHere():
            slug = _code(error.slug)
            return (
                f"`dsc.gg/{slug}` isn't managed by this server. If this server's dsc.gg account owns it, "
                f"bring it here with `/link adopt slug:{slug}`."
            )
        case ManagedElsewhere():
            return (
                f"`dsc.gg/{_code(error.slug)}` is already managed by another server that uses "
                "this bot, so it can't be adopted here. Only that server can change it through the bot."
            )
        case LinkNotOwned():
            return (
                f"`dsc.gg/{_code(error.slug)}` is owned by a different dsc.gg account than the "
                "one whose token this server uses, so it can't be adopted here. Ask the link's owner, or set "
                f"that account's token with {SET_TOKEN}."
            )
        case OwnershipUnconfirmed():
            link = f"`dsc.gg/{_code(error.slug)}`"
            return (
                f"I couldn't confirm that {link} belongs to this server's dsc.gg account (dsc.gg didn't say "
                "who owns it). Nothing was adopted. Try again later."
            )
        case LogChannelUnusable():
            perms = _permission_list(error.missing) or "the permissions it needs"
            return (
                f"I can't post in <#{error.channel_id}>: I'm missing {perms} there. "
                "Grant them in the channel's settings or pick another channel."
            )
        case PagesUnavailable():
            again = f"Run `{error.command}` again" if error.command else "Run the command again"
            return f"These page buttons don't work any more. {again} to get fresh pages."
        case TooManyApiKeys():
            return (
                f"This server already has {error.limit} API keys, the most it can have. Revoke one you no "
                "longer use with `/dscgg apikey revoke`, then create the new one."
            )
        case UnknownApiKey():
            return (
                "This server has no such API key (it may have been revoked already). "
                "`/dscgg apikey list` shows the keys it has."
            )
        case DiscordUnavailable():
            return "Discord is not answering right now, so this could not be done. Try again in a moment."
        case ShuttingDown():
            return "The bot is restarting. Try again in a moment."
    return "That didn't work. Try again in a moment."


def _known(error: BaseException, interaction: discord.Interaction[Any] | None) -> str | None:
    """The sentence for an anticipated failure, or None when it is a bug."""
    if isinstance(error, BotError):
        return _bot_error(error)
    if isinstance(error, StoredTokenUnreadable):  # raised by TokenStore.get, when not wrapped
        return _bot_error(TokenUnreadable(error.guild_id))
    if isinstance(error, api.RateLimited):
        return _rate_limited(error)
    if isinstance(error, api.Unavailable):
        return "dsc.gg is not answering properly, try again later."
    if isinstance(error, api.APIError):
        return _api_error(error, interaction)
    if isinstance(error, app_commands.CheckFailure):
        return _check_failure(error)
    if isinstance(error, app_commands.TransformerError):
        return "I couldn't understand one of the values you gave. Check the options and try again."
    if isinstance(error, app_commands.CommandSignatureMismatch | app_commands.CommandNotFound):
        return "The bot's commands are being updated. Try again in a minute."
    return None


def is_unexpected(error: BaseException) -> bool:
    """True for bugs: failures that have no sentence of their own and get the generic one."""
    return _known(unwrap(error), None) is None


def describe(error: BaseException, interaction: discord.Interaction[Any] | None = None) -> str:
    """The one sentence a user reads for ``error``.

    Unexpected errors get the generic sentence with a short error id; the id and the traceback are
    logged here (the traceback only in the log).
    """
    original = unwrap(error)
    text = _known(original, interaction)
    if text is not None:
        return text
    error_id = new_error_id()
    _log_unexpected(original, interaction, error_id)
    return GENERIC.format(error_id=error_id)


def _log_unexpected(
    error: BaseException, interaction: discord.Interaction[Any] | None, error_id: str
) -> None:
    command = getattr(getattr(interaction, "command", None), "qualified_name", None)
    log.error(
        "Unexpected error %s in %s (guild %s, user %s, interaction %s)",
        error_id,
        f"/{command}" if command else "an interaction",
        getattr(interaction, "guild_id", None),
        getattr(getattr(interaction, "user", None), "id", None),
        getattr(interaction, "id", None),
        exc_info=(type(error), error, error.__traceback__),
    )


def audit_reason(error: BaseException) -> str:
    """Why a mutation was refused, in the words the admin saw, for the audit log.

    Unlike ``describe`` it never logs and never makes an error id: unexpected failures read as such.
    """
    text = _known(unwrap(error), None)
    return text if text is not None else "An unexpected error stopped it."
