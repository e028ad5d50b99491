"""Deployment-wide API limits in Redis: NetSuite's concurrency pool and Shopify's cost bucket.

NetSuite's concurrency pool and Shopify's query-cost bucket belong to the *account*, not to one
process: with flows running on several Celery workers, a per-process semaphore or bucket lets N
workers send N times the limit. With ``MIENNE_LIMITER_URL=redis://…`` set, the NetSuite and Shopify
clients take their slots and points from Redis instead, so the limit holds for the whole deployment.
Unset, each client keeps its own in-process limiter (dev and tests).

- `SharedSemaphore`: at most N holders across every process. A holder has a *lease* that expires,
  so a worker killed while holding a slot gives it back after ``lease_seconds`` instead of leaking it;
  a waiter on the same host does not wait that long: a holder whose process is gone (its token names
  host, pid and the process's start) is swept at once. (A `kill -9` of the daemon's process group
  took every run worker's NetSuite slots with it, and the next runs waited the whole 250 s lease.)
- `SharedCostBucket`: Shopify's leaky bucket (size and restore rate learned from ``throttleStatus``),
  refilled by elapsed time on Redis' own clock and never drawn below zero.

Both are Lua scripts, so each check-and-take is atomic in Redis; every script takes an optional
``now`` (seconds) so tests can drive the clock instead of sleeping.
"""

from __future__ import annotations

import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import redis

LIMITER_URL_ENV = "MIENNE_LIMITER_URL"
LIMITER_PREFIX_ENV = "MIENNE_LIMITER_PREFIX"
DEFAULT_PREFIX = "mienne-ops"
#: Longest a waiter sleeps before asking again (a released slot or refilled bucket is seen soon).
MAX_POLL_SECONDS = 1.0

# Both scripts take ARGV "now" last; empty = Redis' clock, one clock for every process.
_NOW = """
local now = tonumber(ARGV[#ARGV])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
"""

_ACQUIRE = (
    _NOW
    + """
local limit, lease, token = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now + lease, token)
  redis.call('EXPIRE', KEYS[1], math.ceil(lease) + 1)
  return 1
end
return 0
"""
)

# The bucket hash: tokens, updated (seconds), maximum, rate. Floats go back as strings (Lua numbers
# would be truncated to integers on the way out).
_REFILL = """
local b = redis.call('HMGET', KEYS[1], 'tokens', 'updated', 'maximum', 'rate')
local tokens, maximum, rate = tonumber(b[1]), tonumber(b[3]), tonumber(b[4])
if tokens then
  tokens = math.min(maximum, tokens + math.max(0, now - tonumber(b[2])) * rate)
end
"""

_TAKE = (
    _NOW
    + _REFILL
    + """
if not tokens then return {1, '0'} end
local need = math.min(tonumber(ARGV[1]), maximum)
if tokens >= need then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - need), 'updated', tostring(now))
  return {1, '0'}
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now))
if rate <= 0 then return {0, '-1'} end
return {0, tostring((need - tokens) / rate)}
"""
)

_OBSERVE = (
    _NOW
    + _REFILL
    + """
local available, new_maximum, new_rate, refund =
  tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if not tokens then tokens = available else tokens = tokens + refund end
tokens = math.max(0, math.min(tokens, available, new_maximum))
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'updated', tostring(now),
  'maximum', tostring(new_maximum), 'rate', tostring(new_rate))
redis.call('EXPIRE', KEYS[1], 86400)
return tostring(tokens)
"""
)


def limiter_url() -> str:
    """``MIENNE_LIMITER_URL`` (empty: each client limits itself, per process)."""
    return os.environ.get(LIMITER_URL_ENV, "").strip()


def key(*parts: str) -> str:
    """A Redis key under ``MIENNE_LIMITER_PREFIX``, so deployments (or test runs) sharing one Redis
    never share a limit by accident."""
    return ":".join([os.environ.get(LIMITER_PREFIX_ENV) or DEFAULT_PREFIX, *parts])


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=10)


def _now_arg(now: float | None) -> str:
    return "" if now is None else repr(float(now))


def _poll_sleep(wait: float) -> float:
    """How long to sleep before asking again: the wait implied, with jitter, capped."""
    base = wait if wait > 0 else 0.02
    return min(MAX_POLL_SECONDS, base) * random.uniform(0.8, 1.2)


def _process_stat(pid: int) -> tuple[str, str]:
    """(start in clock ticks since boot, state letter) from /proc, or ("", "") where there is none:
    with the pid, the start names one process even after the pid is reused."""
    try:
        stat = open(f"/proc/{pid}/stat").read()  # noqa: SIM115 - one read of a tiny file
    except OSError:
        return "", ""
    fields = stat.rsplit(")", 1)[1].split()  # after the name, which may hold ")"
    return fields[19], fields[0]  # fields 22 and 3 of proc(5)


def _holder_is_gone(token: str) -> bool:
    """A lease ``host:pid:started:uuid`` held by a process of this host that no longer runs."""
    parts = token.split(":")
    if len(parts) != 4 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False  # another host's (or an older token): only its lease can end it
    pid, started = int(parts[1]), parts[2]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's: its start below tells whether it is the holder
    now_started, state = _process_stat(pid)
    return state in ("Z", "X") or (bool(started and now_started) and now_started != started)


class SharedSemaphore:
    """At most ``limit`` holders of ``name`` across every process using the same Redis.

    Holders are members of a sorted set scored by their lease's expiry; expired leases are swept
    before each acquire, which is how a slot held by a killed worker comes back.
    """

    def __init__(
        self,
        client: redis.Redis,
        name: str,
        limit: int,
        *,
        lease_seconds: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.name = name
        self.limit = max(1, int(limit))
        self.lease_seconds = lease_seconds
        self._sleep = sleep
        self._acquire = client.register_script(_ACQUIRE)

    def try_acquire(self, *, now: float | None = None) -> str | None:
        """A lease token if a slot was free, else None (never waits). Refused, it sweeps this host's
        holders whose process is gone and asks once more."""
        pid = os.getpid()
        token = f"{socket.gethostname()}:{pid}:{_process_stat(pid)[0]}:{uuid.uuid4().hex}"
        args: list[str | float] = [self.limit, self.lease_seconds, token, _now_arg(now)]
        if int(self._acquire(keys=[self.name], args=args)):
            return token
        if self.sweep_dead_holders():
            return token if int(self._acquire(keys=[self.name], args=args)) else None
        return None

    def sweep_dead_holders(self) -> int:
        """Remove the leases of this host's processes that are gone; how many were removed."""
        members = cast(list[bytes], self.client.zrange(self.name, 0, -1))  # no scores: plain members
        dead = [member for member in members if _holder_is_gone(member.decode())]
        return int(cast(int, self.client.zrem(self.name, *dead))) if dead else 0

    def release(self, token: str) -> None:
        self.client.zrem(self.name, token)

    def holders(self) -> int:
        """Leases currently recorded (expired ones included until the next acquire sweeps them)."""
        return int(self.client.zcard(self.name))

    @contextmanager
    def slot(self) -> Iterator[str]:
        """Hold one slot for the block, waiting (polling with jitter) until one is free."""
        token = self.try_acquire()
        while token is None:
            self._sleep(_poll_sleep(0))
            token = self.try_acquire()
        try:
            yield token
        finally:
            self.release(token)


class SharedCostBucket:
    """Shopify's leaky bucket for one shop, shared by every process: take points before a query,
    tell it what Shopify answered after.

    Until the first ``throttleStatus`` the bucket is unknown and every take is granted (the answer
    tells its size); from then on points restore at Shopify's ``restoreRate`` and a take that does
    not fit is refused with the seconds it must wait, so the shared count never goes below zero.
    """

    def __init__(self, client: redis.Redis, name: str) -> None:
        self.client = client
        self.name = name
        self._take = client.register_script(_TAKE)
        self._observe = client.register_script(_OBSERVE)

    def try_take(self, points: float, *, now: float | None = None) -> tuple[bool, float]:
        """(granted, seconds to wait before asking again; -1 when nothing restores)."""
        granted, wait = self._take(keys=[self.name], args=[repr(float(points)), _now_arg(now)])
        return bool(int(granted)), float(wait)

    def observe(
        self, available: float, maximum: float, rate: float, refund: float = 0.0, *, now: float | None = None
    ) -> float:
        """Fold in Shopify's own view (never above ``currentlyAvailable``) plus any refund of
        requested − actual points; returns the points left."""
        args = [repr(float(v)) for v in (available, maximum, rate, refund)] + [_now_arg(now)]
        return float(self._observe(keys=[self.name], args=args))

    def available(self) -> float | None:
        raw = self.client.hget(self.name, "tokens")
        return None if raw is None else float(raw)


class SharedCostThrottle:
    """`shopify.CostThrottle`'s interface over a `SharedCostBucket` (one shop, every worker).

    The cost expected of each operation (its last ``requestedQueryCost``) is learned per process;
    the points themselves are the deployment's. `reserve` waits here until the points are taken,
    so it always answers a zero wait.
    """

    def __init__(self, bucket: SharedCostBucket, sleep: Callable[[float], None] = time.sleep) -> None:
        self.bucket = bucket
        self._sleep = sleep
        self._expected: dict[str, float] = {}

    def reserve(self, operation: str) -> tuple[float, float]:
        needed = self._expected.get(operation)
        if not needed:
            return 0.0, 0.0
        granted, wait = self.bucket.try_take(needed)
        while not granted:
            self._sleep(_poll_sleep(wait))
            granted, wait = self.bucket.try_take(needed)
        return 0.0, needed

    def observe(self, operation: str, cost: dict[str, Any] | None, reserved: float = 0.0) -> None:
        if not cost:
            return
        status = cost.get("throttleStatus") or {}
        if status:
            actual = cost.get("actualQueryCost")
            refund = reserved - float(actual) if reserved and actual is not None else 0.0
            self.bucket.observe(
                float(status.get("currentlyAvailable") or 0),
                float(status.get("maximumAvailable") or 0),
                float(status.get("restoreRate") or 0),
                refund,
            )
        if cost.get("requestedQueryCost") is not None:
            self._expected[operation] = float(cost["requestedQueryCost"])


def netsuite_semaphore(account_id: str, limit: int, lease_seconds: float) -> SharedSemaphore | None:
    """The deployment's NetSuite concurrency pool for ``account_id``, or None when no limiter is set."""
    url = limiter_url()
    if not url:
        return None
    name = key("netsuite", account_id.lower(), "concurrency")
    return SharedSemaphore(connect(url), name, limit, lease_seconds=lease_seconds)


def shopify_throttle(shop_url: str) -> SharedCostThrottle | None:
    """The deployment's cost bucket for the shop at ``shop_url``, or None when no limiter is set."""
    url = limiter_url()
    if not url:
        return None
    shop = shop_url.rstrip("/").split("://", 1)[-1]
    return SharedCostThrottle(SharedCostBucket(connect(url), key("shopify", shop, "cost")))
