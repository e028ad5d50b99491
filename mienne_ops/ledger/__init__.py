"""mienne-ops's own durable state: webhook inbox, bindings, order journey, exceptions, audit."""

from mienne_ops.ledger.store import ExceptionRow, InboxEvent, Ledger

__all__ = ["ExceptionRow", "InboxEvent", "Ledger"]
