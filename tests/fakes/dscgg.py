"""FakeDscgg: a faithful dsc.gg v2 API server on 127.0.0.1, with fault switches.

In tests::

    async with FakeDscgg() as fake:
        fake.add_key("tok", user_id=1, whitelisted=False, premium=False)
        fake.add_link("mine", owner_id=1, redirect="https://discord.gg/abc")
        client = DscggClient(session, base_url=fake.base_url)
        ...
        assert [r.method for r in fake.requests] == ["GET"]
        fake.fail_next("server_error")            # one-shot; fake.fail_always(...) until clear_faults()

As a process (for end-to-end runs)::

    python -m tests.fakes.dscgg --port 8765 --seed-file seed.json

prints ``FakeDscgg listening on http://127.0.0.1:8765/v2`` and serves until SIGINT/SIGTERM. The seed
file holds ``{"keys": [...], "users": [...], "links": [...], "apps": [...]}`` whose entries are the
keyword arguments of ``add_key``/``add_user``/``add_link``/``add_app``. A small control API lives
under ``/_fake/`` (not part of dsc.gg): ``GET /_fake/requests``, ``POST /_fake/seed`` (same format),
``POST /_fake/fail`` (``{"kind": ..., "n": 1, "persistent": false, ...Fault fields}``),
``POST /_fake/reset``, ``GET /_fake/stats`` (request and 429 counts).

Behaviour follows the v2 document and the research notes: the ``{success, code, payload|message}``
envelope, the documented status of every code, per-key per-endpoint sliding-window rate limits
(answering 429 ``rate_limit``), ``/top`` without a key, whitelist-only search and user links/apps,
``owner_mismatch`` on someone else's link, premium-only ``meta.image`` on update, colour ignored on
create, ``with_stats=true``, password removal with ``null``, and ``password_protected`` when someone
other than the owner reads a link that has a password (observed, undocumented).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import signal
import socket
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import unquote

from aiohttp import web

FaultKind = Literal[
    "server_error",  # 5xx with a Cloudflare-like HTML page (status, default 502)
    "html",  # 200 with an HTML page
    "invalid_json",  # 200 with a body that is not JSON
    "truncated_json",  # 200 with a JSON envelope cut in half
    "json_array",  # 200 with a JSON array at top level
    "unknown_code",  # error envelope with code "foo_bar" (status, default 400)
    "success_false",  # 200 with success:false and code payload_received
    "code",  # error envelope with the given code and status
    "envelope",  # any JSON body (`body`) with any status
    "raw",  # `body` (str or bytes) sent as it is, as application/json (status, default 200)
    "empty",  # no body at all (status, default 204)
    "rate_limit",  # 429 rate_limit; Retry-After seconds (`retry_after`) or HTTP-date (`retry_after_date`)
    "rate_limit_200",  # 200 with code rate_limit
    "drop",  # close the connection without answering
    "delay",  # answer normally after `delay` seconds
    "hang",  # never answer: hold the request until the client gives up (or the fake closes)
]

#: Status of every documented code.
STATUS_BY_CODE: Mapping[str, int] = {
    "payload_received": 200,
    "rate_limit": 429,
    "invalid_key": 401,
    "not_found": 404,
    "owner_blacklisted": 403,
    "version_deprecated": 410,
    "bad_request": 400,
    "link_taken": 400,
    "link_created": 201,
    "owner_mismatch": 403,
    "link_updated": 200,
    "link_deleted": 200,
    "whitelist_only": 403,
    "password_protected": 403,
}

#: Documented limits, per key and endpoint: (requests, window seconds).
LIMITS: Mapping[str, tuple[int, float]] = {
    "get_link": (100, 10.0),
    "create_link": (3, 60.0),
    "update_link": (8, 10.0),
    "delete_link": (4, 10.0),
    "get_user": (50, 10.0),
    "get_user_links": (50, 10.0),
    "get_user_apps": (50, 10.0),
    "get_app": (20, 10.0),
    "get_top_links": (20, 10.0),
    "search_links": (90, 10.0),
}

LINK_TYPES = ("server", "bot", "template", "link")
MAX_SLUG_LENGTH = 120

_CLOUDFLARE_PAGE = (
    "<!DOCTYPE html><html><head><title>502 Bad Gateway | api.dsc.gg | Cloudflare</title></head>"
    "<body><h1>Bad gateway</h1><p>Error code 502</p><p>Cloudflare Ray ID: 7d1f0c0ffee</p></body></html>"
)
_REDIRECT_RULES: Mapping[str, re.Pattern[str]] = {
    "server": re.compile(r"^(https?://)?(www\.)?(discord\.gg/|discord(app)?\.com/invite/)[\w-]+/?$", re.I),
    "bot": re.compile(
        r"^(https?://)?(www\.)?discord(app)?\.com/(api/)?oauth2/authorize\?.*client_id=\d+", re.I
    ),
    "template": re.compile(
        r"^(https?://)?(www\.)?(discord\.new/|discord(app)?\.com/template/)[\w-]+/?$", re.I
    ),
    "link": re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.I),
}


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class ApiKey:
    token: str
    user_id: int
    whitelisted: bool = False
    premium: bool = False


@dataclass
class Fault:
    kind: FaultKind
    status: int | None = None
    code: str | None = None
    message: str | None = None
    body: Any = None
    retry_after: float | None = None
    retry_after_date: bool = False
    delay: float = 0.0
    #: Only requests of this method / client endpoint name are hit (None: any).
    method: str | None = None
    endpoint: str | None = None
    remaining: int = 1
    persistent: bool = False

    def matches(self, method: str, endpoint: str) -> bool:
        return (self.method is None or self.method.upper() == method) and (
            self.endpoint is None or self.endpoint == endpoint
        )


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    #: The path exactly as it arrived, still percent-encoded, without the query.
    raw_path: str
    raw_query: str
    #: Decoded query parameters (``+`` is kept as a plus; only %XX is decoded).
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    endpoint: str
    at: float


class _Reply(Exception):
    """Raised inside a handler to answer with an envelope at once."""

    def __init__(self, code: str, message: str | None = None, *, status: int | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.status = status if status is not None else STATUS_BY_CODE[code]
        self.message = message


class FakeDscgg:
    """The fake server. Use as an async context manager or call ``start()``/``close()``."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        window_scale: float = 1.0,
        rate_limits: bool = True,
        limits: Mapping[str, tuple[int, float]] | None = None,
        send_retry_after: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        #: Multiplies every rate-limit window (0.1 makes "3 per 60 s" into "3 per 6 s").
        self.window_scale = window_scale
        self.rate_limits_enabled = rate_limits
        self.limits: dict[str, tuple[int, float]] = {**LIMITS, **(limits or {})}
        #: dsc.gg documents no Retry-After header; switch on to send one with rate-limit 429s.
        self.send_retry_after = send_retry_after
        #: Added to every answer, in seconds.
        self.latency = 0.0

        self.keys: dict[str, ApiKey] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self.links: dict[str, dict[str, Any]] = {}
        self.apps: dict[str, dict[str, Any]] = {}
        self.requests: list[RecordedRequest] = []
        #: Every 429 served, by the rate limiter or by a fault.
        self.rate_limited_responses = 0
        #: Every dsc.gg request served, recorded or not.
        self.request_count = 0
        self.record_requests = True
        self._faults: list[Fault] = []
        self._windows: dict[tuple[str, str], deque[float]] = {}
        self._next_app_id = 1000
        self._runner: web.AppRunner | None = None

    # ---------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v2"

    async def start(self) -> None:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ---------------------------------------------------------------- state

    def add_user(
        self,
        user_id: int,
        *,
        verified: bool = False,
        premium: bool = False,
        blacklisted: bool = False,
        joined_at: int | None = None,
    ) -> dict[str, Any]:
        user = {
            "id": str(user_id),
            "verified": verified,
            "premium": premium,
            "joined_at": joined_at if joined_at is not None else now_ms(),
            "blacklisted": blacklisted,
        }
        self.users[int(user_id)] = user
        return user

    def add_key(
        self,
        token: str,
        *,
        user_id: int,
        whitelisted: bool = False,
        premium: bool = False,
        app_id: str | None = None,
    ) -> ApiKey:
        """An API key of an app owned by ``user_id`` (created as needed, with ``premium``)."""
        user = self.users.get(int(user_id)) or self.add_user(user_id)
        user["premium"] = premium or user["premium"]
        key = ApiKey(token, int(user_id), whitelisted, premium)
        self.keys[token] = key
        self.add_app(app_id or self._new_app_id(), owner_id=user_id, key=token, verified=whitelisted)
        return key

    def _new_app_id(self) -> str:
        self._next_app_id += 1
        return str(self._next_app_id)

    def add_app(
        self, app_id: str, *, owner_id: int, key: str | None = None, verified: bool = False
    ) -> dict[str, Any]:
        app = {
            "id": str(app_id),
            "owner": str(owner_id),
            "created_at": now_ms(),
            "verified": verified,
            "key": key,
        }
        self.apps[str(app_id)] = app
        return app

    def add_link(
        self,
        slug: str,
        *,
        owner_id: int,
        redirect: str = "https://discord.gg/example",
        type: str = "server",
        domain: str = "dsc.gg",
        unlisted: bool = False,
        disabled: bool = False,
        password: str | None = None,
        meta: Mapping[str, Any] | None = None,
        clicks: int = 0,
        unique_clicks: int = 0,
        created_at: int | None = None,
        bumped_at: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Store a link as dsc.gg would; ``extra`` adds raw fields to its payload (e.g. ``editors``)."""
        self.users.get(int(owner_id)) or self.add_user(owner_id)
        link: dict[str, Any] = {
            "id": slug,
            "owner": str(owner_id),
            "redirect": redirect,
            "domain": domain,
            "type": type,
            "created_at": created_at if created_at is not None else now_ms(),
            "bumped_at": bumped_at,
            "unlisted": unlisted,
            "disabled": disabled,
            "meta": {
                "title": None,
                "description": None,
                "color": None,
                "image": None,
                "saying": None,
                **(meta or {}),
            },
            "_password": password,
            "_stats": {"clicks": clicks, "unique_clicks": unique_clicks},
            **(extra or {}),
        }
        self.links[slug] = link
        return link

    def seed(self, data: Mapping[str, Iterable[Mapping[str, Any]]]) -> None:
        """Load ``{"users": [...], "keys": [...], "apps": [...], "links": [...]}`` (add_* kwargs)."""
        for user in data.get("users", ()):
            self.add_user(**user)
        for key in data.get("keys", ()):
            self.add_key(**key)
        for app in data.get("apps", ()):
            self.add_app(**app)
        for link in data.get("links", ()):
            self.add_link(**link)

    def reset(self) -> None:
        """Forget requests, faults and rate-limit windows (state is kept)."""
        self.requests.clear()
        self.request_count = 0
        self._faults.clear()
        self._windows.clear()
        self.rate_limited_responses = 0

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.endpoint == endpoint]

    # ---------------------------------------------------------------- faults

    def fail_next(self, kind: FaultKind, n: int = 1, **options: Any) -> Fault:
        """The next ``n`` matching requests get this fault (see FaultKind); then normal service."""
        fault = Fault(kind, remaining=n, **options)
        self._faults.append(fault)
        return fault

    def fail_always(self, kind: FaultKind, **options: Any) -> Fault:
        """Every matching request gets this fault until ``clear_faults()``."""
        fault = Fault(kind, persistent=True, **options)
        self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self._faults.clear()

    def _take_fault(self, method: str, endpoint: str) -> Fault | None:
        for fault in self._faults:
            if fault.matches(method, endpoint):
                if not fault.persistent:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                return fault
        return None

    # ---------------------------------------------------------------- HTTP

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.rel_url.raw_path
        if raw_path.startswith("/_fake/"):
            return await self._control(request, raw_path)
        arrived = time.monotonic()
        segments = [unquote(part) for part in raw_path.split("/")[1:]]
        method = request.method.upper()
        endpoint = _endpoint_of(method, segments)
        raw_query = request.rel_url.raw_query_string
        query = {unquote(key): unquote(value) for key, value in _split_query(raw_query)}
        body: Any = None
        body_error = False
        if request.can_read_body:
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except (UnicodeDecodeError, json.JSONDecodeError):
                body_error = True
        self.request_count += 1
        if self.record_requests:
            self.requests.append(
                RecordedRequest(
                    method, raw_path, raw_query, query, dict(request.headers), body, endpoint, arrived
                )
            )
        if self.latency:
            await asyncio.sleep(self.latency)

        fault = self._take_fault(method, endpoint)
        if fault is not None:
            if fault.kind == "drop":
                assert request.transport is not None
                request.transport.abort()
                return web.Response()
            if fault.kind == "delay":
                await asyncio.sleep(fault.delay)
            elif fault.kind == "hang":
                return await _hang(request)
            else:
                return self._fault_response(fault)

        try:
            if body_error:
                raise _Reply("bad_request", "Body is not valid JSON")
            payload, code = self._dispatch(request, method, endpoint, segments, query, body, arrived)
        except _Reply as reply:
            headers = reply.headers if isinstance(reply, _RateLimitedReply) else None
            return self._envelope(reply.status, reply.code, message=reply.message, headers=headers)
        if payload is _MESSAGE:
            return self._envelope(STATUS_BY_CODE[code], code, message=_SUCCESS_MESSAGES[code])
        return self._envelope(200, "payload_received", payload=payload)

    def _envelope(
        self,
        status: int,
        code: str,
        *,
        payload: Any = None,
        message: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> web.Response:
        body: dict[str, Any] = {"success": 200 <= status < 300 and code not in _ERROR_CODES, "code": code}
        if message is not None or status >= 300:
            body["message"] = message or code.replace("_", " ").capitalize()
        else:
            body["payload"] = payload
        if status == 429:
            self.rate_limited_responses += 1
        return web.json_response(body, status=status, headers=headers)

    def _fault_response(self, fault: Fault) -> web.Response:
        kind = fault.kind
        if kind == "server_error":
            return web.Response(status=fault.status or 502, text=_CLOUDFLARE_PAGE, content_type="text/html")
        if kind == "html":
            return web.Response(status=fault.status or 200, text=_CLOUDFLARE_PAGE, content_type="text/html")
        if kind == "invalid_json":
            return web.Response(
                status=fault.status or 200, text="{success: true,", content_type="application/json"
            )
        if kind == "truncated_json":
            whole = json.dumps(
                {"success": True, "code": "payload_received", "payload": {"id": "x", "owner": "1"}}
            )
            return web.Response(
                status=fault.status or 200, text=whole[: len(whole) // 2], content_type="application/json"
            )
        if kind == "json_array":
            return web.json_response([], status=fault.status or 200)
        if kind == "unknown_code":
            return self._envelope(
                fault.status or 400, fault.code or "foo_bar", message=fault.message or "Foo bar"
            )
        if kind == "success_false":
            return web.json_response(
                {"success": False, "code": fault.code or "payload_received", "message": fault.message},
                status=fault.status or 200,
            )
        if kind == "code":
            code = fault.code or "bad_request"
            return self._envelope(fault.status or STATUS_BY_CODE.get(code, 400), code, message=fault.message)
        if kind == "envelope":
            status = fault.status or 200
            if status == 429:
                self.rate_limited_responses += 1
            return web.json_response(fault.body, status=status)
        if kind == "raw":
            raw = fault.body.encode() if isinstance(fault.body, str) else bytes(fault.body)
            return web.Response(status=fault.status or 200, body=raw, content_type="application/json")
        if kind == "empty":
            return web.Response(status=fault.status or 204)
        if kind in ("rate_limit", "rate_limit_200"):
            headers: dict[str, str] = {}
            if fault.retry_after is not None:
                if fault.retry_after_date:
                    when = datetime.now(UTC) + timedelta(seconds=fault.retry_after)
                    headers["Retry-After"] = format_datetime(when, usegmt=True)
                else:
                    headers["Retry-After"] = f"{fault.retry_after:g}"
            status = 429 if kind == "rate_limit" else 200
            if status == 429:
                self.rate_limited_responses += 1
            body = {"success": False, "code": "rate_limit", "message": "You are being rate limited"}
            return web.json_response(body, status=status, headers=headers)
        raise ValueError(f"unknown fault kind {kind!r}")

    # ---------------------------------------------------------------- the API

    def _dispatch(
        self,
        request: web.Request,
        method: str,
        endpoint: str,
        segments: list[str],
        query: dict[str, str],
        body: Any,
        arrived: float,
    ) -> tuple[Any, str]:
        if segments and segments[0] in {"v1", "api"}:
            raise _Reply("version_deprecated", "This version of the API is no longer available")
        if not segments or segments[0] != "v2" or endpoint == "unknown":
            raise _Reply("not_found", "Unknown endpoint")
        authorization = request.headers.get("Authorization")
        self._check_rate_limit(authorization, endpoint, arrived)
        key = self.keys.get(authorization) if authorization else None
        if endpoint == "get_top_links":
            return self._top(query), ""
        if key is None:
            raise _Reply("invalid_key", "The API key is invalid or missing")
        if self.users.get(key.user_id, {}).get("blacklisted"):
            raise _Reply("owner_blacklisted", "The owner is blacklisted")
        args = segments[1:]
        match endpoint:
            case "get_link":
                return self._get_link(key, args[1], with_stats=query.get("with_stats") == "true"), ""
            case "create_link":
                self._create_link(key, args[1], body)
                return _MESSAGE, "link_created"
            case "update_link":
                self._update_link(key, args[1], body)
                return _MESSAGE, "link_updated"
            case "delete_link":
                self._own_link(key, args[1])
                del self.links[args[1]]
                return _MESSAGE, "link_deleted"
            case "get_user":
                return _public(self._user(args[1])), ""
            case "get_user_links":
                self._whitelisted(key)
                owner = self._user(args[1])["id"]
                return [
                    self._link_payload(link) for link in self.links.values() if link["owner"] == owner
                ], ""
            case "get_user_apps":
                self._whitelisted(key)
                owner = self._user(args[1])["id"]
                return [
                    self._app_payload(app, key) for app in self.apps.values() if app["owner"] == owner
                ], ""
            case "get_app":
                app = self.apps.get(args[1])
                if app is None:
                    raise _Reply("not_found", "App not found")
                return self._app_payload(app, key), ""
            case "search_links":
                self._whitelisted(key)
                return self._search(query), ""
        raise _Reply("not_found", "Unknown endpoint")

    def _check_rate_limit(self, authorization: str | None, endpoint: str, arrived: float) -> None:
        if not self.rate_limits_enabled:
            return
        count, window = self.limits[endpoint]
        window *= self.window_scale
        sends = self._windows.setdefault((authorization or "anonymous", endpoint), deque())
        while sends and sends[0] <= arrived - window:
            sends.popleft()
        if len(sends) >= count:
            retry_after = sends[0] + window - arrived
            headers = {"Retry-After": f"{max(retry_after, 0.001):.3f}"} if self.send_retry_after else None
            raise _RateLimitedReply(headers)
        sends.append(arrived)

    def _whitelisted(self, key: ApiKey) -> None:
        if not key.whitelisted:
            raise _Reply("whitelist_only", "This endpoint is only available to whitelisted apps")

    def _user(self, user_id: str) -> dict[str, Any]:
        user = self.users.get(int(user_id)) if user_id.isdigit() else None
        if user is None:
            raise _Reply("not_found", "User not found")
        if user["blacklisted"]:
            raise _Reply("owner_blacklisted", "The owner is blacklisted")
        return user

    def _own_link(self, key: ApiKey, slug: str) -> dict[str, Any]:
        link = self.links.get(slug)
        if link is None:
            raise _Reply("not_found", "Link not found")
        if link["owner"] != str(key.user_id):
            raise _Reply("owner_mismatch", "You are not the owner of this link")
        return link

    def _get_link(self, key: ApiKey, slug: str, *, with_stats: bool) -> dict[str, Any]:
        link = self.links.get(slug)
        if link is None:
            raise _Reply("not_found", "Link not found")
        owner = self.users.get(int(link["owner"]))
        if owner is not None and owner["blacklisted"]:
            raise _Reply("owner_blacklisted", "The owner is blacklisted")
        if link["_password"] and link["owner"] != str(key.user_id):
            raise _Reply("password_protected", "This link is password protected")
        return self._link_payload(link, with_stats=with_stats)

    def _link_payload(self, link: Mapping[str, Any], *, with_stats: bool = False) -> dict[str, Any]:
        payload = _public(link)
        if with_stats:
            payload["stats"] = dict(link["_stats"])
        return payload

    @staticmethod
    def _app_payload(app: Mapping[str, Any], key: ApiKey) -> dict[str, Any]:
        payload = dict(app)
        if payload["owner"] != str(key.user_id) or payload["key"] is None:
            payload.pop("key")
        return payload

    def _validated_fields(
        self, body: Any, *, create: bool, key: ApiKey, current: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _Reply("bad_request", "The body must be a JSON object")
        if create:
            for name in ("redirect", "type"):
                if body.get(name) is None:
                    raise _Reply("bad_request", f"Missing {name}")
        elif not body:
            raise _Reply("bad_request", "Nothing to update")
        link_type = body.get("type", current["type"] if current else None)
        if link_type not in LINK_TYPES:
            raise _Reply("bad_request", "Invalid type, must be one of server, bot, template, link")
        redirect = body.get("redirect", current["redirect"] if current else None)
        if not isinstance(redirect, str) or not _REDIRECT_RULES[link_type].match(redirect):
            raise _Reply("bad_request", f"Invalid redirect for type {link_type}")
        if "unlisted" in body and not isinstance(body["unlisted"], bool):
            raise _Reply("bad_request", "unlisted must be a boolean")
        if "password" in body and not isinstance(body["password"], str | None):
            raise _Reply("bad_request", "password must be a string")
        meta = body.get("meta", {})
        if not isinstance(meta, dict) or any(not isinstance(v, str | None) for v in meta.values()):
            raise _Reply("bad_request", "meta must be an object of strings")
        if not create and meta.get("image") and not key.premium:
            raise _Reply("bad_request", "meta.image is only available to premium users")
        return {"type": link_type, "redirect": redirect, "meta": meta}

    def _create_link(self, key: ApiKey, slug: str, body: Any) -> None:
        if len(slug) > MAX_SLUG_LENGTH:
            raise _Reply("bad_request", f"The link can be at most {MAX_SLUG_LENGTH} characters")
        fields = self._validated_fields(body, create=True, key=key, current=None)
        if slug in self.links:
            raise _Reply("link_taken", "This link is already taken")
        # dsc.gg ignores the colour on create.
        meta = {
            name: value for name, value in fields["meta"].items() if name in {"title", "description", "image"}
        }
        self.add_link(
            slug,
            owner_id=key.user_id,
            redirect=fields["redirect"],
            type=fields["type"],
            unlisted=body.get("unlisted", False),
            password=body.get("password") or None,
            meta=meta,
        )

    def _update_link(self, key: ApiKey, slug: str, body: Any) -> None:
        link = self._own_link(key, slug)
        fields = self._validated_fields(body, create=False, key=key, current=link)
        link["type"] = fields["type"]
        link["redirect"] = fields["redirect"]
        link["meta"].update(fields["meta"])
        if "unlisted" in body:
            link["unlisted"] = body["unlisted"]
        if "password" in body:
            link["_password"] = body["password"] or None

    def _listed(self, link_type: str | None) -> list[dict[str, Any]]:
        if link_type is not None and link_type not in LINK_TYPES:
            raise _Reply("bad_request", "Invalid type")
        return [
            link
            for link in self.links.values()
            if not link["unlisted"]
            and not link["disabled"]
            and (link_type is None or link["type"] == link_type)
        ]

    def _top(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        links = sorted(self._listed(query.get("type")), key=lambda link: -link["_stats"]["clicks"])
        return [self._link_payload(link) for link in links[:50]]

    def _search(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        text = query.get("q", "")
        if not text:
            raise _Reply("bad_request", "Missing query")
        try:
            limit = int(query.get("limit", "25"))
        except ValueError:
            raise _Reply("bad_request", "limit must be a number") from None
        needle = text.lower()
        hits = [
            link
            for link in self._listed(query.get("type"))
            if needle in link["id"].lower()
            or needle in (link["meta"].get("title") or "").lower()
            or needle in (link["meta"].get("description") or "").lower()
        ]
        return [self._link_payload(link) for link in hits[: max(limit, 0)]]

    # ---------------------------------------------------------------- control API (not dsc.gg)

    async def _control(self, request: web.Request, raw_path: str) -> web.Response:
        action = raw_path.removeprefix("/_fake/")
        if action == "requests" and request.method == "GET":
            return web.json_response([asdict(recorded) for recorded in self.requests])
        if action == "stats" and request.method == "GET":
            return web.json_response(
                {"requests": self.request_count, "rate_limited_responses": self.rate_limited_responses}
            )
        data = await request.json() if request.can_read_body else {}
        if action == "seed" and request.method == "POST":
            self.seed(data)
        elif action == "fail" and request.method == "POST":
            options = dict(data)
            kind = options.pop("kind")
            if options.pop("persistent", False):
                self.fail_always(kind, **options)
            else:
                self.fail_next(kind, options.pop("n", 1), **options)
        elif action == "reset" and request.method == "POST":
            self.reset()
        else:
            return web.json_response({"error": "unknown control action"}, status=404)
        return web.json_response({"ok": True})


class _RateLimitedReply(_Reply):
    def __init__(self, headers: Mapping[str, str] | None) -> None:
        super().__init__("rate_limit", "You are being rate limited")
        self.headers = headers


_MESSAGE: Any = object()
_ERROR_CODES = frozenset(STATUS_BY_CODE) - {
    "payload_received",
    "link_created",
    "link_updated",
    "link_deleted",
}
_SUCCESS_MESSAGES: Mapping[str, str] = {
    "link_created": "Link has been created successfully",
    "link_updated": "Link has been updated successfully",
    "link_deleted": "This link has been deleted successfully",
}


async def _hang(request: web.Request) -> web.StreamResponse:
    """Answer nothing until the client closes the connection (then there is no one to answer)."""
    # Polled: aiohttp tells a handler nothing when its client goes away.
    while request.transport is not None and not request.transport.is_closing():  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    return web.Response()


def _public(record: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in record.items() if not name.startswith("_")}


def _split_query(raw_query: str) -> list[tuple[str, str]]:
    # %XX only: a "+" in a query means a plus to dsc.gg's router as far as our client is concerned.
    pairs = []
    for part in raw_query.split("&") if raw_query else ():
        name, _, value = part.partition("=")
        pairs.append((name, value))
    return pairs


def _endpoint_of(method: str, segments: list[str]) -> str:
    """The client's endpoint name for a request, from the decoded path segments."""
    path = segments[1:] if segments and segments[0] == "v2" else segments
    match (method, path):
        case ("GET", ["link", _]):
            return "get_link"
        case ("POST", ["link", _]):
            return "create_link"
        case ("PATCH", ["link", _]):
            return "update_link"
        case ("DELETE", ["link", _]):
            return "delete_link"
        case ("GET", ["user", _]):
            return "get_user"
        case ("GET", ["user", _, "links"]):
            return "get_user_links"
        case ("GET", ["user", _, "apps"]):
            return "get_user_apps"
        case ("GET", ["app", _]):
            return "get_app"
        case ("GET", ["top"]):
            return "get_top_links"
        case ("GET", ["search"]):
            return "search_links"
    return "unknown"


async def _serve(args: argparse.Namespace, seed: Any) -> None:
    uniform = (
        {name: (count, args.uniform_window) for name, (count, _) in LIMITS.items()}
        if args.uniform_window
        else None
    )
    fake = FakeDscgg(
        host=args.host,
        port=args.port,
        window_scale=args.window_scale,
        rate_limits=not args.no_rate_limits,
        limits=uniform,
    )
    fake.record_requests = not args.no_record
    fake.latency = args.latency
    if seed:
        fake.seed(seed)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with fake:
        print(f"FakeDscgg listening on {fake.base_url}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.dscgg", description="A fake dsc.gg v2 API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--seed-file", help="JSON with keys, users, apps and links to load")
    parser.add_argument("--window-scale", type=float, default=1.0, help="multiply rate-limit windows")
    parser.add_argument("--no-rate-limits", action="store_true")
    parser.add_argument("--uniform-window", type=float, help="use this window (seconds) for every limit")
    parser.add_argument("--no-record", action="store_true", help="do not keep every request in memory")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    args = parser.parse_args(argv)
    seed = json.loads(Path(args.seed_file).read_text(encoding="utf-8")) if args.seed_file else None
    asyncio.run(_serve(args, seed))


if __name__ == "__main__":
    main()
