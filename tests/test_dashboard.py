"""The web dashboard over HTTP, without a browser: logging in with Discord (the fake's consent page),
sessions, security headers, CSRF, escaping, access checks on every page, and the pages' forms with the
slash commands' validation and words. The browser tests (tests/test_dashboard_browser.py) drive the
same pages in Chromium."""

from __future__ import annotations

import hashlib
import html
import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.api.auth import Identities
from bot.audit_embeds import EventKind
from bot.dashboard.sessions import IDLE
from bot.db.database import utc_now
from bot.db.schema import dashboard_sessions
from bot.services.directory import DiscordDirectory
from bot.validation import new_link_options
from tests.fakes.discord import MANAGE_GUILD
from tests.fixtures.api import MEMBER_OAUTH, OAUTH_TOKEN
from tests.fixtures.bot import ADMIN_TOKEN
from tests.fixtures.dashboard import CLIENT_ID, GUILD_NAMES, NO_BOT_GUILD, Dash, csrf_of
from tests.harness import ADMIN, MEMBER

INVITE = "https://discord.gg/dashtest"
HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def links_path(dash: Dash) -> str:
    return f"/servers/{dash.guild_id}"


async def post_form(
    client: httpx.AsyncClient, path: str, data: dict[str, str], *, csrf: str | None = None
) -> httpx.Response:
    """Post ``data`` with the session's CSRF token (read from the picker page unless given)."""
    if csrf is None:
        csrf = csrf_of((await client.get("/")).text)
    return await client.post(path, data={"csrf": csrf, **data})


def visible_text(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


async def session_rows(dash: Dash) -> Any:
    return [row._mapping for row in await dash.wired.db.fetch_all(select(dashboard_sessions))]


# ------------------------------------------------------------------------------------------ logging in


async def test_logging_in_through_discords_consent_page_opens_the_server_picker(dash: Dash) -> None:
    client = dash.client()
    landing = await client.get("/")
    assert landing.status_code == 200
    assert "Log in with Discord" in landing.text

    consent = await client.get("/auth/login")
    assert consent.url.host == "127.0.0.1"
    assert consent.url.port == dash.wired.discord.port
    query = consent.url.params
    assert query["client_id"] == str(CLIENT_ID)
    assert query["redirect_uri"] == f"{dash.url}/auth/callback"
    assert query["scope"] == "identify guilds"
    assert query["response_type"] == "code"
    assert len(query["state"]) >= 32

    picker = await dash.consent(client, consent, "authorize")
    assert picker.status_code == 200
    assert str(picker.url) == f"{dash.url}/"
    text = visible_text(picker.text)
    assert "Your servers" in text
    assert "admin" in text
    assert GUILD_NAMES[0] in text
    assert GUILD_NAMES[1] in text
    # A server the user manages without the bot: an "Add to server" link, no page.
    assert f"guild_id={NO_BOT_GUILD}" in picker.text
    assert f'href="/servers/{NO_BOT_GUILD}"' not in picker.text
    assert "Add to server" in text
    # The code was exchanged server to server, with the client secret; the token never reached the page.
    assert OAUTH_TOKEN not in picker.text
    assert not dash.wired.discord.oauth_codes


async def test_the_login_returns_to_the_page_asked_for(dash: Dash) -> None:
    client = dash.client()
    asked = f"/servers/{dash.guild_id}/audit"
    first = await client.get(asked)
    assert first.status_code == 401
    assert f'href="/auth/login?next={asked}"' in first.text
    landed = await dash.consent(client, await client.get(f"/auth/login?next={asked}"), "authorize")
    assert landed.status_code == 200
    assert landed.url.path == asked


async def test_a_login_cookie_is_httponly_lax_and_the_session_is_stored_by_digest(dash: Dash) -> None:
    client = dash.client()
    consent = await client.get("/auth/login")
    started = consent.history[0]
    assert started.status_code == 303
    login_cookie = started.headers["set-cookie"]
    assert "httponly" in login_cookie.lower()
    assert "samesite=lax" in login_cookie.lower()
    assert "secure" not in login_cookie.lower()  # API_PUBLIC_URL is http here

    landed = await dash.consent(client, consent, "authorize")
    callback = next(r for r in landed.history if r.url.path == "/auth/callback")
    cookies = callback.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("dscgg_session="))
    assert "httponly" in session.lower()
    assert "samesite=lax" in session.lower()
    assert "max-age=604800" in session.lower()

    value = client.cookies["dscgg_session"]
    session_id, _, signature = value.rpartition(".")
    assert signature
    rows = await session_rows(dash)
    assert len(rows) == 1
    assert bytes(rows[0]["digest"]) == hashlib.sha256(session_id.encode()).digest()
    assert rows[0]["user_id"] == ADMIN.id
    assert OAUTH_TOKEN not in rows[0]["access_token"]  # encrypted


async def test_session_cookies_are_secure_behind_https(make_dash: Any) -> None:
    async with make_dash(api_public_url="https://dash.example.com") as dash:
        client = dash.client()
        started = await client.get("/auth/login", follow_redirects=False)
        assert started.status_code == 303
        assert "secure" in started.headers["set-cookie"].lower()
        assert "redirect_uri=https%3A%2F%2Fdash.example.com%2Fauth%2Fcallback" in started.headers["location"]
        page = await client.get("/")
        assert page.headers["strict-transport-security"] == "max-age=31536000"


async def test_a_callback_without_this_browsers_state_is_refused(dash: Dash) -> None:
    client = dash.client()
    consent = await client.get("/auth/login")
    other = dash.client()  # another browser: it has no login cookie
    fields = dict(consent.url.params)
    answer = await other.get("/auth/callback", params={"code": "whatever", "state": fields["state"]})
    assert answer.status_code == 400
    assert "This login has expired" in answer.text
    # The right browser, a forged state.
    forged = await client.get("/auth/callback", params={"code": "whatever", "state": "x" * 32})
    assert forged.status_code == 400
    assert await session_rows(dash) == []


async def test_cancelling_on_discord_logs_nobody_in(dash: Dash) -> None:
    client = dash.client()
    answer = await dash.consent(client, await client.get("/auth/login"), "cancel")
    assert answer.status_code == 400
    assert "Login cancelled" in answer.text
    assert await session_rows(dash) == []


async def test_a_code_discord_refuses_is_a_clear_page(dash: Dash) -> None:
    dash.wired.discord.oauth_client = (CLIENT_ID, "another-secret")  # the configured secret is wrong
    client = dash.client()
    answer = await dash.consent(client, await client.get("/auth/login"), "authorize")
    assert answer.status_code == 400
    assert "Discord refused the login" in answer.text
    assert "DISCORD_CLIENT_SECRET" in answer.text


async def test_without_the_oauth_settings_one_page_says_what_to_set_and_the_api_works(make_dash: Any) -> None:
    async with make_dash(configured=False) as dash:
        client = dash.client()
        for path in ("/", "/auth/login", f"/servers/{dash.guild_id}", "/auth/callback?code=x&state=y"):
            page = await client.get(path)
            assert page.status_code == 503, path
            text = visible_text(page.text)
            assert "The dashboard is not set up yet" in text
            assert "DISCORD_CLIENT_ID" in text
            assert "DISCORD_CLIENT_SECRET" in text
            assert f"{dash.url}/auth/callback" in text
        key = await dash.wired.bot.api_keys.create(dash.guild_id, ADMIN.id, "ci")
        api = await client.get(
            f"/v1/guilds/{dash.guild_id}", headers={"Authorization": f"Bearer {key.key.get_secret_value()}"}
        )
        assert api.status_code == 200


# ------------------------------------------------------------------------------------------ sessions


async def test_logging_out_ends_the_session_and_revokes_the_token(dash: Dash) -> None:
    client = await dash.login()
    cookie = client.cookies["dscgg_session"]
    csrf = await dash.csrf(client)
    out = await client.post("/auth/logout", data={"csrf": csrf})
    assert out.status_code == 200
    assert "You are logged out" in out.text
    assert await session_rows(dash) == []
    assert dash.wired.discord.revoked_tokens == [OAUTH_TOKEN]
    replay = dash.client()
    replay.cookies.set("dscgg_session", cookie)
    assert (await replay.get(links_path(dash))).status_code == 401


async def test_logging_out_needs_the_csrf_token(dash: Dash) -> None:
    client = await dash.login()
    refused = await client.post("/auth/logout", data={"csrf": "nope"})
    assert refused.status_code == 403
    assert len(await session_rows(dash)) == 1
    confirm = await client.get("/auth/logout")
    assert confirm.status_code == 200
    assert "Log out?" in confirm.text


async def test_a_session_idle_for_seven_days_is_over(dash: Dash) -> None:
    client = await dash.login()
    assert (await client.get(links_path(dash))).status_code == 200
    later = utc_now() + IDLE + timedelta(seconds=1)
    dash.app.sessions._clock = lambda: later
    ended = await client.get(links_path(dash))
    assert ended.status_code == 401
    assert "Your session has ended" in ended.text
    assert await session_rows(dash) == []
    assert "dscgg_session" not in client.cookies


async def test_a_session_ends_with_its_discord_token(dash: Dash) -> None:
    dash.wired.discord.oauth_expires_in = 3600
    client = await dash.login()
    later = utc_now() + timedelta(hours=1, seconds=1)
    dash.app.sessions._clock = lambda: later
    assert (await client.get(links_path(dash))).status_code == 401
    assert await session_rows(dash) == []


async def test_a_token_discord_no_longer_accepts_ends_the_session(dash: Dash) -> None:
    dash.app.api.identities = Identities(dash.wired.bot, ttl=0)
    client = await dash.login()
    del dash.wired.discord.oauth_tokens[OAUTH_TOKEN]  # revoked on Discord's side
    ended = await client.get(links_path(dash))
    assert ended.status_code == 401
    assert "Your session has ended" in ended.text
    assert await session_rows(dash) == []


async def test_a_forged_session_cookie_is_nobody(dash: Dash) -> None:
    client = await dash.login()
    value = client.cookies["dscgg_session"]
    session_id, _, signature = value.rpartition(".")
    forger = dash.client()
    forger.cookies.set("dscgg_session", f"{session_id}.{'A' * len(signature)}")
    assert (await forger.get(links_path(dash))).status_code == 401
    forger.cookies.set("dscgg_session", f"{'B' * len(session_id)}.{signature}")
    assert (await forger.get(links_path(dash))).status_code == 401


# ------------------------------------------------------------------------------------------ security


async def test_every_answer_carries_the_security_headers(dash: Dash) -> None:
    client = await dash.login()
    for path in ("/", links_path(dash), f"{links_path(dash)}/keys", "/nowhere", "/assets/dashboard.css"):
        answer = await client.get(path)
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp, path
        assert "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert "default-src 'none'" in csp
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
    page = await client.get(links_path(dash))
    assert page.headers["cache-control"] == "no-store"
    # No inline script or style anywhere: everything comes from /assets.
    assert "<script>" not in page.text
    assert "style=" not in page.text
    assert "<style" not in page.text


async def test_assets_are_served_by_the_bot_with_long_caching(dash: Dash) -> None:
    client = dash.client()
    page = (await client.get("/")).text
    href = re.search(r'href="(/assets/dashboard\.css\?v=[0-9a-f]+)"', page)
    assert href is not None
    css = await client.get(href.group(1))
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert "immutable" in css.headers["cache-control"]
    js = await client.get("/assets/dashboard.js")
    assert "javascript" in js.headers["content-type"]
    assert js.headers["cache-control"] == "no-cache"
    assert (await client.get("/assets/../settings.py")).status_code == 404
    assert (await client.get("/assets/nothing.js")).status_code == 404
    # Nothing is loaded from another origin.
    assert not re.search(r'(src|href)="https?://', page.replace(dash.url, ""))


async def test_a_form_without_this_sessions_csrf_token_changes_nothing(dash: Dash) -> None:
    await dash.set_token()
    client = await dash.login()
    form = {"slug": "csrfless", "redirect": INVITE}
    missing = await client.post(f"{links_path(dash)}/links", data=form)
    assert missing.status_code == 403
    assert "This form has expired" in missing.text
    wrong = await client.post(f"{links_path(dash)}/links", data={**form, "csrf": "x" * 43})
    assert wrong.status_code == 403
    # Another session's token does not do either.
    other = await dash.login()
    theirs = await dash.csrf(other)
    assert (await client.post(f"{links_path(dash)}/links", data={**form, "csrf": theirs})).status_code == 403
    # From another origin, even with the right token.
    mine = await dash.csrf(client)
    foreign = await client.post(
        f"{links_path(dash)}/links", data={**form, "csrf": mine}, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    assert "csrfless" not in dash.wired.dscgg.links
    assert await dash.wired.bot.link_records.search(dash.guild_id, "", 10) == []


async def test_hostile_link_text_is_escaped_everywhere(dash: Dash) -> None:
    await dash.set_token()
    client = await dash.login()
    created = await post_form(
        client,
        f"{links_path(dash)}/links",
        {"slug": "evil", "redirect": INVITE, "title": HOSTILE, "description": HOSTILE},
    )
    assert created.status_code == 200, created.text
    pages = [
        await client.get(f"{links_path(dash)}/links/evil"),
        await client.get(f"{links_path(dash)}/links/evil/card"),
        await client.get(f"{links_path(dash)}/audit"),
    ]
    for page in pages:
        assert "<script>alert" not in page.text
        assert "<img src=x" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in pages[0].text
    assert "&lt;script&gt;" in pages[1].text
    # A javascript: redirect or image is refused with the slash command's words.
    for field, value in (("redirect", "javascript:alert(1)"), ("image", "javascript:alert(1)")):
        refused = await post_form(
            client, f"{links_path(dash)}/links", {"slug": "js", "redirect": INVITE, field: value}
        )
        assert refused.status_code == 422
        assert f"Check the <code>{field}</code> option" in refused.text
    assert "js" not in dash.wired.dscgg.links


# ------------------------------------------------------------------------------------------ access


async def test_a_member_without_manage_server_gets_no_server_page(dash: Dash) -> None:
    await dash.set_token()
    client = await dash.login(MEMBER_OAUTH)
    picker = await client.get("/")
    assert "No server to manage yet" in picker.text
    for path in ("", "/keys", "/audit", "/settings", "/links/x", "/links/x/card"):
        page = await client.get(f"{links_path(dash)}{path}")
        assert page.status_code == 403, path
        assert "You can't manage this server" in page.text
    csrf = await dash.csrf(client)
    post = await client.post(f"{links_path(dash)}/keys", data={"csrf": csrf, "name": "sneaky"})
    assert post.status_code == 403
    assert await dash.wired.bot.api_keys.list(dash.guild_id) == []


async def test_servers_without_the_bot_or_the_user_are_not_found(dash: Dash) -> None:
    client = await dash.login()
    for guild in (NO_BOT_GUILD, dash.wired.discord.guild_ids[2], 12345, "abc"):
        page = await client.get(f"/servers/{guild}")
        assert page.status_code == 404, guild
        assert "No such server" in page.text


async def test_every_page_checks_access_again(dash: Dash) -> None:
    await dash.set_token()
    dash.app.api.identities = Identities(dash.wired.bot, ttl=0)  # no 60 s memory of the login
    client = await dash.login()
    assert (await client.get(links_path(dash))).status_code == 200
    csrf = await dash.csrf(client)
    guilds = dash.wired.discord.guild_ids
    dash.wired.discord.add_oauth_token(OAUTH_TOKEN, ADMIN.id, [(guilds[0], 0, False)], name="admin")
    assert (await client.get(links_path(dash))).status_code == 403
    answer = await client.post(
        f"{links_path(dash)}/links", data={"csrf": csrf, "slug": "late", "redirect": INVITE}
    )
    assert answer.status_code == 403
    assert "late" not in dash.wired.dscgg.links
    dash.wired.discord.add_oauth_token(
        OAUTH_TOKEN, ADMIN.id, [(guilds[0], MANAGE_GUILD, False)], name="admin"
    )
    assert (await client.get(links_path(dash))).status_code == 200


# ------------------------------------------------------------------------------------------ pages


async def test_the_first_html_has_the_links_keys_and_audit_log(dash: Dash) -> None:
    """Progressive enhancement: what the script adds is only the dsc.gg data of each row."""
    for slug in ("alpha", "beta"):
        await dash.wired.bot.link_records.record(dash.guild_id, slug, ADMIN.id)
    await dash.wired.bot.api_keys.create(dash.guild_id, ADMIN.id, "deploy")
    client = await dash.login()
    links = await client.get(links_path(dash))
    assert f'href="/servers/{dash.guild_id}/links/alpha"' in links.text
    assert "dsc.gg/beta" in links.text
    assert "@admin" in links.text
    assert f'data-card="/servers/{dash.guild_id}/links/alpha/card"' in links.text
    keys = await client.get(f"{links_path(dash)}/keys")
    assert "deploy" in keys.text
    assert "dscggbot_" not in keys.text
    audit = await client.get(f"{links_path(dash)}/audit")
    assert "@admin</span> created the API key <strong>deploy</strong>." in audit.text


async def test_links_sort_by_column(dash: Dash) -> None:
    for slug in ("banana", "apple", "cherry"):
        await dash.wired.bot.link_records.record(dash.guild_id, slug, ADMIN.id)
    client = await dash.login()

    def order(page: str) -> list[str]:
        return re.findall(r'class="slug" href="[^"]+">dsc\.gg/(\w+)<', page)

    assert order((await client.get(links_path(dash))).text) == ["apple", "banana", "cherry"]
    assert order((await client.get(f"{links_path(dash)}?sort=slug&dir=desc")).text) == [
        "cherry",
        "banana",
        "apple",
    ]
    newest = order((await client.get(f"{links_path(dash)}?sort=created&dir=desc")).text)
    assert newest == ["cherry", "apple", "banana"]
    assert order((await client.get(f"{links_path(dash)}?sort=bogus")).text) == ["apple", "banana", "cherry"]
    await dash.wired.bot.link_records.record(dash.guild_id, "aardvark", MEMBER.id)  # "member" > "admin"
    by_creator = order((await client.get(f"{links_path(dash)}?sort=creator&dir=desc")).text)
    assert by_creator[0] == "aardvark"
    assert order((await client.get(f"{links_path(dash)}?sort=creator")).text)[-1] == "aardvark"


async def test_creating_editing_and_deleting_a_link_is_audited_as_the_user(dash: Dash) -> None:
    await dash.set_token()
    client = await dash.login()
    created = await post_form(
        client,
        f"{links_path(dash)}/links",
        {"slug": "https://dsc.gg/Mine", "redirect": INVITE, "color": "#58f"},
    )
    assert created.status_code == 200
    assert "Created <strong>dsc.gg/Mine</strong>." in created.text
    assert dash.wired.dscgg.links["Mine"]["meta"]["color"] == "#5588ff"

    page = await client.get(f"{links_path(dash)}/links/Mine")
    csrf = csrf_of(page.text)
    edited = await client.post(
        f"{links_path(dash)}/links/Mine",
        data={
            "csrf": csrf,
            "orig_redirect": INVITE,
            "orig_type": "server",
            "orig_title": "",
            "orig_description": "",
            "orig_image": "",
            "orig_color": "#5588ff",
            "orig_unlisted": "",
            "redirect": INVITE,
            "type": "server",
            "title": "Mine",
            "description": "two\r\nlines",
            "color": "",
        },
    )
    assert edited.status_code == 200, edited.text
    assert "Updated <strong>dsc.gg/Mine</strong>: Title, Description, and Colour (removed)." in edited.text
    stored = dash.wired.dscgg.links["Mine"]["meta"]
    assert stored["title"] == "Mine"
    assert stored["description"] == "two\nlines"
    assert stored["color"] is None

    confirm = await client.get(f"{links_path(dash)}/links/Mine/delete")
    assert "Delete dsc.gg/Mine?" in confirm.text
    deleted = await client.post(f"{links_path(dash)}/links/Mine/delete", data={"csrf": csrf_of(confirm.text)})
    assert "Deleted <strong>dsc.gg/Mine</strong>." in deleted.text
    assert "Mine" not in dash.wired.dscgg.links

    events = await dash.wired.bot.server_info.events(dash.guild_id, 10)
    kinds = [stored.event.kind for stored in events]
    assert kinds[:3] == [EventKind.LINK_DELETED, EventKind.LINK_EDITED, EventKind.LINK_CREATED]
    assert {stored.event.actor_id for stored in events[:3]} == {ADMIN.id}


async def test_a_colour_dsc_gg_refuses_still_reports_the_created_link(dash: Dash) -> None:
    await dash.set_token()
    dash.wired.dscgg.fail_next("code", method="PATCH", code="bad_request", status=400, message="Bad colour")
    client = await dash.login()
    created = await post_form(
        client, f"{links_path(dash)}/links", {"slug": "pink", "redirect": INVITE, "color": "#ff00ff"}
    )
    assert created.status_code == 200, created.text
    assert "Created <strong>dsc.gg/pink</strong>." in created.text
    text = visible_text(created.text)
    assert "The link exists, but its colour was not applied: dsc.gg refused the request: Bad colour" in text
    assert "pink" in dash.wired.dscgg.links


async def test_a_refused_form_shows_the_slash_commands_words_and_keeps_what_was_typed(dash: Dash) -> None:
    client = await dash.login()
    typed = {"slug": "nice", "redirect": INVITE, "title": "Kept title", "password": "hunter2!"}
    no_token = await post_form(client, f"{links_path(dash)}/links", typed)
    assert no_token.status_code == 409
    text = visible_text(no_token.text)
    assert "This server hasn't set up a dsc.gg token yet." in text
    assert f'href="/servers/{dash.guild_id}/settings"' in no_token.text
    assert 'value="Kept title"' in no_token.text
    assert "hunter2!" not in no_token.text  # never echoed

    await dash.set_token()
    bad = await post_form(client, f"{links_path(dash)}/links", {**typed, "slug": "two words"})
    assert bad.status_code == 422
    assert 'id="f-slug" name="slug" type="text" value="two words"' in bad.text
    assert 'aria-invalid="true"' in bad.text
    assert "Check the <code>slug</code> option: it contains a space" in bad.text

    dash.wired.dscgg.add_link("taken", owner_id=999, redirect=INVITE)
    taken = await post_form(client, f"{links_path(dash)}/links", {**typed, "slug": "taken"})
    assert taken.status_code == 409
    assert "is already taken. Pick another slug and try again." in visible_text(taken.text)

    other = await client.get(f"{links_path(dash)}/links/taken")
    assert other.status_code == 409
    assert "isn't managed by this server" in visible_text(other.text)
    gone = await client.get(f"{links_path(dash)}/links/taken/delete")
    assert "isn't managed by this server" in visible_text(gone.text)


async def test_nothing_changed_is_said_like_link_edit(dash: Dash) -> None:
    await dash.set_token()
    await dash.wired.bot.links.create(dash.guild_id, ADMIN.id, new_link_options(slug="same", redirect=INVITE))
    client = await dash.login()
    page = await client.get(f"{links_path(dash)}/links/same")
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    unchanged = {key: value for key, value in form.items() if key.startswith("orig_")}
    answer = await client.post(
        f"{links_path(dash)}/links/same",
        data={
            "csrf": csrf_of(page.text),
            **unchanged,
            **{k.removeprefix("orig_"): v for k, v in unchanged.items()},
        },
    )
    assert answer.status_code == 422
    assert "Nothing to change on" in visible_text(answer.text)


async def test_editing_one_field_of_a_link_keeps_a_type_the_form_does_not_offer(dash: Dash) -> None:
    await dash.set_token()
    dash.wired.dscgg.add_link("plain", owner_id=ADMIN.id, redirect=INVITE, type="link")
    await dash.wired.bot.link_records.record(dash.guild_id, "plain", ADMIN.id)
    client = await dash.login()
    page = await client.get(f"{links_path(dash)}/links/plain")
    assert '<option value="link" selected>Link</option>' in page.text
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    shown = {key.removeprefix("orig_"): html.unescape(value) for key, value in form.items() if key != "csrf"}
    answer = await client.post(
        f"{links_path(dash)}/links/plain",
        data={"csrf": csrf_of(page.text), **form, **shown, "title": "Plain"},
    )
    assert "Updated <strong>dsc.gg/plain</strong>: Title." in answer.text
    assert dash.wired.dscgg.links["plain"]["type"] == "link"


async def test_logging_in_again_replaces_the_browsers_session(dash: Dash) -> None:
    client = await dash.login()
    again = await dash.consent(client, await client.get("/auth/login"), "authorize")
    assert again.status_code == 200
    assert len(await session_rows(dash)) == 1


async def test_an_api_key_is_shown_once_and_deleted_after_a_confirmation(dash: Dash) -> None:
    client = await dash.login()
    keys_path = f"{links_path(dash)}/keys"
    created = await post_form(client, keys_path, {"name": "  ci  "})
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    key = re.search(
        r'id="new-key" class="mono" type="text" readonly value="(dscggbot_[\w-]{43})"', created.text
    )
    assert key is not None
    assert "it will not be shown again" in created.text
    auth = {"Authorization": f"Bearer {key.group(1)}"}
    assert (await client.get(f"/v1/guilds/{dash.guild_id}", headers=auth)).status_code == 200
    listed = await client.get(keys_path)
    assert key.group(1) not in listed.text

    record = (await dash.wired.bot.api_keys.list(dash.guild_id))[0]
    confirm = await client.get(f"{keys_path}/{record.id}/delete")
    assert "Delete the API key “ci”?" in confirm.text
    deleted = await client.post(f"{keys_path}/{record.id}/delete", data={"csrf": csrf_of(confirm.text)})
    assert "Deleted the API key <strong>ci</strong>." in deleted.text
    assert (await client.get(f"/v1/guilds/{dash.guild_id}", headers=auth)).status_code == 401
    assert (await client.get(f"{keys_path}/{record.id}/delete")).status_code == 404
    empty = await post_form(client, keys_path, {"name": "   "})
    assert empty.status_code == 422
    assert "Check the <code>name</code> option: it is empty" in empty.text


async def test_settings_set_and_clear_the_token_and_pick_the_log_channel(dash: Dash) -> None:
    client = await dash.login()
    path = f"{links_path(dash)}/settings"
    rejected = await post_form(client, f"{path}/token", {"token": "not-a-valid-key-123"})
    assert rejected.status_code == 409
    assert "dsc.gg rejected that token, so nothing was saved." in visible_text(rejected.text)
    saved = await post_form(client, f"{path}/token", {"token": ADMIN_TOKEN}, csrf=csrf_of(rejected.text))
    assert f"…{ADMIN_TOKEN[-4:]}" in saved.text
    assert ADMIN_TOKEN not in saved.text

    guild = dash.wired.discord.guild(dash.guild_id)
    assert "#bot-log" in saved.text
    assert "#general" in saved.text
    picked = await client.post(
        f"{path}/log-channel", data={"csrf": csrf_of(saved.text), "channel": str(guild.log_channel_id)}
    )
    assert "The audit log channel is set" in picked.text
    assert (await dash.wired.bot.guild_settings.get(dash.guild_id)).log_channel_id == guild.log_channel_id
    locked = await client.post(
        f"{path}/log-channel", data={"csrf": csrf_of(picked.text), "channel": str(guild.locked_channel_id)}
    )
    assert locked.status_code == 409
    assert "I'm missing" in visible_text(locked.text)
    foreign = await client.post(f"{path}/log-channel", data={"csrf": csrf_of(picked.text), "channel": "42"})
    assert foreign.status_code == 422
    off = await client.post(f"{path}/log-channel", data={"csrf": csrf_of(picked.text), "channel": ""})
    assert "The audit log channel is off." in off.text

    confirm = await client.get(f"{path}/token/clear")
    cleared = await client.post(f"{path}/token/clear", data={"csrf": csrf_of(confirm.text)})
    assert "The dsc.gg token is removed." in cleared.text
    assert await dash.wired.bot.token_store.info(dash.guild_id) is None


async def test_the_log_channel_is_checked_over_rest_without_the_gateways_cache(dash: Dash) -> None:
    """``python -m bot api`` has no guild cache: the channels and the bot's member come from REST."""
    bot = dash.wired.bot
    directory = DiscordDirectory(bot, bot.audit)
    guild = dash.wired.discord.guild(dash.guild_id)
    bot.api_only = True
    try:
        channels = await directory.text_channels(dash.guild_id)
        assert [channel.name for channel in channels] == ["general", "bot-log", "no-access"]
        status = await directory.set_log_channel(dash.guild_id, guild.log_channel_id, ADMIN.id)
        assert status.channel_id == guild.log_channel_id
        with pytest.raises(Exception, match="unusable"):
            await directory.set_log_channel(dash.guild_id, guild.locked_channel_id, ADMIN.id)
    finally:
        bot.api_only = False
    routes = {request.route for request in dash.wired.discord.requests}
    assert {"get_guild", "get_guild_channels", "get_guild_member"} <= routes


async def test_unknown_addresses_are_html_for_people_and_problems_under_v1(dash: Dash) -> None:
    client = dash.client()
    page = await client.get("/nowhere")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Page not found" in page.text
    problem = await client.get("/v1/nowhere")
    assert problem.status_code == 404
    assert problem.headers["content-type"].startswith("application/problem+json")
    # The API still wants JSON bodies; the dashboard's forms do not.
    form = await client.post("/v1/top", data={"a": "b"})
    assert form.status_code == 415


# ------------------------------------------------------------------------------------------ languages


async def test_pages_follow_accept_language(dash: Dash) -> None:
    client = dash.client()
    landing = await client.get("/", headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"})
    assert '<html lang="de">' in landing.text
    assert landing.headers["content-language"] == "de"
    assert "accept-language" in landing.headers["vary"].lower()
    assert "Mit Discord anmelden" in visible_text(landing.text)
    assert "Log in with Discord" not in visible_text(landing.text)
    missing = await client.get("/nowhere", headers={"Accept-Language": "pt-BR"})
    assert missing.status_code == 404
    assert '<html lang="pt-BR">' in missing.text
    assert "Página não encontrada" in visible_text(missing.text)
    english = await client.get("/", headers={"Accept-Language": "ja"})
    assert '<html lang="en-US">' in english.text
    assert "Log in with Discord" in visible_text(english.text)


async def test_refusals_and_the_audit_log_are_in_the_readers_language(dash: Dash) -> None:
    client = await dash.login()
    client.headers["Accept-Language"] = "de"
    picker = visible_text((await client.get("/")).text)
    assert "Deine Server" in picker
    assert "Your servers" not in picker
    typed = {"slug": "nice", "redirect": INVITE}
    no_token = await post_form(client, f"{links_path(dash)}/links", typed)
    assert no_token.status_code == 409
    assert "Dieser Server hat noch keinen dsc.gg-Token eingerichtet." in visible_text(no_token.text)
    assert "Abmelden" in visible_text(no_token.text)
    assert "Einstellungen" in visible_text(no_token.text)  # the server's tabs

    await dash.set_token()
    created = await post_form(client, f"{links_path(dash)}/links", typed)
    assert created.status_code == 200
    audit = await client.get(f"{links_path(dash)}/audit")
    shown = visible_text(audit.text)
    assert "Link erstellt" in shown
    assert "Änderungen anzeigen" in shown
    assert "Show the change" not in shown
