"""The harness and FakeDiscord are faithful: real payloads through a real tree round-trip."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Literal

import aiohttp
import discord
import pytest
import yarl
from discord import app_commands
from discord.ext import commands

from tests.fakes.discord import EPHEMERAL, FakeDiscord
from tests.harness import ADMIN, MEMBER, OTHER_MEMBER, Harness, HarnessError, Payloads

SLUGS = ["abc", "abd", "about", "zeta"]


class Pager(discord.ui.View):
    def __init__(self, owner_id: int) -> None:
        super().__init__(timeout=60)
        self.owner_id = owner_id
        self.page = 1
        self.message: discord.InteractionMessage | None = None

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message("not your buttons", ephemeral=True)
            return False
        return True

    @discord.ui.button(label="Next", custom_id="next")
    async def next_page(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        self.page += 1
        await interaction.response.edit_message(content=f"page {self.page}", view=self)

    async def on_timeout(self) -> None:
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                item.disabled = True
        if self.message is not None:
            await self.message.edit(content=f"page {self.page} (expired)", view=self)

    @discord.ui.button(label="Off", custom_id="off", disabled=True)
    async def off(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        raise AssertionError("a disabled button cannot be pressed")


class Confirm(discord.ui.View):
    value: bool | None = None

    @discord.ui.button(label="Yes", custom_id="yes")
    async def yes(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        self.value = True
        await interaction.response.edit_message(content="Working…", view=None)
        self.stop()


class TokenModal(discord.ui.Modal, title="API token"):
    token: discord.ui.TextInput[Any] = discord.ui.TextInput(label="Token", custom_id="token", min_length=4)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"stored …{self.token.value[-4:]}", ephemeral=True)


class Demo(commands.Cog):
    link = app_commands.Group(
        name="link",
        description="Links",
        guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )

    def __init__(self, seen: dict[str, Any]) -> None:
        self.seen = seen

    @link.command(name="create", description="Create a link")
    async def create(
        self,
        interaction: discord.Interaction,
        slug: str,
        count: app_commands.Range[int, 1, 10] = 1,
        public: bool = False,
        channel: discord.TextChannel | None = None,
        kind: Literal["server", "bot"] = "server",
    ) -> None:
        self.seen["create"] = (slug, count, public, channel, kind)
        await interaction.response.send_message(
            f"created {slug} x{count}", ephemeral=not public, allowed_mentions=discord.AllowedMentions.none()
        )

    @link.command(name="info", description="Show a link")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def info(self, interaction: discord.Interaction, slug: str) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await asyncio.sleep(0.01)  # stands in for the network
        embed = discord.Embed(title=f"dsc.gg/{slug}", description="a link").add_field(
            name="Clicks", value="3"
        )
        await interaction.edit_original_response(embed=embed)

    @link.command(name="edit", description="Edit a link")
    async def edit(self, interaction: discord.Interaction, slug: str) -> None:
        await interaction.response.send_message(f"edited {slug}", ephemeral=True)

    @edit.autocomplete("slug")
    async def slug_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        self.seen["autocomplete"] = (current, interaction.namespace.slug)
        return [app_commands.Choice(name=s, value=s) for s in SLUGS if s.startswith(current)]

    @link.command(name="delete", description="Asks first")
    async def delete(self, interaction: discord.Interaction, slug: str) -> None:
        await interaction.response.defer(ephemeral=True)
        view = Confirm(timeout=30)
        await interaction.edit_original_response(content=f"Delete {slug}?", view=view)
        await view.wait()  # the command stays in flight until someone answers
        self.seen["delete"] = view.value
        if view.value:
            await asyncio.sleep(0.01)  # stands in for the network
            await interaction.edit_original_response(content=f"Deleted {slug}.")

    @link.command(name="boom", description="Fails")
    async def boom(self, interaction: discord.Interaction) -> None:
        raise RuntimeError("kaboom")

    @app_commands.command(name="pages", description="Paginated")
    async def pages(self, interaction: discord.Interaction) -> None:
        view = Pager(interaction.user.id)
        sent = await interaction.response.send_message("page 1", view=view, ephemeral=True)
        assert isinstance(sent.resource, discord.InteractionMessage)
        view.message = sent.resource

    @app_commands.command(name="token", description="Opens a modal")
    async def token(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(TokenModal())

    @app_commands.command(name="double", description="Answers twice")
    async def double(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("one")
        # A second InteractionResponse object skips discord.py's local guard, as a second process would.
        await discord.InteractionResponse(interaction).send_message("two")

    @app_commands.command(name="whereami", description="Works in DMs too")
    async def whereami(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"guild={interaction.guild_id} user={interaction.user.id}")


class RecordingTree(app_commands.CommandTree):
    """Sends one ephemeral sentence per error, like the bot's tree, and keeps the errors."""

    def __init__(self, client: discord.Client, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self.errors: list[app_commands.AppCommandError] = []

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        self.errors.append(error)
        text = f"error: {type(error).__name__}"
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True)
        else:
            await interaction.response.send_message(text, ephemeral=True)


class DemoBot(commands.Bot):
    def __init__(self, *, sync_guild: int | None = None) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, tree_cls=RecordingTree)
        self.seen: dict[str, Any] = {}
        self.sync_guild = sync_guild
        self.ready_fired = False

    async def setup_hook(self) -> None:
        await self.add_cog(Demo(self.seen))
        if self.sync_guild is not None:
            guild = discord.Object(self.sync_guild)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)

    async def on_ready(self) -> None:
        self.ready_fired = True


@pytest.fixture
async def h(harness_factory: Any) -> Harness:
    harness: Harness = await harness_factory(DemoBot())
    return harness


def tree_errors(harness: Harness) -> list[app_commands.AppCommandError]:
    tree = harness.bot.tree
    assert isinstance(tree, RecordingTree)
    return tree.errors


async def test_login_caches_guilds_and_restores_route_base(fake_discord: FakeDiscord) -> None:
    original = discord.http.Route.BASE
    bot = DemoBot()
    async with Harness(bot, fake_discord) as harness:
        assert fake_discord.api_base == discord.http.Route.BASE
        assert bot.user is not None
        assert bot.user.id == int(fake_discord.bot_user["id"])
        assert bot.application_id == fake_discord.app_id
        assert bot.is_ready()
        assert bot.ready_fired
        assert sorted(g.id for g in bot.guilds) == sorted(fake_discord.guild_ids)
        guild = bot.get_guild(harness.guild.id)
        assert guild is not None
        assert guild.me is not None
        assert guild.me.guild_permissions.send_messages
        general = guild.get_channel(harness.guild.general_channel_id)
        locked = guild.get_channel(harness.guild.locked_channel_id)
        assert isinstance(general, discord.TextChannel)
        assert isinstance(locked, discord.TextChannel)
        assert general.permissions_for(guild.me).send_messages
        assert not locked.permissions_for(guild.me).send_messages
        assert [r.route for r in fake_discord.requests] == ["get_me", "application_info"]
    assert bot.is_closed()
    assert original == discord.http.Route.BASE


async def test_subcommand_options_are_parsed_and_reply_is_ephemeral(h: Harness) -> None:
    result = await h.run(
        "link create",
        {"slug": "abc", "count": 3, "public": False, "channel": h.guild.log_channel_id, "kind": "bot"},
        user=ADMIN,
    )
    slug, count, public, channel, kind = h.bot.seen["create"]  # type: ignore[union-attr]
    assert (slug, count, public, kind) == ("abc", 3, False, "bot")
    assert channel.id == h.guild.log_channel_id
    assert result.initial is not None
    assert result.initial.type == 4
    assert result.ephemeral
    assert result.initial.flags & EPHEMERAL
    assert result.initial.allowed_mentions == {"parse": []}
    assert result.final_message is not None
    assert result.final_message.content == "created abc x3"
    assert result.first_response_seconds is not None
    assert 0 < result.first_response_seconds < 3
    data = result.payload["data"]
    assert data["name"] == "link"
    assert data["options"][0]["name"] == "create"
    assert "guild_id" not in data  # global command
    assert str(h.guild.log_channel_id) in data["resolved"]["channels"]
    assert h.fake.unknown_requests == []


async def test_public_reply_is_not_ephemeral(h: Harness) -> None:
    result = await h.run("link create", {"slug": "x", "public": True})
    assert not result.ephemeral
    assert result.texts() == ["created x x1"]


async def test_harness_refuses_what_discord_would_not_send(h: Harness) -> None:
    with pytest.raises(HarnessError, match=r"within 1\.\.10"):
        await h.run("link create", {"slug": "x", "count": 11})
    with pytest.raises(HarnessError, match="not one of"):
        await h.run("link create", {"slug": "x", "kind": "template"})
    with pytest.raises(HarnessError, match="required"):
        await h.run("link create", {})
    with pytest.raises(HarnessError, match="no option"):
        await h.run("link create", {"slug": "x", "nope": 1})
    with pytest.raises(HarnessError, match="guild-only"):
        await h.run("link create", {"slug": "x"}, dm=True)
    with pytest.raises(HarnessError, match="needs a subcommand"):
        await h.run("link")


async def test_defer_then_edit_shows_the_final_embed(h: Harness) -> None:
    result = await h.run("link info", {"slug": "abc"}, user=ADMIN)
    assert [cb.type for cb in result.callbacks] == [5]
    assert result.initial is not None
    assert result.initial.ephemeral
    assert [r.route for r in result.requests] == ["interaction_callback", "edit_original"]
    final = result.final_message
    assert final is not None
    assert final.ephemeral
    assert not final.loading
    assert final.embeds[0]["title"] == "dsc.gg/abc"
    assert result.texts() == ["dsc.gg/abc", "a link", "Clicks", "3"]
    assert result.followups == []


async def test_check_failure_reaches_the_error_handler(h: Harness) -> None:
    result = await h.run("link info", {"slug": "abc"}, user=MEMBER)
    assert isinstance(tree_errors(h)[-1], app_commands.MissingPermissions)
    assert result.initial is not None
    assert result.initial.type == 4
    assert result.ephemeral
    assert result.text() == "error: MissingPermissions"


async def test_exception_becomes_one_ephemeral_error_reply(h: Harness) -> None:
    result = await h.run("link boom")
    error = tree_errors(h)[-1]
    assert isinstance(error, app_commands.CommandInvokeError)
    assert isinstance(error.original, RuntimeError)
    assert len(result.callbacks) == 1
    assert result.ephemeral
    assert result.text() == "error: CommandInvokeError"


async def test_button_click_runs_the_view_and_edits_the_message(h: Harness) -> None:
    first = await h.run("pages", user=MEMBER)
    message = first.final_message
    assert message is not None
    assert message.custom_ids == ["next", "off"]
    assert message.ephemeral

    second = await h.click(first, "next", user=MEMBER)
    assert second.payload["message"]["id"] == str(message.id)
    assert second.initial is not None
    assert second.initial.type == 7
    assert second.final_message is not None
    assert second.final_message.id == message.id
    assert message.content == "page 2"  # the live message changed for everyone looking at it

    third = await h.click(message, "next", user=MEMBER)
    assert third.final_message is not None
    assert third.final_message.content == "page 3"

    stranger = await h.click(first, "next", user=OTHER_MEMBER)
    assert stranger.initial is not None
    assert stranger.initial.type == 4
    assert stranger.ephemeral
    assert stranger.text() == "not your buttons"
    assert message.content == "page 3"

    with pytest.raises(HarnessError, match="disabled"):
        await h.click(first, "off", user=MEMBER)


async def test_command_waiting_on_a_view_resumes_after_the_click(h: Harness) -> None:
    asked = await h.run("link delete", {"slug": "abc"})
    assert asked.waiting_for_input
    question = asked.final_message
    assert question is not None
    assert question.content == "Delete abc?"
    assert question.custom_ids == ["yes"]

    answer = await h.click(asked, "yes")
    assert answer.initial is not None
    assert answer.initial.type == 7
    assert not answer.waiting_for_input
    assert h.bot.seen["delete"] is True  # type: ignore[union-attr]
    # the command finished after the click and edited its own message last
    assert question.content == "Deleted abc."
    assert [r.route for r in asked.requests] == ["interaction_callback", "edit_original", "edit_original"]


async def test_close_releases_a_command_still_waiting(h: Harness) -> None:
    asked = await h.run("link delete", {"slug": "abc"})
    assert asked.waiting_for_input
    await h.close()
    assert h.bot.seen["delete"] is None  # type: ignore[union-attr]
    assert h.bot.is_closed()


async def test_expired_views_disable_their_buttons(h: Harness) -> None:
    pages = await h.run("pages", user=MEMBER)
    asked = await h.run("link delete", {"slug": "abc"})
    assert asked.waiting_for_input
    assert await h.expire_views() == []
    message = pages.final_message
    assert message is not None
    assert message.content == "page 1 (expired)"
    assert all(b.get("disabled") for b in message.buttons())
    with pytest.raises(HarnessError, match="disabled"):
        await h.click(pages, "next", user=MEMBER)
    assert h.bot.seen["delete"] is None  # type: ignore[union-attr]  # the confirmation lapsed
    assert asked.final_message is not None
    assert asked.final_message.content == "Delete abc?"


async def test_payloads_without_a_tree_use_the_synced_definitions(
    fake_discord: FakeDiscord, harness_factory: Any
) -> None:
    guild_id = fake_discord.guild_ids[0]
    h = await harness_factory(DemoBot(sync_guild=guild_id))
    payload = Payloads(fake_discord).command("link create", {"slug": "abc", "count": 2}, user=ADMIN)
    assert payload["data"]["guild_id"] == str(guild_id)
    assert payload["data"]["options"] == [
        {
            "type": 1,
            "name": "create",
            "options": [
                {"type": 3, "name": "slug", "value": "abc"},
                {"type": 4, "name": "count", "value": 2},
            ],
        }
    ]
    result = await h.dispatch(payload)
    assert result.text() == "created abc x2"
    with pytest.raises(HarnessError, match="not synced"):
        Payloads(FakeDiscord()).command("link create", {"slug": "abc"})


async def test_modal_is_shown_and_submitted(h: Harness) -> None:
    shown = await h.run("token")
    assert shown.modal is not None
    assert shown.modal["title"] == "API token"
    assert shown.final_message is None
    with pytest.raises(HarnessError, match="4-"):
        await h.submit_modal(shown, {"token": "abc"})
    done = await h.submit_modal(shown, {"token": "secret-1234"})
    assert done.payload["type"] == 5
    assert done.initial is not None
    assert done.initial.type == 4
    assert done.ephemeral
    assert done.text() == "stored …1234"


async def test_autocomplete_returns_choices(h: Harness) -> None:
    result = await h.autocomplete("link edit", {"slug": "ab"}, focused="slug")
    assert result.initial is not None
    assert result.initial.type == 8
    assert result.choices == [{"name": s, "value": s} for s in ("abc", "abd", "about")]
    assert h.bot.seen["autocomplete"] == ("ab", "ab")  # type: ignore[union-attr]
    assert result.final_message is None


async def test_double_reply_is_rejected_with_40060(h: Harness) -> None:
    result = await h.run("double")
    assert [(cb.type, cb.status, cb.error_code) for cb in result.callbacks] == [
        (4, 200, None),
        (4, 400, 40060),
    ]
    error = tree_errors(h)[-1]
    assert isinstance(error, app_commands.CommandInvokeError)
    assert isinstance(error.original, discord.HTTPException)
    assert error.original.code == 40060
    assert result.final_message is not None
    assert result.final_message.content == "one"
    assert [m.text() for m in result.followups] == ["error: CommandInvokeError"]
    assert result.followups[0].ephemeral


async def test_dm_payload_has_no_guild(h: Harness) -> None:
    result = await h.run("whereami", user=MEMBER, dm=True)
    assert "guild_id" not in result.payload
    assert "member" not in result.payload
    assert result.payload["user"]["id"] == str(MEMBER.id)
    assert result.text() == f"guild=None user={MEMBER.id}"


async def test_initial_response_after_the_deadline_is_unknown_interaction(h: Harness) -> None:
    h.fake.initial_response_deadline = 0.0  # every answer is late, as after 3 s on Discord
    h.raise_errors = False
    result = await h.run("whereami")
    # the command's reply and then the error handler's reply are both refused
    assert [(cb.status, cb.error_code) for cb in result.callbacks] == [(404, 10062), (404, 10062)]
    assert result.initial is None
    assert result.final_message is None
    assert isinstance(tree_errors(h)[-1], app_commands.CommandInvokeError)
    # the handler's own failure escaped the tree: the harness reports it instead of hiding it
    assert len(result.errors) == 1
    assert isinstance(result.errors[0], discord.NotFound)
    assert result.errors[0].code == 10062


async def test_errors_escaping_the_tree_fail_the_run_by_default(h: Harness) -> None:
    h.fake.initial_response_deadline = 0.0
    with pytest.raises(HarnessError, match="10062"):
        await h.run("whereami")


async def test_sync_is_recorded_and_ids_come_from_it(fake_discord: FakeDiscord, harness_factory: Any) -> None:
    guild_id = fake_discord.guild_ids[0]
    h = await harness_factory(DemoBot(sync_guild=guild_id))
    assert [(s.scope, s.guild_id) for s in fake_discord.syncs] == [("guild", guild_id)]
    names = sorted(c["name"] for c in fake_discord.commands[guild_id])
    assert names == ["double", "link", "pages", "token", "whereami"]
    result = await h.run("link edit", {"slug": "abc"})
    data = result.payload["data"]
    assert data["guild_id"] == str(guild_id)
    assert int(data["id"]) == fake_discord.command_id("link", guild_id)
    assert result.text() == "edited abc"


async def test_channel_posts_can_be_broken(fake_discord: FakeDiscord, harness_factory: Any) -> None:
    h = await harness_factory(DemoBot())
    channel = h.bot.get_channel(h.guild.log_channel_id)
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("audit: link created")
    assert sent.content == "audit: link created"
    fake_discord.forbid_channel(channel.id)
    with pytest.raises(discord.Forbidden) as forbidden:
        await channel.send("x")
    assert forbidden.value.code == 50013
    fake_discord.delete_channel(channel.id)
    with pytest.raises(discord.NotFound) as missing:
        await channel.send("x")
    assert missing.value.code == 10003
    assert [(p.channel_id, p.status) for p in fake_discord.channel_posts] == [
        (channel.id, 200),
        (channel.id, 403),
        (channel.id, 404),
    ]


async def test_route_failures_latency_and_unknown_routes(
    fake_discord: FakeDiscord, harness_factory: Any
) -> None:
    h = await harness_factory(DemoBot())
    fake_discord.fail("interaction_callback", status=500, code=0, times=1)
    fake_discord.set_latency("edit_original", 0.2)
    result = await h.run("link info", {"slug": "abc"}, timeout=15)
    # discord.py retried the 5xx callback once, then deferred; the edit waited for the latency
    assert [cb.status for cb in result.callbacks] == [500, 200]
    edit = next(r for r in result.requests if r.route == "edit_original")
    assert edit.t_done_perf - edit.t_perf >= 0.2
    with pytest.raises(discord.NotFound):
        await h.bot.http.request(discord.http.Route("GET", "/nothing/here"))
    assert [r.path for r in fake_discord.unknown_requests] == ["/nothing/here"]


async def test_plain_client_over_the_fake_gateway() -> None:
    async with FakeDiscord(guilds=3) as fake:
        old_base, old_gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = fake.api_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
        intents = discord.Intents.none()
        intents.guilds = True
        client = discord.Client(intents=intents, guild_ready_timeout=0.05)
        ready = asyncio.Event()
        answered = asyncio.Event()
        seen: list[discord.Interaction] = []

        @client.event
        async def on_ready() -> None:
            ready.set()

        @client.event
        async def on_interaction(interaction: discord.Interaction) -> None:
            seen.append(interaction)
            await interaction.response.send_message("pong", ephemeral=True)
            answered.set()

        runner = asyncio.create_task(client.start("fake-token"))
        try:
            await asyncio.wait_for(ready.wait(), 10)
            assert len(client.guilds) == 3
            assert {g.id for g in client.guilds} == set(fake.guild_ids)
            query = fake.gateway_connections[0]
            assert query["encoding"] == "json"
            assert query["compress"] in ("zlib-stream", "zstd-stream")
            identify = fake.identified_sessions[0].identify
            assert identify is not None
            assert identify["intents"] == intents.value

            guild = fake.guild(fake.guild_ids[1])
            payload: dict[str, Any] = {
                "id": str(fake.snowflakes.next()),
                "application_id": str(fake.app_id),
                "type": 3,
                "token": "tok-gateway",
                "version": 1,
                "guild_id": str(guild.id),
                "channel_id": str(guild.general_channel_id),
                "channel": dict(guild.channel_payload(guild.general_channel_id), permissions="0"),
                "member": MEMBER.member_payload(guild),
                "data": {"custom_id": "nobody-listens", "component_type": 2},
                "message": {
                    "id": str(fake.snowflakes.next()),
                    "channel_id": str(guild.general_channel_id),
                    "author": fake.bot_user,
                    "content": "",
                    "timestamp": "2026-01-01T00:00:00+00:00",
                    "edited_timestamp": None,
                    "tts": False,
                    "mention_everyone": False,
                    "mentions": [],
                    "mention_roles": [],
                    "attachments": [],
                    "embeds": [],
                    "pinned": False,
                    "type": 0,
                    "flags": 0,
                },
                "attachment_size_limit": 1024,
                "locale": "en-US",
                "app_permissions": "0",
            }
            await fake.dispatch_interaction(payload)
            callback = await fake.wait_for_callback(payload["id"], timeout=5)
            await asyncio.wait_for(answered.wait(), 5)
            assert callback.type == 4
            assert callback.ephemeral
            assert callback.content == "pong"
            assert seen[0].guild is not None
            assert seen[0].guild.id == guild.id
        finally:
            await client.close()
            await asyncio.wait_for(runner, 10)
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_base, old_gateway
        assert client.is_closed()


REPO_ROOT = Path(__file__).resolve().parents[1]


async def test_e2e_launcher_runs_a_module_against_the_fakes(tmp_path: Path) -> None:
    (tmp_path / "tinybot.py").write_text(
        textwrap.dedent(
            """
            import sys
            import discord

            intents = discord.Intents.none()
            intents.guilds = True
            client = discord.Client(intents=intents, guild_ready_timeout=0.05)

            @client.event
            async def on_ready():
                print("READY", len(client.guilds), sys.argv[1:], flush=True)
                await client.close()

            if __name__ == "__main__":
                client.run("fake-token", log_handler=None)
            """
        )
    )
    async with FakeDiscord(guilds=4) as fake:
        env = dict(
            os.environ,
            FAKE_DISCORD_API=fake.api_base,
            FAKE_DISCORD_GATEWAY=fake.gateway_url,
            E2E_BOT_MODULE="tinybot",
            PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO_ROOT)]),
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.e2e_launcher",
            "run",
            "--flag",
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, stderr.decode()
    assert stdout.decode().strip() == "READY 4 ['run', '--flag']"
    assert [s.identify is not None for s in fake.sessions] == [True]


def test_e2e_launcher_refuses_non_loopback(tmp_path: Path) -> None:
    env = dict(
        os.environ, FAKE_DISCORD_API="https://discord.com/api/v10", FAKE_DISCORD_GATEWAY="ws://127.0.0.1:1"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "tests.e2e_launcher"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO_ROOT,
        check=False,
    )
    assert proc.returncode != 0
    assert "FAKE_DISCORD_API must be a http URL on loopback" in proc.stderr


async def test_standalone_fake_serves_and_reports() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.discord",
        "--port",
        "0",
        "--guilds",
        "2",
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        lines = [(await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip() for _ in range(2)]
        values = dict(line.split("=", 1) for line in lines)
        api = values["FAKE_DISCORD_API"]
        assert values["FAKE_DISCORD_GATEWAY"].startswith("ws://127.0.0.1:")
        async with aiohttp.ClientSession() as session:
            async with session.get(api + "/users/@me") as resp:
                assert resp.status == 200
                assert (await resp.json())["bot"] is True
            async with session.get(api.removesuffix("/api/v10") + "/_fake/recordings") as resp:
                recordings = await resp.json()
        assert [r["route"] for r in recordings["requests"]] == ["get_me"]
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0
