"""TokenService: a server's dsc.gg API token — validate, store encrypted, forget, report.

Every token that passes through here is registered with the log redaction first, so it cannot show
up in a log line even when validation fails. Tokens never appear in return values other than
``token_for()`` (which the link services need to call dsc.gg) and never in exception messages.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot import errors
from bot.audit import AuditEvent, AuditLog, EventKind
from bot.db.tokens import TokenInfo, TokenStore, TokenUnreadable
from bot.dscgg import errors as api
from bot.log import register_secret

if TYPE_CHECKING:
    from bot.dscgg.client import DscggClient

__all__ = ["TokenCheck", "TokenService", "TokenStatus"]

log = logging.getLogger(__name__)


class TokenCheck(enum.Enum):
    """What dsc.gg said about the stored token just now."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    UNAVAILABLE = "unavailable"
    RATE_LIMITED = "rate_limited"
    REFUSED = "refused"  # another API error (e.g. blacklisted owner): see ``problem``
    NOT_CHECKED = "not_checked"  # no token, or it cannot be decrypted


@dataclass(frozen=True, slots=True)
class TokenStatus:
    """``/dscgg status`` in data. ``info`` is None when no token is set."""

    info: TokenInfo | None
    readable: bool
    check: TokenCheck
    #: For RATE_LIMITED: seconds until a retry makes sense. For REFUSED: the sentence describing why.
    retry_after: float | None = None
    problem: str | None = None


class TokenService:
    def __init__(
        self,
        store: TokenStore,
        client: DscggClient,
        audit: AuditLog,
        *,
        on_secret: Callable[[str], None] = register_secret,
    ) -> None:
        self._store = store
        self._client = client
        self._audit = audit
        self._on_secret = on_secret

    async def token_for(self, guild_id: int) -> str:
        """The guild's token for a dsc.gg call. Raises NoToken or TokenUnreadable."""
        try:
            token = await self._store.get(guild_id)
        except TokenUnreadable as exc:
            raise errors.TokenUnreadable(guild_id) from exc
        if token is None:
            raise errors.NoToken(guild_id)
        self._on_secret(token)
        return token

    async def set(self, guild_id: int, user_id: int, token: str) -> TokenInfo:
        """Validate ``token`` with one cheap authenticated call, then store it encrypted.

        Raises TokenRejected when dsc.gg refuses the key (nothing is stored), or the dsc.gg error
        that prevented checking it (Unavailable, RateLimited, …; nothing is stored either).
        """
        token = token.strip()
        self._on_secret(token)
        try:
            await self._validate(token, user_id)
        except api.InvalidKey as exc:
            self._refused(guild_id, user_id, EventKind.TOKEN_REJECTED, errors.TokenRejected())
            raise errors.TokenRejected from exc
        except api.APIError as exc:
            self._refused(guild_id, user_id, EventKind.TOKEN_REJECTED, exc)
            raise
        except api.DscggError as exc:
            self._refused(guild_id, user_id, EventKind.MUTATION_REFUSED, exc)
            raise
        info = await self._store.set(guild_id, token, set_by=user_id)
        log.info("dsc.gg token set for guild %s by user %s", guild_id, user_id)
        self._audit.record(AuditEvent(guild_id=guild_id, kind=EventKind.TOKEN_SET, actor_id=user_id))
        return info

    async def clear(self, guild_id: int, user_id: int) -> TokenInfo | None:
        """Forget the guild's token. Returns what was stored, or None if there was nothing."""
        info = await self._store.info(guild_id)
        if not await self._store.clear(guild_id):
            return None
        log.info("dsc.gg token cleared for guild %s by user %s", guild_id, user_id)
        self._audit.record(AuditEvent(guild_id=guild_id, kind=EventKind.TOKEN_CLEARED, actor_id=user_id))
        return info

    async def status(self, guild_id: int, user_id: int) -> TokenStatus:
        """Whether a token is set, by whom and when, and whether dsc.gg accepts it right now."""
        info = await self._store.info(guild_id)
        if info is None:
            return TokenStatus(info=None, readable=False, check=TokenCheck.NOT_CHECKED)
        try:
            token = await self.token_for(guild_id)
        except (errors.TokenUnreadable, errors.NoToken):
            return TokenStatus(info=info, readable=False, check=TokenCheck.NOT_CHECKED)
        try:
            await self._validate(token, user_id)
        except api.InvalidKey:
            return TokenStatus(info=info, readable=True, check=TokenCheck.REJECTED)
        except api.APIError as exc:
            return TokenStatus(
                info=info, readable=True, check=TokenCheck.REFUSED, problem=errors.audit_reason(exc)
            )
        except api.RateLimited as exc:
            return TokenStatus(
                info=info, readable=True, check=TokenCheck.RATE_LIMITED, retry_after=exc.retry_after
            )
        except api.Unavailable:
            return TokenStatus(info=info, readable=True, check=TokenCheck.UNAVAILABLE)
        return TokenStatus(info=info, readable=True, check=TokenCheck.ACCEPTED)

    async def _validate(self, token: str, user_id: int) -> None:
        """One cheap authenticated call. A 404 still means the key itself was accepted."""
        try:
            await self._client.get_user(user_id, token=token)
        except api.NotFound:
            return

    def _refused(self, guild_id: int, user_id: int, kind: EventKind, error: BaseException) -> None:
        log.info("dsc.gg token for guild %s not saved: %s", guild_id, type(error).__name__)
        self._audit.record(
            AuditEvent(
                guild_id=guild_id,
                kind=kind,
                actor_id=user_id,
                action="token set",
                reason=errors.audit_reason(error),
            )
        )
