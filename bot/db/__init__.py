"""Storage: one SQLite database (aiosqlite) holding guild tokens, link records, settings and audit events."""

from bot.db.audit import AuditEventStore, StoredAuditEvent
from bot.db.database import Database, SchemaTooNew
from bot.db.guilds import GuildSettings, GuildSettingsStore
from bot.db.links import Claim, LinkRecord, LinkRecordStore
from bot.db.migrations import MIGRATIONS, SCHEMA_VERSION, Migration
from bot.db.state import AppStateStore
from bot.db.tokens import TokenInfo, TokenStore, TokenUnreadable

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "AppStateStore",
    "AuditEventStore",
    "Claim",
    "Database",
    "GuildSettings",
    "GuildSettingsStore",
    "LinkRecord",
    "LinkRecordStore",
    "Migration",
    "SchemaTooNew",
    "StoredAuditEvent",
    "TokenInfo",
    "TokenStore",
    "TokenUnreadable",
]
