"""Audit log of link and token changes: what changed, who did it — kept, and posted to the log channel.

Recording and posting are separate.

Recording: ``await audit.record(event)`` stores the event before it returns; a service that changes
something in the database records the event in the same transaction as the change
(``async with audit.transaction() as tx``: pass ``tx.conn`` to the stores, then ``await
tx.record(event)``), so the change and its event are committed together, before the command replies.
If the server has a log channel, the same transaction queues the event's post in a durable outbox
(``audit_outbox``). A database failure is raised like any other: nothing is silently dropped.

Posting: one task per server with posts due ("lane"), started when an event is recorded and at
``start()`` for the posts a previous run left, and ended when the server's outbox is empty. A lane
posts its server's events oldest first, one at a time, so the order is kept within a server and a slow
or rate-limited log channel holds up only its own server. A post goes to the server's log channel at
the time it is made (plus, for a log-channel change, the previous channel). A failed post stays in the
outbox and is retried:

- rate limited (429): after Discord's ``Retry-After`` (discord.py itself already waits out short ones);
- a network error or a Discord 5xx: exponential backoff with jitter (``backoff_base`` doubling up to
  ``backoff_max``, 10 minutes);
- the channel is gone (404, ``10003``) or the bot may not post there (403, ``50001``/``50013``): logged
  once and recorded with ``GuildSettingsStore.set_log_channel_problem`` so ``/dscgg status`` shows it;
  the server's posts are paused (kept, retried every ``retry_interval``, 5 minutes) until a post works
  again or an admin picks a channel with ``/dscgg logs`` (``set_channel``), which resumes them at once
  into the channel chosen. The next successful post clears the problem;
- any other refusal (4xx): the post is given up on (logged); the event stays in the history.

A post is also given up on when its event is older than ``max_post_age`` (7 days) or when the log is
turned off before it went out. Giving up on a post never removes the event: the history (``/dscgg
audit``, the newest ``AUDIT_KEEP`` per server) keeps it, and events whose post is pending are never
trimmed. ``close()`` lets the lanes post what is due for at most ``close_timeout`` seconds (or the
shutdown budget); whatever is left stays in the outbox for the next start. A post cut off by the close
may have reached Discord already and is then posted again after the restart (at least once, never
lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import logging
import math
import random
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import discord

from bot.audit_embeds import build_embed
from bot.audit_events import AuditEvent, EventKind, FieldChange, LogStatus, sanitize
from bot.db.database import utc_now
from bot.failures import Invalid, InvalidInput, LogChannelUnusable, Reason
from bot.i18n import for_locale

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from bot.db import AuditEventStore, GuildSettingsStore, PendingPost, StoredAuditEvent

__all__ = [
    "AuditEvent",
    "AuditLog",
    "AuditPage",
    "AuditTransaction",
    "EventKind",
    "FieldChange",
    "LogStatus",
    "act_as_key",
    "acting_as_key",
    "event_from_row",
    "event_payload",
]

log = logging.getLogger(__name__)

#: Problem codes stored with ``set_log_channel_problem`` (words: ``bot.audit_embeds.problem_text``).
CHANNEL_MISSING: Final = "channel_missing"
NO_ACCESS: Final = "no_access"
NO_PERMISSION: Final = "no_permission"

#: Discord JSON error codes for the failures that mean "this channel cannot take our posts".
_UNKNOWN_CHANNEL: Final = 10003
_MISSING_ACCESS: Final = 50001
_MISSING_PERMISSIONS: Final = 50013

PAYLOAD_VERSION: Final = 1

#: Events per page of ``/dscgg audit``.
HISTORY_PAGE_SIZE: Final = 10
#: Seconds a lane waits after an unexpected error (e.g. the database failed) before trying again.
_ERROR_PAUSE: Final = 30.0


# --------------------------------------------------------------------------------------------------
# Stored form of an event
# --------------------------------------------------------------------------------------------------


def event_payload(event: AuditEvent) -> dict[str, Any]:
    """What goes into the ``payload`` column besides kind, actor and slug. Secrets are already gone."""
    event = sanitize(event)
    payload: dict[str, Any] = {"v": PAYLOAD_VERSION}
    if event.changes:
        payload["changes"] = [[c.field, c.before, c.after] for c in event.changes]
    if event.action is not None:
        payload["action"] = event.action
    if isinstance(event.reason, Reason):
        payload["reason"] = event.reason.to_json()
    elif event.reason is not None:
        payload["reason"] = event.reason
    if event.actor_key is not None:
        payload["actor_key"] = event.actor_key
    return payload


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def event_from_row(row: StoredAuditEvent) -> AuditEvent | None:
    """An event rebuilt from an ``AuditEventStore.latest`` row; None for a kind this code does not know."""
    try:
        kind = EventKind(row.kind)
    except ValueError:
        return None
    payload = row.payload
    changes = tuple(
        FieldChange(str(item[0]), _text(item[1]), _text(item[2]))
        for item in payload.get("changes", ())
        if isinstance(item, list | tuple) and len(item) == 3
    )
    return AuditEvent(
        guild_id=row.guild_id,
        kind=kind,
        actor_id=row.actor_id,
        slug=row.slug,
        changes=changes,
        action=_text(payload.get("action")),
        reason=_reason(payload.get("reason")),
        at=row.at,
        actor_key=_text(payload.get("actor_key")),
    )


def _reason(value: object) -> Reason | str | None:
    """A stored reason: data (``Reason.to_json``), or a sentence stored by an older version."""
    if value is None or isinstance(value, str):
        return value
    return Reason.from_json(value)


# --------------------------------------------------------------------------------------------------
# History for /dscgg audit
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditPage:
    """One page of a server's history, newest first."""

    events: tuple[AuditEvent, ...]
    page: int  # 0-based, clamped into range
    pages: int
    total: int


# --------------------------------------------------------------------------------------------------
# The log
# --------------------------------------------------------------------------------------------------


#: The name of the API key the current task acts with (set by the HTTP API around a request): every
#: event recorded meanwhile shows "An API key (name)" instead of a user. Never the key itself.
_acting_key: contextvars.ContextVar[str | None] = contextvars.ContextVar("acting_key", default=None)


@contextlib.contextmanager
def acting_as_key(name: str) -> Iterator[None]:
    """Record the events of the block (and of the tasks it starts) as made with the API key ``name``."""
    token = _acting_key.set(name)
    try:
        yield
    finally:
        _acting_key.reset(token)


def act_as_key(name: str) -> None:
    """Like ``acting_as_key``, for the rest of the current task's context (each asyncio task runs in its
    own copy of the context, so this never leaks out of it): for a task that serves one request."""
    _acting_key.set(name)


def _stamped(event: AuditEvent) -> AuditEvent:
    name = _acting_key.get()
    if name is None or event.actor_key is not None:
        return event
    return dataclasses.replace(event, actor_id=None, actor_key=name)


class AuditTransaction:
    """A write transaction that can also record audit events (see ``AuditLog.transaction``)."""

    def __init__(self, audit: AuditLog, conn: AsyncConnection) -> None:
        #: The transaction's connection: pass it to the stores whose change is being recorded.
        self.conn = conn
        self._audit = audit
        self.guilds: set[int] = set()

    async def record(self, event: AuditEvent, *, also_to: int | None = None) -> None:
        """Store ``event`` (and its pending post) in this transaction. ``also_to``: another channel to
        post it to as well (the previous log channel)."""
        event = sanitize(_stamped(event))
        await self._audit.events.add(
            event.guild_id,
            event.kind.value,
            event.actor_id,
            event.slug,
            event_payload(event),
            at=event.at,
            also_to=also_to,
            conn=self.conn,
        )
        self.guilds.add(event.guild_id)

    def wake(self, guild_id: int) -> None:
        """Look at the server's pending posts once this transaction is committed."""
        self.guilds.add(guild_id)


@dataclass(slots=True)
class _Lane:
    task: asyncio.Task[None]
    wake: asyncio.Event


class AuditLog:
    """Audit events → database (at once) → one embed per event in the server's log channel (per-server
    outbox). See the module docstring.

    Call ``start()`` once the event loop runs (the bot's ``setup_hook``): it resumes the posts a
    previous run left. ``await close()`` at shutdown.
    """

    def __init__(
        self,
        bot: discord.Client,
        events: AuditEventStore,
        guild_settings: GuildSettingsStore,
        *,
        retry_interval: float = 300.0,
        backoff_base: float = 2.0,
        backoff_max: float = 600.0,
        max_post_age: timedelta = timedelta(days=7),
        close_timeout: float = 5.0,
        recent: int = 5,
        page_size: int = HISTORY_PAGE_SIZE,
        clock: Callable[[], datetime] = utc_now,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self._bot = bot
        self.events = events
        self._settings = guild_settings
        self.retry_interval = retry_interval
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_post_age = max_post_age
        self.close_timeout = close_timeout
        self.recent = recent
        self.page_size = page_size
        self._clock = clock
        self._jitter = jitter
        self._lanes: dict[int, _Lane] = {}
        #: Servers whose lane has work it can do now (``flush`` waits for this to empty).
        self._busy: set[int] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._resuming: asyncio.Task[None] | None = None
        self._started = False
        self._closed = False
        #: Posts made since start.
        self.posted = 0

    # ------------------------------------------------------------------ recording

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AuditTransaction]:
        """A database write transaction in which changes and their audit events are stored together::

            async with audit.transaction() as tx:
                await records.forget(guild_id, slug, conn=tx.conn)
                await tx.record(AuditEvent(...))

        Nothing is stored if the body raises. Once committed, the servers' posts are started.
        """
        async with self.events.transaction() as conn:
            tx = AuditTransaction(self, conn)
            yield tx
        for guild_id in tx.guilds:
            self._wake(guild_id)

    async def record(self, event: AuditEvent, *, also_to: int | None = None) -> None:
        """Store ``event`` and queue its post, in a transaction of its own; returns once it is committed.

        Raises the database's error if the event cannot be stored.
        """
        async with self.transaction() as tx:
            await tx.record(event, also_to=also_to)

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        return self._started and not self._closed

    @property
    def lanes(self) -> int:
        """Servers with a posting task right now."""
        return len(self._lanes)

    def start(self) -> None:
        """Resume the posts a previous run left (idempotent). Needs a running event loop. Does nothing
        once closed."""
        if self._started or self._closed:
            return
        self._started = True
        self._resuming = asyncio.get_running_loop().create_task(
            self._resume(), name="audit-resume", context=contextvars.Context()
        )

    async def _resume(self) -> None:
        try:
            guilds = await self.events.pending_guilds()
        except Exception:
            log.exception("Could not read the pending audit posts; they go out after the next start")
            return
        if guilds:
            log.info("Resuming pending audit posts of %d server(s)", len(guilds))
        for guild_id in guilds:
            self._wake(guild_id)

    async def flush(self) -> None:
        """Wait until every post that is due has been tried (a post waiting for a retry is not waited
        for)."""
        if self._resuming is not None:
            await asyncio.shield(self._resuming)
        while self._busy:
            await self._idle.wait()

    async def close(self, *, within: float | None = None) -> None:
        """Post what is due for at most ``close_timeout`` seconds (or ``within``, if shorter), then stop.

        Nothing is lost: what was not posted stays in the outbox for the next start. Events recorded
        after this are stored but not posted in this run. The log cannot be started again.
        """
        if self._closed:
            return
        self._closed = True
        limit = self.close_timeout if within is None else min(self.close_timeout, within)
        tasks: list[asyncio.Task[None]] = [lane.task for lane in self._lanes.values()]
        if self._resuming is not None and not self._resuming.done():
            tasks.append(self._resuming)
        for lane in self._lanes.values():
            lane.wake.set()  # a lane waiting for a retry notices the close and ends
        if tasks:
            _, unfinished = await asyncio.wait(tasks, timeout=max(limit, 0.0))
            for task in unfinished:
                task.cancel()
            if unfinished:
                await asyncio.wait(unfinished, timeout=1.0)
        self._lanes.clear()
        self._busy.clear()
        self._idle.set()
        try:
            left = await self.events.pending_count()
        except Exception:  # the database may be in trouble too; the rows are there all the same
            return
        if left:
            log.info("%d audit post(s) still due; they go out after the next start", left)

    # ------------------------------------------------------------------ lanes

    def _busy_now(self, guild_id: int) -> None:
        self._busy.add(guild_id)
        self._idle.clear()

    def _idle_now(self, guild_id: int) -> None:
        self._busy.discard(guild_id)
        if not self._busy:
            self._idle.set()

    def _wake(self, guild_id: int) -> None:
        """Make the server's lane look at its outbox; start one if it has none. Never raises."""
        if not self.running:
            return  # not started yet (start() resumes it) or closed (the next start does)
        try:
            self._busy_now(guild_id)
            lane = self._lanes.get(guild_id)
            if lane is not None:
                lane.wake.set()
                return
            wake = asyncio.Event()
            # A fresh context: a lane must not inherit its creator's (e.g. a database transaction's).
            task = asyncio.get_running_loop().create_task(
                self._run_lane(guild_id, wake),
                name=f"audit-posts-{guild_id}",
                context=contextvars.Context(),
            )
            self._lanes[guild_id] = _Lane(task, wake)
        except Exception:  # the event is stored: at worst it is posted after the next start
            log.exception("Could not start posting the audit events of guild %s", guild_id)
            self._idle_now(guild_id)

    async def _run_lane(self, guild_id: int, wake: asyncio.Event) -> None:
        """Post the server's pending events, oldest first, until none is left."""
        try:
            while True:
                wake.clear()
                self._busy_now(guild_id)
                try:
                    post = await self.events.next_post(guild_id)
                    if post is None:
                        if wake.is_set():  # recorded while we looked
                            continue
                        return
                    delay = (post.next_attempt_at - self._clock()).total_seconds()
                    if delay > 0:
                        if self._closed:
                            return
                        self._idle_now(guild_id)
                        await _wait(wake, delay)
                        continue
                    await self._deliver(guild_id, post)
                except Exception:
                    log.exception("Posting the audit events of guild %s failed; trying again soon", guild_id)
                    if self._closed:
                        return
                    self._idle_now(guild_id)
                    await _wait(wake, _ERROR_PAUSE)
        finally:
            lane = self._lanes.get(guild_id)
            if lane is not None and lane.task is asyncio.current_task():
                del self._lanes[guild_id]
            self._idle_now(guild_id)

    async def _deliver(self, guild_id: int, post: PendingPost) -> None:
        """Try ``post`` once: posted, retried later, or given up on (the event always stays)."""
        event_id = post.event.id
        event = event_from_row(post.event)
        if event is None:
            log.warning("Not posting audit event %s of guild %s: unknown kind", event_id, guild_id)
            await self.events.post_done(event_id)
            return
        if self._clock() - event.at > self.max_post_age:
            log.info(
                "Audit event %s of guild %s is too old to post now; kept in the history", event_id, guild_id
            )
            await self.events.post_done(event_id)
            return
        settings = await self._settings.get(guild_id)
        channel_id = settings.log_channel_id
        embed = build_embed(event, for_locale(settings.locale))  # the server's language, as last seen
        if post.also_to is not None:
            if post.also_to != channel_id:
                await self._post_quietly(guild_id, post.also_to, embed)
            await self.events.also_told(event_id)
        if channel_id is None:  # the log was turned off meanwhile: the history has the event
            await self.events.post_done(event_id)
            return
        try:
            await self._send(guild_id, channel_id, embed)
        except discord.RateLimited as error:
            await self._retry(post, _honour(error.retry_after, self._jitter()), "rate limited")
            return
        except discord.HTTPException as error:
            problem = _problem_of(error)
            if problem is not None:
                await self._unusable(guild_id, channel_id, problem, settings.log_channel_problem)
                await self._retry(post, self.retry_interval * (0.9 + 0.2 * self._jitter()), problem)
                return
            wait = _retry_after(error)
            if wait is not None:
                await self._retry(post, _honour(wait, self._jitter()), "rate limited")
                return
            if error.status >= 500:
                await self._retry(post, self._backoff(post.attempts), f"HTTP {error.status}")
                return
            log.warning(
                "Discord refused audit event %s for channel %s of guild %s (HTTP %s, code %s); given up",
                event_id,
                channel_id,
                guild_id,
                error.status,
                error.code,
            )
            await self.events.post_done(event_id)
            return
        except (OSError, TimeoutError) as error:
            await self._retry(post, self._backoff(post.attempts), type(error).__name__)
            return
        await self.events.post_done(event_id)
        self.posted += 1
        if settings.log_channel_problem is not None:
            log.info("Audit posts to channel %s of guild %s work again", channel_id, guild_id)
            await self._settings.set_log_channel_problem(guild_id, None)

    def _backoff(self, attempts: int) -> float:
        """Seconds before the next try after ``attempts + 1`` failures: doubling, capped, jittered."""
        ceiling = min(self.backoff_max, self.backoff_base * 2.0 ** min(attempts, 30))
        return ceiling * (0.5 + 0.5 * self._jitter())

    async def _retry(self, post: PendingPost, delay: float, error: str) -> None:
        retry_at = self._clock() + timedelta(seconds=max(delay, 0.0))
        log.info(
            "Audit event %s of guild %s not posted (%s); trying again in %.0f s",
            post.event.id,
            post.event.guild_id,
            error,
            delay,
        )
        await self.events.post_failed(post.event.id, retry_at=retry_at, error=error)

    async def _send(self, guild_id: int, channel_id: int, embed: discord.Embed) -> None:
        channel = self._bot.get_partial_messageable(channel_id, guild_id=guild_id)
        await channel.send(embed=embed, allowed_mentions=discord.AllowedMentions.none())

    async def _post_quietly(self, guild_id: int, channel_id: int, embed: discord.Embed) -> None:
        """A courtesy post (to the previous log channel); failures there are not the server's problem."""
        try:
            await self._send(guild_id, channel_id, embed)
        except (discord.HTTPException, discord.RateLimited, OSError, TimeoutError) as error:
            log.info("Could not post to previous log channel %s of guild %s: %s", channel_id, guild_id, error)

    async def _unusable(self, guild_id: int, channel_id: int, problem: str, stored: str | None) -> None:
        """Record (once) that the log channel cannot take posts, for ``/dscgg status``."""
        if stored == problem:
            return
        log.warning(
            "Cannot post audit events to channel %s of guild %s: %s; recorded for /dscgg status",
            channel_id,
            guild_id,
            problem,
        )
        await self._settings.set_log_channel_problem(guild_id, problem)

    # ------------------------------------------------------------------ admin operations

    async def missing_permissions(
        self, guild: discord.Guild, channel: discord.abc.GuildChannel | discord.Thread
    ) -> list[str]:
        """The permission flags the bot lacks to post audit embeds in ``channel`` (empty: all good).

        Each flag is judged on its own (Discord hides Send Messages and Embed Links along with View
        Channel; an admin needs to know which toggles to flip, so the cascade is not reported).
        """
        me: discord.Member | None = guild.me
        if me is None:
            user = self._bot.user
            if user is None:
                raise RuntimeError("the bot is not logged in")
            me = await guild.fetch_member(user.id)
        send = "send_messages_in_threads" if isinstance(channel, discord.Thread) else "send_messages"
        needed = ("view_channel", send, "embed_links")
        own = _explicit_permissions(guild, channel, me)
        missing = [flag for flag in needed if not getattr(own, flag)]
        if missing:
            return missing
        # Whatever else Discord applies (timeouts, channel-type rules) still counts.
        effective = channel.permissions_for(me)
        return [flag for flag in needed if not getattr(effective, flag)]

    async def set_channel(
        self,
        guild: discord.Guild,
        channel: discord.abc.GuildChannel | discord.Thread | None,
        *,
        actor_id: int | None = None,
    ) -> LogStatus:
        """Make ``channel`` the server's log channel (None turns logging off) and return the new status.

        Raises ``LogChannelUnusable`` naming the permissions the bot lacks there, or ``InvalidInput``
        for a channel that cannot hold messages. Clears any recorded posting problem and resumes the
        posts it held back (into ``channel``; with None they are given up on, the history keeps the
        events). The change itself is logged: in the new channel, and in the previous one when it is
        turned off or moved.
        """
        if channel is not None:
            if not isinstance(channel, discord.abc.Messageable):
                raise InvalidInput("channel", Invalid.CHANNEL_NOT_TEXT)
            missing = await self.missing_permissions(guild, channel)
            if missing:
                raise LogChannelUnusable(channel.id, missing)
        new_id = None if channel is None else channel.id
        async with self.transaction() as tx:
            old_id = (await self._settings.get(guild.id)).log_channel_id
            # Also clears a recorded problem; posts held back by it are due at once, into this channel.
            await self._settings.set_log_channel(guild.id, new_id, conn=tx.conn)
            await self.events.retry_now(guild.id, conn=tx.conn)
            tx.wake(guild.id)
            if old_id != new_id:
                event = AuditEvent(
                    guild_id=guild.id,
                    kind=EventKind.LOG_CHANNEL_CHANGED,
                    actor_id=actor_id,
                    changes=(FieldChange("channel", _text(old_id), _text(new_id)),),
                )
                # Announced in the new channel, and in the previous one when it is turned off or moved.
                await tx.record(event, also_to=old_id)
        return await self.status(guild.id)

    async def status(self, guild_id: int) -> LogStatus:
        """The log channel (or None), its recorded problem and the latest few stored events."""
        settings = await self._settings.get(guild_id)
        rows = await self.events.latest(guild_id, self.recent)
        recent = tuple(event for row in rows if (event := event_from_row(row)) is not None)
        return LogStatus(settings.log_channel_id, settings.log_channel_problem, recent)

    async def history(self, guild_id: int, page: int) -> AuditPage:
        """Page ``page`` (0-based, clamped into range) of the server's stored events, newest first."""
        total = await self.events.count(guild_id)
        pages = max(1, math.ceil(total / self.page_size))
        page = min(max(page, 0), pages - 1)
        rows = await self.events.page(guild_id, page * self.page_size, self.page_size)
        events = tuple(event for row in rows if (event := event_from_row(row)) is not None)
        return AuditPage(events=events, page=page, pages=pages, total=total)


def _explicit_permissions(
    guild: discord.Guild, channel: discord.abc.GuildChannel | discord.Thread, member: discord.Member
) -> discord.Permissions:
    """Server permissions with the channel's overwrites applied, without Discord's implicit denials."""
    if guild.owner_id == member.id:
        return discord.Permissions.all()
    perms = discord.Permissions(member.guild_permissions.value)
    if perms.administrator:
        return discord.Permissions.all()
    target = channel.parent if isinstance(channel, discord.Thread) else channel
    if target is None:  # a thread whose parent is not cached: rely on discord.py's answer
        return channel.permissions_for(member)

    def apply(overwrite: discord.PermissionOverwrite) -> None:
        allow, deny = overwrite.pair()
        perms.value = (perms.value & ~deny.value) | allow.value

    apply(target.overwrites_for(guild.default_role))
    allow = deny = 0
    for role in member.roles:
        if role.is_default():
            continue
        role_allow, role_deny = target.overwrites_for(role).pair()
        allow |= role_allow.value
        deny |= role_deny.value
    perms.value = (perms.value & ~deny) | allow
    apply(target.overwrites_for(member))
    return perms


def _problem_of(error: discord.HTTPException) -> str | None:
    """The stored problem code for a failure that means the channel cannot take posts, else None."""
    if isinstance(error, discord.NotFound):
        return CHANNEL_MISSING
    if isinstance(error, discord.Forbidden):
        if error.code == _MISSING_PERMISSIONS:
            return NO_PERMISSION
        return NO_ACCESS if error.code == _MISSING_ACCESS else NO_PERMISSION
    if error.code == _UNKNOWN_CHANNEL:
        return CHANNEL_MISSING
    return None


async def _wait(wake: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``wake`` is set."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await wake.wait()


def _honour(retry_after: float, jitter: float) -> float:
    """Discord's wait, and a little more (never less), so that retries of many posts spread out."""
    return max(retry_after, 0.0) * (1.0 + 0.1 * jitter) + 0.05


def _retry_after(error: discord.HTTPException) -> float | None:
    """Seconds Discord asked to wait (a 429 discord.py gave up on), or None if it did not ask."""
    if error.status != 429:
        return None
    headers: Any = getattr(error.response, "headers", None) or {}
    try:
        value = float(headers.get("Retry-After", "nan"))
    except (TypeError, ValueError):
        value = math.nan
    return value if math.isfinite(value) and value >= 0 else 1.0
