"""DscggClient against the loopback FakeDscgg: endpoints, request shape, encoding, partial updates."""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
import pytest

from bot import __version__
from bot.dscgg import (
    UNSET,
    BadRequest,
    DscggClient,
    InvalidKey,
    LinkTaken,
    LinkType,
    NotFound,
    OwnerBlacklisted,
    OwnerMismatch,
    PasswordProtected,
    VersionDeprecated,
    WhitelistOnly,
)
from tests.fakes.dscgg import FakeDscgg
from tests.fixtures.dscgg import TEST_USER_ID

SERVER_INVITE = "https://discord.gg/abc123"


# ---------------------------------------------------------------- links


async def test_get_link_parses_the_payload_and_sends_the_bare_token(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient, dscgg_token: str
) -> None:
    fake_dscgg.add_link(
        "mine",
        owner_id=TEST_USER_ID,
        redirect=SERVER_INVITE,
        meta={"title": "My server", "color": "#FF0000"},
        created_at=1_600_000_000_000,
    )

    link = await dscgg_client.get_link("mine", token=dscgg_token)

    assert link.slug == "mine"
    assert link.owner_id == TEST_USER_ID
    assert link.redirect == SERVER_INVITE
    assert link.meta.title == "My server"
    assert link.meta.color == "#FF0000"
    assert link.created_at == datetime(2020, 9, 13, 12, 26, 40, tzinfo=UTC)
    assert link.stats is None
    assert link.short_url == "https://dsc.gg/mine"
    (request,) = fake_dscgg.requests
    assert request.method == "GET"
    assert request.raw_path == "/v2/link/mine"
    assert request.headers["Authorization"] == dscgg_token
    assert request.headers["User-Agent"].startswith(
        f"dscgg-bot/{__version__} (+https://github.com/dscgg-bot) aiohttp/"
    )
    assert "Python/3." in request.headers["User-Agent"]


async def test_get_link_with_stats_asks_for_them(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient, dscgg_token: str
) -> None:
    fake_dscgg.add_link("popular", owner_id=2, clicks=42, unique_clicks=7)

    link = await dscgg_client.get_link("popular", token=dscgg_token, with_stats=True)

    assert link.stats is not None
    assert (link.stats.clicks, link.stats.unique_clicks) == (42, 7)
    assert fake_dscgg.requests[0].query == {"with_stats": "true"}


async def test_get_link_missing_is_not_found(dscgg_client: DscggClient, dscgg_token: str) -> None:
    with pytest.raises(NotFound) as caught:
        await dscgg_client.get_link("nope", token=dscgg_token)
    assert caught.value.status == 404


async def test_password_protected_link_of_someone_else(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient, dscgg_token: str
) -> None:
    fake_dscgg.add_link("secret", owner_id=99, password="hunter2")
    with pytest.raises(PasswordProtected):
        await dscgg_client.get_link("secret", token=dscgg_token)


async def test_create_link_sends_nested_meta_and_only_given_fields(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient, dscgg_token: str
) -> None:
    await dscgg_client.create_link(
        "fresh",
        token=dscgg_token,
        redirect=SERVER_INVITE,
        type=LinkType.SERVER,
        title="Hello",
        unlisted=False,
    )

    (request,) = fake_dscgg.requests
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/json"
    assert request.json == {
        "redirect": SERVER_INVITE,
        "type": "server",
        "meta": {"title": "Hello"},
        "unlisted": False,
    }
    assert fake_dscgg.links["fresh"]["owner"] == str(TEST_USER_ID)
    assert fake_dscgg.links["fresh"]["meta"]["title"] == "Hello"


async def test_create_link_taken(fake_dscgg: FakeDscgg, dscgg_client: DscggClient, dscgg_token: str) -> None:
    fake_dscgg.add_link("taken", owner_id=5)
    with pytest.raises(LinkTaken) as caught:
        await dscgg_client.create_link("taken", token=dscgg_token, redirect=SERVER_INVITE, type="server")
    assert caught.value.status == 400


async def test_create_link_bad_redirect_carries_the_api_message(
    dscgg_client: DscggClient, dscgg_token: str
) -> None:
    with pytest.raises(BadRequest) as caught:
        await dscgg_client.create_link("x", token=dscgg_token, redirect="https://example.com", type="bot")
    assert caught.value.message == "Invalid redirect for type bot"
    assert "Invalid redirect for type bot" in str(caught.value)


async def test_create_accepts_link_type(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient, dscgg_token: str
) -> None:
    await dscgg_client.create_link(
        "site", token=dscgg_token, redirect="https://example.com/page", type="link"
    )
    assert (await dscgg_client.get_link("site", token=dscgg_token)).type == "link"


async def test_update_sends_only_given_fields_and_unlisted_false(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient, dscgg_token: str
) -> None:
    fake_dscgg.add_link(
        "mine", owner_id=TEST_USER_ID, unlisted=True, meta={"title": "Old", "description": "Keep"}
    )

    await dscgg_client.update_link("mine", token=dscgg_token, title="New", color=0x00FF00, unlisted=False)

    assert fake_dscgg.requests[0].method == "PATCH"
    assert fake_dscgg.requests[0].json == {"meta": {"title": "New", "color": "#00FF00"}, "unlisted": False}
    link = await dscgg_client.get_link("mine", token=dscgg_token)
    assert (link.meta.title, link.meta.description, link.meta.color, link.unlisted) == (
        "New",
        "Keep",
        "#00FF00",
        False,
    )


async def test_update_password_none_removes_it_and_unset_is_not_sent(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient, dscgg_token: str
) -> None:
    fake_dscgg.add_link("locked", owner_id=TEST_USER_ID, password="hunter2")

    await dscgg_client.update_link("locked", token=dscgg_token, password=None, title=UNSET)

    assert fake_dscgg.requests[0].json == {"password": None}
    assert fake_dscgg.links["locked"]["_password"] is None


async def test_update_with_nothing_is_refused_locally(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient
) -> None:
    with pytest.raises(ValueError, match="nothing to update"):
        await dscgg_client.update_link("mine", token="t")
    assert fake_dscgg.requests == []


async def test_update_someone_elses_link_is_owner_mismatch(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient, dscgg_token: str
) -> None:
    fake_dscgg.add_link("theirs", owner_id=77)
    with pytest.raises(OwnerMismatch) as caught:
        await dscgg_client.update_link("theirs", token=dscgg_token, title="mine now")
    assert caught.value.status == 403
    with pytest.raises(OwnerMismatch):
        await dscgg_client.delete_link("theirs", token=dscgg_token)
    assert "theirs" in fake_dscgg.links


async def test_update_image_needs_premium(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient, dscgg_token: str
) -> None:
    fake_dscgg.add_link("mine", owner_id=TEST_USER_ID)
    with pytest.raises(BadRequest, match="premium"):
        await dscgg_client.update_link("mine", token=dscgg_token, image="https://img.example/a.png")

    fake_dscgg.add_key("premium-token", user_id=8, premium=True)
    fake_dscgg.add_link("fancy", owner_id=8)
    await dscgg_client.update_link("fancy", token="premium-token", image="https://img.example/a.png")
    assert fake_dscgg.links["fancy"]["meta"]["image"] == "https://img.example/a.png"


async def test_delete_link(fake_dscgg: FakeDscgg, dscgg_client: DscggClient, dscgg_token: str) -> None:
    fake_dscgg.add_link("gone", owner_id=TEST_USER_ID)
    await dscgg_client.delete_link("gone", token=dscgg_token)
    assert "gone" not in fake_dscgg.links
    with pytest.raises(NotFound):
        await dscgg_client.delete_link("gone", token=dscgg_token)


async def test_invalid_key_and_blacklisted_owner(fake_dscgg: FakeDscgg, dscgg_client: DscggClient) -> None:
    with pytest.raises(InvalidKey) as caught:
        await dscgg_client.get_link("x", token="not-a-key")
    assert caught.value.status == 401

    fake_dscgg.add_user(13, blacklisted=True)
    fake_dscgg.add_key("banned", user_id=13)
    with pytest.raises(OwnerBlacklisted):
        await dscgg_client.create_link("x", token="banned", redirect=SERVER_INVITE, type="server")


async def test_old_api_version_is_version_deprecated(
    fake_dscgg: FakeDscgg, dscgg_session: aiohttp.ClientSession, dscgg_token: str
) -> None:
    client = DscggClient(dscgg_session, base_url=f"{fake_dscgg.url}/v1")
    with pytest.raises(VersionDeprecated) as caught:
        await client.get_link("x", token=dscgg_token)
    assert caught.value.status == 410


# ---------------------------------------------------------------- users, apps, discovery


async def test_user_endpoints(fake_dscgg: FakeDscgg, dscgg_client: DscggClient) -> None:
    fake_dscgg.add_key("wl", user_id=300, whitelisted=True, app_id="app-1")
    fake_dscgg.add_link("one", owner_id=300)
    fake_dscgg.add_link("other", owner_id=301)

    user = await dscgg_client.get_user(300, token="wl")
    links = await dscgg_client.get_user_links(300, token="wl")
    apps = await dscgg_client.get_user_apps("300", token="wl")

    assert user.id == 300
    assert [link.slug for link in links] == ["one"]
    assert [app.id for app in apps] == ["app-1"]
    assert apps[0].key is not None
    assert apps[0].key.get_secret_value() == "wl"
    assert [r.raw_path for r in fake_dscgg.requests] == [
        "/v2/user/300",
        "/v2/user/300/links",
        "/v2/user/300/apps",
    ]


async def test_whitelist_only_endpoints(dscgg_client: DscggClient, dscgg_token: str) -> None:
    with pytest.raises(WhitelistOnly):
        await dscgg_client.get_user_links(TEST_USER_ID, token=dscgg_token)
    with pytest.raises(WhitelistOnly):
        await dscgg_client.get_user_apps(TEST_USER_ID, token=dscgg_token)
    with pytest.raises(WhitelistOnly) as caught:
        await dscgg_client.search_links("x", token=dscgg_token)
    assert caught.value.status == 403


async def test_get_app_shows_the_key_only_to_its_owner(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient
) -> None:
    fake_dscgg.add_key("owner-key", user_id=10, app_id="a1")
    fake_dscgg.add_key("stranger-key", user_id=11)

    own = await dscgg_client.get_app("a1", token="owner-key")
    seen_by_stranger = await dscgg_client.get_app("a1", token="stranger-key")

    assert own.key is not None
    assert own.owner_id == 10
    assert seen_by_stranger.key is None
    assert "owner-key" not in repr(own)
    assert "owner-key" not in str(own)
    assert "owner-key" not in own.model_dump_json()
    with pytest.raises(NotFound):
        await dscgg_client.get_app("missing", token="owner-key")


async def test_top_links_need_no_token_and_filter_by_type(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient
) -> None:
    fake_dscgg.add_link("big", owner_id=1, clicks=100)
    fake_dscgg.add_link("small", owner_id=1, clicks=5)
    fake_dscgg.add_link("hidden", owner_id=1, clicks=500, unlisted=True)
    fake_dscgg.add_link(
        "bot", owner_id=1, type="bot", redirect="https://discord.com/oauth2/authorize?client_id=1"
    )

    top = await dscgg_client.get_top_links()
    bots = await dscgg_client.get_top_links(type="bot")

    assert [link.slug for link in top] == ["big", "small", "bot"]
    assert [link.slug for link in bots] == ["bot"]
    assert "Authorization" not in fake_dscgg.requests[0].headers
    assert fake_dscgg.requests[1].query == {"type": "bot"}


async def test_top_and_search_not_found_mean_no_results(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient
) -> None:
    fake_dscgg.fail_next("code", code="not_found")
    assert await dscgg_client.get_top_links() == []
    fake_dscgg.fail_next("code", code="not_found")
    assert await dscgg_client.search_links("x", token="anything") == []


async def test_search_sends_query_type_and_clamped_limit(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient
) -> None:
    fake_dscgg.add_key("wl", user_id=4, whitelisted=True)
    fake_dscgg.add_link("gaming-hub", owner_id=4, meta={"title": "Gaming"})
    fake_dscgg.add_link("cooking", owner_id=4)

    hits = await dscgg_client.search_links("gaming", token="wl", type="server", limit=1000)

    assert [link.slug for link in hits] == ["gaming-hub"]
    assert fake_dscgg.requests[0].query == {"q": "gaming", "type": "server", "limit": "100"}
    await dscgg_client.search_links("gaming", token="wl", limit=0)
    await dscgg_client.search_links("gaming", token="wl", limit=-5)
    assert [r.query["limit"] for r in fake_dscgg.requests[1:]] == ["1", "1"]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"query": ""}, ValueError),
        ({"query": "   "}, ValueError),
        ({"query": "x", "type": "movie"}, ValueError),
        ({"query": "x", "limit": "10"}, TypeError),
        ({"query": "x", "limit": 2.5}, TypeError),
    ],
)
async def test_search_refuses_bad_input_without_a_request(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient, kwargs: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        await dscgg_client.search_links(token="t", **kwargs)  # type: ignore[arg-type]
    assert fake_dscgg.requests == []


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.get_link("", token="t"),
        lambda c: c.get_link("  ", token="t"),
        lambda c: c.get_link("x", token=""),
        lambda c: c.get_link("x", token="bad\r\nX-Injected: 1"),
        lambda c: c.create_link("x", token="t", redirect="https://discord.gg/a", type="video"),
        lambda c: c.create_link("", token="t", redirect="https://discord.gg/a", type="server"),
        lambda c: c.update_link("x", token="t", color=0x1000000),
        lambda c: c.get_user("", token="t"),
        lambda c: c.get_top_links(type="nope"),
    ],
)
async def test_invalid_input_fails_fast_without_a_request(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient, call
) -> None:
    with pytest.raises((ValueError, TypeError)):
        await call(dscgg_client)
    assert fake_dscgg.requests == []


# ---------------------------------------------------------------- encoding (peers.md (d) 2 and 5)


@pytest.mark.parametrize(
    ("slug", "raw_path"),
    [
        ("a/b", "/v2/link/a%2Fb"),
        ("a?b", "/v2/link/a%3Fb"),
        ("a#b", "/v2/link/a%23b"),
        ("...", "/v2/link/..."),
        (".a", "/v2/link/.a"),
        ("../user/1", "/v2/link/..%2Fuser%2F1"),
        ("../user/1/links", "/v2/link/..%2Fuser%2F1%2Flinks"),
        ("%2F", "/v2/link/%252F"),
        ("%72%6f%77", "/v2/link/%2572%256f%2577"),
        ("a b", "/v2/link/a%20b"),
        ("😀", "/v2/link/%F0%9F%98%80"),
        ("a\u200db", "/v2/link/a%E2%80%8Db"),
        ("a+b", "/v2/link/a%2Bb"),
    ],
)
async def test_slug_stays_one_encoded_path_segment(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient, dscgg_token: str, slug: str, raw_path: str
) -> None:
    fake_dscgg.add_link(slug, owner_id=2)

    link = await dscgg_client.get_link(slug, token=dscgg_token)

    assert link.slug == slug
    assert fake_dscgg.requests[0].raw_path == raw_path
    assert fake_dscgg.requests[0].endpoint == "get_link"


@pytest.mark.parametrize("slug", [".", ".."])
async def test_dot_slugs_are_refused_without_a_request(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient, dscgg_token: str, slug: str
) -> None:
    # Encoded or not, a normalising proxy could resolve them to /v2/link or /v2.
    for call in (
        dscgg_client.get_link(slug, token=dscgg_token),
        dscgg_client.delete_link(slug, token=dscgg_token),
        dscgg_client.update_link(slug, token=dscgg_token, title="t"),
        dscgg_client.get_user(slug, token=dscgg_token),
        dscgg_client.get_app(slug, token=dscgg_token),
    ):
        with pytest.raises(ValueError, match="cannot be"):
            await call
    assert fake_dscgg.requests == []


async def test_slug_cannot_reach_another_endpoint_on_mutations(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient, dscgg_token: str
) -> None:
    with pytest.raises(NotFound):
        await dscgg_client.delete_link("../user/1", token=dscgg_token)
    assert [(r.method, r.raw_path, r.endpoint) for r in fake_dscgg.requests] == [
        ("DELETE", "/v2/link/..%2Fuser%2F1", "delete_link")
    ]


@pytest.mark.parametrize("query", ["a b&c#x", "+", "%", '"quoted"', "ünïcødé 日本", "a=b&limit=1", "x" * 500])
async def test_search_query_reaches_dsc_gg_intact(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient, query: str
) -> None:
    fake_dscgg.add_key("wl", user_id=4, whitelisted=True)

    await dscgg_client.search_links(query, token="wl", limit=5)

    (request,) = fake_dscgg.requests
    assert request.query == {"q": query, "limit": "5"}
    assert "#" not in request.raw_query
    assert " " not in request.raw_query
