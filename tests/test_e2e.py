"""End-to-end: the real ``python -m bot`` process against the loopback fakes.

FakeDiscord and FakeDscgg run in the test's event loop; the bot runs as a subprocess through
``tests.e2e_launcher`` with a temporary database, no ``.env`` and its output captured to a file.
Every assertion reads what the fakes recorded, i.e. what an admin would have seen in Discord.
"""

from __future__ import annotations

import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.e2e import BotProcess, Driver, base_env, bot_env
from tests.fakes.discord import EPHEMERAL, FakeDiscord
from tests.fakes.dscgg import FakeDscgg

pytestmark = pytest.mark.e2e

DSCGG_TOKEN = "dscgg-e2e-key-Hq5Tw2Lr9x"
DSCGG_USER = 7001
OTHER_USER = 7002
INVITE = "https://discord.gg/e2etest"

# FakeDscgg.latency for the slow scenarios: close to Discord's 3 s window, under DSCGG_TIMEOUT.
SLOW_DSCGG = 2.5


@pytest.fixture
async def dscgg() -> AsyncIterator[FakeDscgg]:
    async with FakeDscgg() as fake:
        fake.add_key(DSCGG_TOKEN, user_id=DSCGG_USER, whitelisted=False)
        fake.add_link("mine", owner_id=DSCGG_USER, redirect=INVITE, clicks=5)
        fake.add_link("theirs", owner_id=OTHER_USER, redirect="https://discord.gg/other")
        fake.add_link("popular", owner_id=OTHER_USER, redirect="https://discord.gg/popular", clicks=900)
        yield fake


@pytest.fixture
async def discord_fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(guilds=2) as fake:
        yield fake


@pytest.fixture
async def processes() -> AsyncIterator[list[BotProcess]]:
    """Every process a test starts; all are stopped (SIGTERM, then SIGKILL) at teardown."""
    started: list[BotProcess] = []
    yield started
    for process in started:
        await process.stop(timeout=10)


async def start_bot(processes: list[BotProcess], env: dict[str, str], workdir: Path, name: str) -> BotProcess:
    bot = BotProcess(env=env, workdir=workdir, name=name)
    processes.append(bot)
    return await bot.start()


def assert_ephemeral(flags: int) -> None:
    assert flags & EPHEMERAL, f"expected an ephemeral reply, flags={flags}"


def assert_no_secrets(output: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in output, "a secret appeared in the bot's output"


async def set_token(driver: Driver, token: str = DSCGG_TOKEN) -> None:
    opened = await driver.command("dscgg token set")
    modal = await driver.modal(opened)
    assert modal["title"] == "dsc.gg API token"
    submitted = await driver.submit_modal(opened, {"token": token})
    saved = await driver.final_message(submitted, contains="Saved.")
    assert_ephemeral(saved.flags)
    assert f"ending in `{token[-4:]}`" in saved.text()
    assert token not in saved.text()


async def adopt(driver: Driver, dscgg: FakeDscgg, slug: str) -> None:
    """Bring an existing link of the token's account under the server's management. dsc.gg tells only
    whitelisted apps whose key is whose, so the app is whitelisted for it."""
    dscgg.keys[DSCGG_TOKEN].whitelisted = True
    adopted = await driver.command("link adopt", {"slug": slug})
    message = await driver.final_message(adopted, contains=f"Adopted **dsc.gg/{slug}**")
    assert_ephemeral(message.flags)


async def test_admin_sees_every_command_answered(
    discord_fake: FakeDiscord, dscgg: FakeDscgg, processes: list[BotProcess], tmp_path: Path
) -> None:
    env = bot_env(discord_fake, dscgg.base_url, tmp_path)
    bot = await start_bot(processes, env, tmp_path, "bot")
    driver = Driver(discord_fake)
    await driver.wait_connected(bot)

    # Synced once, globally (no DEV_GUILD_ID), before connecting.
    assert [(s.scope, s.guild_id) for s in discord_fake.syncs] == [("global", None)]
    names = {c["name"] for c in discord_fake.commands[None]}
    assert {"link", "dscgg", "top", "search"} <= names
    await bot.wait_for_log(r"Synced \d+ command\(s\) globally \(first sync\)")

    # The health file appears as soon as the bot is connected, not one refresh interval later.
    health = Path(env["HEALTH_FILE"])
    await discord_fake.wait_for(health.exists, timeout=3)

    await set_token(driver)
    assert dscgg.keys[DSCGG_TOKEN].user_id == DSCGG_USER

    # /link create
    created = await driver.command("link create", {"slug": "e2e-new", "redirect": INVITE, "title": "Hello"})
    first = await driver.first_callback(created)
    assert first.type == 5
    assert first.ephemeral
    message = await driver.final_message(created, contains="Created **dsc.gg/e2e-new**")
    assert_ephemeral(message.flags)
    assert "e2e-new" in dscgg.links
    assert dscgg.links["e2e-new"]["meta"]["title"] == "Hello"

    # A link the account made elsewhere is not this server's until adopted.
    info = await driver.command("link info", {"slug": "mine"})
    message = await driver.final_message(info, contains="isn't managed by this server")
    assert_ephemeral(message.flags)
    assert "`/link adopt slug:mine`" in message.text()

    # whitelist_only: /search needs a whitelisted app (and so does confirming who owns a link)
    search = await driver.command("search", {"query": "pop"})
    message = await driver.final_message(search, contains="**whitelisted** dsc.gg app")
    assert_ephemeral(message.flags)
    assert "dsc.gg/developer" in message.text()
    assert "`/top` still works" in message.text()
    assert "whitelist_only" not in message.text()

    # /link adopt, then /link info
    await adopt(driver, dscgg, "mine")
    info = await driver.command("link info", {"slug": "https://dsc.gg/mine"})
    message = await driver.final_message(info)
    assert_ephemeral(message.flags)
    assert message.embeds
    assert "dsc.gg/mine" in message.embeds[0]["title"]
    assert INVITE in message.text()
    assert "5 (0 unique)" in message.text()

    # /link delete: asks first, deletes after the confirm button
    asked = await driver.command("link delete", {"slug": "e2e-new"})
    question = await driver.final_message(asked, contains="Delete **dsc.gg/e2e-new** for good?")
    assert_ephemeral(question.flags)
    assert "e2e-new" in dscgg.links
    await driver.click(asked, "Delete")
    done = await driver.final_message(asked, contains="Deleted **dsc.gg/e2e-new**.")
    assert_ephemeral(done.flags)
    assert not done.buttons()
    assert "e2e-new" not in dscgg.links

    # /top: works, most clicked first
    top = await driver.command("top")
    message = await driver.final_message(top, contains="popular")
    assert_ephemeral(message.flags)
    assert message.text().index("popular") < message.text().index("mine")

    # A link of another dsc.gg account cannot be adopted
    adopted = await driver.command("link adopt", {"slug": "theirs"})
    message = await driver.final_message(adopted, contains="owned by a different dsc.gg account")
    assert_ephemeral(message.flags)
    assert "/dscgg token set" in message.text()
    assert "owner_mismatch" not in message.text()

    # Nothing was answered twice or late, nothing unknown was asked of Discord.
    assert all(cb.accepted for cb in discord_fake.callbacks), [
        (cb.type, cb.status, cb.error_code) for cb in discord_fake.callbacks if not cb.accepted
    ]
    assert discord_fake.unknown_requests == []

    assert health.exists()  # noqa: ASYNC240

    assert len(discord_fake.syncs) == 1
    assert await bot.stop() == 0
    assert not health.exists(), "the health file must go away when the bot stops"  # noqa: ASYNC240
    assert_no_secrets(bot.stderr(), DSCGG_TOKEN, env["DISCORD_TOKEN"])


async def test_slow_dscgg_is_acknowledged_in_time_and_answered(
    discord_fake: FakeDiscord, dscgg: FakeDscgg, processes: list[BotProcess], tmp_path: Path
) -> None:
    guild_id = discord_fake.guild_ids[0]
    env = bot_env(discord_fake, dscgg.base_url, tmp_path, DEV_GUILD_ID=str(guild_id))
    bot = await start_bot(processes, env, tmp_path, "bot")
    driver = Driver(discord_fake)
    await driver.wait_connected(bot)
    # DEV_GUILD_ID: synced to that one server only.
    assert [(s.scope, s.guild_id) for s in discord_fake.syncs] == [("guild", guild_id)]
    await set_token(driver)
    await adopt(driver, dscgg, "mine")

    dscgg.latency = SLOW_DSCGG
    info = await driver.command("link info", {"slug": "mine"})
    first = await driver.first_callback(info)
    acked_after = first.t_monotonic - info.t_sent_monotonic
    assert first.type == 5
    assert first.accepted
    assert first.ephemeral
    assert acked_after < 3.0, f"acknowledged after {acked_after:.3f}s"
    message = await driver.final_message(info, timeout=SLOW_DSCGG + 5)
    # Deferred before dsc.gg was asked, not merely fast enough (both fakes run in this process and
    # stamp with time.monotonic()).
    asked = [r for r in dscgg.requests if r.at >= info.t_sent_monotonic]
    assert [r.endpoint for r in asked] == ["get_link"]
    assert first.t_monotonic < asked[0].at, "dsc.gg was asked before the interaction was answered"
    answered_after = max(r.t_monotonic for r in discord_fake.requests_for_token(info.token))
    assert answered_after - info.t_sent_monotonic >= SLOW_DSCGG
    # The final answer replaced the "thinking" message: same message, no follow-up.
    assert message.id == info.original_message_id
    assert not message.loading
    assert info.followup_ids == []
    assert message.embeds
    assert "dsc.gg/mine" in message.embeds[0]["title"]
    assert_ephemeral(message.flags)

    assert await bot.stop() == 0
    assert_no_secrets(bot.stderr(), DSCGG_TOKEN, env["DISCORD_TOKEN"])


async def test_sigterm_finishes_the_running_command_and_restart_keeps_the_token(
    discord_fake: FakeDiscord, dscgg: FakeDscgg, processes: list[BotProcess], tmp_path: Path
) -> None:
    key = Fernet.generate_key().decode()
    env = bot_env(discord_fake, dscgg.base_url, tmp_path, TOKEN_ENCRYPTION_KEYS=key)
    database = Path(env["DATABASE_PATH"])
    first_run = await start_bot(processes, env, tmp_path, "first")
    driver = Driver(discord_fake)
    await driver.wait_connected(first_run)
    await set_token(driver)
    await adopt(driver, dscgg, "mine")
    dscgg.requests.clear()  # wait below for the get_link of /link info, not of the adoption

    dscgg.latency = SLOW_DSCGG
    info = await driver.command("link info", {"slug": "mine"})
    await driver.first_callback(info)
    await dscgg_request_arrived(discord_fake, dscgg, "get_link")
    first_run.send_signal(signal.SIGTERM)
    message = await driver.final_message(info, timeout=SLOW_DSCGG + 5)
    assert message.embeds
    assert "dsc.gg/mine" in message.embeds[0]["title"]
    assert await first_run.wait(timeout=15) == 0
    output = first_run.stderr()
    assert "Received SIGTERM" in output
    assert "Stopped" in output
    assert "Cancelled" not in output

    # The database is intact and holds the token (encrypted).
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        token_table = next(name for name in tables if "token" in name)
        rows = conn.execute(f"SELECT * FROM {token_table}").fetchall()  # noqa: S608 - table name from the schema
    assert len(rows) == 1
    assert all(DSCGG_TOKEN not in str(value) for value in rows[0])

    # A restart keeps the token and does not sync again (the commands did not change).
    dscgg.latency = 0
    second_run = await start_bot(processes, env, tmp_path, "second")
    await driver.wait_connected(second_run)
    await second_run.wait_for_log(r"Commands unchanged since the last sync globally; not syncing")
    assert len(discord_fake.syncs) == 1
    status = await driver.command("dscgg status")
    message = await driver.final_message(status, contains="Accepts the token.")
    assert_ephemeral(message.flags)
    assert f"Set, ending in `{DSCGG_TOKEN[-4:]}`" in message.text()
    assert await second_run.stop() == 0

    for run in (first_run, second_run):
        assert_no_secrets(run.stderr(), DSCGG_TOKEN, env["DISCORD_TOKEN"], key)


async def dscgg_request_arrived(discord_fake: FakeDiscord, dscgg: FakeDscgg, endpoint: str) -> None:
    """Wait (bounded) until the fake dsc.gg has received a request for ``endpoint``."""
    await discord_fake.wait_for(lambda: dscgg.requests_to(endpoint), timeout=5)


async def test_start_without_settings_says_what_to_set(tmp_path: Path) -> None:
    import asyncio

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=tmp_path,
        env=base_env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = stderr.decode()
    assert process.returncode == 2
    assert stdout == b""
    lines = text.strip().splitlines()
    assert 1 <= len(lines) <= 5, text
    assert "Traceback" not in text
    assert "DISCORD_TOKEN is not set" in text
    assert ".env" in text
    assert ".env.example" in text


async def test_sigterm_during_a_slow_login_exits_cleanly(
    discord_fake: FakeDiscord, dscgg: FakeDscgg, processes: list[BotProcess], tmp_path: Path
) -> None:
    discord_fake.set_latency("get_me", 4)  # Discord is slow to answer the login
    env = bot_env(discord_fake, dscgg.base_url, tmp_path)
    bot = await start_bot(processes, env, tmp_path, "bot")
    await discord_fake.wait_for(lambda: discord_fake.requests_to("get_me"), timeout=20)
    bot.send_signal(signal.SIGTERM)
    assert await bot.wait(timeout=3) == 0
    output = bot.stderr()
    assert "Traceback" not in output
    assert "Unclosed" not in output
    assert "Stopped" in output
    assert discord_fake.identified_sessions == []
    assert discord_fake.syncs == []


async def api_url(process: BotProcess) -> str:
    found = await process.wait_for_log(r"HTTP API listening on (http://127\.0\.0\.1:\d+)")
    return found.group(1)


def posts_to(discord_fake: FakeDiscord, channel_id: int) -> list[str]:
    return [
        str(post.body.get("embeds", [{}])[0].get("description", ""))
        for post in discord_fake.channel_posts
        if post.channel_id == channel_id and post.status == 200
    ]


async def test_an_api_key_made_in_discord_manages_links_over_http(
    discord_fake: FakeDiscord, dscgg: FakeDscgg, processes: list[BotProcess], tmp_path: Path
) -> None:
    import httpx

    env = bot_env(discord_fake, dscgg.base_url, tmp_path, API_PORT="0")
    bot = await start_bot(processes, env, tmp_path, "bot")
    driver = Driver(discord_fake)
    await driver.wait_connected(bot)
    url = await api_url(bot)
    await set_token(driver)
    log_channel = discord_fake.guild().log_channel_id
    logs = await driver.command("dscgg logs", {"channel": log_channel})
    await driver.final_message(logs, contains="will be posted in")

    created = await driver.command("dscgg apikey create", {"name": "e2e-ci"})
    message = await driver.final_message(created, contains="won't be shown again")
    assert_ephemeral(message.flags)
    key = next(word for word in message.text().split() if word.startswith("dscggbot_"))

    guild = f"{url}/v1/guilds/{discord_fake.guild_ids[0]}"
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(timeout=10) as http:
        made = await http.post(f"{guild}/links", headers=auth, json={"slug": "over-http", "redirect": INVITE})
        assert made.status_code == 201, made.text
        edited = await http.patch(f"{guild}/links/over-http", headers=auth, json={"title": "Via the API"})
        assert edited.status_code == 200, edited.text
        assert dscgg.links["over-http"]["meta"]["title"] == "Via the API"
        deleted = await http.delete(f"{guild}/links/over-http", headers=auth)
        assert deleted.status_code == 204
        assert "over-http" not in dscgg.links
        other = await http.get(f"{url}/v1/guilds/{discord_fake.guild_ids[1]}", headers=auth)
        assert other.status_code == 404

    def posted() -> bool:
        return sum("An API key (e2e-ci)" in text for text in posts_to(discord_fake, log_channel)) >= 3

    await discord_fake.wait_for(posted, timeout=10)
    texts = [text for text in posts_to(discord_fake, log_channel) if "An API key" in text]
    assert "An API key (e2e-ci) created **dsc.gg/over-http**." in texts[0]
    assert "edited **dsc.gg/over-http**" in texts[1]
    assert "deleted **dsc.gg/over-http**" in texts[2]
    assert all(key not in str(post.body) for post in discord_fake.channel_posts)

    assert await bot.stop() == 0
    assert_no_secrets(bot.stderr(), DSCGG_TOKEN, env["DISCORD_TOKEN"], key, key[9:])


async def test_python_m_bot_api_serves_the_api_alone_and_posts_the_audit_log(
    discord_fake: FakeDiscord, dscgg: FakeDscgg, processes: list[BotProcess], tmp_path: Path
) -> None:
    import httpx

    # The bot makes the key and the log channel, then stops; the API process serves alone.
    env = bot_env(
        discord_fake, dscgg.base_url, tmp_path, TOKEN_ENCRYPTION_KEYS=Fernet.generate_key().decode()
    )
    bot = await start_bot(processes, env, tmp_path, "bot")
    driver = Driver(discord_fake)
    await driver.wait_connected(bot)
    await set_token(driver)
    log_channel = discord_fake.guild().log_channel_id
    await driver.final_message(
        await driver.command("dscgg logs", {"channel": log_channel}), contains="posted in"
    )
    created = await driver.command("dscgg apikey create", {"name": "replica"})
    message = await driver.final_message(created, contains="won't be shown again")
    key = next(word for word in message.text().split() if word.startswith("dscggbot_"))
    assert await bot.stop() == 0
    sessions = len(discord_fake.gateway_connections)

    api_env = {**env, "API_PORT": "0"}
    api = BotProcess(env=api_env, workdir=tmp_path, args=["api"], name="api")
    processes.append(api)
    await api.start()
    url = await api_url(api)
    await api.wait_for_log("Serving the HTTP API only")
    async with httpx.AsyncClient(timeout=10) as http:
        made = await http.post(
            f"{url}/v1/guilds/{discord_fake.guild_ids[0]}/links",
            headers={"Authorization": f"Bearer {key}"},
            json={"slug": "from-replica", "redirect": INVITE},
        )
        assert made.status_code == 201, made.text
    await discord_fake.wait_for(
        lambda: any("An API key (replica) created" in text for text in posts_to(discord_fake, log_channel)),
        timeout=10,
    )
    assert len(discord_fake.gateway_connections) == sessions  # no gateway connection
    api.send_signal(signal.SIGTERM)
    assert await api.wait(timeout=10) == 0
    assert "Traceback" not in api.stderr()
    assert_no_secrets(api.stderr(), DSCGG_TOKEN, env["DISCORD_TOKEN"], key)
