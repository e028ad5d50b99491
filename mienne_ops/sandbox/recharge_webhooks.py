"""Webhook delivery for the Recharge fake: signed like Recharge, retried like Recharge, faults applied.

Every delivery carries ``X-Recharge-Topic`` and BOTH signatures (`integrations.recharge.sign_webhook`),
times out after 5 s, and takes the FaultBook's drop / duplicate / delay faults for "recharge". A failed
delivery is retried 20 times on a doubling schedule that adds up to ``retry_span_seconds`` (Recharge
spreads them over 48 hours); after the 20th the webhook subscription is deleted, as Recharge does.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from mienne_ops.integrations.recharge import sign_webhook
from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.faults import FaultBook
from mienne_ops.sandbox.world import World

log = logging.getLogger("mienne_ops.sandbox.recharge")

SYSTEM = "recharge"
WEBHOOK_RETRIES = 20
WEBHOOK_TIMEOUT_SECONDS = 5.0


@dataclass(order=True)
class Delivery:
    due: float
    seq: int
    topic: str = field(compare=False)
    address: str = field(compare=False)
    body: bytes = field(compare=False)
    webhook_id: int = field(compare=False)
    attempt: int = field(default=0, compare=False)


class WebhookEmitter:
    """The queue of deliveries and the thread that sends them."""

    def __init__(self, world: World, faults: FaultBook) -> None:
        self.world = world
        self.faults = faults
        self.retry_span_seconds = 4.0
        self._queue: list[Delivery] = []
        self._queue_cond = threading.Condition()
        self._seq = itertools.count()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._log_lock = threading.Lock()
        self.delivery_log: list[dict[str, Any]] = []

    def reset(self) -> None:
        self.retry_span_seconds = 4.0
        with self._queue_cond:
            self._queue.clear()
        with self._log_lock:
            self.delivery_log.clear()

    def log_entries(self) -> list[dict[str, Any]]:
        with self._log_lock:
            return list(self.delivery_log)

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._deliver_loop, name="recharge-webhooks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._queue_cond:
            self._queue_cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def emit(self, topic: str, payload: dict[str, Any]) -> None:
        """Queue ``payload`` (the REST GET shape) for every webhook on ``topic``, with the faults."""
        hooks = [w for w in self.world.list(SYSTEM, "webhook") if w["topic"] == topic]
        if not hooks:
            return
        faults = self.faults.get(SYSTEM)
        body = json.dumps(payload).encode()
        for hook in hooks:
            if self.faults.chance(faults.webhook_drop_rate):
                self._record({"topic": topic, "webhook_id": hook["id"], "outcome": "dropped"})
                continue
            copies = 2 if self.faults.chance(faults.webhook_duplicate_rate) else 1
            for _ in range(copies):
                due = time.monotonic() + faults.webhook_delay_ms / 1000
                self._enqueue(Delivery(due, next(self._seq), topic, hook["address"], body, hook["id"]))

    def retry_delay(self, attempt: int) -> float:
        """Delay before retry ``attempt`` (1..20): doubling, the 20 adding up to the (compressed) span."""
        return self.retry_span_seconds * 2 ** (attempt - 1) / (2**WEBHOOK_RETRIES - 1)

    def _enqueue(self, delivery: Delivery) -> None:
        with self._queue_cond:
            heapq.heappush(self._queue, delivery)
            self._queue_cond.notify()

    def pending_webhooks(self) -> int:
        with self._queue_cond:
            return len(self._queue)

    def _record(self, entry: dict[str, Any]) -> None:
        with self._log_lock:
            self.delivery_log.append(entry)

    def _deliver_loop(self) -> None:
        with httpx.Client(timeout=httpx.Timeout(WEBHOOK_TIMEOUT_SECONDS, connect=1.0)) as client:
            while not self._stop.is_set():
                delivery = self._next_due()
                if delivery is not None:
                    self._deliver(client, delivery)

    def _next_due(self) -> Delivery | None:
        with self._queue_cond:
            if not self._queue:
                self._queue_cond.wait(timeout=0.2)
                return None
            wait = self._queue[0].due - time.monotonic()
            if wait > 0:
                self._queue_cond.wait(timeout=min(wait, 0.2))
                return None
            return heapq.heappop(self._queue)

    def _deliver(self, client: httpx.Client, delivery: Delivery) -> None:
        if self.world.get(SYSTEM, "webhook", delivery.webhook_id) is None:
            self._record(
                {"topic": delivery.topic, "webhook_id": delivery.webhook_id, "outcome": "unsubscribed"}
            )
            return
        headers = {
            "Content-Type": "application/json",
            "X-Recharge-Topic": delivery.topic,
            **sign_webhook(credentials.RECHARGE["client_secret"], delivery.body, int(time.time())),
        }
        status: int | None = None
        reason: str | None = None
        try:
            status = client.post(delivery.address, content=delivery.body, headers=headers).status_code
        except httpx.HTTPError as error:
            reason = type(error).__name__
        ok = status is not None and 200 <= status < 300
        self._record(
            {
                "topic": delivery.topic,
                "webhook_id": delivery.webhook_id,
                "address": delivery.address,
                "status": status,
                "error": reason,
                "attempt": delivery.attempt + 1,
                "outcome": "delivered" if ok else "failed",
            }
        )
        if ok:
            return
        if delivery.attempt < WEBHOOK_RETRIES:
            delivery.attempt += 1
            delivery.due = time.monotonic() + self.retry_delay(delivery.attempt)
            delivery.seq = next(self._seq)
            self._enqueue(delivery)
            return
        # 20 retries failed: Recharge deletes the webhook subscription.
        self.world.delete(SYSTEM, "webhook", delivery.webhook_id)
        self._record(
            {"topic": delivery.topic, "webhook_id": delivery.webhook_id, "outcome": "webhook_deleted"}
        )
        log.info("recharge webhook %s deleted after %d retries", delivery.webhook_id, WEBHOOK_RETRIES)
