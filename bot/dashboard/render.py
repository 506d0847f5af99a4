"""Rendering: the Jinja2 templates (autoescaped), the static assets served from memory, and the
security headers every dashboard answer carries.

Assets (``bot/dashboard/static``) are read once when the dashboard is built and served under
``/assets/<name>?v=<hash>`` (immutable for a year when the hash matches), so a page never loads anything
from another origin: the Content-Security-Policy allows scripts, styles and images from the dashboard
itself only, and no inline script or style at all.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import mimetypes
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import jinja2
from markupsafe import Markup
from starlette.responses import Response

from bot import __version__
from bot.audit_embeds import label, problem_text
from bot.dashboard.markup import html_time, markdown_html
from bot.errors import render as render_reason
from bot.failures import Reason
from bot.i18n import SOURCE, Tr

__all__ = ["CSP", "Assets", "Templates", "secure"]

_PACKAGE = importlib.resources.files("bot.dashboard")

#: No inline script or style, nothing from another origin, no framing, forms post only here.
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}


def secure(response: Response, *, https: bool) -> Response:
    """Add the security headers (and HSTS behind https). Pages are never cached (they show a signed-in
    user's data); assets set their own ``Cache-Control``."""
    for name, value in _HEADERS.items():
        response.headers.setdefault(name, value)
    if https:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    version: str


class Assets:
    """The files of ``bot/dashboard/static``, read once."""

    def __init__(self) -> None:
        self._files: dict[str, Asset] = {}
        folder = _PACKAGE.joinpath("static")
        for entry in folder.iterdir():
            if not entry.is_file() or entry.name.startswith("."):
                continue
            body = entry.read_bytes()
            media = mimetypes.guess_type(entry.name)[0] or "application/octet-stream"
            if media.startswith("text/") or media in ("application/javascript", "image/svg+xml"):
                media += "; charset=utf-8"
            self._files[entry.name] = Asset(body, media, hashlib.sha256(body).hexdigest()[:12])

    def get(self, name: str) -> Asset | None:
        return self._files.get(name)

    def url(self, base: str, name: str) -> str:
        return f"{base}/assets/{name}?v={self._files[name].version}"


class Templates:
    """The templates in each reader's language: one Jinja2 environment per locale, with the i18n
    extension's ``_()`` / ``ngettext()`` bound to that locale's catalog (``%(name)s`` placeholders)."""

    def __init__(self, assets: Assets) -> None:
        self._assets = assets
        self._envs: dict[str, jinja2.Environment] = {}
        self._env(SOURCE)  # the English one at start-up: a broken template setup fails early

    def _env(self, t: Tr) -> jinja2.Environment:
        env = self._envs.get(t.locale)
        if env is not None:
            return env
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(_PACKAGE.joinpath("templates"))),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            extensions=["jinja2.ext.i18n"],
        )
        env.install_gettext_callables(  # type: ignore[attr-defined]  # added by the i18n extension
            gettext=t.translations.gettext, ngettext=t.translations.ngettext, newstyle=True
        )
        env.globals["version"] = __version__
        env.globals["lang"] = t.locale
        env.filters["time"] = lambda at: _time(at, t)
        env.filters["ago"] = lambda at: _ago(at, t)
        env.filters["md"] = _markdown
        env.filters["problem"] = lambda code: markdown_html(problem_text(str(code), t))
        env.filters["number"] = t.number
        env.filters["reason"] = lambda stored: _reason(stored, t)
        env.filters["changed_fields"] = lambda fields, removed=(): _changed_fields(fields, removed, t)
        env.globals["command"] = lambda path: Markup("<code>{}</code>").format(t.command(path).strip("`"))
        self._envs[t.locale] = env
        return env

    def render(self, name: str, context: Mapping[str, Any], t: Tr = SOURCE) -> str:
        base = str(context.get("base", ""))
        values = {"asset": lambda file: self._assets.url(base, file), **context}
        return self._env(t).get_template(name).render(values)


def _time(at: datetime | None, t: Tr) -> Any:
    return t._("never") if at is None else html_time(at)


def _ago(at: datetime | None, t: Tr) -> Any:
    return t._("never") if at is None else html_time(at, relative=True)


def _markdown(
    text: str, users: Mapping[int, str] | None = None, channels: Mapping[int, str] | None = None
) -> Any:
    return markdown_html(text, users=users, channels=channels)


def _reason(stored: object, t: Tr) -> Any:
    """A ``Reason`` kept in a session message (``Reason.to_json``) as its sentence."""
    reason = Reason.from_json(stored)
    return markdown_html(render_reason(reason, t, next_step=False) if reason else t._("unknown"))


def _changed_fields(fields: Iterable[str], removed: Iterable[str], t: Tr) -> str:
    """ "Title, Unlisted and Password (removed)": the fields an edit changed, in the reader's words."""
    gone = set(removed)
    return t.join(
        t._("{field} (removed)", field=label(name, t)) if name in gone else label(name, t) for name in fields
    )
