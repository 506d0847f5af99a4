"""Real interactions in German and Brazilian Portuguese (and audit posts in French), and HTTP API
problems in the language of Accept-Language: every text a person reads is in their language, with no
English left in it, while the machine fields stay as they are.

"No English left" is checked against the catalogs themselves (``tests.fixtures.language``).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest

from bot import i18n
from bot.api.problems import PROBLEMS
from bot.db.apikeys import MAX_KEYS_PER_GUILD
from bot.errors import render
from bot.failures import Reason
from tests.fakes.discord import walk_components
from tests.fixtures.api import Api
from tests.fixtures.bot import ADMIN_TOKEN, WiredBot
from tests.fixtures.language import english_left
from tests.harness import ADMIN, MEMBER, Message, Result

STRANGER_ID = 4_242_424_242  # a dsc.gg account other than the one whose token the server uses
LOCALES = ["de", "pt-BR"]


def message_texts(message: Message) -> list[str]:
    """What a person reads on a message: content, embeds, and the labels of its components."""
    labels = [str(c["label"]) for c in walk_components(message.components) if c.get("label")]
    return message.texts() + labels


def result_texts(result: Result) -> list[str]:
    return [text for message in result.messages for text in message_texts(message)]


def assert_in_language(texts: list[str], locale: str) -> None:
    assert texts, "nothing to read"
    assert english_left(texts, locale) == [], "\n".join(texts)


@pytest.fixture
async def w(wired_bot: WiredBot) -> WiredBot:
    await wired_bot.bot.token_store.set(wired_bot.guild_id, ADMIN_TOKEN, set_by=ADMIN.id)
    wired_bot.dscgg.reset()
    return wired_bot


async def managed(w: WiredBot, slug: str) -> None:
    await w.bot.link_records.record(w.guild_id, slug, ADMIN.id)


def test_the_check_sees_english() -> None:
    assert "Deleted" in english_left(["Deleted **dsc.gg/x**."], "de")
    assert "Check the spelling and try again" in english_left(["Check the spelling and try again."], "pt-BR")
    assert english_left(["**dsc.gg/x** gelöscht."], "de") == []


# ---------------------------------------------------------------------------------------- commands


@pytest.mark.parametrize("locale", LOCALES)
async def test_link_info(w: WiredBot, locale: str) -> None:
    w.dscgg.add_link("meu-link", owner_id=ADMIN.id, redirect="https://discord.gg/abc", clicks=1234)
    await managed(w, "meu-link")
    result = await w.run("link info", {"slug": "meu-link"}, locale=locale)
    t = i18n.for_locale(locale)
    [embed] = result.final_message.embeds  # type: ignore[union-attr]
    names = [field["name"] for field in embed["fields"]]
    assert names[:3] == [t._("Redirect"), t._("Type"), t._("Owner")]
    assert t._("Server invite") in result.text()
    assert t.number(1234) in result.text()  # 1.234 in both
    assert_in_language(result_texts(result), locale)


@pytest.mark.parametrize("locale", LOCALES)
async def test_an_owner_mismatch(w: WiredBot, locale: str) -> None:
    w.dscgg.add_link("theirs", owner_id=STRANGER_ID)
    await managed(w, "theirs")
    result = await w.run("link edit", {"slug": "theirs", "title": "x"}, locale=locale)
    t = i18n.for_locale(locale)
    text = result.text()
    assert text.startswith(
        t._(
            "{link} is owned by a different dsc.gg account than the one whose token this "
            "server uses, so this server can't change it.",
            link="`dsc.gg/theirs`",
        )
    )
    assert t.command("dscgg token set") in text  # the command as this user sees it in Discord
    assert result.ephemeral
    assert_in_language([text], locale)


@pytest.mark.parametrize("locale", LOCALES)
async def test_the_delete_confirmation(w: WiredBot, locale: str) -> None:
    w.dscgg.add_link("old", owner_id=ADMIN.id)
    await managed(w, "old")
    asking = await w.run("link delete", {"slug": "old"}, locale=locale)  # returns once it waits for a press
    t = i18n.for_locale(locale)
    message = asking.final_message
    assert message is not None
    assert [b["label"] for b in message.buttons()] == [t._("Delete"), t._("Cancel")]
    assert_in_language(message_texts(message), locale)
    cancel = message.buttons()[1]["custom_id"]
    await w.harness.click(asking, cancel)
    assert asking.final_message is not None
    assert asking.final_message.content == t._(
        "Deletion cancelled. **{link}** was not deleted.", link="dsc.gg/old"
    )
    assert_in_language(message_texts(asking.final_message), locale)


@pytest.mark.parametrize("locale", LOCALES)
async def test_the_token_form_and_its_answer(w: WiredBot, locale: str) -> None:
    form = await w.run("dscgg token set", locale=locale)
    modal = form.modal
    assert modal is not None
    t = i18n.for_locale(locale)
    inputs = [c for c in walk_components(modal["components"]) if c.get("custom_id") == "token"]
    texts = [modal["title"], *(str(c.get(key, "")) for c in inputs for key in ("label", "placeholder"))]
    assert texts[:2] == [t._("dsc.gg API token"), t._("API token")]
    assert_in_language(texts, locale)
    saved = await w.harness.submit_modal(form, {"token": ADMIN_TOKEN})
    tail = t._("ending in `{last4}`", last4=ADMIN_TOKEN[-4:])
    assert saved.text() == t._(
        "Saved. The token {tail} is now used for this server's dsc.gg commands. It is stored encrypted and "
        "won't be shown again.",
        tail=tail,
    )
    assert_in_language(result_texts(saved), locale)


@pytest.mark.parametrize("locale", LOCALES)
async def test_a_page_of_top_links(w: WiredBot, locale: str) -> None:
    for i in range(25):
        w.dscgg.add_link(f"top{i:02d}", owner_id=STRANGER_ID, clicks=2000 - i)
    result = await w.run("top", user=MEMBER, locale=locale)
    t = i18n.for_locale(locale)
    message = result.final_message
    assert message is not None
    assert_in_language(message_texts(message), locale)
    [next_button] = [b for b in message.buttons() if b.get("label") == t._("Next ›")]
    await w.harness.click(result, next_button["custom_id"], user=MEMBER)
    footer = message.embeds[0]["footer"]["text"]
    assert footer == t._(
        "Page {page}/{pages} · {items}",
        page="2",
        pages="3",
        items=t.ngettext("{count} link", "{count} links", 25),
    )
    assert_in_language(message_texts(message), locale)


@pytest.mark.parametrize("locale", LOCALES)
async def test_the_status_names_the_shard(w: WiredBot, locale: str) -> None:
    result = await w.run("dscgg status", locale=locale)
    t = i18n.for_locale(locale)
    message = result.final_message
    assert message is not None
    fields = {f["name"]: f["value"] for f in message.embeds[0]["fields"]}
    assert fields[t._("Served by")] == t._("Shard {shard} of {count}", shard="0", count="1")
    assert_in_language(message_texts(message), locale)


@pytest.mark.parametrize("locale", LOCALES)
async def test_api_keys_are_created_listed_and_revoked_in_the_users_language(
    w: WiredBot, locale: str
) -> None:
    t = i18n.for_locale(locale)
    created = await w.run("dscgg apikey create", {"name": "ci"}, locale=locale)
    key = next(word for word in created.text().split() if word.startswith("dscggbot_"))
    assert created.text().startswith(
        t._("Created the API key **{name}**. Copy it now: it won't be shown again.", name="ci")
    )
    assert t.command("dscgg apikey revoke") in created.text()  # as this user sees the command
    assert_in_language(result_texts(created), locale)

    listed = await w.run("dscgg apikey list", locale=locale)
    message = listed.final_message
    assert message is not None
    assert message.embeds[0]["title"] == t._("HTTP API keys of this server")
    assert key not in listed.text()
    assert_in_language(message_texts(message), locale)

    choices = (
        await w.harness.autocomplete("dscgg apikey revoke", {"key": ""}, focused="key", locale=locale)
    ).choices
    assert choices is not None
    [choice] = choices
    assert_in_language([choice["name"]], locale)
    revoked = await w.run("dscgg apikey revoke", {"key": choice["value"]}, locale=locale)
    assert revoked.text() == t._(
        "Revoked the API key **{name}**: requests made with it are refused from now on.", name="ci"
    )
    again = await w.run("dscgg apikey revoke", {"key": choice["value"]}, locale=locale)
    assert again.ephemeral
    assert t.command("dscgg apikey list") in again.text()
    assert_in_language([revoked.text(), again.text()], locale)


@pytest.mark.parametrize("locale", LOCALES)
async def test_the_most_api_keys_a_server_may_have(w: WiredBot, locale: str) -> None:
    for index in range(MAX_KEYS_PER_GUILD):
        await w.bot.api_keys.create(w.guild_id, ADMIN.id, f"key {index}")
    refused = await w.run("dscgg apikey create", {"name": "one more"}, locale=locale)
    t = i18n.for_locale(locale)
    assert refused.ephemeral
    assert t.number(MAX_KEYS_PER_GUILD) in refused.text()
    assert t.command("dscgg apikey revoke") in refused.text()
    assert_in_language([refused.text()], locale)


# --------------------------------------------------------------------------------------- audit posts


async def test_an_audit_post_speaks_the_servers_language(w: WiredBot) -> None:
    """The admin reads German; the server's language is French, and so is its log channel."""
    french = replace(w.harness.guild, locale="fr")
    log_channel = french.log_channel_id
    await w.run("dscgg logs", {"channel": log_channel}, guild=french, locale="de")
    assert (await w.bot.guild_settings.get(w.guild_id)).locale == "fr"  # noted from guild_locale
    created = await w.run(
        "link create", {"slug": "salut", "redirect": "discord.gg/abc"}, guild=french, locale="de"
    )
    assert created.text().startswith("**dsc.gg/salut** erstellt.")  # the reply: the admin's language
    posts = await w.discord.wait_for(
        lambda: (
            (found := [p for p in w.discord.channel_posts if p.channel_id == log_channel])
            and len(found) >= 2
            and found
        )
    )
    embed = posts[-1].body["embeds"][0]
    fr = i18n.for_locale("fr")
    assert embed["title"] == fr._("Link created")
    assert (
        fr._("{who} created {link}.", who=f"<@{ADMIN.id}>", link="**dsc.gg/salut**") in embed["description"]
    )
    texts = [embed["title"], embed["description"], embed["footer"]["text"]]
    texts += [part for f in embed["fields"] for part in (f["name"], f["value"])]
    assert_in_language(texts, "fr")


async def test_a_refusal_in_the_log_is_explained_in_the_servers_language(w: WiredBot) -> None:
    """A reason is stored as data and rendered when posted: the French server reads it in French."""
    french = replace(w.harness.guild, locale="fr")
    log_channel = french.log_channel_id
    await w.run("dscgg logs", {"channel": log_channel}, guild=french, locale="pt-BR")
    w.dscgg.add_link("theirs", owner_id=STRANGER_ID)
    await managed(w, "theirs")
    await w.run("link edit", {"slug": "theirs", "title": "x"}, guild=french, locale="pt-BR")
    posts = await w.discord.wait_for(
        lambda: (
            (found := [p for p in w.discord.channel_posts if p.channel_id == log_channel])
            and len(found) >= 2
            and found
        )
    )
    embed = posts[-1].body["embeds"][0]
    fr = i18n.for_locale("fr")
    reason = {f["name"]: f["value"] for f in embed["fields"]}[fr._("Reason")]
    assert reason.startswith(
        fr._(
            "{link} is owned by a different dsc.gg account than the one whose token "
            "this server uses, so this server can't change it.",
            link="`dsc.gg/theirs`",
        )
    )
    assert_in_language([embed["title"], embed["description"], reason], "fr")


async def test_a_change_made_with_an_api_key_is_posted_in_the_servers_language(api: Api) -> None:
    """The key acts over HTTP; the French server's log channel says "Une clé d'API (ci)"."""
    w = api.wired
    french = replace(w.harness.guild, locale="fr")
    log_channel = french.log_channel_id
    await w.run("dscgg logs", {"channel": log_channel}, guild=french, locale="de")
    await api.set_token()
    created = await api.post(
        f"/v1/guilds/{api.guild_id}/links",
        key=api.key,
        json={"slug": "cle", "redirect": "https://discord.gg/abc"},
        headers={"Accept-Language": "de"},
    )
    assert created.status_code == 201, created.text
    posts = await w.discord.wait_for(
        lambda: (
            (found := [p for p in w.discord.channel_posts if p.channel_id == log_channel])
            and len(found) >= 2
            and found
        )
    )
    embed = posts[-1].body["embeds"][0]
    fr = i18n.for_locale("fr")
    who = fr._("An API key ({name})", name="ci")
    assert who == "Une clé d'API (ci)"
    assert fr._("{who} created {link}.", who=who, link="**dsc.gg/cle**") in embed["description"]
    assert_in_language([embed["title"], embed["description"]], "fr")
    [summary] = (await w.bot.audit.status(w.guild_id)).recent[:1]
    assert summary.actor_key == "ci"


# --------------------------------------------------------------------------------------------- the API


async def _owner_mismatch(api: Api, accept_language: str | None) -> Any:
    headers = {} if accept_language is None else {"Accept-Language": accept_language}
    return await api.request(
        "PATCH",
        f"/v1/guilds/{api.guild_id}/links/theirs",
        key=api.key,
        json={"title": "x"},
        headers=headers,
    )


@pytest.fixture
async def theirs(api: Api) -> Api:
    """A link this server manages but another dsc.gg account owns: editing it is an owner_mismatch."""
    await api.set_token()
    api.wired.dscgg.add_link("theirs", owner_id=STRANGER_ID)
    await api.wired.bot.link_records.record(api.guild_id, "theirs", ADMIN.id)
    return api


@pytest.mark.parametrize("locale", ["de", "pt-BR"])
async def test_an_api_problem_follows_accept_language(theirs: Api, locale: str) -> None:
    english = await _owner_mismatch(theirs, None)
    translated = await _owner_mismatch(theirs, locale)
    assert english.status_code == translated.status_code == 403
    t = i18n.for_locale(locale)
    body, en = translated.json(), english.json()
    assert body["detail"] == render(Reason("dscgg.owner_mismatch"), t)
    assert body["title"] == t._(PROBLEMS["owner-mismatch"].title)
    assert body["detail"] != en["detail"]
    assert_in_language([body["title"], body["detail"]], locale)
    # The machine fields are the same in every language; dsc.gg's own words are as it said them.
    for name in ("type", "status", "message"):
        assert body[name] == en[name], name
    assert en["type"].endswith("/problems/owner-mismatch")
    assert translated.headers["content-language"] == locale
    assert english.headers["content-language"] == "en-US"
    assert "accept-language" in translated.headers["vary"].lower()


async def test_the_refusal_in_the_audit_events_follows_accept_language(theirs: Api) -> None:
    await _owner_mismatch(theirs, None)
    events = await theirs.get(
        f"/v1/guilds/{theirs.guild_id}/audit-events", key=theirs.key, headers={"Accept-Language": "de"}
    )
    assert events.status_code == 200
    [refused] = [item for item in events.json()["items"] if item["kind"] == "mutation_refused"]
    assert refused["reason"].startswith(
        i18n.for_locale("de")._(
            "{link} is owned by a different dsc.gg account than the one whose token this server uses, so "
            "this server can't change it.",
            link="`dsc.gg/theirs`",
        )
    )
    assert refused["action"] == "edit"


async def test_accept_language_is_negotiated_with_weights(theirs: Api) -> None:
    french = await _owner_mismatch(theirs, "ja, fr;q=0.9, de;q=0.8")
    assert french.headers["content-language"] == "fr"
    assert french.json()["detail"] == render(Reason("dscgg.owner_mismatch"), i18n.for_locale("fr"))
    dutch = await _owner_mismatch(theirs, "fr;q=0.5, nl-BE")
    assert dutch.headers["content-language"] == "nl"
    english = await _owner_mismatch(theirs, "en-GB, de;q=0.8")  # English first: the source language
    assert english.headers["content-language"] == "en-US"


async def test_an_unknown_language_gets_english(theirs: Api) -> None:
    plain = await _owner_mismatch(theirs, None)
    for header in ("ja", "*", "de;q=0", "x" * 200, ";;,,"):
        unknown = await _owner_mismatch(theirs, header)
        assert unknown.json() == plain.json(), header
        assert unknown.headers["content-language"] == "en-US"
    assert plain.json()["detail"] == render(Reason("dscgg.owner_mismatch"))
    assert plain.json()["title"] == "Owned by another account"


async def test_invalid_values_are_explained_in_the_readers_language(api: Api) -> None:
    await api.set_token()
    base = f"/v1/guilds/{api.guild_id}/links"
    ours = await api.post(
        base,
        key=api.key,
        json={"slug": "x", "redirect": "javascript:alert(1)"},
        headers={"Accept-Language": "pt-BR"},
    )
    assert ours.status_code == 422
    [entry] = ours.json()["errors"]
    assert (entry["location"], entry["field"], entry["pointer"]) == ("body", "redirect", "#/redirect")
    assert_in_language([ours.json()["title"], ours.json()["detail"], entry["detail"]], "pt-BR")
    pydantic = await api.post(base, key=api.key, json={"slug": "x"}, headers={"Accept-Language": "nl"})
    assert pydantic.status_code == 422
    [missing] = pydantic.json()["errors"]
    assert (missing["location"], missing["field"]) == ("body", "redirect")
    assert missing["detail"] == i18n.for_locale("nl")._("it is required")
    assert_in_language([pydantic.json()["detail"]], "nl")


async def test_a_problem_page_follows_accept_language(api: Api) -> None:
    page = await api.get("/problems/owner-mismatch", headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert page.status_code == 200
    de = i18n.for_locale("de")
    assert "<html lang=de>" in page.text
    assert f"<h1>{de._(PROBLEMS['owner-mismatch'].title)}</h1>" in page.text
    assert page.headers["content-language"] == "de"
    words = re.sub(r"<[^>]+>", "\n", page.text)
    assert_in_language([line for line in words.splitlines() if line.strip() and "{" not in line], "de")


# ------------------------------------------------------------------------------------------ fallback


async def test_an_unknown_locale_gets_english(w: WiredBot) -> None:
    w.dscgg.add_link("plain", owner_id=ADMIN.id)
    await managed(w, "plain")
    english = await w.run("link info", {"slug": "plain"}, locale="en-US")
    japanese = await w.run("link info", {"slug": "plain"}, locale="ja")
    assert japanese.final_message is not None
    assert english.final_message is not None
    assert japanese.final_message.embeds == english.final_message.embeds
    assert "Redirect" in japanese.text()
    missing = await w.run("link info", {"slug": "nope"}, locale="ja")
    assert (
        missing.text() == "`dsc.gg/nope` isn't managed by this server. If this server's dsc.gg account "
        "owns it, bring it here with `/link adopt slug:nope`."
    )
