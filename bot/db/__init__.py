"""Storage: one database, SQLite (the default) or PostgreSQL, through SQLAlchemy Core, holding guild
tokens, link records, settings, audit events and their pending log-channel posts."""

from bot.db.audit import AuditEventStore, PendingPost, StoredAuditEvent
from bot.db.database import CannotOpenDatabase, Database
from bot.db.guilds import GuildSettings, GuildSettingsStore
from bot.db.lifecycle import PER_GUILD_TABLES, GuildDataStore
from bot.db.links import Claim, LinkRecord, LinkRecordStore
from bot.db.migrations import SCHEMA_VERSION, SchemaTooNew
from bot.db.state import AppStateStore
from bot.db.tokens import TokenInfo, TokenStore, TokenUnreadable
from bot.db.urls import BadDatabaseURL

__all__ = [
    "PER_GUILD_TABLES",
    "SCHEMA_VERSION",
    "AppStateStore",
    "AuditEventStore",
    "BadDatabaseURL",
    "CannotOpenDatabase",
    "Claim",
    "Database",
    "GuildDataStore",
    "GuildSettings",
    "GuildSettingsStore",
    "LinkRecord",
    "LinkRecordStore",
    "PendingPost",
    "SchemaTooNew",
    "StoredAuditEvent",
    "TokenInfo",
    "TokenStore",
    "TokenUnreadable",
]
