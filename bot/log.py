"""Logging set-up, with every handler output passed through a redacting filter.

Secrets must never reach a log line. ``RedactingFilter`` masks:

- values registered with ``register_secret()``: the bot token and every dsc.gg token the process
  receives or decrypts;
- ``Authorization`` header values (in header dumps, dict reprs and JSON);
- interaction tokens inside webhook and interaction-callback URLs
  (``/webhooks/<id>/<token>``, ``/interactions/<id>/<token>/callback``) and ``"token": "…"`` JSON fields;
- Fernet tokens (``gAAAA…``), i.e. encrypted tokens as stored in the database.

Levels: ``LOG_LEVEL`` sets our own loggers. The ``discord`` logger stays at INFO even when
``LOG_LEVEL=DEBUG`` unless ``discord_level`` asks otherwise, because at DEBUG the gateway logs every
raw event and interaction events carry interaction tokens. ``discord.http`` is demoted to WARNING:
its INFO/DEBUG lines are per-request noise.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from typing import IO, Final

__all__ = [
    "MASK",
    "RedactingFilter",
    "redact",
    "register_secret",
    "setup_logging",
]

MASK: Final = "[redacted]"

#: Shorter values are not registered: masking them would shred ordinary words and numbers.
MIN_SECRET_LENGTH: Final = 6

_lock = threading.Lock()
_secrets: frozenset[str] = frozenset()

_PATTERNS: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    # Authorization: Bot abc / 'Authorization': 'abc' / "authorization":"abc"
    (
        re.compile(r"""(?i)(authorization["']?\s*[:=]\s*["']?)(?:(?:bot|bearer|basic)\s+)?[^\s"',;}\]]+"""),
        rf"\1{MASK}",
    ),
    # Webhook (follow-up / @original) and interaction-callback URLs carry the interaction token.
    (re.compile(r"(/webhooks/\d+/)[^/\s?\"'>]+"), rf"\1{MASK}"),
    (re.compile(r"(/interactions/\d+/)[^/\s?\"'>]+"), rf"\1{MASK}"),
    # Raw gateway payloads: "token": "…" (interaction tokens, IDENTIFY's bot token).
    (re.compile(r"""(["']token["']\s*:\s*["'])[^"']+"""), rf"\1{MASK}"),
    # Fernet tokens (version byte 0x80 → base64 "gAAAAA").
    (re.compile(r"gAAAAA[A-Za-z0-9_\-]{20,}={0,2}"), MASK),
)


def register_secret(value: str | None) -> None:
    """Mask ``value`` wherever it appears in a log line from now on. Safe to call from any thread."""
    global _secrets
    if not value:
        return
    value = value.strip()
    if len(value) < MIN_SECRET_LENGTH:
        return
    with _lock:
        if value not in _secrets:
            _secrets = _secrets | {value}


def forget_secrets() -> None:
    """Drop every registered secret (for tests)."""
    global _secrets
    with _lock:
        _secrets = frozenset()


def redact(text: str) -> str:
    """``text`` with every known secret and secret-shaped value masked."""
    # Longest first, so a secret that contains another one is masked whole.
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and traceback text) with ``redact()``. Never drops a record."""

    def __init__(self) -> None:
        super().__init__()
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not hide the line
            message = f"{record.msg!r} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            # Formatters reuse a cached exc_text, so the redacted traceback is what gets printed.
            record.exc_text = redact(record.exc_text or self._formatter.formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class _Handler(logging.StreamHandler[IO[str]]):
    """Marks the handler this module installed, so set-up can run twice without doubling lines."""


def _level(value: int | str) -> int:
    if isinstance(value, int):
        return value
    resolved = logging.getLevelName(value.strip().upper())
    if not isinstance(resolved, int):
        raise ValueError(f"unknown log level: {value!r}")
    return resolved


def setup_logging(
    level: int | str = logging.INFO,
    *,
    discord_level: int | str | None = None,
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) through a ``RedactingFilter``.

    ``discord_level`` (default: ``level``, but never more verbose than INFO) sets the ``discord``
    logger; pass ``"DEBUG"`` explicitly to see raw gateway events — they are redacted, but are noisy.
    Returns the installed handler.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
        old.close()

    handler = _Handler(stream if stream is not None else sys.stderr)
    handler.setFormatter(
        logging.Formatter("[{asctime}] [{levelname:<8}] {name}: {message}", "%Y-%m-%d %H:%M:%S", style="{")
    )
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)

    ours = _level(level)
    root.setLevel(ours)
    logging.getLogger("discord").setLevel(
        _level(discord_level) if discord_level is not None else max(ours, logging.INFO)
    )
    logging.getLogger("discord.http").setLevel(max(ours, logging.WARNING))
    logging.getLogger("aiosqlite").setLevel(max(ours, logging.INFO))
    return handler
