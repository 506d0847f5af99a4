"""Settings: one clear line per problem, no secret ever shown, .env and environment both honoured."""

from __future__ import annotations

import logging
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.db.urls import database_url
from bot.settings import GENERATED_KEY_FILENAME, SettingsError, load_settings, resolve_encryption_keys
from tests.fixtures.storage import SETTING_NAMES

REPO_ROOT = Path(__file__).resolve().parent.parent
SECRET_DISCORD_TOKEN = "MTIzNDU2Nzg5.secret-bot-token-value"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting from the developer's shell, and no stray .env in the working directory."""
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def new_key() -> str:
    return Fernet.generate_key().decode("ascii")


def error_line(**overrides: object) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(env_file=None, **overrides)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_missing_discord_token_is_one_clear_line() -> None:
    assert error_line() == ("DISCORD_TOKEN is not set: add it to .env or the environment (see .env.example)")


def test_blank_discord_token_counts_as_not_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "")
    assert error_line().startswith("DISCORD_TOKEN is not set")
    assert error_line(discord_token="   ").startswith("DISCORD_TOKEN is not set")


@pytest.mark.parametrize(
    "pasted",
    [
        "Bot MTIzNDU2Nzg5.secret-bot-token-value",
        "MTIzNDU2Nzg5.secret\tbot-token",
        "MTIzNDU2Nzg5.secret\u200b-bot-token",
    ],
)
def test_discord_token_with_spaces_or_odd_characters_is_refused_without_showing_it(pasted: str) -> None:
    message = error_line(discord_token=pasted)
    assert message == (
        "DISCORD_TOKEN: is not a bot token (it has spaces or unusual characters); paste the real bot "
        "token from https://discord.com/developers/applications (Bot → Reset Token)"
    )
    assert "secret" not in message


def test_discord_token_placeholder_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "paste-your-bot-token-here")
    assert error_line().startswith(
        "DISCORD_TOKEN: is still the placeholder from .env.example; paste the real"
    )


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", SECRET_DISCORD_TOKEN)
    settings = load_settings(env_file=None)
    assert settings.discord_token.get_secret_value() == SECRET_DISCORD_TOKEN
    assert settings.database_path == Path("data/bot.sqlite3")
    assert settings.token_encryption_keys == ()
    assert settings.dscgg_api_url == "https://api.dsc.gg/v2"
    assert settings.dscgg_timeout == 10.0
    assert settings.dscgg_max_rate_limit_wait == 5.0
    assert settings.command_deadline == 12.0
    assert settings.top_cache_ttl == 60.0
    assert settings.dev_guild_id is None
    assert settings.log_level == "INFO"
    assert settings.health_file is None
    assert settings.guild_data_retention_days == 30
    assert settings.audit_keep == 1000
    assert settings.database_url is None
    assert settings.database == Path("data/bot.sqlite3")  # sqlite+aiosqlite:///data/bot.sqlite3
    assert settings.uses_sqlite
    assert settings.redis_url is None
    assert settings.rate_limit_processes == 2


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("DSCGG_TIMEOUT", "abc", "DSCGG_TIMEOUT: must be a number of seconds greater than 0"),
        ("DSCGG_TIMEOUT", "0", "DSCGG_TIMEOUT: must be a number of seconds greater than 0"),
        ("DSCGG_TIMEOUT", "-1.5", "DSCGG_TIMEOUT: must be a number of seconds greater than 0"),
        ("DSCGG_TIMEOUT", "inf", "DSCGG_TIMEOUT: must be a number of seconds greater than 0"),
        ("AUDIT_KEEP", "0", "AUDIT_KEEP: must be a whole number of events, 1 or more"),
        ("AUDIT_KEEP", "many", "AUDIT_KEEP: must be a whole number of events, 1 or more"),
        (
            "DSCGG_MAX_RATE_LIMIT_WAIT",
            "-1",
            "DSCGG_MAX_RATE_LIMIT_WAIT: must be a number of seconds, 0 or more",
        ),
        (
            "DSCGG_MAX_RATE_LIMIT_WAIT",
            "soon",
            "DSCGG_MAX_RATE_LIMIT_WAIT: must be a number of seconds, 0 or more",
        ),
        ("COMMAND_DEADLINE", "0", "COMMAND_DEADLINE: must be a number of seconds greater than 0"),
        ("COMMAND_DEADLINE", "nan", "COMMAND_DEADLINE: must be a number of seconds greater than 0"),
        ("TOP_CACHE_TTL", "-1", "TOP_CACHE_TTL: must be a number of seconds, 0 or more"),
        ("TOP_CACHE_TTL", "inf", "TOP_CACHE_TTL: must be a number of seconds, 0 or more"),
        (
            "DSCGG_API_URL",
            "ftp://api.dsc.gg",
            "DSCGG_API_URL: must be an http(s) URL, such as https://api.dsc.gg/v2",
        ),
        (
            "DSCGG_API_URL",
            "api.dsc.gg/v2",
            "DSCGG_API_URL: must be an http(s) URL, such as https://api.dsc.gg/v2",
        ),
        ("DEV_GUILD_ID", "my-server", "DEV_GUILD_ID: must be a Discord server id (a positive whole number)"),
        ("DEV_GUILD_ID", "-5", "DEV_GUILD_ID: must be a Discord server id (a positive whole number)"),
        ("DEV_GUILD_ID", str(2**64), "DEV_GUILD_ID: must be a Discord server id (a positive whole number)"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR"),
        (
            "GUILD_DATA_RETENTION_DAYS",
            "-1",
            "GUILD_DATA_RETENTION_DAYS: must be a whole number of days from 0 to 36500",
        ),
        (
            "GUILD_DATA_RETENTION_DAYS",
            "a month",
            "GUILD_DATA_RETENTION_DAYS: must be a whole number of days from 0 to 36500",
        ),
        (
            "GUILD_DATA_RETENTION_DAYS",
            "99999999999",
            "GUILD_DATA_RETENTION_DAYS: must be a whole number of days from 0 to 36500",
        ),
        (
            "REDIS_URL",
            "http://:redis-password-never-shown@cache:6379",
            "REDIS_URL: must be a redis:// URL, such as redis://localhost:6379/0",
        ),
        ("REDIS_URL", "cache:6379", "REDIS_URL: must be a redis:// URL, such as redis://localhost:6379/0"),
        ("RATE_LIMIT_PROCESSES", "0", "RATE_LIMIT_PROCESSES: must be a whole number from 1 to 1000"),
        ("RATE_LIMIT_PROCESSES", "two", "RATE_LIMIT_PROCESSES: must be a whole number from 1 to 1000"),
        (
            "TOKEN_ENCRYPTION_KEYS",
            "not-a-key",
            "TOKEN_ENCRYPTION_KEYS: key 1 of 1 is not a valid Fernet key (32 url-safe base64-encoded bytes)",
        ),
    ],
)
def test_invalid_value_names_the_setting_and_hides_every_value(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", SECRET_DISCORD_TOKEN)
    monkeypatch.setenv(name, value)
    message = error_line()
    assert message == expected
    assert SECRET_DISCORD_TOKEN not in message


@pytest.mark.parametrize("value", [",", " , , ", ",,,"])
def test_encryption_keys_with_separators_but_no_key_stop_start_up(
    monkeypatch: pytest.MonkeyPatch, value: str, tmp_path: Path
) -> None:
    """Not "unset": generating a key file would silently encrypt under a key nobody configured."""
    monkeypatch.setenv("TOKEN_ENCRYPTION_KEYS", value)
    message = error_line(discord_token=SECRET_DISCORD_TOKEN, database_path=tmp_path / "data" / "bot.sqlite3")
    assert message == "TOKEN_ENCRYPTION_KEYS is set but contains no key"
    assert not (tmp_path / "data").exists()


def test_blank_encryption_keys_count_as_not_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKEN_ENCRYPTION_KEYS", "   ")
    assert load_settings(env_file=None, discord_token=SECRET_DISCORD_TOKEN).token_encryption_keys == ()


def test_bad_second_fernet_key_is_counted_and_not_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    bad_key = "c2hvcnQta2V5LXRoYXQtaXMtbm90LTMyLWJ5dGVz"
    monkeypatch.setenv("DISCORD_TOKEN", SECRET_DISCORD_TOKEN)
    monkeypatch.setenv("TOKEN_ENCRYPTION_KEYS", f"{new_key()},{bad_key}")
    message = error_line()
    assert message == (
        "TOKEN_ENCRYPTION_KEYS: key 2 of 2 is not a valid Fernet key (32 url-safe base64-encoded bytes)"
    )
    assert bad_key not in message


def test_several_problems_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSCGG_TIMEOUT", "abc")
    monkeypatch.setenv("LOG_LEVEL", "chatty")
    message = error_line()
    assert "DISCORD_TOKEN is not set" in message
    assert "DSCGG_TIMEOUT: must be a number of seconds greater than 0" in message
    assert "LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR" in message


def test_error_does_not_chain_the_pydantic_dump(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", SECRET_DISCORD_TOKEN)
    with pytest.raises(SettingsError) as caught:
        load_settings(env_file=None, dscgg_timeout="abc")
    # A traceback would print the chained ValidationError; there must be none.
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_settings_repr_hides_secrets() -> None:
    key = new_key()
    settings = load_settings(env_file=None, discord_token=SECRET_DISCORD_TOKEN, token_encryption_keys=key)
    assert SECRET_DISCORD_TOKEN not in repr(settings)
    assert key not in repr(settings)
    assert SECRET_DISCORD_TOKEN not in str(settings.model_dump())


def test_values_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = new_key(), new_key()
    monkeypatch.setenv("DISCORD_TOKEN", SECRET_DISCORD_TOKEN)
    monkeypatch.setenv("TOKEN_ENCRYPTION_KEYS", f" {first} , {second},")
    monkeypatch.setenv("DSCGG_API_URL", "http://127.0.0.1:8080/v2/")
    monkeypatch.setenv("DSCGG_TIMEOUT", "2.5")
    monkeypatch.setenv("DSCGG_MAX_RATE_LIMIT_WAIT", "0")
    monkeypatch.setenv("DEV_GUILD_ID", "123456789012345678")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("HEALTH_FILE", "/tmp/health")
    monkeypatch.setenv("GUILD_DATA_RETENTION_DAYS", "0")
    monkeypatch.setenv("REDIS_URL", " redis://:redis-password@cache:6379/2 ")
    monkeypatch.setenv("RATE_LIMIT_PROCESSES", "4")
    settings = load_settings(env_file=None)
    assert [key.get_secret_value() for key in settings.token_encryption_keys] == [first, second]
    assert settings.dscgg_api_url == "http://127.0.0.1:8080/v2"
    assert settings.dscgg_timeout == 2.5
    assert settings.dscgg_max_rate_limit_wait == 0
    assert settings.dev_guild_id == 123456789012345678
    assert settings.log_level == "DEBUG"
    assert settings.health_file == Path("/tmp/health")
    assert settings.guild_data_retention_days == 0
    assert settings.redis_url is not None
    assert settings.redis_url.get_secret_value() == "redis://:redis-password@cache:6379/2"
    assert "redis-password" not in repr(settings)
    assert settings.rate_limit_processes == 4


def test_settings_are_frozen() -> None:
    settings = load_settings(env_file=None, discord_token=SECRET_DISCORD_TOKEN)
    with pytest.raises(ValueError, match="frozen"):
        settings.log_level = "DEBUG"  # type: ignore[misc]


def test_dotenv_file_is_read_and_unknown_keys_are_ignored(tmp_path: Path) -> None:
    env_file = tmp_path / "custom.env"
    env_file.write_text(
        "# comment\n"
        f"DISCORD_TOKEN={SECRET_DISCORD_TOKEN}\n"
        "LOG_LEVEL=warning\n"
        "DEV_GUILD_ID=\n"
        "COMPOSE_PROJECT_NAME=dscgg\n"
        "SOMETHING_ELSE=whatever\n",
        encoding="utf-8",
    )
    settings = load_settings(env_file=env_file)
    assert settings.discord_token.get_secret_value() == SECRET_DISCORD_TOKEN
    assert settings.log_level == "WARNING"
    assert settings.dev_guild_id is None


def test_default_env_file_is_dot_env_in_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"DISCORD_TOKEN={SECRET_DISCORD_TOKEN}\n", encoding="utf-8")
    assert load_settings().discord_token.get_secret_value() == SECRET_DISCORD_TOKEN


def test_missing_env_file_is_fine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", SECRET_DISCORD_TOKEN)
    assert load_settings(env_file=tmp_path / "absent.env").log_level == "INFO"


def test_environment_beats_dotenv_and_overrides_beat_both(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("DISCORD_TOKEN=from-file\nLOG_LEVEL=ERROR\nDSCGG_TIMEOUT=3\n", encoding="utf-8")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("DSCGG_TIMEOUT", "4")
    settings = load_settings(env_file=env_file, DSCGG_TIMEOUT=7)
    assert settings.discord_token.get_secret_value() == "from-file"
    assert settings.log_level == "DEBUG"
    assert settings.dscgg_timeout == 7


def test_invalid_value_in_dotenv_hides_the_token(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"DISCORD_TOKEN={SECRET_DISCORD_TOKEN}\nDSCGG_TIMEOUT=fast\n", encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        load_settings(env_file=env_file)
    assert str(caught.value) == "DSCGG_TIMEOUT: must be a number of seconds greater than 0"
    assert SECRET_DISCORD_TOKEN not in str(caught.value)


def test_unreadable_env_file_is_one_line(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_bytes(b"DISCORD_TOKEN=\xff\xfe\n")
    with pytest.raises(SettingsError, match=r"cannot read the settings file"):
        load_settings(env_file=env_file)


def test_nothing_is_read_at_import_time(tmp_path: Path) -> None:
    # A broken .env and no DISCORD_TOKEN: importing must still work, only load_settings() reads.
    (tmp_path / ".env").write_text("DSCGG_TIMEOUT=abc\n", encoding="utf-8")
    environment = {key: value for key, value in os.environ.items() if key not in SETTING_NAMES}
    environment["PYTHONPATH"] = str(REPO_ROOT)
    result = subprocess.run(
        [sys.executable, "-c", "import bot.settings, bot.crypto, bot.db"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# --- the generated key file ---------------------------------------------------------------------------


def test_configured_keys_are_used_as_given(settings_factory) -> None:
    first, second = new_key(), new_key()
    settings = settings_factory(token_encryption_keys=f"{first},{second}")
    assert resolve_encryption_keys(settings) == [first, second]
    assert not (settings.database_path.parent / GENERATED_KEY_FILENAME).exists()


def test_key_file_is_generated_private_and_reused(settings_factory, caplog: pytest.LogCaptureFixture) -> None:
    settings = settings_factory()
    key_path = settings.database_path.parent / GENERATED_KEY_FILENAME
    with caplog.at_level(logging.WARNING, logger="bot.settings"):
        keys = resolve_encryption_keys(settings)
    assert len(keys) == 1
    Fernet(keys[0].encode())
    assert key_path.read_text().strip() == keys[0]
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert "TOKEN_ENCRYPTION_KEYS" in caplog.text
    assert "Production deployments should set TOKEN_ENCRYPTION_KEYS" in caplog.text
    assert keys[0] not in caplog.text
    assert [p.name for p in key_path.parent.iterdir()] == [GENERATED_KEY_FILENAME]

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="bot.settings"):
        assert resolve_encryption_keys(settings) == keys
    assert "Production deployments should set TOKEN_ENCRYPTION_KEYS" in caplog.text
    assert keys[0] not in caplog.text


def test_invalid_key_file_stops_start_up(settings_factory) -> None:
    settings = settings_factory()
    key_path = settings.database_path.parent / GENERATED_KEY_FILENAME
    key_path.parent.mkdir(parents=True)
    key_path.write_text("garbage-not-a-key\n")
    with pytest.raises(SettingsError) as caught:
        resolve_encryption_keys(settings)
    message = str(caught.value)
    assert "\n" not in message
    assert str(key_path) in message
    assert "not a valid Fernet key" in message
    assert "garbage-not-a-key" not in message
    # Never silently replaced: the admin decides.
    assert key_path.read_text() == "garbage-not-a-key\n"


def test_unreadable_key_file_stops_start_up(settings_factory) -> None:
    settings = settings_factory()
    key_path = settings.database_path.parent / GENERATED_KEY_FILENAME
    # A folder where the file should be: unreadable even for root (chmod 000 would not be).
    key_path.mkdir(parents=True)
    with pytest.raises(SettingsError) as caught:
        resolve_encryption_keys(settings)
    assert str(caught.value).startswith(f"{key_path}: cannot read the generated token key")
    assert "\n" not in str(caught.value)


def test_key_file_written_by_another_process_first_wins(settings_factory, monkeypatch) -> None:
    settings = settings_factory()
    key_path = settings.database_path.parent / GENERATED_KEY_FILENAME
    theirs = new_key()
    real_link = os.link

    def racing_link(src: object, dst: object) -> None:
        # Another process creates token.key between our exists() check and our link.
        key_path.write_text(theirs + "\n")
        key_path.chmod(0o600)
        real_link(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "link", racing_link)
    assert resolve_encryption_keys(settings) == [theirs]
    assert key_path.read_text().strip() == theirs
    assert [p.name for p in key_path.parent.iterdir()] == [GENERATED_KEY_FILENAME]


@pytest.mark.parametrize("pid", [1, os.getpid()])
def test_temp_file_left_by_a_killed_start_does_not_block_the_next(settings_factory, pid: int) -> None:
    """A container's bot is PID 1 on every start: a kill between writing the temporary key file and
    removing it must not make every later start fail."""
    settings = settings_factory()
    key_path = settings.database_path.parent / GENERATED_KEY_FILENAME
    key_path.parent.mkdir(parents=True)
    stale = key_path.with_name(f".{GENERATED_KEY_FILENAME}.{pid}.tmp")
    stale.write_text(new_key() + "\n")
    half_written = key_path.with_name(f".{GENERATED_KEY_FILENAME}.abc123.tmp")
    half_written.write_text("")

    keys = resolve_encryption_keys(settings)
    assert key_path.read_text().strip() == keys[0]
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert [p.name for p in key_path.parent.iterdir()] == [GENERATED_KEY_FILENAME]  # leftovers removed
    assert resolve_encryption_keys(settings) == keys


def test_start_killed_before_the_key_is_in_place_leaves_no_key_and_blocks_nothing(
    settings_factory, monkeypatch
) -> None:
    """Killed right before the key is linked into place (no clean-up runs): no token.key at all, not
    a half-written one, and the next start (same PID, as in a container) generates one."""
    settings = settings_factory()
    key_path = settings.database_path.parent / GENERATED_KEY_FILENAME

    class Killed(BaseException):
        pass

    def killed_link(src: object, dst: object) -> None:
        raise Killed

    with monkeypatch.context() as patched:
        patched.setattr(os, "link", killed_link)
        patched.setattr(Path, "unlink", lambda self, missing_ok=False: None)  # a kill runs no finally
        with pytest.raises(Killed):
            resolve_encryption_keys(settings)
    assert not key_path.exists()
    assert len(list(key_path.parent.iterdir())) == 1  # the temporary file

    keys = resolve_encryption_keys(settings)
    assert key_path.read_text().strip() == keys[0]
    assert [p.name for p in key_path.parent.iterdir()] == [GENERATED_KEY_FILENAME]


def test_env_example_documents_every_setting_and_loads() -> None:
    example = REPO_ROOT / ".env.example"
    # A setting is listed either set (NAME=…) or commented out with its default (# NAME=…), the latter
    # for those the Docker image sets itself.
    names = {
        match.group(1)
        for match in re.finditer(r"^(?:# )?([A-Z_]+)=", example.read_text(), flags=re.MULTILINE)
    }
    assert names == set(SETTING_NAMES)
    # An unedited copy stops start-up, saying what to paste …
    with pytest.raises(SettingsError) as caught:
        load_settings(env_file=example)
    assert str(caught.value) == (
        "DISCORD_TOKEN: is still the placeholder from .env.example; paste the real bot token from "
        "https://discord.com/developers/applications (Bot → Reset Token)"
    )
    # … and with the token pasted, the rest are valid (defaults or empty).
    settings = load_settings(env_file=example, discord_token=SECRET_DISCORD_TOKEN)
    assert settings.token_encryption_keys == ()
    assert settings.dev_guild_id is None


# ------------------------------------------------------------------------------------- DATABASE_URL


def test_database_url_defaults_to_the_sqlite_file_of_database_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_PATH", "/srv/bot/db.sqlite3")
    settings = load_settings(env_file=None, discord_token=SECRET_DISCORD_TOKEN)
    assert settings.database == Path("/srv/bot/db.sqlite3")
    assert str(database_url(settings.database)) == "sqlite+aiosqlite:////srv/bot/db.sqlite3"


def test_database_url_wins_over_database_path_and_hides_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql+asyncpg://bot:s3cret-db-pw@db.internal:5432/bot"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DATABASE_PATH", "/srv/bot/db.sqlite3")
    settings = load_settings(env_file=None, discord_token=SECRET_DISCORD_TOKEN)
    assert settings.database == url
    assert not settings.uses_sqlite
    assert "s3cret-db-pw" not in repr(settings)
    sqlite = load_settings(env_file=None, discord_token=SECRET_DISCORD_TOKEN, database_url="sqlite:///x.db")
    assert sqlite.uses_sqlite


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "mysql://root:s3cret-db-pw@db/bot",
            "DATABASE_URL: names a database the bot does not support (mysql); use "
            "sqlite+aiosqlite:///data/bot.sqlite3 or postgresql+asyncpg://user:password@host:5432/database",
        ),
        (
            "s3cret-db-pw@db/bot",
            "DATABASE_URL: is not a database URL; use sqlite+aiosqlite:///data/bot.sqlite3 or "
            "postgresql+asyncpg://user:password@host:5432/database",
        ),
        (
            "postgresql://bot:s3cret-db-pw@db:notaport/bot",
            "DATABASE_URL: is not a database URL; use sqlite+aiosqlite:///data/bot.sqlite3 or "
            "postgresql+asyncpg://user:password@host:5432/database",
        ),
        (
            "sqlite+aiosqlite://",
            "DATABASE_URL: names no SQLite file: use sqlite+aiosqlite:///path/to/bot.sqlite3",
        ),
    ],
)
def test_bad_database_url_is_one_line_without_the_password(value: str, expected: str) -> None:
    assert error_line(discord_token=SECRET_DISCORD_TOKEN, database_url=value) == expected


# ---------------------------------------------------------------------------------------- shards


def test_shards_default_to_one_process_with_the_recommended_count() -> None:
    settings = load_settings(env_file=None, discord_token=SECRET_DISCORD_TOKEN)
    assert (settings.shard_count, settings.shard_ids) == (None, None)


def test_shard_ids_are_read_from_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHARD_COUNT", "4")
    monkeypatch.setenv("SHARD_IDS", "2, 3")
    settings = load_settings(env_file=None, discord_token=SECRET_DISCORD_TOKEN)
    assert (settings.shard_count, settings.shard_ids) == (4, (2, 3))
    monkeypatch.setenv("SHARD_IDS", "")  # empty: every shard of the count, in this process
    assert load_settings(env_file=None, discord_token=SECRET_DISCORD_TOKEN).shard_ids is None


@pytest.mark.parametrize(
    ("count", "ids", "expected"),
    [
        (None, "0,1", "SHARD_IDS needs SHARD_COUNT: set it to the number of shards across all processes"),
        ("4", "2,4", "SHARD_IDS: shard 4 does not exist with SHARD_COUNT=4 (ids go from 0 to 3)"),
        ("4", "-1", "SHARD_IDS: shard -1 does not exist with SHARD_COUNT=4 (ids go from 0 to 3)"),
        ("4", "1,3,1", "SHARD_IDS: shard 1 is listed twice"),
        ("4", "0;1", "SHARD_IDS: must be shard ids separated by commas, such as 0,1"),
        ("4", "0,,1", "SHARD_IDS: must be shard ids separated by commas, such as 0,1"),
        ("0", None, "SHARD_COUNT: must be a whole number of shards, 1 or more"),
        ("two", None, "SHARD_COUNT: must be a whole number of shards, 1 or more"),
        ("two", "0", "SHARD_COUNT: must be a whole number of shards, 1 or more"),  # not "needs SHARD_COUNT"
    ],
)
def test_invalid_shards_are_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, count: str | None, ids: str | None, expected: str
) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", SECRET_DISCORD_TOKEN)
    for name, value in (("SHARD_COUNT", count), ("SHARD_IDS", ids)):
        if value is not None:
            monkeypatch.setenv(name, value)
    assert error_line() == expected


def test_the_http_api_is_on_by_default_and_an_empty_api_port_turns_it_off(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    on = load_settings(env_file=None, discord_token="token-for-the-api-test")
    assert (on.api_host, on.api_port, on.api_url) == ("127.0.0.1", 8080, "http://127.0.0.1:8080")
    monkeypatch.setenv("API_PORT", "")
    assert load_settings(env_file=None, discord_token="token-for-the-api-test").api_port is None
    monkeypatch.delenv("API_PORT")
    env = tmp_path / "api.env"
    env.write_text("API_PORT=\n")
    off = load_settings(env_file=env, discord_token="token-for-the-api-test")
    assert (off.api_port, off.api_url) == (None, None)
    public = load_settings(
        env_file=None, discord_token="token-for-the-api-test", api_public_url="https://api.example.com/"
    )
    assert public.api_url == "https://api.example.com"
    assert error_line(discord_token="t0ken-value", api_port="99999") == (
        "API_PORT: must be a port number from 0 to 65535, or empty to turn the HTTP API off"
    )
    assert error_line(discord_token="t0ken-value", api_public_url="ftp://x") == (
        "API_PUBLIC_URL: must be an http(s) URL, such as https://api.example.com"
    )
