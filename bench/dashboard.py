"""The web dashboard of the real bot process: how long the Links tab of a server with 100 links takes.

A browser logged in through the fake Discord's consent page (the real OAuth code exchange), then:

- the Links tab (``GET /servers/{id}``: session, Discord login (kept 60 s), access check, the 100
  records sorted, their creators' names, the page rendered), one request at a time, alternating with a
  bare endpoint of the same server (``GET /problems/not-found``); p50 and p99 of each. Goal: p50 of the
  Links tab <= 50 ms;
- the lazy part: every row's dsc.gg data (``…/links/{slug}/card``, one ``get_link`` each against the
  fake dsc.gg), 4 at a time as the page's script fetches them: the time until all 100 rows are filled,
  and the p50 of one row.
"""

from __future__ import annotations

import asyncio
import re
import socket
import tempfile
import time
from pathlib import Path
from urllib.parse import urljoin

import aiohttp

from bench.support import (
    INVITE,
    READY_MARKER,
    bot_process,
    dscgg_process,
    ms,
    new_key,
    percentile,
    seed_tokens,
)
from tests.fakes.discord import MANAGE_GUILD, FakeDiscord

LINKS = 100
SAMPLES = 300
PARALLEL_CARDS = 4
P50_GOAL_MS = 50.0
TOKEN = "bench-dashboard-token-01"
OAUTH = "bench-dashboard-oauth-token"
USER_ID = 1_180_000_000_000_000_777
CLIENT_SECRET = "bench-client-secret"
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]*)" value="([^"]*)">')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _log_in(session: aiohttp.ClientSession, base: str) -> None:
    """/auth/login → the fake Discord's consent page → Authorize → /auth/callback (the session cookie)."""
    async with session.get(f"{base}/auth/login", allow_redirects=False) as started:
        consent_url = started.headers["Location"]
    async with session.get(consent_url) as consent:
        fields = dict(_HIDDEN.findall(await consent.text()))
    async with session.post(consent_url, data={**fields, "decision": "authorize"}) as landed:
        assert landed.status == 200, landed.status
        assert landed.url.path == "/", landed.url


async def _time(session: aiohttp.ClientSession, url: str) -> float:
    started = time.perf_counter()
    async with session.get(url) as response:
        await response.read()
        assert response.status == 200, (url, response.status)
    return time.perf_counter() - started


async def main() -> None:
    port = _free_port()
    db_key = new_key()
    slugs = [f"link{index:03d}" for index in range(LINKS)]
    seed = {
        "keys": [{"token": TOKEN, "user_id": USER_ID}],
        "links": [
            {"slug": slug, "owner_id": USER_ID, "redirect": INVITE, "meta": {"title": f"Link {slug}"}}
            for slug in slugs
        ],
    }
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        workdir = Path(tmp)
        async with FakeDiscord(guilds=1) as fake, dscgg_process(seed, "--no-rate-limits") as dscgg_url:
            guild = fake.guild_ids[0]
            fake.add_oauth_token(OAUTH, USER_ID, [(guild, MANAGE_GUILD, False, "Bench")], name="bench")
            fake.oauth_client = (fake.app_id, CLIENT_SECRET)
            database = workdir / "data" / "bot.sqlite3"
            await seed_tokens(database, db_key, {guild: TOKEN}, set_by=USER_ID, links=slugs)
            async with bot_process(
                fake,
                workdir,
                dscgg_url=dscgg_url,
                TOKEN_ENCRYPTION_KEYS=db_key,
                LOG_LEVEL="WARNING",
                API_PORT=str(port),
                DISCORD_CLIENT_ID=str(fake.app_id),
                DISCORD_CLIENT_SECRET=CLIENT_SECRET,
                DISCORD_OAUTH_AUTHORIZE_URL=f"{fake.base_url}/oauth2/authorize",
            ) as bot:
                await bot.wait_for_log(READY_MARKER, timeout=60)
                base = f"http://127.0.0.1:{port}"
                jar = aiohttp.CookieJar(unsafe=True)  # cookies for an IP address
                async with aiohttp.ClientSession(cookie_jar=jar) as session:
                    await _log_in(session, base)
                    links_url = f"{base}/servers/{guild}"
                    async with session.get(links_url) as page:
                        html = await page.text()
                    cards = [urljoin(base, path) for path in re.findall(r'data-card="([^"]+)"', html)]
                    assert len(cards) == LINKS, len(cards)
                    bare_url = f"{base}/problems/not-found"
                    for _ in range(20):  # warm up
                        await _time(session, links_url)
                        await _time(session, bare_url)
                    tab: list[float] = []
                    bare: list[float] = []
                    for _ in range(SAMPLES):
                        tab.append(await _time(session, links_url))
                        bare.append(await _time(session, bare_url))

                    queue = list(cards)
                    one: list[float] = []

                    async def fetcher() -> None:
                        while queue:
                            one.append(await _time(session, queue.pop()))

                    started = time.perf_counter()
                    await asyncio.gather(*(fetcher() for _ in range(PARALLEL_CARDS)))
                    all_cards = time.perf_counter() - started

    print(f"Links tab of a server with {LINKS} links, {SAMPLES} requests one at a time (logged in)")
    for p in (50, 99):
        print(
            f"p{p}: links tab {ms(percentile(tab, p))} ms, bare endpoint {ms(percentile(bare, p))} ms, "
            f"added {ms(percentile(tab, p) - percentile(bare, p))} ms"
        )
    p50 = percentile(tab, 50) * 1000
    verdict = "ok" if p50 <= P50_GOAL_MS else "MISSED"
    print(f"links tab p50: {p50:.1f} ms (goal <= {P50_GOAL_MS:g} ms, {verdict})")
    print(
        f"dsc.gg data of all {LINKS} rows, {PARALLEL_CARDS} at a time: {all_cards * 1000:.0f} ms "
        f"(one row p50 {ms(percentile(one, 50))} ms, p99 {ms(percentile(one, 99))} ms)"
    )
