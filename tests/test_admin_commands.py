"""/dscgg token set|clear, /dscgg logs and /dscgg status, through the harness: real tree, fake Discord
and dsc.gg."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace

import discord
import pytest
from cryptography.fernet import Fernet

from bot import checks, log
from bot.audit import AuditEvent, EventKind
from bot.crypto import TokenCipher
from bot.db import TokenStore
from bot.errors import MissingManageGuild, NotInGuild
from bot.settings import Settings
from tests.fakes.discord import RecordedRequest
from tests.fixtures.bot import ADMIN_TOKEN, WiredBot, wired
from tests.harness import ADMIN, ADMINISTRATOR_USER, MEMBER, HarnessError, Message, Result

NOT_ADMIN = "You need the **Manage Server** permission to use this command."


@pytest.fixture
async def w(tmp_path: Path, settings_factory: Callable[..., Settings]) -> AsyncIterator[WiredBot]:
    async with wired(tmp_path, settings_factory, extensions=("cogs.admin",)) as bot:
        yield bot


def only_message(result: Result) -> Message:
    assert not result.rejected_callbacks
    messages = result.messages
    assert len(messages) == 1, messages
    message = messages[0]
    assert message.ephemeral
    assert message.allowed_mentions == {"parse": []}
    return message


async def set_token(w: WiredBot, token: str, *, user=ADMIN) -> Result:
    opened = await w.run("dscgg token set", user=user)
    return await w.harness.submit_modal(opened, {"token": token}, user=user)


def button(message: Message | None, label: str) -> str:
    assert message is not None
    for comp in message.buttons():
        if comp.get("label") == label:
            return str(comp["custom_id"])
    raise AssertionError(f"no {label!r} button in {[c.get('label') for c in message.buttons()]}")


async def ask_to_clear(w: WiredBot) -> Result:
    """Run /dscgg token clear, which then waits for the Clear or Cancel button."""
    result = await w.run("dscgg token clear")
    assert result.waiting_for_input, result.text()
    return result


async def clear_token(w: WiredBot) -> Message:
    """/dscgg token clear, confirmed: the final state of its (only) message."""
    result = await ask_to_clear(w)
    await w.harness.click(result, button(result.final_message, "Clear"))
    return only_message(result)


async def audit_kinds(w: WiredBot) -> list[str]:
    """Audit events stored so far, newest first (stored before the command replies: no waiting)."""
    return [row.kind for row in await w.bot.audit_events.latest(w.guild_id, 10)]


def everything_sent_to_discord(w: WiredBot) -> str:
    return "\n".join(repr(r.body) for r in w.discord.requests)


# ------------------------------------------------------------------------------------------- set


async def test_token_set_opens_a_modal_with_one_empty_input(w: WiredBot) -> None:
    result = await w.run("dscgg token set")
    modal = result.modal
    assert modal is not None
    (row,) = modal["components"]
    (text_input,) = row["components"]
    assert text_input["custom_id"] == "token"
    assert text_input["style"] == 1  # short, not paragraph
    assert (text_input["min_length"], text_input["max_length"]) == (8, 200)
    assert "value" not in text_input  # never prefilled


async def test_valid_token_is_stored_encrypted_and_never_echoed(w: WiredBot) -> None:
    done = await set_token(w, f"  {ADMIN_TOKEN}  ")
    assert done.initial is not None
    assert done.initial.type == 5  # deferred before validating
    message = only_message(done)
    assert "Saved." in message.content
    assert f"`{ADMIN_TOKEN[-4:]}`" in message.content
    assert ADMIN_TOKEN not in everything_sent_to_discord(w)

    row = await w.db.fetch_one(
        "SELECT ciphertext FROM guild_tokens WHERE guild_id = :guild", {"guild": w.guild_id}
    )
    assert row is not None
    assert ADMIN_TOKEN not in row.ciphertext
    assert await w.bot.token_store.get(w.guild_id) == ADMIN_TOKEN  # stripped of the pasted blanks
    assert [r.method for r in w.dscgg.requests] == ["GET"]  # one cheap validation call
    assert EventKind.TOKEN_SET in await audit_kinds(w)


async def test_rejected_token_stores_nothing_and_echoes_nothing(w: WiredBot) -> None:
    bad = "not-a-real-dscgg-key-123456"
    done = await set_token(w, bad)
    message = only_message(done)
    assert "rejected that token, so nothing was saved" in message.content
    assert bad not in everything_sent_to_discord(w)
    assert bad[-4:] not in message.content
    assert await w.bot.token_store.info(w.guild_id) is None
    assert EventKind.TOKEN_REJECTED in await audit_kinds(w)


MALFORMED = (
    "Check the `token` option: that isn't a dsc.gg API key (those are 8 to 200 letters, digits and "
    "symbols, without spaces or invisible characters). Nothing was saved. Copy the key again from "
    "https://dsc.gg/developer and paste only the key."
)


@pytest.mark.parametrize(
    "pasted",
    [
        " " * 8,
        "dscgg-admin\tkey-7f3a9c",
        "dscgg-clé-secrète-123456",
        "dscgg-admin-key-7f3a\u200b9c2e51b8d4",  # a zero-width space picked up when copying
        "two words-in-one-key",
        "\u200b\u200b\u200b\u200b\u200b\u200b\u200b\u200b",
        "  short  ",
    ],
)
async def test_malformed_token_is_refused_locally_with_its_own_sentence(
    w: WiredBot, pasted: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        done = await set_token(w, pasted)
    message = only_message(done)
    assert message.content == MALFORMED  # not the "something went wrong … error id" one
    assert w.dscgg.requests == []  # never sent anywhere
    assert await w.bot.token_store.info(w.guild_id) is None
    assert await audit_kinds(w) == [EventKind.TOKEN_MALFORMED]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    if pasted.strip():
        assert pasted.strip() not in everything_sent_to_discord(w)
        assert pasted.strip() not in caplog.text


async def test_a_rejected_token_does_not_mask_that_word_in_later_logs(w: WiredBot) -> None:
    try:
        for word in ("interaction", "Unexpected error"):
            await set_token(w, word.replace(" ", "-"))
        assert log.redact("Unexpected error in an interaction") == "Unexpected error in an interaction"
        assert log.redact("Unexpected-error") == "Unexpected-error"
        # A token that was stored stays masked.
        await set_token(w, ADMIN_TOKEN)
        assert log.redact(f"key {ADMIN_TOKEN}") == f"key {log.MASK}"
    finally:
        log.forget_secrets()


async def test_clear_stops_masking_the_token_unless_another_server_uses_it(w: WiredBot) -> None:
    try:
        await set_token(w, ADMIN_TOKEN)
        await clear_token(w)
        assert log.redact(f"key {ADMIN_TOKEN}") == f"key {ADMIN_TOKEN}"

        # Two servers with the same token: clearing one keeps it masked for the other.
        other_guild = w.guild_id + 1
        await w.bot.token_store.set(other_guild, ADMIN_TOKEN, set_by=ADMIN.id)
        assert await w.bot.tokens.token_for(other_guild) == ADMIN_TOKEN
        await set_token(w, ADMIN_TOKEN)
        await clear_token(w)
        assert log.redact(f"key {ADMIN_TOKEN}") == f"key {log.MASK}"
        await w.bot.tokens.clear(other_guild, ADMIN.id)
        assert log.redact(f"key {ADMIN_TOKEN}") == f"key {ADMIN_TOKEN}"
    finally:
        log.forget_secrets()


async def test_rejected_token_does_not_replace_a_working_one(w: WiredBot) -> None:
    await set_token(w, ADMIN_TOKEN)
    await set_token(w, "another-bad-key-00000000")
    assert await w.bot.token_store.get(w.guild_id) == ADMIN_TOKEN


async def test_token_set_while_dscgg_is_down_stores_nothing(w: WiredBot) -> None:
    w.dscgg.fail_always("server_error")
    message = only_message(await set_token(w, ADMIN_TOKEN))
    assert message.content == "dsc.gg is not answering properly, try again later."
    assert await w.bot.token_store.info(w.guild_id) is None


async def test_member_cannot_set_a_token(w: WiredBot) -> None:
    result = await w.run("dscgg token set", user=MEMBER)
    assert result.modal is None
    assert only_message(result).content == NOT_ADMIN


async def test_modal_submit_rechecks_permissions(w: WiredBot) -> None:
    opened = await w.run("dscgg token set")
    done = await w.harness.submit_modal(opened, {"token": ADMIN_TOKEN}, user=MEMBER)
    assert only_message(done).content == NOT_ADMIN
    assert await w.bot.token_store.info(w.guild_id) is None


async def test_administrator_may_set_a_token(w: WiredBot) -> None:
    w.dscgg.add_key("root-user-dscgg-key-42", user_id=ADMINISTRATOR_USER.id)
    message = only_message(await set_token(w, "root-user-dscgg-key-42", user=ADMINISTRATOR_USER))
    assert "Saved." in message.content


async def test_short_token_is_saved_without_showing_its_end(w: WiredBot) -> None:
    short = "k3y-12-chars"
    w.dscgg.add_key(short, user_id=ADMIN.id)
    message = only_message(await set_token(w, short))
    assert "Saved. The token (too short to show its end) is now used" in message.content
    assert short[-4:] not in message.content
    fields = status_fields(only_message(await w.run("dscgg status")))
    assert short[-4:] not in fields["Token"]


# ----------------------------------------------------------------------------------------- clear


async def test_clear_asks_first_and_forgets_the_token_on_confirm(w: WiredBot) -> None:
    await set_token(w, ADMIN_TOKEN)
    result = await ask_to_clear(w)
    question = only_message(result)
    assert question.content.startswith(
        f"Forget this server's dsc.gg token ending in `{ADMIN_TOKEN[-4:]}`? Link commands will stop working"
    )
    assert [b.get("label") for b in question.buttons()] == ["Clear", "Cancel"]
    assert await w.bot.token_store.info(w.guild_id) is not None  # nothing cleared before the answer

    press = await w.harness.click(result, button(question, "Clear"))
    assert press.initial is not None
    assert press.initial.type == 7  # the press updates the question
    message = only_message(result)
    assert message.content.startswith(f"Forgot this server's dsc.gg token ending in `{ADMIN_TOKEN[-4:]}`")
    assert message.buttons() == []
    assert await w.bot.token_store.info(w.guild_id) is None
    assert EventKind.TOKEN_CLEARED in await audit_kinds(w)


async def test_clear_cancelled_keeps_the_token(w: WiredBot) -> None:
    await set_token(w, ADMIN_TOKEN)
    result = await ask_to_clear(w)
    await w.harness.click(result, button(result.final_message, "Cancel"))
    message = only_message(result)
    assert message.content == f"Cancelled. The token ending in `{ADMIN_TOKEN[-4:]}` is still set."
    assert message.buttons() == []
    assert await w.bot.tokens.token_for(w.guild_id) == ADMIN_TOKEN
    assert EventKind.TOKEN_CLEARED not in await audit_kinds(w)


async def test_clear_buttons_refuse_another_admin(w: WiredBot) -> None:
    await set_token(w, ADMIN_TOKEN)
    result = await ask_to_clear(w)
    other = await w.harness.click(result, button(result.final_message, "Clear"), user=ADMINISTRATOR_USER)
    assert other.initial is not None
    assert other.initial.type == 4
    assert other.initial.ephemeral
    assert other.initial.content == "Only the person who ran the command can use these buttons."
    assert await w.bot.token_store.info(w.guild_id) is not None
    assert only_message(result).content.startswith("Forget this server's dsc.gg token")  # still asking
    await w.harness.click(result, button(result.final_message, "Cancel"))
    assert await w.bot.token_store.info(w.guild_id) is not None


async def test_clear_unanswered_expires_and_keeps_the_token(w: WiredBot) -> None:
    await set_token(w, ADMIN_TOKEN)
    result = await ask_to_clear(w)
    assert await w.harness.expire_views() == []
    message = only_message(result)
    assert message.content == (
        f"Cancelled: no answer in time. The token ending in `{ADMIN_TOKEN[-4:]}` is still set."
    )
    assert all(b.get("disabled") for b in message.buttons())
    assert await w.bot.token_store.info(w.guild_id) is not None


async def test_clear_without_a_token_says_so_without_asking(w: WiredBot) -> None:
    message = only_message(await w.run("dscgg token clear"))
    assert message.content == "This server had no dsc.gg token stored, so there was nothing to clear."
    assert message.buttons() == []


async def test_member_cannot_clear(w: WiredBot) -> None:
    await set_token(w, ADMIN_TOKEN)
    assert only_message(await w.run("dscgg token clear", user=MEMBER)).content == NOT_ADMIN
    assert await w.bot.token_store.info(w.guild_id) is not None


# ---------------------------------------------------------------------------------------- status


def status_fields(message: Message) -> dict[str, str]:
    (embed,) = message.embeds
    return {field["name"]: field["value"] for field in embed["fields"]}


async def test_status_without_a_token(w: WiredBot) -> None:
    fields = status_fields(only_message(await w.run("dscgg status")))
    assert fields["Token"] == "Not set. An admin can set one with `/dscgg token set`."
    assert "dsc.gg" not in fields  # nothing to check
    assert "Audit log" in fields
    assert w.dscgg.requests == []


async def test_status_with_an_accepted_token(w: WiredBot) -> None:
    await set_token(w, ADMIN_TOKEN)
    fields = status_fields(only_message(await w.run("dscgg status")))
    assert f"ending in `{ADMIN_TOKEN[-4:]}`" in fields["Token"]
    assert f"<@{ADMIN.id}>" in fields["Token"]  # who (never pinged: allowed_mentions none) …
    assert ":R>" in fields["Token"]  # … and when
    assert fields["dsc.gg"] == "Accepts the token."
    assert ADMIN_TOKEN not in everything_sent_to_discord(w)


async def test_status_when_dscgg_rejects_the_stored_token(w: WiredBot) -> None:
    await w.bot.token_store.set(w.guild_id, "revoked-key-abcdefgh", set_by=ADMIN.id)
    fields = status_fields(only_message(await w.run("dscgg status")))
    assert fields["dsc.gg"] == "**Rejects** the token. Set a current one with `/dscgg token set`."


async def test_status_when_dscgg_is_down(w: WiredBot) -> None:
    await set_token(w, ADMIN_TOKEN)
    w.dscgg.fail_always("server_error")
    fields = status_fields(only_message(await w.run("dscgg status")))
    assert fields["dsc.gg"] == "Couldn't check: dsc.gg is not answering. Try again later."
    assert f"`{ADMIN_TOKEN[-4:]}`" in fields["Token"]


async def test_status_when_the_token_no_longer_decrypts(w: WiredBot) -> None:
    other_key = TokenStore(w.db, TokenCipher([Fernet.generate_key().decode()]))
    await other_key.set(w.guild_id, ADMIN_TOKEN, set_by=ADMIN.id)
    fields = status_fields(only_message(await w.run("dscgg status")))
    assert "must be set again with `/dscgg token set`" in fields["Token"]
    assert "dsc.gg" not in fields
    assert w.dscgg.requests == []


async def test_member_cannot_see_status(w: WiredBot) -> None:
    assert only_message(await w.run("dscgg status", user=MEMBER)).content == NOT_ADMIN


# ---------------------------------------------------------------------------- guild-only, metadata


async def test_dscgg_is_guild_only_and_manage_server_by_default(w: WiredBot) -> None:
    (synced,) = [c for c in w.discord.commands[None] if c["name"] == "dscgg"]
    assert synced["contexts"] == [0]
    assert int(synced["default_member_permissions"]) == 1 << 5


def test_runtime_check_refuses_dms_and_members() -> None:
    """Discord does not offer /dscgg in DMs (the harness refuses to build such a payload); the
    runtime check still refuses one, and members without Manage Server, whatever Discord sends."""
    dm = SimpleNamespace(guild_id=None, permissions=discord.Permissions.all())
    with pytest.raises(NotInGuild):
        checks.ensure_manage_guild(dm)  # type: ignore[arg-type]
    member = SimpleNamespace(guild_id=1, permissions=discord.Permissions.none())
    with pytest.raises(MissingManageGuild):
        checks.ensure_manage_guild(member)  # type: ignore[arg-type]
    admin = SimpleNamespace(guild_id=1, permissions=discord.Permissions(manage_guild=True))
    assert checks.ensure_manage_guild(admin)  # type: ignore[arg-type]


async def test_dm_invocation_is_not_offered(w: WiredBot) -> None:
    with pytest.raises(HarnessError, match="guild-only"):
        await w.run("dscgg status", dm=True)


# ------------------------------------------------------------------------------------------ logs


def log_posts(w: WiredBot, channel_id: int) -> list[RecordedRequest]:
    return [r for r in w.discord.requests_to("channel_message") if int(r.params["channel"]) == channel_id]


async def test_logs_sets_the_channel_and_announces_it_there(w: WiredBot) -> None:
    log_channel = w.harness.guild.log_channel_id
    result = await w.run("dscgg logs", {"channel": log_channel})
    message = only_message(result)
    assert message.content == (
        f"Link and token changes will be posted in <#{log_channel}>. "
        "`/dscgg status` shows the log channel and the latest changes."
    )
    assert (await w.bot.guild_settings.get(w.guild_id)).log_channel_id == log_channel

    (post,) = await w.discord.wait_for(lambda: log_posts(w, log_channel))
    assert post.status == 200
    assert post.body["allowed_mentions"] == {"parse": []}
    (embed,) = post.body["embeds"]
    assert embed["title"] == "Log channel changed"
    assert f"<@{ADMIN.id}> set the audit log channel to <#{log_channel}>." in embed["description"]


async def test_logs_refuses_a_channel_the_bot_cannot_post_in_and_stores_nothing(w: WiredBot) -> None:
    locked = w.harness.guild.locked_channel_id
    message = only_message(await w.run("dscgg logs", {"channel": locked}))
    assert message.content == (
        f"I can't post in <#{locked}>: I'm missing **View Channel** and **Send Messages** there. "
        "Grant them in the channel's settings or pick another channel."
    )
    assert (await w.bot.guild_settings.get(w.guild_id)).log_channel_id is None
    await w.bot.audit.flush()
    assert w.discord.channel_posts == []
    assert await w.bot.audit_events.latest(w.guild_id, 10) == []


async def test_status_shows_the_log_channel_and_the_latest_changes(w: WiredBot) -> None:
    log_channel = w.harness.guild.log_channel_id
    await w.run("dscgg logs", {"channel": log_channel})
    await set_token(w, ADMIN_TOKEN)
    await w.bot.audit.flush()

    audit = status_fields(only_message(await w.run("dscgg status")))["Audit log"]
    lines = audit.splitlines()
    assert lines[0] == f"Log channel: <#{log_channel}>"
    assert lines[1] == "Latest changes:"
    assert lines[2].endswith(f"<@{ADMIN.id}> set this server's dsc.gg token.")
    assert lines[3].endswith(f"<@{ADMIN.id}> set the audit log channel to <#{log_channel}>.")
    assert "Posting failed" not in audit


async def test_member_cannot_change_the_log_channel(w: WiredBot) -> None:
    log_channel = w.harness.guild.log_channel_id
    result = await w.run("dscgg logs", {"channel": log_channel}, user=MEMBER)
    assert only_message(result).content == NOT_ADMIN
    assert (await w.bot.guild_settings.get(w.guild_id)).log_channel_id is None
    await w.bot.audit.flush()
    assert w.discord.channel_posts == []


async def test_logs_without_a_channel_turns_the_log_off(w: WiredBot) -> None:
    log_channel = w.harness.guild.log_channel_id
    await w.run("dscgg logs", {"channel": log_channel})
    message = only_message(await w.run("dscgg logs"))
    assert message.content == "The audit log is off. Turn it back on with `/dscgg logs channel:`."
    assert (await w.bot.guild_settings.get(w.guild_id)).log_channel_id is None

    # The channel that stops receiving posts is told so; after that, changes are stored, not posted.
    posts = await w.discord.wait_for(
        lambda: len(log_posts(w, log_channel)) == 2 and log_posts(w, log_channel)
    )
    assert f"<@{ADMIN.id}> turned the audit log off." in posts[1].body["embeds"][0]["description"]
    await set_token(w, ADMIN_TOKEN)
    await w.bot.audit.flush()
    assert len(w.discord.channel_posts) == 2
    audit = status_fields(only_message(await w.run("dscgg status")))["Audit log"]
    assert audit.startswith("Log channel: **off**")
    assert "set this server's dsc.gg token" in audit


async def test_a_deleted_log_channel_does_not_fail_the_command_and_shows_in_status(w: WiredBot) -> None:
    log_channel = w.harness.guild.log_channel_id
    await w.run("dscgg logs", {"channel": log_channel})
    await set_token(w, ADMIN_TOKEN)
    await w.bot.audit.flush()
    w.discord.delete_channel(log_channel)

    message = await clear_token(w)
    assert message.content.startswith("Forgot this server's dsc.gg token")
    await w.bot.audit.flush()
    assert [r.status for r in log_posts(w, log_channel)] == [200, 200, 404]

    audit = status_fields(only_message(await w.run("dscgg status")))["Audit log"]
    assert f"Log channel: <#{log_channel}>" in audit
    assert "Posting failed: the log channel no longer exists" in audit
    assert "removed this server's dsc.gg token" in audit  # the change itself was kept


# ------------------------------------------------------------------------------------------ /dscgg audit


async def test_audit_shows_the_servers_whole_history_newest_first_in_pages(w: WiredBot) -> None:
    for i in range(12):
        deleted = AuditEvent(w.guild_id, EventKind.LINK_DELETED, actor_id=ADMIN.id, slug=f"link-{i:02d}")
        await w.bot.audit.record(deleted)
    await w.bot.audit.record(AuditEvent(w.guild_id + 16, EventKind.TOKEN_CLEARED, actor_id=None))
    await set_token(w, "two words-in-one-key")  # a refused change is part of the history too

    result = await w.run("dscgg audit")
    assert result.initial is not None
    assert result.initial.ephemeral
    message = result.final_message
    assert message is not None
    assert message.ephemeral
    assert message.allowed_mentions == {"parse": []}
    (embed,) = message.embeds
    assert embed["footer"]["text"] == "Page 1/2 · 13 events · newest first"
    entries = embed["description"].split("\n\n")
    assert len(entries) == 10
    assert "isn't a dsc.gg API key" in entries[0]
    assert [entry.split("dsc.gg/")[1].split("**")[0] for entry in entries[1:]] == [
        f"link-{i:02d}" for i in range(11, 2, -1)
    ]
    assert "removed this server's dsc.gg token" not in embed["description"]  # another server's

    await w.harness.click(result, button(message, "Next ›"))
    (embed,) = message.embeds
    assert embed["footer"]["text"] == "Page 2/2 · 13 events · newest first"
    assert [entry.split("dsc.gg/")[1].split("**")[0] for entry in embed["description"].split("\n\n")] == [
        "link-02",
        "link-01",
        "link-00",
    ]


async def test_audit_of_a_server_without_history(w: WiredBot) -> None:
    message = only_message(await w.run("dscgg audit"))
    (embed,) = message.embeds
    assert embed["description"].startswith("No changes recorded yet")
    assert embed["footer"]["text"] == "Page 1/1 · 0 events · newest first"
    assert message.buttons() == []


async def test_member_cannot_read_the_audit_log(w: WiredBot) -> None:
    await w.bot.audit.record(AuditEvent(guild_id=w.guild_id, kind=EventKind.TOKEN_CLEARED, actor_id=ADMIN.id))
    message = only_message(await w.run("dscgg audit", user=MEMBER))
    assert message.content == NOT_ADMIN
    assert message.embeds == []
