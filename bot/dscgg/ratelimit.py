"""Client-side rate limits: per token, per endpoint, sliding windows kept *before* sending.

dsc.gg documents one limit per endpoint and per API key. The client reserves a send time in the
bucket of (sha256(token), endpoint) before it awaits anything, so any number of coroutines sharing a
token (for example two guilds registered with the same key) never overshoot together. A reservation
that would wait longer than the caller allows is not recorded and becomes a ``RateLimited`` error.
Before sending, the caller waits until the send is safe even if earlier requests reached dsc.gg
later than they left (their answers are what proves they arrived).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


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


def safety_margin(window: float) -> float:
    """Slack added to every computed wait so clock jitter cannot land a request a hair inside the
    previous window: 1 % of it, between 5 ms and 250 ms."""
    return min(0.25, max(0.005, window * 0.01))


@dataclass(slots=True, eq=False)
class Reservation:
    """A send slot in a bucket. ``delay`` is the wait foreseen when it was reserved."""

    owner: str
    endpoint: Endpoint
    at: float
    delay: float
    #: When the answer came back; until then the request may still be reaching dsc.gg.
    finished: float | None = None
    #: The bucket it was booked in, so settling it needs no lookup.
    bucket: _Bucket | None = field(default=None, repr=False)

    def counted_at(self, now: float, *, in_flight_is_now: bool) -> float:
        """When dsc.gg counts this send, as late as we can know it."""
        if self.finished is not None:
            return self.finished
        return max(self.at, now) if in_flight_is_now else self.at


@dataclass(frozen=True, slots=True)
class Refusal:
    """The wait would be longer than allowed; nothing was reserved."""

    retry_after: float
    limit: int
    window: float


@dataclass(slots=True)
class _Bucket:
    limit: int
    window: float
    # In reservation order.
    slots: deque[Reservation] = field(default_factory=deque)
    # dsc.gg said 429: nothing goes out before this.
    blocked_until: float = 0.0
    # Set (and replaced) whenever a slot finishes or is given back, to wake waiters early.
    changed: asyncio.Event | None = None

    def prune(self, now: float) -> None:
        """Drop the sends at the front that finished a whole window ago (amortised O(1))."""
        slots = self.slots
        horizon = now - self.window
        while slots:
            finished = slots[0].finished
            if finished is None or finished > horizon:
                break
            slots.popleft()

    def earliest(self, now: float, before: int, *, in_flight_is_now: bool) -> float:
        """Earliest send time allowed after the first ``before`` slots."""
        earliest = max(now, self.blocked_until)
        if before >= self.limit:
            times = (
                slot.counted_at(now, in_flight_is_now=in_flight_is_now)
                for slot in itertools.islice(self.slots, before)
            )
            # The window must have moved past the `limit`-th latest send before this one.
            kth_latest = heapq.nlargest(self.limit, times)[-1]
            earliest = max(earliest, kth_latest + self.window + safety_margin(self.window))
        return earliest

    def wake_waiters(self) -> None:
        if self.changed is not None:
            self.changed.set()
            self.changed = None


class RateLimiter:
    """Sliding-window buckets keyed by (token hash, endpoint), for one event loop.

    ``reserve`` decides at once, from the sends already booked, whether the wait fits the caller's
    patience (so a refusal costs nothing). ``wait`` then holds the caller until the send is safe
    by the stricter measure: a send counts from when its answer came back, or from *now* while it
    is still in flight, because dsc.gg may count it at any moment until then.
    """

    def __init__(
        self,
        limits: LimitTable | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        table: dict[Endpoint, tuple[int, float]] = dict(DEFAULT_LIMITS)
        for name, (count, window) in (limits or {}).items():
            if count < 1 or window <= 0:
                raise ValueError(f"invalid limit for {name}: {count} per {window} s")
            table[Endpoint(name)] = (int(count), float(window))
        self.limits: Mapping[Endpoint, tuple[int, float]] = table
        self._clock = clock
        self._buckets: dict[tuple[str, Endpoint], _Bucket] = {}
        # hash(token) -> bucket_owner(token), so sha256 runs once per token rather than per call.
        # Keyed by Python's per-process salted hash, never by the token itself; two tokens whose
        # hashes collided would share buckets, which can only make the limits stricter.
        self._owners: dict[int, str] = {}
        self._reservations_since_sweep = 0

    def _owner(self, token: str | None) -> str:
        if not token:
            return ANONYMOUS
        key = hash(token)
        owner = self._owners.get(key)
        if owner is None:
            owner = self._owners[key] = bucket_owner(token)
        return owner

    def _bucket(self, owner: str, endpoint: Endpoint) -> _Bucket:
        bucket = self._buckets.get((owner, endpoint))
        if bucket is None:
            limit, window = self.limits[endpoint]
            bucket = self._buckets[(owner, endpoint)] = _Bucket(limit, window)
        return bucket

    def reserve(self, token: str | None, endpoint: Endpoint, *, max_wait: float) -> Reservation | Refusal:
        """Book the earliest send time allowed; refuse if that is more than ``max_wait`` away."""
        now = self._clock()
        owner = self._owner(token)
        bucket = self._buckets.get((owner, endpoint)) or self._bucket(owner, endpoint)
        bucket.prune(now)
        if len(bucket.slots) < bucket.limit and now >= bucket.blocked_until:
            at = now  # fewer than `limit` sends in the window and no 429 pending: free at once
        else:
            at = bucket.earliest(now, len(bucket.slots), in_flight_is_now=False)
        delay = at - now
        if delay > max_wait:
            return Refusal(delay, bucket.limit, bucket.window)
        reservation = Reservation(owner, endpoint, at, delay, bucket=bucket)
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
        bucket = reservation.bucket or self._bucket_of(reservation)
        if len(bucket.slots) > bucket.limit:
            return False
        at, blocked_until = reservation.at, bucket.blocked_until
        return self._clock() >= (at if at >= blocked_until else blocked_until)

    async def wait(self, reservation: Reservation) -> None:
        """Sleep until ``reservation`` may be sent. On cancellation the slot is given back."""
        bucket = self._bucket_of(reservation)
        try:
            while True:
                now = self._clock()
                if len(bucket.slots) <= bucket.limit and now >= bucket.blocked_until:
                    return  # fewer than `limit` sends before this one: nothing to wait for
                before = bucket.slots.index(reservation)
                ready_at = bucket.earliest(now, before, in_flight_is_now=True)
                if ready_at <= now:
                    return
                if bucket.changed is None:
                    bucket.changed = asyncio.Event()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(ready_at - now):
                        await bucket.changed.wait()
        except asyncio.CancelledError:
            self.release(reservation)
            raise

    def release(self, reservation: Reservation) -> None:
        """Give back a slot that was never used."""
        bucket = reservation.bucket or self._buckets.get((reservation.owner, reservation.endpoint))
        if bucket is not None and reservation in bucket.slots:
            bucket.slots.remove(reservation)
            bucket.wake_waiters()

    def settle(self, reservation: Reservation) -> None:
        """The answer came back (or the attempt ended): count the send from now."""
        reservation.finished = max(self._clock(), reservation.at)
        bucket = reservation.bucket or self._buckets.get((reservation.owner, reservation.endpoint))
        if bucket is not None and bucket.changed is not None:
            bucket.wake_waiters()

    def block(self, token: str | None, endpoint: Endpoint, retry_after: float) -> None:
        """dsc.gg answered 429: treat the bucket as exhausted for ``retry_after`` seconds."""
        bucket = self._bucket(self._owner(token), endpoint)
        bucket.blocked_until = max(bucket.blocked_until, self._clock() + max(0.0, retry_after))

    def _sweep(self, now: float) -> None:
        # Forget idle buckets now and then so a long-running bot does not keep one per token forever.
        self._reservations_since_sweep = 0
        for key, bucket in list(self._buckets.items()):
            bucket.prune(now)
            if not bucket.slots and bucket.blocked_until <= now:
                del self._buckets[key]
        live = {owner for owner, _ in self._buckets}
        self._owners = {key: owner for key, owner in self._owners.items() if owner in live}
