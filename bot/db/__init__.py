"""Storage: one SQLite database (aiosqlite) holding guild tokens, link records, settings, audit events and
their pending log-channel posts."""

from bot.db.audit import AuditEventStore, PendingPost, StoredAuditEvent
from bot.db.database import Database, SchemaTooNew
from bot.db.guilds import GuildSettings, GuildSettingsStore
from bot.db.lifecycle import PER_GUILD_TABLES, GuildDataStore
from bot.db.links import Claim, LinkRecord, LinkRecordStore
from bot.db.migrations import MIGRATIONS, SCHEMA_VERSION, Migration
from bot.db.state import AppStateStore
from bot.db.tokens import TokenInfo, TokenStore, TokenUnreadable

__all__ = [
    "MIGRATIONS",
    "PER_GUILD_TABLES",
    "SCHEMA_VERSION",
    "AppStateStore",
    "AuditEventStore",
    "Claim",
    "Database",
    "GuildDataStore",
    "GuildSettings",
    "GuildSettingsStore",
    "LinkRecord",
    "LinkRecordStore",
    "Migration",
    "PendingPost",
    "SchemaTooNew",
    "StoredAuditEvent",
    "TokenInfo",
    "TokenStore",
    "TokenUnreadable",
]
