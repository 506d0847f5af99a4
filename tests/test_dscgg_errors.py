"""Every way dsc.gg can fail, and what the client makes of it: one exception per code, Unavailable for
garbage, retries only where resending is safe, 429s honoured, and the token never leaked."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from bot.dscgg import (
    APIError,
    BadRequest,
    DscggClient,
    DscggError,
    InvalidKey,
    LinkTaken,
    NotFound,
    OwnerBlacklisted,
    OwnerMismatch,
    PasswordProtected,
    RateLimited,
    RateLimiter,
    Unavailable,
    UnknownAPIError,
    VersionDeprecated,
    WhitelistOnly,
)
from bot.dscgg.client import _Method
from tests.fakes.dscgg import FakeDscgg
from tests.fixtures.dscgg import TEST_USER_ID

INVITE = "https://discord.gg/abc"


@pytest.fixture
async def owned_link(fake_dscgg: FakeDscgg, dscgg_token: str) -> str:
    fake_dscgg.add_link("mine", owner_id=TEST_USER_ID)
    return "mine"


def _client(session: aiohttp.ClientSession, base_url: str, **overrides: Any) -> DscggClient:
    options: dict[str, Any] = {
        "timeout": 2.0,
        "connect_timeout": 1.0,
        "max_rate_limit_wait": 1.0,
        "backoff_base": 0.01,
        "backoff_max": 0.05,
    }
    options.update(overrides)
    return DscggClient(session, base_url=base_url, **options)


# ---------------------------------------------------------------- codes into exceptions


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("invalid_key", 401, InvalidKey),
        ("not_found", 404, NotFound),
        ("owner_blacklisted", 403, OwnerBlacklisted),
        ("version_deprecated", 410, VersionDeprecated),
        ("bad_request", 400, BadRequest),
        ("link_taken", 400, LinkTaken),
        ("owner_mismatch", 403, OwnerMismatch),
        ("whitelist_only", 403, WhitelistOnly),
        ("password_protected", 403, PasswordProtected),
        # The code decides, whatever the status says.
        ("link_taken", 403, LinkTaken),
        ("whitelist_only", 400, WhitelistOnly),
        ("password_protected", 200, PasswordProtected),
        ("Owner_Mismatch", 403, OwnerMismatch),
        ("NOT_FOUND", 404, NotFound),
    ],
)
async def test_each_code_has_its_exception(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient, code: str, status: int, expected: type[APIError]
) -> None:
    fake_dscgg.fail_next("code", code=code, status=status, message="from dsc.gg")

    with pytest.raises(expected) as caught:
        await dscgg_client.get_link("x", token="t")

    assert type(caught.value) is expected
    assert caught.value.status == status
    assert caught.value.message == "from dsc.gg"
    assert len(fake_dscgg.requests) == 1


@pytest.mark.parametrize("status", [400, 403, 418])
async def test_unknown_code_keeps_code_status_and_message(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient, status: int
) -> None:
    fake_dscgg.fail_next("unknown_code", code="foo_bar", status=status, message="Something new")

    with pytest.raises(UnknownAPIError) as caught:
        await dscgg_client.get_link("x", token="t")

    assert (caught.value.code, caught.value.status, caught.value.message) == (
        "foo_bar",
        status,
        "Something new",
    )


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        # ok needs success:true AND 2xx.
        (200, {"success": False, "code": "payload_received"}, UnknownAPIError),
        (200, {"success": False}, UnknownAPIError),
        (404, {"success": True, "code": "payload_received", "payload": {"id": "x"}}, NotFound),
        (401, {"success": False, "message": "no code"}, InvalidKey),
        (400, {"success": False, "message": "no code"}, BadRequest),
        (410, {"success": False}, VersionDeprecated),
        (403, {"success": False}, UnknownAPIError),
        (200, {"success": "true", "code": "payload_received", "payload": {"id": "x"}}, UnknownAPIError),
        (200, {"success": True, "code": "payload_received", "payload": None}, Unavailable),
        (200, {"success": True, "code": "payload_received", "payload": ["x"]}, Unavailable),
        (200, {"success": True, "code": "payload_received", "payload": {"owner": "1"}}, Unavailable),
        (200, {"success": False, "code": 42, "message": ["not", "text"]}, UnknownAPIError),
    ],
)
async def test_envelope_contradictions(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient, status: int, body: Any, expected: type[DscggError]
) -> None:
    fake_dscgg.fail_next("envelope", status=status, body=body)

    with pytest.raises(expected) as caught:
        await dscgg_client.get_link("x", token="t")

    assert type(caught.value) is expected
    assert len(fake_dscgg.requests) == 1


async def test_mutation_success_envelopes(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient, owned_link: str
) -> None:
    # Created 201, updated and deleted 200 with a message and no payload: all plain success.
    await dscgg_client.create_link("new", token="test-token-0123456789abcdef", redirect=INVITE, type="server")
    await dscgg_client.update_link(owned_link, token="test-token-0123456789abcdef", title="t")
    await dscgg_client.delete_link(owned_link, token="test-token-0123456789abcdef")
    assert len(fake_dscgg.requests) == 3


# ---------------------------------------------------------------- garbage and outages


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("html", {}),
        ("invalid_json", {}),
        ("truncated_json", {}),
        ("json_array", {}),
        ("html", {"status": 403}),
        ("envelope", {"status": 204, "body": None}),
    ],
)
async def test_unusable_bodies_are_unavailable_without_retry(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient, kind: Any, options: dict[str, Any]
) -> None:
    fake_dscgg.fail_always(kind, **options)

    with pytest.raises(Unavailable):
        await dscgg_client.get_link("x", token="t")

    assert len(fake_dscgg.requests) == 1


async def test_persistent_5xx_gives_unavailable_after_bounded_retries(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient
) -> None:
    fake_dscgg.fail_always("server_error", status=503)

    with pytest.raises(Unavailable) as caught:
        await dscgg_client.get_link("x", token="t")

    assert caught.value.status == 503
    assert len(fake_dscgg.requests) == 3  # 1 + 2 retries


@pytest.mark.parametrize(
    ("kind", "options"), [("server_error", {"status": 502}), ("drop", {}), ("delay", {"delay": 0.5})]
)
async def test_get_is_retried_after_a_transient_failure(
    fake_dscgg: FakeDscgg,
    dscgg_session: aiohttp.ClientSession,
    dscgg_token: str,
    owned_link: str,
    kind: Any,
    options: dict[str, Any],
) -> None:
    client = _client(dscgg_session, fake_dscgg.base_url, timeout=0.25)
    fake_dscgg.fail_next(kind, **options)

    link = await client.get_link(owned_link, token=dscgg_token)

    assert link.slug == owned_link
    assert [r.method for r in fake_dscgg.requests] == ["GET", "GET"]


@pytest.mark.parametrize(
    ("kind", "options"), [("server_error", {"status": 500}), ("drop", {}), ("delay", {"delay": 0.5})]
)
async def test_create_is_never_resent_after_an_unknown_outcome(
    fake_dscgg: FakeDscgg,
    dscgg_session: aiohttp.ClientSession,
    dscgg_token: str,
    kind: Any,
    options: dict[str, Any],
) -> None:
    client = _client(dscgg_session, fake_dscgg.base_url, timeout=0.25)
    fake_dscgg.fail_next(kind, method="POST", **options)

    with pytest.raises(Unavailable):
        await client.create_link("fresh", token=dscgg_token, redirect=INVITE, type="server")

    assert [r.method for r in fake_dscgg.requests] == ["POST"]


async def test_update_is_resent_after_a_dropped_connection_but_not_after_5xx(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient, dscgg_token: str, owned_link: str
) -> None:
    fake_dscgg.fail_next("drop", method="PATCH")
    await dscgg_client.update_link(owned_link, token=dscgg_token, title="again")
    assert [r.method for r in fake_dscgg.requests] == ["PATCH", "PATCH"]
    assert fake_dscgg.links[owned_link]["meta"]["title"] == "again"

    fake_dscgg.reset()
    fake_dscgg.fail_next("server_error", method="PATCH")
    with pytest.raises(Unavailable):
        await dscgg_client.update_link(owned_link, token=dscgg_token, title="again")
    assert [r.method for r in fake_dscgg.requests] == ["PATCH"]


async def test_delete_is_not_resent_after_a_dropped_connection(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient, dscgg_token: str, owned_link: str
) -> None:
    attempts = _count_attempts(dscgg_client)
    fake_dscgg.fail_always("drop", method="DELETE")
    with pytest.raises(Unavailable):
        await dscgg_client.delete_link(owned_link, token=dscgg_token)
    # The client sends it once; aiohttp itself resends an idempotent request once after a
    # disconnect (RFC 9112 section 9.3.1), which the client cannot switch off on a caller's session.
    assert attempts == [_Method.DELETE]
    assert len(fake_dscgg.requests_to("delete_link")) == 2

    # A GET in the same situation is resent by the client with backoff: 1 + 2 retries.
    fake_dscgg.reset()
    attempts.clear()
    fake_dscgg.fail_always("drop", method="GET")
    with pytest.raises(Unavailable):
        await dscgg_client.get_link(owned_link, token=dscgg_token)
    assert attempts == [_Method.GET] * 3
    assert len(fake_dscgg.requests_to("get_link")) == 6


async def test_slow_dsc_gg_times_out_quickly(
    fake_dscgg: FakeDscgg, dscgg_session: aiohttp.ClientSession
) -> None:
    client = _client(dscgg_session, fake_dscgg.base_url, timeout=0.2, retries=1)
    fake_dscgg.latency = 2.0

    started = time.monotonic()
    with pytest.raises(Unavailable, match="timed out"):
        await client.get_link("x", token="t")

    assert time.monotonic() - started < 1.0
    assert len(fake_dscgg.requests) == 2


def _count_attempts(client: DscggClient) -> list[str]:
    """The methods of the attempts the client makes from now on (before aiohttp's own resends)."""
    attempts: list[str] = []
    session = client._session
    real_request = session.request

    def counting_request(method: str, *args: Any, **kwargs: Any) -> Any:
        attempts.append(method)
        return real_request(method, *args, **kwargs)

    session.request = counting_request  # type: ignore[method-assign]
    return attempts


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_connection_refused_is_unavailable(
    fake_dscgg: FakeDscgg, dscgg_session: aiohttp.ClientSession, dscgg_token: str
) -> None:
    client = _client(dscgg_session, f"http://127.0.0.1:{_closed_port()}/v2")
    attempts = _count_attempts(client)
    async with asyncio.timeout(10):
        with pytest.raises(Unavailable, match="cannot connect"):
            await client.create_link("x", token=dscgg_token, redirect=INVITE, type="server")
        # Nothing was sent, so even a create is tried again: 1 + 2 retries.
        assert attempts == ["POST"] * 3

        # The network comes back: none of those attempts used up one of the 3 creates per minute.
        client.base_url = fake_dscgg.base_url
        for slug in ("a", "b", "c"):
            await client.create_link(slug, token=dscgg_token, redirect=INVITE, type="server")
    assert {"a", "b", "c"} <= set(fake_dscgg.links)
    assert len(fake_dscgg.requests_to("create_link")) == 3


# ---------------------------------------------------------------- 429 from dsc.gg


async def test_429_with_retry_after_seconds_is_waited_once_for_a_get(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient, dscgg_token: str, owned_link: str
) -> None:
    fake_dscgg.fail_next("rate_limit", retry_after=0.3)

    started = time.monotonic()
    link = await dscgg_client.get_link(owned_link, token=dscgg_token)

    assert link.slug == owned_link
    assert time.monotonic() - started >= 0.3
    assert len(fake_dscgg.requests) == 2


async def test_429_twice_is_raised_not_retried_forever(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient
) -> None:
    fake_dscgg.fail_next("rate_limit", n=5, retry_after=0.05)

    with pytest.raises(RateLimited) as caught:
        await dscgg_client.get_link("x", token="t")

    assert caught.value.from_server
    assert len(fake_dscgg.requests) == 2


async def test_429_without_retry_after_uses_the_documented_window_and_blocks_the_bucket(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient
) -> None:
    fake_dscgg.fail_next("rate_limit")

    with pytest.raises(RateLimited) as caught:
        await dscgg_client.get_link("x", token="t")
    assert caught.value.from_server
    assert caught.value.endpoint == "get_link"
    assert caught.value.retry_after == pytest.approx(10.0)

    # The bucket is exhausted: the next call is refused here, without reaching dsc.gg.
    with pytest.raises(RateLimited) as again:
        await dscgg_client.get_link("x", token="t")
    assert not again.value.from_server
    # What is left of the 10 s block: a little less, however slow the machine.
    assert 5.0 < again.value.retry_after <= 10.0
    assert len(fake_dscgg.requests) == 1
    # Other tokens and other endpoints are not affected.
    with pytest.raises(InvalidKey):
        await dscgg_client.get_link("x", token="other")
    with pytest.raises(InvalidKey):
        await dscgg_client.get_user(1, token="t")


async def test_429_with_an_http_date(fake_dscgg: FakeDscgg, dscgg_client: DscggClient) -> None:
    fake_dscgg.fail_next("rate_limit", retry_after=30, retry_after_date=True)

    with pytest.raises(RateLimited) as caught:
        await dscgg_client.get_link("x", token="t")

    assert 28 <= caught.value.retry_after <= 30
    assert len(fake_dscgg.requests) == 1


async def test_200_with_rate_limit_code_is_a_rate_limit(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient
) -> None:
    fake_dscgg.fail_next("rate_limit_200", retry_after=20)
    with pytest.raises(RateLimited) as caught:
        await dscgg_client.get_link("x", token="t")
    assert caught.value.from_server
    assert caught.value.retry_after == pytest.approx(20)


async def test_429_as_plain_text_is_a_rate_limit(fake_dscgg: FakeDscgg, dscgg_client: DscggClient) -> None:
    fake_dscgg.fail_next("html", status=429)
    with pytest.raises(RateLimited):
        await dscgg_client.get_link("x", token="t")


async def test_429_on_create_is_not_retried(fake_dscgg: FakeDscgg, dscgg_client: DscggClient) -> None:
    fake_dscgg.fail_next("rate_limit", retry_after=0.05)
    with pytest.raises(RateLimited) as caught:
        await dscgg_client.create_link("x", token="t", redirect=INVITE, type="server")
    assert caught.value.endpoint == "create_link"
    assert len(fake_dscgg.requests) == 1


# ---------------------------------------------------------------- the token never leaks

SECRET = "SECRET-TOKEN-must-never-leak-9f8e7d"


async def _every_failure(
    fake: FakeDscgg, client: DscggClient
) -> AsyncIterator[Callable[[], Awaitable[object]]]:
    """Arm a fault, yield the call that hits it; covers every error path of the client."""
    faults: list[tuple[str, dict[str, Any]]] = [
        ("code", {"code": "invalid_key"}),
        ("code", {"code": "owner_mismatch", "message": "not yours"}),
        ("unknown_code", {}),
        ("success_false", {}),
        ("server_error", {}),
        ("html", {}),
        ("invalid_json", {}),
        ("truncated_json", {}),
        ("json_array", {}),
        ("drop", {}),
        ("delay", {"delay": 0.5}),
        ("rate_limit", {"retry_after": 99}),
        ("rate_limit", {}),
        ("envelope", {"body": {"success": True, "code": "payload_received", "payload": {"key": SECRET}}}),
    ]
    for kind, options in faults:
        fake.reset()
        fake.fail_always(kind, **options)  # type: ignore[arg-type]
        yield lambda: client.get_link("x", token=SECRET)
        yield lambda: client.create_link("x", token=SECRET, redirect=INVITE, type="server")
        yield lambda: client.get_app("x", token=SECRET)
        # The bucket may now be blocked by a 429; a fresh one per fault keeps every path reachable.
        client.rate_limiter = RateLimiter(client.rate_limiter.limits)
    fake.reset()
    yield lambda: client.get_link("x", token=SECRET + "\n")  # refused locally
    for _ in range(4):  # the fourth create is refused by the local bucket
        yield lambda: client.create_link("x", token=SECRET, redirect=INVITE, type="video")
    client.rate_limiter = RateLimiter({"create_link": (1, 60.0)})
    yield lambda: client.create_link("y", token=SECRET, redirect=INVITE, type="server")
    yield lambda: client.create_link("y", token=SECRET, redirect=INVITE, type="server")


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


async def test_token_appears_in_no_exception_and_no_log_record(
    fake_dscgg: FakeDscgg, dscgg_session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    fake_dscgg.add_key(SECRET, user_id=TEST_USER_ID)
    client = _client(dscgg_session, fake_dscgg.base_url, timeout=0.2, max_rate_limit_wait=0.01)
    caplog.set_level(logging.DEBUG)
    raised: list[BaseException] = []

    async for call in _every_failure(fake_dscgg, client):
        try:
            await call()
        except Exception as caught:  # every kind of failure is collected on purpose
            raised.append(caught)

    kinds = {type(failure) for failure in raised}
    assert {InvalidKey, OwnerMismatch, UnknownAPIError, Unavailable, RateLimited, ValueError} <= kinds
    for failure in raised:
        for link in _chain(failure):
            assert SECRET not in str(link)
            assert SECRET not in repr(link)
            assert SECRET not in repr(link.args)
    assert SECRET not in repr(client)
    assert caplog.records, "the client logs at DEBUG"
    for record in caplog.records:
        assert SECRET not in record.getMessage()
        assert SECRET not in repr(record.args)
    assert any(record.name == "bot.dscgg.client" for record in caplog.records)


async def test_debug_log_names_method_endpoint_status_and_latency(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot.dscgg.client")
    await dscgg_client.get_top_links()
    (line,) = [record.getMessage() for record in caplog.records if "->" in record.getMessage()]
    assert line.startswith("dsc.gg GET get_top_links -> 200 in ")
    assert line.endswith(" ms")


async def test_cancelled_caller_does_not_hang_the_client(
    fake_dscgg: FakeDscgg, dscgg_session: aiohttp.ClientSession
) -> None:
    # One request per 0.2 s: a slot left unsettled by the cancelled call would block the next
    # call for good (it is never pruned, and in flight it counts as "now" forever).
    client = _client(dscgg_session, fake_dscgg.base_url, limits={"get_top_links": (1, 0.2)})
    fake_dscgg.latency = 1.0
    async with asyncio.timeout(10):
        task = asyncio.create_task(client.get_top_links())
        await asyncio.sleep(0.2)  # the request is in flight (answers take 1 s)
        assert len(fake_dscgg.requests) == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        fake_dscgg.latency = 0.0
        await asyncio.sleep(0.3)  # the window has passed since the cancellation

        assert await client.get_top_links() == []
    assert len(fake_dscgg.requests) == 2


# ---------------------------------------------------------------- reviewed edge cases


@pytest.mark.parametrize(
    "body",
    [
        # Nested past any parser's depth: must not escape as RecursionError.
        b"[" * 100_000 + b"]" * 100_000,
        b'{"success":true,"code":"payload_received","payload":' + b"[" * 5000 + b"]" * 5000 + b"}",
        # JSON numbers an int cannot hold.
        b'{"success":true,"code":"payload_received","payload":{"id":"x","stats":{"clicks":Infinity}}}',
        b'{"success":true,"code":"payload_received","payload":{"id":"x","stats":{"clicks":1e400}}}',
        b'{"success":true,"code":"payload_received","payload":{"id":"x","stats":{"clicks":NaN}}}',
    ],
)
async def test_garbage_bodies_are_unavailable(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient, body: bytes
) -> None:
    fake_dscgg.fail_always("raw", body=body)

    with pytest.raises(Unavailable):
        await dscgg_client.get_link("x", token="t", with_stats=True)


async def test_one_unreadable_entry_does_not_hide_the_others(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient
) -> None:
    body = (
        b'{"success":true,"code":"payload_received","payload":['
        b'{"id":"good","stats":{"clicks":3}},{"id":"bad","stats":{"clicks":Infinity}},{"id":"also"}]}'
    )
    fake_dscgg.fail_next("raw", body=body)

    top = await dscgg_client.get_top_links()

    assert [link.slug for link in top] == ["good", "also"]


async def test_an_echoed_token_is_not_in_the_error(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient, dscgg_token: str
) -> None:
    fake_dscgg.fail_next("code", code="bad_request", message=f"key {dscgg_token} is not allowed here")

    with pytest.raises(BadRequest) as caught:
        await dscgg_client.get_link("x", token=dscgg_token)

    assert dscgg_token not in str(caught.value)
    assert dscgg_token not in caught.value.message
    assert caught.value.message == "key [token] is not allowed here"


@pytest.mark.parametrize("method", ["PATCH", "DELETE", "POST"])
async def test_an_empty_2xx_to_a_change_is_success(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient, dscgg_token: str, owned_link: str, method: str
) -> None:
    fake_dscgg.fail_next("empty", status=204, method=method)
    calls: dict[str, Callable[[], Awaitable[None]]] = {
        "PATCH": lambda: dscgg_client.update_link(owned_link, token=dscgg_token, title="t"),
        "DELETE": lambda: dscgg_client.delete_link(owned_link, token=dscgg_token),
        "POST": lambda: dscgg_client.create_link("new", token=dscgg_token, redirect=INVITE, type="server"),
    }

    await calls[method]()  # no Unavailable: the change went through
    assert [r.method for r in fake_dscgg.requests] == [method]


async def test_an_empty_2xx_to_a_read_is_still_unavailable(
    fake_dscgg: FakeDscgg, dscgg_client: DscggClient, dscgg_token: str
) -> None:
    fake_dscgg.fail_next("empty", status=200)
    with pytest.raises(Unavailable):
        await dscgg_client.get_link("x", token=dscgg_token)
