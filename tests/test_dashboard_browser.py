"""The web dashboard in a real browser: Debian's Chromium (``/usr/bin/chromium``, installed by
``.ci/run``) driven by Playwright, against the dashboard served on loopback and the fake Discord's
consent page. No browser is downloaded: Playwright launches that executable.

The run also writes a screenshot of each page at desktop and phone width (and two in dark mode) to
``docs/screenshots/`` (the README shows two of them). Pages are deterministic enough (fixed names, times
shown as "now") that an unchanged page makes the same file.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from bot import i18n
from tests.fixtures.api import MEMBER_OAUTH
from tests.fixtures.bot import ADMIN_TOKEN
from tests.fixtures.dashboard import GUILD_NAMES, Dash
from tests.fixtures.services import missing_service
from tests.harness import ADMIN

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_PRESENT = CHROMIUM.exists()
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
INVITE = "https://discord.gg/dashtest"
HOSTILE_TITLE = '<script>alert("title")</script>"><img src=x onerror=alert(1)>'
HOSTILE_DESCRIPTION = "javascript:alert(2) <b>bold?</b> ' onmouseover='alert(3)"
#: Links the server has before the test: (slug, title, clicks).
SEEDED = (("art-corner", "Art Corner", 842), ("gaming-hub", "Gaming Hub: weekly tournaments", 12_907))
#: True when neither the page nor any table scrolls sideways.
NO_OVERFLOW = """() => document.documentElement.scrollWidth <= window.innerWidth
    && [...document.querySelectorAll(".table-wrap")].every(w => w.scrollWidth <= w.clientWidth)"""
#: True when every field a person can fill in has a label.
ALL_LABELLED = """() => [...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
    .every(field => field.labels && field.labels.length > 0)"""
#: Milliseconds a page may take to show what a test waits for.
WAIT = 10_000


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM_PRESENT:
        missing_service(
            f"{CHROMIUM} is missing: the browser tests need Debian's chromium (apt-get install chromium)"
        )
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def new_context(browser: Browser, dash: Dash, **options: Any) -> BrowserContext:
    context = await browser.new_context(
        viewport=options.pop("viewport", DESKTOP),
        base_url=dash.url,
        locale=options.pop("locale", "en-GB"),
        timezone_id="UTC",
        **options,
    )
    context.set_default_timeout(WAIT)
    return context


def watch(page: Page) -> list[str]:
    """Every dialog (a script injected by a hostile title would open one) and page error, as text."""
    seen: list[str] = []

    async def dismiss(dialog: Any) -> None:
        seen.append(f"dialog: {dialog.message}")
        await dialog.dismiss()

    page.on("dialog", dismiss)
    page.on("pageerror", lambda error: seen.append(f"page error: {error}"))
    return seen


async def shoot(page: Page, name: str, **options: Any) -> None:
    """A full-page screenshot into docs/screenshots/<name>.png; a file whose picture did not change is
    left as it is (Chromium's anti-aliasing of rounded corners varies by one shade between runs)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.mouse.move(0, 0)  # no row highlighted by where the last click left the pointer
    picture = await page.screenshot(full_page=True, animations="disabled", mask_color="#c9cde0", **options)
    path = SCREENSHOTS / f"{name}.png"
    if not (path.exists() and same_picture(path.read_bytes(), picture)):
        path.write_bytes(picture)


def _png_rows(data: bytes) -> bytes | None:
    """The (still filtered) pixel rows of a PNG: its IDAT chunks, decompressed."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    chunks, position = [], 8
    while position + 8 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        if kind == b"IDAT":
            chunks.append(data[position + 8 : position + 8 + length])
        position += 12 + length
    return zlib.decompress(b"".join(chunks))


def same_picture(old: bytes, new: bytes) -> bool:
    """True when the two PNGs show the same picture up to a shade or two per byte (the filtered rows of a
    pixel that changed by one shade differ by about one, there and next to it; a changed word or
    colour differs by far more)."""
    if old == new:
        return True
    before, after = _png_rows(old), _png_rows(new)
    if before is None or after is None or len(before) != len(after):
        return False
    return all(min((a - b) % 256, (b - a) % 256) <= 2 for a, b in zip(before, after, strict=True) if a != b)


async def log_in(page: Page) -> None:
    await page.goto("/")
    await page.get_by_role("link", name="Log in with Discord").click()
    await expect(page.get_by_role("heading", name="wants to access your account")).to_be_visible()
    await page.get_by_role("button", name="Authorize").click()


async def test_an_admin_manages_links_and_keys_and_reads_the_audit_log(browser: Browser, dash: Dash) -> None:
    context = await new_context(browser, dash)
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=dash.url)
    page = await context.new_page()
    problems = watch(page)
    guild = dash.guild_id
    for slug, title, clicks in SEEDED:  # links the server already had, as a busy server would
        dash.wired.dscgg.add_link(
            slug, owner_id=ADMIN.id, redirect=INVITE, meta={"title": title}, clicks=clicks
        )
        await dash.wired.bot.link_records.record(guild, slug, ADMIN.id)

    # Logged out: the landing page. Log in through the fake Discord's consent page.
    await page.goto("/")
    await expect(page.get_by_role("link", name="Log in with Discord")).to_be_visible()
    await shoot(page, "login-desktop")
    await log_in(page)
    await expect(page.get_by_role("heading", name="Your servers")).to_be_visible()
    await expect(page.get_by_role("link", name="Add to server")).to_have_count(1)
    await shoot(page, "servers-desktop")

    # Pick the server; set its dsc.gg token in Settings.
    await page.get_by_role("link", name=GUILD_NAMES[0]).click()
    await expect(page.get_by_role("heading", name="Links", exact=True)).to_be_visible()
    await page.get_by_role("link", name="Settings").click()
    await page.locator("#f-token").fill(ADMIN_TOKEN)
    await page.get_by_role("button", name="Save token").click()
    await expect(page.get_by_role("status")).to_contain_text(f"…{ADMIN_TOKEN[-4:]}")
    await page.locator("#f-channel").select_option(label="#bot-log")
    await page.get_by_role("button", name="Save channel").click()
    await expect(page.get_by_role("status")).to_contain_text("audit log channel is set")
    await shoot(page, "settings-desktop")

    # Create a link (a refusal first: the slash command's sentence, next to the field).
    await page.get_by_role("link", name="Links").click()
    await page.locator("summary", has_text="New link").click()
    await page.locator("#f-slug").fill("my community")
    await page.locator("#f-redirect").fill(INVITE)
    await page.get_by_role("button", name="Create link").click()
    await expect(page.get_by_role("alert")).to_contain_text("Check the slug option: it contains a space")
    await expect(page.locator("#f-slug")).to_have_attribute("aria-invalid", "true")
    await page.locator("#f-slug").fill("community")
    await page.locator("#f-title").fill("Our Community")
    await page.get_by_role("button", name="Create link").click()
    await expect(page.get_by_role("status")).to_contain_text("Created dsc.gg/community")
    row = page.locator("tr", has=page.get_by_role("link", name="dsc.gg/community", exact=True))
    await expect(row).to_have_attribute("data-loaded", "true")
    await expect(row).to_contain_text("Our Community")
    await expect(row).to_contain_text(INVITE[:20])
    assert "community" in dash.wired.dscgg.links
    assert await page.evaluate(NO_OVERFLOW)
    await shoot(page, "links-desktop")

    # A hostile title and description show as text, wherever they appear.
    await page.locator("summary", has_text="New link").click()
    await page.locator("#f-slug").fill("hostile")
    await page.locator("#f-redirect").fill(INVITE)
    await page.locator("#f-title").fill(HOSTILE_TITLE)
    await page.locator("#f-description").fill(HOSTILE_DESCRIPTION)
    await page.get_by_role("button", name="Create link").click()
    await expect(page.get_by_role("status")).to_contain_text("Created dsc.gg/hostile")
    hostile = page.locator("tr", has=page.get_by_role("link", name="dsc.gg/hostile", exact=True))
    await expect(hostile).to_have_attribute("data-loaded", "true")
    await expect(hostile).to_contain_text(HOSTILE_TITLE)
    await page.get_by_role("link", name="dsc.gg/hostile", exact=True).click()
    await expect(page.locator(".facts")).to_contain_text(HOSTILE_TITLE)
    await expect(page.locator(".facts")).to_contain_text(HOSTILE_DESCRIPTION)
    await expect(page.locator("#f-title")).to_have_value(HOSTILE_TITLE)
    assert await page.locator("img[onerror], script:not([src])").count() == 0

    # Edit the first link.
    await page.goto(f"/servers/{guild}")
    await page.get_by_role("link", name="Edit dsc.gg/community").click()
    await page.locator("#f-title").fill("Our Great Community")
    await page.locator("#f-unlisted").check()
    await page.get_by_role("button", name="Save changes").click()
    await expect(page.get_by_role("status")).to_contain_text("Updated dsc.gg/community: Title and Unlisted")
    await expect(page.locator(".facts")).to_contain_text("Our Great Community")
    assert dash.wired.dscgg.links["community"]["meta"]["title"] == "Our Great Community"
    await shoot(page, "link-desktop")

    # Delete it, after the confirmation.
    await page.goto(f"/servers/{guild}")
    await page.get_by_role("link", name="Delete dsc.gg/community").click()
    await expect(page.get_by_role("heading", name="Delete dsc.gg/community?")).to_be_visible()
    await shoot(page, "link-delete-desktop")
    await page.get_by_role("button", name="Delete dsc.gg/community").click()
    await expect(page.get_by_role("status")).to_contain_text("Deleted dsc.gg/community")
    assert "community" not in dash.wired.dscgg.links

    # An API key: created, shown once, copied, used with the HTTP API, deleted, refused.
    await page.get_by_role("link", name="API keys").click()
    await page.locator("#f-name").fill("ci")
    await page.get_by_role("button", name="Create key").click()
    await expect(page.get_by_text("it will not be shown again")).to_be_visible()
    key = await page.locator("#new-key").input_value()
    assert key.startswith("dscggbot_")
    await page.get_by_role("button", name="Copy").click()
    await expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert await page.evaluate("navigator.clipboard.readText()") == key
    await shoot(
        page, "key-created-desktop", mask=[page.locator("#new-key"), page.locator(".key-created code.wrap")]
    )
    async with httpx.AsyncClient(base_url=dash.url) as api:
        auth = {"Authorization": f"Bearer {key}"}
        assert (await api.get(f"/v1/guilds/{guild}", headers=auth)).status_code == 200
        await page.goto(f"/servers/{guild}/keys")
        await expect(page.locator("#new-key")).to_have_count(0)  # shown once
        await page.get_by_role("link", name="Delete the key ci").click()
        await page.get_by_role("button", name="Delete the key").click()
        await expect(page.get_by_role("status")).to_contain_text("Deleted the API key ci")
        refused = await api.get(f"/v1/guilds/{guild}", headers=auth)
        assert refused.status_code == 401
    await shoot(page, "keys-desktop")

    # The audit tab: the same words as the log channel, newest first.
    await page.get_by_role("link", name="Audit log").click()
    events = page.locator(".event-text")
    await expect(events.nth(0)).to_have_text("@admin revoked the API key ci.")
    await expect(events.nth(1)).to_have_text("@admin created the API key ci.")
    await expect(events.nth(2)).to_have_text("@admin deleted dsc.gg/community.")
    await expect(events.nth(3)).to_have_text("@admin edited dsc.gg/community.")
    await expect(page.locator(".timeline")).to_contain_text("@admin created dsc.gg/community.")
    await expect(page.locator(".timeline")).to_contain_text("@admin set the audit log channel to #bot-log.")
    await shoot(page, "audit-desktop")

    # The same pages at phone width, and two in dark mode.
    state = await context.storage_state()
    for viewport, scheme, suffix in ((PHONE, "light", "phone"), (DESKTOP, "dark", "dark")):
        other = await new_context(browser, dash, viewport=viewport, color_scheme=scheme, storage_state=state)
        small = await other.new_page()
        problems += watch(small)
        pages = {
            "servers": "/",
            "links": f"/servers/{guild}",
            "audit": f"/servers/{guild}/audit",
        }
        if suffix == "phone":
            pages |= {
                "link": f"/servers/{guild}/links/hostile",
                "keys": f"/servers/{guild}/keys",
                "settings": f"/servers/{guild}/settings",
                "link-delete": f"/servers/{guild}/links/hostile/delete",
            }
        else:
            pages = {"links": pages["links"], "audit": pages["audit"]}
        for name, path in pages.items():
            await small.goto(path)
            for row in await small.locator("tr[data-card]").all():  # each row loads once in view
                if viewport is PHONE:
                    await row.scroll_into_view_if_needed()
                await expect(row).to_have_attribute("data-loaded", "true")
            await small.evaluate("window.scrollTo(0, 0)")
            # Nothing wider than the screen: no sideways scrolling, in the tables either.
            assert await small.evaluate(NO_OVERFLOW), f"{name} ({suffix}) is wider than the screen"
            assert await small.evaluate(ALL_LABELLED), f"{name} has an input without a label"
            await shoot(small, f"{name}-{suffix}")
        await other.close()

    # Log out: the session ends.
    await page.get_by_role("button", name="Log out").click()
    await expect(page.get_by_text("You are logged out")).to_be_visible()
    await page.goto(f"/servers/{guild}")
    await expect(page.get_by_role("link", name="Log in with Discord")).to_be_visible()
    await shoot(page, "logged-out-desktop")
    phone = await new_context(browser, dash, viewport=PHONE)
    landing = await phone.new_page()
    await landing.goto("/")
    await shoot(landing, "login-phone")
    await phone.close()

    assert problems == []
    await context.close()


async def test_a_german_browser_reads_the_dashboard_in_german(browser: Browser, dash: Dash) -> None:
    """The page's words come from the catalog (Accept-Language: de-DE); what the page script writes —
    relative times, numbers, the copy button's labels — follows the page's language too."""
    t = i18n.for_locale("de")
    context = await new_context(browser, dash, locale="de-DE")
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=dash.url)
    page = await context.new_page()
    problems = watch(page)
    await dash.set_token()
    slug, title, clicks = SEEDED[1]
    dash.wired.dscgg.add_link(slug, owner_id=ADMIN.id, redirect=INVITE, meta={"title": title}, clicks=clicks)
    await dash.wired.bot.link_records.record(dash.guild_id, slug, ADMIN.id)

    await page.goto("/")
    await page.get_by_role("link", name=t._("Log in with Discord")).click()
    await page.get_by_role("button", name="Authorize").click()  # the (fake) Discord's own page
    await expect(page.get_by_role("heading", name=t._("Your servers"))).to_be_visible()
    await page.goto(f"/servers/{dash.guild_id}")
    row = page.locator("tr[data-card]")
    await expect(row).to_have_attribute("data-loaded", "true")
    await expect(row).to_contain_text("12.907")  # German digit grouping
    await expect(row.locator("time").first).to_have_text("jetzt")
    await expect(page.locator("summary")).to_have_text(t._("New link"))
    await shoot(page, "links-de-desktop")

    # Every language fits the screen, at desktop and phone width (some words are long).
    state = await context.storage_state()
    for locale in ("de-DE", "nl-NL", "fr-FR", "es-ES", "pt-BR"):
        for viewport in (DESKTOP, PHONE):
            other = await new_context(browser, dash, viewport=viewport, locale=locale, storage_state=state)
            seen = await other.new_page()
            problems += watch(seen)
            for path in (f"/servers/{dash.guild_id}", f"/servers/{dash.guild_id}/keys"):
                await seen.goto(path)
                for card in await seen.locator("tr[data-card]").all():
                    await expect(card).to_have_attribute("data-loaded", "true")
                assert await seen.evaluate(NO_OVERFLOW), f"{path} in {locale} is wider than the screen"
            await other.close()

    await page.get_by_role("link", name=t._("API keys"), exact=True).click()
    await page.locator("#f-name").fill("ci")
    await page.get_by_role("button", name=t._("Create key")).click()
    await page.get_by_role("button", name=t._("Copy")).click()
    await expect(page.get_by_role("button", name=t._("Copied"))).to_be_visible()
    await expect(page.locator("[data-copy-status]")).to_have_text(t._("The key is on your clipboard."))
    assert t._("Copied") != "Copied"
    assert problems == []
    await context.close()


async def test_a_member_without_manage_server_sees_no_server_page(browser: Browser, dash: Dash) -> None:
    dash.wired.discord.sign_in(MEMBER_OAUTH)
    context = await new_context(browser, dash)
    page = await context.new_page()
    await log_in(page)
    await expect(page.get_by_role("heading", name="Your servers")).to_be_visible()
    await expect(page.get_by_text("No server to manage yet")).to_be_visible()
    await expect(page.locator("a.server-card")).to_have_count(0)

    answer = await page.goto(f"/servers/{dash.guild_id}")
    assert answer is not None
    assert answer.status == 403
    await expect(page.get_by_role("heading", name="You can't manage this server")).to_be_visible()
    await expect(page.get_by_role("link", name="Links")).to_have_count(0)
    await shoot(page, "no-access-desktop")
    for path in ("/keys", "/audit", "/settings"):
        answer = await page.goto(f"/servers/{dash.guild_id}{path}")
        assert answer is not None
        assert answer.status == 403
    await context.close()
