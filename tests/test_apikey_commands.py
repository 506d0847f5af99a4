"""/dscgg apikey create|list|revoke: the key is shown once (ephemeral), listed without it, revoked by
name through autocomplete; refusals are friendly."""

from __future__ import annotations

import pytest

from bot.db.apikeys import MAX_KEYS_PER_GUILD
from bot.errors import TooManyApiKeys, UnknownApiKey, describe
from tests.fixtures.bot import WiredBot
from tests.harness import ADMIN, MEMBER


@pytest.fixture
async def w(make_wired_bot):
    async with make_wired_bot(extensions=("cogs.admin",)) as wired:
        yield wired


async def test_create_shows_the_key_once_and_list_never(w: WiredBot) -> None:
    created = await w.run("dscgg apikey create", {"name": "ci"})
    assert created.ephemeral
    key = next(word for word in created.text().split() if word.startswith("dscggbot_"))
    assert "Copy it now: it won't be shown again" in created.text()
    assert await w.bot.api_keys.authenticate(key) is not None

    listed = await w.run("dscgg apikey list")
    assert listed.ephemeral
    assert "**ci**" in listed.text()
    assert f"<@{ADMIN.id}>" in listed.text()
    assert "last used" in listed.text()
    assert key not in listed.text()
    assert key[9:19] not in listed.text()


async def test_revoke_picks_the_key_by_name_and_it_stops_working(w: WiredBot) -> None:
    new = await w.bot.api_keys.create(w.guild_id, ADMIN.id, "deploy script")
    await w.bot.api_keys.create(w.guild_id, ADMIN.id, "ci")
    choices = (await w.harness.autocomplete("dscgg apikey revoke", {"key": "depl"}, focused="key")).choices
    assert choices is not None
    assert [choice["value"] for choice in choices] == [str(new.record.id)]
    assert choices[0]["name"].startswith("deploy script (created ")
    nothing = await w.harness.autocomplete("dscgg apikey revoke", {"key": ""}, focused="key", user=MEMBER)
    assert nothing.choices == []

    revoked = await w.run("dscgg apikey revoke", {"key": str(new.record.id)})
    assert revoked.ephemeral
    assert "Revoked the API key **deploy script**" in revoked.text()
    assert await w.bot.api_keys.authenticate(new.key.get_secret_value()) is None
    history = await w.bot.audit.history(w.guild_id, 0)
    assert [event.kind.value for event in history.events[:2]] == ["api_key_revoked", "api_key_created"]

    again = await w.run("dscgg apikey revoke", {"key": str(new.record.id)})
    assert again.ephemeral
    assert "no such API key" in again.text()
    assert "`/dscgg apikey list`" in again.text()


async def test_a_server_has_at_most_25_keys(w: WiredBot) -> None:
    for index in range(MAX_KEYS_PER_GUILD):
        await w.bot.api_keys.create(w.guild_id, ADMIN.id, f"key {index}")
    refused = await w.run("dscgg apikey create", {"name": "one more"})
    assert refused.ephemeral
    assert "already has 25 API keys" in refused.text()
    assert "`/dscgg apikey revoke`" in refused.text()
    assert await w.bot.api_keys.count(w.guild_id) == MAX_KEYS_PER_GUILD


async def test_members_without_manage_server_cannot_create_keys(w: WiredBot) -> None:
    refused = await w.run("dscgg apikey create", {"name": "sneaky"}, user=MEMBER)
    assert refused.ephemeral
    assert "Manage Server" in refused.text()
    assert await w.bot.api_keys.count(w.guild_id) == 0


def test_the_new_refusals_have_friendly_sentences() -> None:
    assert describe(TooManyApiKeys(25)).startswith("This server already has 25 API keys")
    assert describe(UnknownApiKey()).startswith("This server has no such API key")
