"""The dsc.gg rate limits shared through Redis by every process that uses the same tokens.

``RedisRateLimiter`` is a ``Limiter`` (see ``bot.dscgg.ratelimit``) whose buckets live in Redis, so
that two bot processes serving servers with one dsc.gg key never exceed that key's limits together.
It keeps the in-process limiter's rules: a send counts from when its answer came back, or from *now*
while it is in flight; a booking that would wait longer than the caller allows is refused at once
and holds nothing.

In Redis, a bucket (sha256 of the token, endpoint) is four keys sharing one hash tag, so one script
can touch them all (also on a Redis Cluster):

* ``…:w`` a sorted set of send slots, member = booking number, score (ms, Redis's clock) = when the
  send counts once settled (its answer's time), or until then the end of its lease; pruned once it
  is a whole window old;
* ``…:l`` the slots not settled yet, scored by the end of their lease. While in flight a slot counts
  from *now* (computed only when a bucket is full); a process that dies with requests in flight
  leaves them here, and once the lease is over they count from then, like any other;
* ``…:b`` present while dsc.gg's 429 holds (its expiry is the Retry-After);
* ``…:n`` the booking counter, which orders the slots.

Every booking is one Lua script (EVALSHA) run atomically with Redis's own clock (``TIME``), so the
processes need no synchronised clocks; every key expires a window after its last send.

Redis down or slow: each call is bounded by ``timeout`` (0.25 s). On the first failure the limiter
logs one warning and falls back to ``limit // processes`` of each limit in this process; since the
other processes may have used the whole window just before, each bucket first waits out one window
from the failure. Every ``retry_interval`` one booking tries Redis again; when it answers, the
sends made meanwhile are written into Redis and one line says so.

Only the sha256 of a token is ever put in a key or a log line, never the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Self

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from bot.dscgg.ratelimit import (
    Endpoint,
    LimitTable,
    RateLimiter,
    Refusal,
    Reservation,
    bucket_owner,
    limit_table,
    safety_margin,
)

__all__ = [
    "DEFAULT_LEASE",
    "DEFAULT_PREFIX",
    "DEFAULT_RETRY_INTERVAL",
    "DEFAULT_TIMEOUT",
    "RedisRateLimiter",
    "SharedReservation",
]

log = logging.getLogger(__name__)

#: Every key starts with this.
DEFAULT_PREFIX: Final = "dscgg:ratelimit:"
#: The longest any one Redis call may take before Redis counts as unavailable (seconds).
DEFAULT_TIMEOUT: Final = 0.25
#: While Redis is unavailable, how often one booking tries it again (seconds).
DEFAULT_RETRY_INTERVAL: Final = 2.0
#: How long a booked send may go unsettled before it counts as sent (seconds). Longer than any
#: wait plus any request, so that only a process that died leaves a slot to run out.
DEFAULT_LEASE: Final = 60.0

# ---------------------------------------------------------------- the scripts

# KEYS: w, l, b, n. ARGV[1]: the window (ms), ARGV[2]: the lease (ms); the rest is per script.
_PRELUDE: Final = """
local W, L, B, N = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local window, lease = tonumber(ARGV[1]), tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000

-- A slot not settled is scored (in both sets) by the end of its lease: it cannot be pruned while
-- it may be in flight, and once the lease is over it counts from then, like a settled one.
redis.call('ZREMRANGEBYSCORE', L, '-inf', now)
redis.call('ZREMRANGEBYSCORE', W, '-inf', now - window)

-- Every key lives until a window after the latest time a slot in it counts from.
local function expire()
  local horizon = now
  local last = redis.call('ZREVRANGE', W, 0, 0, 'WITHSCORES')
  if last[2] then horizon = math.max(horizon, tonumber(last[2])) end
  local ttl = math.ceil(horizon - now + window) + 1
  redis.call('PEXPIRE', W, ttl)
  redis.call('PEXPIRE', L, ttl)
  redis.call('PEXPIRE', N, ttl)
end

-- When the slots `keep` accepts count from, latest first: a settled one from its answer; one not
-- settled from its booked time, or from now if that has passed (dsc.gg may count it at any moment
-- until it is answered).
local function counted(keep)
  local leases = {}
  local held = redis.call('ZRANGE', L, 0, -1, 'WITHSCORES')
  for i = 1, #held, 2 do
    leases[held[i]] = tonumber(held[i + 1])
  end
  local times = {}
  local slots = redis.call('ZRANGE', W, 0, -1, 'WITHSCORES')
  for i = 1, #slots, 2 do
    if keep(slots[i]) then
      local ends = leases[slots[i]]
      if ends then
        table.insert(times, math.max(ends - lease, now))
      else
        table.insert(times, tonumber(slots[i + 1]))
      end
    end
  end
  table.sort(times, function(a, b) return a > b end)
  return times
end

-- The earliest send time at or after `at` that keeps the window to `limit` sends.
local function after_window(at, times, limit, margin)
  if #times >= limit then
    return math.max(at, times[limit] + window + margin)
  end
  return at
end

-- Now, or later while a 429 holds (this process's own, `hold` ms, or one seen by another).
local function blocked_from(hold)
  local at = now + math.max(hold, 0)
  local pttl = redis.call('PTTL', B)
  if pttl > 0 then at = math.max(at, now + pttl) end
  return at
end
"""

# ARGV[3]: limit, [4]: safety margin (ms), [5]: max wait (ms), [6]: local 429 hold (ms).
# Returns {booking number, or 0 if refused; delay in ms}.
_BOOK: Final = (
    _PRELUDE
    + """
local limit, margin, max_wait = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local at = blocked_from(tonumber(ARGV[6]))
if redis.call('ZCARD', W) >= limit then
  at = after_window(at, counted(function() return true end), limit, margin)
end
local delay = at - now
if delay > max_wait then
  return {0, tostring(delay)}
end
local number = redis.call('INCR', N)
redis.call('ZADD', W, at + lease, number)
redis.call('ZADD', L, at + lease, number)
expire()
return {number, tostring(delay)}
"""
)

# ARGV[3]: limit, [4]: margin (ms), [5]: patience left (ms), [6]: local hold (ms), [7]: booking.
# Returns {status, delay in ms}: 1 go now, 2 wait that long, 0 refused (slot given back), -1 lost.
_CHECK: Final = (
    _PRELUDE
    + """
local limit, margin, patience = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local member, number = ARGV[7], tonumber(ARGV[7])
if not redis.call('ZSCORE', L, member) then
  return {-1, '0'}
end
local at = blocked_from(tonumber(ARGV[6]))
if redis.call('ZCARD', W) > limit or at > now then
  -- Only the slots booked before this one can hold it back.
  local before = counted(function(other) return tonumber(other) < number end)
  at = after_window(at, before, limit, margin)
end
local delay = at - now
local status = 2
if delay <= 0 then
  status, delay, at = 1, 0, now
elseif delay > patience then
  redis.call('ZREM', W, member)
  redis.call('ZREM', L, member)
  expire()
  return {0, tostring(delay)}
end
redis.call('ZADD', W, 'XX', at + lease, member)
redis.call('ZADD', L, 'XX', at + lease, member)
expire()
return {status, tostring(delay)}
"""
)

# ARGV[3]: booking. The answer came back: the send counts from now (or from its booked time, if
# that is later).
_SETTLE: Final = (
    _PRELUDE
    + """
local ends = redis.call('ZSCORE', L, ARGV[3])
if ends then
  redis.call('ZREM', L, ARGV[3])
  redis.call('ZADD', W, 'XX', math.max(now, tonumber(ends) - lease), ARGV[3])
else
  -- Its lease ran out first: it counts from now, never earlier than it did.
  redis.call('ZADD', W, 'XX', 'GT', now, ARGV[3])
end
expire()
return 1
"""
)

# ARGV[3]: booking. Nothing was sent: the slot is free again.
_RELEASE: Final = (
    _PRELUDE
    + """
redis.call('ZREM', W, ARGV[3])
redis.call('ZREM', L, ARGV[3])
expire()
return 1
"""
)

# ARGV[3…]: how long ago each send counts from (ms). Sends made while Redis was unavailable.
_RECORD: Final = (
    _PRELUDE
    + """
for i = 3, #ARGV do
  redis.call('ZADD', W, now - tonumber(ARGV[i]), redis.call('INCR', N))
end
expire()
return 1
"""
)

# KEYS: b. ARGV[1]: how long (ms). A 429: nothing goes out before it ends (never shortened).
_BLOCK: Final = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 1
"""

_GO, _LATER, _REFUSED, _LOST = 1, 2, 0, -1


class _Unavailable(Exception):
    """Internal: Redis did not answer in time, or answered with an error."""


@dataclass(slots=True, eq=False)
class SharedReservation(Reservation):
    """A slot booked in Redis; ``at`` and ``deadline`` are on this process's monotonic clock."""

    #: The booking number, the slot's member in the bucket's sorted sets.
    number: int = 0
    keys: tuple[str, str, str, str] = ("", "", "", "")
    #: Booked in the fallback instead, when Redis failed while this one waited.
    stand_in: Reservation | None = field(default=None, repr=False)


class RedisRateLimiter:
    """Sliding-window buckets in Redis, shared by every process using the same Redis and prefix.

    ``processes`` is how many processes are expected to share the limits: while Redis is
    unavailable each one uses ``limit // processes`` of every limit (an endpoint whose limit is
    smaller than that is refused until Redis answers again).
    """

    def __init__(
        self,
        client: aioredis.Redis,
        limits: LimitTable | None = None,
        *,
        processes: int = 2,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = DEFAULT_TIMEOUT,
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
        lease: float = DEFAULT_LEASE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if processes < 1:
            raise ValueError("processes must be 1 or more")
        if timeout <= 0 or retry_interval < 0 or lease <= 0:
            raise ValueError("timeout and lease must be positive, retry_interval not negative")
        self._limits = limit_table(limits)
        self.processes = processes
        self._redis = client
        self._prefix = prefix
        self._timeout = timeout
        self._retry_interval = retry_interval
        self._lease_ms = lease * 1000
        self._clock = clock
        self._book = client.register_script(_BOOK)
        self._check = client.register_script(_CHECK)
        self._settle = client.register_script(_SETTLE)
        self._release = client.register_script(_RELEASE)
        self._record = client.register_script(_RECORD)
        self._block = client.register_script(_BLOCK)
        #: Each process's share, used while Redis is unavailable.
        self.shares: Mapping[Endpoint, tuple[int, float]] = {
            endpoint: (count // processes, window) for endpoint, (count, window) in self._limits.items()
        }
        self._fallback = RateLimiter(
            {endpoint: (max(1, count), window) for endpoint, (count, window) in self.shares.items()},
            clock=clock,
        )
        #: This process's 429s, honoured at once (Redis learns of them in the background).
        self._holds: dict[tuple[str, Endpoint], float] = {}
        #: When Redis was found unavailable (None while it answers) and when to try it again.
        self._down_since: float | None = None
        self._retry_at = 0.0
        #: Settles, releases and 429 blocks not yet sent: one writer sends them in pipelined batches.
        self._writes: list[tuple[Any, list[str], list[float | int]]] = []
        self._writer: asyncio.Task[None] | None = None

    @classmethod
    def from_url(
        cls,
        url: str,
        limits: LimitTable | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = 32,
        **options: Any,
    ) -> RedisRateLimiter:
        """A limiter on its own pool of up to ``max_connections`` connections to Redis; ``aclose()``
        (or ``async with``) closes it.

        Nothing connects until the first booking. redis-py's own retries are off: a call that fails
        falls back at once instead of trying again within the ``timeout``.
        """
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            # Past this many at once, bookings queue for a connection (within their timeout).
            max_connections=max_connections,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        return cls(aioredis.Redis(connection_pool=pool), limits, timeout=timeout, **options)

    @property
    def limits(self) -> Mapping[Endpoint, tuple[int, float]]:
        return self._limits

    @property
    def available(self) -> bool:
        """False from a failed Redis call until Redis answers again."""
        return self._down_since is None

    def __repr__(self) -> str:
        return f"<RedisRateLimiter prefix={self._prefix!r} processes={self.processes}>"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def ping(self) -> bool:
        """Whether Redis answers now; the first failure is logged like any other."""
        try:
            await self._call(self._redis.ping())
        except _Unavailable:
            return False
        return True

    async def drain(self) -> None:
        """Wait for the writes still on their way to Redis (settles, releases, 429 blocks)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.wait([self._writer])

    async def aclose(self) -> None:
        try:
            async with asyncio.timeout(self._timeout * 4):
                await self.drain()
        except TimeoutError:
            pass
        finally:
            if self._writer is not None:
                self._writer.cancel()
            await self._redis.aclose(close_connection_pool=True)

    # ---------------------------------------------------------------- the Limiter interface

    async def book(self, token: str | None, endpoint: Endpoint, *, max_wait: float) -> Reservation | Refusal:
        owner = bucket_owner(token)
        if not await self._usable():
            return self._fallback_reserve(owner, endpoint, max_wait)
        started = self._clock()
        keys = self._keys(owner, endpoint)
        try:
            number, delay = await self._book_in_redis(keys, owner, endpoint, max_wait)
        except _Unavailable:
            return self._fallback_reserve(owner, endpoint, max_wait)
        limit, window = self._limits[endpoint]
        if number == 0:
            return Refusal(delay, limit, window)
        return SharedReservation(
            owner,
            endpoint,
            self._clock() + delay,
            delay,
            deadline=started + max_wait,
            number=number,
            keys=keys,
        )

    def ready(self, reservation: Reservation) -> bool:
        if not isinstance(reservation, SharedReservation):
            return self._fallback.ready(reservation)
        if reservation.stand_in is not None:
            return self._fallback.ready(reservation.stand_in)
        # Redis said "now" when it booked it; any later time is checked again by wait().
        return reservation.delay <= 0

    async def wait(self, reservation: Reservation) -> Refusal | None:
        if not isinstance(reservation, SharedReservation):
            return await self._fallback.wait(reservation)
        if reservation.stand_in is not None:
            return await self._fallback.wait(reservation.stand_in)
        try:
            return await self._wait_in_redis(reservation)
        except BaseException:
            self.release(reservation)
            raise

    def release(self, reservation: Reservation) -> None:
        if not isinstance(reservation, SharedReservation):
            self._fallback.release(reservation)
            return
        if reservation.stand_in is not None:
            self._fallback.release(reservation.stand_in)
            return
        if reservation.released or reservation.finished is not None:
            return
        reservation.released = True
        self._write(self._release, reservation)

    def settle(self, reservation: Reservation) -> None:
        if not isinstance(reservation, SharedReservation):
            self._fallback.settle(reservation)
            return
        if reservation.stand_in is not None:
            self._fallback.settle(reservation.stand_in)
            return
        if reservation.released or reservation.finished is not None:
            return
        reservation.finished = self._clock()
        self._write(self._settle, reservation)

    def block(self, token: str | None, endpoint: Endpoint, retry_after: float) -> None:
        owner = bucket_owner(token)
        retry_after = max(0.0, retry_after)
        now = self._clock()
        key = (owner, endpoint)
        if len(self._holds) > 1024:
            self._holds = {k: until for k, until in self._holds.items() if until > now}
        self._holds[key] = max(self._holds.get(key, 0.0), now + retry_after)
        self._fallback.block_for(owner, endpoint, retry_after)
        milliseconds = math.ceil(retry_after * 1000)
        if milliseconds > 0:
            keys = self._keys(owner, endpoint)
            self._queue(self._block, [keys[2]], [milliseconds])

    # ---------------------------------------------------------------- in Redis

    def _keys(self, owner: str, endpoint: Endpoint) -> tuple[str, str, str, str]:
        # One hash tag per bucket: a script may only touch keys of one cluster slot.
        base = f"{self._prefix}{{{owner}:{endpoint.value}}}:"
        return base + "w", base + "l", base + "b", base + "n"

    def _window_args(self, endpoint: Endpoint) -> list[float]:
        _, window = self._limits[endpoint]
        return [window * 1000, self._lease_ms]

    def _hold_ms(self, owner: str, endpoint: Endpoint) -> float:
        until = self._holds.get((owner, endpoint))
        if until is None:
            return 0.0
        left = until - self._clock()
        if left <= 0:
            del self._holds[(owner, endpoint)]
            return 0.0
        return left * 1000

    async def _book_in_redis(
        self, keys: Sequence[str], owner: str, endpoint: Endpoint, max_wait: float
    ) -> tuple[int, float]:
        limit, window = self._limits[endpoint]
        args = [
            *self._window_args(endpoint),
            limit,
            safety_margin(window) * 1000,
            max_wait * 1000,
            self._hold_ms(owner, endpoint),
        ]
        number, delay = await self._call(self._book(keys=keys, args=args, client=self._redis))
        return int(number), float(delay) / 1000

    async def _wait_in_redis(self, reservation: SharedReservation) -> Refusal | None:
        endpoint = reservation.endpoint
        limit, window = self._limits[endpoint]
        while True:
            now = self._clock()
            if reservation.at > now:
                await asyncio.sleep(reservation.at - now)
                now = self._clock()
            args = [
                *self._window_args(endpoint),
                limit,
                safety_margin(window) * 1000,
                (reservation.deadline - now) * 1000,
                self._hold_ms(reservation.owner, endpoint),
                reservation.number,
            ]
            try:
                status, delay_ms = await self._call(
                    self._check(keys=reservation.keys, args=args, client=self._redis)
                )
                status, delay = int(status), float(delay_ms) / 1000
                if status == _LOST:
                    # Redis forgot the booking (restarted or flushed): book again with the patience left.
                    number, delay = await self._book_in_redis(
                        reservation.keys, reservation.owner, endpoint, reservation.deadline - now
                    )
                    status = _LATER if number else _REFUSED
                    reservation.number = number or reservation.number
            except _Unavailable:
                return await self._wait_in_fallback(reservation)
            if status == _GO:
                reservation.at = self._clock()
                return None
            if status == _REFUSED:
                reservation.released = True
                return Refusal(delay, limit, window)
            reservation.at = self._clock() + delay

    async def _call(self, call: Any) -> Any:
        """Await one Redis call within the timeout; a failure marks Redis unavailable."""
        try:
            async with asyncio.timeout(self._timeout):
                return await call
        except (RedisError, OSError, TimeoutError) as error:
            self._unavailable(error)
            raise _Unavailable from None

    def _write(self, script: Any, reservation: SharedReservation) -> None:
        """Settle or release ``reservation`` in Redis, in the background."""
        self._queue(
            script, list(reservation.keys), [*self._window_args(reservation.endpoint), reservation.number]
        )

    def _queue(self, script: Any, keys: list[str], args: list[float | int]) -> None:
        """Send a write in the background: the request it belongs to need not wait for it. If it is
        lost, the slot only counts longer (until its lease runs out), never shorter."""
        self._writes.append((script, keys, args))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._send_writes())

    async def _send_writes(self) -> None:
        # One at a time, in order, as many as have gathered per round trip: a burst of answers costs
        # one connection, not one each.
        while self._writes:
            batch, self._writes = self._writes, []
            # A lost batch only makes its slots count longer; _call has noted why.
            with contextlib.suppress(_Unavailable, RedisError, OSError):
                async with self._redis.pipeline(transaction=False) as pipeline:
                    for script, keys, args in batch:
                        await script(keys=keys, args=args, client=pipeline)
                    await self._call(pipeline.execute())

    # ---------------------------------------------------------------- when Redis is unavailable

    def _unavailable(self, error: BaseException) -> None:
        now = self._clock()
        self._retry_at = now + self._retry_interval
        if self._down_since is not None:
            return
        self._down_since = now
        reason = type(error).__name__
        if not isinstance(error, TimeoutError):
            reason += f": {error}"
        log.warning(
            "Redis is unavailable (%s): dsc.gg rate limits fall back to 1/%d of each limit in this process "
            "until it answers again",
            reason,
            self.processes,
        )

    async def _usable(self) -> bool:
        """Whether to use Redis for this booking; while it is unavailable, one booking every
        ``retry_interval`` tries it again (the others meanwhile use the fallback)."""
        if self._down_since is None:
            return True
        if self._clock() < self._retry_at:
            return False
        self._retry_at = self._clock() + self._retry_interval
        try:
            await self._call(self._redis.ping())
            await self._record_fallback_sends()
        except _Unavailable:
            return False
        down_for = self._clock() - self._down_since
        self._down_since = None
        log.info("Redis answers again after %.1f s: dsc.gg rate limits are shared again", down_for)
        return True

    async def _record_fallback_sends(self) -> None:
        """Write the sends made through the fallback into Redis, so that the other processes count
        them too from now on."""
        ages: dict[tuple[str, Endpoint], list[float]] = {}
        for owner, endpoint, age in self._fallback.recent_sends():
            ages.setdefault((owner, endpoint), []).append(age * 1000)
        for (owner, endpoint), sends in ages.items():
            keys = self._keys(owner, endpoint)
            args = [*self._window_args(endpoint), *sends]
            await self._call(self._record(keys=keys, args=args, client=self._redis))

    def _fallback_reserve(self, owner: str, endpoint: Endpoint, max_wait: float) -> Reservation | Refusal:
        share, window = self.shares[endpoint]
        limit, _ = self._limits[endpoint]
        if share == 0:
            return Refusal(window, limit, window)
        if self._down_since is not None:
            # The other processes may have used the whole window just before Redis went away.
            hold = self._down_since + window + safety_margin(window) - self._clock()
            if hold > 0:
                self._fallback.block_for(owner, endpoint, hold)
        return self._fallback.reserve_for(owner, endpoint, max_wait=max_wait)

    async def _wait_in_fallback(self, reservation: SharedReservation) -> Refusal | None:
        """Redis failed while this one waited: go on in the fallback with the patience left."""
        self._write(self._release, reservation)  # in the background, should Redis answer at all
        stand_in = self._fallback_reserve(
            reservation.owner, reservation.endpoint, max(0.0, reservation.deadline - self._clock())
        )
        if isinstance(stand_in, Refusal):
            reservation.released = True
            return stand_in
        reservation.stand_in = stand_in
        if self._fallback.ready(stand_in):
            return None
        return await self._fallback.wait(stand_in)
