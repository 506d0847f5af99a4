"""TokenService: a server's dsc.gg API token — validate, store encrypted, forget, report.

Every token that passes through here is registered with the log redaction before anything can log it.
A submitted token stays registered only if it is stored: one that dsc.gg refuses is masked just while
it is being checked, so an admin cannot blank arbitrary words out of the logs by "setting" them. A
token whose shape no dsc.gg key has is refused before any of that. Stored tokens are registered once per
server (when set or first decrypted) and unregistered when cleared or replaced; the registry counts, so
a token two servers share stays masked until both dropped it. Tokens never appear in return values
other than ``token_for()`` (which the link services need to call dsc.gg) and never in exception
messages.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot import failures as errors
from bot.audit import AuditEvent, AuditLog, EventKind
from bot.db.tokens import TokenInfo, TokenStore, TokenUnreadable
from bot.dscgg import errors as api
from bot.log import register_secret, unregister_secret

if TYPE_CHECKING:
    from bot.dscgg.client import DscggClient

__all__ = ["TokenCheck", "TokenService", "TokenStatus"]

log = logging.getLogger(__name__)

#: Bounds of a submitted token, after stripping surrounding blanks (the form itself takes 8 to 200).
MIN_TOKEN_LENGTH = 8
MAX_TOKEN_LENGTH = 200


def well_formed(token: str) -> bool:
    """Whether ``token`` (already stripped) could be a dsc.gg API key and be sent in a header.

    Printable ASCII without spaces: this refuses tabs, line breaks, other control characters,
    zero-width and other non-ASCII characters.
    """
    return (
        MIN_TOKEN_LENGTH <= len(token) <= MAX_TOKEN_LENGTH
        and token.isascii()
        and token.isprintable()
        and " " not in token
    )


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
    #: For RATE_LIMITED: seconds until a retry makes sense. For REFUSED: why (rendered by bot.errors).
    retry_after: float | None = None
    problem: errors.Reason | None = None


class TokenService:
    def __init__(
        self,
        store: TokenStore,
        client: DscggClient,
        audit: AuditLog,
        *,
        on_secret: Callable[[str], None] = register_secret,
        on_forget: Callable[[str], None] = unregister_secret,
    ) -> None:
        self._store = store
        self._client = client
        self._audit = audit
        self._on_secret = on_secret
        self._on_forget = on_forget
        #: The token registered for each guild (one registration per guild, whatever the number of calls).
        self._registered: dict[int, str] = {}

    async def token_for(self, guild_id: int) -> str:
        """The guild's token for a dsc.gg call. Raises NoToken or TokenUnreadable."""
        try:
            token = await self._store.get(guild_id)
        except TokenUnreadable as exc:
            raise errors.TokenUnreadable(guild_id) from exc
        if token is None:
            raise errors.NoToken(guild_id)
        self._remember(guild_id, token)
        return token

    async def set(self, guild_id: int, user_id: int, token: str) -> TokenInfo:
        """Validate ``token`` with one cheap authenticated call, then store it encrypted.

        Raises InvalidInput when ``token`` cannot be a dsc.gg key at all (nothing is sent anywhere),
        TokenRejected when dsc.gg refuses the key (nothing is stored), or the dsc.gg error that
        prevented checking it (Unavailable, RateLimited, …; nothing is stored either).
        """
        token = token.strip()
        if not well_formed(token):
            # Refused here, before dsc.gg saw it: audited as such, never as "rejected by dsc.gg".
            await self._refused(guild_id, user_id, EventKind.TOKEN_MALFORMED, None)
            raise errors.InvalidInput("token", errors.Invalid.TOKEN_MALFORMED)
        # Masked while it is being checked; it stays masked only if it is stored (or an unexpected
        # error, whose traceback is logged after this returns, might quote it).
        self._on_secret(token)
        release = False  # drop this call's registration when done
        try:
            try:
                await self._validate(token, user_id)
            except api.InvalidKey as exc:
                release = True
                await self._refused(guild_id, user_id, EventKind.TOKEN_REJECTED, errors.TokenRejected())
                raise errors.TokenRejected from exc
            except api.APIError as exc:
                release = True
                await self._refused(guild_id, user_id, EventKind.TOKEN_REJECTED, exc)
                raise
            except api.DscggError as exc:
                release = True
                await self._refused(guild_id, user_id, EventKind.MUTATION_REFUSED, exc)
                raise
            # The token and the event saying so are committed together.
            async with self._audit.transaction() as tx:
                info = await self._store.set(guild_id, token, set_by=user_id, conn=tx.conn)
                await tx.record(AuditEvent(guild_id=guild_id, kind=EventKind.TOKEN_SET, actor_id=user_id))
            self._remember(guild_id, token)  # the guild's own registration, kept until cleared
            release = True
        finally:
            if release:
                self._on_forget(token)
        log.info("dsc.gg token set for guild %s by user %s", guild_id, user_id)
        return info

    async def clear(self, guild_id: int, user_id: int) -> TokenInfo | None:
        """Forget the guild's token. Returns what was stored, or None if there was nothing."""
        info = await self._store.info(guild_id)
        async with self._audit.transaction() as tx:
            if not await self._store.clear(guild_id, conn=tx.conn):
                return None
            await tx.record(AuditEvent(guild_id=guild_id, kind=EventKind.TOKEN_CLEARED, actor_id=user_id))
        self._forget(guild_id)
        log.info("dsc.gg token cleared for guild %s by user %s", guild_id, user_id)
        return info

    async def info(self, guild_id: int) -> TokenInfo | None:
        """What is stored (last 4 characters, who set it and when), without decrypting or asking dsc.gg."""
        return await self._store.info(guild_id)

    def forget_secret(self, guild_id: int) -> None:
        """The guild's token was deleted elsewhere (the bot left the server): stop masking it."""
        self._forget(guild_id)

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
                info=info, readable=True, check=TokenCheck.REFUSED, problem=errors.reason_of(exc)
            )
        except api.RateLimited as exc:
            return TokenStatus(
                info=info, readable=True, check=TokenCheck.RATE_LIMITED, retry_after=exc.retry_after
            )
        except api.Unavailable:
            return TokenStatus(info=info, readable=True, check=TokenCheck.UNAVAILABLE)
        return TokenStatus(info=info, readable=True, check=TokenCheck.ACCEPTED)

    def _remember(self, guild_id: int, token: str) -> None:
        """Keep ``token`` masked as the guild's token (replacing the guild's previous one)."""
        previous = self._registered.get(guild_id)
        if previous == token:
            return
        self._on_secret(token)
        self._registered[guild_id] = token
        if previous is not None:
            self._on_forget(previous)

    def _forget(self, guild_id: int) -> None:
        previous = self._registered.pop(guild_id, None)
        if previous is not None:
            self._on_forget(previous)

    async def _validate(self, token: str, user_id: int) -> None:
        """One cheap authenticated call. A 404 still means the key itself was accepted."""
        try:
            await self._client.get_user(user_id, token=token)
        except api.NotFound:
            return

    async def _refused(
        self, guild_id: int, user_id: int, kind: EventKind, error: BaseException | None
    ) -> None:
        """Audit a refused ``/dscgg token set`` (stored before the refusal is raised). A failure to
        store it is logged, never raised: the admin must still read why the token was refused."""
        log.info(
            "dsc.gg token for guild %s not saved: %s",
            guild_id,
            kind.value if error is None else type(error).__name__,
        )
        event = AuditEvent(
            guild_id=guild_id,
            kind=kind,
            actor_id=user_id,
            action="token set",
            reason=None if error is None else errors.reason_of(error),
        )
        try:
            await self._audit.record(event)
        except Exception:
            log.exception("Could not store the audit event of a refused token for guild %s", guild_id)
