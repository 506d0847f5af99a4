"""Logging set-up, with every handler output passed through a redacting filter.

Secrets must never reach a log line. ``RedactingFilter`` masks:

- values registered with ``register_secret()``: the bot token and every dsc.gg token the process
  stores or decrypts (a submitted token only while it is being checked, unless it is stored; see
  ``unregister_secret()``);
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
    "unregister_secret",
]

MASK: Final = "[redacted]"

#: Shorter values are not registered: masking them would shred ordinary words and numbers.
MIN_SECRET_LENGTH: Final = 6

#: Up to this many registered secrets, ``redact()`` searches for each one (fast, in C, for a few). Beyond
#: it, one pass over the text looks each position's first characters up in an index, so the cost of a log
#: line does not grow with the number of secrets (a bot in thousands of servers).
_SEARCH_EACH_UP_TO: Final = 32


class _Registry:
    """The registered secrets, each with a reference count, indexed by their first characters.

    Adding and removing are O(1) amortized (plus copying one small index bucket). ``redact()`` reads
    without the lock: it sees the old or the new bucket tuple, never a half-changed one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        #: value[:MIN_SECRET_LENGTH] -> the secrets starting with it, longest first.
        self.index: dict[str, tuple[str, ...]] = {}
        # Every secret longest first while there are few (None: use the index); rebuilt lazily.
        self._few: tuple[str, ...] | None = ()
        self._stale = False

    def add(self, value: str) -> None:
        with self._lock:
            count = self._counts.get(value, 0)
            self._counts[value] = count + 1
            if count:
                return
            key = value[:MIN_SECRET_LENGTH]
            self.index[key] = tuple(sorted((*self.index.get(key, ()), value), key=len, reverse=True))
            self._stale = True

    def remove(self, value: str) -> None:
        with self._lock:
            count = self._counts.get(value, 0)
            if count > 1:
                self._counts[value] = count - 1
            if count != 1:
                return
            del self._counts[value]
            key = value[:MIN_SECRET_LENGTH]
            bucket = tuple(secret for secret in self.index.get(key, ()) if secret != value)
            if bucket:
                self.index[key] = bucket
            else:
                del self.index[key]
            self._stale = True

    def clear(self) -> None:
        with self._lock:
            self._counts = {}
            self.index = {}
            self._few = ()
            self._stale = False

    def few(self) -> tuple[str, ...] | None:
        """Every secret, longest first, while there are at most _SEARCH_EACH_UP_TO; else None."""
        if self._stale:
            with self._lock:
                if self._stale:
                    counts = self._counts
                    self._few = (
                        tuple(sorted(counts, key=len, reverse=True))
                        if len(counts) <= _SEARCH_EACH_UP_TO
                        else None
                    )
                    self._stale = False
        return self._few

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where registered secrets occur in ``text``: (start, end) pairs, in no particular order."""
        found: list[tuple[int, int]] = []
        few = self.few()
        if few is not None:
            for secret in few:
                start = text.find(secret)
                while start != -1:
                    found.append((start, start + len(secret)))
                    start = text.find(secret, start + 1)
            return found
        index = self.index
        if not index:
            return found
        width = MIN_SECRET_LENGTH
        for start in range(len(text) - width + 1):
            bucket = index.get(text[start : start + width])
            if bucket is None:
                continue
            for secret in bucket:  # longest first: a secret containing another is found whole
                if text.startswith(secret, start):
                    found.append((start, start + len(secret)))
                    break
        return found


_registry = _Registry()

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


def _normalized(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    return value if len(value) >= MIN_SECRET_LENGTH else None


def register_secret(value: str | None) -> None:
    """Mask ``value`` wherever it appears in a log line from now on. Safe to call from any thread.

    Registrations are counted: the value stays masked until ``unregister_secret()`` was called as
    often as this.
    """
    value = _normalized(value)
    if value is not None:
        _registry.add(value)


def unregister_secret(value: str | None) -> None:
    """Undo one ``register_secret(value)``; the value stops being masked when no registration is left."""
    value = _normalized(value)
    if value is not None:
        _registry.remove(value)


def forget_secrets() -> None:
    """Drop every registered secret (for tests)."""
    _registry.clear()


def _mask_spans(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with each span masked; overlapping spans are masked as one, so no part of either shows."""
    spans.sort()
    parts: list[str] = []
    kept = 0  # text[:kept] is done
    start, end = spans[0]
    for next_start, next_end in spans[1:]:
        if next_start < end:
            end = max(end, next_end)
            continue
        parts += (text[kept:start], MASK)
        kept = end
        start, end = next_start, next_end
    parts += (text[kept:start], MASK, text[end:])
    return "".join(parts)


def redact(text: str) -> str:
    """``text`` with every known secret and secret-shaped value masked."""
    spans = _registry.spans(text)
    if spans:
        text = _mask_spans(text, spans)
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
    # Every SQL statement (DEBUG) and each migration step (INFO): bot.db logs what matters.
    logging.getLogger("sqlalchemy").setLevel(max(ours, logging.WARNING))
    logging.getLogger("alembic").setLevel(max(ours, logging.WARNING))
    return handler
