"""Errors as RFC 9457 problem details (``application/problem+json``), with Husqy's ``message``/``errors``.

``PROBLEMS`` is THE table of problem names: each has a status, a title and a short page served at
``{API_PUBLIC_URL}/problems/<name>`` (the ``type`` URI). ``problem_for(error)`` turns any exception the
services raise into a ``Problem``; its ``detail`` is the sentence the Discord replies use
(``bot.errors.describe``) where that sentence fits an HTTP caller too, so the wording lives in one
place. Unexpected errors get ``internal-error`` with an error id that is also logged, never a trace.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from bot import errors
from bot.db.tokens import TokenUnreadable as StoredTokenUnreadable
from bot.dscgg import errors as api

__all__ = ["MEDIA_TYPE", "PROBLEMS", "Problem", "ProblemInfo", "problem_for"]

log = logging.getLogger(__name__)

MEDIA_TYPE: Final = "application/problem+json"


@dataclass(frozen=True, slots=True)
class ProblemInfo:
    status: int
    title: str
    #: What it means and what to do, for the problem's page.
    about: str


#: Every problem the API answers with. The README's table lists the same names.
PROBLEMS: Final[dict[str, ProblemInfo]] = {
    # --- the request itself
    "malformed-json": ProblemInfo(400, "Malformed JSON", "The body is not valid JSON. Send a JSON object."),
    "invalid-token": ProblemInfo(
        401,
        "Invalid credential",
        "The Authorization header is missing, malformed, revoked or unknown. Send "
        "`Authorization: Bearer <API key or Discord OAuth access token>`.",
    ),
    "missing-permission": ProblemInfo(
        403,
        "Missing permission",
        "Your Discord account needs Manage Server (or to own the server) to manage it through the API.",
    ),
    "api-key-not-allowed": ProblemInfo(
        403,
        "Not with an API key",
        "API keys cannot create or list API keys. Use a Discord login, or /dscgg apikey in Discord.",
    ),
    "not-found": ProblemInfo(
        404,
        "Not found",
        "There is nothing at this address for your credential: check the server id, the slug or the path.",
    ),
    "method-not-allowed": ProblemInfo(405, "Method not allowed", "This address does not take that method."),
    "idempotency-in-progress": ProblemInfo(
        409,
        "Request still running",
        "A request with this Idempotency-Key is still running. Wait for it, then retry to get its answer.",
    ),
    "payload-too-large": ProblemInfo(413, "Body too large", "Request bodies may be at most 64 KiB."),
    "unsupported-media-type": ProblemInfo(
        415, "Unsupported media type", "Send the body as JSON, with `Content-Type: application/json`."
    ),
    "invalid-input": ProblemInfo(
        422, "Invalid input", "One or more values are not valid; `errors` names each one and why."
    ),
    "nothing-to-change": ProblemInfo(
        422, "Nothing to change", "The PATCH body changes nothing: give at least one field."
    ),
    "idempotency-key-reused": ProblemInfo(
        422,
        "Idempotency-Key reused",
        "This Idempotency-Key was used for a different request in the last 24 hours. Use a new key.",
    ),
    "rate-limited": ProblemInfo(
        429,
        "Rate limited",
        "Too many requests, with this credential or of this kind at dsc.gg. "
        "Retry after `Retry-After` seconds.",
    ),
    # --- the server's setup
    "token-missing": ProblemInfo(
        409, "No dsc.gg token", "The server has no dsc.gg token yet: PUT one at /v1/guilds/{id}/dscgg-token."
    ),
    "token-unreadable": ProblemInfo(
        409,
        "dsc.gg token unreadable",
        "The server's stored dsc.gg token can no longer be decrypted: set it again.",
    ),
    "token-rejected": ProblemInfo(
        409,
        "dsc.gg token rejected",
        "dsc.gg rejected the dsc.gg token: set a current key from dsc.gg/developer.",
    ),
    "not-managed-here": ProblemInfo(
        403,
        "Link not managed by this server",
        "The server manages only the links it created or adopted: adopt the link first.",
    ),
    "managed-elsewhere": ProblemInfo(
        409, "Link managed elsewhere", "Another server manages this link through the bot."
    ),
    "link-not-owned": ProblemInfo(
        403,
        "Link owned by another account",
        "The link belongs to another dsc.gg account than the server's token.",
    ),
    "ownership-unconfirmed": ProblemInfo(
        409,
        "Ownership unconfirmed",
        "dsc.gg did not say who owns the link; nothing was adopted. Retry later.",
    ),
    "too-many-api-keys": ProblemInfo(
        409, "Too many API keys", "A server can have at most 25 API keys. Revoke one first."
    ),
    # --- dsc.gg's answers (one per dsc.gg error code)
    "owner-mismatch": ProblemInfo(
        403, "Owned by another account", "The link is owned by a different dsc.gg account than the token's."
    ),
    "whitelist-only": ProblemInfo(
        403,
        "Whitelisted app needed",
        "dsc.gg allows this only for whitelisted apps (ask at dsc.gg/developer).",
    ),
    "owner-blacklisted": ProblemInfo(
        403, "Owner blacklisted", "dsc.gg blacklisted the owner of this account or link."
    ),
    "password-protected": ProblemInfo(
        403, "Password protected", "The link is password protected; dsc.gg shares it only with its owner."
    ),
    "link-taken": ProblemInfo(409, "Slug taken", "The slug is already taken at dsc.gg: pick another one."),
    "dscgg-bad-request": ProblemInfo(
        422, "Refused by dsc.gg", "dsc.gg refused the values; `message` holds what it said."
    ),
    "version-deprecated": ProblemInfo(
        502, "dsc.gg API version retired", "dsc.gg no longer supports this bot's API version: update the bot."
    ),
    "upstream-error": ProblemInfo(
        502, "Unknown dsc.gg error", "dsc.gg refused with an error this bot does not know. Retry later."
    ),
    "upstream-unavailable": ProblemInfo(
        503, "dsc.gg unavailable", "dsc.gg is down or answering garbage. Retry later."
    ),
    "upstream-timeout": ProblemInfo(
        504, "dsc.gg too slow", "dsc.gg did not answer within the time a request may take. Retry later."
    ),
    "discord-unavailable": ProblemInfo(
        502, "Discord unavailable", "Discord did not answer while checking your login. Retry later."
    ),
    # --- this process
    "shutting-down": ProblemInfo(503, "Restarting", "The bot is restarting. Retry in a moment."),
    "internal-error": ProblemInfo(
        500, "Internal error", "Something went wrong on the bot's side. Report the error id if it persists."
    ),
}


@dataclass(eq=False)
class Problem(Exception):
    """An answer other than 2xx. ``name`` is a key of PROBLEMS."""

    name: str
    detail: str
    status: int | None = None
    message: str | None = None
    errors: Sequence[Mapping[str, Any]] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        Exception.__init__(self, self.name)

    @property
    def code(self) -> int:
        return self.status or PROBLEMS[self.name].status

    def body(self, base_url: str) -> dict[str, Any]:
        info = PROBLEMS[self.name]
        data: dict[str, Any] = {
            "type": f"{base_url}/problems/{self.name}",
            "title": info.title,
            "status": self.code,
            "detail": self.detail,
        }
        if self.message is not None:
            data["message"] = self.message
        if self.errors:
            data["errors"] = list(self.errors)
        data.update(self.extra)
        return data

    def encode(self, base_url: str) -> bytes:
        return json.dumps(self.body(base_url), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _seconds(value: float) -> int:
    return max(1, math.ceil(value))


def _field_error(location: str, name: str, detail: str) -> dict[str, str]:
    entry = {"location": location, "field": name, "detail": detail}
    if location == "body":
        entry["pointer"] = f"#/{name}"
    return entry


def invalid_input(location: str, name: str, detail: str) -> Problem:
    return Problem(
        "invalid-input",
        f"Check `{name}`: {detail.strip().rstrip('.')}.",
        errors=[_field_error(location, name, detail.strip())],
    )


def rate_limited(retry_after: float, detail: str, headers: Mapping[str, str] | None = None) -> Problem:
    wait = _seconds(retry_after)
    return Problem(
        "rate-limited",
        detail,
        headers={"Retry-After": str(wait), **(headers or {})},
        extra={"retry_after": wait},
    )


def problem_for(error: BaseException, *, location_of: Mapping[str, str] | None = None) -> Problem:
    """The problem for an error a service (or validation) raised. ``location_of`` says where each field
    came from (``path``, ``query`` or ``body``) for ``InvalidInput``."""
    error = errors.unwrap(error)
    if isinstance(error, Problem):
        return error
    if isinstance(error, errors.InvalidInput):
        where = (location_of or {}).get(error.field, "body")
        return invalid_input(where, error.field, error.problem)
    if isinstance(error, api.RateLimited):
        who = "every caller of this bot" if error.anonymous else "this server's dsc.gg token"
        source = "dsc.gg is rate limiting" if error.from_server else "That would go over dsc.gg's limit for"
        return rate_limited(
            error.retry_after,
            f"{source} {who} for {errors.ENDPOINTS.get(error.endpoint, ('this kind of request',))[0]}. "
            f"Retry in {_seconds(error.retry_after)} seconds.",
        )
    if isinstance(error, api.DeadlineExceeded):
        return Problem("upstream-timeout", errors.describe(error))
    if isinstance(error, api.Unavailable):
        timed_out = "timed out" in str(error)
        return Problem("upstream-timeout" if timed_out else "upstream-unavailable", errors.describe(error))
    name = _NAMES.get(type(error))
    if name is None and isinstance(error, StoredTokenUnreadable):
        name = "token-unreadable"
    if name is None and isinstance(error, api.APIError):
        name = "upstream-error"
    if name is not None:
        message = error.message if isinstance(error, api.APIError) and error.message else None
        return Problem(name, errors.describe(error), message=message)
    error_id = errors.new_error_id()
    log.error(
        "Unexpected error %s in an API request", error_id, exc_info=(type(error), error, error.__traceback__)
    )
    return Problem(
        "internal-error",
        f"Something went wrong on the bot's side. If it keeps happening, give the bot's operator this "
        f"error id: {error_id}.",
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
