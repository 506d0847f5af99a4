"""Log redaction: no secret shape survives into a log line, tracebacks included."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import aiohttp
import discord
import pytest
from cryptography.fernet import Fernet

from bot import errors, log
from bot.audit import AuditLog
from bot.crypto import TokenCipher
from bot.db import AuditEventStore, Database, GuildSettingsStore, TokenStore
from bot.dscgg import DscggClient
from bot.dscgg.errors import Unavailable
from bot.services.tokens import TokenService
from tests.fakes.dscgg import FakeDscgg

BOT_TOKEN = "MTE4MDAwMDAwMDAwMDAwMDAwMQ.Gabcde.fake-bot-token-value-0123456789"
DSCGG_TOKEN = "dscgg-secret-key-9f8e7d6c5b4a"


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """setup_logging(DEBUG) into a buffer; the previous logging state is restored afterwards."""
    root = logging.getLogger()
    saved_handlers = list(root.handlers)
    names = ("", "discord", "discord.http", "aiosqlite", "sqlalchemy", "alembic")
    saved_levels = {name: logging.getLogger(name).level for name in names}
    buffer = io.StringIO()
    log.setup_logging("DEBUG", stream=buffer)
    yield buffer
    for handler in list(root.handlers):
        if handler not in saved_handlers:
            root.removeHandler(handler)
    for name, level in saved_levels.items():
        logging.getLogger(name).setLevel(level)
    log.forget_secrets()


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("Authorization: Bot abc.def.ghi", "abc.def.ghi"),
        ("headers={'Authorization': 'k3y-value', 'User-Agent': 'x'}", "k3y-value"),
        ('{"authorization":"jsonkey123"}', "jsonkey123"),
        ("authorization=Bearer eyJhbGciOi", "eyJhbGciOi"),
        (
            "POST https://discord.com/api/v10/interactions/1234/aW50ZXJhY3Rpb24tdG9rZW4/callback",
            "aW50ZXJhY3Rpb24tdG9rZW4",
        ),
        ("PATCH /api/v10/webhooks/1180/aW50LXRva2VuLXZhbHVl/messages/@original", "aW50LXRva2VuLXZhbHVl"),
        ("POST /webhooks/1180/aW50LXRva2VuLXZhbHVl?wait=true", "aW50LXRva2VuLXZhbHVl"),
        (
            'WebSocket Event: {"t": "INTERACTION_CREATE", "d": {"token": "aW50ZXJhY3Rpb24"}}',
            "aW50ZXJhY3Rpb24",
        ),
    ],
)
def test_secret_shapes_are_masked(line: str, secret: str) -> None:
    redacted = log.redact(line)
    assert secret not in redacted
    assert log.MASK in redacted


def test_fernet_tokens_are_masked() -> None:
    ciphertext = Fernet(Fernet.generate_key()).encrypt(b'{"g":1,"t":"x"}').decode()
    redacted = log.redact(f"row ciphertext={ciphertext} end")
    assert ciphertext not in redacted
    assert redacted == f"row ciphertext={log.MASK} end"


def test_registered_secrets_are_masked_anywhere() -> None:
    try:
        log.register_secret(DSCGG_TOKEN)
        assert log.redact(f"token was {DSCGG_TOKEN}!") == f"token was {log.MASK}!"
        assert log.redact(f"url?key={DSCGG_TOKEN}&x=1") == f"url?key={log.MASK}&x=1"
    finally:
        log.forget_secrets()


def test_short_values_are_not_registered() -> None:
    try:
        log.register_secret("abc")
        log.register_secret("")
        log.register_secret(None)
        assert log.redact("abc abcdef") == "abc abcdef"
    finally:
        log.forget_secrets()


def test_registrations_are_counted() -> None:
    try:
        log.register_secret(DSCGG_TOKEN)
        log.register_secret(f" {DSCGG_TOKEN}\n")  # the same value, as pasted
        log.unregister_secret(DSCGG_TOKEN)
        assert log.redact(DSCGG_TOKEN) == log.MASK  # one registration left
        log.unregister_secret(DSCGG_TOKEN)
        assert log.redact(DSCGG_TOKEN) == DSCGG_TOKEN
        log.unregister_secret(DSCGG_TOKEN)  # one too many: harmless
        log.register_secret(DSCGG_TOKEN)
        assert log.redact(DSCGG_TOKEN) == log.MASK
    finally:
        log.forget_secrets()


@pytest.mark.parametrize("others", [0, 10_000], ids=["few secrets", "10k secrets"])
def test_redaction_is_complete_with_any_number_of_secrets(others: int) -> None:
    """Few secrets and a registry as large as a bot in 10,000 servers mask the same way."""
    outer = "abcdef-outer-0123456789"
    inner = "outer-0123"  # inside outer: outer is still masked whole
    left, right = "left-secret-XXXXYY", "XXXXYY-right-secret"  # overlapping: no part of either shows
    try:
        for index in range(others):
            log.register_secret(f"{index:08x}-filler-secret-{index}")
        for secret in (inner, outer, left, right, DSCGG_TOKEN):
            log.register_secret(secret)
        line = f"a {outer} b {left}-right-secret c {DSCGG_TOKEN}{DSCGG_TOKEN} d {inner}"
        assert log.redact(line) == f"a {log.MASK} b {log.MASK} c {log.MASK}{log.MASK} d {log.MASK}"
        assert log.redact("00000000-filler-secret-0") == (log.MASK if others else "00000000-filler-secret-0")
        assert log.redact(f"x{others - 1:08x}-filler-secret-{others - 1}y") == (
            f"x{log.MASK}y" if others else f"x{others - 1:08x}-filler-secret-{others - 1}y"
        )
        assert log.redact("nothing secret here, just words") == "nothing secret here, just words"
        for index in range(others):
            log.unregister_secret(f"{index:08x}-filler-secret-{index}")
        log.unregister_secret(outer)
        assert log.redact(f"a {outer} b") == f"a abcdef-{log.MASK}456789 b"
    finally:
        log.forget_secrets()


def test_ordinary_lines_are_untouched() -> None:
    line = "Synced 12 command(s) to guild 1190000000000000000 (commands changed)"
    assert log.redact(line) == line


def test_handler_masks_args_exceptions_and_tracebacks(logs: io.StringIO) -> None:
    log.register_secret(DSCGG_TOKEN)
    logger = logging.getLogger("bot.test")
    logger.info("calling with %s", DSCGG_TOKEN)
    try:
        raise RuntimeError(f"request failed, Authorization: {DSCGG_TOKEN}")
    except RuntimeError:
        logger.exception("boom")
    output = logs.getvalue()
    assert DSCGG_TOKEN not in output
    assert "calling with [redacted]" in output
    assert "RuntimeError: request failed, Authorization: [redacted]" in output  # the traceback is kept


def test_discord_stays_at_info_unless_asked(logs: io.StringIO) -> None:
    assert logging.getLogger().level == logging.DEBUG
    assert logging.getLogger("discord").level == logging.INFO
    assert logging.getLogger("discord.http").level == logging.WARNING
    logging.getLogger("discord.gateway").debug('WebSocket Event: {"token": "raw-event"}')
    assert "raw-event" not in logs.getvalue()
    assert "WebSocket Event" not in logs.getvalue()
    log.setup_logging("DEBUG", discord_level="DEBUG", stream=logs)
    assert logging.getLogger("discord").level == logging.DEBUG


def test_setup_twice_installs_one_handler(logs: io.StringIO) -> None:
    log.setup_logging("INFO", stream=logs)
    ours = [h for h in logging.getLogger().handlers if isinstance(h, log._Handler)]
    assert len(ours) == 1
    logging.getLogger("bot.x").warning("once")
    assert logs.getvalue().count("once") == 1


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        log.setup_logging("LOUD")


async def test_error_paths_with_a_real_token_leave_no_trace(logs: io.StringIO, tmp_path) -> None:
    """A rejected token, a dsc.gg outage and an unexpected bug whose message quotes the token."""
    async with (
        FakeDscgg() as fake,
        aiohttp.ClientSession() as session,
        Database.open(tmp_path / "bot.sqlite3") as db,
    ):
        client = DscggClient(
            session, base_url=fake.base_url, timeout=1.0, backoff_base=0.01, backoff_max=0.02
        )
        store = TokenStore(db, TokenCipher([Fernet.generate_key().decode()]))
        audit = AuditLog(
            discord.Client(intents=discord.Intents.none()), AuditEventStore(db), GuildSettingsStore(db)
        )
        service = TokenService(store, client, audit)
        log.register_secret(BOT_TOKEN)

        with pytest.raises(errors.TokenRejected):
            await service.set(1, 2, f"  {DSCGG_TOKEN}\n")  # not a key the fake knows
        fake.add_key(DSCGG_TOKEN, user_id=2)
        fake.fail_always("server_error")
        with pytest.raises(Unavailable) as outage:
            await service.set(1, 2, DSCGG_TOKEN)
        errors.describe(outage.value)
        assert await store.info(1) is None  # neither attempt stored anything

        # A bug while checking the token: its traceback is logged after set() gave up, and still
        # shows no token.
        async def buggy_get_user(user_id: int, *, token: str) -> None:
            raise KeyError(f"token {token} / bot {BOT_TOKEN}")

        client.get_user = buggy_get_user  # type: ignore[method-assign,assignment]
        with pytest.raises(KeyError) as bug:
            await service.set(1, 2, DSCGG_TOKEN)
        text = errors.describe(bug.value)
        assert DSCGG_TOKEN not in text
        assert await store.info(1) is None

    output = logs.getvalue()
    assert "Unexpected error" in output  # the bug was logged, with its traceback …
    assert "Traceback" in output
    assert DSCGG_TOKEN not in output  # … but no secret was
    assert BOT_TOKEN not in output
