"""Start-up settings, read from the environment and a ``.env`` file.

Nothing here runs at import time: settings exist only once :func:`load_settings` is called, and a bad
or missing value becomes a :class:`SettingsError` whose message is one line naming the setting and the
problem, never the value (secrets included).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import stat
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from pydantic import SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_core import ErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

log = logging.getLogger(__name__)

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

#: Name of the generated key file, kept next to the database when TOKEN_ENCRYPTION_KEYS is not set.
GENERATED_KEY_FILENAME = "token.key"

#: Upper bound of GUILD_DATA_RETENTION_DAYS (a century; far beyond it, date arithmetic overflows).
MAX_RETENTION_DAYS = 36_500

# Error types for problems whose message is already written for people (see _problem()): shown as
# "NAME: message" and as "NAME message" respectively.
_WORDED = "worded"
_SENTENCE = "sentence"

_DATABASE_URL_EXAMPLES = (
    "sqlite+aiosqlite:///data/bot.sqlite3 or postgresql+asyncpg://user:password@host:5432/database"
)
_REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})

#: DISCORD_TOKEN's value in .env.example.
DISCORD_TOKEN_PLACEHOLDER = "paste-your-bot-token-here"
_PASTE_THE_BOT_TOKEN = (
    "paste the real bot token from https://discord.com/developers/applications (Bot → Reset Token)"
)


class SettingsError(Exception):
    """A setting is missing or invalid. ``str()`` is one line meant for the person starting the bot."""


class Settings(BaseSettings):
    """Every setting the bot reads. Environment variable names are the field names in upper case."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        # An empty line like `DEV_GUILD_ID=` in .env means "not set", not "invalid".
        env_ignore_empty=True,
        # The .env may be shared with docker-compose and hold keys that are not ours.
        extra="ignore",
        # A validation error must never echo input: it may contain the bot token.
        hide_input_in_errors=True,
        frozen=True,
    )

    discord_token: SecretStr
    database_path: Path = Path("data/bot.sqlite3")
    #: ``sqlite+aiosqlite:///…`` or ``postgresql+asyncpg://…``; unset: the SQLite file DATABASE_PATH.
    #: Secret: it may hold the database password.
    database_url: SecretStr | None = None
    #: Fernet keys, newest first: the first encrypts, all of them decrypt (key rotation).
    token_encryption_keys: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    dscgg_api_url: str = "https://api.dsc.gg/v2"
    dscgg_timeout: float = 10.0
    dscgg_max_rate_limit_wait: float = 5.0
    #: The longest one command waits on dsc.gg, all its calls together (retries, backoff sleeps and
    #: rate-limit waits included).
    command_deadline: float = 12.0
    #: How long /top answers are kept, per type, shared by every server (0: not kept).
    top_cache_ttl: float = 60.0
    dev_guild_id: int | None = None
    log_level: LogLevel = "INFO"
    #: Touched regularly while connected to Discord, for container health checks.
    health_file: Path | None = None
    #: Days a server's link records, settings and audit history are kept after the bot is removed
    #: from it (its dsc.gg token is deleted at once); inviting the bot back within them keeps them.
    guild_data_retention_days: int = 30
    #: Audit events kept per server (``/dscgg audit``); older ones are dropped once posted.
    audit_keep: int = 1000
    #: Shards across every process (None: the count Discord recommends, all in this process).
    shard_count: int | None = None
    #: The shards this process runs (None: all of 0..shard_count-1); needs shard_count.
    shard_ids: Annotated[tuple[int, ...] | None, NoDecode] = None
    #: Optional: keep the dsc.gg rate limits in this Redis, shared by every process using it.
    redis_url: SecretStr | None = None
    #: How many processes share the dsc.gg limits; while Redis is unavailable each uses 1/this of them.
    rate_limit_processes: int = 2
    #: The HTTP API (``bot.api``): where it listens; ``API_PORT`` empty (None) turns it off.
    api_host: str = "127.0.0.1"
    api_port: int | None = 8080
    #: The base URL users see (problem types and the key reply use it); default http://API_HOST:API_PORT.
    api_public_url: str | None = None
    #: Requests per API_RATE_WINDOW seconds, per credential (API key or Discord login).
    api_rate_limit: int = 60
    api_rate_window: float = 10.0
    #: The web dashboard's "Log in with Discord" (OAuth2): the application's client id and secret. The
    #: dashboard needs both; without them it shows a page saying so (the API works all the same).
    discord_client_id: int | None = None
    discord_client_secret: SecretStr | None = None
    #: Where a login starts; tests point it at the fake Discord's consent page.
    discord_oauth_authorize_url: str = "https://discord.com/oauth2/authorize"

    @property
    def api_url(self) -> str | None:
        """The API's public base URL (without ``/v1``), or None when the API is off."""
        if self.api_port is None:
            return None
        if self.api_public_url:
            return self.api_public_url
        host = f"[{self.api_host}]" if ":" in self.api_host else self.api_host
        return f"http://{host}:{self.api_port}"

    @field_validator("discord_token")
    @classmethod
    def _token_not_blank(cls, value: SecretStr) -> SecretStr:
        token = value.get_secret_value().strip()
        if not token:
            raise PydanticCustomError("missing", "is not set")
        if token == DISCORD_TOKEN_PLACEHOLDER:
            raise PydanticCustomError(
                _WORDED, "is still the placeholder from .env.example; " + _PASTE_THE_BOT_TOKEN
            )
        # A bot token is printable ASCII without blanks; anything else is a copy-and-paste accident.
        if not (token.isascii() and token.isprintable()) or any(char.isspace() for char in token):
            raise PydanticCustomError(
                _WORDED, "is not a bot token (it has spaces or unusual characters); " + _PASTE_THE_BOT_TOKEN
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        from bot.db.urls import BadDatabaseURL, database_url

        url = value.get_secret_value().strip()
        if "://" not in url:
            raise PydanticCustomError(
                _WORDED, "is not a database URL; use {examples}", {"examples": _DATABASE_URL_EXAMPLES}
            )
        try:
            database_url(url)
        except BadDatabaseURL as exc:
            raise PydanticCustomError(_WORDED, str(exc).replace("{", "(").replace("}", ")")) from None
        return SecretStr(url)

    @property
    def database(self) -> str | Path:
        """The database to use: DATABASE_URL, else the SQLite file DATABASE_PATH (the same as
        ``sqlite+aiosqlite:///<DATABASE_PATH>``); ``bot.db.Database.connect`` takes either."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return self.database_path

    @property
    def uses_sqlite(self) -> bool:
        return self.database_url is None or self.database_url.get_secret_value().startswith("sqlite")

    @field_validator("token_encryption_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str):
            keys = tuple(part.strip() for part in value.split(",") if part.strip())
            # Blank counts as not set; separators without any key are a mistake, not "generate one".
            if not keys and value.strip():
                raise PydanticCustomError(_SENTENCE, "is set but contains no key")
            return keys
        return value

    @field_validator("token_encryption_keys")
    @classmethod
    def _keys_are_fernet(cls, keys: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        for index, key in enumerate(keys, start=1):
            if not is_fernet_key(key.get_secret_value()):
                raise PydanticCustomError(
                    _WORDED,
                    "key {index} of {total} is not a valid Fernet key (32 url-safe base64-encoded bytes)",
                    {"index": index, "total": len(keys)},
                )
        return keys

    @field_validator("dscgg_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise PydanticCustomError(_WORDED, "must be an http(s) URL, such as https://api.dsc.gg/v2")
        return value.strip().rstrip("/")

    @field_validator("dscgg_timeout", "dscgg_max_rate_limit_wait", "command_deadline", "top_cache_ttl")
    @classmethod
    def _finite(cls, value: float) -> float:
        # "inf" and "nan" parse as floats but make no sense as a number of seconds.
        if not math.isfinite(value):
            raise ValueError("not finite")
        return value

    @field_validator("dscgg_timeout", "command_deadline")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("not positive")
        return value

    @field_validator("dscgg_max_rate_limit_wait", "top_cache_ttl")
    @classmethod
    def _not_negative(cls, value: float) -> float:
        if value < 0:
            raise ValueError("negative")
        return value

    @field_validator("guild_data_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if not 0 <= value <= MAX_RETENTION_DAYS:
            raise ValueError("out of range")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        # The URL may carry a password: the message never shows it.
        if value is None:
            return None
        url = value.get_secret_value().strip()
        if urlsplit(url).scheme not in _REDIS_SCHEMES:
            raise PydanticCustomError(_WORDED, "must be a redis:// URL, such as redis://localhost:6379/0")
        return SecretStr(url)

    @field_validator("rate_limit_processes")
    @classmethod
    def _processes(cls, value: int) -> int:
        if not 1 <= value <= 1000:
            raise ValueError("out of range")
        return value

    @field_validator("dev_guild_id", "discord_client_id")
    @classmethod
    def _snowflake(cls, value: int | None) -> int | None:
        if value is not None and not 0 < value < 2**64:
            raise ValueError("not a snowflake")
        return value

    @field_validator("audit_keep", "shard_count")
    @classmethod
    def _at_least_one(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError("less than 1")
        return value

    @field_validator("shard_ids", mode="before")
    @classmethod
    def _split_shard_ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(","))
        return value

    @field_validator("shard_ids")
    @classmethod
    def _shards_of_the_count(
        cls, ids: tuple[int, ...] | None, info: ValidationInfo
    ) -> tuple[int, ...] | None:
        if ids is None or "shard_count" not in info.data:  # an invalid SHARD_COUNT has its own line
            return ids
        count: int | None = info.data["shard_count"]
        if count is None:
            raise PydanticCustomError(
                _SENTENCE, "needs SHARD_COUNT: set it to the number of shards across all processes"
            )
        if not ids:
            raise PydanticCustomError(_SENTENCE, "is set but lists no shard")
        for shard_id in ids:
            if not 0 <= shard_id < count:
                raise PydanticCustomError(
                    _WORDED,
                    "shard {shard_id} does not exist with SHARD_COUNT={count} (ids go from 0 to {last})",
                    {"shard_id": shard_id, "count": count, "last": count - 1},
                )
        duplicates = sorted({shard_id for shard_id in ids if ids.count(shard_id) > 1})
        if duplicates:
            raise PydanticCustomError(
                _WORDED, "shard {shard_id} is listed twice", {"shard_id": duplicates[0]}
            )
        return ids

    @field_validator("api_port", mode="before")
    @classmethod
    def _blank_port(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("api_port")
    @classmethod
    def _port(cls, value: int | None) -> int | None:
        if value is not None and not 0 <= value <= 65535:
            raise ValueError("out of range")
        return value

    @field_validator("api_host")
    @classmethod
    def _host(cls, value: str) -> str:
        value = value.strip().removeprefix("[").removesuffix("]")
        if not value or any(char.isspace() or char == "/" for char in value):
            raise ValueError("not a host")
        return value

    @field_validator("api_public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise PydanticCustomError(_WORDED, "must be an http(s) URL, such as https://api.example.com")
        return value.strip().rstrip("/")

    @field_validator("discord_client_secret")
    @classmethod
    def _client_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        secret = value.get_secret_value().strip()
        if not secret or not (secret.isascii() and secret.isprintable()) or " " in secret:
            raise PydanticCustomError(
                _WORDED, "must be the client secret from the OAuth2 page of the Discord application"
            )
        return SecretStr(secret)

    @field_validator("discord_oauth_authorize_url")
    @classmethod
    def _authorize_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise PydanticCustomError(
                _WORDED,
                "must be an http(s) URL without a query, such as https://discord.com/oauth2/authorize",
            )
        return value.strip()

    @field_validator("api_rate_limit")
    @classmethod
    def _rate_limit(cls, value: int) -> int:
        if value < 1:
            raise ValueError("less than 1")
        return value

    @field_validator("api_rate_window")
    @classmethod
    def _rate_window(cls, value: float) -> float:
        if not math.isfinite(value) or value <= 0:
            raise ValueError("not positive")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value


# What to say when a field fails for a reason that has no worded message of its own.
_PROBLEMS: dict[str, str] = {
    "discord_token": "must be the bot token from the Discord developer portal",
    "database_path": "must be a file path",
    "database_url": f"must be a database URL, such as {_DATABASE_URL_EXAMPLES}",
    "token_encryption_keys": "must be one or more Fernet keys separated by commas",
    "dscgg_api_url": "must be an http(s) URL, such as https://api.dsc.gg/v2",
    "dscgg_timeout": "must be a number of seconds greater than 0",
    "dscgg_max_rate_limit_wait": "must be a number of seconds, 0 or more",
    "command_deadline": "must be a number of seconds greater than 0",
    "top_cache_ttl": "must be a number of seconds, 0 or more",
    "dev_guild_id": "must be a Discord server id (a positive whole number)",
    "log_level": "must be one of DEBUG, INFO, WARNING, ERROR",
    "health_file": "must be a file path",
    "guild_data_retention_days": f"must be a whole number of days from 0 to {MAX_RETENTION_DAYS}",
    "audit_keep": "must be a whole number of events, 1 or more",
    "shard_count": "must be a whole number of shards, 1 or more",
    "shard_ids": "must be shard ids separated by commas, such as 0,1",
    "redis_url": "must be a redis:// URL, such as redis://localhost:6379/0",
    "rate_limit_processes": "must be a whole number from 1 to 1000",
    "api_host": "must be a host name or IP address to listen on, such as 127.0.0.1",
    "api_port": "must be a port number from 0 to 65535, or empty to turn the HTTP API off",
    "api_public_url": "must be an http(s) URL, such as https://api.example.com",
    "api_rate_limit": "must be a whole number of requests, 1 or more",
    "api_rate_window": "must be a number of seconds greater than 0",
    "discord_client_id": "must be the application id (a positive whole number) of the Discord application",
    "discord_client_secret": "must be the client secret from the OAuth2 page of the Discord application",
    "discord_oauth_authorize_url": "must be an http(s) URL, such as https://discord.com/oauth2/authorize",
}


def _problem(error: ErrorDetails) -> str:
    field = str(error["loc"][0]) if error["loc"] else ""
    name = field.upper()
    if error["type"] == "missing":
        return f"{name} is not set: add it to .env or the environment (see .env.example)"
    if error["type"] == _WORDED:
        return f"{name}: {error['msg']}"
    if error["type"] == _SENTENCE:
        return f"{name} {error['msg']}"
    return f"{name}: {_PROBLEMS.get(field, 'is not valid')}"


def load_settings(env_file: str | Path | None = ".env", **overrides: Any) -> Settings:
    """Build the settings from the environment, ``env_file`` (if it exists) and ``overrides``.

    Priority: overrides > environment > env file > defaults. Override keys are field names, in any case.
    Raises SettingsError with one line that names every failing setting and never shows a value.
    """
    init = {key.lower(): value for key, value in overrides.items()}
    if "api_port" not in init and _api_port_blank(env_file):
        init["api_port"] = None  # `API_PORT=` turns the API off (empty values mean "default" elsewhere)
    try:
        return Settings(_env_file=env_file, **init)
    except ValidationError as exc:
        lines = dict.fromkeys(_problem(error) for error in exc.errors(include_input=False))
        raise SettingsError("; ".join(lines)) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not readable as UTF-8 text"
        raise SettingsError(f"{env_file}: cannot read the settings file ({reason})") from None


def _api_port_blank(env_file: str | Path | None) -> bool:
    """Whether API_PORT is set to an empty value: in the environment, else in ``env_file``."""
    value = os.environ.get("API_PORT")
    if value is not None:
        return not value.strip()
    if env_file is None:
        return False
    try:
        from dotenv import dotenv_values

        found = dotenv_values(env_file).get("API_PORT") if Path(env_file).is_file() else None
    except (OSError, UnicodeDecodeError):
        return False  # reported by load_settings itself
    return found is not None and not found.strip()


def is_fernet_key(key: str) -> bool:
    try:
        Fernet(key.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return False
    return True


def resolve_encryption_keys(settings: Settings) -> list[str]:
    """The Fernet keys for stored dsc.gg tokens, newest first.

    Uses TOKEN_ENCRYPTION_KEYS when set. Otherwise tokens are still encrypted, with a key generated
    once into ``<database folder>/token.key`` (mode 0600) and reused on later starts; a WARNING says
    that production deployments should set TOKEN_ENCRYPTION_KEYS. The key itself is never logged.
    """
    if settings.token_encryption_keys:
        return [key.get_secret_value() for key in settings.token_encryption_keys]
    if str(settings.database_path) == ":memory:":
        # Nothing outlives the process anyway, so neither should the key.
        log.warning("TOKEN_ENCRYPTION_KEYS is not set: using a temporary key for the in-memory database")
        return [Fernet.generate_key().decode("ascii")]
    key_path = settings.database_path.parent / GENERATED_KEY_FILENAME
    key = _read_key_file(key_path) if key_path.exists() else _create_key_file(key_path)
    _remove_stale_temp_files(key_path)
    if settings.uses_sqlite:
        log.warning(
            "TOKEN_ENCRYPTION_KEYS is not set: dsc.gg tokens are encrypted with the generated key in %s. "
            "Production deployments should set TOKEN_ENCRYPTION_KEYS (and keep a copy of the key).",
            key_path,
        )
    else:
        log.warning(
            "TOKEN_ENCRYPTION_KEYS is not set: dsc.gg tokens are encrypted with the generated key in %s, "
            "which only this machine has. Every bot process using this database needs the same key: "
            "set TOKEN_ENCRYPTION_KEYS (to the content of that file) everywhere.",
            key_path,
        )
    return [key]


def _read_key_file(key_path: Path) -> str:
    try:
        key = key_path.read_text(encoding="ascii").strip()
        mode = stat.S_IMODE(key_path.stat().st_mode)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a text file"
        raise SettingsError(
            f"{key_path}: cannot read the generated token key ({reason}); "
            "fix its permissions or set TOKEN_ENCRYPTION_KEYS"
        ) from None
    if not is_fernet_key(key):
        raise SettingsError(
            f"{key_path}: not a valid Fernet key; restore the original file or set TOKEN_ENCRYPTION_KEYS "
            "(stored dsc.gg tokens need the key they were encrypted with)"
        )
    if mode & 0o077:
        log.warning("%s is readable by other users (mode %o); it should be 0600", key_path, mode)
    return key


def _create_key_file(key_path: Path) -> str:
    """Write a new key so that the file is never seen half-written and never replaced.

    The key goes to a private temporary file with a unique name first (mode 0600, written and
    fsynced), which is then hard-linked into place: linking fails if another process created
    token.key meanwhile, and then that key wins. A temporary file left by a process killed midway
    blocks nothing (the next one picks another name) and is removed once token.key exists.
    """
    key = Fernet.generate_key().decode("ascii")
    folder = key_path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=folder, prefix=_temp_prefix(key_path), suffix=".tmp")
        temp_path = Path(temp_name)
        try:
            _write_all(fd, key)
            try:
                os.link(temp_path, key_path)
            except FileExistsError:
                return _read_key_file(key_path)
            except OSError:
                # Some filesystems have no hard links. A rename is just as atomic, but would replace a
                # key another process wrote meanwhile, so then read back whatever is in place.
                if key_path.exists():
                    return _read_key_file(key_path)
                os.replace(temp_path, key_path)
                _sync_folder(folder)
                key = _read_key_file(key_path)
            else:
                _sync_folder(folder)
        finally:
            temp_path.unlink(missing_ok=True)
    except OSError as exc:
        raise SettingsError(
            f"{key_path}: cannot create the token key file ({exc.strerror or exc}); "
            "set TOKEN_ENCRYPTION_KEYS or make the data folder writable"
        ) from None
    log.info("Generated a new token encryption key in %s", key_path)
    return key


def _temp_prefix(key_path: Path) -> str:
    return f".{key_path.name}."


def _remove_stale_temp_files(key_path: Path) -> None:
    """Remove temporary key files left by a process killed while creating token.key.

    Only called once token.key exists: a process still creating one then finds it and uses it.
    """
    try:
        leftovers = list(key_path.parent.glob(f"{_temp_prefix(key_path)}*.tmp"))
    except OSError:
        return
    for leftover in leftovers:
        with contextlib.suppress(OSError):
            leftover.unlink()
            log.info("Removed %s, left over from an interrupted start", leftover)


def _write_all(fd: int, content: str) -> None:
    """Write ``content`` and a newline to ``fd``, fsync and close it."""
    try:
        data = (content + "\n").encode("ascii")
        while data:
            data = data[os.write(fd, data) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_folder(folder: Path) -> None:
    """Make a new directory entry durable (not possible everywhere, e.g. on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
