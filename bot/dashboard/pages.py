"""The plumbing every dashboard page shares: who is visiting (session, Discord login, access to the
server in the path), form posts (CSRF), rendering, and what every answer carries (security headers,
cookies, an HTML page for every failure).

``PageRoute`` wraps each dashboard route: a visitor without a session gets the landing page (401) with a
"Log in with Discord" button that comes back to the same page; a ``PageError`` becomes its page; anything
unexpected becomes a 500 page with an error id that is also in the log (never a traceback).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl, quote

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from bot.api.auth import Login, LoginGuild
from bot.api.problems import Problem
from bot.dashboard.render import secure
from bot.dashboard.sessions import IDLE, Session
from bot.dashboard.state import Dashboard
from bot.dscgg import deadline
from bot.errors import new_error_id
from bot.i18n import Tr, for_accept_language

__all__ = [
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "LoginNeeded",
    "PageError",
    "PageRoute",
    "ServerVisit",
    "Visit",
    "dashboard",
    "read_form",
    "reader",
    "redirect",
    "render",
    "server_visit",
    "visit",
]

log = logging.getLogger(__name__)

SESSION_COOKIE: Final = "dscgg_session"
LOGIN_COOKIE: Final = "dscgg_login"
#: Largest form accepted (the envelope refuses bodies over 64 KiB before this).
_FORM_MAX: Final = 64 * 1024

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class PageError(Exception):
    """Answer with ``template`` (default: the error page) and ``status``."""

    def __init__(self, status: int, template: str = "error.html", **context: Any) -> None:
        super().__init__(template)
        self.status = status
        self.template = template
        self.context = context


class LoginNeeded(Exception):
    """No live session: show the landing page. ``ended``: there was one, and it is over."""

    def __init__(self, *, ended: bool = False) -> None:
        super().__init__("login needed")
        self.ended = ended


@dataclass(slots=True)
class Visit:
    request: Request
    dashboard: Dashboard
    session: Session
    login: Login

    @property
    def user(self) -> dict[str, Any]:
        return {"id": self.login.user_id, "name": self.login.name}


@dataclass(slots=True)
class ServerVisit(Visit):
    guild: LoginGuild = field(default_factory=lambda: LoginGuild(0, "", False))

    @property
    def guild_id(self) -> int:
        return self.guild.id

    @property
    def user_id(self) -> int:
        return self.login.user_id


def dashboard(request: Request) -> Dashboard:
    found: Dashboard = request.app.state.dashboard
    return found


def _cookie_ops(request: Request) -> list[Callable[[Response], None]]:
    ops: list[Callable[[Response], None]] | None = getattr(request.state, "cookie_ops", None)
    if ops is None:
        ops = []
        request.state.cookie_ops = ops
    return ops


def set_cookie(request: Request, name: str, value: str, *, max_age: int, path: str = "/") -> None:
    """Send a cookie with this answer: HttpOnly, SameSite=Lax, Secure behind https."""
    secure = dashboard(request).https
    _cookie_ops(request).append(
        lambda response: response.set_cookie(
            name, value, max_age=max_age, path=path, secure=secure, httponly=True, samesite="lax"
        )
    )


def clear_cookie(request: Request, name: str, *, path: str = "/") -> None:
    secure = dashboard(request).https
    _cookie_ops(request).append(
        lambda response: response.delete_cookie(name, path=path, secure=secure, httponly=True, samesite="lax")
    )


def cookie_path(request: Request) -> str:
    return dashboard(request).base + "/"


async def visit(request: Request) -> Visit:
    """The signed-in visitor: LoginNeeded without a live session or when Discord no longer accepts
    their token (the session then ends); PageError when the dashboard is not set up or Discord is down."""
    dash = dashboard(request)
    if dash.oauth is None:
        raise PageError(503, "setup.html")
    cookie = request.cookies.get(SESSION_COOKIE)
    session = await dash.sessions.resume(cookie)
    if session is None:
        if cookie:
            clear_cookie(request, SESSION_COOKIE, path=cookie_path(request))
        raise LoginNeeded(ended=bool(cookie))
    try:
        login = await dash.api.identities.login(session.access_token)
    except Problem as problem:
        if problem.name == "invalid-token":
            await dash.sessions.end(session)
            clear_cookie(request, SESSION_COOKIE, path=cookie_path(request))
            raise LoginNeeded(ended=True) from None
        raise PageError(503, discord_down=True) from None
    if session.renewed:
        set_cookie(
            request,
            SESSION_COOKIE,
            cookie or "",
            max_age=int(IDLE.total_seconds()),
            path=cookie_path(request),
        )
    return Visit(request, dash, session, login)


async def server_visit(request: Request, guild_id: str) -> ServerVisit:
    """The visitor and the server in the path, once they may manage it (checked on every request, like
    the API: Manage Server or owner, and the bot in the server). Starts the request's dsc.gg deadline."""
    seen = await visit(request)
    number = int(guild_id) if guild_id.isdigit() and len(guild_id) <= 20 else 0
    if not 0 < number < 2**64:
        raise PageError(404, no_server=True, user=seen.user, csrf=seen.session.csrf)
    dash = seen.dashboard
    try:
        await dash.api.identities.check_guild(seen.login.caller(), number)
    except Problem as problem:
        status = 403 if problem.name == "missing-permission" else 404
        if problem.name == "discord-unavailable":
            raise PageError(503, discord_down=True, user=seen.user, csrf=seen.session.csrf) from None
        raise PageError(
            status,
            no_server=status == 404,
            no_permission=status == 403,
            user=seen.user,
            csrf=seen.session.csrf,
        ) from None
    guild = next((g for g in seen.login.guilds if g.id == number), LoginGuild(number, str(number), True))
    deadline.start(dash.api.deadline)
    return ServerVisit(seen.request, dash, seen.session, seen.login, guild)


async def read_form(seen: Visit) -> dict[str, str]:
    """The posted form (``application/x-www-form-urlencoded``), once its CSRF token is this session's
    and it comes from the dashboard's own origin. Line breaks arrive as CRLF and are turned into LF."""
    request = seen.request
    origin = request.headers.get("origin")
    if origin is not None and origin != seen.dashboard.origin:
        log.info("Dashboard form from another origin refused")
        raise PageError(403, csrf_failed=True, user=seen.user, csrf=seen.session.csrf)
    body = await request.body()
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/x-www-form-urlencoded" or len(body) > _FORM_MAX:
        raise PageError(400, bad_form=True, user=seen.user, csrf=seen.session.csrf)
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise PageError(400, bad_form=True, user=seen.user, csrf=seen.session.csrf) from None
    form: dict[str, str] = {}
    for name, value in pairs:
        form.setdefault(name, value.replace("\r\n", "\n").replace("\r", "\n"))
    if not seen.session.check_csrf(form.get("csrf")):
        log.info("Dashboard form without this session's CSRF token refused (user %s)", seen.login.user_id)
        raise PageError(403, csrf_failed=True, user=seen.user, csrf=seen.session.csrf)
    return form


def reader(request: Request) -> Tr:
    """The messages for the visitor: the language of the request's ``Accept-Language`` header, as the
    HTTP API's problems use (en-US when none of the catalogs matches)."""
    return for_accept_language(request.headers.get("accept-language"))


async def render(
    request: Request, template: str, *, status: int = 200, seen: Visit | None = None, **context: Any
) -> HTMLResponse:
    """``template`` as an HTML page; with ``seen``, the signed-in user, their CSRF token and the message
    left for this page (taken, so it shows once)."""
    dash = dashboard(request)
    values: dict[str, Any] = {
        "base": dash.base,
        "public_url": dash.public_url,
        "user": None,
        "csrf": "",
        "flash": None,
        "error": None,
        "error_field": None,
        "token_fix": False,
        "path": request.url.path,
        **context,
    }
    if seen is not None:
        session, flash = await dash.sessions.take_flash(seen.session)
        seen.session = session
        values.update(user=seen.user, csrf=session.csrf, flash=flash)
        if isinstance(seen, ServerVisit):
            values.setdefault("server", seen.guild)
    html = dash.templates.render(template, values, reader(request))
    return HTMLResponse(
        html,
        status_code=status,
        headers={"Content-Language": reader(request).locale, "Vary": "Accept-Language"},
    )


async def missing_page(request: Request, status: int) -> Response:
    """The HTML answer to a dashboard address that does not exist (404) or a method it does not take."""
    dash = dashboard(request)
    response = await render(request, "error.html", status=404 if status != 405 else 405)
    return secure(response, https=dash.https)


def redirect(request: Request, path: str) -> RedirectResponse:
    """303 See Other to a dashboard path (after a form post)."""
    return RedirectResponse(dashboard(request).base + path, status_code=303)


def safe_next(path: str | None) -> str:
    """A path inside the dashboard to return to after logging in ("/" for anything else)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path or len(path) > 500:
        return "/"
    if any(ord(char) < 0x21 for char in path):
        return "/"
    return path


def login_link(request: Request, next_path: str) -> str:
    base = dashboard(request).base
    return f"{base}/auth/login" + ("" if next_path == "/" else f"?next={quote(next_path, safe='/')}")


class PageRoute(APIRoute):
    """A dashboard route: every answer an HTML page (or a redirect) with the security headers."""

    def get_route_handler(self) -> Handler:
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            dash = dashboard(request)
            try:
                response = await handle(request)
            except LoginNeeded as exc:
                next_path = safe_next(
                    request.url.path + (f"?{request.url.query}" if request.url.query else "")
                )
                if request.method != "GET":
                    next_path = "/"
                response = await render(
                    request,
                    "landing.html",
                    status=200 if request.url.path == "/" else 401,
                    ended=exc.ended,
                    logged_out=request.query_params.get("logged_out") == "1" and not exc.ended,
                    login_url=login_link(request, next_path),
                )
            except PageError as exc:
                response = await render(request, exc.template, status=exc.status, **exc.context)
            except Exception as exc:
                error_id = new_error_id()
                log.error(
                    "Unexpected error %s on dashboard page %s",
                    error_id,
                    request.url.path,
                    exc_info=(type(exc), exc, exc.__traceback__),
                )
                response = await render(request, "error.html", status=500, error_id=error_id)
            for op in _cookie_ops(request):
                op(response)
            return secure(response, https=dash.https)

        return handler


def names_of(ids: Iterable[int | None]) -> set[int]:
    return {value for value in ids if value is not None}
