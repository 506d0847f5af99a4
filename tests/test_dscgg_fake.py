"""The fake dsc.gg keeps its own contract: other test suites and the end-to-end run rely on it."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from tests.fakes.dscgg import FakeDscgg

ROOT = Path(__file__).resolve().parent.parent


async def test_fake_rate_limits_per_key_and_endpoint_with_scaled_windows() -> None:
    async with (
        # delete_link: 4 per 10 s, scaled to 4 per 0.5 s: room for a slow machine to send 5 in it.
        FakeDscgg(window_scale=0.05, send_retry_after=True) as fake,
        aiohttp.ClientSession() as session,
    ):
        fake.add_key("k", user_id=1)
        statuses = []
        for _ in range(5):
            async with session.delete(f"{fake.base_url}/link/x", headers={"Authorization": "k"}) as response:
                statuses.append(response.status)
                retry_after = response.headers.get("Retry-After")
        assert statuses == [404, 404, 404, 404, 429]
        assert retry_after is not None
        assert 0 < float(retry_after) <= 0.5
        assert fake.rate_limited_responses == 1
        # Another key is not affected; the window slides.
        async with session.delete(f"{fake.base_url}/link/x", headers={"Authorization": "other"}) as response:
            assert response.status == 401
        await asyncio.sleep(0.55)
        async with session.delete(f"{fake.base_url}/link/x", headers={"Authorization": "k"}) as response:
            assert response.status == 404


async def test_fake_envelopes(fake_dscgg: FakeDscgg) -> None:
    fake_dscgg.add_key("k", user_id=1)
    async with aiohttp.ClientSession(headers={"Authorization": "k"}) as session:
        body = {"redirect": "https://discord.gg/a", "type": "server"}
        async with session.post(f"{fake_dscgg.base_url}/link/new", json=body) as response:
            assert response.status == 201
            assert await response.json() == {
                "success": True,
                "code": "link_created",
                "message": "Link has been created successfully",
            }
        async with session.get(f"{fake_dscgg.base_url}/link/new") as response:
            envelope = await response.json()
            assert (response.status, envelope["success"], envelope["code"]) == (200, True, "payload_received")
            assert envelope["payload"]["owner"] == "1"
            assert "_password" not in envelope["payload"]
        async with session.get(f"{fake_dscgg.base_url}/nothing-here") as response:
            assert (response.status, (await response.json())["code"]) == (404, "not_found")


async def test_fake_one_shot_and_persistent_faults_filter_by_method(fake_dscgg: FakeDscgg) -> None:
    fake_dscgg.fail_next("server_error", method="POST")
    fake_dscgg.fail_always("json_array", endpoint="get_top_links")
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            async with session.get(f"{fake_dscgg.base_url}/top") as response:
                assert await response.json() == []
        async with session.post(f"{fake_dscgg.base_url}/link/x") as response:
            assert response.status == 502
            assert "Cloudflare" in await response.text()
        async with session.post(f"{fake_dscgg.base_url}/link/x") as response:
            assert response.status == 401
        fake_dscgg.clear_faults()
        async with session.get(f"{fake_dscgg.base_url}/top") as response:
            assert (await response.json())["payload"] == []


async def test_standalone_process_with_seed_file_and_control_api(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(
        json.dumps(
            {
                "keys": [{"token": "seeded", "user_id": 5, "whitelisted": True}],
                "links": [{"slug": "hello", "owner_id": 5, "clicks": 3}],
            }
        )
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fakes.dscgg", "--port", "0", "--seed-file", str(seed),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=20)).decode()
        assert line.startswith("FakeDscgg listening on http://127.0.0.1:")
        base_url = line.rsplit(" ", 1)[1].strip()
        assert base_url.endswith("/v2")
        root = base_url.removesuffix("/v2")
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base_url}/link/hello", headers={"Authorization": "seeded"}) as response:
                assert (await response.json())["payload"]["id"] == "hello"
            async with session.post(
                f"{root}/_fake/fail", json={"kind": "code", "code": "owner_mismatch"}
            ) as r:
                assert r.status == 200
            async with session.get(f"{base_url}/link/hello", headers={"Authorization": "seeded"}) as response:
                assert (await response.json())["code"] == "owner_mismatch"
            async with session.get(f"{root}/_fake/requests") as response:
                recorded = await response.json()
                assert [r["raw_path"] for r in recorded] == ["/v2/link/hello", "/v2/link/hello"]
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), timeout=10) in (0, -15)


@pytest.mark.parametrize("slug", ["a b", "a/b"])
async def test_fake_decodes_one_segment(fake_dscgg: FakeDscgg, slug: str) -> None:
    fake_dscgg.add_key("k", user_id=1)
    fake_dscgg.add_link(slug, owner_id=1)
    encoded = slug.replace(" ", "%20").replace("/", "%2F")
    async with aiohttp.ClientSession() as session:
        url = URL(f"{fake_dscgg.base_url}/link/{encoded}", encoded=True)
        async with session.get(url, headers={"Authorization": "k"}) as response:
            assert (await response.json())["payload"]["id"] == slug
