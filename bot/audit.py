"""Audit log of link and token changes: what changed, who did it, in the server's log channel.

Services call ``AuditLog.record`` after a change or a refused change. Recording never raises and never
delays the reply to the admin. An event recorded while an interaction is being handled is handed to
the queue only once that interaction's task has finished (``bot.tree.after_interaction``): by then its
reply, or the tree's error reply, has been sent, so the log post cannot overtake it however long the
command takes. Events recorded outside an interaction are queued at once. The queue is bounded;
one background worker drains it and, for each event,

1. stores it (``AuditEventStore``, the last N per server) so ``/dscgg status`` can show it even
   without a log channel,
2. posts one embed to the server's log channel, if one is set, with ``AllowedMentions.none()``.

When posting fails because the channel is gone (404) or the bot may no longer post there (403), the
failure is logged once and stored with ``GuildSettingsStore.set_log_channel_problem`` so
``/dscgg status`` shows it; posting to that server pauses for ``retry_interval`` and the next
successful post clears the problem. Choosing a channel again with :meth:`AuditLog.set_channel`
clears it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import discord

from bot.audit_embeds import (
    AuditEvent,
    EventKind,
    FieldChange,
    build_embed,
    problem_text,
    sanitize,
    summary_line,
)
from bot.embeds import truncate
from bot.errors import InvalidInput, LogChannelUnusable
from bot.tree import after_interaction

if TYPE_CHECKING:
    from bot.db import AuditEventStore, GuildSettingsStore, StoredAuditEvent

__all__ = [
    "AuditEvent",
    "AuditLog",
    "EventKind",
    "FieldChange",
    "LogStatus",
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
    if event.reason is not None:
        payload["reason"] = event.reason
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
        reason=_text(payload.get("reason")),
        at=row.at,
    )


# --------------------------------------------------------------------------------------------------
# Status for /dscgg status
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogStatus:
    """The audit log of one server as ``/dscgg status`` shows it."""

    channel_id: int | None
    problem: str | None
    recent: tuple[AuditEvent, ...]

    def describe(self, *, limit: int = 1024) -> str:
        """A field value (at most ``limit`` characters): channel or off, any problem, latest events."""
        if self.channel_id is None:
            lines = ["Log channel: **off** (turn it on with `/dscgg logs channel:`)"]
        else:
            lines = [f"Log channel: <#{self.channel_id}>"]
        if self.problem and self.channel_id is not None:
            lines.append(
                f"⚠️ Posting failed: {problem_text(self.problem)}. "
                "Fix the channel's permissions or pick another one with `/dscgg logs channel:`."
            )
        if self.recent:
            lines.append("Latest changes:")
            lines.extend(f"• {summary_line(event)}" for event in self.recent)
        else:
            lines.append("No changes recorded yet.")
        text = ""
        for line in lines:
            candidate = f"{text}\n{line}" if text else line
            if len(candidate) > limit:
                return text if text else truncate(candidate, limit)
            text = candidate
        return text


# --------------------------------------------------------------------------------------------------
# The log
# --------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Job:
    event: AuditEvent
    #: Also post there (the previous channel, when the log channel is changed or turned off).
    also_to: int | None = None


@dataclass(slots=True)
class _Failure:
    channel_id: int
    problem: str
    retry_at: float


class AuditLog:
    """Audit events → database + one embed per event in the server's log channel.

    ``record`` is synchronous and never raises; inside an interaction the event waits for that
    interaction to finish before it is queued (see the module docstring). Call ``start()`` once the
    event loop runs (the bot's ``setup_hook``) and ``await close()`` at shutdown; ``close`` drains
    what is queued for at most ``close_timeout`` seconds.
    """

    def __init__(
        self,
        bot: discord.Client,
        events: AuditEventStore,
        guild_settings: GuildSettingsStore,
        *,
        queue_size: int = 1000,
        retry_interval: float = 300.0,
        close_timeout: float = 5.0,
        recent: int = 5,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self._bot = bot
        self._events = events
        self._settings = guild_settings
        self._queue: asyncio.Queue[_Job] = asyncio.Queue(maxsize=queue_size)
        self.retry_interval = retry_interval
        self.close_timeout = close_timeout
        self.recent = recent
        self._worker: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False
        self._failures: dict[int, _Failure] = {}
        #: Events dropped because the queue was full or the log was closed (since start).
        self.dropped = 0
        self._dropped_unreported = 0
        self.posted = 0
        #: Events recorded by interactions that are still running (queued when each one finishes).
        self.held = 0

    # ------------------------------------------------------------------ intake

    @property
    def pending(self) -> int:
        """Events waiting in the queue."""
        return self._queue.qsize()

    @property
    def running(self) -> bool:
        return self._worker is not None and not self._worker.done()

    def record(self, event: AuditEvent) -> None:
        """Queue ``event`` for the database and the log channel. Never raises, never waits.

        Inside an interaction the event is queued when the interaction's task finishes (after its
        reply); elsewhere at once.
        """
        try:
            self._submit(_Job(sanitize(event)))
        except Exception:  # recording must never break the command that triggered it
            log.exception("Could not queue an audit event of kind %s", getattr(event, "kind", "?"))

    def _submit(self, job: _Job) -> None:
        """Queue ``job`` once the current interaction (if any) is done. Never raises."""
        self.held += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self.held -= 1
            try:
                self._enqueue(job)
            except Exception:  # runs from the event loop: nothing above would catch it
                log.exception("Could not queue an audit event of kind %s", job.event.kind.value)

        try:
            after_interaction(release)
        except Exception:
            log.exception("Could not defer an audit event of kind %s; queueing it now", job.event.kind.value)
            release()

    def _enqueue(self, job: _Job) -> None:
        if self._closing:
            self._drop(job, "the audit log is closed")
            return
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            self._drop(job, "the audit queue is full")

    def _drop(self, job: _Job, why: str) -> None:
        self.dropped += 1
        self._dropped_unreported += 1
        if self._dropped_unreported == 1:
            log.warning(
                "Dropping audit events because %s (%d queued); first dropped: %s in guild %s",
                why,
                self._queue.qsize(),
                job.event.kind.value,
                job.event.guild_id,
            )

    # ------------------------------------------------------------------ lifecycle

    async def flush(self) -> None:
        """Wait until every queued event has been stored and posted (or given up on)."""
        if self.running:
            await self._queue.join()

    def start(self) -> None:
        """Start the worker (idempotent). Needs a running event loop. Does nothing once closed."""
        if self.running:
            return
        if self._closed:
            log.debug("Not starting the audit log: it was closed")
            return
        self._closing = False
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="audit-log-worker")

    async def close(self, *, within: float | None = None) -> None:
        """Stop taking events, post what is queued for at most ``close_timeout`` seconds (or ``within``
        if that is shorter), stop the worker. The log cannot be started again."""
        self._closing = True
        self._closed = True
        if self.held:
            log.warning("Audit log closing while %d events wait for their commands to finish", self.held)
        if self.running:
            limit = self.close_timeout if within is None else min(self.close_timeout, within)
            try:
                async with asyncio.timeout(limit):
                    await self._queue.join()
            except TimeoutError:
                pass
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        left = 0
        while not self._queue.empty():
            self._queue.get_nowait()
            self._queue.task_done()
            left += 1
        if left:
            self.dropped += left
            log.warning("Audit log closed with %d events not posted", left)

    # ------------------------------------------------------------------ worker

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    async def _run(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await self._handle(job)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Audit event %s for guild %s failed", job.event.kind.value, job.event.guild_id)
            finally:
                self._queue.task_done()
            if self._queue.empty() and self._dropped_unreported:
                log.warning("The audit queue drained; %d events were dropped", self._dropped_unreported)
                self._dropped_unreported = 0

    async def _handle(self, job: _Job) -> None:
        event = job.event
        try:
            await self._events.add(
                event.guild_id,
                event.kind.value,
                event.actor_id,
                event.slug,
                event_payload(event),
                at=event.at,
            )
        except Exception:
            log.exception("Could not store an audit event for guild %s", event.guild_id)

        settings = await self._settings.get(event.guild_id)
        channel_id = settings.log_channel_id
        if channel_id is not None and self._paused(event.guild_id, channel_id):
            channel_id = None  # the problem is recorded and shown in /dscgg status
        if channel_id is None and job.also_to is None:
            return
        embed = build_embed(event)
        if job.also_to is not None and job.also_to != channel_id:
            await self._post_quietly(event.guild_id, job.also_to, embed)
        if channel_id is not None:
            await self._post(event.guild_id, channel_id, embed, settings.log_channel_problem)

    async def _send(self, guild_id: int, channel_id: int, embed: discord.Embed) -> None:
        channel = self._bot.get_partial_messageable(channel_id, guild_id=guild_id)
        await channel.send(embed=embed, allowed_mentions=discord.AllowedMentions.none())

    async def _post_quietly(self, guild_id: int, channel_id: int, embed: discord.Embed) -> None:
        """A courtesy post (to the previous log channel); failures there are not the server's problem."""
        try:
            await self._send(guild_id, channel_id, embed)
        except (discord.HTTPException, OSError, TimeoutError) as error:
            log.info("Could not post to previous log channel %s of guild %s: %s", channel_id, guild_id, error)

    def _paused(self, guild_id: int, channel_id: int) -> bool:
        """True while posts to this server wait out a recorded failure of this very channel."""
        failure = self._failures.get(guild_id)
        if failure is None:
            return False
        if failure.channel_id != channel_id:  # the channel changed behind our back: start afresh
            del self._failures[guild_id]
            return False
        return self._now() < failure.retry_at

    async def _post(self, guild_id: int, channel_id: int, embed: discord.Embed, stored: str | None) -> None:
        failure = self._failures.get(guild_id)
        try:
            await self._send(guild_id, channel_id, embed)
        except discord.HTTPException as error:
            problem = _problem_of(error)
            if problem is None:
                log.warning(
                    "Posting an audit event to channel %s of guild %s failed: %s", channel_id, guild_id, error
                )
                return
            await self._failed(guild_id, channel_id, problem, stored)
            return
        except (OSError, TimeoutError) as error:
            log.warning(
                "Posting an audit event to channel %s of guild %s failed: %r", channel_id, guild_id, error
            )
            return
        self.posted += 1
        if failure is not None or stored is not None:
            self._failures.pop(guild_id, None)
            log.info("Audit posts to channel %s of guild %s work again", channel_id, guild_id)
            await self._settings.set_log_channel_problem(guild_id, None)

    async def _failed(self, guild_id: int, channel_id: int, problem: str, stored: str | None) -> None:
        previous = self._failures.get(guild_id)
        self._failures[guild_id] = _Failure(channel_id, problem, self._now() + self.retry_interval)
        if previous is not None and previous.problem == problem:
            return
        if stored != problem:
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
        for a channel that cannot hold messages. Clears any recorded posting problem. The change
        itself is logged: in the new channel, and in the previous one when it is turned off or moved.
        """
        if channel is not None:
            if not isinstance(channel, discord.abc.Messageable):
                raise InvalidInput("channel", "pick a text channel I can post messages in")
            missing = await self.missing_permissions(guild, channel)
            if missing:
                raise LogChannelUnusable(channel.id, missing)
        new_id = None if channel is None else channel.id
        before = await self._settings.get(guild.id)
        old_id = before.log_channel_id
        await self._settings.set_log_channel(guild.id, new_id)  # also clears a recorded problem
        self._failures.pop(guild.id, None)
        if old_id != new_id:
            event = AuditEvent(
                guild_id=guild.id,
                kind=EventKind.LOG_CHANNEL_CHANGED,
                actor_id=actor_id,
                changes=(FieldChange("channel", _text(old_id), _text(new_id)),),
            )
            # Posted after the reply to /dscgg logs, like every other event.
            self._submit(_Job(event, also_to=old_id))
        return await self.status(guild.id)

    async def status(self, guild_id: int) -> LogStatus:
        """The log channel (or None), its recorded problem and the latest few stored events."""
        settings = await self._settings.get(guild_id)
        rows = await self._events.latest(guild_id, self.recent)
        recent = tuple(event for row in rows if (event := event_from_row(row)) is not None)
        return LogStatus(settings.log_channel_id, settings.log_channel_problem, recent)

    async def status_text(self, guild_id: int, *, limit: int = 1024) -> str:
        """``status(guild_id).describe()``: ready for one embed field of ``/dscgg status``."""
        return (await self.status(guild_id)).describe(limit=limit)


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
