"""THE table that turns every failure into a sentence, in the reader's language.

``describe()`` is the only place where an exception becomes words a user reads; ``render()`` does
the same for a ``Reason`` kept for later (a refusal in the audit log). Each sentence says what went
wrong and what to do next. None of them contains a traceback, a Python class name or a bare dsc.gg
error code (``owner_mismatch`` and friends are for logs, not for people).

The failures themselves (``NoToken``, ``InvalidInput``, …) are defined in ``bot.failures`` and
re-exported here. ``DscCommandTree.on_error`` (bot/tree.py) is the only place that sends these
sentences.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import discord

from bot.embeds import escape, truncate
from bot.failures import (
    UNEXPECTED,
    BotError,
    CommandDenied,
    DiscordUnavailable,
    Invalid,
    InvalidInput,
    LinkNotOwned,
    LogChannelUnusable,
    ManagedElsewhere,
    MissingManageGuild,
    NothingToChange,
    NotInGuild,
    NotManagedHere,
    NoToken,
    OwnershipUnconfirmed,
    PagesUnavailable,
    Reason,
    ShuttingDown,
    TokenRejected,
    TokenUnreadable,
    TooManyApiKeys,
    UnknownApiKey,
    reason_of,
    unwrap,
)
from bot.i18n import N_, Tr, for_locale
from bot.validation import normalize_slug

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
    "NothingToChange",
    "OwnershipUnconfirmed",
    "PagesUnavailable",
    "ShuttingDown",
    "TokenRejected",
    "TokenUnreadable",
    "TooManyApiKeys",
    "UnknownApiKey",
    "describe",
    "invalid_phrase",
    "is_unexpected",
    "new_error_id",
    "permission_name",
    "relative_time",
    "render",
    "unwrap",
]

log = logging.getLogger(__name__)

GENERIC = N_(
    "Something went wrong on my side and the command did not finish. "
    "If it keeps happening, give the bot's operator this error id: `{error_id}`."
)
#: A refusal in the audit log whose cause nobody anticipated (no id: nothing was logged for it).
UNEXPECTED_REFUSAL = N_("An unexpected error stopped it.")

#: What each dsc.gg endpoint does, in words, with its documented limit (requests, seconds).
ENDPOINTS: dict[str, tuple[str, int, int]] = {
    "get_link": (N_("looking up links"), 100, 10),
    "create_link": (N_("creating links"), 3, 60),
    "update_link": (N_("editing links"), 8, 10),
    "delete_link": (N_("deleting links"), 4, 10),
    "get_user": (N_("looking up accounts"), 50, 10),
    "get_user_links": (N_("listing an account's links"), 50, 10),
    "get_user_apps": (N_("listing an account's apps"), 50, 10),
    "get_app": (N_("looking up apps"), 20, 10),
    "get_top_links": (N_("loading the top links"), 20, 10),
    "search_links": (N_("searching links"), 90, 10),
}

#: Discord permission names as the client shows them.
_PERMISSION_NAMES = {
    "manage_guild": N_("Manage Server"),
    "embed_links": N_("Embed Links"),
    "send_messages": N_("Send Messages"),
    "send_messages_in_threads": N_("Send Messages in Threads"),
    "view_channel": N_("View Channel"),
    "read_messages": N_("View Channel"),
    "use_external_emojis": N_("Use External Emoji"),
}

#: A link type as an indefinite noun phrase, for sentences ("the redirect is a bot invite").
KIND_PHRASES = {
    "server": N_("a server invite"),
    "bot": N_("a bot invite"),
    "template": N_("a server template"),
}
#: A link type as its choice is named in the commands.
KIND_NAMES = {
    "server": N_("Server invite"),
    "bot": N_("Bot invite"),
    "template": N_("Server template"),
}

#: How /link edit's "nothing to change" names options users may give (in the command's order).
_EDIT_EXAMPLES = ("redirect", "title", "unlisted")


def new_error_id() -> str:
    """A short id that ties a user's error message to the log line with the traceback."""
    return secrets.token_hex(4)


def permission_name(flag: str, t: Tr | None = None) -> str:
    t = t or for_locale(None)
    name = _PERMISSION_NAMES.get(flag)
    if name is not None:
        return t._(name)
    return flag.replace("_", " ").replace("guild", "server").title()


def _permission_list(flags: Sequence[str], t: Tr) -> str:
    return t.join(f"**{permission_name(flag, t)}**" for flag in flags)


def relative_time(seconds_from_now: float, *, now: float | None = None) -> str:
    """A Discord relative timestamp (``<t:UNIX:R>``) at least one second in the future."""
    start = time.time() if now is None else now
    return f"<t:{math.ceil(start + max(1.0, seconds_from_now))}:R>"


def _plain(text: str, *, limit: int = 300) -> str:
    """Untrusted text (the API's message) made safe to show: no markdown, no mentions, bounded."""
    return escape(truncate(" ".join(text.split()), limit))


def _code(slug: object) -> str:
    """A slug for inside backticks (shown literally there, so not escaped; backticks removed)."""
    return " ".join(str(slug).split()).replace("`", "")[:120]


def _slug(interaction: discord.Interaction[Any] | None) -> str | None:
    """The ``slug`` option of the command being answered, as dsc.gg knows it, for friendlier replies.

    Admins may paste ``https://dsc.gg/name``; the reply should still say ``dsc.gg/name``.
    """
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


def kind_phrase(kind: str, t: Tr) -> str:
    """ "a server invite", "a bot invite", "a server template"."""
    phrase = KIND_PHRASES.get(kind)
    return t._(phrase) if phrase else kind


def kind_name(kind: str, t: Tr) -> str:
    """ "Server invite", … as the ``type`` choices are named."""
    name = KIND_NAMES.get(kind)
    return t._(name) if name else kind


def visible_char(char: str, t: Tr) -> str:
    """How to show an offending character: itself when printable, else its code point."""
    if char == " ":
        return t._("a space")
    if char.isprintable() and not unicodedata.category(char).startswith(("Z", "C")):
        return f'"{char}"'
    code = f"U+{ord(char):04X}"
    name = unicodedata.name(char, "")
    if name:
        return t._("the invisible character {code} ({name})", code=code, name=name.lower())
    return t._("the invisible character {code}", code=code)


# --------------------------------------------------------------------------------------------------
# Invalid input
# --------------------------------------------------------------------------------------------------


def _accepted(t: Tr) -> str:
    return t._(
        "a server invite (discord.gg/CODE or discord.com/invite/CODE), "
        "a bot invite (discord.com/oauth2/authorize?client_id=ID…) "
        "or a server template (discord.new/CODE or discord.com/template/CODE)"
    )


def _developer_portal(t: Tr) -> str:
    return t._(
        "copy the invite link from the OAuth2 page of your application in the Discord developer portal"
    )


def _invalid(params: Mapping[str, Any], t: Tr, option: Callable[[str], str] | None = None) -> str:
    """What is wrong with the option, as a phrase after "Check the `option` option:". ``option`` names
    other options (default: as this locale's users see them in Discord)."""
    option = option or t.option_name
    field = str(params.get("field", ""))
    length = int(params.get("length", 0) or 0)
    limit = t.number(int(params.get("limit", 0) or 0))
    char = visible_char(str(params.get("char", "?"))[:1] or "?", t)
    try:
        problem = Invalid(str(params.get("problem")))
    except ValueError:
        return t._("it is not a value I can use")
    match problem:
        case Invalid.EMPTY:
            return t._("it is empty; leave the option out instead")
        case Invalid.SLUG_EMPTY:
            return t._("it is empty; give the name after dsc.gg/, for example `my-server`")
        case Invalid.SLUG_CHAR:
            return t._(
                'it contains {char}; only the letters A-Z and a-z, the digits 0-9, "-" and "_" are allowed',
                char=char,
            )
        case Invalid.SLUG_TOO_LONG:
            return t.ngettext(
                "it is {count} character long; dsc.gg allows at most {limit}",
                "it is {count} characters long; dsc.gg allows at most {limit}",
                length,
                limit=limit,
            )
        case Invalid.SLUG_UNREADABLE:
            return t._("it is not a link that can be read; give the name after dsc.gg/")
        case Invalid.SLUG_NOT_WEB:
            return t._("it must be a dsc.gg link or just the name after dsc.gg/")
        case Invalid.SLUG_NOT_PLAIN:
            return t._("it must be a plain dsc.gg link (no port or user name), or just the name")
        case Invalid.SLUG_OTHER_HOST:
            host = _plain(str(params.get("host") or ""), limit=100)
            if not host:
                return t._(
                    "it is a link on an unknown domain, not on dsc.gg; give a dsc.gg link or just the "
                    "name after dsc.gg/"
                )
            return t._(
                "it is a link on {host}, not on dsc.gg; give a dsc.gg link or just the name after dsc.gg/",
                host=host,
            )
        case Invalid.SLUG_NO_NAME:
            return t._("it has no name after dsc.gg/; give the name of the link, e.g. `my-server`")
        case Invalid.REDIRECT_EMPTY:
            return t._("it is empty; give {accepted}", accepted=_accepted(t))
        case Invalid.REDIRECT_CHAR:
            return t._("it contains {char}; a link must not contain spaces or special characters", char=char)
        case Invalid.REDIRECT_SCHEME:
            scheme = _code(params.get("scheme", ""))[:40]
            return t._("it uses `{scheme}:`; only https:// links are accepted", scheme=scheme)
        case Invalid.REDIRECT_UNREADABLE:
            return t._("it is not a link that can be read; give {accepted}", accepted=_accepted(t))
        case Invalid.REDIRECT_NOT_DISCORD:
            return t._(
                "it is not a Discord invite or template; dsc.gg accepts {accepted}", accepted=_accepted(t)
            )
        case Invalid.TOO_LONG:
            return t.ngettext(
                "it is {count} character long; at most {limit} are allowed",
                "it is {count} characters long; at most {limit} are allowed",
                length,
                limit=limit,
            )
        case Invalid.TOO_LONG_AS_HTTPS:
            return t.ngettext(
                "it is {count} character long as an https:// link; at most {limit} are allowed",
                "it is {count} characters long as an https:// link; at most {limit} are allowed",
                length,
                limit=limit,
            )
        case Invalid.BOT_INVITE_CLIENT_ID:
            return t._("it is a bot invite without a valid `client_id`; {how}", how=_developer_portal(t))
        case Invalid.BOT_INVITE_SIGN_IN:
            return t._(
                "it is a Discord sign-in link (it has `{param}`), not a bot invite; dsc.gg links may only "
                "invite a bot. Copy the invite link (scope `bot`) from the OAuth2 page of your application "
                "in the Discord developer portal",
                param=_code(params.get("param", ""))[:40],
            )
        case Invalid.BOT_INVITE_SCOPE:
            return t._(
                "its `scope` has neither `bot` nor `applications.commands`, so it does not invite a bot; "
                "{how}",
                how=_developer_portal(t),
            )
        case Invalid.TYPE_UNKNOWN:
            names = [f"“{kind_name(kind, t)}”" for kind in KIND_NAMES]
            return t._("it must be {choices}", choices=t.join_or(names))
        case Invalid.TYPE_MISMATCH:
            wanted = str(params.get("wanted", ""))
            kind = str(params.get("kind", ""))
            return t._(
                "it is “{wanted}” but the redirect is {redirect_kind}; leave `{type}` out to use "
                "“{kind}”, or give {wanted_kind}",
                wanted=kind_name(wanted, t),
                redirect_kind=kind_phrase(kind, t),
                type=option("type"),
                kind=kind_name(kind, t),
                wanted_kind=kind_phrase(wanted, t),
            )
        case Invalid.COLOR_FORMAT:
            return t._("it must be a hex colour like `#5865F2`, `5865F2` or `#58F`")
        case Invalid.CONTROL_CHAR:
            return t._("it contains {char}, which cannot be shown in an embed", char=char)
        case Invalid.INVISIBLE_CHAR:
            return t._(
                "it contains {char}, which can hide or reorder text in the preview; remove it (it often "
                "comes along when text is copied)",
                char=char,
            )
        case Invalid.PASSWORD_EMPTY:
            return t._(
                "it is empty; use `{remove_password}:True` to take the password off",
                remove_password=option("remove_password"),
            )
        case Invalid.PASSWORD_TOO_LONG:
            return t.ngettext(
                "it is longer than {count} character",
                "it is longer than {count} characters",
                int(params.get("limit", 0) or 0),
            )
        case Invalid.REMOVE_CONFLICT:
            other = option(str(params.get("other", field.removeprefix("remove_"))))
            return t._("it can't be used together with `{other}`; give one or the other", other=other)
        case Invalid.NOT_REMOVABLE:
            return t._("it can't be removed; leave it out to keep it as it is")
        case Invalid.IMAGE_CHAR:
            return t._("it contains {char}; give a plain https:// image address", char=char)
        case Invalid.IMAGE_NOT_HTTPS:
            return t._("it must be a full https:// address of an image, e.g. https://i.imgur.com/x.png")
        case Invalid.QUERY_EMPTY:
            return t._("it is empty; type at least one character to search for")
        case Invalid.QUERY_CHAR:
            return t._("it contains {char}", char=char)
        case Invalid.TOKEN_MALFORMED:
            return t._(
                "that isn't a dsc.gg API key (those are 8 to 200 letters, digits and symbols, without spaces "
                "or invisible characters). Nothing was saved. Copy the key again from "
                "https://dsc.gg/developer and paste only the key"
            )
        case Invalid.CHANNEL_NOT_TEXT:
            return t._("pick a text channel I can post messages in")
        case Invalid.KEY_NAME_EMPTY:
            return t._("it is empty; give the key a name that says where it is used, e.g. `ci`")
        case Invalid.KEY_NAME_INVISIBLE:
            return t._("it contains invisible characters; use letters, digits and punctuation")
    return t._("it is not a value I can use")  # pragma: no cover - every Invalid has its case


# --------------------------------------------------------------------------------------------------
# dsc.gg
# --------------------------------------------------------------------------------------------------


def _rate_limited(params: Mapping[str, Any], t: Tr) -> str:
    what, limit, window = ENDPOINTS.get(str(params.get("endpoint")), (N_("this kind of request"), 0, 0))
    limit = int(params.get("limit") or limit)
    window = int(params.get("window") or window)
    values = {"what": t._(what), "when": f"<t:{int(params.get('retry_at') or 0)}:R>"}
    if limit and window:
        values["what"] = t._(
            "{what} ({limit} per {window} seconds)",
            what=values["what"],
            limit=t.number(limit),
            window=t.number(window),
        )
    if params.get("anonymous"):
        # Calls without a token (the top links) share one bucket: everyone using this bot, every server.
        if params.get("from_server"):
            return t._(
                "dsc.gg is rate limiting this bot for {what}, a limit shared by everyone using this bot. "
                "Try again {when}.",
                **values,
            )
        return t._(
            "That would go over dsc.gg's limit for {what}, shared by everyone using this bot. "
            "Try again {when}.",
            **values,
        )
    if params.get("from_server"):
        return t._("dsc.gg is rate limiting this server's token for {what}. Try again {when}.", **values)
    return t._(
        "That would go over dsc.gg's limit for {what} for this server's token. Try again {when}.", **values
    )


def _api_error(code: str, params: Mapping[str, Any], t: Tr) -> tuple[str, str | None]:
    """(what went wrong, what to do next) for a refusal by dsc.gg."""
    slug = params.get("slug")
    link = f"`dsc.gg/{_code(slug)}`" if slug else None
    set_token = t.command("dscgg token set")
    match code:
        case "invalid_key":
            return (
                t._(
                    "dsc.gg rejected the token stored for this server. An admin needs to run {command} "
                    "again with a current key from https://dsc.gg/developer.",
                    command=set_token,
                ),
                None,
            )
        case "owner_mismatch":
            if link:
                what = t._(
                    "{link} is owned by a different dsc.gg account than the one whose token this server "
                    "uses, so this server can't change it.",
                    link=link,
                )
            else:
                what = t._(
                    "That link is owned by a different dsc.gg account than the one whose token this server "
                    "uses, so this server can't change it."
                )
            return what, t._(
                "Ask the link's owner, or set that account's token with {command}.", command=set_token
            )
        case "whitelist_only":
            return (
                t._(
                    "This needs a **whitelisted** dsc.gg app, and the token this server uses belongs to an "
                    "app that isn't whitelisted. The app's owner can ask for whitelisting at "
                    "https://dsc.gg/developer (open the app there and request it). {top} still works "
                    "meanwhile.",
                    top=t.command("top"),
                ),
                None,
            )
        case "link_taken":
            what = t._("{link} is already taken.", link=link) if link else t._("That link is already taken.")
            return what, t._("Pick another slug and try again.")
        case "not_found":
            if link:
                return t._("dsc.gg has no link {link}.", link=link), t._("Check the spelling and try again.")
            return t._("dsc.gg couldn't find that."), t._("Check the spelling and try again.")
        case "owner_blacklisted":
            return (
                t._(
                    "dsc.gg has blacklisted the owner of this account or link, so it won't do this. If you "
                    "think that's a mistake, contact dsc.gg support."
                ),
                None,
            )
        case "bad_request":
            message = str(params.get("message") or "")
            if message.strip():
                reason = _plain(message).rstrip()
                if not reason.endswith((".", "!", "?", "…")):
                    reason += "."
                return t._("dsc.gg refused the request: {reason}", reason=reason), t._(
                    "Check the options and try again."
                )
            return t._("dsc.gg refused the request as invalid."), t._("Check the options and try again.")
        case "version_deprecated":
            return (
                t._(
                    "dsc.gg no longer supports the API version this bot uses, so the bot can't reach it "
                    "right now. The bot's operator needs to update the bot."
                ),
                None,
            )
        case "password_protected":
            if link:
                what = t._(
                    "{link} is protected by a password, so dsc.gg won't share it with this token.", link=link
                )
            else:
                what = t._("That link is protected by a password, so dsc.gg won't share it with this token.")
            return what, None
    return (
        t._(
            "dsc.gg refused the request with an error this bot doesn't know yet. Try again later; if it "
            "keeps happening, tell the bot's operator."
        ),
        None,
    )


# --------------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------------


def _parts(reason: Reason, t: Tr) -> tuple[str, str | None] | None:
    """(what went wrong, the next step if it stands apart) for ``reason``; None when it is a bug."""
    p = reason.params
    code = reason.code
    set_token = t.command("dscgg token set")
    if code.startswith("dscgg."):
        return _api_error(code.removeprefix("dscgg."), p, t)
    match code:
        case "no_token":
            text = t._(
                "This server hasn't set up a dsc.gg token yet. An admin (Manage Server) needs to run "
                "{command} first.",
                command=set_token,
            )
        case "token_unreadable":
            text = t._(
                "This server's dsc.gg token can no longer be read (the bot's encryption key changed). "
                "An admin needs to set it again with {command}.",
                command=set_token,
            )
        case "token_rejected":
            text = t._(
                "dsc.gg rejected that token, so nothing was saved. Copy your app's API key from "
                "https://dsc.gg/developer and run {command} again.",
                command=set_token,
            )
        case "invalid_input":
            problem = _invalid(p, t).strip().rstrip(".")
            option = t.option_name(str(p.get("field", "")))
            text = t._("Check the `{option}` option: {problem}.", option=_code(option), problem=problem)
        case "not_in_guild":
            text = t._("This command only works in a server, not in direct messages.")
        case "missing_manage_guild":
            text = t._(
                "You need the {permissions} permission to use this command.",
                permissions=_permission_list(["manage_guild"], t),
            )
        case "command_denied":
            text = t._(
                "This server's command permissions (Server Settings → Integrations) don't let you use "
                "this command here. Ask an admin if you need it."
            )
        case "nothing_to_change":
            examples = t.join_or(f"`{t.option_name(name)}`" for name in _EDIT_EXAMPLES)
            text = t._(
                "Nothing to change on **dsc.gg/{slug}**: give at least one option besides `{slug_option}`, "
                "for example {examples}.",
                slug=_plain(str(p.get("slug", "")), limit=120),
                slug_option=t.option_name("slug"),
                examples=examples,
            )
        case "not_managed_here":
            slug = _code(p.get("slug", ""))
            text = t._(
                "`dsc.gg/{slug}` isn't managed by this server. If this server's dsc.gg account owns it, "
                "bring it here with {command}.",
                slug=slug,
                command=t.command("link adopt", slug=slug),
            )
        case "managed_elsewhere":
            text = t._(
                "`dsc.gg/{slug}` is already managed by another server that uses this bot, so it can't be "
                "adopted here. Only that server can change it through the bot.",
                slug=_code(p.get("slug", "")),
            )
        case "link_not_owned":
            text = t._(
                "`dsc.gg/{slug}` is owned by a different dsc.gg account than the one whose token this "
                "server uses, so it can't be adopted here. Ask the link's owner, or set that account's "
                "token with {command}.",
                slug=_code(p.get("slug", "")),
                command=set_token,
            )
        case "ownership_unconfirmed":
            text = t._(
                "I couldn't confirm that `dsc.gg/{slug}` belongs to this server's dsc.gg account (dsc.gg "
                "didn't say who owns it). Nothing was adopted. Try again later.",
                slug=_code(p.get("slug", "")),
            )
        case "log_channel_unusable":
            missing = [str(flag) for flag in p.get("missing") or ()]
            channel = f"<#{int(p.get('channel_id') or 0)}>"
            if missing:
                text = t._(
                    "I can't post in {channel}: I'm missing {permissions} there. Grant them in the "
                    "channel's settings or pick another channel.",
                    channel=channel,
                    permissions=_permission_list(missing, t),
                )
            else:
                text = t._(
                    "I can't post in {channel}: I'm missing the permissions it needs there. Grant them in "
                    "the channel's settings or pick another channel.",
                    channel=channel,
                )
        case "pages_unavailable":
            command = p.get("command")
            if command:
                text = t._(
                    "These page buttons don't work any more. Run {command} again to get fresh pages.",
                    command=t.command(str(command)),
                )
            else:
                text = t._(
                    "These page buttons don't work any more. Run the command again to get fresh pages."
                )
        case "too_many_api_keys":
            limit = int(p.get("limit") or 0)
            text = t.ngettext(
                "This server already has {count} API key, the most it can have. Revoke one you no longer "
                "use with {command}, then create the new one.",
                "This server already has {count} API keys, the most it can have. Revoke one you no longer "
                "use with {command}, then create the new one.",
                limit,
                command=t.command("dscgg apikey revoke"),
            )
        case "unknown_api_key":
            text = t._(
                "This server has no such API key (it may have been revoked already). {command} shows the "
                "keys it has.",
                command=t.command("dscgg apikey list"),
            )
        case "discord_unavailable":
            text = t._(
                "Discord is not answering right now, so this could not be done. Try again in a moment."
            )
        case "shutting_down":
            text = t._("The bot is restarting. Try again in a moment.")
        case "bot_error":
            text = t._("That didn't work. Try again in a moment.")
        case "rate_limited":
            text = _rate_limited(p, t)
        case "unavailable":
            text = t._("dsc.gg is not answering properly, try again later.")
        case "missing_permissions":
            text = t._(
                "You need the {permissions} permission to use this command.",
                permissions=_permission_list([str(f) for f in p.get("missing") or ()], t),
            )
        case "bot_missing_permissions":
            text = t._(
                "I'm missing the {permissions} permission here. Ask an admin to grant it, then try again.",
                permissions=_permission_list([str(f) for f in p.get("missing") or ()], t),
            )
        case "cooldown":
            when = f"<t:{int(p.get('retry_at') or 0)}:R>"
            text = t._("You're going a bit fast. You can use this command again {when}.", when=when)
        case "missing_role":
            text = t._("You don't have the role this command needs.")
        case "check_failure":
            text = t._("You can't use this command here.")
        case "transformer":
            text = t._("I couldn't understand one of the values you gave. Check the options and try again.")
        case "commands_outdated":
            text = t._("The bot's commands are being updated. Try again in a minute.")
        case _:
            return None
    return text, None


def render(reason: Reason, t: Tr | None = None, *, next_step: bool = True) -> str:
    """The sentence for ``reason`` in ``t``'s language (en-US by default). ``next_step=False`` leaves
    out advice that stands apart ("Check the spelling and try again."), for callers that give their
    own. An unexpected failure (or a code this version does not know) reads as such."""
    t = t or for_locale(None)
    parts = _parts(reason, t)
    if parts is None:
        return t._(UNEXPECTED_REFUSAL)
    what, advice = parts
    return f"{what} {advice}" if advice and next_step else what


def invalid_phrase(error: InvalidInput, t: Tr | None = None) -> str:
    """What is wrong with ``error``'s value, as a phrase ("it is empty; …"), for a caller that names the
    field itself (the HTTP API: other fields are named as they are, not as Discord options)."""
    return _invalid(reason_of(error).params, t or for_locale(None), option=str).strip().rstrip(".")


def is_unexpected(error: BaseException) -> bool:
    """True for bugs: failures that have no sentence of their own and get the generic one."""
    return reason_of(unwrap(error)).code == UNEXPECTED


def describe(
    error: BaseException, interaction: discord.Interaction[Any] | None = None, *, t: Tr | None = None
) -> str:
    """The one sentence a user reads for ``error``, in ``t``'s language (else the interaction's user's).

    Unexpected errors get the generic sentence with a short error id; the id and the traceback are
    logged here (the traceback only in the log).
    """
    t = t or for_locale(getattr(interaction, "locale", None))
    original = unwrap(error)
    reason = reason_of(original, slug=_slug(interaction))
    if reason.code != UNEXPECTED:
        return render(reason, t)
    error_id = new_error_id()
    _log_unexpected(original, interaction, error_id)
    return t._(GENERIC, error_id=error_id)


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
