"""Errors as RFC 9457 problem details (``application/problem+json``), with Husqy's ``message``/``errors``.

``PROBLEMS`` is THE table of problem names: each has a status, a title and a short page served at
``{API_PUBLIC_URL}/problems/<name>`` (the ``type`` URI). ``problem_for(error)`` turns any exception the
services raise into a ``Problem``; its ``detail`` is the sentence the Discord replies use
(``bot.errors.render`` of the failure's ``Reason``) where that sentence fits an HTTP caller too, so the
wording lives in one place. Unexpected errors get ``internal-error`` with an error id that is also
logged, never a trace.

People read ``title``, ``detail`` and each ``errors[].detail``: they are written when the answer is,
in the language of its request's ``Accept-Language`` (``bot.i18n.for_accept_language``; en-US when
nothing matches). A problem therefore carries its words as ``Text``: an en-US message marked with
``N_`` (its ``{placeholders}`` filled from ``params``) or a function of the reader's ``Tr``. Machine
fields never change with the language: ``type``, ``status``, ``errors[].location``/``field``/
``pointer``, ``error_id``, ``retry_after``; ``message`` is dsc.gg's own words, as it said them.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from bot import errors
from bot.db.tokens import TokenUnreadable as StoredTokenUnreadable
from bot.dscgg import errors as api
from bot.failures import Reason, reason_of
from bot.i18n import N_, SOURCE, Tr

__all__ = [
    "MEDIA_TYPE",
    "PROBLEMS",
    "FieldProblem",
    "Problem",
    "ProblemInfo",
    "Text",
    "invalid_input",
    "invalid_value",
    "problem_for",
    "rate_limited",
    "retry_in",
    "say",
]

log = logging.getLogger(__name__)

MEDIA_TYPE: Final = "application/problem+json"

#: Words for people, written in the reader's language when the answer is: an en-US message marked
#: with ``N_`` (placeholders from the problem's ``params``), or a function of the reader's messages.
Text = str | Callable[[Tr], str]


def say(text: Text, t: Tr, params: Mapping[str, object] | None = None) -> str:
    """``text`` in ``t``'s language."""
    if callable(text):
        return text(t)
    return t._(text, **(params or {}))


def retry_in(seconds: float, t: Tr) -> str:
    """ "Retry in 3 seconds." (at least one second)."""
    count = _seconds(seconds)
    return t.ngettext("Retry in {count} second.", "Retry in {count} seconds.", count)


@dataclass(frozen=True, slots=True)
class ProblemInfo:
    """A problem's status and its words (en-US messages, shown in the reader's language)."""

    status: int
    title: str
    #: What it means and what to do, for the problem's page.
    about: str


#: Every problem the API answers with. The README's table lists the same names.
PROBLEMS: Final[dict[str, ProblemInfo]] = {
    # --- the request itself
    "malformed-json": ProblemInfo(
        400, N_("Malformed JSON"), N_("The body is not valid JSON. Send a JSON object.")
    ),
    "invalid-token": ProblemInfo(
        401,
        N_("Invalid credential"),
        N_(
            "The Authorization header is missing, malformed, revoked or unknown. Send "
            "`Authorization: Bearer <API key or Discord OAuth access token>`."
        ),
    ),
    "missing-permission": ProblemInfo(
        403,
        N_("Missing permission"),
        N_("Your Discord account needs Manage Server (or to own the server) to manage it through the API."),
    ),
    "api-key-not-allowed": ProblemInfo(
        403,
        N_("Not with an API key"),
        N_("API keys cannot create or list API keys. Use a Discord login, or /dscgg apikey in Discord."),
    ),
    "not-found": ProblemInfo(
        404,
        N_("Not found"),
        N_(
            "There is nothing at this address for your credential: check the server id, the slug or the path."
        ),
    ),
    "method-not-allowed": ProblemInfo(
        405, N_("Method not allowed"), N_("This address does not take that method.")
    ),
    "idempotency-in-progress": ProblemInfo(
        409,
        N_("Request still running"),
        N_(
            "A request with this Idempotency-Key is still running. Wait for it, then retry to get its answer."
        ),
    ),
    "payload-too-large": ProblemInfo(413, N_("Body too large"), N_("Request bodies may be at most 64 KiB.")),
    "unsupported-media-type": ProblemInfo(
        415, N_("Unsupported media type"), N_("Send the body as JSON, with `Content-Type: application/json`.")
    ),
    "invalid-input": ProblemInfo(
        422, N_("Invalid input"), N_("One or more values are not valid; `errors` names each one and why.")
    ),
    "nothing-to-change": ProblemInfo(
        422, N_("Nothing to change"), N_("The PATCH body changes nothing: give at least one field.")
    ),
    "idempotency-key-reused": ProblemInfo(
        422,
        N_("Idempotency-Key reused"),
        N_("This Idempotency-Key was used for a different request in the last 24 hours. Use a new key."),
    ),
    "rate-limited": ProblemInfo(
        429,
        N_("Rate limited"),
        N_(
            "Too many requests, with this credential or of this kind at dsc.gg. "
            "Retry after `Retry-After` seconds."
        ),
    ),
    # --- the server's setup
    "token-missing": ProblemInfo(
        409,
        N_("No dsc.gg token"),
        N_("The server has no dsc.gg token yet: PUT one at /v1/guilds/{id}/dscgg-token."),
    ),
    "token-unreadable": ProblemInfo(
        409,
        N_("dsc.gg token unreadable"),
        N_("The server's stored dsc.gg token can no longer be decrypted: set it again."),
    ),
    "token-rejected": ProblemInfo(
        409,
        N_("dsc.gg token rejected"),
        N_("dsc.gg rejected the dsc.gg token: set a current key from dsc.gg/developer."),
    ),
    "not-managed-here": ProblemInfo(
        403,
        N_("Link not managed by this server"),
        N_("The server manages only the links it created or adopted: adopt the link first."),
    ),
    "managed-elsewhere": ProblemInfo(
        409, N_("Link managed elsewhere"), N_("Another server manages this link through the bot.")
    ),
    "link-not-owned": ProblemInfo(
        403,
        N_("Link owned by another account"),
        N_("The link belongs to another dsc.gg account than the server's token."),
    ),
    "ownership-unconfirmed": ProblemInfo(
        409,
        N_("Ownership unconfirmed"),
        N_("dsc.gg did not say who owns the link; nothing was adopted. Retry later."),
    ),
    "too-many-api-keys": ProblemInfo(
        409, N_("Too many API keys"), N_("A server can have at most 25 API keys. Revoke one first.")
    ),
    # --- dsc.gg's answers (one per dsc.gg error code)
    "owner-mismatch": ProblemInfo(
        403,
        N_("Owned by another account"),
        N_("The link is owned by a different dsc.gg account than the token's."),
    ),
    "whitelist-only": ProblemInfo(
        403,
        N_("Whitelisted app needed"),
        N_("dsc.gg allows this only for whitelisted apps (ask at dsc.gg/developer)."),
    ),
    "owner-blacklisted": ProblemInfo(
        403, N_("Owner blacklisted"), N_("dsc.gg blacklisted the owner of this account or link.")
    ),
    "password-protected": ProblemInfo(
        403,
        N_("Password protected"),
        N_("The link is password protected; dsc.gg shares it only with its owner."),
    ),
    "link-taken": ProblemInfo(
        409, N_("Slug taken"), N_("The slug is already taken at dsc.gg: pick another one.")
    ),
    "dscgg-bad-request": ProblemInfo(
        422, N_("Refused by dsc.gg"), N_("dsc.gg refused the values; `message` holds what it said.")
    ),
    "version-deprecated": ProblemInfo(
        502,
        N_("dsc.gg API version retired"),
        N_("dsc.gg no longer supports this bot's API version: update the bot."),
    ),
    "upstream-error": ProblemInfo(
        502,
        N_("Unknown dsc.gg error"),
        N_("dsc.gg refused with an error this bot does not know. Retry later."),
    ),
    "upstream-unavailable": ProblemInfo(
        503, N_("dsc.gg unavailable"), N_("dsc.gg is down or answering garbage. Retry later.")
    ),
    "upstream-timeout": ProblemInfo(
        504,
        N_("dsc.gg too slow"),
        N_("dsc.gg did not answer within the time a request may take. Retry later."),
    ),
    "discord-unavailable": ProblemInfo(
        502, N_("Discord unavailable"), N_("Discord did not answer while checking your login. Retry later.")
    ),
    # --- this process
    "shutting-down": ProblemInfo(503, N_("Restarting"), N_("The bot is restarting. Retry in a moment.")),
    "internal-error": ProblemInfo(
        500,
        N_("Internal error"),
        N_("Something went wrong on the bot's side. Report the error id if it persists."),
    ),
}


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One invalid value of a request: where it was (``path``, ``query``, ``header``, ``body``), its
    name as the caller sent it, and what is wrong with it (words, in the reader's language)."""

    location: str
    field: str
    detail: Text
    pointer: str | None = None

    def body(self, t: Tr) -> dict[str, str]:
        entry = {"location": self.location, "field": self.field, "detail": say(self.detail, t).strip()}
        if self.pointer is not None:
            entry["pointer"] = self.pointer
        return entry


@dataclass(eq=False)
class Problem(Exception):
    """An answer other than 2xx. ``name`` is a key of PROBLEMS; ``detail`` is written in the reader's
    language when the answer is (``params`` fill a message's placeholders)."""

    name: str
    detail: Text
    status: int | None = None
    message: str | None = None
    errors: Sequence[FieldProblem] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        Exception.__init__(self, self.name)

    @property
    def code(self) -> int:
        return self.status or PROBLEMS[self.name].status

    def body(self, base_url: str, t: Tr = SOURCE) -> dict[str, Any]:
        """The problem document, its words in ``t``'s language."""
        info = PROBLEMS[self.name]
        data: dict[str, Any] = {
            "type": f"{base_url}/problems/{self.name}",
            "title": t._(info.title),
            "status": self.code,
            "detail": say(self.detail, t, self.params),
        }
        if self.message is not None:
            data["message"] = self.message
        if self.errors:
            data["errors"] = [entry.body(t) for entry in self.errors]
        data.update(self.extra)
        return data

    def encode(self, base_url: str, t: Tr = SOURCE) -> bytes:
        return json.dumps(self.body(base_url, t), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _seconds(value: float) -> int:
    return max(1, math.ceil(value))


def invalid_input(location: str, name: str, problem: Text) -> Problem:
    """``invalid-input`` for one value: ``problem`` says what is wrong, as a phrase ("it is empty")."""

    def detail(t: Tr) -> str:
        return t._("Check `{field}`: {problem}.", field=name, problem=say(problem, t).strip().rstrip("."))

    pointer = f"#/{name}" if location == "body" else None
    return Problem("invalid-input", detail, errors=[FieldProblem(location, name, problem, pointer)])


def invalid_value(location: str, name: str, error: errors.InvalidInput) -> Problem:
    """``invalid-input`` for ``error`` (raised by ``bot.validation``) about the value sent as ``name``."""
    return invalid_input(location, name, lambda t: errors.invalid_phrase(error, t))


def rate_limited(retry_after: float, detail: Text, headers: Mapping[str, str] | None = None) -> Problem:
    wait = _seconds(retry_after)
    return Problem(
        "rate-limited",
        detail,
        headers={"Retry-After": str(wait), **(headers or {})},
        extra={"retry_after": wait},
    )


def _reason_text(reason: Reason) -> Text:
    return lambda t: errors.render(reason, t)


def _dscgg_rate_limited(error: api.RateLimited) -> Text:
    known = errors.ENDPOINTS.get(error.endpoint)

    def detail(t: Tr) -> str:
        what = t._(known[0]) if known else t._("this kind of request")
        if error.from_server and error.anonymous:
            text = t._("dsc.gg is rate limiting every caller of this bot for {what}.", what=what)
        elif error.from_server:
            text = t._("dsc.gg is rate limiting this server's dsc.gg token for {what}.", what=what)
        elif error.anonymous:
            text = t._(
                "That would go over dsc.gg's limit for {what}, which every caller of this bot shares.",
                what=what,
            )
        else:
            text = t._(
                "That would go over dsc.gg's limit of this server's dsc.gg token for {what}.", what=what
            )
        return f"{text} {retry_in(error.retry_after, t)}"

    return detail


def problem_for(error: BaseException, *, location_of: Mapping[str, str] | None = None) -> Problem:
    """The problem for an error a service (or validation) raised. ``location_of`` says where each field
    came from (``path``, ``query`` or ``body``) for ``InvalidInput``."""
    error = errors.unwrap(error)
    if isinstance(error, Problem):
        return error
    if isinstance(error, errors.InvalidInput):
        return invalid_value((location_of or {}).get(error.field, "body"), error.field, error)
    if isinstance(error, api.RateLimited):
        return rate_limited(error.retry_after, _dscgg_rate_limited(error))
    reason = reason_of(error)
    if isinstance(error, api.DeadlineExceeded):
        return Problem("upstream-timeout", _reason_text(reason))
    if isinstance(error, api.Unavailable):
        timed_out = "timed out" in str(error)
        return Problem("upstream-timeout" if timed_out else "upstream-unavailable", _reason_text(reason))
    name = _NAMES.get(type(error))
    if name is None and isinstance(error, StoredTokenUnreadable):
        name = "token-unreadable"
    if name is None and isinstance(error, api.APIError):
        name = "upstream-error"
    if name is not None:
        message = error.message if isinstance(error, api.APIError) and error.message else None
        return Problem(name, _reason_text(reason), message=message)
    error_id = errors.new_error_id()
    log.error(
        "Unexpected error %s in an API request", error_id, exc_info=(type(error), error, error.__traceback__)
    )
    return Problem(
        "internal-error",
        N_(
            "Something went wrong on the bot's side. If it keeps happening, give the bot's operator this "
            "error id: {error_id}."
        ),
        params={"error_id": error_id},
        extra={"error_id": error_id},
    )


_NAMES: Final[dict[type[BaseException], str]] = {
    errors.NoToken: "token-missing",
    errors.TokenUnreadable: "token-unreadable",
    errors.TokenRejected: "token-rejected",
    errors.NothingToChange: "nothing-to-change",
    errors.NotManagedHere: "not-managed-here",
    errors.ManagedElsewhere: "managed-elsewhere",
    errors.LinkNotOwned: "link-not-owned",
    errors.OwnershipUnconfirmed: "ownership-unconfirmed",
    errors.TooManyApiKeys: "too-many-api-keys",
    errors.UnknownApiKey: "not-found",
    errors.ShuttingDown: "shutting-down",
    errors.DiscordUnavailable: "discord-unavailable",
    api.InvalidKey: "token-rejected",
    api.NotFound: "not-found",
    api.OwnerBlacklisted: "owner-blacklisted",
    api.VersionDeprecated: "version-deprecated",
    api.BadRequest: "dscgg-bad-request",
    api.LinkTaken: "link-taken",
    api.OwnerMismatch: "owner-mismatch",
    api.WhitelistOnly: "whitelist-only",
    api.PasswordProtected: "password-protected",
}
