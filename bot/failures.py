"""The failures the bot raises on purpose, and why something failed as data (``Reason``).

No words here: every class carries what happened (a slug, a field and a problem code, the missing
permissions), and ``bot.errors`` turns it into a sentence in the reader's language. Validation, the
services and the checks raise these; only the renderers (``bot.errors``, the embeds) make sentences.

``reason_of(error)`` is the same information as plain JSON-friendly data, for what outlives the
moment: a refusal's reason in the audit log is stored this way and rendered in the language of
whoever reads it later (the server's log channel, ``/dscgg audit``).
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from discord import app_commands

from bot.db.tokens import TokenUnreadable as StoredTokenUnreadable
from bot.dscgg import errors as api

__all__ = [
    "BotError",
    "CommandDenied",
    "DiscordUnavailable",
    "Invalid",
    "InvalidInput",
    "LinkNotOwned",
    "LogChannelUnusable",
    "ManagedElsewhere",
    "MissingManageGuild",
    "NoToken",
    "NotInGuild",
    "NotManagedHere",
    "NothingToChange",
    "OwnershipUnconfirmed",
    "PagesUnavailable",
    "Reason",
    "ShuttingDown",
    "TokenRejected",
    "TokenUnreadable",
    "TooManyApiKeys",
    "UnknownApiKey",
    "reason_of",
    "unwrap",
]


class BotError(app_commands.AppCommandError):
    """Base class of the failures the bot itself raises on purpose. ``str()`` is for logs."""


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


class Invalid(enum.StrEnum):
    """What is wrong with an option's value (``InvalidInput.problem``); the words are in bot.errors.

    ``InvalidInput.details`` holds what the sentence names: ``char`` (the offending character),
    ``length`` and ``limit``, ``host``, ``scheme``, ``param``, ``wanted`` and ``kind`` (link types),
    ``other`` (another option).
    """

    EMPTY = "empty"  # title, description, image: leave the option out instead
    SLUG_EMPTY = "slug_empty"
    SLUG_CHAR = "slug_char"
    SLUG_TOO_LONG = "slug_too_long"
    SLUG_UNREADABLE = "slug_unreadable"
    SLUG_NOT_WEB = "slug_not_web"
    SLUG_NOT_PLAIN = "slug_not_plain"
    SLUG_OTHER_HOST = "slug_other_host"
    SLUG_NO_NAME = "slug_no_name"
    REDIRECT_EMPTY = "redirect_empty"
    REDIRECT_CHAR = "redirect_char"
    REDIRECT_SCHEME = "redirect_scheme"
    REDIRECT_UNREADABLE = "redirect_unreadable"
    REDIRECT_NOT_DISCORD = "redirect_not_discord"
    TOO_LONG = "too_long"
    TOO_LONG_AS_HTTPS = "too_long_as_https"
    BOT_INVITE_CLIENT_ID = "bot_invite_client_id"
    BOT_INVITE_SIGN_IN = "bot_invite_sign_in"
    BOT_INVITE_SCOPE = "bot_invite_scope"
    TYPE_UNKNOWN = "type_unknown"
    TYPE_MISMATCH = "type_mismatch"
    COLOR_FORMAT = "color_format"
    CONTROL_CHAR = "control_char"
    INVISIBLE_CHAR = "invisible_char"
    PASSWORD_EMPTY = "password_empty"
    PASSWORD_TOO_LONG = "password_too_long"
    REMOVE_CONFLICT = "remove_conflict"
    NOT_REMOVABLE = "not_removable"  # redirect, type, unlisted: a link always has them
    IMAGE_CHAR = "image_char"
    IMAGE_NOT_HTTPS = "image_not_https"
    QUERY_EMPTY = "query_empty"
    QUERY_CHAR = "query_char"
    TOKEN_MALFORMED = "token_malformed"
    CHANNEL_NOT_TEXT = "channel_not_text"
    KEY_NAME_EMPTY = "key_name_empty"
    KEY_NAME_INVISIBLE = "key_name_invisible"


class InvalidInput(BotError):
    """An option's value failed local validation (raised by ``bot.validation`` and the services).

    ``field`` is the option's (English) name; ``problem`` says what is wrong, ``details`` what the
    sentence needs to say it (see ``Invalid``).
    """

    def __init__(self, field: str, problem: Invalid, **details: str | int) -> None:
        self.field = field
        self.problem = problem
        self.details: dict[str, str | int] = details
        super().__init__(f"invalid {field}: {problem.value}")


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

    ``command`` (e.g. ``"search"``, ``"link list"``) is the command that gives fresh pages, when known.
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


def unwrap(error: BaseException) -> BaseException:
    """The exception that actually happened, without discord.py's CommandInvokeError wrapping."""
    while isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    return error


# --------------------------------------------------------------------------------------------------
# Why, as data
# --------------------------------------------------------------------------------------------------

#: The code of a failure nobody anticipated (a bug): rendered as the generic sentence.
UNEXPECTED = "unexpected"


@dataclass(frozen=True, slots=True)
class Reason:
    """Why something failed, as a code and JSON-friendly parameters (no words, no secrets).

    Codes are stable (they are stored in the audit log): ``no_token``, ``invalid_input``,
    ``rate_limited``, ``dscgg.<dsc.gg error code>``, … (see ``reason_of``).
    """

    code: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "params": dict(self.params)}

    @classmethod
    def from_json(cls, data: object) -> Reason | None:
        """The reason stored by ``to_json``; None for anything else."""
        if not isinstance(data, Mapping) or not isinstance(data.get("code"), str):
            return None
        params = data.get("params")
        return cls(data["code"], dict(params) if isinstance(params, Mapping) else {})


def _retry_at(seconds_from_now: float) -> int:
    """A moment at least one second from now, as Unix seconds (for a ``<t:…:R>`` timestamp)."""
    return math.ceil(time.time() + max(1.0, seconds_from_now))


def reason_of(error: BaseException, *, slug: str | None = None) -> Reason:
    """``error`` as data. ``slug``: the link the command was about, for dsc.gg's refusals (their
    sentences name it). Anything not anticipated is ``Reason("unexpected")``."""
    error = unwrap(error)
    match error:
        case NoToken():
            return Reason("no_token")
        case TokenUnreadable() | StoredTokenUnreadable():
            return Reason("token_unreadable")
        case TokenRejected():
            return Reason("token_rejected")
        case InvalidInput():
            return Reason(
                "invalid_input", {"field": error.field, "problem": error.problem.value, **error.details}
            )
        case NotInGuild() | app_commands.NoPrivateMessage():
            return Reason("not_in_guild")
        case MissingManageGuild():
            return Reason("missing_manage_guild")
        case CommandDenied():
            return Reason("command_denied")
        case NothingToChange():
            return Reason("nothing_to_change", {"slug": error.slug})
        case NotManagedHere():
            return Reason("not_managed_here", {"slug": error.slug})
        case ManagedElsewhere():
            return Reason("managed_elsewhere", {"slug": error.slug})
        case LinkNotOwned():
            return Reason("link_not_owned", {"slug": error.slug})
        case OwnershipUnconfirmed():
            return Reason("ownership_unconfirmed", {"slug": error.slug})
        case LogChannelUnusable():
            return Reason("log_channel_unusable", {"channel_id": error.channel_id, "missing": error.missing})
        case PagesUnavailable():
            return Reason("pages_unavailable", {"command": error.command})
        case TooManyApiKeys():
            return Reason("too_many_api_keys", {"limit": error.limit})
        case UnknownApiKey():
            return Reason("unknown_api_key")
        case DiscordUnavailable():
            return Reason("discord_unavailable")
        case ShuttingDown():
            return Reason("shutting_down")
        case BotError():
            return Reason("bot_error")
        case api.RateLimited():
            return Reason(
                "rate_limited",
                {
                    "endpoint": error.endpoint,
                    "limit": error.limit,
                    "window": int(error.window) if error.window else None,
                    "retry_at": _retry_at(error.retry_after),
                    "anonymous": error.anonymous,
                    "from_server": error.from_server,
                },
            )
        case api.Unavailable():
            return Reason("unavailable")
        case api.BadRequest():
            return Reason("dscgg.bad_request", {"message": error.message, "slug": slug})
        case api.APIError():
            known = next((c for c, cls in api.ERRORS_BY_CODE.items() if isinstance(error, cls)), "unknown")
            return Reason(f"dscgg.{known}", {"slug": slug})
        case app_commands.MissingPermissions():
            return Reason("missing_permissions", {"missing": list(error.missing_permissions)})
        case app_commands.BotMissingPermissions():
            return Reason("bot_missing_permissions", {"missing": list(error.missing_permissions)})
        case app_commands.CommandOnCooldown():
            return Reason("cooldown", {"retry_at": _retry_at(error.retry_after)})
        case app_commands.MissingRole() | app_commands.MissingAnyRole():
            return Reason("missing_role")
        case app_commands.CheckFailure():
            return Reason("check_failure")
        case app_commands.TransformerError():
            return Reason("transformer")
        case app_commands.CommandSignatureMismatch() | app_commands.CommandNotFound():
            return Reason("commands_outdated")
    return Reason(UNEXPECTED)
