"""Webhook delivery for the Recharge fake: signed like Recharge, retried like Recharge, faults applied.

Every delivery carries ``X-Recharge-Topic`` and BOTH signatures (`integrations.recharge.sign_webhook`),
times out after 5 s, and takes the FaultBook's drop / duplicate / delay faults for "recharge". A failed
delivery is retried 20 times on a doubling schedule that adds up to ``retry_span_seconds`` (Recharge
spreads them over 48 hours); after the 20th the webhook subscription is deleted, as Recharge does.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from mienne_ops.integrations.recharge import sign_webhook
from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.faults import FaultBook
from mienne_ops.sandbox.webhook_queue import DeliveryQueue
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
        self.deliveries: DeliveryQueue[Delivery] = DeliveryQueue(
            "recharge-webhooks", self._deliver, timeout_seconds=WEBHOOK_TIMEOUT_SECONDS
        )

    def reset(self) -> None:
        self.retry_span_seconds = 4.0
        self.deliveries.clear()

    def log_entries(self) -> list[dict[str, Any]]:
        return self.deliveries.entries()

    def start(self) -> None:
        self.deliveries.start()

    def stop(self) -> None:
        self.deliveries.stop()

    def emit(self, topic: str, payload: dict[str, Any]) -> None:
        """Queue ``payload`` (the REST GET shape) for every webhook on ``topic``, with the faults."""
        hooks = [w for w in self.world.list(SYSTEM, "webhook") if w["topic"] == topic]
        if not hooks:
            return
        faults = self.faults.get(SYSTEM)
        body = json.dumps(payload).encode()
        for hook in hooks:
            if self.faults.chance(faults.webhook_drop_rate):
                self.deliveries.record({"topic": topic, "webhook_id": hook["id"], "outcome": "dropped"})
                continue
            copies = 2 if self.faults.chance(faults.webhook_duplicate_rate) else 1
            for _ in range(copies):
                due = time.monotonic() + faults.webhook_delay_ms / 1000
                seq = self.deliveries.next_seq()
                self.deliveries.push(Delivery(due, seq, topic, hook["address"], body, hook["id"]))

    def retry_delay(self, attempt: int) -> float:
        """Delay before retry ``attempt`` (1..20): doubling, the 20 adding up to the (compressed) span."""
        return self.retry_span_seconds * 2 ** (attempt - 1) / (2**WEBHOOK_RETRIES - 1)

    def pending_webhooks(self) -> int:
        return self.deliveries.pending()

    def _deliver(self, client: httpx.Client, delivery: Delivery) -> None:
        if self.world.get(SYSTEM, "webhook", delivery.webhook_id) is None:
            self.deliveries.record(
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
        self.deliveries.record(
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
            self.deliveries.retry_later(delivery, self.retry_delay(delivery.attempt))
            return
        # 20 retries failed: Recharge deletes the webhook subscription.
        self.world.delete(SYSTEM, "webhook", delivery.webhook_id)
        self.deliveries.record(
            {"topic": delivery.topic, "webhook_id": delivery.webhook_id, "outcome": "webhook_deleted"}
        )
        log.info("recharge webhook %s deleted after %d retries", delivery.webhook_id, WEBHOOK_RETRIES)
