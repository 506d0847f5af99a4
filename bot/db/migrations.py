"""Schema migrations: Alembic revisions (``bot/db/alembic/versions``), applied by the bot at start-up.

``upgrade(connection)`` runs inside the transaction its caller opened (``Database.connect`` holds the
database's write lock for it), so every pending revision is applied, or none. Before the move to
Alembic the bot numbered its migrations with SQLite's ``PRAGMA user_version`` (1 to 5): such a file
(no ``alembic_version`` table) is first stamped with the matching revision (``LEGACY_REVISIONS``),
then upgraded like any other, with nothing lost. A database whose revision this code does not know
was written by a newer bot: it is refused (``SchemaTooNew``) and left untouched.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

__all__ = [
    "ALEMBIC_DIR",
    "ALEMBIC_USER_VERSION",
    "LEGACY_REVISIONS",
    "SCHEMA_VERSION",
    "MigrationResult",
    "SchemaTooNew",
    "revisions",
    "upgrade",
]

log = logging.getLogger(__name__)

#: Alembic's script folder (env.py and versions/), shipped inside the package.
ALEMBIC_DIR = Path(__file__).with_name("alembic")

#: The newest revision, the one this code writes (a test checks it against the versions folder).
SCHEMA_VERSION = "0008"

#: ``PRAGMA user_version`` of a SQLite file written before Alembic → the revision with the same schema.
LEGACY_REVISIONS: dict[int, str] = {1: "0001", 2: "0002", 3: "0003", 4: "0004", 5: "0005"}

#: user_version of a SQLite file managed by Alembic: a bot from before the switch reads it as a schema
#: newer than it knows and refuses to start, instead of misreading a newer schema.
ALEMBIC_USER_VERSION = 1000


class SchemaTooNew(Exception):
    """The database was written by a newer version of the bot; starting would risk damaging it."""

    def __init__(self, name: str, found: str, known: str) -> None:
        super().__init__(
            f"{name}: database schema version {found} is newer than this bot knows ({known}); "
            "run a newer version of the bot or restore a backup"
        )
        self.found = found
        self.known = known


@dataclass(frozen=True, slots=True)
class MigrationResult:
    #: The revision before (None: an empty database), after stamping a pre-Alembic file.
    before: str | None
    after: str
    #: The pre-Alembic user_version the file was stamped from, if it was.
    legacy_version: int | None = None

    @property
    def changed(self) -> bool:
        return self.before != self.after or self.legacy_version is not None


@cache
def _script() -> ScriptDirectory:
    return ScriptDirectory(str(ALEMBIC_DIR))


def revisions() -> list[str]:
    """Every revision, oldest first."""
    return [script.revision for script in reversed(list(_script().walk_revisions()))]


def upgrade(connection: Connection, *, name: str, target: str = "head") -> MigrationResult:
    """Bring the database on ``connection`` (inside its caller's transaction) to ``target``.

    ``name`` names the database in errors (never with a password). ``target`` other than the head is
    for tests that build older schemas.
    """
    script = _script()
    context = MigrationContext.configure(connection)
    heads = context.get_current_heads()
    legacy: int | None = None
    sqlite = connection.dialect.name == "sqlite"
    if not heads and sqlite:
        user_version = int(connection.exec_driver_sql("PRAGMA user_version").scalar() or 0)
        if user_version:
            revision = LEGACY_REVISIONS.get(user_version)
            if revision is None:
                raise SchemaTooNew(name, str(user_version), SCHEMA_VERSION)
            context.stamp(script, revision)
            heads = (revision,)
            legacy = user_version
    known = set(revisions())
    for head in heads:
        if head not in known:
            raise SchemaTooNew(name, head, SCHEMA_VERSION)
    before = heads[0] if heads else None
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, target)
    if sqlite:
        connection.exec_driver_sql(f"PRAGMA user_version = {ALEMBIC_USER_VERSION}")
    after = MigrationContext.configure(connection).get_current_revision()
    assert after is not None
    return MigrationResult(before, after, legacy)
