"""The webhook delivery queue the fakes that call us share (Shopify, Recharge, Zendesk).

Deliveries wait for their due time (an injected delay, a retry's backoff) in a heap; one background
thread sends each when it is due, and a log keeps every outcome for the control plane and the tests.
What a delivery carries, how it is signed and what a failure does (retry, unsubscribe after N
failures) stays with each fake: it hands the queue its ``send(client, delivery)``.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

import httpx


class Schedulable(Protocol):
    """A delivery: ordered by ``(due, seq)`` (a dataclass with ``order=True`` and those fields first)."""

    due: float
    seq: int

    def __lt__(self, other: Any) -> bool: ...


D = TypeVar("D", bound=Schedulable)


class DeliveryQueue(Generic[D]):
    def __init__(self, name: str, send: Callable[[httpx.Client, D], None], *, timeout_seconds: float) -> None:
        self.name = name
        self._send = send
        self._timeout = httpx.Timeout(timeout_seconds, connect=1.0)
        self._heap: list[D] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._log_lock = threading.Lock()
        self._log: list[dict[str, Any]] = []

    def next_seq(self) -> int:
        """A tie-breaker for deliveries due at the same moment (first queued, first sent)."""
        return next(self._seq)

    def push(self, delivery: D) -> None:
        with self._cond:
            heapq.heappush(self._heap, delivery)
            self._cond.notify()

    def retry_later(self, delivery: D, delay_seconds: float) -> None:
        """Queue ``delivery`` again after ``delay_seconds`` (its attempt count is the caller's)."""
        delivery.due = time.monotonic() + delay_seconds
        delivery.seq = self.next_seq()
        self.push(delivery)

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def record(self, entry: dict[str, Any]) -> None:
        with self._log_lock:
            self._log.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        with self._log_lock:
            return list(self._log)

    def logged(self) -> int:
        with self._log_lock:
            return len(self._log)

    def clear(self) -> None:
        """Nothing pending, nothing logged (a reset)."""
        with self._cond:
            self._heap.clear()
        with self._log_lock:
            self._log.clear()

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        with httpx.Client(timeout=self._timeout) as client:
            while not self._stop.is_set():
                delivery = self._next_due()
                if delivery is not None:
                    self._send(client, delivery)

    def _next_due(self) -> D | None:
        # Short waits: a stop or a newly pushed, earlier delivery is noticed within 0.2 s.
        with self._cond:
            if not self._heap:
                self._cond.wait(timeout=0.2)
                return None
            wait = self._heap[0].due - time.monotonic()
            if wait > 0:
                self._cond.wait(timeout=min(wait, 0.2))
                return None
            return heapq.heappop(self._heap)
