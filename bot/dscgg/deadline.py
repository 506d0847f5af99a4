"""One time budget for every dsc.gg call a piece of work makes: "this command waits on dsc.gg for at
most N seconds, all its calls together".

The budget lives in a context variable, so it follows the work across awaits and into the tasks it
starts (they share it), and work outside any budget is not limited::

    with deadline.within(12):          # for a block
        await client.get_link(...)     # retries, backoff sleeps and rate-limit waits included
        await client.update_link(...)  # gets what the first call left

    deadline.start(12)                 # for the rest of the current task (its context)

Only time spent inside a client call counts (several calls at once count once): a command that
asks its user a question between two calls does not lose the time the user took to answer.
``DscggClient._request`` reads the budget through ``charge()``; it caps every attempt's timeout,
backoff sleep and rate-limit wait to the time left and raises ``DeadlineExceeded`` (an
``Unavailable``) instead of sending a request it could not wait for. Nothing here knows Discord.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Final, NamedTuple

__all__ = ["Window", "charge", "remaining", "start", "within"]


class _Budget:
    """Seconds left, charged while at least one call is in progress (``busy``)."""

    __slots__ = ("_busy", "_left", "_parent", "_since", "total")

    def __init__(self, seconds: float, parent: _Budget | None) -> None:
        if seconds != seconds or seconds < 0:  # NaN or negative
            raise ValueError("a deadline must be a number of seconds, 0 or more")
        now = _clock()
        if parent is not None:  # a budget within a budget never has more time than its parent
            seconds = min(seconds, parent.remaining(now))
        self.total = seconds
        self._left = seconds
        self._busy = 0
        self._since = 0.0
        self._parent = parent

    def remaining(self, now: float) -> float:
        left = self._left - (now - self._since) if self._busy else self._left
        if self._parent is not None:
            left = min(left, self._parent.remaining(now))
        return max(left, 0.0)

    def enter(self, now: float) -> None:
        if not self._busy:
            self._since = now
        self._busy += 1
        if self._parent is not None:
            self._parent.enter(now)

    def leave(self, now: float) -> None:
        self._busy -= 1
        if not self._busy:
            self._left -= now - self._since
        if self._parent is not None:
            self._parent.leave(now)


#: The clock of every deadline: ``time.monotonic``, as the client's.
_clock: Callable[[], float] = time.monotonic

_current: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("dscgg_deadline", default=None)


@contextlib.contextmanager
def within(seconds: float) -> Iterator[None]:
    """The dsc.gg calls made in this block (and in tasks it starts) get ``seconds`` together; within
    an outer budget, no more than that one has left (and what they use counts for both)."""
    token = _current.set(_Budget(seconds, _current.get()))
    try:
        yield
    finally:
        _current.reset(token)


def start(seconds: float) -> None:
    """Like ``within``, for the rest of the current context: meant to be called once at the start of
    a task (each asyncio task runs in its own copy of the context, so this never leaks out of it)."""
    _current.set(_Budget(seconds, _current.get()))


def remaining() -> float | None:
    """Seconds the current budget has left; None without one."""
    budget = _current.get()
    return None if budget is None else budget.remaining(_clock())


class Window(NamedTuple):
    """What a call may use: it must be done by ``until`` (``time.monotonic()``), and the whole
    budget was ``total`` seconds. Both are infinite without a budget."""

    until: float
    total: float


_UNLIMITED: Final = Window(math.inf, math.inf)


def charge() -> _Charge:
    """One client call's use of the current budget: ``with charge() as window: ...``; the time
    spent inside the block is charged to it."""
    return _Charge(_current.get())


class _Charge:
    __slots__ = ("_budget",)

    def __init__(self, budget: _Budget | None) -> None:
        self._budget = budget

    def __enter__(self) -> Window:
        budget = self._budget
        if budget is None:
            return _UNLIMITED
        now = _clock()
        window = Window(now + budget.remaining(now), budget.total)
        budget.enter(now)
        return window

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._budget is not None:
            self._budget.leave(_clock())
