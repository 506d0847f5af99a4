"""SharedCache: answers kept for a short time and shared by every caller, one fetch per key at a time.

For answers that are the same whoever asks (dsc.gg's top links): ``await cache.get(key, fetch)``
returns the kept value while it is fresh; otherwise the first caller starts ``fetch()`` and everyone
asking for the same key meanwhile awaits that one fetch (single flight). A failed fetch is not kept:
the callers waiting on it get its error, the next caller fetches again.

The fetch runs in a task of its own, so a caller that is cancelled (say, by the shutdown drain) does
not cancel it for the others. It is started from the first caller's context, so that caller's dsc.gg
deadline (``bot.dscgg.deadline``) bounds it; anyone joining later has less to wait than that.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["SharedCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    value: V
    expires: float


def _retrieve(task: asyncio.Future[Any]) -> None:
    # Everyone who awaited it may have been cancelled: the error was still seen, not "never retrieved".
    if not task.cancelled():
        task.exception()


class SharedCache(Generic[K, V]):
    """Values kept ``ttl`` seconds after they were fetched (0: not kept, but still one fetch at a
    time); ``clock`` is any monotonic clock in seconds (injectable for tests)."""

    def __init__(self, ttl: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not ttl >= 0:
            raise ValueError("ttl must be a number of seconds, 0 or more")
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[K, _Entry[V]] = {}
        self._pending: dict[K, asyncio.Future[V]] = {}

    async def get(self, key: K, fetch: Callable[[], Awaitable[V]]) -> V:
        """The fresh value for ``key``, or the result of the one fetch in progress (started if none)."""
        entry = self._entries.get(key)
        if entry is not None and self.clock() < entry.expires:
            return entry.value
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = asyncio.ensure_future(self._fetch(key, fetch))
            pending.add_done_callback(_retrieve)
        return await asyncio.shield(pending)

    async def _fetch(self, key: K, fetch: Callable[[], Awaitable[V]]) -> V:
        try:
            value = await fetch()
        finally:
            del self._pending[key]
        now = self.clock()
        if self.ttl > 0:
            self._forget_expired(now)
            self._entries[key] = _Entry(value, now + self.ttl)
        return value

    def _forget_expired(self, now: float) -> None:
        for key in [key for key, entry in self._entries.items() if entry.expires <= now]:
            del self._entries[key]

    def clear(self) -> None:
        """Forget every kept value (a fetch in progress still completes for its callers)."""
        self._entries.clear()
