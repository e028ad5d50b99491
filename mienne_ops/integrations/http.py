"""The one HTTP core every integration client uses.

It owns what all clients need and none should write again: timeouts, bounded retries with
exponential backoff and full jitter on 429 / 5xx / connection errors (honouring ``Retry-After``),
classification of failures into the shared error hierarchy, PII-safe logging (method, path without
query string, status, duration; never bodies or headers), and per-system call statistics that the
benchmarks read. A client adds its system's quirks through two hooks: ``inspect`` (look at a 2xx body,
e.g. Shopify ``THROTTLED`` or DCL ``error_code``) and ``describe_error`` (turn a vendor error body into
a short message).
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from mienne_ops.errors import (
    AmbiguousWriteError,
    AuthError,
    NotFoundError,
    PermanentError,
    RemoteValidationError,
    TransientError,
)
from mienne_ops.observability import process_metrics

log = logging.getLogger("mienne_ops.http")

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter: sleep ~ U(0, min(cap, base * 2**attempt))."""

    max_attempts: int = 6
    base_delay: float = 0.25
    max_delay: float = 20.0
    # Retry-After beyond this is not waited for in-process; the error surfaces to Dagster's retry.
    max_retry_after: float = 60.0

    def backoff(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_delay, self.base_delay * (2**attempt)))


class CallStats:
    """Thread-safe counters of calls (and extra units such as Shopify cost points) per system."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()
        self.units: defaultdict[str, float] = defaultdict(float)

    def record_call(self, system: str, operation: str) -> None:
        with self._lock:
            self.calls[system] += 1
            self.calls[f"{system}:{operation}"] += 1

    def record_retry(self, system: str) -> None:
        with self._lock:
            self.retries[system] += 1
        process_metrics.observe_retry(system)

    def add_units(self, key: str, amount: float) -> None:
        with self._lock:
            self.units[key] += amount
        process_metrics.observe_units(key, amount)

    def snapshot(self) -> dict[str, dict[str, float]]:
        with self._lock:
            return {"calls": dict(self.calls), "retries": dict(self.retries), "units": dict(self.units)}

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.retries.clear()
            self.units.clear()


#: Process-wide statistics; benchmarks reset and read them.
STATS = CallStats()


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds, possibly fractional, or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _LinesDelivered(Exception):
    """A download broke after ``count`` lines had been read (so a retry skips them)."""

    def __init__(self, count: int, error: Exception) -> None:
        super().__init__(str(error))
        self.count = count
        self.error = error


@dataclass
class HttpCore:
    """A configured httpx client for one system plus the retry loop and error classification."""

    system: str
    base_url: str
    headers: dict[str, str] = field(default_factory=dict)
    auth: httpx.Auth | None = None
    timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    transport: httpx.BaseTransport | None = None
    describe_error: Callable[[httpx.Response], tuple[str | None, str]] | None = None
    stats: CallStats = field(default_factory=lambda: STATS)
    sleep: Callable[[float], None] = time.sleep
    max_connections: int = 20
    # A 401 is re-sent this many times before it is final (NetSuite answers the odd spurious 401 under
    # load); a revoked credential still ends in one AuthError after a bounded number of calls.
    auth_retries: int = 0

    def __post_init__(self) -> None:
        self._client = httpx.Client(
            base_url=self.base_url.rstrip("/"),
            headers=self.headers,
            auth=self.auth,
            timeout=self.timeout,
            transport=self.transport,
            limits=httpx.Limits(max_connections=self.max_connections),
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpCore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        record: str | None = None,
        params: dict[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        idempotent: bool | None = None,
        inspect: Callable[[httpx.Response], None] | None = None,
        ok_statuses: Iterable[int] = (),
    ) -> httpx.Response:
        """Send a request, retrying transient failures; return the final successful response.

        ``idempotent`` (default: true for GET/PUT/DELETE) decides whether a request that may already
        have reached the server (read timeout, dropped connection mid-response) is resent; for a
        non-idempotent write it raises `AmbiguousWriteError` so the caller can reconcile first.
        ``inspect`` may raise `TransientError` to retry a 2xx answer (e.g. GraphQL throttling) or a
        `PermanentError` to fail it. Statuses in ``ok_statuses`` are returned, not raised.
        """
        if idempotent is None:
            idempotent = method.upper() in {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}
        context = {"system": self.system, "operation": operation, "record": record}
        accepted = set(ok_statuses)
        attempt = 0
        auth_failures = 0
        while True:
            attempt += 1
            try:
                response = self._send(method, path, params, json, content, headers, operation)
                if response.status_code in accepted:
                    return response
                self._raise_for_status(response, context)
                if inspect is not None:
                    inspect(response)
                return response
            except AuthError as error:
                auth_failures += 1
                if error.status != 401 or auth_failures > self.auth_retries:
                    raise
                delay = self.retry.backoff(attempt)
            except TransientError as error:
                if attempt >= self.retry.max_attempts:
                    raise
                hinted = self._delay_for(error, attempt)
                if hinted is None:
                    raise
                delay = hinted
            except httpx.TransportError as error:
                transient = self._classify_transport(error, idempotent, context)
                if attempt >= self.retry.max_attempts or isinstance(transient, AmbiguousWriteError):
                    raise transient from error
                delay = self.retry.backoff(attempt)
            self.stats.record_retry(self.system)
            log.info("%s %s retry %d in %.2fs", self.system, operation, attempt, delay)
            self.sleep(delay)

    def stream_lines(self, url: str, *, operation: str, record: str | None = None) -> Iterator[str]:
        """GET a file outside the system's API (e.g. a signed download URL) and yield its lines.

        The core's own headers and auth are not sent: such a URL carries its own signature, and a
        token must never leave for another host. Transient failures are retried like `request`'s;
        a stream that breaks midway starts again and skips the lines already yielded (the file
        does not change), so the caller sees every line exactly once.
        """
        context: dict[str, Any] = {"system": self.system, "operation": operation, "record": record}
        delivered = 0
        attempt = 0
        while True:
            attempt += 1
            try:
                yield from self._lines_after(url, delivered, operation, context)
                return
            except _LinesDelivered as progress:
                delivered = progress.count
                error = progress.error
            except (TransientError, httpx.TransportError) as failure:
                error = failure
            if attempt >= self.retry.max_attempts:
                if isinstance(error, httpx.TransportError):
                    raise TransientError(f"download failed ({type(error).__name__})", **context) from error
                raise error
            delay = self._delay_for(error, attempt) if isinstance(error, TransientError) else None
            delay = self.retry.backoff(attempt) if delay is None else delay
            self.stats.record_retry(self.system)
            log.info("%s %s download retry %d in %.2fs", self.system, operation, attempt, delay)
            self.sleep(delay)

    def _lines_after(self, url: str, skip: int, operation: str, context) -> Iterator[str]:
        request = self._client.build_request("GET", url)
        for name in self.headers:
            request.headers.pop(name, None)
        self.stats.record_call(self.system, operation)
        response = self._client.send(request, stream=True, auth=None)
        seen = 0
        try:
            if response.status_code >= 400:
                response.read()
                self._raise_for_status(response, context)
            for line in response.iter_lines():
                seen += 1
                if seen > skip:
                    yield line
        except (TransientError, httpx.TransportError) as error:
            if seen > skip:
                raise _LinesDelivered(seen, error) from error
            raise
        finally:
            response.close()

    def _send(self, method, path, params, json, content, headers, operation) -> httpx.Response:
        started = time.perf_counter()
        self.stats.record_call(self.system, operation)
        status = None  # stays None when no answer came (the error kind ``network``)
        try:
            response = self._client.request(
                method, path, params=params, json=json, content=content, headers=headers
            )
            status = response.status_code
        finally:
            process_metrics.observe_call(self.system, status, time.perf_counter() - started)
        log.debug(
            "%s %s %s -> %d in %.0f ms",
            self.system,
            method,
            response.request.url.path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response

    def _delay_for(self, error: TransientError, attempt: int) -> float | None:
        if error.retry_after is None:
            return self.retry.backoff(attempt)
        if error.retry_after > self.retry.max_retry_after:
            return None
        # A little jitter on top of the server's hint keeps parallel workers from stampeding.
        return error.retry_after + random.uniform(0, self.retry.base_delay)

    def _classify_transport(self, error: httpx.TransportError, idempotent: bool, context) -> TransientError:
        never_sent = isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
        name = type(error).__name__
        if never_sent or idempotent:
            return TransientError(f"network error ({name})", **context)
        return AmbiguousWriteError(f"outcome unknown after {name}; reconcile before resending", **context)

    def _raise_for_status(self, response: httpx.Response, context: dict[str, Any]) -> None:
        status = response.status_code
        if status < 400:
            return
        code, message = self._describe(response)
        details = {**context, "status": status, "code": code}
        if status in RETRYABLE_STATUS:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise TransientError(message, retry_after=retry_after, **details)
        if status in (401, 403):
            raise AuthError(message, **details)
        if status == 404:
            raise NotFoundError(message, **details)
        if status in (400, 409, 422):
            raise RemoteValidationError(message, **details)
        raise PermanentError(message, **details)

    def _describe(self, response: httpx.Response) -> tuple[str | None, str]:
        if self.describe_error is not None:
            try:
                return self.describe_error(response)
            except Exception:  # a malformed error body must not hide the status
                pass
        return None, (response.text[:300] or response.reason_phrase)
