"""One rule for a link's options, whichever way they come in: ``/link create|edit`` (the harness), the
HTTP API (``POST``/``PATCH /v1/guilds/{id}/links``) and the dashboard's forms refuse the same input on
the same field, in the same words, and send nothing to dsc.gg."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.fixtures.dashboard import Dash, csrf_of
from tests.harness import ADMIN

INVITE = "https://discord.gg/entry"
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


@dataclass
class Ways:
    """The three ways in, to one server: the bot's commands, an API key, a logged-in browser."""

    dash: Dash
    api: httpx.AsyncClient
    browser: httpx.AsyncClient

    @property
    def links(self) -> str:
        return f"/v1/guilds/{self.dash.guild_id}/links"

    @property
    def pages(self) -> str:
        return f"/servers/{self.dash.guild_id}"

    async def command(self, name: str, options: dict[str, Any]) -> str:
        """The reply to a slash command, without its markdown (backticks, bold)."""
        result = await self.dash.wired.run(name, options)
        return result.text().replace("`", "").replace("**", "")

    async def problem(self, method: str, path: str, body: dict[str, Any]) -> tuple[list[str], str]:
        """The fields an API problem names, and its detail (without markdown: backticks, bold)."""
        answer = await self.api.request(method, path, json=body)
        assert answer.status_code == 422, answer.text
        problem = answer.json()
        return [entry["field"] for entry in problem.get("errors", [])], problem["detail"].replace(
            "`", ""
        ).replace("**", "")

    async def form(self, path: str, data: dict[str, str]) -> str:
        """The visible text of a refused form."""
        csrf = csrf_of((await self.browser.get(self.pages)).text)
        answer = await self.browser.post(path, data={"csrf": csrf, **data})
        assert answer.status_code == 422, answer.text
        return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", answer.text)))

    async def edit_form(self, slug: str, changed: dict[str, str]) -> str:
        """The link's edit form as the page shows it, with ``changed`` typed in, refused."""
        page = await self.browser.get(f"{self.pages}/links/{slug}")
        shown = {name: html.unescape(value) for name, value in _HIDDEN.findall(page.text) if name != "csrf"}
        typed = {name.removeprefix("orig_"): value for name, value in shown.items()}
        return await self.form(f"{self.pages}/links/{slug}", {**shown, **typed, **changed})


@pytest.fixture
async def ways(dash: Dash) -> AsyncIterator[Ways]:
    await dash.set_token()
    key = (await dash.wired.bot.api_keys.create(dash.guild_id, ADMIN.id, "entry")).key.get_secret_value()
    async with httpx.AsyncClient(
        base_url=dash.url, headers={"Authorization": f"Bearer {key}"}, timeout=10.0
    ) as api:
        yield Ways(dash, api, await dash.login())


def said(text: str, field: str, phrase: str) -> bool:
    return f"Check the {field} option: " in text and phrase in text


@pytest.mark.parametrize(
    ("field", "options", "phrase"),
    [
        ("slug", {"slug": "two words"}, "it contains a space"),
        ("redirect", {"redirect": "https://example.com/x"}, "it is not a Discord invite or template"),
        ("type", {"type": "bot"}, "but the redirect is a server invite"),
        ("title", {"title": "bell\x07"}, "U+0007"),
        ("description", {"description": "a\u202eb"}, "U+202E"),
        ("image", {"image": "http://i.imgur.com/x.png"}, "it must be a full https:// address"),
        ("color", {"color": "red"}, "it must be a hex colour"),
        ("password", {"password": "   "}, "it is empty"),
    ],
)
async def test_a_bad_new_link_is_refused_alike_everywhere(
    ways: Ways, field: str, options: dict[str, str], phrase: str
) -> None:
    options = {"slug": "fresh", "redirect": INVITE, **options}
    dscgg = ways.dash.wired.dscgg
    dscgg.reset()

    reply = await ways.command("link create", options)
    assert said(reply, field, phrase), reply
    fields, detail = await ways.problem("POST", ways.links, options)
    assert fields == [field]
    assert detail.startswith(f"Check {field}: "), detail
    assert phrase in detail
    page = await ways.form(f"{ways.pages}/links", options)
    assert said(page, field, phrase), page

    assert dscgg.requests == []


@pytest.mark.parametrize(
    ("field", "options", "phrase"),
    [
        ("redirect", {"redirect": "https://example.com/x"}, "it is not a Discord invite or template"),
        ("type", {"type": "bot"}, "but the redirect is a server invite"),  # the link's own redirect
        ("image", {"image": "http://i.imgur.com/x.png"}, "it must be a full https:// address"),
        ("color", {"color": "red"}, "it must be a hex colour"),
        (None, {}, "Nothing to change on dsc.gg/mine"),
    ],
)
async def test_a_bad_change_is_refused_alike_everywhere(
    ways: Ways, field: str | None, options: dict[str, str], phrase: str
) -> None:
    dscgg = ways.dash.wired.dscgg
    dscgg.add_link("mine", owner_id=ADMIN.id, redirect=INVITE, meta={"color": "#123456"})
    await ways.dash.wired.bot.link_records.record(ways.dash.guild_id, "mine", ADMIN.id)

    reply = await ways.command("link edit", {"slug": "mine", **options})
    fields, detail = await ways.problem("PATCH", f"{ways.links}/mine", options)
    page = await ways.edit_form("mine", options)
    if field is None:
        assert phrase in reply
        assert phrase in detail
        assert phrase in page
    else:
        assert said(reply, field, phrase), reply
        assert fields == [field]
        assert detail.startswith(f"Check {field}: "), detail
        assert phrase in detail
        assert said(page, field, phrase), page

    assert dscgg.requests_to("update_link") == []
    assert dscgg.links["mine"]["meta"]["color"] == "#123456"


async def test_a_new_password_and_the_remove_box_together_are_refused_as_by_link_edit(ways: Ways) -> None:
    dscgg = ways.dash.wired.dscgg
    dscgg.add_link("locked", owner_id=ADMIN.id, redirect=INVITE, password="old-secret")
    await ways.dash.wired.bot.link_records.record(ways.dash.guild_id, "locked", ADMIN.id)
    phrase = "Check the remove_password option: it can't be used together with password"

    assert phrase in await ways.command(
        "link edit", {"slug": "locked", "password": "new", "remove_password": True}
    )
    assert phrase in await ways.edit_form("locked", {"password": "new", "remove_password": "1"})
    assert dscgg.requests_to("update_link") == []
    assert dscgg.links["locked"]["_password"] == "old-secret"


async def test_a_type_no_form_offers_is_refused_before_asking_dscgg(ways: Ways) -> None:
    dscgg = ways.dash.wired.dscgg
    dscgg.add_link("plain", owner_id=ADMIN.id, redirect=INVITE)
    await ways.dash.wired.bot.link_records.record(ways.dash.guild_id, "plain", ADMIN.id)
    dscgg.reset()

    fields, detail = await ways.problem("PATCH", f"{ways.links}/plain", {"type": "link"})
    assert fields == ["type"]
    assert "Check type: it must be “Server invite”, “Bot invite”, or “Server template”" in detail
    assert dscgg.requests == []
    page = await ways.edit_form("plain", {"type": "link"})
    assert "Check the type option: it must be “Server invite”, “Bot invite”, or “Server template”" in page


@pytest.mark.parametrize("field", ["redirect", "type", "unlisted"])
async def test_a_field_every_link_has_cannot_be_removed_through_the_api(ways: Ways, field: str) -> None:
    fields, detail = await ways.problem("PATCH", f"{ways.links}/any", {field: None})
    assert fields == [field]
    assert detail == f"Check {field}: it can't be removed; leave it out to keep it as it is."
    assert ways.dash.wired.dscgg.requests == []
