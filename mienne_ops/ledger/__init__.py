"""mienne-ops's own durable state: webhook inbox, order journeys, flow records, exceptions, audit."""

from mienne_ops.ledger.store import ExceptionRow, InboxEvent, Ledger

__all__ = ["ExceptionRow", "InboxEvent", "Ledger"]
