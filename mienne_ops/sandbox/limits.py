"""Request-rate limits shared by the fakes whose vendors limit by requests per second.

The window runs on the real monotonic clock unless a test freezes it through the fake's control
route; a frozen window moves only when told (``advance``), so "the third request within one
second is refused" holds however slowly a busy CI box delivers the requests.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable


class SlidingWindowLimiter:
    """At most ``requests_per_second`` requests per key in any one-second window (0 = unlimited)."""

    def __init__(self, requests_per_second: float = 0.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.requests_per_second = requests_per_second
        self._clock = clock
        self._frozen_at: float | None = None
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def configure(self, requests_per_second: float) -> None:
        """New limit, empty window, running clock."""
        with self._lock:
            self.requests_per_second = requests_per_second
            self._hits.clear()
            self._frozen_at = None

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    def freeze(self) -> None:
        """Stop the window's clock where it is (a test then moves it with `advance`)."""
        with self._lock:
            if self._frozen_at is None:
                self._frozen_at = self._clock()

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("advance_seconds must not be negative")
        with self._lock:
            if self._frozen_at is None:
                raise ValueError("the clock is running; freeze it before advancing it")
            self._frozen_at += seconds

    def allow(self, key: str) -> bool:
        if not self.requests_per_second:
            return True
        with self._lock:
            now = self._clock() if self._frozen_at is None else self._frozen_at
            window = self._hits[key]
            while window and now - window[0] >= 1.0:
                window.popleft()
            if len(window) >= max(1, int(self.requests_per_second)):
                return False
            window.append(now)
            return True


def apply_clock_knobs(limiter: SlidingWindowLimiter, body: dict) -> None:
    """The control-route knobs ``{"frozen_clock": true|false, "advance_seconds": S}``.

    Applied after any new limit (which restarts the clock); bad values raise `ValueError`, which
    each fake answers in its own error shape.
    """
    frozen, advance = body.get("frozen_clock"), body.get("advance_seconds")
    if frozen is not None and not isinstance(frozen, bool):
        raise ValueError("frozen_clock must be true or false")
    if advance is not None and (isinstance(advance, bool) or not isinstance(advance, int | float)):
        raise ValueError("advance_seconds must be a number")
    if frozen:
        limiter.freeze()
    elif frozen is False and limiter.frozen:
        limiter.configure(limiter.requests_per_second)
    if advance is not None:
        limiter.advance(float(advance))
