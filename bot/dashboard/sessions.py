"""Dashboard sessions: signed cookies, kept in the database (``bot.db.sessions``).

- The session cookie holds a random id (256 bits) and its HMAC-SHA256 signature; the database keys the
  session by the id's SHA-256 digest. The signing secret is made once and kept in the database, so every
  process and every restart accepts the same cookies.
- A session ends when it has not been used for ``idle`` (7 days), when the user's Discord access token
  expires (Discord gives them about 7 days), at logout, and when Discord no longer accepts the token.
- Each session has its own CSRF token, which every form of the dashboard sends back.
- A login in progress is a second, short-lived signed cookie holding the OAuth ``state`` and the page to
  return to: the callback must bring back the same state, in the same browser, within 10 minutes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final

from bot.crypto import TokenCipher, TokenUndecryptable
from bot.db.database import utc_now
from bot.db.sessions import SessionStore, StoredSession

__all__ = ["IDLE", "LOGIN_TTL", "Session", "Sessions"]

log = logging.getLogger(__name__)

#: A session unused for this long is over.
IDLE: Final = timedelta(days=7)
#: A session's last use is written at most this often (a page view is otherwise a read only).
TOUCH_EVERY: Final = timedelta(minutes=5)
#: Seconds a login may take between /auth/login and /auth/callback.
LOGIN_TTL: Final = 600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Session:
    digest: bytes
    user_id: int
    csrf: str
    access_token: str
    #: When the session ends unless used again (idle), or when its Discord token expires if sooner.
    ends_at: datetime
    #: The message left for this page, if any (the page clears it).
    flash: dict[str, Any] | None = None
    #: True when the session's life was extended just now: the cookie is sent again.
    renewed: bool = False

    def check_csrf(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())


@dataclass(frozen=True, slots=True)
class PendingLogin:
    state: str
    #: The dashboard path to show after the login.
    next: str


class Sessions:
    def __init__(
        self,
        store: SessionStore,
        cipher: TokenCipher,
        *,
        idle: timedelta = IDLE,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = store
        self._cipher = cipher
        self.idle = idle
        self._clock = clock
        self._secret: bytes | None = None

    async def _key(self) -> bytes:
        if self._secret is None:
            self._secret = bytes.fromhex(await self._store.secret(secrets.token_hex(32)))
        return self._secret

    async def _mac(self, purpose: str, value: str) -> str:
        digest = hmac.new(await self._key(), f"{purpose}\0{value}".encode(), hashlib.sha256).digest()
        return _b64(digest)

    async def _sign(self, purpose: str, value: str) -> str:
        return f"{value}.{await self._mac(purpose, value)}"

    async def _unsign(self, purpose: str, signed: str | None) -> str | None:
        if not signed or len(signed) > 4096 or "." not in signed:
            return None
        value, mac = signed.rsplit(".", 1)
        expected = await self._mac(purpose, value)
        return value if hmac.compare_digest(mac.encode(), expected.encode()) else None

    # ---------------------------------------------------------------- logging in

    async def begin_login(self, next_path: str) -> tuple[str, str]:
        """A new login: its OAuth ``state`` and the signed cookie that binds it to this browser."""
        state = secrets.token_urlsafe(24)
        payload = {"s": state, "n": next_path, "e": int(time.time()) + LOGIN_TTL}
        value = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return state, await self._sign("login", value)

    async def pending_login(self, cookie: str | None, state: str | None) -> PendingLogin | None:
        """The login this browser started, if the callback's ``state`` is its own and it is recent."""
        value = await self._unsign("login", cookie)
        if value is None or not state:
            return None
        try:
            payload = json.loads(_unb64(value))
            expected, next_path, expires = str(payload["s"]), str(payload["n"]), int(payload["e"])
        except (binascii.Error, ValueError, KeyError, TypeError):
            return None
        if expires < time.time() or not hmac.compare_digest(state.encode(), expected.encode()):
            return None
        return PendingLogin(expected, next_path)

    async def start(self, user_id: int, access_token: str, expires_in: float) -> str:
        """A session for ``user_id`` holding their Discord token; returns the cookie value."""
        session_id = secrets.token_urlsafe(32)
        now = self._clock()
        await self._store.add(
            StoredSession(
                digest=hashlib.sha256(session_id.encode()).digest(),
                user_id=user_id,
                csrf=secrets.token_urlsafe(32),
                access_token=self._cipher.encrypt(user_id, access_token),
                token_expires_at=now + timedelta(seconds=expires_in),
                created_at=now,
                last_seen_at=now,
            ),
            idle_before=now - self.idle,
        )
        log.info("Dashboard session started for user %s", user_id)
        return await self._sign("session", session_id)

    # ---------------------------------------------------------------- using a session

    async def resume(self, cookie: str | None) -> Session | None:
        """The live session of this cookie, or None (no cookie, a forged one, or a session that is
        over: deleted then)."""
        session_id = await self._unsign("session", cookie)
        if session_id is None:
            return None
        digest = hashlib.sha256(session_id.encode()).digest()
        stored = await self._store.get(digest)
        if stored is None:
            return None
        now = self._clock()
        if now - stored.last_seen_at >= self.idle or now >= stored.token_expires_at:
            await self._store.delete(digest)
            log.info("Dashboard session of user %s ended: expired", stored.user_id)
            return None
        try:
            token = self._cipher.decrypt(stored.user_id, stored.access_token)
        except TokenUndecryptable:
            await self._store.delete(digest)
            log.warning("Dashboard session of user %s ended: its token no longer decrypts", stored.user_id)
            return None
        renewed = now - stored.last_seen_at >= TOUCH_EVERY
        if renewed:
            await self._store.touch(digest, now)
        flash = None
        if stored.flash:
            try:
                flash = json.loads(stored.flash)
            except ValueError:
                flash = None
        return Session(
            digest=digest,
            user_id=stored.user_id,
            csrf=stored.csrf,
            access_token=token,
            ends_at=min(now + self.idle, stored.token_expires_at),
            flash=flash if isinstance(flash, dict) else None,
            renewed=renewed,
        )

    async def flash(self, session: Session, message: dict[str, Any]) -> None:
        """Leave ``message`` for the next page of this session."""
        await self._store.set_flash(session.digest, json.dumps(message, separators=(",", ":")))

    async def take_flash(self, session: Session) -> tuple[Session, dict[str, Any] | None]:
        """The session without its message, and the message (cleared in the database)."""
        if session.flash is None:
            return session, None
        await self._store.set_flash(session.digest, None)
        return replace(session, flash=None), session.flash

    async def end(self, session: Session) -> None:
        await self._store.delete(session.digest)
        log.info("Dashboard session of user %s ended", session.user_id)
