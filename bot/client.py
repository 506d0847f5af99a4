"""DscBot: the discord.py bot that owns the settings, storage, dsc.gg client and services.

Long-lived resources (the aiohttp session, the database) are opened by ``bot.__main__`` with
``async with`` and handed in; the bot builds everything on top of them. Cogs reach the services as
``interaction.client.tokens`` / ``interaction.client.links``.

Command sync policy: a stable hash of the command payloads, as ``tree.sync`` sends them (with every
translation of names, descriptions and choices: ``bot.i18n.CatalogTranslator``), is kept per
application and scope in AppStateStore, so a change of translations alone also syncs. At start
the tree is synced only when the hash differs from the stored one — to DEV_GUILD_ID if set (global
commands copied there), otherwise globally. ``python -m bot sync`` forces it. There is never a
global sync on every boot. When shards are split over several processes (SHARD_IDS), only the
process holding shard 0 syncs at start; ``sync`` forces it in any process.

Shards: the bot is an AutoShardedBot running SHARD_IDS of SHARD_COUNT shards (default: every shard of
the count Discord recommends, all in this process). The health file is touched only while every shard
of this process is connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
from collections.abc import Callable, Sequence
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeAlias

import discord
from discord.ext import commands

from bot.audit import AuditLog
from bot.crypto import TokenCipher
from bot.db import (
    AppStateStore,
    AuditEventStore,
    Database,
    GuildDataStore,
    GuildSettingsStore,
    LinkRecordStore,
    TokenStore,
)
from bot.db.apikeys import ApiKeyStore, IdempotencyStore, ServerOverviewStore
from bot.dscgg.client import DscggClient
from bot.dscgg.ratelimit import Limiter
from bot.i18n import CatalogTranslator
from bot.metrics import Metrics
from bot.pager import PageButton, Pager
from bot.permissions import CommandPermissions, parse_overrides
from bot.services.apikeys import ApiKeyService
from bot.services.guilds import DEFAULT_PURGE_INTERVAL, GuildLifecycle, Reconciled
from bot.services.links import LinkService
from bot.services.server import ServerService
from bot.services.tokens import TokenService
from bot.tree import DscCommandTree
from cogs import EXTENSIONS

if TYPE_CHECKING:
    import aiohttp

    from bot.api.server import ApiServer
    from bot.settings import Settings

__all__ = ["CLOSE_GRACE", "SHUTDOWN_BUDGET", "SHUTDOWN_GRACE", "DscBot", "Interaction", "command_hash"]

log = logging.getLogger(__name__)

Interaction: TypeAlias = discord.Interaction["DscBot"]

# The bot never joins voice: without this every start logs two warnings about missing voice libraries.
discord.VoiceClient.warn_nacl = False
discord.VoiceClient.warn_dave = False

#: How often the health file is touched while connected (seconds).
HEALTH_INTERVAL = 15.0

#: Seconds running commands get to finish after SIGTERM/SIGINT.
SHUTDOWN_GRACE = 5.0
#: Of the shutdown, what is kept after the drain for cancelling and answering stragglers, the audit
#: log and closing the Discord connection.
_AFTER_DRAIN = 3.0
#: Seconds from SIGTERM/SIGINT until everything is closed: one deadline for every stage (Docker waits
#: 10 s before SIGKILL).
SHUTDOWN_BUDGET = SHUTDOWN_GRACE + _AFTER_DRAIN
#: Seconds running commands get when the bot closes without a signal (e.g. after a gateway error).
CLOSE_GRACE = 1.0
#: Seconds cancelled commands get to end and be answered with "the bot is restarting".
_SETTLE = 1.0
#: Kept for the gateway and HTTP close after the audit log.
_AFTER_AUDIT = 1.0


async def command_hash(
    tree: discord.app_commands.CommandTree[Any], guild: discord.abc.Snowflake | None
) -> str:
    """A stable digest of what ``tree.sync(guild=guild)`` would send, translations included."""
    commands = tree.get_commands(guild=guild)
    translator = tree.translator
    if translator is not None:  # as CommandTree.sync builds it
        payload = [await command.get_translated_payload(tree, translator) for command in commands]
    else:
        payload = [command.to_dict(tree) for command in commands]
    payload.sort(key=lambda item: (item.get("type", 1), item["name"]))
    encoded = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


class DscBot(commands.AutoShardedBot):
    tree: DscCommandTree  # narrowed by tree_cls
    #: Seconds between two purges of the data of servers the bot left (the first runs once connected).
    purge_interval: float = DEFAULT_PURGE_INTERVAL

    def __init__(
        self,
        settings: Settings,
        db: Database,
        session: aiohttp.ClientSession,
        *,
        cipher: TokenCipher,
        extensions: Sequence[str] = EXTENSIONS,
        force_sync: bool = False,
        dscgg: DscggClient | None = None,
        rate_limiter: Limiter | None = None,
        api_only: bool = False,
        **options: Any,
    ) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        if settings.shard_ids is not None:
            options["shard_ids"] = list(settings.shard_ids)
        super().__init__(
            command_prefix=commands.when_mentioned,
            help_command=None,
            tree_cls=DscCommandTree,
            intents=intents,
            max_messages=None,
            member_cache_flags=discord.MemberCacheFlags.none(),
            chunk_guilds_at_startup=False,
            allowed_mentions=discord.AllowedMentions.none(),
            shard_count=settings.shard_count,
            **options,
        )
        self.settings = settings
        self.db = db
        self.session = session
        self.extension_names = tuple(extensions)
        self.force_sync = force_sync
        #: ``python -m bot api``: logged in for REST only (audit posts), no gateway, no commands.
        self.api_only = api_only
        #: Set once a sync ran in this process: True if it synced, False if the hash was unchanged.
        self.synced: bool | None = None

        self.cipher = cipher
        self.token_store = TokenStore(db, cipher)
        self.link_records = LinkRecordStore(db)
        self.guild_settings = GuildSettingsStore(db)
        self.app_state = AppStateStore(db)
        self.audit_events = AuditEventStore(db)
        self.guild_data = GuildDataStore(db)
        self.audit_events = AuditEventStore(db, keep=settings.audit_keep)
        self.dscgg = dscgg or DscggClient(
            session,
            base_url=settings.dscgg_api_url,
            timeout=settings.dscgg_timeout,
            max_rate_limit_wait=settings.dscgg_max_rate_limit_wait,
            rate_limiter=rate_limiter,
        )
        self.metrics = Metrics()
        self.dscgg.observer = self.metrics
        self.audit = self._build_audit_log()
        self.tokens = TokenService(self.token_store, self.dscgg, self.audit)
        self.links = self._build_link_service()
        self.api_key_store = ApiKeyStore(db)
        self.api_keys = ApiKeyService(self.api_key_store, self.audit)
        self.idempotency = IdempotencyStore(db)
        self.server_info = ServerService(ServerOverviewStore(db), self.audit_events)
        #: The HTTP API's public base URL (None: the API is off); ``api`` is its server once started.
        self.api_url = settings.api_url
        self.api: ApiServer | None = None
        self.add_listener(self._count_interaction, "on_interaction")
        #: Page sources and paging state; cogs register their sources when they load.
        self.pager = Pager()
        self.lifecycle = GuildLifecycle(
            self.guild_data,
            retention=timedelta(days=settings.guild_data_retention_days),
            is_member=lambda guild_id: self.get_guild(guild_id) is not None,
            on_token_deleted=self.tokens.forget_secret,
        )
        #: Discord's command permission overrides per guild, for the runtime checks (bot/checks.py).
        self.command_permissions = CommandPermissions(self._fetch_command_permissions)
        self.add_listener(self._command_permissions_updated, "on_raw_app_command_permissions_update")
        self.add_listener(self._forget_command_permissions, "on_guild_remove")
        self._health_task: asyncio.Task[None] | None = None
        self._purge_task: asyncio.Task[None] | None = None
        #: Loop time by which the shutdown must be done; None until it begins.
        self._deadline: float | None = None
        self._close_task: asyncio.Task[None] | None = None
        #: Called once Discord accepted the token, before setup_hook does its own work. ``run()`` uses
        #: it to end the login timeout: what follows is the bot's start-up, not waiting on Discord.
        self.on_logged_in: Callable[[], object] | None = None

    # ---------------------------------------------------------------- construction hooks

    def _build_audit_log(self) -> AuditLog:
        """The audit log; a factory so a fuller implementation can be swapped in (or faked in tests)."""
        return AuditLog(self, self.audit_events, self.guild_settings)

    def _build_link_service(self) -> LinkService:
        return LinkService(
            client=self.dscgg,
            tokens=self.tokens,
            records=self.link_records,
            audit=self.audit,
            top_ttl=self.settings.top_cache_ttl,
        )

    # ---------------------------------------------------------------- command permissions

    async def _fetch_command_permissions(self, guild_id: int) -> list[dict[str, Any]]:
        if self.application_id is None:
            raise RuntimeError("application id not known yet")
        data: Any = await self.http.get_guild_application_command_permissions(self.application_id, guild_id)
        return list(data)

    async def _command_permissions_updated(self, event: discord.RawAppCommandPermissionsUpdateEvent) -> None:
        if event.application_id != self.application_id:
            return
        overrides = parse_overrides(
            {"id": p.id, "type": p.type.value, "permission": p.permission} for p in event.permissions
        )
        self.command_permissions.update(event.guild.id, event.target_id, overrides)

    async def _forget_command_permissions(self, guild: discord.Guild) -> None:
        self.command_permissions.forget(guild.id)

    # ---------------------------------------------------------------- lifecycle

    async def setup_hook(self) -> None:
        if self.on_logged_in is not None:
            self.on_logged_in()
        if self.tree.closing:
            return  # asked to stop while logging in: start nothing, sync nothing
        self.audit.start()
        if self.api_only:
            return  # REST only: audit posts; no commands, no gateway tasks
        if self.cipher.has_older_keys:
            # The operator prepended a new key: move every stored token onto it, so the old key can
            # be removed from TOKEN_ENCRYPTION_KEYS after this start.
            await self.token_store.rotate_all()
        await self.tree.set_translator(CatalogTranslator())  # before any sync; reads the catalogs now
        self.add_dynamic_items(PageButton)  # page buttons of any message, sent before a restart too
        await self.lifecycle.load()  # before the gateway delivers any guild event
        for name in self.extension_names:
            await self.load_extension(name)
        try:
            await self.sync_commands(force=self.force_sync)
        except discord.HTTPException as exc:
            if self.force_sync:
                raise
            # The commands Discord has keep working; the next start tries again.
            log.error(
                "Command sync failed (HTTP %s, code %s); will retry on next start", exc.status, exc.code
            )
        if self.settings.health_file is not None:
            self._health_task = asyncio.create_task(self._health_loop(), name="health-file")
        self._purge_task = asyncio.create_task(self._purge_loop(), name="guild-data-purge")

    async def sync_commands(self, *, force: bool = False) -> bool:
        """Sync the tree if its commands changed since the last sync (or when forced).

        Returns True if it synced. Raises discord.HTTPException if Discord refuses the sync (the hash
        is then not stored, so the next start tries again). Unless forced, only the process that runs
        shard 0 syncs: several processes starting at once must not all register the commands.
        """
        guild_id = self.settings.dev_guild_id
        guild = discord.Object(guild_id) if guild_id is not None else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        where = f"guild {guild_id}" if guild is not None else "globally"
        digest = await command_hash(self.tree, guild)
        key = f"command_sync_hash:{self.application_id}:{'guild:' + str(guild_id) if guild else 'global'}"
        stored = await self.app_state.get(key)
        if stored == digest and not force:
            log.info("Commands unchanged since the last sync %s; not syncing", where)
            self.synced = False
            return False
        if not force and not self.holds_shard_zero:
            log.info("Commands %s: not syncing here, the process running shard 0 does it", where)
            self.synced = False
            return False
        reason = "requested" if force else ("first sync" if stored is None else "commands changed")
        synced = await self.tree.sync(guild=guild)
        await self.app_state.set(key, digest)
        log.info("Synced %d command(s) %s (%s)", len(synced), where, reason)
        self.synced = True
        return True

    def begin_shutdown(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Refuse new interactions from now on. Running ones get ``grace`` s; everything is closed
        ``grace + 3`` s from now (the deadline every stage of ``close()`` works within).

        Only the first call counts: a later one neither moves the deadline nor logs again.
        """
        if self._deadline is not None:
            return
        self._deadline = asyncio.get_running_loop().time() + grace + _AFTER_DRAIN
        log.info("Shutting down: no new commands, finishing running ones")
        self.tree.begin_shutdown()

    async def shutdown(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Refuse new interactions, give running ones ``grace`` s, then close; ``grace + 3`` s in all."""
        self.begin_shutdown(grace)
        await self.close()

    async def close(self) -> None:
        """Close once, within the shutdown deadline (``CLOSE_GRACE`` s of grace if no shutdown began).

        Running commands are drained first (the database is still open while they finish), cancelled
        ones are answered, due audit posts go out while the Discord connection still exists (those
        that do not make it stay stored for the next start), then the gateway and the HTTP session
        close. Safe to call any number of times, concurrently too.
        """
        if self._close_task is None:
            self.begin_shutdown(CLOSE_GRACE)
            self._close_task = asyncio.get_running_loop().create_task(self._close_once(), name="bot-close")
        await asyncio.shield(self._close_task)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()  # discord.py's own __aexit__ would await its close task, however long it takes

    def _remaining(self, keep: float = 0.0) -> float:
        assert self._deadline is not None
        return max(self._deadline - keep - asyncio.get_running_loop().time(), 0.0)

    async def _close_once(self) -> None:
        api = self.api
        # The HTTP API drains in the same grace as the commands (its requests get a 503 after it).
        api_stop = None if api is None else asyncio.create_task(api.stop(self._remaining(_AFTER_DRAIN)))
        await self.tree.drain(self._remaining(_AFTER_DRAIN), settle=_SETTLE)
        if api_stop is not None:
            await api_stop
        for task in (self._health_task, self._purge_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._health_task = self._purge_task = None
        self._remove_health_file()
        await self.command_permissions.close()
        # posts what is due while the Discord connection still exists; the rest waits in the outbox
        await self.audit.close(within=self._remaining(_AFTER_AUDIT))
        try:
            async with asyncio.timeout(max(self._remaining(), 0.25)):
                await super().close()
        except TimeoutError:
            log.warning("Discord did not confirm the disconnect in time; closing anyway")
        finally:
            await self.http.close()  # idempotent; needed when the gateway close was cut short

    async def _count_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type is discord.InteractionType.application_command and interaction.data:
            self.metrics.command(str(interaction.data.get("name", "?")))

    # ---------------------------------------------------------------- servers joined and left

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        """Removed from a server (kicked, banned, or the server was deleted): its token goes now."""
        await self.lifecycle.left(guild.id)

    async def on_guild_join(self, guild: discord.Guild) -> None:
        """Invited (back): a server still within its retention period keeps its data."""
        await self.lifecycle.joined(guild.id)

    async def on_ready(self) -> None:
        await self.reconcile_guilds()

    def holds_every_shard(self) -> bool:
        """Whether this process sees every server the bot is in (unsharded, or all shards here)."""
        count = self.shard_count
        if count is None or count <= 1:
            return True
        # None: this process launches every shard (SHARD_IDS unset)
        return self.shard_ids is None or set(range(count)) <= set(self.shard_ids)

    async def reconcile_guilds(self) -> Reconciled | None:
        """Catch up on servers that removed (or re-invited) the bot while it was offline, from the
        complete guild list READY gave (unavailable servers are in it, so they count as present).

        Only when this process holds every shard: with a partial list, a server on another shard
        would look like one that removed the bot. Returns None when it did nothing for that reason.
        """
        if not self.holds_every_shard():
            log.info("Not every shard runs in this process: departures are only taken from events")
            return None
        return await self.lifecycle.reconcile([guild.id for guild in self.guilds])

    async def _purge_loop(self) -> None:
        # Once connected: a server the bot was invited back to while offline is a member by then.
        await self.wait_until_ready()
        await self.lifecycle.run(self.purge_interval)

    # ---------------------------------------------------------------- shards

    @property
    def holds_shard_zero(self) -> bool:
        """Whether this process runs shard 0 (every process does, unless SHARD_IDS says otherwise)."""
        return self.shard_ids is None or 0 in self.shard_ids

    def shard_of(self, guild_id: int) -> tuple[int, int]:
        """(shard id, shard count) of the shard that serves ``guild_id``, as Discord assigns it."""
        count = self.shard_count or 1  # None until connected when Discord recommends the count
        return (guild_id >> 22) % count, count

    # ---------------------------------------------------------------- health file

    def healthy(self) -> bool:
        """Ready, not closing, and every shard of this process connected with a heartbeat answered."""
        if not self.is_ready() or self.is_closed():
            return False
        latencies = dict(self.latencies)
        wanted = self.shard_ids if self.shard_ids is not None else range(self.shard_count or 1)
        for shard_id in wanted:
            shard = self.get_shard(shard_id)
            if shard is None or shard.is_closed() or not math.isfinite(latencies.get(shard_id, math.nan)):
                return False
        return True

    async def _health_loop(self) -> None:
        path = self.settings.health_file
        assert path is not None
        await self.wait_until_ready()  # the first touch as soon as the bot is connected
        while True:
            try:
                if self.healthy():
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.touch()
                else:
                    self._remove_health_file()
            except OSError as exc:
                log.warning("Cannot update the health file %s: %s", path, exc.strerror or exc)
            await asyncio.sleep(HEALTH_INTERVAL)

    def _remove_health_file(self) -> None:
        path = self.settings.health_file
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
