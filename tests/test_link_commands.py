"""/link create|edit|delete|info|list through the real tree, with Discord and dsc.gg faked on loopback."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import discord
import pytest

from bot.audit import AuditEvent, AuditTransaction, EventKind
from cogs.links import LinksCog
from tests.fixtures.bot import ADMIN_TOKEN, WiredBot
from tests.harness import ADMIN, ADMINISTRATOR_USER, MEMBER, OTHER_MEMBER, HarnessError, Message, Result

STRANGER_ID = 4_242_424_242  # a dsc.gg account other than the one whose token the server uses
NOT_MANAGED = (
    "`dsc.gg/{slug}` isn't managed by this server. If this server's dsc.gg account owns it, "
    "bring it here with `/link adopt slug:{slug}`."
)


# ------------------------------------------------------------------------------------------ helpers


@pytest.fixture
async def w(wired_bot: WiredBot) -> WiredBot:
    """The wired bot with the server's token registered (straight into the store: no dsc.gg call)."""
    await wired_bot.bot.token_store.set(wired_bot.guild_id, ADMIN_TOKEN, set_by=ADMIN.id)
    wired_bot.dscgg.reset()
    return wired_bot


@pytest.fixture
def audit(w: WiredBot, monkeypatch: pytest.MonkeyPatch) -> list[AuditEvent]:
    """The audit events the services store (every event goes through ``AuditTransaction.record``)."""
    events: list[AuditEvent] = []
    original = AuditTransaction.record

    async def spy(self: AuditTransaction, event: AuditEvent, **kwargs: Any) -> None:
        await original(self, event, **kwargs)
        events.append(event)

    monkeypatch.setattr(AuditTransaction, "record", spy)
    return events


def cog(w: WiredBot) -> Any:
    """The loaded cog (an extension's module object, not the one this file imports)."""
    found = w.bot.get_cog("LinksCog")
    assert found is not None
    assert type(found).__name__ == LinksCog.__name__
    return found


def calls(w: WiredBot) -> list[tuple[str, str]]:
    return [(r.method, r.endpoint) for r in w.dscgg.requests]


def assert_deferred_ephemeral(result: Result) -> None:
    assert result.initial is not None
    assert result.initial.type == 5
    assert result.initial.ephemeral
    assert result.ephemeral


def assert_refused_at_once(result: Result, w: WiredBot, *phrases: str) -> None:
    """An ephemeral sentence as the first answer (no "thinking" first), and nothing sent to dsc.gg."""
    assert result.initial is not None
    assert result.initial.type == 4, result.initial.type
    assert result.ephemeral
    assert_refused_without_asking_dscgg(result, w, *phrases)


def assert_refused_without_asking_dscgg(result: Result, w: WiredBot, *phrases: str) -> None:
    """An ephemeral sentence (possibly after deferring, for a database read), nothing sent to dsc.gg."""
    assert result.initial is not None
    assert result.ephemeral
    text = result.text()
    for phrase in phrases:
        assert phrase in text, text
    assert w.dscgg.requests == [], calls(w)


def assert_deferred_before_dscgg(result: Result, w: WiredBot) -> None:
    """The first answer reached Discord before the first request reached dsc.gg (same clock)."""
    [first, *_] = result.callbacks
    assert w.dscgg.requests, "nothing reached dsc.gg"
    assert first.t_monotonic < w.dscgg.requests[0].at, "dsc.gg was called before the interaction was answered"


def assert_quiet(message: Message | None) -> None:
    assert message is not None
    mentions = message.allowed_mentions
    assert mentions is not None
    assert mentions.get("parse") == []


def records(w: WiredBot) -> Any:
    return w.bot.link_records.search(w.guild_id, "", 100)


async def managed(w: WiredBot, slug: str, guild_id: int | None = None) -> None:
    """Record ``slug`` as created through the bot in the server (the default one), as /link create does."""
    await w.bot.link_records.record(guild_id or w.guild_id, slug, ADMIN.id)


def button(message: Message | None, label: str) -> str:
    assert message is not None
    for comp in message.buttons():
        if comp.get("label") == label:
            return str(comp["custom_id"])
    raise AssertionError(f"no {label!r} button in {[c.get('label') for c in message.buttons()]}")


async def ask(w: WiredBot, command: str, options: dict[str, Any], **kwargs: Any) -> Result:
    """Run a command that then waits for a button press (the harness returns while it waits)."""
    result = await w.run(command, options, **kwargs)
    assert result.waiting_for_input, result.text()
    message = result.final_message
    assert message is not None
    assert message.buttons()
    return result


# ------------------------------------------------------------------------------------------- create


async def test_create_defers_then_answers_with_the_link_and_applies_the_colour(
    w: WiredBot, audit: list[AuditEvent]
) -> None:
    result = await w.run(
        "link create",
        {
            "slug": "https://www.dsc.gg/hello?ref=x",
            "redirect": "http://discord.gg/abc",
            "color": "#F0A",
            "title": "@everyone come in",
            "unlisted": True,
        },
    )
    assert_deferred_ephemeral(result)
    message = result.final_message
    assert message is not None
    assert not message.loading
    assert message.content == "Created **dsc.gg/hello**."
    assert_quiet(message)
    text = result.text()
    assert "https://discord.gg/abc" in text
    assert "@\u200beveryone come in" in text
    assert message.embeds[0]["color"] == 0xFF00AA

    # POST (colour left out: dsc.gg ignores it there), then a PATCH carrying only the colour.
    assert calls(w) == [("POST", "create_link"), ("PATCH", "update_link"), ("GET", "get_link")]
    post, patch = w.dscgg.requests[0], w.dscgg.requests[1]
    assert post.json == {
        "redirect": "https://discord.gg/abc",
        "type": "server",
        "meta": {"title": "@everyone come in"},
        "unlisted": True,
    }
    assert patch.json == {"meta": {"color": "#ff00aa"}}
    assert w.dscgg.links["hello"]["meta"]["color"] == "#ff00aa"
    assert await records(w) == ["hello"]
    [event] = audit
    assert event.kind is EventKind.LINK_CREATED
    assert event.slug == "hello"
    assert event.actor_id == ADMIN.id
    assert ("color", None, "#ff00aa") in [(c.field, c.before, c.after) for c in event.changes]


@pytest.mark.parametrize(
    ("redirect", "kind"),
    [
        ("https://discord.com/oauth2/authorize?client_id=123456789012345678&permissions=8&scope=bot", "bot"),
        ("discord.new/AbCdEf", "template"),
        ("https://discord.com/invite/abc", "server"),
    ],
)
async def test_create_infers_the_type_from_the_redirect(w: WiredBot, redirect: str, kind: str) -> None:
    result = await w.run("link create", {"slug": "typed", "redirect": redirect})
    assert "Created **dsc.gg/typed**." in result.text()
    assert w.dscgg.requests[0].json["type"] == kind
    assert w.dscgg.links["typed"]["type"] == kind


async def test_create_with_a_password_never_echoes_it(w: WiredBot, audit: list[AuditEvent]) -> None:
    result = await w.run(
        "link create", {"slug": "secret", "redirect": "discord.gg/abc", "password": "hunter2"}
    )
    assert "hunter2" not in result.text()
    assert "asked for the password" in result.text()
    assert w.dscgg.links["secret"]["_password"] == "hunter2"
    [event] = audit
    assert ("password", None, "changed") in [(c.field, c.before, c.after) for c in event.changes]


@pytest.mark.parametrize(
    ("options", "phrases"),
    [
        ({"slug": "a b", "redirect": "discord.gg/abc"}, ["`slug`", "a space"]),
        (
            {"slug": "https://example.com/x", "redirect": "discord.gg/abc"},
            ["`slug`", "example.com", "not on dsc.gg"],
        ),
        ({"slug": "%72%6f%77", "redirect": "discord.gg/abc"}, ["`slug`", '"%"']),
        ({"slug": "a" * 121, "redirect": "discord.gg/abc"}, ["`slug`", "121 characters"]),
        ({"slug": "ok", "redirect": "javascript:alert(1)"}, ["`redirect`", "only https://"]),
        ({"slug": "ok", "redirect": "https://example.com"}, ["`redirect`", "discord.gg/CODE"]),
        (
            {"slug": "ok", "redirect": "https://discord.gg/abc", "type": "bot"},
            ["`type`", "it is “Bot invite” but the redirect is a server invite"],
        ),
        ({"slug": "ok", "redirect": "discord.gg/abc", "color": "blue"}, ["`color`", "#5865F2"]),
        (
            {"slug": "ok", "redirect": "discord.gg/abc", "image": "http://x.example/a.png"},
            ["`image`", "https://"],
        ),
    ],
)
async def test_create_refuses_bad_options_before_anything_is_sent(
    w: WiredBot, options: dict[str, Any], phrases: list[str]
) -> None:
    result = await w.run("link create", options)
    assert result.initial is not None
    assert result.initial.type == 4  # answered at once, no "thinking"
    assert_refused_at_once(result, w, "Check the", *phrases)
    assert await records(w) == []


async def test_create_without_a_token_points_to_token_set(wired_bot: WiredBot) -> None:
    result = await wired_bot.run("link create", {"slug": "x", "redirect": "discord.gg/abc"})
    assert_deferred_ephemeral(result)  # the token is read from the database after deferring
    assert_refused_without_asking_dscgg(result, wired_bot, "/dscgg token set")


async def test_member_without_manage_server_is_refused_and_nothing_is_sent(w: WiredBot) -> None:
    for command, options in (
        ("link create", {"slug": "x", "redirect": "discord.gg/abc"}),
        ("link edit", {"slug": "x", "unlisted": True}),
        ("link delete", {"slug": "x"}),
        ("link info", {"slug": "x"}),
        ("link list", {}),
    ):
        result = await w.run(command, options, user=MEMBER)
        assert_refused_at_once(result, w, "**Manage Server**")
        assert result.initial is not None
        assert result.initial.type == 4


async def test_administrator_may_use_it(w: WiredBot) -> None:
    await managed(w, "nope")
    result = await w.run("link info", {"slug": "nope"}, user=ADMINISTRATOR_USER)
    assert "dsc.gg has no link" in result.text()


async def test_link_commands_are_not_offered_in_dms(w: WiredBot) -> None:
    with pytest.raises(HarnessError, match="guild-only"):
        await w.run("link info", {"slug": "x"}, dm=True)


async def test_a_dm_invocation_is_refused_at_run_time_too(w: WiredBot) -> None:
    """A stale client may still send it from a DM: the runtime guard answers, nothing is sent."""
    guild_payload = w.harness.command_payload("link info", {"slug": "x"})
    payload = w.harness.payloads.base(
        2, guild_payload["data"], user=ADMIN, guild=None, channel=None, dm=True, locale=None
    )
    result = await w.harness.dispatch(payload)
    assert_refused_at_once(result, w, "only works in a server")


@pytest.mark.parametrize(
    ("fault", "phrase"),
    [
        (
            {"kind": "code", "code": "bad_request", "status": 400, "message": "Redirect is banned"},
            "Redirect is banned",
        ),
        ({"kind": "code", "code": "owner_blacklisted", "status": 403}, "blacklisted"),
        ({"kind": "code", "code": "version_deprecated", "status": 410}, "update the bot"),
        ({"kind": "unknown_code"}, "error this bot doesn't know"),
        ({"kind": "server_error"}, "dsc.gg is not answering properly, try again later"),
        ({"kind": "html"}, "dsc.gg is not answering properly, try again later"),
    ],
)
async def test_create_refusals_are_explained_and_audited(
    w: WiredBot, audit: list[AuditEvent], fault: dict[str, Any], phrase: str
) -> None:
    kind = fault.pop("kind")
    w.dscgg.fail_next(kind, method="POST", **fault)
    result = await w.run("link create", {"slug": "x", "redirect": "discord.gg/abc"})
    assert_deferred_ephemeral(result)
    message = result.final_message
    assert message is not None
    assert not message.loading  # the error replaced "thinking…"
    assert phrase in message.content
    assert "Traceback" not in message.content
    assert await records(w) == []
    assert calls(w) == [("POST", "create_link")]  # a POST is never retried
    if kind in ("code", "unknown_code"):
        [event] = audit
        assert event.kind is EventKind.MUTATION_REFUSED
        assert event.action == "create"
        assert event.slug == "x"


async def test_create_of_a_taken_slug(w: WiredBot, audit: list[AuditEvent]) -> None:
    w.dscgg.add_link("taken", owner_id=STRANGER_ID)
    result = await w.run("link create", {"slug": "taken", "redirect": "discord.gg/abc"})
    assert "is already taken. Pick another slug" in result.text()
    assert await records(w) == []
    assert audit[0].kind is EventKind.MUTATION_REFUSED


async def test_create_with_a_rejected_token(w: WiredBot) -> None:
    await w.bot.token_store.set(w.guild_id, "not-a-key-dsc.gg-knows", set_by=ADMIN.id)
    result = await w.run("link create", {"slug": "x", "redirect": "discord.gg/abc"})
    assert "rejected the token stored for this server" in result.text()
    assert "/dscgg token set" in result.text()
    assert "not-a-key" not in result.text()


async def test_the_fourth_create_in_a_minute_is_refused_without_asking_dsc_gg(w: WiredBot) -> None:
    for i in range(3):
        assert (
            "Created" in (await w.run("link create", {"slug": f"n{i}", "redirect": "discord.gg/abc"})).text()
        )
    before = len(w.dscgg.requests)
    result = await w.run("link create", {"slug": "n4", "redirect": "discord.gg/abc"})
    text = result.text()
    assert "creating links (3 per 60 seconds)" in text
    assert "<t:" in text
    assert ":R>" in text
    assert len(w.dscgg.requests) == before
    assert w.dscgg.rate_limited_responses == 0


async def test_create_whose_colour_cannot_be_applied_still_reports_the_link(
    w: WiredBot, audit: list[AuditEvent]
) -> None:
    w.dscgg.fail_next("code", method="PATCH", code="bad_request", status=400, message="Bad colour")
    result = await w.run("link create", {"slug": "pink", "redirect": "discord.gg/abc", "color": "ff00ff"})
    message = result.final_message
    assert message is not None
    assert message.content.startswith("Created **dsc.gg/pink**.")
    assert (
        "The link exists, but its colour was not applied: dsc.gg refused the request: Bad colour"
        in message.content
    )
    # Running create again would only find the slug taken: the way forward is /link edit.
    assert message.content.endswith("Set it with `/link edit slug:pink color:#ff00ff`.")
    assert "try again" not in message.content
    assert "pink" in w.dscgg.links
    assert await records(w) == ["pink"]
    [event] = audit
    assert event.kind is EventKind.LINK_CREATED
    assert "color" not in [c.field for c in event.changes]


async def test_create_is_reported_even_when_the_link_cannot_be_read_back(w: WiredBot) -> None:
    w.dscgg.fail_always("server_error", endpoint="get_link")
    result = await w.run("link create", {"slug": "made", "redirect": "discord.gg/abc", "title": "T"})
    message = result.final_message
    assert message is not None
    assert message.content == "Created **dsc.gg/made**."
    assert "https://discord.gg/abc" in message.text()
    assert "made" in w.dscgg.links
    assert await records(w) == ["made"]


async def test_concurrent_creates_of_one_slug(w: WiredBot) -> None:
    first, second = await asyncio.gather(
        w.run("link create", {"slug": "race", "redirect": "discord.gg/abc"}),
        w.run("link create", {"slug": "race", "redirect": "discord.gg/def"}, user=ADMINISTRATOR_USER),
    )
    texts = sorted([first.text(), second.text()])
    assert sum("Created **dsc.gg/race**." in t for t in texts) == 1
    assert sum("is already taken" in t for t in texts) == 1
    assert len(w.dscgg.requests_to("create_link")) == 2
    assert await records(w) == ["race"]
    assert await w.bot.link_records.count(w.guild_id) == 1


async def test_slow_dscgg_is_acknowledged_in_time_then_answered(w: WiredBot) -> None:
    w.dscgg.latency = 1.5
    result = await w.run("link create", {"slug": "slow", "redirect": "discord.gg/abc"}, timeout=20)
    assert result.first_response_seconds is not None
    assert result.first_response_seconds < 3.0
    assert_deferred_ephemeral(result)
    assert_deferred_before_dscgg(result, w)
    message = result.final_message
    assert message is not None
    assert not message.loading
    assert message.content == "Created **dsc.gg/slow**."


async def test_dscgg_slower_than_the_timeout_gets_the_unavailable_sentence(
    w: WiredBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The wired client's 2 s, scaled down: it gives up on each of its tries after 0.2 s.
    monkeypatch.setattr(w.bot.dscgg, "_timeout", aiohttp.ClientTimeout(total=0.2, sock_connect=1.0))
    w.dscgg.latency = 0.4
    await managed(w, "x")
    result = await w.run("link info", {"slug": "x"}, timeout=30)
    assert result.first_response_seconds is not None
    assert result.first_response_seconds < 3.0
    assert_deferred_before_dscgg(result, w)
    message = result.final_message
    assert message is not None
    assert not message.loading
    assert message.content == "dsc.gg is not answering properly, try again later."
    assert message.ephemeral


# --------------------------------------------------------------------------------------------- edit


async def test_edit_sends_only_the_options_given(w: WiredBot, audit: list[AuditEvent]) -> None:
    w.dscgg.add_link("mine", owner_id=ADMIN.id, unlisted=True, meta={"title": "Keep me"})
    await managed(w, "mine")
    result = await w.run("link edit", {"slug": "mine", "unlisted": False})
    assert_deferred_ephemeral(result)
    assert calls(w) == [("GET", "get_link"), ("PATCH", "update_link")]
    assert w.dscgg.requests[1].json == {"unlisted": False}
    assert w.dscgg.links["mine"]["unlisted"] is False
    assert w.dscgg.links["mine"]["meta"]["title"] == "Keep me"
    message = result.final_message
    assert message is not None
    assert message.content == "Updated **dsc.gg/mine**: `unlisted`."
    assert "Keep me" in result.text()
    assert_quiet(message)
    assert await records(w) == ["mine"]
    [event] = audit
    assert event.kind is EventKind.LINK_EDITED
    assert [(c.field, c.before, c.after) for c in event.changes] == [("unlisted", "yes", "no")]


async def test_edit_title_and_colour(w: WiredBot) -> None:
    w.dscgg.add_link("mine", owner_id=ADMIN.id, meta={"title": "Old"})
    await managed(w, "mine")
    await w.run("link edit", {"slug": "dsc.gg/mine", "title": " New ", "color": "#ABC"})
    assert w.dscgg.requests[1].json == {"meta": {"title": "New", "color": "#aabbcc"}}


async def test_edit_new_redirect_of_another_kind_also_sends_its_type(w: WiredBot) -> None:
    w.dscgg.add_link("mine", owner_id=ADMIN.id)
    await managed(w, "mine")
    bot_invite = "https://discord.com/oauth2/authorize?client_id=123456789012345678"
    result = await w.run("link edit", {"slug": "mine", "redirect": bot_invite})
    assert w.dscgg.requests[1].json == {"redirect": bot_invite, "type": "bot"}
    assert "`redirect`, `type`" in result.text()
    assert w.dscgg.links["mine"]["type"] == "bot"


async def test_edit_type_that_does_not_fit_the_current_redirect_is_refused_before_the_update(
    w: WiredBot,
) -> None:
    w.dscgg.add_link("mine", owner_id=ADMIN.id, redirect="https://discord.gg/abc")
    await managed(w, "mine")
    result = await w.run("link edit", {"slug": "mine", "type": "template"})
    assert "it is “Server template” but the redirect is a server invite" in result.text()
    assert calls(w) == [("GET", "get_link")]


async def test_edit_removes_the_password(w: WiredBot, audit: list[AuditEvent]) -> None:
    w.dscgg.add_link("locked", owner_id=ADMIN.id, password="pw")
    await managed(w, "locked")
    await w.run("link edit", {"slug": "locked", "remove_password": True})
    assert w.dscgg.requests[1].json == {"password": None}
    assert w.dscgg.links["locked"]["_password"] is None
    assert [(c.field, c.after) for c in audit[0].changes] == [("password", "removed")]


@pytest.mark.parametrize(
    ("field", "before"),
    [
        ("title", "Old title"),
        ("description", "Old description"),
        ("image", "https://i.example.com/old.png"),
        ("color", "#112233"),
    ],
)
async def test_edit_removes_one_preview_field_and_leaves_the_others(
    w: WiredBot, audit: list[AuditEvent], field: str, before: str
) -> None:
    meta = {
        "title": "Old title",
        "description": "Old description",
        "image": "https://i.example.com/old.png",
        "color": "#112233",
    }
    w.dscgg.add_link("mine", owner_id=ADMIN.id, meta=meta)
    await managed(w, "mine")
    result = await w.run("link edit", {"slug": "mine", f"remove_{field}": True})
    assert calls(w) == [("GET", "get_link"), ("PATCH", "update_link")]
    assert w.dscgg.requests[1].json == {"meta": {field: None}}  # null: dsc.gg's "not set"
    stored = w.dscgg.links["mine"]["meta"]
    assert stored[field] is None
    assert {k: v for k, v in stored.items() if k in meta and k != field} == {
        k: v for k, v in meta.items() if k != field
    }
    message = result.final_message
    assert message is not None
    assert message.content == f"Updated **dsc.gg/mine**: `{field}` removed."
    [event] = audit
    assert event.kind is EventKind.LINK_EDITED
    assert [(c.field, c.before, c.after) for c in event.changes] == [(field, before, None)]


async def test_edit_removes_several_fields_and_changes_another_at_once(
    w: WiredBot, audit: list[AuditEvent]
) -> None:
    meta = {"title": "Old title", "image": "https://x.io/a.png"}
    w.dscgg.add_link("mine", owner_id=ADMIN.id, password="pw", meta=meta)
    await managed(w, "mine")
    result = await w.run(
        "link edit",
        {
            "slug": "mine",
            "remove_title": True,
            "remove_image": True,
            "remove_password": True,
            "color": "#abc",
        },
    )
    assert w.dscgg.requests[1].json == {
        "meta": {"title": None, "image": None, "color": "#aabbcc"},
        "password": None,
    }
    assert "Old title" not in result.text()  # the embed shows the link as it is now
    message = result.final_message
    assert message is not None
    assert message.content == (
        "Updated **dsc.gg/mine**: `title` removed, `image` removed, `color`, `password` removed."
    )
    assert [(c.field, c.after) for c in audit[0].changes] == [
        ("title", None),
        ("image", None),
        ("color", "#aabbcc"),
        ("password", "removed"),
    ]


@pytest.mark.parametrize(
    ("field", "value"),
    [("title", "New"), ("description", "New"), ("image", "https://x.io/a.png"), ("color", "#abc")],
)
async def test_edit_refuses_setting_and_removing_one_field(w: WiredBot, field: str, value: str) -> None:
    result = await w.run("link edit", {"slug": "x", field: value, f"remove_{field}": True})
    assert_refused_at_once(
        result, w, f"Check the `remove_{field}` option: it can't be used together with `{field}`"
    )


async def test_edit_with_only_false_remove_options_has_nothing_to_change(w: WiredBot) -> None:
    options = {f"remove_{f}": False for f in ("title", "description", "image", "color", "password")}
    result = await w.run("link edit", {"slug": "x", **options})
    assert_refused_at_once(result, w, "Nothing to change on **dsc.gg/x**")


async def test_edit_changes_the_password_without_echoing_it(w: WiredBot, audit: list[AuditEvent]) -> None:
    w.dscgg.add_link("locked", owner_id=ADMIN.id)
    await managed(w, "locked")
    result = await w.run("link edit", {"slug": "locked", "password": "s3cret!"})
    assert "s3cret!" not in result.text()
    assert w.dscgg.links["locked"]["_password"] == "s3cret!"
    assert [(c.field, c.after) for c in audit[0].changes] == [("password", "changed")]


async def test_edit_with_password_and_remove_password_is_refused(w: WiredBot) -> None:
    result = await w.run("link edit", {"slug": "x", "password": "a", "remove_password": True})
    assert_refused_at_once(result, w, "`remove_password`", "can't be used together with `password`")


@pytest.mark.parametrize(
    ("options", "phrases"),
    [
        ({"title": "   "}, ["`title`", "empty"]),
        ({"title": "bell\x07"}, ["`title`", "U+0007"]),
        ({"description": "a\u202eb"}, ["`description`", "U+202E"]),
        ({"image": "http://x.example/a.png"}, ["`image`", "https://"]),
        ({"color": "red"}, ["`color`", "#5865F2"]),
        ({"password": "   "}, ["`password`", "remove_password"]),
    ],
)
async def test_edit_refuses_bad_options_as_the_first_answer(
    w: WiredBot, options: dict[str, Any], phrases: list[str]
) -> None:
    w.dscgg.add_link("mine", owner_id=ADMIN.id)
    result = await w.run("link edit", {"slug": "mine", **options})
    assert_refused_at_once(result, w, "Check the", *phrases)
    assert await records(w) == []


async def test_edit_with_nothing_to_change(w: WiredBot) -> None:
    result = await w.run("link edit", {"slug": "x"})
    assert_refused_at_once(result, w, "Nothing to change on **dsc.gg/x**")
    result = await w.run("link edit", {"slug": "x", "remove_password": False})
    assert_refused_at_once(result, w, "Nothing to change")


async def test_edit_of_someone_elses_link_is_an_owner_mismatch(w: WiredBot, audit: list[AuditEvent]) -> None:
    w.dscgg.add_link("theirs", owner_id=STRANGER_ID)
    await managed(w, "theirs")
    result = await w.run("link edit", {"slug": "theirs", "title": "mine now"})
    text = result.text()
    assert "is owned by a different dsc.gg account than the one whose token this server uses" in text
    assert "owner_mismatch" not in text
    assert w.dscgg.links["theirs"]["meta"]["title"] is None
    assert await records(w) == ["theirs"]
    [event] = audit
    assert event.kind is EventKind.MUTATION_REFUSED
    assert event.action == "edit"


async def test_slugs_in_edit_and_delete_sentences_are_shown_as_typed_not_as_markdown(w: WiredBot) -> None:
    """A slug like __x__ must read dsc.gg/__x__, not an underlined "x"."""
    w.dscgg.add_link("__x__", owner_id=ADMIN.id)
    await managed(w, "__x__")
    edited = await w.run("link edit", {"slug": "__x__", "unlisted": True})
    assert edited.final_message is not None
    assert edited.final_message.content == "Updated **dsc.gg/\\_\\_x\\_\\_**: `unlisted`."
    result = await ask(w, "link delete", {"slug": "__x__"})
    question = result.final_message
    assert question is not None
    assert question.content.startswith("Delete **dsc.gg/\\_\\_x\\_\\_** for good?")
    await w.harness.click(result, button(question, "Delete"))
    assert result.final_message is not None
    assert result.final_message.content == "Deleted **dsc.gg/\\_\\_x\\_\\_**."


async def test_edit_of_a_missing_link(w: WiredBot) -> None:
    await managed(w, "ghost")
    result = await w.run("link edit", {"slug": "ghost", "unlisted": True})
    assert "dsc.gg has no link" in result.text()
    assert calls(w) == [("GET", "get_link")]


# ------------------------------------------------------------------------------------------- delete


async def test_delete_asks_then_deletes_on_confirm(w: WiredBot, audit: list[AuditEvent]) -> None:
    w.dscgg.add_link("bye", owner_id=ADMIN.id)
    await w.bot.link_records.record(w.guild_id, "bye", ADMIN.id)
    result = await ask(w, "link delete", {"slug": "bye"})
    assert_deferred_ephemeral(result)
    question = result.final_message
    assert question is not None
    assert "Delete **dsc.gg/bye** for good?" in question.content
    assert calls(w) == []  # nothing deleted before the answer
    press = await w.harness.click(question, button(question, "Delete"))
    assert press.initial is not None
    assert press.initial.type == 7  # the button press updates the question
    final = result.final_message
    assert final is not None
    assert final.content == "Deleted **dsc.gg/bye**."
    assert final.buttons() == []
    assert "bye" not in w.dscgg.links
    assert await records(w) == []
    assert audit[-1].kind is EventKind.LINK_DELETED
    assert audit[-1].actor_id == ADMIN.id


async def test_delete_cancelled(w: WiredBot) -> None:
    w.dscgg.add_link("stay", owner_id=ADMIN.id)
    await managed(w, "stay")
    result = await ask(w, "link delete", {"slug": "stay"})
    await w.harness.click(result, button(result.final_message, "Cancel"))
    final = result.final_message
    assert final is not None
    assert final.content == "Deletion cancelled. **dsc.gg/stay** was not deleted."
    assert final.buttons() == []
    assert "stay" in w.dscgg.links
    assert calls(w) == []


async def test_delete_buttons_refuse_another_member(w: WiredBot) -> None:
    w.dscgg.add_link("stay", owner_id=ADMIN.id)
    await managed(w, "stay")
    result = await ask(w, "link delete", {"slug": "stay"})
    other = await w.harness.click(result, button(result.final_message, "Delete"), user=OTHER_MEMBER)
    assert other.initial is not None
    assert other.initial.type == 4
    assert other.initial.ephemeral
    assert other.initial.content == "Only the person who ran the command can use these buttons."
    assert "stay" in w.dscgg.links
    assert result.final_message is not None
    assert result.final_message.content.startswith("Delete **dsc.gg/stay** for good?")  # still asking
    await w.harness.click(result, button(result.final_message, "Cancel"))
    assert "stay" in w.dscgg.links


async def test_delete_expires_without_an_answer(w: WiredBot) -> None:
    w.dscgg.add_link("stay", owner_id=ADMIN.id)
    await managed(w, "stay")
    cog(w).confirm_timeout = 0.3
    result = await w.run("link delete", {"slug": "stay"})
    await w.discord.wait_for(lambda: "no answer in time" in (result.final_message or Message({})).content)
    final = result.final_message
    assert final is not None
    assert final.content.startswith("Deletion cancelled: no answer in time.")
    assert final.buttons()
    assert all(b.get("disabled") for b in final.buttons())
    assert "stay" in w.dscgg.links
    assert calls(w) == []


async def test_delete_expires_on_the_default_timeout(w: WiredBot) -> None:
    w.dscgg.add_link("stay", owner_id=ADMIN.id)
    await managed(w, "stay")
    result = await ask(w, "link delete", {"slug": "stay"})
    assert await w.harness.expire_views() == []
    final = result.final_message
    assert final is not None
    assert final.content == "Deletion cancelled: no answer in time. **dsc.gg/stay** was not deleted."
    assert all(b.get("disabled") for b in final.buttons())
    assert "stay" in w.dscgg.links


async def test_delete_without_a_token_does_not_ask(wired_bot: WiredBot) -> None:
    result = await wired_bot.run("link delete", {"slug": "x"})
    assert "/dscgg token set" in result.text()
    message = result.final_message
    assert message is not None
    assert message.buttons() == []


async def test_delete_of_a_link_dscgg_no_longer_has_forgets_it(w: WiredBot) -> None:
    await w.bot.link_records.record(w.guild_id, "gone", ADMIN.id)
    result = await ask(w, "link delete", {"slug": "gone"})
    await w.harness.click(result, button(result.final_message, "Delete"))
    # One sentence that says what happened, not "was not deleted" next to "check the spelling".
    [message] = result.messages
    assert message.content == (
        "**dsc.gg/gone** no longer exists on dsc.gg; it was removed from this server's list."
    )
    assert message.buttons() == []
    assert message.ephemeral
    assert await records(w) == []


async def test_delete_of_a_link_the_list_has_not_is_refused_without_asking(w: WiredBot) -> None:
    result = await w.run("link delete", {"slug": "ghost"})
    assert not result.waiting_for_input
    [message] = result.messages
    assert message.content == NOT_MANAGED.format(slug="ghost")
    assert message.buttons() == []
    assert message.ephemeral
    assert calls(w) == []


async def test_delete_of_someone_elses_link(w: WiredBot) -> None:
    w.dscgg.add_link("theirs", owner_id=STRANGER_ID)
    await w.bot.link_records.record(w.guild_id, "theirs", ADMIN.id)
    result = await ask(w, "link delete", {"slug": "theirs"})
    await w.harness.click(result, button(result.final_message, "Delete"))
    assert "owned by a different dsc.gg account" in result.text()
    assert "theirs" in w.dscgg.links
    assert await records(w) == ["theirs"]  # still ours to try again with the right token


# --------------------------------------------------------------------------------------------- info


async def test_info_shows_the_link_with_stats(w: WiredBot) -> None:
    w.dscgg.add_link(
        "show",
        owner_id=ADMIN.id,
        redirect="https://discord.gg/xyz",
        meta={"title": "**Bold** <@&1>", "description": "Hi @here", "color": "#00ff00"},
        clicks=42,
        unique_clicks=7,
        created_at=1_700_000_000_000,
        disabled=True,
    )
    await managed(w, "show")
    result = await w.run("link info", {"slug": "<https://dsc.gg/show>"})
    assert_deferred_ephemeral(result)
    assert w.dscgg.requests[0].query == {"with_stats": "true"}
    message = result.final_message
    assert message is not None
    [embed] = message.embeds
    assert embed["title"] == "dsc.gg/show"
    assert embed["url"] == "https://dsc.gg/show"
    assert embed["color"] == 0x00FF00
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Owner"] == f"<@{ADMIN.id}>"
    assert fields["Clicks"] == "42 (7 unique)"
    assert fields["Created"] == "<t:1700000000:f> (<t:1700000000:R>)"
    assert fields["Status"] == "**Disabled**"
    assert fields["Embed title"] == "\\*\\*Bold\\*\\* <@&1>"
    assert "@here" not in fields["Embed description"]
    assert_quiet(message)


async def test_info_of_a_missing_link(w: WiredBot) -> None:
    await managed(w, "ghost")
    result = await w.run("link info", {"slug": "ghost"})
    text = result.text()
    assert "has no link `dsc.gg/ghost`" in text
    assert "Check the spelling" in text


# --------------------------------------------------------------------------------------------- list


async def test_list_pages_through_the_servers_records(w: WiredBot) -> None:
    for i in range(23):
        await w.bot.link_records.record(w.guild_id, f"link{i:02d}", ADMIN.id)
    await w.bot.link_records.record(w.guild_id + 1, "other-guild", ADMIN.id)
    result = await w.run("link list")
    assert_deferred_ephemeral(result)
    assert calls(w) == []  # local records only
    message = result.final_message
    assert message is not None
    assert message.embeds[0]["footer"]["text"] == "Page 1/3 · 23 links"
    assert "link00" in message.text()
    assert "link10" not in message.text()
    assert "other-guild" not in message.text()

    await w.harness.click(result, button(message, "Next ›"))
    assert "link10" in message.text()
    assert message.embeds[0]["footer"]["text"] == "Page 2/3 · 23 links"
    await w.harness.click(result, button(message, "»"))
    assert "link22" in message.text()
    assert all(b.get("disabled") for b in message.buttons() if b.get("label") in ("Next ›", "»"))


async def test_list_buttons_belong_to_the_invoker(w: WiredBot) -> None:
    for i in range(12):
        await w.bot.link_records.record(w.guild_id, f"l{i}", ADMIN.id)
    result = await w.run("link list")
    message = result.final_message
    assert message is not None
    other = await w.harness.click(result, button(message, "Next ›"), user=ADMINISTRATOR_USER)
    assert other.initial is not None
    assert other.initial.ephemeral
    assert other.initial.content == "Only the person who ran the command can use these buttons."
    assert message.embeds[0]["footer"]["text"].startswith("Page 1/2")
    await w.harness.click(result, button(message, "Next ›"))
    assert message.embeds[0]["footer"]["text"].startswith("Page 2/2")


async def test_a_failure_behind_a_button_is_answered_by_the_trees_renderer(
    w: WiredBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(12):
        await w.bot.link_records.record(w.guild_id, f"l{i}", ADMIN.id)
    result = await w.run("link list")

    async def broken(*args: object) -> object:
        raise RuntimeError("disk I/O error")

    monkeypatch.setattr(w.bot.links, "list_records", broken)
    press = await w.harness.click(result, button(result.final_message, "Next ›"))
    assert press.initial is not None
    assert press.initial.type == 6  # the press is acknowledged before the database is read
    [sentence] = press.followups
    assert sentence.ephemeral
    content = sentence.content
    assert "Something went wrong on my side" in content
    assert "error id" in content
    assert "RuntimeError" not in content
    assert "disk I/O" not in content
    assert footer_of(result) == "Page 1/2 · 12 links"


async def test_list_presses_are_answered_before_the_database_is_read(
    w: WiredBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(12):
        await w.bot.link_records.record(w.guild_id, f"l{i:02d}", ADMIN.id)
    result = await w.run("link list")
    reads: list[float] = []
    original = w.bot.links.list_records

    async def spy(*args: Any, **kwargs: Any) -> Any:
        reads.append(time.monotonic())
        return await original(*args, **kwargs)

    monkeypatch.setattr(w.bot.links, "list_records", spy)
    press = await w.harness.click(result, button(result.final_message, "Next ›"))
    assert press.initial is not None
    assert press.initial.type == 6
    assert reads
    assert press.initial.t_monotonic < reads[0]
    assert footer_of(result) == "Page 2/2 · 12 links"
    assert "l10" in (result.final_message or Message({})).text()


async def test_list_footer_and_buttons_follow_links_added_or_removed_while_browsing(w: WiredBot) -> None:
    for i in range(12):
        await w.bot.link_records.record(w.guild_id, f"l{i:02d}", ADMIN.id)
    result = await w.run("link list")
    message = result.final_message
    assert message is not None
    assert footer_of(result) == "Page 1/2 · 12 links"
    for i in range(12, 23):  # someone else creates links meanwhile
        await w.bot.link_records.record(w.guild_id, f"l{i:02d}", ADMIN.id)
    await w.harness.click(result, button(message, "Next ›"))
    assert footer_of(result) == "Page 2/3 · 23 links"
    assert button(result.final_message, "2/3")
    await w.harness.click(result, button(result.final_message, "Next ›"))  # still enabled
    assert footer_of(result) == "Page 3/3 · 23 links"
    for i in range(5, 23):
        await w.bot.link_records.forget(w.guild_id, f"l{i:02d}")
    await w.harness.click(result, button(result.final_message, "‹ Prev"))
    assert footer_of(result) == "Page 1/1 · 5 links"
    final = result.final_message
    assert final is not None
    assert button(final, "1/1")
    assert all(b.get("disabled") for b in final.buttons())


async def test_list_pages_even_after_the_commands_token_expired(
    w: WiredBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Page buttons have no timeout and never use the command's token after the first page: each
    press edits the message through its own, so paging goes on past the command's 15 minutes."""
    for i in range(23):
        await w.bot.link_records.record(w.guild_id, f"l{i:02d}", ADMIN.id)
    result = await w.run("link list")
    command_id = result.interaction_id
    monkeypatch.setattr(discord.Interaction, "is_expired", lambda self: self.id == command_id)
    assert await w.harness.expire_views() == []  # whatever held a timer has run out
    command_requests = len(result.requests)
    await w.harness.click(result, button(result.final_message, "Next ›"))
    await w.harness.click(result, button(result.final_message, "Next ›"))
    assert len(result.requests) == command_requests
    final = result.final_message
    assert final is not None
    assert footer_of(result) == "Page 3/3 · 23 links"
    assert all(b.get("disabled") for b in final.buttons() if b.get("label") in ("Next ›", "»"))
    assert not any(b.get("disabled") for b in final.buttons() if b.get("label") in ("«", "‹ Prev"))


def footer_of(result: Result) -> str:
    message = result.final_message
    assert message is not None
    return str(message.embeds[0]["footer"]["text"])


async def test_empty_list(w: WiredBot) -> None:
    result = await w.run("link list")
    message = result.final_message
    assert message is not None
    assert "/link create" in message.text()
    assert message.buttons() == []


# ------------------------------------------------------------------------------------- autocomplete


async def test_autocomplete_offers_the_servers_slugs(w: WiredBot) -> None:
    for i in range(30):
        await w.bot.link_records.record(w.guild_id, f"team-{i}", ADMIN.id)
    await w.bot.link_records.record(w.guild_id, "another-team", ADMIN.id)
    await w.bot.link_records.record(w.guild_id + 1, "team-elsewhere", ADMIN.id)
    result = await w.harness.autocomplete("link edit", {"slug": "team"}, focused="slug")
    assert result.initial is not None
    assert result.initial.type == 8
    choices = result.choices
    assert choices is not None
    assert len(choices) == 25
    names = [c["name"] for c in choices]
    assert all(n.startswith("team-") for n in names)  # prefix matches first
    assert "team-elsewhere" not in names
    assert all(len(c["name"]) <= 100 and len(c["value"]) <= 100 for c in choices)
    assert calls(w) == []


async def test_autocomplete_understands_a_pasted_link(w: WiredBot) -> None:
    await w.bot.link_records.record(w.guild_id, "hello", ADMIN.id)
    for command in ("link info", "link delete", "link edit"):
        result = await w.harness.autocomplete(command, {"slug": "https://dsc.gg/hel"}, focused="slug")
        assert result.choices == [{"name": "hello", "value": "hello"}]


async def test_autocomplete_gives_members_without_manage_server_nothing(w: WiredBot) -> None:
    await w.bot.link_records.record(w.guild_id, "hello", ADMIN.id)
    result = await w.harness.autocomplete("link info", {"slug": ""}, focused="slug", user=MEMBER)
    assert result.choices == []


async def test_autocomplete_never_fails(w: WiredBot, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: object) -> list[str]:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(w.bot.links, "suggest", broken)
    result = await w.harness.autocomplete("link info", {"slug": "a b%"}, focused="slug")
    assert result.choices == []
    assert result.initial is not None
    assert result.initial.accepted
