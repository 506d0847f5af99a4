"""Log redaction: no secret shape survives into a log line, tracebacks included."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import aiohttp
import pytest
from cryptography.fernet import Fernet

from bot import errors, log
from bot.audit import AuditLog
from bot.crypto import TokenCipher
from bot.db import Database, TokenStore
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
    names = ("", "discord", "discord.http", "aiosqlite")
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
        service = TokenService(store, client, _NullAudit())
        log.register_secret(BOT_TOKEN)

        with pytest.raises(errors.TokenRejected):
            await service.set(1, 2, f"  {DSCGG_TOKEN}\n")  # not a key the fake knows
        fake.add_key(DSCGG_TOKEN, user_id=2)
        fake.fail_always("server_error")
        with pytest.raises(Unavailable) as outage:
            await service.set(1, 2, DSCGG_TOKEN)
        errors.describe(outage.value)
        try:
            raise KeyError(f"token {DSCGG_TOKEN} / bot {BOT_TOKEN}")
        except KeyError as bug:
            text = errors.describe(bug)
        assert DSCGG_TOKEN not in text
        assert await store.info(1) is None  # neither attempt stored anything

    output = logs.getvalue()
    assert "Unexpected error" in output  # the bug was logged, with its traceback …
    assert "Traceback" in output
    assert DSCGG_TOKEN not in output  # … but no secret was
    assert BOT_TOKEN not in output


class _NullAudit(AuditLog):
    def __init__(self) -> None:
        self.events: list[object] = []

    def record(self, event: object) -> None:
        self.events.append(event)
