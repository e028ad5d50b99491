"""Fault injection for the sandbox: latency, error rates, 429 bursts and webhook misbehaviour.

Faults are set per system through `POST /_sandbox/faults` and apply to that system's API routes
only (never to the control plane). They are drawn from one seeded random generator, so a test that
sets a seed sees the same sequence of faults every run. Each system renders an injected error in
its own real error shape (see `SystemSandbox.fault_response`).
"""

from __future__ import annotations

import random
import threading
from typing import Any

from pydantic import BaseModel, Field


class SystemFaults(BaseModel):
    latency_ms: float = Field(0, ge=0, description="added to every API call")
    latency_jitter_ms: float = Field(0, ge=0, description="uniform extra latency, 0..jitter")
    error_rate: float = Field(0, ge=0, le=1, description="probability of an injected 5xx")
    error_status: int = Field(503, ge=500, le=599)
    rate_429: float = Field(0, ge=0, le=1, description="probability that a burst of 429s starts")
    burst_length: int = Field(3, ge=1, description="consecutive 429 answers in one burst")
    webhook_drop_rate: float = Field(0, ge=0, le=1)
    webhook_duplicate_rate: float = Field(0, ge=0, le=1)
    webhook_reorder: bool = Field(False, description="deliver queued webhooks in shuffled order")
    webhook_delay_ms: float = Field(0, ge=0)


class FaultBook:
    """The current fault settings of every system, plus the seeded random source."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, SystemFaults] = {}
        self._bursts: dict[str, int] = {}
        self.rng = random.Random(seed)

    def set(self, system: str, faults: SystemFaults) -> None:
        with self._lock:
            self._faults[system] = faults
            self._bursts[system] = 0

    def get(self, system: str) -> SystemFaults:
        with self._lock:
            return self._faults.get(system, SystemFaults())

    def clear(self, seed: int | None = None) -> None:
        with self._lock:
            self._faults.clear()
            self._bursts.clear()
            if seed is not None:
                self.rng.seed(seed)

    def seed(self, seed: int) -> None:
        with self._lock:
            self.rng.seed(seed)

    def chance(self, probability: float) -> bool:
        if probability <= 0:
            return False
        with self._lock:
            return self.rng.random() < probability

    def latency_seconds(self, system: str) -> float:
        faults = self.get(system)
        if not faults.latency_ms and not faults.latency_jitter_ms:
            return 0.0
        with self._lock:
            jitter = self.rng.uniform(0, faults.latency_jitter_ms) if faults.latency_jitter_ms else 0.0
        return (faults.latency_ms + jitter) / 1000

    def injected_status(self, system: str) -> int | None:
        """The status of an injected failure for this call, or None to serve it normally."""
        faults = self.get(system)
        with self._lock:
            if self._bursts.get(system, 0) > 0:
                self._bursts[system] -= 1
                return 429
            if faults.rate_429 and self.rng.random() < faults.rate_429:
                self._bursts[system] = faults.burst_length - 1
                return 429
            if faults.error_rate and self.rng.random() < faults.error_rate:
                return faults.error_status
        return None

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {name: f.model_dump() for name, f in self._faults.items()}
