"""The HTTP API over real HTTP on loopback: every route, both kinds of credential, access rules,
problems, rate limits, idempotency and shutdown. Discord and dsc.gg are the loopback fakes."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.api.server import ApiServer, ApiStartError
from bot.crypto import TokenCipher
from bot.db import Database, GuildSettingsStore, LinkRecordStore, TokenStore
from bot.db.apikeys import ApiKeyStore, IdempotencyStore
from bot.services.apikeys import ApiKeyService
from tests.fixtures.api import MEMBER_OAUTH, Api
from tests.fixtures.bot import ADMIN_TOKEN
from tests.harness import ADMIN

INVITE = "https://discord.gg/apitest"
PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, name: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert body["type"].endswith(f"/problems/{name}"), body
    assert body["title"]
    assert body["detail"]
    assert "Traceback" not in response.text
    return body


async def create(api: Api, slug: str, key: str | None = None, **fields: Any) -> httpx.Response:
    return await api.post(
        f"/v1/guilds/{api.guild_id}/links",
        key=key or api.key,
        json={"slug": slug, "redirect": INVITE, **fields},
    )


# ------------------------------------------------------------------------------------------ links


async def test_a_key_creates_reads_edits_lists_and_deletes_a_link(api: Api) -> None:
    await api.set_token()
    base = f"/v1/guilds/{api.guild_id}"

    created = await create(api, "apilink", title="Hello", password="s3cret!")
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"{api.url}{base}/links/apilink"
    body = created.json()
    assert body["slug"] == "apilink"
    assert body["short_url"] == "https://dsc.gg/apilink"
    assert body["redirect"] == INVITE
    assert body["type"] == "server"
    assert body["meta"]["title"] == "Hello"
    assert "apilink" in api.wired.dscgg.links

    info = await api.get(f"{base}/links/apilink", key=api.key)
    assert info.status_code == 200
    assert info.json()["meta"]["title"] == "Hello"
    assert info.json()["owner_id"] == str(ADMIN.id)

    patched = await api.request(
        "PATCH",
        f"{base}/links/apilink",
        key=api.key,
        json={"title": None, "unlisted": True, "password": None},
    )
    assert patched.status_code == 200, patched.text
    stored = api.wired.dscgg.links["apilink"]
    assert stored["meta"]["title"] is None
    assert stored["unlisted"] is True
    assert not stored.get("password")
    fields = {change["field"] for change in patched.json()["changes"]}
    assert fields == {"title", "unlisted", "password"}

    listed = await api.get(f"{base}/links", key=api.key)
    assert listed.status_code == 200
    assert [item["slug"] for item in listed.json()["items"]] == ["apilink"]
    assert listed.json()["items"][0]["created_by"] == str(ADMIN.id)
    assert listed.json()["next_cursor"] is None

    deleted = await api.request("DELETE", f"{base}/links/apilink", key=api.key)
    assert deleted.status_code == 204
    assert "apilink" not in api.wired.dscgg.links
    gone = await api.get(f"{base}/links/apilink", key=api.key)
    assert_problem(gone, 403, "not-managed-here")


async def test_links_are_cursor_paged(api: Api) -> None:
    for index in range(5):
        await api.wired.bot.link_records.record(api.guild_id, f"page{index}", ADMIN.id)
    seen, cursor = [], None
    for _ in range(5):
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await api.get(f"/v1/guilds/{api.guild_id}/links", key=api.key, params=params)
        assert page.status_code == 200
        seen += [item["slug"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"page{index}" for index in range(5)]
    bad = await api.get(f"/v1/guilds/{api.guild_id}/links", key=api.key, params={"cursor": "nope!"})
    body = assert_problem(bad, 422, "invalid-input")
    assert body["errors"][0]["location"] == "query"
    assert body["errors"][0]["field"] == "cursor"


async def test_a_link_of_the_account_is_adopted_then_managed(api: Api) -> None:
    await api.set_token()
    api.wired.dscgg.keys[ADMIN_TOKEN].whitelisted = True
    api.wired.dscgg.add_link("older", owner_id=ADMIN.id, redirect=INVITE)
    base = f"/v1/guilds/{api.guild_id}"
    refused = await api.get(f"{base}/links/older", key=api.key)
    assert "/link adopt" in assert_problem(refused, 403, "not-managed-here")["detail"]
    adopted = await api.post(f"{base}/links/older/adopt", key=api.key)
    assert adopted.status_code == 200, adopted.text
    assert adopted.json()["adopted"] is True
    assert (await api.get(f"{base}/links/older", key=api.key)).status_code == 200


async def test_dscgg_refusals_are_problems_with_their_own_names(api: Api) -> None:
    base = f"/v1/guilds/{api.guild_id}"
    missing = await create(api, "notoken")
    assert "/dscgg token set" in assert_problem(missing, 409, "token-missing")["detail"]
    await api.set_token()
    api.wired.dscgg.add_link("taken", owner_id=999, redirect=INVITE)
    taken = await create(api, "taken")
    assert_problem(taken, 409, "link-taken")
    search = await api.get(f"{base}/search", key=api.key, params={"q": "pop"})
    assert "whitelisted" in assert_problem(search, 403, "whitelist-only")["detail"]
    bad = await create(api, "bad", redirect="javascript:alert(1)")
    body = assert_problem(bad, 422, "invalid-input")
    assert body["errors"][0]["field"] == "redirect"
    assert body["errors"][0]["location"] == "body"


async def test_top_and_search(api: Api) -> None:
    await api.set_token()
    api.wired.dscgg.keys[ADMIN_TOKEN].whitelisted = True
    api.wired.dscgg.add_link("popular", owner_id=5, redirect="https://discord.gg/popular", clicks=900)
    top = await api.get("/v1/top", key=api.key)
    assert top.status_code == 200
    assert top.json()["items"][0]["slug"] == "popular"
    anonymous = await api.get("/v1/top")
    assert_problem(anonymous, 401, "invalid-token")
    found = await api.get(f"/v1/guilds/{api.guild_id}/search", key=api.key, params={"q": "pop", "limit": 5})
    assert found.status_code == 200
    assert [item["slug"] for item in found.json()["items"]] == ["popular"]


# ------------------------------------------------------------------------------------------ the server


async def test_the_server_its_token_and_its_audit_log(api: Api) -> None:
    base = f"/v1/guilds/{api.guild_id}"
    empty = await api.get(base, key=api.key)
    assert empty.status_code == 200
    assert empty.json()["dscgg_token"]["set"] is False
    assert empty.json()["api_keys"] == 1

    rejected = await api.request(
        "PUT", f"{base}/dscgg-token", key=api.key, json={"token": "not-a-valid-key-123"}
    )
    assert_problem(rejected, 409, "token-rejected")
    put = await api.request("PUT", f"{base}/dscgg-token", key=api.key, json={"token": ADMIN_TOKEN})
    assert put.status_code == 204
    server = (await api.get(base, key=api.key)).json()
    assert server["id"] == str(api.guild_id)
    assert server["dscgg_token"]["set"] is True
    assert server["dscgg_token"]["last4"] == ADMIN_TOKEN[-4:]
    assert ADMIN_TOKEN not in (await api.get(base, key=api.key)).text

    cleared = await api.request("DELETE", f"{base}/dscgg-token", key=api.key)
    assert cleared.status_code == 204
    assert await api.wired.bot.token_store.info(api.guild_id) is None

    events = await api.get(f"{base}/audit-events", key=api.key, params={"limit": 2})
    assert events.status_code == 200
    items = events.json()["items"]
    assert [item["kind"] for item in items] == ["token_cleared", "token_set"]
    assert items[0]["actor"] == {"type": "api_key", "user_id": None, "api_key_name": "ci"}
    older = await api.get(
        f"{base}/audit-events", key=api.key, params={"before": events.json()["next_before"]}
    )
    assert [item["kind"] for item in older.json()["items"]] == ["token_rejected", "api_key_created"]
    assert older.json()["items"][-1]["actor"]["type"] == "user"


async def test_changes_made_with_a_key_are_posted_as_an_api_key(api: Api) -> None:
    channel = api.guild_id + 2
    await api.wired.bot.guild_settings.set_log_channel(api.guild_id, channel)
    await api.set_token()
    assert (await create(api, "audited")).status_code == 201

    def posted():
        return [post for post in api.wired.discord.channel_posts if post.channel_id == channel]

    await api.wired.discord.wait_for(posted, timeout=5)
    embed = posted()[0].body["embeds"][0]
    assert "An API key (ci) created **dsc.gg/audited**" in embed["description"]
    assert "<@" not in embed["description"]
    assert "footer" not in embed
    assert api.key not in str(posted()[0].body)
    assert api.key[9:20] not in str(posted()[0].body)


# ------------------------------------------------------------------------------------------ credentials


async def test_a_key_for_one_server_finds_no_other_server(api: Api) -> None:
    other = api.wired.discord.guild_ids[1]
    for method, path in [
        ("GET", f"/v1/guilds/{other}"),
        ("GET", f"/v1/guilds/{other}/links"),
        ("DELETE", f"/v1/guilds/{other}/links/x"),
        ("GET", "/v1/guilds/123/audit-events"),
    ]:
        answer = await api.request(method, path, key=api.key)
        assert_problem(answer, 404, "not-found")


async def test_unknown_malformed_and_revoked_credentials_get_401(api: Api) -> None:
    path = f"/v1/guilds/{api.guild_id}"
    for key in (None, "dscggbot_short", "dscggbot_" + "A" * 43, "some-unknown-oauth-token"):
        answer = await api.get(path, key=key)
        assert_problem(answer, 401, "invalid-token")
        assert answer.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert (await api.get(path, key=api.key)).status_code == 200
    key_id = (await api.wired.bot.api_keys.list(api.guild_id))[0].id
    revoked = await api.request("DELETE", f"{path}/api-keys/{key_id}", key=api.oauth)
    assert revoked.status_code == 204
    after = await api.get(path, key=api.key)
    assert_problem(after, 401, "invalid-token")
    assert after.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_a_key_revoked_by_another_process_is_refused_on_its_very_next_request(api: Api) -> None:
    """Several bot processes share one database: a key revoked in one of them is refused by this one
    on its very next request, however recently it was accepted here."""
    path = f"/v1/guilds/{api.guild_id}"
    key_id = (await api.wired.bot.api_keys.list(api.guild_id))[0].id
    async with Database.open(api.wired.db.url) as other_process:
        for _ in range(3):
            assert (await api.get(path, key=api.key)).status_code == 200
        assert await ApiKeyStore(other_process).revoke(api.guild_id, key_id) is not None
        assert_problem(await api.get(path, key=api.key), 401, "invalid-token")


async def test_the_server_shows_another_processs_changes_on_the_next_request(api: Api) -> None:
    path = f"/v1/guilds/{api.guild_id}"
    before = (await api.get(path, key=api.key)).json()
    assert (before["dscgg_token"]["set"], before["log_channel_id"], before["links"]) == (False, None, 0)
    async with Database.open(api.wired.db.url) as other_process:
        await TokenStore(other_process, TokenCipher(api.wired.keys)).set(
            api.guild_id, ADMIN_TOKEN, set_by=ADMIN.id
        )
        await GuildSettingsStore(other_process).set_log_channel(api.guild_id, 4242)
        await LinkRecordStore(other_process).claim(api.guild_id, "from-elsewhere", ADMIN.id)
        await ApiKeyStore(other_process).create(api.guild_id, "second", b"d" * 32, ADMIN.id)
        after = (await api.get(path, key=api.key)).json()
        assert after["dscgg_token"]["last4"] == ADMIN_TOKEN[-4:]
        assert (after["log_channel_id"], after["links"], after["api_keys"]) == ("4242", 1, 2)
        await TokenStore(other_process, TokenCipher(api.wired.keys)).clear(api.guild_id)
        assert (await api.get(path, key=api.key)).json()["dscgg_token"]["set"] is False


async def test_a_keys_last_use_is_written_at_most_once_a_minute(api: Api) -> None:
    """`/dscgg apikey list` and the keys page show when a key was last used: to the minute, so that a
    busy key does not turn every request into a write."""
    first = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    elapsed = 0.0
    store = ApiKeyStore(api.wired.db, clock=lambda: first + timedelta(seconds=elapsed))
    service = ApiKeyService(store, api.wired.bot.audit, monotonic=lambda: 1000.0 + elapsed)

    async def last_used() -> datetime | None:
        return (await service.list(api.guild_id))[0].last_used_at

    def later(seconds: float) -> None:
        nonlocal elapsed
        elapsed += seconds

    assert await service.authenticate(api.key) is not None
    assert await last_used() == first
    later(59)
    assert await service.authenticate(api.key) is not None
    assert await last_used() == first  # not written again within the minute
    later(1)
    assert await service.authenticate(api.key) is not None
    assert await last_used() == first + timedelta(seconds=60)


async def test_discord_logins_need_manage_server_and_the_bot(api: Api) -> None:
    guilds = api.wired.discord.guild_ids
    assert (await api.get(f"/v1/guilds/{guilds[0]}", key=api.oauth)).status_code == 200
    assert (await api.get(f"/v1/guilds/{guilds[1]}", key=api.oauth)).status_code == 200  # owner
    assert_problem(await api.get(f"/v1/guilds/{guilds[2]}", key=api.oauth), 404, "not-found")  # not a member
    member = await api.get(f"/v1/guilds/{guilds[0]}", key=MEMBER_OAUTH)
    assert "Manage Server" in assert_problem(member, 403, "missing-permission")["detail"]
    # Resolved once, then kept: two more requests ask Discord nothing more.
    asked = len(api.wired.discord.requests_to("get_my_guilds"))
    await api.get(f"/v1/guilds/{guilds[0]}", key=api.oauth)
    await api.get(f"/v1/guilds/{guilds[0]}/links", key=api.oauth)
    assert len(api.wired.discord.requests_to("get_my_guilds")) == asked


async def test_keys_are_managed_by_discord_users_only_and_shown_once(api: Api) -> None:
    base = f"/v1/guilds/{api.guild_id}/api-keys"
    assert_problem(await api.get(base, key=api.key), 403, "api-key-not-allowed")
    assert_problem(await api.post(base, key=api.key, json={"name": "x"}), 403, "api-key-not-allowed")

    created = await api.post(base, key=api.oauth, json={"name": "deploy"})
    assert created.status_code == 201, created.text
    new_key = created.json()["key"]
    assert new_key.startswith("dscggbot_")
    assert len(new_key) >= len("dscggbot_") + 43
    assert created.json()["created_by"] == str(ADMIN.id)
    listed = await api.get(base, key=api.oauth)
    assert listed.status_code == 200
    assert [item["name"] for item in listed.json()["items"]] == ["ci", "deploy"]
    assert new_key not in listed.text
    assert new_key[9:] not in listed.text
    assert "key" not in listed.json()["items"][1]
    assert (await api.get(f"/v1/guilds/{api.guild_id}", key=new_key)).status_code == 200


async def test_keys_are_stored_as_digests_only(api: Api, tmp_path: Path) -> None:
    result = await api.wired.run("dscgg apikey create", {"name": "from-discord"})
    assert result.ephemeral
    text = result.text()
    key = next(word for word in text.split() if word.startswith("dscggbot_"))
    assert "won't be shown again" in text
    assert (await api.get(f"/v1/guilds/{api.guild_id}", key=key)).status_code == 200
    listed = await api.wired.run("dscgg apikey list")
    assert "from-discord" in listed.text()
    assert key not in listed.text()

    database = Path(api.wired.db.name)  # the SQLite file
    for path in database.parent.glob(database.name + "*"):  # the database, its -wal and -shm files
        content = path.read_bytes()
        assert key.encode() not in content
        assert key[9:].encode() not in content
    with sqlite3.connect(database) as conn:
        digests = {row[0] for row in conn.execute("SELECT digest FROM api_keys")}
    assert hashlib.sha256(key.encode()).digest() in digests
    assert "dscggbot_" not in repr(await api.wired.bot.api_keys.list(api.guild_id))


async def test_a_key_has_its_own_rate_limit(make_api) -> None:
    async with make_api(api_rate_limit=3, api_rate_window=60) as api:
        other = (await api.wired.bot.api_keys.create(api.guild_id, ADMIN.id, "other")).key.get_secret_value()
        path = f"/v1/guilds/{api.guild_id}"
        for left in (2, 1, 0):
            answer = await api.get(path, key=api.key)
            assert answer.status_code == 200
            assert answer.headers["ratelimit-policy"] == '"default";q=3;w=60'
            assert answer.headers["ratelimit"].startswith(f'"default";r={left};t=')
        limited = await api.get(path, key=api.key)
        body = assert_problem(limited, 429, "rate-limited")
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert limited.headers["ratelimit"].startswith('"default";r=0;')
        assert "3 requests per 60 seconds" in body["detail"]
        assert (await api.get(path, key=other)).status_code == 200


# ------------------------------------------------------------------------------------------ bodies


async def test_bad_bodies_are_problems(api: Api) -> None:
    path = f"/v1/guilds/{api.guild_id}/links"
    big = await api.post(
        path,
        key=api.key,
        content=b'{"slug": "' + b"a" * 70_000 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert_problem(big, 413, "payload-too-large")
    broken = await api.post(
        path, key=api.key, content=b'{"slug": ', headers={"Content-Type": "application/json"}
    )
    assert_problem(broken, 400, "malformed-json")
    text = await api.post(path, key=api.key, content=b"slug=x", headers={"Content-Type": "text/plain"})
    assert_problem(text, 415, "unsupported-media-type")
    missing = await api.post(path, key=api.key, json={"slug": "x", "color": 5, "bogus": 1})
    body = assert_problem(missing, 422, "invalid-input")
    fields = {(entry["location"], entry["field"]) for entry in body["errors"]}
    assert fields == {("body", "redirect"), ("body", "color"), ("body", "bogus")}
    nothing = await api.request("PATCH", f"{path}/x", key=api.key, json={})
    assert_problem(nothing, 422, "nothing-to-change")
    unknown = await api.get("/v1/nowhere", key=api.key)
    assert_problem(unknown, 404, "not-found")


async def test_idempotency_key_replays_the_first_response(api: Api) -> None:
    await api.set_token()
    path = f"/v1/guilds/{api.guild_id}/links"
    headers = {"Idempotency-Key": "create-once-1"}
    body = {"slug": "once", "redirect": INVITE}
    first = await api.post(path, key=api.key, json=body, headers=headers)
    again = await api.post(path, key=api.key, json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert len(api.wired.dscgg.requests_to("create_link")) == 1
    other = await api.post(path, key=api.key, json={**body, "slug": "twice"}, headers=headers)
    assert_problem(other, 422, "idempotency-key-reused")
    # Another credential's key of the same name is its own.
    fresh = await api.post(path, key=api.oauth, json={**body, "slug": "twice"}, headers=headers)
    assert fresh.status_code == 201


async def test_idempotency_claims_expire(db) -> None:
    from datetime import timedelta

    from bot.db.apikeys import Claimed, StoredResponse
    from bot.db.database import utc_now

    now = [utc_now()]
    store = IdempotencyStore(db, clock=lambda: now[0])
    assert (await store.begin("key:1", "k", 1, "f")).claimed is Claimed.NEW
    assert (await store.begin("key:1", "k", 1, "f")).claimed is Claimed.IN_PROGRESS
    await store.finish("key:1", "k", StoredResponse(201, {"location": "x"}, b"{}"))
    replay = await store.begin("key:1", "k", 1, "f")
    assert replay.response == StoredResponse(201, {"location": "x"}, b"{}")
    now[0] += timedelta(hours=24, seconds=1)
    assert (await store.begin("key:1", "k", 1, "other")).claimed is Claimed.NEW
    assert await store.prune() == 0


# ------------------------------------------------------------------------------------------ operations


async def test_health_metrics_problem_pages_docs_and_openapi(api: Api) -> None:
    health = await api.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    await api.get(f"/v1/guilds/{api.guild_id}", key=api.key)
    metrics = await api.get("/metrics")
    assert metrics.status_code == 200
    assert (
        'dscggbot_api_requests_total{method="GET",route="/v1/guilds/{guild_id}",status="200"}' in metrics.text
    )
    assert "dscggbot_dscgg_requests_total" in metrics.text or "dscggbot_dscgg_request_seconds" in metrics.text
    page = await api.get("/problems/link-taken")
    assert page.status_code == 200
    assert "Slug taken" in page.text
    docs = await api.get("/v1/docs")
    assert docs.status_code == 200
    assert "/v1/docs/static/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()
    script = await api.get("/v1/docs/static/swagger-ui-bundle.js")
    assert script.status_code == 200
    schema = (await api.get("/v1/openapi.json")).json()
    assert schema["openapi"].startswith("3.1")
    assert "/v1/guilds/{guild_id}/links/{slug}" in schema["paths"]


async def test_health_is_503_without_the_database(api: Api) -> None:
    await api.wired.db.close()
    answer = await api.get("/healthz")
    assert_problem(answer, 503, "upstream-unavailable")


async def test_a_request_in_flight_finishes_during_the_shutdown(api: Api) -> None:
    await api.set_token()
    await api.wired.bot.link_records.record(api.guild_id, "slow", ADMIN.id)
    api.wired.dscgg.add_link("slow", owner_id=ADMIN.id, redirect=INVITE)
    api.wired.dscgg.latency = 0.5
    pending = asyncio.create_task(api.get(f"/v1/guilds/{api.guild_id}/links/slow", key=api.key))
    await api.wired.discord.wait_for(lambda: api.wired.dscgg.requests_to("get_link"), timeout=5)
    await api.server.stop(within=3.0)
    answer = await pending
    assert answer.status_code == 200
    assert answer.json()["slug"] == "slow"


async def test_a_request_past_the_shutdown_grace_gets_503(api: Api) -> None:
    await api.set_token()
    await api.wired.bot.link_records.record(api.guild_id, "slower", ADMIN.id)
    api.wired.dscgg.add_link("slower", owner_id=ADMIN.id, redirect=INVITE)
    api.wired.dscgg.latency = 5.0
    pending = asyncio.create_task(api.get(f"/v1/guilds/{api.guild_id}/links/slower", key=api.key))
    await api.wired.discord.wait_for(lambda: api.wired.dscgg.requests_to("get_link"), timeout=5)
    await api.server.stop(within=0.2)
    answer = await pending
    assert_problem(answer, 503, "shutting-down")


async def test_a_port_in_use_is_one_clear_line(api: Api) -> None:
    second = ApiServer(api.wired.bot, host="127.0.0.1", port=api.server.port)
    with pytest.raises(ApiStartError) as caught:
        await second.start()
    message = str(caught.value)
    assert f"API_PORT {api.server.port} on 127.0.0.1 is already in use" in message
    assert "\n" not in message
