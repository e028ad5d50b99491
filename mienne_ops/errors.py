"""One exception hierarchy for every integration and every flow.

`TransientError` means "the same call may succeed later" (429, 5xx, a dropped connection): the HTTP
core retries it a bounded number of times, and Dagster's retry policies may retry the step. Anything
else that goes wrong with a record is a `PermanentError`: retrying cannot help, so the record is
quarantined in the ledger's exceptions queue with the message, and the rest of the batch goes on.
Messages name the system, the operation and the record, never a secret or a customer's details.
"""

from __future__ import annotations


class MienneOpsError(Exception):
    """Base of every error raised on purpose by mienne-ops."""

    def __init__(
        self,
        message: str,
        *,
        system: str | None = None,
        operation: str | None = None,
        record: str | None = None,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        self.detail = message
        self.system = system
        self.operation = operation
        self.record = record
        self.status = status
        self.code = code
        super().__init__(self._render())

    def _render(self) -> str:
        where = " ".join(part for part in (self.system, self.operation) if part)
        if self.record:
            where = f"{where} [{self.record}]" if where else f"[{self.record}]"
        status = " ".join(str(part) for part in (self.status, self.code) if part)
        prefix = ": ".join(part for part in (where, status) if part)
        return f"{prefix}: {self.detail}" if prefix else self.detail


class TransientError(MienneOpsError):
    """Worth retrying: throttling, server errors, network trouble."""

    def __init__(self, message: str, *, retry_after: float | None = None, **context) -> None:
        self.retry_after = retry_after
        super().__init__(message, **context)


class WaitingError(TransientError):
    """A record that cannot go on until something outside changes (a Shopify fulfillment order on
    hold or scheduled). It is queued as *retrying* under its own ``reason`` and goes through by
    itself on a later run; nobody has to act.
    """

    def __init__(self, reason: str, message: str, **context) -> None:
        self.reason = reason
        super().__init__(message, **context)


class AmbiguousWriteError(TransientError):
    """A write whose outcome is unknown (timed out after sending). Reconcile before resending."""


class PermanentError(MienneOpsError):
    """Retrying the same request cannot succeed; quarantine the record."""


class AuthError(PermanentError):
    """Credentials were rejected (401/403)."""


class NotFoundError(PermanentError):
    """The remote record does not exist."""


class RemoteValidationError(PermanentError):
    """The remote system rejected the payload (400/422, userErrors, non-zero DCL error_code)."""


class InvalidRecordError(PermanentError):
    """Our own validation rejected an input record before any write (bad order, unknown SKU, ...).

    `reason` is a short machine-readable code (e.g. ``unknown_sku``) shown in the exceptions queue;
    `payload` (e.g. the raw record that could not be read) is kept with the exception.
    """

    def __init__(self, reason: str, message: str, *, payload: dict | None = None, **context) -> None:
        self.reason = reason
        self.payload = payload
        super().__init__(message, **context)
