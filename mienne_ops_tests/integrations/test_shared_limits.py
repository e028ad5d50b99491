"""The deployment-wide limiter against the machine's real Redis, from several processes at once.

No timing is asserted: concurrency is counted inside the held section, the bucket is tested with no
restore (so what was granted is exact), and expiry is driven by passing the scripts a clock.
"""

import multiprocessing
import os
import signal
import uuid
from collections.abc import Iterator

import pytest
import redis

from mienne_ops.integrations.http import HttpCore
from mienne_ops.integrations.netsuite import client_for
from mienne_ops.integrations.shared_limits import (
    LIMITER_PREFIX_ENV,
    LIMITER_URL_ENV,
    SharedCostBucket,
    SharedCostThrottle,
    SharedSemaphore,
    connect,
    key,
)
from mienne_ops.integrations.shopify import CostThrottle, ShopifyClient
from mienne_ops.sandbox import credentials

REDIS = "redis://127.0.0.1:6379/0"
PROCESSES = 6
CYCLES = 25
LIMIT = 3

# Count holders inside the section and keep the peak, atomically.
_ENTER = """
local inside = redis.call('INCR', KEYS[1])
if inside > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], inside) end
return inside
"""

fork = multiprocessing.get_context("fork")


@pytest.fixture
def prefix(monkeypatch) -> Iterator[str]:
    """A key prefix of this test's own (deleted afterwards), so parallel runs never share a limit."""
    name = f"mienne-test-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv(LIMITER_PREFIX_ENV, name)
    yield name
    client = redis.Redis.from_url(REDIS)
    for stale in client.scan_iter(f"{name}:*"):
        client.delete(stale)
    client.close()


def _hold_repeatedly(name: str, counters: str) -> None:
    client = connect(REDIS)
    semaphore = SharedSemaphore(client, name, LIMIT)
    enter = client.register_script(_ENTER)
    for _ in range(CYCLES):
        with semaphore.slot():
            enter(keys=[f"{counters}:inside", f"{counters}:peak"])
            client.incr(f"{counters}:done")
            client.decr(f"{counters}:inside")
    client.close()


def test_semaphore_never_admits_more_than_its_limit_across_processes(prefix):
    name, counters = key("semaphore"), key("counters")
    workers = [fork.Process(target=_hold_repeatedly, args=(name, counters)) for _ in range(PROCESSES)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
        assert worker.exitcode == 0
    client = connect(REDIS)
    assert int(client.get(f"{counters}:done")) == PROCESSES * CYCLES
    assert 1 <= int(client.get(f"{counters}:peak")) <= LIMIT
    assert SharedSemaphore(client, name, LIMIT).holders() == 0  # every slot given back


def _hold_forever(name: str, ready) -> None:
    semaphore = SharedSemaphore(connect(REDIS), name, 1, lease_seconds=30)
    assert semaphore.try_acquire() is not None
    ready.set()
    signal.pause()  # killed while holding the slot: it is never released


def test_a_killed_holders_slot_comes_back_at_once_on_its_host(prefix):
    name = key("semaphore")
    ready = fork.Event()
    holder = fork.Process(target=_hold_forever, args=(name, ready))
    holder.start()
    try:
        assert ready.wait(timeout=120)
        semaphore = SharedSemaphore(connect(REDIS), name, 1, lease_seconds=30)
        assert semaphore.try_acquire() is None  # the holder is alive: its slot is taken
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(timeout=60)
    # Gone (a kill -9 of the daemon's group takes its run workers with it): no 30-second wait.
    token = semaphore.try_acquire()
    assert token is not None and semaphore.holders() == 1


def test_another_hosts_holder_is_swept_only_when_its_lease_expires(prefix):
    name = key("semaphore")
    client = connect(REDIS)
    semaphore = SharedSemaphore(client, name, 1, lease_seconds=30)
    seconds, micros = client.time()
    now = seconds + micros / 1e6
    # A worker in another container: its pid means nothing here, so only the lease can end it.
    client.zadd(name, {f"another-host:{os.getpid()}:1:{uuid.uuid4().hex}": now + 30})
    assert semaphore.try_acquire(now=now) is None
    token = semaphore.try_acquire(now=now + 31)
    assert token is not None and semaphore.holders() == 1  # the expired lease was swept


def _take_until_refused(name: str, points: float, results) -> None:
    bucket = SharedCostBucket(connect(REDIS), name)
    granted = 0
    while bucket.try_take(points)[0]:
        granted += 1
    results.put(granted)


def test_cost_bucket_is_never_overdrawn_across_processes(prefix):
    name = key("bucket")
    bucket = SharedCostBucket(connect(REDIS), name)
    bucket.observe(available=100, maximum=100, rate=0)  # nothing restores: what is granted is exact
    results = fork.Queue()
    takers = [fork.Process(target=_take_until_refused, args=(name, 7, results)) for _ in range(PROCESSES)]
    for taker in takers:
        taker.start()
    granted = sum(results.get(timeout=300) for _ in takers)
    for taker in takers:
        taker.join(timeout=60)
    assert granted == 100 // 7
    assert bucket.available() == 100 - 7 * granted
    assert bucket.try_take(7) == (False, -1.0)


def test_cost_bucket_restores_at_shopifys_rate_and_trusts_shopifys_count(prefix):
    bucket = SharedCostBucket(connect(REDIS), key("bucket"))
    assert bucket.try_take(500, now=1000) == (True, 0.0)  # unknown bucket: the first answer sizes it
    bucket.observe(available=0, maximum=100, rate=50, now=1000)
    assert bucket.try_take(30, now=1000) == (False, pytest.approx(0.6))
    assert bucket.try_take(30, now=1000.6) == (True, 0.0)
    assert bucket.try_take(150, now=5000) == (True, 0.0)  # capped at the bucket: waits for a full one
    assert bucket.try_take(1, now=5000)[0] is False
    # Shopify says fewer points are left than we think (another app, or a reduced limit): trust it.
    bucket.observe(available=10, maximum=100, rate=50, refund=40, now=6000)
    assert bucket.available() == 10


def test_clients_share_limits_when_the_limiter_url_is_set(prefix, monkeypatch):
    monkeypatch.setenv(LIMITER_URL_ENV, REDIS)
    shopify = ShopifyClient(HttpCore(system="shopify", base_url="https://mienne.myshopify.com"))
    assert isinstance(shopify.throttle, SharedCostThrottle)
    netsuite = client_for(credentials.NETSUITE, base_url="http://127.0.0.1:9", max_concurrency=2)
    shared = netsuite.core.transport.shared  # type: ignore[union-attr]
    assert shared.limit == 2 and shared.name == key("netsuite", "1234567_sb1", "concurrency")
    shopify.close()
    netsuite.close()
    monkeypatch.delenv(LIMITER_URL_ENV)
    assert isinstance(ShopifyClient(HttpCore(system="shopify", base_url="https://x")).throttle, CostThrottle)
