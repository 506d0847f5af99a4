"""Exceptions raised by the dsc.gg client: one class per documented API code.

Messages never contain a token. They carry the API's code, the HTTP status and the API's own
message where there is one, so the bot can turn them into sentences in one place.
"""

from __future__ import annotations


class DscggError(Exception):
    """Base class of everything the dsc.gg client raises."""


class APIError(DscggError):
    """dsc.gg answered with a well-formed error envelope."""

    code: str = "unknown"

    def __init__(self, message: str | None = None, *, status: int, code: str | None = None) -> None:
        self.status = status
        if code is not None:
            self.code = code
        self.message = message or ""
        super().__init__(f"{self.code} (HTTP {status}){': ' + self.message if self.message else ''}")


class InvalidKey(APIError):
    """The token was missing or rejected (``invalid_key``, 401)."""

    code = "invalid_key"


class NotFound(APIError):
    """The link, user or app does not exist (``not_found``, 404)."""

    code = "not_found"


class OwnerBlacklisted(APIError):
    """The owner is blacklisted on dsc.gg (``owner_blacklisted``, 403)."""

    code = "owner_blacklisted"


class VersionDeprecated(APIError):
    """The API version is gone (``version_deprecated``, 410)."""

    code = "version_deprecated"


class BadRequest(APIError):
    """dsc.gg refused the request as invalid (``bad_request``, 400); ``message`` says why."""

    code = "bad_request"


class LinkTaken(APIError):
    """The slug is already in use (``link_taken``, 400)."""

    code = "link_taken"


class OwnerMismatch(APIError):
    """The link belongs to another dsc.gg account than the token's (``owner_mismatch``, 403)."""

    code = "owner_mismatch"


class WhitelistOnly(APIError):
    """The endpoint is reserved for whitelisted apps (``whitelist_only``, 403)."""

    code = "whitelist_only"


class PasswordProtected(APIError):
    """Undocumented but observed: the link is behind a password (``password_protected``)."""

    code = "password_protected"


class UnknownAPIError(APIError):
    """A code this client does not know. ``code``, ``status`` and ``message`` are kept as sent."""


class RateLimited(DscggError):
    """A rate limit stands in the way; ``retry_after`` is in seconds.

    Raised before sending when our own bucket would make the caller wait longer than allowed
    (``from_server`` is False), or after dsc.gg answered 429 and retrying was not worth it.
    ``anonymous``: the call carried no token, so the bucket is the one every tokenless call of
    this process shares (dsc.gg counts such calls together).
    """

    def __init__(
        self,
        retry_after: float,
        *,
        endpoint: str,
        limit: int | None = None,
        window: float | None = None,
        from_server: bool = False,
        anonymous: bool = False,
    ) -> None:
        self.retry_after = max(0.0, retry_after)
        self.endpoint = endpoint
        self.limit = limit
        self.window = window
        self.from_server = from_server
        self.anonymous = anonymous
        where = "dsc.gg" if from_server else "local bucket"
        super().__init__(f"rate limited on {endpoint} ({where}); retry in {self.retry_after:.1f} s")


class Unavailable(DscggError):
    """dsc.gg could not be reached or answered something unusable.

    Timeouts, connection errors, 5xx and bodies that are not the documented JSON envelope.
    ``reason`` is a short description for the log, never shown to users verbatim.
    """

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        self.reason = reason
        self.status = status
        super().__init__(reason if status is None else f"{reason} (HTTP {status})")


class DeadlineExceeded(Unavailable):
    """The call's time budget (``bot.dscgg.deadline``) ran out, or had too little left to send the
    request and wait for its answer; if nothing was sent, nothing happened on dsc.gg."""


#: Documented (and observed) error codes and the class each one maps to.
ERRORS_BY_CODE: dict[str, type[APIError]] = {
    cls.code: cls
    for cls in (
        InvalidKey,
        NotFound,
        OwnerBlacklisted,
        VersionDeprecated,
        BadRequest,
        LinkTaken,
        OwnerMismatch,
        WhitelistOnly,
        PasswordProtected,
    )
}
