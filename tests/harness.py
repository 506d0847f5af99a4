"""Drive real interaction payloads through a real discord.py bot, with Discord faked on loopback.

The harness logs a ``commands.Bot`` in against :class:`tests.fakes.discord.FakeDiscord` (so
``setup_hook`` runs and any command sync reaches the fake), puts the fake's guilds into the cache the
way GUILD_CREATE does, then feeds INTERACTION_CREATE payloads, built like Discord builds them, to
``ConnectionState.parse_interaction_create``. Command routing, option parsing, transformers, checks,
autocomplete, views, modals and the error handlers all run unmodified; every reply goes over HTTP to the
fake, which is what the result objects read::

    async with FakeDiscord() as fake, Harness(MyBot(), fake) as h:
        result = await h.run("link info", {"slug": "x"}, user=ADMIN)
        assert result.initial.type == 5 and result.ephemeral
        assert "dsc.gg/x" in result.text()
        page2 = await h.click(result, "next")
        modal = await h.run("dscgg token set")
        done = await h.submit_modal(modal, {"token": "abc"})
        choices = (await h.autocomplete("link edit", {"slug": "ab"}, focused="slug")).choices

``run`` returns when every task discord.py started for the interaction (the tree invoker, view or
modal dispatch, ``on_interaction`` listeners) has finished and the fake has no request in flight.
Work the bot itself spawns in the background (fire-and-forget audit posts) is not awaited: wait for
it with ``fake.wait_for(...)``.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from tests.fakes.discord import (
    ADMIN_ROLE_PERMISSIONS,
    ADMINISTRATOR,
    ALL_PERMISSIONS,
    BOT_ROLE_PERMISSIONS,
    EPHEMERAL,
    EVERYONE_PERMISSIONS,
    MANAGE_GUILD,
    Callback,
    FakeDiscord,
    FakeGuild,
    InteractionRecord,
    walk_components,
)

__all__ = [
    "ADMIN",
    "ADMINISTRATOR_USER",
    "MEMBER",
    "OTHER_MEMBER",
    "FakeUser",
    "Harness",
    "HarnessError",
    "Message",
    "Payloads",
    "Result",
]

# Interaction types
APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 2, 3, 4, 5


class HarnessError(AssertionError):
    """The test asked for something Discord's client would never send, or the bot misbehaved."""


@dataclass(frozen=True)
class FakeUser:
    """A user who invokes commands. ``permissions`` are the member's guild permissions (before
    channel overwrites); ``admin_role`` gives the member the guild's Admin role; ``roles`` are more
    role ids the member has (e.g. a "Link managers" role that command permissions name)."""

    id: int
    name: str
    permissions: int = EVERYONE_PERMISSIONS
    admin_role: bool = False
    locale: str = "en-US"
    roles: tuple[int, ...] = ()

    def with_permissions(self, permissions: int) -> FakeUser:
        return replace(self, permissions=permissions)

    def user_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.name,
            "global_name": self.name.title(),
            "discriminator": "0",
            "avatar": None,
            "public_flags": 0,
            "flags": 0,
            "bot": False,
        }

    def member_payload(self, guild: FakeGuild, *, with_user: bool = True) -> dict[str, Any]:
        perms = ALL_PERMISSIONS if self.permissions & ADMINISTRATOR else self.permissions
        roles = ([guild.admin_role_id] if self.admin_role else []) + list(self.roles)
        data: dict[str, Any] = {
            "roles": [str(role) for role in roles],
            "joined_at": "2025-02-01T00:00:00+00:00",
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "nick": None,
            "avatar": None,
            "flags": 0,
            "communication_disabled_until": None,
            "permissions": str(perms),
        }
        if with_user:
            data["user"] = self.user_payload()
        return data


ADMIN = FakeUser(
    id=1_180_000_000_000_000_101, name="admin", permissions=ADMIN_ROLE_PERMISSIONS, admin_role=True
)
MEMBER = FakeUser(id=1_180_000_000_000_000_102, name="member")
OTHER_MEMBER = FakeUser(id=1_180_000_000_000_000_103, name="other")
ADMINISTRATOR_USER = FakeUser(
    id=1_180_000_000_000_000_104, name="root", permissions=EVERYONE_PERMISSIONS | ADMINISTRATOR
)


class Message:
    """A message as the fake stores it (live: later edits show up here)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"<Message id={self.id} ephemeral={self.ephemeral} content={self.content!r}>"

    @property
    def id(self) -> int:
        return int(self.data["id"])

    @property
    def content(self) -> str:
        return str(self.data.get("content") or "")

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return list(self.data.get("embeds") or [])

    @property
    def components(self) -> list[dict[str, Any]]:
        return list(self.data.get("components") or [])

    @property
    def flags(self) -> int:
        return int(self.data.get("flags") or 0)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        """Still the "is thinking…" placeholder of a deferral."""
        return bool(self.flags & (1 << 7))

    @property
    def allowed_mentions(self) -> dict[str, Any] | None:
        return self.data.get("allowed_mentions")

    def buttons(self) -> list[dict[str, Any]]:
        return [c for c in walk_components(self.components) if c.get("type") == 2]

    def component(self, custom_id: str) -> dict[str, Any] | None:
        return next((c for c in walk_components(self.components) if c.get("custom_id") == custom_id), None)

    @property
    def custom_ids(self) -> list[str]:
        return [c["custom_id"] for c in walk_components(self.components) if "custom_id" in c]

    def texts(self) -> list[str]:
        return _texts(self.data)

    def text(self) -> str:
        return "\n".join(self.texts())


def _texts(data: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    if data.get("content"):
        out.append(str(data["content"]))
    for embed in data.get("embeds") or []:
        for key in ("title", "description"):
            if embed.get(key):
                out.append(str(embed[key]))
        if (embed.get("author") or {}).get("name"):
            out.append(str(embed["author"]["name"]))
        for fld in embed.get("fields") or []:
            out.extend(str(fld.get(k) or "") for k in ("name", "value"))
        if (embed.get("footer") or {}).get("text"):
            out.append(str(embed["footer"]["text"]))
    for comp in walk_components(data.get("components") or []):
        if comp.get("type") == 10 and comp.get("content"):  # text display (components v2)
            out.append(str(comp["content"]))
    return out


@dataclass
class Result:
    """What one interaction produced, read from the fake (live: it reflects later edits too)."""

    payload: dict[str, Any]
    record: InteractionRecord
    fake: FakeDiscord
    errors: list[BaseException] = field(default_factory=list)
    waiting_for_input: bool = False  # a command is still running, blocked on a view or modal

    @property
    def interaction_id(self) -> int:
        return int(self.payload["id"])

    @property
    def token(self) -> str:
        return str(self.payload["token"])

    @property
    def callbacks(self) -> list[Callback]:
        """Every callback POST for this interaction, in order, accepted or rejected."""
        return self.fake.callbacks_for(self.interaction_id)

    @property
    def requests(self) -> list[Any]:
        """Every REST request made with this interaction's token (callbacks and webhooks), in order."""
        return self.fake.requests_for_token(self.token)

    @property
    def initial(self) -> Callback | None:
        """The accepted initial response (type 4 message, 5 defer, 6/7 update, 8 choices, 9 modal)."""
        return self.record.initial

    @property
    def rejected_callbacks(self) -> list[Callback]:
        return [cb for cb in self.callbacks if not cb.accepted]

    @property
    def first_response_seconds(self) -> float | None:
        """Dispatch → first callback received by the fake (perf_counter), the 3-second contract."""
        cbs = self.callbacks
        return cbs[0].t_perf - self.record.t_sent_perf if cbs else None

    @property
    def final_message(self) -> Message | None:
        """The interaction's original message as it stands now (after every edit), if any."""
        mid = self.record.original_message_id
        if mid is None or mid in self.fake.deleted_messages or mid not in self.fake.messages:
            return None
        return Message(self.fake.messages[mid])

    @property
    def followups(self) -> list[Message]:
        """Messages posted as follow-ups (not counting the one that replaced a "thinking" message)."""
        original = self.record.original_message_id
        return [
            Message(self.fake.messages[mid])
            for mid in dict.fromkeys(self.record.followup_ids)
            if mid != original and mid not in self.fake.deleted_messages
        ]

    @property
    def messages(self) -> list[Message]:
        """The original message (if any) followed by the follow-ups."""
        final = self.final_message
        return ([final] if final is not None else []) + self.followups

    @property
    def ephemeral(self) -> bool:
        """Whether what the user sees is ephemeral (the original message's flag, else the callback's)."""
        final = self.final_message
        if final is not None:
            return final.ephemeral
        return bool(self.initial and self.initial.ephemeral)

    @property
    def modal(self) -> dict[str, Any] | None:
        initial = self.initial
        return initial.data if initial is not None and initial.type == 9 else None

    @property
    def choices(self) -> list[dict[str, Any]] | None:
        initial = self.initial
        return initial.choices if initial is not None else None

    def texts(self) -> list[str]:
        """All visible text: content, embed titles/descriptions/fields/footers of every message."""
        out: list[str] = []
        for message in self.messages:
            out.extend(message.texts())
        return out

    def text(self) -> str:
        return "\n".join(self.texts())


def _resolve_guild(fake: FakeDiscord, guild: int | FakeGuild | None) -> FakeGuild:
    if isinstance(guild, FakeGuild):
        return guild
    return fake.guild(guild)


class Harness:
    """See the module docstring. Use ``async with Harness(bot, fake) as h`` or start()/close()."""

    def __init__(
        self,
        bot: commands.Bot | commands.AutoShardedBot,
        fake: FakeDiscord,
        *,
        token: str = "fake-bot-token",
        guild_ids: Sequence[int] | None = None,
        dispatch_ready: bool = True,
        timeout: float = 10.0,
        raise_errors: bool = True,
    ) -> None:
        self.bot = bot
        self.fake = fake
        self.token = token
        self.guild_ids = list(guild_ids) if guild_ids is not None else fake.guild_ids
        self.dispatch_ready = dispatch_ready
        self.timeout = timeout
        self.raise_errors = raise_errors
        self._old_base: str | None = None
        self.payloads = Payloads(fake, tree=bot.tree, guild_ids=self.guild_ids)
        self.results: list[Result] = []
        self._background: set[asyncio.Task[Any]] = set()  # commands blocked on a view, see dispatch

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> Harness:
        self._old_base = discord.http.Route.BASE
        discord.http.Route.BASE = self.fake.api_base
        try:
            await self.bot.login(self.token)  # runs setup_hook
            state = self.bot._connection
            for gid in self.guild_ids:
                state.parse_guild_create(self.fake.guild_payload(gid))
            if self.dispatch_ready:
                state.call_handlers("ready")
                self.bot.dispatch("ready")
                # The bot's on_ready work (e.g. reconciling servers with the database) is done before
                # the test starts, so that it never races the test's own reads and writes.
                handlers = [task for task in asyncio.all_tasks() if task.get_name() == "discord.py: on_ready"]
                if handlers:
                    await asyncio.wait(handlers, timeout=self.timeout)
        except BaseException:
            await self.close()
            raise
        return self

    async def close(self) -> None:
        store = self.bot._connection._view_store
        views = {item.view for items in store._views.values() for item in items.values() if item.view}
        for view in views:
            view.stop()
        for modal in list(store._modals.values()):
            modal.stop()
        if self._background:  # commands that were waiting on those views now return
            _, still = await asyncio.wait(self._background, timeout=self.timeout)
            for task in still:
                task.cancel()
            self._background = set()
        try:
            if not self.bot.is_closed():
                await self.bot.close()
            else:
                await self.bot.http.close()
        finally:
            if self._old_base is not None:
                discord.http.Route.BASE = self._old_base
                self._old_base = None

    async def __aenter__(self) -> Harness:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- high level --------------------------------------------------------------------------------

    @property
    def guild(self) -> FakeGuild:
        """The default guild (the first one fed into the cache)."""
        return self.fake.guild(self.guild_ids[0])

    async def run(
        self,
        command: str,
        options: Mapping[str, Any] | None = None,
        *,
        user: FakeUser = ADMIN,
        guild: int | FakeGuild | None = None,
        channel: int | None = None,
        dm: bool = False,
        locale: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (a per-interaction budget)
        until: Callable[[Result], Any] | None = None,
    ) -> Result:
        """Invoke ``/command`` (e.g. "link create") with typed options, as ``user`` would."""
        payload = self.command_payload(
            command, options, user=user, guild=guild, channel=channel, dm=dm, locale=locale
        )
        return await self.dispatch(payload, timeout=timeout, until=until)

    async def autocomplete(
        self,
        command: str,
        options: Mapping[str, Any] | None = None,
        *,
        focused: str,
        user: FakeUser = ADMIN,
        guild: int | FakeGuild | None = None,
        channel: int | None = None,
        dm: bool = False,
        locale: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (a per-interaction budget)
    ) -> Result:
        """Type into option ``focused`` of ``/command``; ``result.choices`` holds the suggestions."""
        payload = self.command_payload(
            command, options, user=user, guild=guild, channel=channel, dm=dm, locale=locale, focused=focused
        )
        return await self.dispatch(payload, timeout=timeout)

    async def click(
        self,
        target: Result | Message,
        custom_id: str,
        *,
        user: FakeUser | None = None,
        values: Sequence[str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (a per-interaction budget)
        until: Callable[[Result], Any] | None = None,
    ) -> Result:
        """Press the button (or pick ``values`` in the select) ``custom_id`` on a message the bot sent.

        ``target`` is a message, or a result whose messages are searched (original first)."""
        origin: Result | None
        if isinstance(target, Result):
            origin = target
            candidates = target.messages
        else:
            origin = self._origin_of(target)
            candidates = [target]
        message = next((m for m in candidates if m.component(custom_id) is not None), None)
        if message is None:
            found = [cid for m in candidates for cid in m.custom_ids]
            raise HarnessError(f"no component {custom_id!r} on the message(s); present: {found}")
        base = origin.payload if origin is not None else None
        chooser = user or (self.payloads.user_of(base) if base else ADMIN)
        payload = self.payloads.component(message, custom_id, user=chooser, values=values, origin=base)
        return await self.dispatch(payload, timeout=timeout, until=until)

    async def submit_modal(
        self,
        result: Result,
        values: Mapping[str, str],
        *,
        user: FakeUser | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (a per-interaction budget)
        until: Callable[[Result], Any] | None = None,
    ) -> Result:
        """Fill in and submit the modal ``result`` opened; ``values`` maps text input custom_id → text."""
        modal = result.modal
        if modal is None:
            raise HarnessError("that interaction did not answer with a modal")
        base = result.payload
        payload = self.payloads.modal_submit(
            modal, values, user=user or self.payloads.user_of(base), origin=base
        )
        return await self.dispatch(payload, timeout=timeout, until=until)

    # -- dispatch ----------------------------------------------------------------------------------

    async def dispatch(
        self,
        payload: dict[str, Any],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (a per-interaction budget)
        until: Callable[[Result], Any] | None = None,
    ) -> Result:
        """Feed one INTERACTION_CREATE payload to the bot; return once it has been handled.

        "Handled": every task discord.py started for it (and any still running from earlier
        interactions) has finished or sits in ``await view.wait()`` / ``modal.wait()`` on a view that
        is still listening, and the fake has no request in flight. A command blocked that way (e.g. a
        confirmation) carries on when a later ``click`` stops its view, and that ``click`` waits for it.
        ``until(result)`` ends the wait early once true (for waits the harness cannot see through).
        """
        timeout = self.timeout if timeout is None else timeout
        record = self.fake.register_interaction(payload)
        before = asyncio.all_tasks()
        self.bot._connection.parse_interaction_create(payload)  # type: ignore[arg-type]
        spawned = asyncio.all_tasks() - before
        result = Result(payload=payload, record=record, fake=self.fake)
        self.results.append(result)
        result.errors, result.waiting_for_input = await self._settle(
            spawned, timeout, f"interaction {payload['type']}", lambda: until is not None and until(result)
        )
        if result.errors and self.raise_errors:
            raise HarnessError(
                f"a task discord.py spawned for the interaction failed: {result.errors[0]!r}"
            ) from (result.errors[0])
        return result

    async def gateway_event(
        self,
        event: str,
        data: dict[str, Any],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (a per-event budget)
    ) -> list[BaseException]:
        """Feed one gateway DISPATCH (e.g. APPLICATION_COMMAND_PERMISSIONS_UPDATE) to the bot the way its
        gateway connection would; return once the handlers discord.py started for it are done."""
        parser = getattr(self.bot._connection, "parse_" + event.lower(), None)
        if parser is None:
            raise HarnessError(f"discord.py has no parser for the gateway event {event}")
        before = asyncio.all_tasks()
        parser(data)
        spawned = asyncio.all_tasks() - before
        errors, _ = await self._settle(spawned, self.timeout if timeout is None else timeout, event)
        return errors

    async def expire_views(self, *, timeout: float | None = None) -> list[BaseException]:  # noqa: ASYNC109
        """Time out every listening view now, as if its timeout had passed: ``on_timeout`` runs and
        commands waiting on the view resume. Returns errors raised by those tasks."""
        store = self.bot._connection._view_store
        views = {item.view for items in store._views.values() for item in items.values() if item.view}
        before = asyncio.all_tasks()
        for view in views:
            if view.timeout is not None:
                view._dispatch_timeout()
        spawned = asyncio.all_tasks() - before
        errors, _ = await self._settle(spawned, self.timeout if timeout is None else timeout, "view timeout")
        return errors

    async def _settle(
        self,
        spawned: set[asyncio.Task[Any]],
        timeout: float,  # noqa: ASYNC109 (a per-interaction budget)
        what: str,
        until: Callable[[], Any] | None = None,
    ) -> tuple[list[BaseException], bool]:
        """Wait until ``spawned`` and the earlier blocked tasks are done or blocked on a listening
        view/modal, and the fake is idle. Returns the errors of the tasks that finished and whether
        some are still blocked (kept for the next dispatch)."""
        tasks = spawned | self._background
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            live = {t for t in tasks if not t.done()}
            if self.fake.in_flight == 0:
                if not live:
                    break
                if all(self._waiting_for_input(t) for t in live) or (until is not None and until()):
                    break
            if loop.time() > deadline:
                for task in live:
                    task.cancel()
                raise HarnessError(
                    f"{what} not handled within {timeout}s: " + ", ".join(t.get_name() for t in live)
                )
            if live:
                await asyncio.wait(live, timeout=0.005, return_when=asyncio.FIRST_COMPLETED)
            else:
                await asyncio.sleep(0.001)
        self._background = live
        errors: list[BaseException] = []
        for task in tasks - live:
            if not task.cancelled():
                error = task.exception()
                if error is not None:
                    errors.append(error)
        for _ in range(3):
            await asyncio.sleep(0)
        await self.fake.wait_idle(timeout)
        return errors, bool(live)

    def _listening_futures(self) -> set[int]:
        """ids of the futures that ``View.wait()`` / ``Modal.wait()`` block on, for live views."""
        store = self.bot._connection._view_store
        views: set[Any] = {
            item.view for items in store._views.values() for item in items.values() if item.view
        }
        views.update(store._modals.values())
        futures = (getattr(v, "_BaseView__stopped", None) for v in views)
        return {id(f) for f in futures if f is not None and not f.done()}

    def _waiting_for_input(self, task: asyncio.Task[Any]) -> bool:
        """Whether the task is blocked on a still-listening view or modal (following awaited tasks)."""
        listening = self._listening_futures()
        seen: set[int] = set()
        current: Any = task
        while isinstance(current, asyncio.Future) and id(current) not in seen:
            seen.add(id(current))
            if id(current) in listening:
                return True
            current = getattr(current, "_fut_waiter", None)  # what a Task is blocked on (CPython)
        return False

    # -- payload builders --------------------------------------------------------------------------

    def _origin_of(self, message: Message) -> Result | None:
        for result in reversed(self.results):
            mid = message.id
            if result.record.original_message_id == mid or mid in result.record.followup_ids:
                return result
        return None

    def command_payload(
        self, command: str, options: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """See :meth:`Payloads.command`."""
        return self.payloads.command(command, options, **kwargs)


class Payloads:
    """Builds INTERACTION_CREATE payloads the way Discord does, for the fake's guilds.

    Command definitions come from what was synced to the fake, else from ``tree`` (the bot's
    CommandTree). Without a tree (end-to-end tests, where the bot runs in another process) only
    synced commands can be invoked::

        payload = Payloads(fake).command("link info", {"slug": "x"}, user=ADMIN)
        await fake.dispatch_interaction(payload)
    """

    def __init__(
        self,
        fake: FakeDiscord,
        tree: app_commands.CommandTree[Any] | None = None,
        guild_ids: Sequence[int] | None = None,
    ) -> None:
        self.fake = fake
        self.tree = tree
        self.guild_ids = list(guild_ids) if guild_ids is not None else fake.guild_ids

    def next_interaction_id(self) -> int:
        return self.fake.snowflakes.next()

    def user_of(self, payload: Mapping[str, Any]) -> FakeUser:
        raw = payload.get("member", {}).get("user") or payload["user"]
        uid = int(raw["id"])
        for known in (ADMIN, MEMBER, OTHER_MEMBER, ADMINISTRATOR_USER):
            if known.id == uid:
                return known
        member = payload.get("member", {})
        perms = int(member.get("permissions", EVERYONE_PERMISSIONS))
        roles = tuple(int(role) for role in member.get("roles", ()))
        return FakeUser(id=uid, name=raw["username"], permissions=perms, roles=roles)

    def base(
        self,
        itype: int,
        data: dict[str, Any],
        *,
        user: FakeUser,
        guild: int | FakeGuild | None,
        channel: int | None,
        dm: bool,
        locale: str | None,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": str(self.next_interaction_id()),
            "application_id": str(self.fake.app_id),
            "type": itype,
            "data": data,
            "token": "itok-" + secrets.token_urlsafe(24),
            "version": 1,
            "locale": locale or user.locale,
            "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if dm:
            channel_id = channel or (user.id + 7)
            payload.update(
                user=user.user_payload(),
                channel_id=str(channel_id),
                channel={
                    "id": str(channel_id),
                    "type": 1,
                    "last_message_id": None,
                    "flags": 0,
                    "recipients": [user.user_payload()],
                },
                context=1,
                authorizing_integration_owners={"0": "0"},
                app_permissions=str(BOT_ROLE_PERMISSIONS & ~MANAGE_GUILD),
            )
            return payload
        g = _resolve_guild(self.fake, guild if guild is not None else self.guild_ids[0])
        channel_id = channel or g.general_channel_id
        channel_payload = g.channel_payload(channel_id) if channel_id in g.channel_ids else None
        if channel_payload is None:
            raise HarnessError(f"channel {channel_id} is not a channel of guild {g.id}")
        member = user.member_payload(g)
        channel_payload = dict(channel_payload, permissions=member["permissions"])
        app_perms = 0 if channel_id == g.locked_channel_id else BOT_ROLE_PERMISSIONS
        payload.update(
            guild_id=str(g.id),
            guild={"id": str(g.id), "locale": g.locale, "features": []},
            guild_locale=g.locale,
            channel_id=str(channel_id),
            channel=channel_payload,
            member=member,
            context=0,
            authorizing_integration_owners={"0": str(g.id)},
            app_permissions=str(app_perms),
        )
        return payload

    def _find_definition(self, path: list[str], guild_id: int | None) -> tuple[dict[str, Any], int | None]:
        """The command's definition as Discord has it (synced JSON, else the tree's), and the guild
        it is registered in (None: global)."""
        root = path[0]
        if self.tree is None:
            for scope in (guild_id, None) if guild_id is not None else (None,):
                synced = next((c for c in self.fake.commands.get(scope, []) if c["name"] == root), None)
                if synced is not None:
                    return synced, scope
            raise HarnessError(f"/{root} was not synced to the fake")
        tree = self.tree
        cmd: Any = None
        scope = None
        if guild_id is not None:
            cmd = tree.get_command(root, guild=discord.Object(guild_id))
            scope = guild_id if cmd is not None else None
        if cmd is None:
            cmd = tree.get_command(root)
        if cmd is None:
            raise HarnessError(f"/{root} is not in the command tree")
        synced = next((c for c in self.fake.commands.get(scope, []) if c["name"] == root), None)
        definition = synced if synced is not None else cmd.to_dict(tree)
        return definition, scope

    def command(
        self,
        command: str,
        options: Mapping[str, Any] | None = None,
        *,
        user: FakeUser = ADMIN,
        guild: int | FakeGuild | None = None,
        channel: int | None = None,
        dm: bool = False,
        locale: str | None = None,
        focused: str | None = None,
    ) -> dict[str, Any]:
        """An APPLICATION_COMMAND (or, with ``focused``, AUTOCOMPLETE) payload for ``/command``."""
        path = command.strip().lstrip("/").split()
        g = None if dm else _resolve_guild(self.fake, guild if guild is not None else self.guild_ids[0])
        definition, scope = self._find_definition(path, g.id if g else None)
        if dm:
            contexts = definition.get("contexts")
            if (contexts is not None and 1 not in contexts) or definition.get("dm_permission") is False:
                raise HarnessError(f"/{path[0]} is guild-only; Discord does not offer it in DMs")
        resolved: dict[str, dict[str, Any]] = {}
        built = self._build_options(
            definition.get("options") or [], path[1:], dict(options or {}), focused, resolved, g, command
        )
        cid = self.fake.command_id(path[0], scope) or _stable_id(path[0], scope)
        data: dict[str, Any] = {"id": str(cid), "name": path[0], "type": 1}
        if built:
            data["options"] = built
        if resolved:
            data["resolved"] = resolved
        if scope is not None:
            data["guild_id"] = str(scope)
        itype = AUTOCOMPLETE if focused is not None else APPLICATION_COMMAND
        return self.base(itype, data, user=user, guild=g, channel=channel, dm=dm, locale=locale)

    def _build_options(
        self,
        defs: list[dict[str, Any]],
        path: list[str],
        values: dict[str, Any],
        focused: str | None,
        resolved: dict[str, dict[str, Any]],
        guild: FakeGuild | None,
        command: str,
    ) -> list[dict[str, Any]]:
        subs = [d for d in defs if d.get("type") in (1, 2)]
        if path:
            sub = next((d for d in subs if d["name"] == path[0]), None)
            if sub is None:
                raise HarnessError(f"/{command}: no subcommand {path[0]!r}; has {[d['name'] for d in subs]}")
            inner = self._build_options(
                sub.get("options") or [], path[1:], values, focused, resolved, guild, command
            )
            return [{"type": sub["type"], "name": sub["name"], "options": inner}]
        if subs:
            raise HarnessError(f"/{command} needs a subcommand: {[d['name'] for d in subs]}")
        by_name = {d["name"]: d for d in defs}
        unknown = set(values) - set(by_name)
        if unknown:
            raise HarnessError(f"/{command} has no option(s) {sorted(unknown)}; has {sorted(by_name)}")
        if focused is not None and focused not in by_name:
            raise HarnessError(f"/{command} has no option {focused!r}")
        if focused is not None:
            if not by_name[focused].get("autocomplete"):
                raise HarnessError(f"/{command} option {focused!r} has no autocomplete")
            values.setdefault(focused, "")
        else:
            missing = [d["name"] for d in defs if d.get("required") and d["name"] not in values]
            if missing:
                raise HarnessError(f"/{command}: required option(s) {missing} missing")
        out: list[dict[str, Any]] = []
        for d in defs:  # Discord sends options in definition order
            name = d["name"]
            if name not in values:
                continue
            if name == focused:
                out.append({"type": d["type"], "name": name, "value": str(values[name]), "focused": True})
                continue
            value = self._option_value(d, values[name], resolved, guild, command, partial=focused is not None)
            out.append({"type": d["type"], "name": name, "value": value})
        return out

    def _option_value(
        self,
        d: dict[str, Any],
        value: Any,
        resolved: dict[str, dict[str, Any]],
        guild: FakeGuild | None,
        command: str,
        *,
        partial: bool,
    ) -> Any:
        otype, name = d["type"], d["name"]
        where = f"/{command} {name}"
        if otype == 3:
            if not isinstance(value, str):
                raise HarnessError(f"{where}: expects a string, got {value!r}")
            lo, hi = d.get("min_length"), d.get("max_length")
            if not partial and ((lo is not None and len(value) < lo) or (hi is not None and len(value) > hi)):
                raise HarnessError(f"{where}: length must be {lo}-{hi}")
        elif otype == 4:
            if isinstance(value, bool) or not isinstance(value, int):
                raise HarnessError(f"{where}: expects an integer, got {value!r}")
        elif otype == 10:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise HarnessError(f"{where}: expects a number, got {value!r}")
        elif otype == 5:
            if not isinstance(value, bool):
                raise HarnessError(f"{where}: expects a boolean, got {value!r}")
        elif otype in (6, 9) and isinstance(value, FakeUser):
            resolved.setdefault("users", {})[str(value.id)] = value.user_payload()
            if guild is not None:
                resolved.setdefault("members", {})[str(value.id)] = value.member_payload(
                    guild, with_user=False
                )
            return str(value.id)
        elif otype == 7:
            channel_id = int(value.id if hasattr(value, "id") else value)
            found = self.fake.channel(channel_id)
            if found is None:
                raise HarnessError(f"{where}: unknown channel {channel_id}")
            channel = dict(found[1], permissions=str(EVERYONE_PERMISSIONS))
            types = d.get("channel_types")
            if types and channel["type"] not in types:
                raise HarnessError(f"{where}: channel type {channel['type']} not in {types}")
            resolved.setdefault("channels", {})[str(channel_id)] = channel
            return str(channel_id)
        elif otype in (8, 9):
            if guild is None:
                raise HarnessError(f"{where}: roles only exist in guilds")
            role_id = int(value.id if hasattr(value, "id") else value)
            role = next((r for r in guild.roles_payload() if int(r["id"]) == role_id), None)
            if role is None:
                raise HarnessError(f"{where}: unknown role {role_id}")
            resolved.setdefault("roles", {})[str(role_id)] = role
            return str(role_id)
        else:
            raise HarnessError(f"{where}: option type {otype} is not supported by the harness")
        if not partial:
            if otype in (4, 10):
                lo, hi = d.get("min_value"), d.get("max_value")
                if (lo is not None and value < lo) or (hi is not None and value > hi):
                    raise HarnessError(f"{where}: value must be within {lo}..{hi}")
            choices = d.get("choices")
            if choices and value not in [c["value"] for c in choices]:
                raise HarnessError(f"{where}: {value!r} is not one of {[c['value'] for c in choices]}")
        return value

    def component(
        self,
        message: Message,
        custom_id: str,
        *,
        user: FakeUser,
        values: Sequence[str] | None = None,
        origin: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A MESSAGE_COMPONENT payload: ``user`` uses ``custom_id`` on ``message``. ``origin`` is the
        payload of the interaction that produced the message (its guild, DM-ness and locale carry over)."""
        component = message.component(custom_id)
        if component is None:
            raise HarnessError(f"no component {custom_id!r} on the message; present: {message.custom_ids}")
        if component.get("disabled"):
            raise HarnessError(f"component {custom_id!r} is disabled; Discord's client cannot use it")
        if component.get("type") == 2 and component.get("style") == 5:
            raise HarnessError(f"{custom_id!r} is a link button; it sends no interaction")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": int(component["type"])}
        if component["type"] in (3, 5, 6, 7, 8):
            chosen = list(values or [])
            lo, hi = component.get("min_values", 1), component.get("max_values", 1)
            if not lo <= len(chosen) <= hi:
                raise HarnessError(f"select {custom_id!r} takes {lo}-{hi} values, got {len(chosen)}")
            if component["type"] == 3:
                allowed = {o["value"] for o in component.get("options", [])}
                if not set(chosen) <= allowed:
                    raise HarnessError(f"select {custom_id!r}: {chosen} not among {sorted(allowed)}")
            data["values"] = chosen
        elif values:
            raise HarnessError("values only apply to selects")
        guild_id = message.data.get("guild_id") or (origin.get("guild_id") if origin else None)
        payload = self.base(
            MESSAGE_COMPONENT,
            data,
            user=user,
            guild=int(guild_id) if guild_id else None,
            channel=int(message.data["channel_id"]),
            dm=not guild_id,
            locale=origin.get("locale") if origin else None,
        )
        payload["message"] = _copy_json(message.data)
        return payload

    def modal_submit(
        self,
        modal: Mapping[str, Any],
        values: Mapping[str, str],
        *,
        user: FakeUser,
        origin: Mapping[str, Any],
    ) -> dict[str, Any]:
        """A MODAL_SUBMIT payload for ``modal`` (the type 9 callback's data) shown in reply to ``origin``;
        ``values`` maps text input custom_id → text, checked like Discord's client checks them."""
        known = {c["custom_id"] for c in walk_components(modal["components"]) if c.get("type") == 4}
        unknown = set(values) - known
        if unknown:
            raise HarnessError(f"modal has no text input(s) {sorted(unknown)}")

        def submitted(comp: dict[str, Any]) -> dict[str, Any]:
            if comp.get("type") == 1:
                return {"type": 1, "components": [submitted(c) for c in comp.get("components", [])]}
            if comp.get("type") == 18:
                return {"type": 18, "id": comp.get("id", 0), "component": submitted(comp["component"])}
            if comp.get("type") == 4:
                value = values.get(comp["custom_id"], comp.get("value") or "")
                if comp.get("required", True) and not value:
                    raise HarnessError(f"text input {comp['custom_id']!r} is required")
                lo, hi = comp.get("min_length"), comp.get("max_length")
                if value and ((lo is not None and len(value) < lo) or (hi is not None and len(value) > hi)):
                    raise HarnessError(f"text input {comp['custom_id']!r} takes {lo}-{hi} characters")
                return {"type": 4, "id": comp.get("id", 0), "custom_id": comp["custom_id"], "value": value}
            return {"type": comp.get("type"), "id": comp.get("id", 0)}

        data = {"custom_id": modal["custom_id"], "components": [submitted(c) for c in modal["components"]]}
        payload = self.base(
            MODAL_SUBMIT,
            data,
            user=user,
            guild=int(origin["guild_id"]) if origin.get("guild_id") else None,
            channel=int(origin["channel"]["id"]),
            dm=not origin.get("guild_id"),
            locale=origin.get("locale"),
        )
        if "message" in origin:  # modal opened from a component: Discord includes that message
            payload["message"] = origin["message"]
        return payload


def _stable_id(name: str, scope: int | None) -> int:
    """A command id for unsynced commands, stable across runs."""
    digest = sum((i + 1) * ord(ch) for i, ch in enumerate(f"{scope}:{name}"))
    return 1_170_000_000_000_000_000 + digest


def _copy_json(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _copy_json(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_copy_json(v) for v in data]
    return data
