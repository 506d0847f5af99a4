"""Every dashboard page in German and Brazilian Portuguese: the forms, tables, confirmations, the
messages a form leaves, the lazily loaded rows and the setup page, with no English left in them.

Two checks: the catalogs' own English (``tests.fixtures.language``), and the English page itself —
text that reads the same on the English page and the translated one is English left behind, unless
it is the page's data (names, slugs, ids) or the language says it the same way.
"""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
import pytest

from bot import i18n
from bot.validation import new_link_options
from tests.fixtures.dashboard import GUILD_NAMES, Dash, csrf_of
from tests.fixtures.language import catalog_text, english_left
from tests.harness import ADMIN

INVITE = "https://discord.gg/dashtest"
LOCALES = ["de", "pt-BR"]
#: Text a reader sees: between tags, and in the attributes people read.
_TEXT = re.compile(r">([^<]+)<")
_ATTRIBUTE = re.compile(r'\b(?:title|alt|placeholder|aria-label|data-label|data-cop\w*(?:-\w+)?)="([^"]*)"')
_WORD = re.compile(r"[^\W\d_]{3,}")
_NOT_WORDS = re.compile(r"\b\w+://\S*|[\w.-]+\.[a-z]{2,}(?:/\S*)?|@\S+|#\S+|…\w+|\bdscgg-bot\b")


def visible_text(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def read_bits(page: str) -> set[str]:
    """The pieces of text a person reads on ``page`` (script and data templates aside)."""
    body = re.sub(r"<(script|style|time)\b.*?</\1>", " ", page, flags=re.S)  # times: the browser's words
    bits = {html.unescape(bit).strip() for bit in _TEXT.findall(body) + _ATTRIBUTE.findall(body)}
    return {bit for bit in bits if _WORD.search(_NOT_WORDS.sub(" ", bit))}


def same_as_english(english: str, translated: str, locale: str, data: set[str]) -> list[str]:
    """Text shown identically on the English and the translated page that is neither data nor said
    the same way in the language's catalog."""
    said_alike = catalog_text(locale)
    return sorted(
        bit
        for bit in read_bits(english) & read_bits(translated)
        if not any(value in bit for value in data) and bit not in said_alike
    )


class Reader:
    """One logged-in browser reading the dashboard in ``locale``, and the same pages in English."""

    def __init__(self, dash: Dash, client: httpx.AsyncClient, locale: str) -> None:
        self.dash = dash
        self.client = client
        self.locale = locale
        self.pages: dict[str, str] = {}
        self.base = f"/servers/{dash.guild_id}"

    async def get(self, path: str, *, compare: bool = True) -> httpx.Response:
        answer = await self.client.get(self.base + path, headers={"Accept-Language": self.locale})
        self.pages[f"GET {path}"] = answer.text
        if compare:
            english = await self.client.get(self.base + path, headers={"Accept-Language": "en-US"})
            self.pages[f"en {path}"] = english.text
        return answer

    async def post(self, path: str, data: dict[str, str], *, csrf_from: str) -> httpx.Response:
        page = await self.client.get(self.base + csrf_from, headers={"Accept-Language": self.locale})
        answer = await self.client.post(
            self.base + path,
            data={"csrf": csrf_of(page.text), **data},
            headers={"Accept-Language": self.locale},
        )
        self.pages[f"POST {path} {sorted(data)}"] = answer.text
        return answer


@pytest.mark.parametrize("locale", LOCALES)
async def test_every_server_page_is_in_the_readers_language(dash: Dash, locale: str) -> None:
    wired = dash.wired
    client = await dash.login()
    reader = Reader(dash, client, locale)

    # Nothing yet: the empty tables name the slash commands in the reader's language.
    empty = await reader.get("")
    t = i18n.for_locale(locale)
    assert f"<code>{t.command('link create').strip('`')}</code>" in empty.text
    await reader.get("/keys")
    await reader.get("/settings")

    # No token yet: the refusal says so and links to Settings.
    refused = await reader.post("/links", {"slug": "verde", "redirect": INVITE}, csrf_from="")
    assert refused.status_code == 409
    assert f'href="{reader.base}/settings"' in refused.text

    # The token, then a link whose colour dsc.gg refuses (the link exists; the colour is explained).
    await reader.post("/settings/token", {"token": "not-a-valid-key-123"}, csrf_from="/settings")
    await dash.set_token()
    wired.dscgg.fail_next("code", method="PATCH", code="bad_request", status=400, message="Bad colour")
    created = await reader.post(
        "/links",
        {"slug": "verde", "redirect": INVITE, "color": "#00ff00", "password": "hunter2!"},
        csrf_from="",
    )
    assert created.status_code == 200, created.text
    assert "Bad colour" in visible_text(created.text)  # dsc.gg's own words, quoted
    assert "verde" in wired.dscgg.links

    # A link page, its edit (one field removed), the lazily loaded row, and the delete question.
    new = new_link_options(slug="azul", redirect=INVITE, title="Azul")
    await wired.bot.links.create(dash.guild_id, ADMIN.id, new)
    link = await reader.get("/links/azul")
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', link.text))
    shown = {key.removeprefix("orig_"): html.unescape(value) for key, value in form.items()}
    await reader.post("/links/azul", {**form, **shown, "title": "", "unlisted": "1"}, csrf_from="/links/azul")
    await reader.get("/links/azul/card")
    await reader.get("/links/azul/delete")
    await reader.post("/links/azul/delete", {}, csrf_from="/links/azul/delete")
    del wired.dscgg.links["verde"]  # deleted on dsc.gg meanwhile: the page says so and forgets it
    await reader.post("/links/verde/delete", {}, csrf_from="/links/verde/delete")

    # More links than one page holds: the pager.
    for number in range(101):
        await wired.bot.link_records.record(dash.guild_id, f"l{number:03}", ADMIN.id)
    await reader.get("?sort=created&dir=desc")

    # API keys: created (shown once, with its copy button), listed, deleted.
    await reader.post("/keys", {"name": "deploy"}, csrf_from="/keys")
    await reader.get("/keys")
    [key] = await wired.bot.api_keys.list(dash.guild_id)
    await reader.get(f"/keys/{key.id}/delete")
    await reader.post(f"/keys/{key.id}/delete", {}, csrf_from=f"/keys/{key.id}/delete")

    # Settings: the token shown by its last 4, the log channel on, a posting problem, off, the token removed.
    guild = wired.discord.guild(dash.guild_id)
    await reader.post("/settings/log-channel", {"channel": str(guild.log_channel_id)}, csrf_from="/settings")
    await wired.bot.guild_settings.set_log_channel_problem(dash.guild_id, "no_permission")
    await reader.get("/settings")
    await reader.post("/settings/log-channel", {"channel": ""}, csrf_from="/settings")
    await reader.get("/settings/token/clear")
    await reader.post("/settings/token/clear", {}, csrf_from="/settings/token/clear")
    await reader.post("/settings/token/clear", {}, csrf_from="/settings/token/clear")  # nothing left

    translated = {name: page for name, page in reader.pages.items() if not name.startswith("en ")}
    assert len(translated) == 19
    for name, page in translated.items():
        assert f'<html lang="{locale}">' in page or name.endswith("/card"), name
        assert english_left([visible_text(page)], locale) == [], (name, visible_text(page))

    data = {"azul", "verde", "deploy", "Azul", "admin", str(dash.guild_id), *GUILD_NAMES}
    for name, page in reader.pages.items():
        if name.startswith("en "):
            path = name.removeprefix("en ")
            left = same_as_english(page, reader.pages[f"GET {path}"], locale, data)
            assert left == [], (path, left)


@pytest.mark.parametrize("locale", LOCALES)
async def test_the_setup_page_is_in_the_readers_language(make_dash: Any, locale: str) -> None:
    async with make_dash(configured=False) as dash:
        page = await dash.client().get("/", headers={"Accept-Language": locale})
        assert page.status_code == 503
        assert f'<html lang="{locale}">' in page.text
        assert english_left([visible_text(page.text)], locale) == [], visible_text(page.text)
        assert "DISCORD_CLIENT_SECRET" in page.text
        assert f"{dash.url}/auth/callback" in visible_text(page.text)
