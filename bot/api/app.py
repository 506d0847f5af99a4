"""The ASGI application: FastAPI routes inside an envelope that every request passes through.

The envelope (outermost, plain ASGI) does what must hold for every answer, routed or not:

- after ``close_gate()`` new requests get a 503 ``shutting-down`` problem; requests still running
  when ``cut_off()`` is called are cancelled and answered with that 503 (if nothing was sent yet);
- bodies over 64 KiB get 413 (from Content-Length, or while streaming), bodies that are not JSON 415;
- ``RateLimit-Policy``/``RateLimit`` headers for authenticated callers, a response to an
  ``Idempotency-Key`` claim stored for replay, and the request counted in ``/metrics``;
- an error that escaped everything becomes a 500 problem with an error id, never a traceback.

FastAPI's own handlers turn validation errors, unknown routes and service errors into problems
(``bot.api.problems``); the OpenAPI 3.1 document is at ``/v1/openapi.json`` and Swagger UI, served
from this process (no CDN), at ``/v1/docs``. Problems and the problem pages are written in the language
of the request's ``Accept-Language`` (``Content-Language`` says which, ``Vary: Accept-Language``).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import importlib.resources
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot import __version__
from bot.api.deps import ApiState, Replay
from bot.api.problems import MEDIA_TYPE, PROBLEMS, FieldProblem, Problem, problem_for
from bot.api.routes import router
from bot.api.schemas import Health, ProblemOut
from bot.dashboard.pages import missing_page
from bot.dashboard.routes import router as dashboard_router
from bot.dashboard.state import Dashboard
from bot.db.apikeys import StoredResponse
from bot.dscgg.errors import DscggError
from bot.errors import BotError
from bot.i18n import N_, Tr, for_accept_language
from bot.metrics import CONTENT_TYPE

__all__ = ["MAX_BODY", "Envelope", "create_app"]

log = logging.getLogger(__name__)

#: Largest request body accepted (bytes).
MAX_BODY: Final = 64 * 1024

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Swagger UI's files, shipped by the swagger-ui-py package (only its static folder is used).
_SWAGGER_STATIC = Path(str(importlib.resources.files("swagger_ui").joinpath("static")))
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
_PROBLEM_CONTENT = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemOut"}}}
_PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ProblemOut, "content": _PROBLEM_CONTENT, "description": "A problem (RFC 9457)"},
    "5XX": {"model": ProblemOut, "content": _PROBLEM_CONTENT, "description": "A problem (RFC 9457)"},
}


#: Answers whose words follow Accept-Language say in which language they are, and that they vary.
def _language_headers(t: Tr) -> dict[str, str]:
    return {"Content-Language": t.locale, "Vary": "Accept-Language"}


def problem_response(problem: Problem, base_url: str, t: Tr) -> Response:
    """The problem as an answer, its words in ``t``'s language."""
    return Response(
        problem.encode(base_url, t),
        status_code=problem.code,
        media_type=MEDIA_TYPE,
        headers={**problem.headers, **_language_headers(t)},
    )


def _reader(request: Request) -> Tr:
    return for_accept_language(request.headers.get("accept-language"))


#: Words for what pydantic finds wrong with a value (its error ``type``); others keep pydantic's words.
def _pydantic_text(entry: Mapping[str, Any]) -> Callable[[Tr], str]:
    kind = str(entry.get("type", ""))
    context = entry.get("ctx") or {}
    english = str(entry.get("msg", "is not valid"))

    def text(t: Tr) -> str:
        match kind:
            case "missing":
                return t._("it is required")
            case "string_type":
                return t._("it must be a string")
            case "int_type" | "int_parsing" | "int_from_float":
                return t._("it must be a whole number")
            case "bool_type" | "bool_parsing":
                return t._("it must be true or false")
            case "model_type" | "model_attributes_type" | "dict_type":
                return t._("it must be a JSON object")
            case "extra_forbidden":
                return t._("it is not a field this request takes")
            case "string_pattern_mismatch":
                return t._("it is not in the expected format")
            case "string_too_short" | "too_short":
                count = int(context.get("min_length", 1))
                return t.ngettext(
                    "it must be at least {count} character long",
                    "it must be at least {count} characters long",
                    count,
                )
            case "string_too_long" | "too_long":
                count = int(context.get("max_length", 0))
                return t.ngettext(
                    "it must be at most {count} character long",
                    "it must be at most {count} characters long",
                    count,
                )
            case "greater_than_equal" | "greater_than":
                return t._(
                    "it must be at least {limit}", limit=_number(context.get("ge", context.get("gt")), t)
                )
            case "less_than_equal" | "less_than":
                return t._(
                    "it must be at most {limit}", limit=_number(context.get("le", context.get("lt")), t)
                )
            case "enum" | "literal_error":
                return t._("it must be one of: {choices}", choices=str(context.get("expected", "")))
        return english

    return text


def _number(value: object, t: Tr) -> str:
    return t.number(value) if isinstance(value, int | float) else str(value)


#: The answer to a request that arrives, or is cut off, while the bot stops.
RESTARTING: Final = Problem("shutting-down", N_("The bot is restarting. Retry in a moment."))


def _location(loc: tuple[Any, ...]) -> tuple[str, str]:
    where = str(loc[0]) if loc else "body"
    name = ".".join(str(part) for part in loc[1:]) or where
    return where, name


def create_app(state: ApiState) -> Envelope:
    app = FastAPI(
        title="dscgg-bot API",
        version=f"1 ({__version__})",
        summary="Manage a Discord server's dsc.gg links: what the bot's slash commands do, over HTTP.",
        openapi_url="/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
        responses=_PROBLEM_RESPONSES,
    )
    app.state.api = state
    app.include_router(router)
    # The web dashboard: the same process, services and audit trail, as HTML pages outside /v1.
    app.state.dashboard = Dashboard(state)
    app.include_router(dashboard_router)

    def cut_off(request: Request) -> bool:
        return bool(request.scope.get("state", {}).get("cut_off"))

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return problem_response(exc, state.public_url, _reader(request))

    @app.exception_handler(Replay)
    async def _replay(request: Request, exc: Replay) -> Response:
        stored = exc.response
        headers = {**stored.headers, "Idempotent-Replayed": "true"}
        media_type = headers.pop("content-type", None)
        return Response(stored.body, status_code=stored.status, headers=headers, media_type=media_type)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        entries = list(exc.errors())
        t = _reader(request)
        if any(entry.get("type") == "json_invalid" for entry in entries):
            return problem_response(
                Problem("malformed-json", N_("The body is not valid JSON: fix it and retry.")),
                state.public_url,
                t,
            )
        errors = []
        for entry in entries:
            where, name = _location(tuple(entry.get("loc", ())))
            pointer = None
            if where == "body":
                pointer = "#/" + "/".join(str(part) for part in entry.get("loc", ())[1:])
            errors.append(FieldProblem(where, name, _pydantic_text(entry), pointer))
        names = list(dict.fromkeys(f"`{item.field}`" for item in errors))

        def detail(t: Tr) -> str:
            return t._("Check {fields}: see `errors` for what is wrong with each.", fields=t.join(names))

        return problem_response(Problem("invalid-input", detail, errors=errors), state.public_url, t)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if not _is_api_path(request.url.path):
            return await missing_page(request, exc.status_code)
        if exc.status_code == 405:
            problem = Problem(
                "method-not-allowed", N_("{method} is not allowed here."), params={"method": request.method}
            )
        else:
            problem = Problem(
                "not-found", N_("There is nothing at this address: check the path (it starts with /v1).")
            )
        return problem_response(problem, state.public_url, _reader(request))

    @app.exception_handler(Exception)
    async def _error(request: Request, exc: Exception) -> Response:
        if cut_off(request):
            return problem_response(RESTARTING, state.public_url, _reader(request))
        return problem_response(problem_for(exc), state.public_url, _reader(request))

    # Every other error a service raises (BotError, dsc.gg errors) has a problem of its own.
    for kind in (BotError, DscggError):
        app.add_exception_handler(kind, _error)

    # ----------------------------------------------------------------------- not under a credential

    @app.get("/healthz", tags=["operations"], summary="200 while the database answers, 503 otherwise")
    async def healthz() -> Health:
        try:
            async with asyncio.timeout(2.0):
                await state.bot.db.fetch_one("SELECT 1")
        except Exception as exc:
            raise Problem(
                "upstream-unavailable", N_("The bot's database is not answering."), status=503
            ) from exc
        return Health(status="ok")

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(state.bot.metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/problems/{name}", include_in_schema=False, response_class=HTMLResponse)
    async def problem_page(request: Request, name: str) -> HTMLResponse:
        info = PROBLEMS.get(name)
        if info is None:
            raise Problem("not-found", N_("There is no problem by that name."))
        t = _reader(request)
        title = html.escape(t._(info.title))
        docs_link = html.escape(t._("API documentation"))
        page = (
            f"<!doctype html><html lang={t.locale}><meta charset=utf-8>"
            f"<title>{title}</title>"
            "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:3em auto;"
            "padding:0 1em}</style>"
            f"<h1>{title}</h1><p>HTTP {info.status} · <code>{html.escape(name)}</code></p>"
            f"<p>{html.escape(t._(info.about))}</p>"
            f'<p><a href="{html.escape(state.public_url)}/v1/docs">{docs_link}</a></p>'
            "</html>"
        )
        return HTMLResponse(page, headers=_language_headers(t))

    @app.get("/v1/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/v1/openapi.json",
            title="dscgg-bot API",
            swagger_js_url="/v1/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/v1/docs/static/swagger-ui.css",
            swagger_favicon_url="/v1/docs/static/favicon-32x32.png",
        )

    app.mount("/v1/docs/static", StaticFiles(directory=_SWAGGER_STATIC), name="swagger-static")
    return Envelope(app, state)


class _TooLarge(Exception):
    pass


class Envelope:
    """The outermost ASGI layer (see the module docstring)."""

    def __init__(self, app: FastAPI, state: ApiState, *, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.state = state
        self.max_body = max_body
        self.closing = False
        self._running: dict[int, tuple[Scope, asyncio.Timeout]] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def in_flight(self) -> int:
        return len(self._running)

    def close_gate(self) -> None:
        """From now on new requests get 503 ``shutting-down``."""
        self.closing = True

    async def drain(self, within: float) -> bool:
        """Wait up to ``within`` seconds for running requests; True if none is left."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(within, 0.0)):
                await self._idle.wait()
        return not self._running

    def cut_off(self) -> int:
        """Cancel the requests still running; each is answered 503 if it had not started answering."""
        now = asyncio.get_running_loop().time()
        for scope, timeout in self._running.values():
            scope.setdefault("state", {})["cut_off"] = True
            timeout.reschedule(now)
        return len(self._running)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # lifespan is off; nothing else is served
            return
        started = time.perf_counter()
        sent: dict[str, Any] = {"status": 0, "started": False}
        state: dict[str, Any] = scope.setdefault("state", {})
        capture: list[bytes] | None = None
        captured_headers: dict[str, str] = {}

        async def send_wrapper(message: Message) -> None:
            nonlocal capture
            if message["type"] == "http.response.start":
                sent["status"] = int(message["status"])
                sent["started"] = True
                verdict = state.get("ratelimit")
                headers = list(message.get("headers", []))
                if verdict is not None:
                    headers.extend((k.lower().encode(), v.encode()) for k, v in verdict.headers().items())
                message["headers"] = headers
                if state.get("idempotency") is not None:
                    capture = []
                    for key, value in headers:
                        name = key.decode("latin-1").lower()
                        if name in ("content-type", "location", "cache-control"):
                            captured_headers[name] = value.decode("latin-1")
            elif message["type"] == "http.response.body" and capture is not None:
                capture.append(bytes(message.get("body", b"")))
            await send(message)

        method = scope.get("method", "GET")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}

        async def answer(problem: Problem) -> None:
            if sent["started"]:
                return
            t = for_accept_language(headers.get("accept-language"))
            await problem_response(problem, self.state.public_url, t)(scope, receive, send_wrapper)

        try:
            if self.closing:
                await answer(RESTARTING)
                return
            length = headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body):
                await answer(_too_large())
                return
            has_body = length not in (None, "0") or "transfer-encoding" in headers
            json_body = method in _WITH_BODY and _is_api_path(str(scope.get("path", "")))  # forms: not JSON
            if json_body and has_body and not _is_json(headers.get("content-type", "")):
                await answer(
                    Problem(
                        "unsupported-media-type",
                        N_("Send the body as JSON with `Content-Type: application/json`."),
                    )
                )
                return
            received = 0

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body:
                        raise _TooLarge
                return message

            key = id(scope)
            try:
                async with asyncio.timeout(None) as timeout:
                    self._running[key] = (scope, timeout)
                    self._idle.clear()
                    await self.app(scope, limited_receive, send_wrapper)
            finally:
                self._running.pop(key, None)
                if not self._running:
                    self._idle.set()
        except _TooLarge:
            await answer(_too_large())
        except TimeoutError:  # cut off by the shutdown
            await answer(RESTARTING)
        except Exception as exc:
            await answer(problem_for(exc))
        finally:
            await self._settle_idempotency(state, sent["status"], captured_headers, capture)
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.state.bot.metrics.api_request(
                method, template, sent["status"] or 500, time.perf_counter() - started
            )

    async def _settle_idempotency(
        self, state: dict[str, Any], status: int, headers: dict[str, str], body: list[bytes] | None
    ) -> None:
        claim = state.get("idempotency")
        if claim is None:
            return
        credential, key = claim
        store = self.state.bot.idempotency
        try:
            # Worth replaying: what the request decided. Not: rate limits, restarts, upstream trouble.
            if body is not None and status < 500 and status != 429 and not state.get("cut_off"):
                await store.finish(credential, key, StoredResponse(status, headers, b"".join(body)))
            else:
                await store.abandon(credential, key)
        except Exception:
            log.exception("Could not store the response to an Idempotency-Key")


def _too_large() -> Problem:
    return Problem(
        "payload-too-large",
        N_("The body is larger than {size} KiB: send less."),
        params={"size": MAX_BODY // 1024},
    )


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _is_api_path(path: str) -> bool:
    """Paths answered with JSON problems (the API and its operations); the rest is the dashboard's."""
    return path.startswith(("/v1/", "/problems/")) or path in ("/v1", "/healthz", "/metrics")
