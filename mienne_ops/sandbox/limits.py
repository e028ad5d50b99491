"""Request-rate limits shared by the fakes whose vendors limit by requests per second."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque


class SlidingWindowLimiter:
    """At most ``requests_per_second`` requests per key in any one-second window (0 = unlimited)."""

    def __init__(self, requests_per_second: float = 0.0) -> None:
        self.requests_per_second = requests_per_second
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def configure(self, requests_per_second: float) -> None:
        with self._lock:
            self.requests_per_second = requests_per_second
            self._hits.clear()

    def allow(self, key: str) -> bool:
        if not self.requests_per_second:
            return True
        now = time.monotonic()
        with self._lock:
            window = self._hits[key]
            while window and now - window[0] >= 1.0:
                window.popleft()
            if len(window) >= max(1, int(self.requests_per_second)):
                return False
            window.append(now)
            return True
