"""Client-side rate limits: per token, per endpoint, sliding windows kept *before* sending.

dsc.gg documents one limit per endpoint and per API key. The client reserves a send time in the
bucket of (sha256(token), endpoint) before it awaits anything, so any number of coroutines sharing a
token (for example two guilds registered with the same key) never overshoot together. A reservation
that would wait longer than the caller allows is not recorded and becomes a ``RateLimited`` error.
Before sending, the caller waits until the send is safe even if earlier requests reached dsc.gg
later than they left (their answers are what proves they arrived).

``Limiter`` is what the client needs of a limiter: ``RateLimiter`` here keeps the buckets in this
process (the default); ``bot.dscgg.redislimit.RedisRateLimiter`` keeps them in Redis, shared by
every process that uses the same tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import heapq
import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol


class Endpoint(enum.StrEnum):
    """The client's endpoint names; used for buckets, log lines and ``RateLimited.endpoint``."""

    GET_LINK = "get_link"
    CREATE_LINK = "create_link"
    UPDATE_LINK = "update_link"
    DELETE_LINK = "delete_link"
    GET_USER = "get_user"
    GET_USER_LINKS = "get_user_links"
    GET_USER_APPS = "get_user_apps"
    GET_APP = "get_app"
    GET_TOP_LINKS = "get_top_links"
    SEARCH_LINKS = "search_links"


#: (requests, window in seconds) as documented at docs.dsc.gg.
DEFAULT_LIMITS: Mapping[Endpoint, tuple[int, float]] = {
    Endpoint.GET_LINK: (100, 10.0),
    Endpoint.CREATE_LINK: (3, 60.0),
    Endpoint.UPDATE_LINK: (8, 10.0),
    Endpoint.DELETE_LINK: (4, 10.0),
    Endpoint.GET_USER: (50, 10.0),
    Endpoint.GET_USER_LINKS: (50, 10.0),
    Endpoint.GET_USER_APPS: (50, 10.0),
    Endpoint.GET_APP: (20, 10.0),
    Endpoint.GET_TOP_LINKS: (20, 10.0),
    Endpoint.SEARCH_LINKS: (90, 10.0),
}

#: ``limits=`` overrides: endpoint (enum or name) -> (requests, window seconds); others keep the defaults.
LimitTable = Mapping[Endpoint, tuple[int, float]] | Mapping[str, tuple[int, float]]

ANONYMOUS = "anonymous"
# Idle buckets are looked for once every this many reservations.
_SWEEP_EVERY = 1024


def bucket_owner(token: str | None) -> str:
    """The bucket key of a token: its sha256, so the token itself is never kept; no token is shared."""
    if not token:
        return ANONYMOUS
    return hashlib.sha256(token.encode()).hexdigest()


def limit_table(limits: LimitTable | None = None) -> dict[Endpoint, tuple[int, float]]:
    """The documented limits with ``limits`` laid over them; a nonsense entry is a ValueError."""
    table: dict[Endpoint, tuple[int, float]] = dict(DEFAULT_LIMITS)
    for name, (count, window) in (limits or {}).items():
        if count < 1 or window <= 0:
            raise ValueError(f"invalid limit for {name}: {count} per {window} s")
        table[Endpoint(name)] = (int(count), float(window))
    return table


def safety_margin(window: float) -> float:
    """Slack added to every computed wait so clock jitter cannot land a request a hair inside the
    previous window: 1 % of it, between 5 ms and 250 ms."""
    return min(0.25, max(0.005, window * 0.01))


@dataclass(slots=True, eq=False)
class Reservation:
    """A send slot in a bucket. ``delay`` is the wait foreseen when it was reserved."""

    owner: str
    endpoint: Endpoint
    #: When it is (or was) to be sent, as far as we know.
    at: float
    delay: float
    #: The caller will not wait past this: ``wait`` gives the slot back rather than overrun it.
    deadline: float = math.inf
    #: When the answer came back; until then the request may still be reaching dsc.gg.
    finished: float | None = None
    released: bool = False
    #: The bucket it was booked in, so settling it needs no lookup.
    bucket: _Bucket | None = field(default=None, repr=False)
    #: Set while ``wait`` sleeps: resolving it wakes the waiter early.
    wakeup: asyncio.Future[None] | None = field(default=None, repr=False)

    def counted_at(self, now: float) -> float:
        """When dsc.gg counts this send, as late as we can know it: when its answer came back, or,
        while it is in flight or not yet sent, no earlier than now."""
        if self.finished is not None:
            return self.finished
        return self.at if self.at > now else now


@dataclass(frozen=True, slots=True)
class Refusal:
    """The wait would be longer than allowed; nothing is held in the bucket."""

    retry_after: float
    limit: int
    window: float


@dataclass(slots=True)
class _Bucket:
    limit: int
    window: float
    # In reservation order.
    slots: deque[Reservation] = field(default_factory=deque)
    # Those of ``slots`` sleeping in ``wait``, in the same order; only the first is woken when the
    # bucket changes, since no later one can be let through before it.
    waiters: deque[Reservation] = field(default_factory=deque)
    # dsc.gg said 429: nothing goes out before this.
    blocked_until: float = 0.0

    def prune(self, now: float) -> None:
        """Drop the sends at the front that finished a whole window ago (amortised O(1))."""
        slots = self.slots
        horizon = now - self.window
        while slots:
            finished = slots[0].finished
            if finished is None or finished > horizon:
                break
            slots.popleft()

    def earliest(self, now: float, before: int) -> float:
        """Earliest send time allowed after the first ``before`` slots.

        Ready times never decrease along the queue: a later slot has every earlier one before it.
        """
        earliest = max(now, self.blocked_until)
        if before >= self.limit:
            times = (slot.counted_at(now) for slot in itertools.islice(self.slots, before))
            # The window must have moved past the `limit`-th latest send before this one.
            kth_latest = heapq.nlargest(self.limit, times)[-1]
            earliest = max(earliest, kth_latest + self.window + safety_margin(self.window))
        return earliest

    def wake_first_waiter(self) -> None:
        if self.waiters:
            wakeup = self.waiters[0].wakeup
            if wakeup is not None and not wakeup.done():
                wakeup.set_result(None)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Limiter(Protocol):
    """What ``DscggClient._request`` asks of a rate limiter, in this order: ``book`` a send slot
    (or be refused at once); unless ``ready``, ``wait`` for it (or be refused); then ``settle`` it
    once the request may have left, or ``release`` it if nothing was sent; ``block`` a bucket after
    a 429. ``limits`` is the table in force, endpoint -> (requests, window seconds)."""

    @property
    def limits(self) -> Mapping[Endpoint, tuple[int, float]]: ...

    async def book(self, token: str | None, endpoint: Endpoint, *, max_wait: float) -> Reservation | Refusal:
        """Book the earliest send time allowed; refuse if that is more than ``max_wait`` away."""
        ...

    def ready(self, reservation: Reservation) -> bool: ...

    async def wait(self, reservation: Reservation) -> Refusal | None: ...

    def release(self, reservation: Reservation) -> None: ...

    def settle(self, reservation: Reservation) -> None: ...

    def block(self, token: str | None, endpoint: Endpoint, retry_after: float) -> None: ...


class RateLimiter:
    """Sliding-window buckets keyed by (token hash, endpoint), for one event loop.

    One measure throughout: a send counts from when its answer came back, or from *now* while it is
    in flight (dsc.gg may count it at any moment until then). ``reserve`` decides at once, by that
    measure, whether the wait fits the caller's patience (so a refusal costs nothing); ``wait``
    holds the caller until the send is safe, and gives up (releasing the slot) as soon as it learns
    the send cannot happen before the caller's deadline, for example because earlier requests are
    answered late.
    """

    def __init__(
        self,
        limits: LimitTable | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits: Mapping[Endpoint, tuple[int, float]] = limit_table(limits)
        self._clock = clock
        self._buckets: dict[tuple[str, Endpoint], _Bucket] = {}
        self._reservations_since_sweep = 0

    def _bucket(self, owner: str, endpoint: Endpoint) -> _Bucket:
        bucket = self._buckets.get((owner, endpoint))
        if bucket is None:
            limit, window = self.limits[endpoint]
            bucket = self._buckets[(owner, endpoint)] = _Bucket(limit, window)
        return bucket

    async def book(self, token: str | None, endpoint: Endpoint, *, max_wait: float) -> Reservation | Refusal:
        """``reserve`` for ``Limiter`` callers: it awaits nothing, so the booking is still made
        before anything else runs on the loop."""
        return self.reserve_for(bucket_owner(token), endpoint, max_wait=max_wait)

    def reserve(self, token: str | None, endpoint: Endpoint, *, max_wait: float) -> Reservation | Refusal:
        """Book the earliest send time allowed; refuse if that is more than ``max_wait`` away."""
        return self.reserve_for(bucket_owner(token), endpoint, max_wait=max_wait)

    def reserve_for(self, owner: str, endpoint: Endpoint, *, max_wait: float) -> Reservation | Refusal:
        """``reserve`` by bucket owner (``bucket_owner(token)``)."""
        now = self._clock()
        bucket = self._bucket(owner, endpoint)
        bucket.prune(now)
        if len(bucket.slots) < bucket.limit and now >= bucket.blocked_until:
            at = now  # fewer than `limit` sends in the window and no 429 pending: free at once
        else:
            at = bucket.earliest(now, len(bucket.slots))
        delay = at - now
        if delay > max_wait:
            return Refusal(delay, bucket.limit, bucket.window)
        reservation = Reservation(owner, endpoint, at, delay, deadline=now + max_wait, bucket=bucket)
        bucket.slots.append(reservation)
        self._reservations_since_sweep += 1
        if self._reservations_since_sweep >= _SWEEP_EVERY:
            self._sweep(now)
        return reservation

    def _bucket_of(self, reservation: Reservation) -> _Bucket:
        bucket = reservation.bucket
        if bucket is None:  # a Reservation made by hand
            bucket = reservation.bucket = self._bucket(reservation.owner, reservation.endpoint)
        return bucket

    def ready(self, reservation: Reservation) -> bool:
        """Whether ``reservation`` may be sent right now without waiting (the common case)."""
        bucket = self._bucket_of(reservation)
        if len(bucket.slots) > bucket.limit:
            return False
        at, blocked_until = reservation.at, bucket.blocked_until
        return self._clock() >= (at if at >= blocked_until else blocked_until)

    async def wait(self, reservation: Reservation) -> Refusal | None:
        """Sleep until ``reservation`` may be sent; None then. If it cannot be sent by its
        deadline, the slot is given back and the refusal says when to try again. On cancellation
        the slot is given back too.

        Waiters queue in reservation order. Ready times never decrease along the queue, so only
        the first waiter keeps a timer for its ready time; the others sleep until they come first
        (or until their deadline) and count only then, which keeps a long queue linear.
        """
        bucket = self._bucket_of(reservation)
        waiters = bucket.waiters
        waiters.append(reservation)
        loop = asyncio.get_running_loop()
        # reserve() has just counted this by the same measure: the first sleep needs no recount.
        ready_at = reservation.at
        fresh = True
        try:
            while True:
                now = self._clock()
                if not fresh or ready_at <= now:
                    bucket.prune(now)
                    if len(bucket.slots) <= bucket.limit and now >= bucket.blocked_until:
                        break  # no more than `limit` sends including this one: nothing to wait for
                    ready_at = bucket.earliest(now, bucket.slots.index(reservation))
                    if ready_at <= now:
                        break
                    if ready_at > reservation.deadline:
                        self.release(reservation)
                        return Refusal(ready_at - now, bucket.limit, bucket.window)
                    reservation.at = ready_at
                fresh = False
                wake_at = ready_at if waiters[0] is reservation else reservation.deadline
                wakeup = reservation.wakeup = loop.create_future()
                timer = loop.call_later(wake_at - now, _wake, wakeup) if wake_at < math.inf else None
                try:
                    await wakeup
                finally:
                    if timer is not None:
                        timer.cancel()
                    reservation.wakeup = None
        except BaseException:
            self.release(reservation)
            raise
        finally:
            self._leave(bucket, reservation)
        reservation.at = now
        return None

    def _leave(self, bucket: _Bucket, reservation: Reservation) -> None:
        waiters = bucket.waiters
        if waiters and waiters[0] is reservation:
            waiters.popleft()
            # The next one may be able to go at once, too (several sends fit, or a 429 block ended).
            bucket.wake_first_waiter()
        else:
            with contextlib.suppress(ValueError):
                waiters.remove(reservation)

    def release(self, reservation: Reservation) -> None:
        """Give back a slot that was never used (nothing was sent). Idempotent."""
        if reservation.released or reservation.finished is not None:
            return
        reservation.released = True
        bucket = self._bucket_of(reservation)
        with contextlib.suppress(ValueError):
            bucket.slots.remove(reservation)
        bucket.wake_first_waiter()

    def settle(self, reservation: Reservation) -> None:
        """The answer came back (or the attempt ended after the request may have left): the send
        counts from now."""
        if reservation.released or reservation.finished is not None:
            return
        # Wakes nobody: an answer only fixes when the send counts, never earlier than the "now" it
        # was counted at while in flight, so no waiter's ready time can move forward.
        reservation.finished = max(self._clock(), reservation.at)

    def block(self, token: str | None, endpoint: Endpoint, retry_after: float) -> None:
        """dsc.gg answered 429: treat the bucket as exhausted for ``retry_after`` seconds."""
        self.block_for(bucket_owner(token), endpoint, retry_after)

    def block_for(self, owner: str, endpoint: Endpoint, retry_after: float) -> None:
        """``block`` by bucket owner (``bucket_owner(token)``)."""
        bucket = self._bucket(owner, endpoint)
        bucket.blocked_until = max(bucket.blocked_until, self._clock() + max(0.0, retry_after))

    def recent_sends(self) -> Iterator[tuple[str, Endpoint, float]]:
        """(owner, endpoint, age in seconds) of every send still within its window: how long ago
        it counts from (0 while in flight, negative if booked for later)."""
        now = self._clock()
        for (owner, endpoint), bucket in self._buckets.items():
            bucket.prune(now)
            for slot in bucket.slots:
                yield owner, endpoint, now - slot.counted_at(now)

    def _sweep(self, now: float) -> None:
        # Forget idle buckets now and then so a long-running bot does not keep one per token forever.
        self._reservations_since_sweep = 0
        for key, bucket in list(self._buckets.items()):
            bucket.prune(now)
            if not bucket.slots and bucket.blocked_until <= now:
                del self._buckets[key]
