"""The base of every integration's Dagster resource.

A resource holds configuration only (base URL, credentials via `dg.EnvVar`, timeouts, retry
settings); `setup_for_execution` builds the typed client over the shared HTTP core once per run,
step process or sensor tick, and `teardown_after_execution` closes its connections. The resource is
generic in its client type, so `ShopifyResource().client` is a `ShopifyClient` to the type checker.
"""

from __future__ import annotations

from typing import Any, Generic, Protocol, TypeVar

import dagster as dg
from pydantic import PrivateAttr

from mienne_ops.integrations.http import RetryPolicy


class Closeable(Protocol):
    def close(self) -> None: ...


ClientT = TypeVar("ClientT", bound=Closeable)


class ClientResource(dg.ConfigurableResource[Any], Generic[ClientT]):
    """Config shared by all API resources; subclasses implement `build_client`."""

    timeout_seconds: float = 30.0
    max_attempts: int = 6
    retry_base_delay_seconds: float = 0.25

    _client: ClientT | None = PrivateAttr(default=None)

    def build_client(self) -> ClientT:  # pragma: no cover - abstract
        raise NotImplementedError

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_attempts=self.max_attempts, base_delay=self.retry_base_delay_seconds)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._client = self.build_client()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def client(self) -> ClientT:
        """The typed client (built lazily when the resource is used outside Dagster's lifecycle)."""
        if self._client is None:
            self._client = self.build_client()
        return self._client
