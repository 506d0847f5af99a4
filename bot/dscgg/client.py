"""The dsc.gg v2 REST client.

Every call goes through ``DscggClient._request``, the one place that keeps rate limits, sends,
retries and turns the ``{success, code, payload|message}`` envelope into a value or an exception.

Retry policy (each retry is a new request and takes its own rate-limit slot):

* GET is idempotent: retried on 5xx, timeouts and connection errors with bounded exponential
  backoff and jitter, and once after a 429 when the wait is within ``max_rate_limit_wait``.
* POST (create) is never resent once it may have reached dsc.gg: a timeout, a dropped connection or
  a 5xx raises ``Unavailable``; resending could create the link twice or answer ``link_taken``
  for a link that was in fact just created. Only a failure to *connect* is retried, since then
  nothing was sent.
* PATCH sets fields to the values given, so sending it again gives the same result: it is retried
  after a timeout or a dropped connection, but not after a 5xx (dsc.gg answered, and failed).
* DELETE is retried only when nothing was sent (connection refused): a resent DELETE that had
  already succeeded would answer ``not_found`` and hide the success. (aiohttp itself resends an
  idempotent GET/DELETE once when the connection closes before any answer, as RFC 9112 section
  9.3.1 allows, unless the caller's session switches that off; this client adds nothing to that.)

Deadline (``bot.dscgg.deadline``): when the caller set a time budget, every attempt's timeout,
backoff sleep and rate-limit wait is capped to the time left, and no request is sent that could not
be waited for: an attempt needs at least ``_MIN_ATTEMPT`` seconds left, a POST (which is never resent)
its whole timeout (or the whole budget, if that is shorter). No time left before the first attempt
raises ``DeadlineExceeded``; no time for a retry raises the last failure; a rate-limit wait that does
not fit raises ``RateLimited``.

The token is a per-call argument sent as the bare ``Authorization`` header. It is never stored on
the session, logged, or put into a repr or an exception message.
"""

from __future__ import annotations

import asyncio
import codecs
import enum
import functools
import json
import logging
import math
import platform
import random
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final, Literal, Protocol, TypeAlias, TypeVar
from urllib.parse import quote

import aiohttp
from pydantic import BaseModel, ValidationError
from pydantic_core import from_json
from yarl import URL

from bot import __version__
from bot.dscgg import deadline
from bot.dscgg.errors import (
    ERRORS_BY_CODE,
    APIError,
    BadRequest,
    DeadlineExceeded,
    InvalidKey,
    NotFound,
    RateLimited,
    Unavailable,
    UnknownAPIError,
    VersionDeprecated,
)
from bot.dscgg.models import App, Link, LinkType, User
from bot.dscgg.ratelimit import Endpoint, Limiter, LimitTable, RateLimiter, Refusal

log = logging.getLogger(__name__)

DEFAULT_BASE_URL: Final = "https://api.dsc.gg/v2"
DEFAULT_USER_AGENT: Final = (
    f"dscgg-bot/{__version__} (+https://github.com/dscgg-bot) "
    f"aiohttp/{aiohttp.__version__} Python/{platform.python_version()}"
)
#: search ``limit`` is clamped into this range.
SEARCH_LIMIT_RANGE: Final = (1, 100)
# Shorter tokens cannot be dsc.gg keys; see _redacted.
_MIN_REDACTED_TOKEN: Final = 8
# A Retry-After beyond this is treated as nonsense and capped.
_MAX_RETRY_AFTER: Final = 3600.0
# Under a deadline, an attempt is not started with less time than this left (or the timeout, if shorter).
_MIN_ATTEMPT: Final = 0.5
# What the bookkeeping between a call's start and its check may take: a POST that is a command's first
# call, under a deadline shorter than its timeout, needs the whole budget and has it, minus this.
_SLACK: Final = 0.01


class _Unset(enum.Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


#: "Leave this field as it is": the field is not sent at all.
UNSET: Final = _Unset.UNSET
UnsetType: TypeAlias = Literal[_Unset.UNSET]

_M = TypeVar("_M", bound=BaseModel)

_LINK_TYPES: Final = frozenset(member.value for member in LinkType)


class _Method(enum.StrEnum):
    GET = "GET"
    POST = "POST"
    PATCH = "PATCH"
    DELETE = "DELETE"


# Who may be resent after what (see the module docstring).
_RETRY_ON_5XX: Final = frozenset({_Method.GET})
_RETRY_WITHOUT_ANSWER: Final = frozenset({_Method.GET, _Method.PATCH})
_RETRY_AFTER_429: Final = frozenset({_Method.GET})
# They return nothing, so an empty 2xx is a complete answer to them.
_MUTATIONS: Final = frozenset({_Method.POST, _Method.PATCH, _Method.DELETE})

# Errors raised before a single byte of the request left: always safe to resend.
_NOT_SENT_ERRORS: Final = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)

_SUCCESS_CODES: Final = frozenset({"payload_received", "link_created", "link_updated", "link_deleted"})

# Without a ``code``, a status alone still says something.
_ERRORS_BY_STATUS: Final[dict[int, type[APIError]]] = {
    400: BadRequest,
    401: InvalidKey,
    404: NotFound,
    410: VersionDeprecated,
}


def _build_url(base_url: str, path: tuple[str, ...], query: tuple[tuple[str, str], ...]) -> URL:
    """The request URL, built pre-encoded so neither yarl nor aiohttp re-normalises it: "../user/1"
    stays one segment (``_path_part`` has refused "." and "..", which a proxy could resolve)."""
    url = base_url + "/" + "/".join(quote(part, safe="") for part in path)
    if query:
        url += "?" + "&".join(f"{quote(key, safe='')}={quote(value, safe='')}" for key, value in query)
    return URL(url, encoded=True)


@functools.lru_cache(maxsize=1024)
def _path_url(base_url: str, path: tuple[str, ...]) -> URL:
    """``_build_url`` without a query, cached: the same few links are asked for again and again, and
    a URL object that is reused keeps what yarl and aiohttp work out from it (host, port, path),
    which measurably saves CPU per request (bench/client.py)."""
    return _build_url(base_url, path, ())


def _parse_json(raw: bytes) -> Any:
    """The body as JSON, or None when it is not JSON (or nested past the parser's depth limit).
    A leading UTF-8 byte order mark is allowed, as RFC 8259 lets parsers do."""
    try:
        return from_json(raw.removeprefix(codecs.BOM_UTF8))
    except (ValueError, RecursionError):
        return None


def _redacted(text: str, token: str | None) -> str:
    """``text`` from dsc.gg with the caller's token, should dsc.gg ever echo it, replaced. Tokens
    too short to be a dsc.gg key are left alone: replacing "t" would only garble the message."""
    if token and len(token) >= _MIN_REDACTED_TOKEN and token in text:
        return text.replace(token, "[token]")
    return text


def _required_text(name: str, value: str | int) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(f"{name} must be a string")
    text = str(value)
    if not text.strip():
        raise ValueError(f"{name} must not be empty")
    return text


def _path_part(name: str, value: str | int) -> str:
    text = _required_text(name, value)
    if text in {".", ".."}:
        # Percent-encoded or not, a normalising proxy may resolve these and reach another endpoint.
        raise ValueError(f"{name} cannot be {text!r}")
    return text


def _check_token(token: str | None, *, required: bool) -> None:
    # Messages here never include the token.
    if token is None or token == "":
        if required:
            raise ValueError("a dsc.gg API token is required for this call")
        return
    if not isinstance(token, str):
        raise TypeError("the dsc.gg API token must be a string")
    # ASCII and printable: no control characters (CR/LF would split the header), no DEL.
    if not (token.isascii() and token.isprintable()):
        raise ValueError("the dsc.gg API token contains characters a header cannot carry")


def _link_type(value: LinkType | str) -> str:
    text = value.value if isinstance(value, LinkType) else value
    if not isinstance(text, str) or text.lower() not in _LINK_TYPES:
        raise ValueError(f"type must be one of {', '.join(sorted(_LINK_TYPES))}")
    return text.lower()


def _color(value: str | int | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFFFF:
        raise ValueError("color must be a hex string or an integer from 0 to 0xFFFFFF")
    return f"#{value:06X}"


def _parse_retry_after(header: str | None) -> float | None:
    """Retry-After as delta-seconds or an HTTP-date; None when absent or unreadable."""
    if not header:
        return None
    header = header.strip()
    try:
        seconds = float(header)
    except ValueError:
        try:
            when = parsedate_to_datetime(header)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(0.0, seconds), _MAX_RETRY_AFTER)


class _Stage(enum.Enum):
    """How far a failed attempt got; decides whether resending is safe."""

    NOT_SENT = "not sent"  # could not connect: nothing left this process
    NO_ANSWER = "no answer"  # timeout or dropped connection: dsc.gg may or may not have acted
    ANSWERED = "answered"  # dsc.gg answered with a 5xx


class _AttemptFailed(Exception):
    """Internal: one attempt failed; ``error`` is what the caller gets if it is not retried.

    Always raised outside ``except`` blocks so ``error`` carries no chained aiohttp exception
    (whose request info would hold the Authorization header).
    """

    def __init__(self, error: Unavailable, stage: _Stage) -> None:
        super().__init__(error.reason)
        self.error = error
        self.stage = stage


class CallObserver(Protocol):
    """Told about every attempt and every rate-limit wait (e.g. for metrics); must not raise or block."""

    def attempt_done(self, endpoint: str, status: int | None, seconds: float) -> None:
        """One attempt of ``endpoint`` ended: HTTP ``status``, or None when no answer came."""

    def limiter_waited(self, endpoint: str, seconds: float) -> None:
        """A call waited ``seconds`` for the pre-send rate limiter."""


class DscggClient:
    """Async client for the dsc.gg v2 API on a caller-owned ``aiohttp.ClientSession``."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        max_rate_limit_wait: float = 5.0,
        limits: LimitTable | None = None,
        user_agent: str | None = None,
        *,
        retries: int = 2,
        backoff_base: float = 0.25,
        backoff_max: float = 2.0,
        rate_limiter: Limiter | None = None,
    ) -> None:
        if retries < 0 or backoff_base < 0 or backoff_max < 0 or max_rate_limit_wait < 0:
            raise ValueError("retries, backoff and max_rate_limit_wait must not be negative")
        self._session = session
        self.base_url = base_url.rstrip("/")
        # sock_connect bounds opening a connection; waiting for a pooled one is covered by total.
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self.max_rate_limit_wait = max_rate_limit_wait
        # ``limits`` builds the default in-process limiter; a limiter handed in has its own table.
        self.rate_limiter: Limiter = rate_limiter if rate_limiter is not None else RateLimiter(limits)
        self._headers: Mapping[str, str] = {
            "User-Agent": user_agent or DEFAULT_USER_AGENT,
            "Accept": "application/json",
        }
        self._retries = retries
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        #: Told about attempts and limiter waits (``bot.metrics``); None: nobody listens.
        self.observer: CallObserver | None = None

    def __repr__(self) -> str:
        return f"<DscggClient base_url={self.base_url!r}>"

    # ---------------------------------------------------------------- links

    async def get_link(self, slug: str, *, token: str, with_stats: bool = False) -> Link:
        params = {"with_stats": "true"} if with_stats else None
        payload = await self._request(
            _Method.GET, Endpoint.GET_LINK, ("link", _path_part("slug", slug)), token=token, params=params
        )
        return self._model(Link, payload, Endpoint.GET_LINK)

    async def create_link(
        self,
        slug: str,
        *,
        token: str,
        redirect: str,
        type: LinkType | str,
        title: str | None = None,
        description: str | None = None,
        image: str | None = None,
        unlisted: bool | None = None,
        password: str | None = None,
    ) -> None:
        """Create ``slug``. dsc.gg ignores a colour on create; set it with ``update_link`` after."""
        body: dict[str, Any] = {
            "redirect": _required_text("redirect", redirect),
            "type": _link_type(type),
        }
        meta = {
            key: value
            for key, value in (("title", title), ("description", description), ("image", image))
            if value is not None
        }
        if meta:
            body["meta"] = meta
        if unlisted is not None:
            body["unlisted"] = bool(unlisted)
        if password is not None:
            body["password"] = password
        await self._request(
            _Method.POST, Endpoint.CREATE_LINK, ("link", _path_part("slug", slug)), token=token, body=body
        )

    async def update_link(
        self,
        slug: str,
        *,
        token: str,
        redirect: str | UnsetType = UNSET,
        type: LinkType | str | UnsetType = UNSET,
        title: str | UnsetType | None = UNSET,
        description: str | UnsetType | None = UNSET,
        image: str | UnsetType | None = UNSET,
        color: str | int | UnsetType | None = UNSET,
        unlisted: bool | UnsetType = UNSET,
        password: str | UnsetType | None = UNSET,
    ) -> None:
        """Change only the fields given. ``UNSET`` (the default) is not sent; ``None`` is sent as
        JSON null and clears the field (``password=None`` removes the password)."""
        body: dict[str, Any] = {}
        if redirect is not UNSET:
            body["redirect"] = _required_text("redirect", redirect)
        if type is not UNSET:
            body["type"] = _link_type(type)
        meta: dict[str, Any] = {}
        for key, value in (("title", title), ("description", description), ("image", image)):
            if value is not UNSET:
                meta[key] = value
        if color is not UNSET:
            meta["color"] = _color(color)
        if meta:
            body["meta"] = meta
        if unlisted is not UNSET:
            if not isinstance(unlisted, bool):
                raise TypeError("unlisted must be True or False")
            body["unlisted"] = unlisted
        if password is not UNSET:
            body["password"] = password
        if not body:
            raise ValueError("nothing to update: give at least one field")
        await self._request(
            _Method.PATCH,
            Endpoint.UPDATE_LINK,
            ("link", _path_part("slug", slug)),
            token=token,
            body=body,
        )

    async def delete_link(self, slug: str, *, token: str) -> None:
        await self._request(
            _Method.DELETE, Endpoint.DELETE_LINK, ("link", _path_part("slug", slug)), token=token
        )

    # ---------------------------------------------------------------- users and apps

    async def get_user(self, user_id: int | str, *, token: str) -> User:
        path = ("user", _path_part("user_id", user_id))
        payload = await self._request(_Method.GET, Endpoint.GET_USER, path, token=token)
        return self._model(User, payload, Endpoint.GET_USER)

    async def get_user_links(self, user_id: int | str, *, token: str) -> list[Link]:
        path = ("user", _path_part("user_id", user_id), "links")
        payload = await self._request(_Method.GET, Endpoint.GET_USER_LINKS, path, token=token)
        return self._models(Link, payload, Endpoint.GET_USER_LINKS)

    async def get_user_apps(self, user_id: int | str, *, token: str) -> list[App]:
        path = ("user", _path_part("user_id", user_id), "apps")
        payload = await self._request(_Method.GET, Endpoint.GET_USER_APPS, path, token=token)
        return self._models(App, payload, Endpoint.GET_USER_APPS)

    async def get_app(self, app_id: int | str, *, token: str) -> App:
        path = ("app", _path_part("app_id", app_id))
        payload = await self._request(_Method.GET, Endpoint.GET_APP, path, token=token)
        return self._model(App, payload, Endpoint.GET_APP)

    # ---------------------------------------------------------------- discovery

    async def get_top_links(
        self, *, token: str | None = None, type: LinkType | str | None = None
    ) -> list[Link]:
        """The top links. No token needed; an empty result (``[]`` or ``not_found``) is ``[]``."""
        params = {"type": _link_type(type)} if type is not None else None
        try:
            payload = await self._request(
                _Method.GET,
                Endpoint.GET_TOP_LINKS,
                ("top",),
                token=token,
                params=params,
                token_required=False,
            )
        except NotFound:
            return []
        return self._models(Link, payload, Endpoint.GET_TOP_LINKS)

    async def search_links(
        self,
        query: str,
        *,
        token: str,
        type: LinkType | str | None = None,
        limit: int | None = None,
    ) -> list[Link]:
        """Search links (whitelisted keys only). ``limit`` is clamped to 1..100; no match is ``[]``."""
        if not isinstance(query, str):
            raise TypeError("query must be a string")
        if not query.strip():
            raise ValueError("query must not be empty")
        params = {"q": query}
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int):
                raise TypeError("limit must be an integer")
            low, high = SEARCH_LIMIT_RANGE
            params["limit"] = str(min(max(limit, low), high))
        if type is not None:
            params["type"] = _link_type(type)
        try:
            payload = await self._request(
                _Method.GET, Endpoint.SEARCH_LINKS, ("search",), token=token, params=params
            )
        except NotFound:
            return []
        return self._models(Link, payload, Endpoint.SEARCH_LINKS)

    # ---------------------------------------------------------------- the choke point

    def _url(self, path: tuple[str, ...], params: Mapping[str, str] | None) -> URL:
        if params:  # search queries and the like are user input: built each time, never kept
            return _build_url(self.base_url, path, tuple(params.items()))
        return _path_url(self.base_url, path)

    async def _request(
        self,
        method: _Method,
        endpoint: Endpoint,
        path: tuple[str, ...],
        *,
        token: str | None,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        token_required: bool = True,
    ) -> Any:
        """Send one logical call (with the retries its method allows) and return the payload; the
        whole call, waits included, is charged to the caller's deadline (``bot.dscgg.deadline``)."""
        with deadline.charge() as window:
            return await self._send(
                method,
                endpoint,
                path,
                window,
                token=token,
                params=params,
                body=body,
                token_required=token_required,
            )

    async def _send(
        self,
        method: _Method,
        endpoint: Endpoint,
        path: tuple[str, ...],
        window: deadline.Window,
        *,
        token: str | None,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        token_required: bool = True,
    ) -> Any:
        _check_token(token, required=token_required)
        url = self._url(path, params)
        headers = {**self._headers, "Authorization": token} if token else self._headers
        data = None
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            headers = {**headers, "Content-Type": "application/json"}
        rate_limiter = self.rate_limiter
        # Under a deadline: how long an attempt needs at least (see the module docstring).
        needed = self._needed(method, window)

        failures = 0
        retried_429 = False
        while True:
            max_wait = self._wait_allowed(window, needed)  # DeadlineExceeded if no attempt fits
            # Booked (in-process, before any await), or refused at once if the wait would be too long.
            reservation = await rate_limiter.book(token, endpoint, max_wait=max_wait)
            if isinstance(reservation, Refusal):
                raise self._refused(endpoint, reservation, token)
            # One attempt. Failures are noted here and raised below, outside the except blocks, so
            # the error carries no chained aiohttp exception (whose request info holds the token).
            # Whatever happens, the slot is settled if the request may have left, else given back.
            may_have_left = False
            failure: Unavailable | None = None
            stage = _Stage.NO_ANSWER
            try:
                if not rate_limiter.ready(reservation):
                    waited = time.perf_counter()
                    refusal = await rate_limiter.wait(reservation)
                    if self.observer is not None:
                        self.observer.limiter_waited(endpoint, time.perf_counter() - waited)
                    if refusal is not None:
                        raise self._refused(endpoint, refusal, token)
                timeout = self._attempt_timeout(window)
                debug = log.isEnabledFor(logging.DEBUG)
                started = time.perf_counter()
                status = 0
                may_have_left = True
                try:
                    async with self._session.request(
                        method, url, headers=headers, data=data, timeout=timeout, allow_redirects=False
                    ) as response:
                        raw = await response.read()
                        status = response.status
                        response_headers = response.headers
                except _NOT_SENT_ERRORS as error:
                    may_have_left = False
                    failure = Unavailable(f"cannot connect to dsc.gg: {type(error).__name__}")
                    stage = _Stage.NOT_SENT
                except TimeoutError:
                    failure = Unavailable("dsc.gg timed out")
                except aiohttp.ClientError as error:
                    # The class name only: aiohttp messages can quote the request, headers included.
                    failure = Unavailable(f"connection to dsc.gg failed: {type(error).__name__}")
            finally:
                if may_have_left:
                    if self.observer is not None:
                        self.observer.attempt_done(endpoint, status or None, time.perf_counter() - started)
                    rate_limiter.settle(reservation)
                else:
                    # Nothing reached dsc.gg: the slot was not used.
                    rate_limiter.release(reservation)
            if failure is None:
                if debug:
                    latency_ms = (time.perf_counter() - started) * 1000
                    log.debug("dsc.gg %s %s -> %d in %.1f ms", method, endpoint, status, latency_ms)
                try:
                    return self._unwrap(method, endpoint, status, raw, response_headers, token)
                except _AttemptFailed as answered:
                    failure, stage = answered.error, answered.stage
                except RateLimited as limited:
                    if (
                        method not in _RETRY_AFTER_429
                        or retried_429
                        or limited.retry_after > self.max_rate_limit_wait
                        or time.monotonic() + limited.retry_after + needed > window.until
                    ):
                        raise
                    retried_429 = True
                    continue
            # Decided outside the except blocks: the error raised carries no chained context.
            if not self._may_resend(method, stage) or failures >= self._retries:
                raise failure
            delay = self._backoff(failures)
            if time.monotonic() + delay + needed > window.until:
                raise failure  # no time left for another attempt before the deadline
            failures += 1
            log.debug("dsc.gg %s %s: %s; retry %d in %.2f s", method, endpoint, failure, failures, delay)
            await asyncio.sleep(delay)

    # ---------------------------------------------------------------- the deadline

    def _needed(self, method: _Method, window: deadline.Window) -> float:
        """The least time left an attempt is started with. A POST is never resent, so it must be
        waited for as long as a call may wait at all: its whole timeout, or the whole budget."""
        timeout = self._timeout.total or math.inf
        if method is _Method.POST:
            return min(timeout, window.total)
        return min(timeout, _MIN_ATTEMPT)

    def _wait_allowed(self, window: deadline.Window, needed: float) -> float:
        """The longest rate-limit wait that still leaves ``needed`` seconds before the deadline."""
        if window.until == math.inf:
            return self.max_rate_limit_wait
        spare = window.until - time.monotonic() - needed
        if spare < -_SLACK:
            raise DeadlineExceeded("no time left before the deadline to send and wait for the answer")
        return min(self.max_rate_limit_wait, max(spare, 0.0))

    def _attempt_timeout(self, window: deadline.Window) -> aiohttp.ClientTimeout:
        """The attempt's timeout: the client's, or the time left before the deadline if shorter."""
        if window.until == math.inf:
            return self._timeout
        left = window.until - time.monotonic()
        if self._timeout.total is not None and left >= self._timeout.total:
            return self._timeout
        if left <= 0:  # the rate-limit wait ended late; nothing was sent
            raise DeadlineExceeded("the deadline passed while waiting for the rate limit")
        return aiohttp.ClientTimeout(total=left, sock_connect=self._timeout.sock_connect)

    @staticmethod
    def _may_resend(method: _Method, stage: _Stage) -> bool:
        if stage is _Stage.NOT_SENT:
            return True
        if stage is _Stage.NO_ANSWER:
            return method in _RETRY_WITHOUT_ANSWER
        return method in _RETRY_ON_5XX

    def _backoff(self, failures: int) -> float:
        # Exponential, capped, with jitter so many callers do not come back in lockstep.
        exponential: float = self._backoff_base * 2.0**failures
        return min(self._backoff_max, exponential) * random.uniform(0.5, 1.0)

    @staticmethod
    def _refused(endpoint: Endpoint, refusal: Refusal, token: str | None) -> RateLimited:
        log.debug("dsc.gg %s: local rate limit, retry in %.2f s", endpoint, refusal.retry_after)
        return RateLimited(
            refusal.retry_after,
            endpoint=endpoint.value,
            limit=refusal.limit,
            window=refusal.window,
            anonymous=not token,
        )

    def _unwrap(
        self,
        method: _Method,
        endpoint: Endpoint,
        status: int,
        raw: bytes,
        headers: Mapping[str, str],
        token: str | None,
    ) -> Any:
        """The envelope rule: ok only if ``success`` is true AND the status is 2xx; errors are
        decided by ``code`` first (several codes share a status), then by status."""
        envelope = _parse_json(raw)
        if not isinstance(envelope, dict):
            if envelope is None and 200 <= status < 300 and method in _MUTATIONS and not raw.strip():
                # A bare 2xx (say 204) to a change: it happened, and there is nothing to return.
                return None
            if status == 429:
                self._rate_limited(endpoint, headers.get("Retry-After"), token)
            if status >= 500:
                raise _AttemptFailed(Unavailable("dsc.gg server error", status=status), _Stage.ANSWERED)
            raise Unavailable("dsc.gg sent a body that is not the JSON envelope", status=status)

        raw_code = envelope.get("code")
        # The common answer, taken before the general rules below (which decide it the same way):
        # kept because it measurably lowers the client's CPU per request (bench/client.py).
        if (
            type(raw_code) is str
            and raw_code in _SUCCESS_CODES
            and envelope.get("success") is True
            and 200 <= status < 300
        ):
            return envelope.get("payload")
        code = raw_code.strip().lower() if isinstance(raw_code, str) else ""
        raw_message = envelope.get("message")
        message = _redacted(raw_message, token) if isinstance(raw_message, str) else None

        if code == "rate_limit" or status == 429:
            self._rate_limited(endpoint, headers.get("Retry-After"), token)
        # A documented error code wins even over success:true: the code is the API's own verdict.
        error_class = ERRORS_BY_CODE.get(code)
        if error_class is not None:
            raise error_class(message, status=status)
        if envelope.get("success") is True and 200 <= status < 300:
            return envelope.get("payload")
        if status >= 500:
            raise _AttemptFailed(Unavailable("dsc.gg server error", status=status), _Stage.ANSWERED)
        if code and code not in _SUCCESS_CODES:
            raise UnknownAPIError(message, status=status, code=code)
        # No code, or a success code contradicted by the status or by success:false.
        by_status = _ERRORS_BY_STATUS.get(status)
        if by_status is not None:
            raise by_status(message, status=status)
        raise UnknownAPIError(message, status=status, code=code or "unknown")

    def _rate_limited(self, endpoint: Endpoint, retry_after_header: str | None, token: str | None) -> None:
        retry_after = _parse_retry_after(retry_after_header)
        if retry_after is None:
            # dsc.gg documents no header: the endpoint's whole window is the honest fallback.
            retry_after = self.rate_limiter.limits[endpoint][1]
        self.rate_limiter.block(token, endpoint, retry_after)
        log.debug("dsc.gg %s: 429, retry in %.2f s", endpoint, retry_after)
        raise RateLimited(retry_after, endpoint=endpoint.value, from_server=True, anonymous=not token)

    # ---------------------------------------------------------------- payloads into models

    @staticmethod
    def _model(model: type[_M], payload: Any, endpoint: Endpoint) -> _M:
        if not isinstance(payload, dict):
            raise Unavailable(f"dsc.gg sent no usable payload for {endpoint}")
        try:
            return _validate(model, payload)
        except ValidationError as error:
            # Locations only: the input could hold an app key.
            locations = _error_locations(error)
        except (ValueError, OverflowError):  # a converter gave up outside pydantic's own errors
            locations = "?"
        log.warning("dsc.gg %s payload does not fit %s at %s", endpoint, model.__name__, locations)
        # Raised outside the except block so the ValidationError (and the payload in it) is not chained.
        raise Unavailable(f"dsc.gg sent a malformed payload for {endpoint}")

    @staticmethod
    def _models(model: type[_M], payload: Any, endpoint: Endpoint) -> list[_M]:
        if payload is None:
            return []
        if not isinstance(payload, list):
            raise Unavailable(f"dsc.gg sent no usable list for {endpoint}")
        items: list[_M] = []
        skipped = 0
        for item in payload:
            try:
                items.append(_validate(model, item))
            except (ValueError, OverflowError):  # ValidationError included
                skipped += 1
        if skipped:
            # One broken entry should not hide the others.
            log.warning("dsc.gg %s: skipped %d of %d malformed entries", endpoint, skipped, len(payload))
        return items


def _validate(model: type[_M], data: Any) -> _M:
    """``model.model_validate(data)`` minus its per-call wrapper: the model's own validator."""
    validated: _M = model.__pydantic_validator__.validate_python(data)
    return validated


def _error_locations(error: ValidationError) -> str:
    return ", ".join(
        ".".join(str(part) for part in detail["loc"]) for detail in error.errors(include_input=False)
    )
