"""Shopify's replay window: which ``X-Shopify-Triggered-At`` a delivery may carry, and why so wide.

Shopify retries a failed delivery 8 times over 4 hours with the original payload and stamp, and a
delivery can be up to a day late (shopify.md §7.4). A refusal is a failed delivery too: 8 in a row
and Shopify *deletes* an Admin-API subscription. So a tight window (say 15 minutes) would refuse
legitimate retries and could cost us the subscription. The window is 48 hours by default — past the
last retry of the latest legitimate delivery (4 h + 1 day) with a margin — and a delivery stamped
older is refused (422), as is one stamped more than 5 minutes in the future (clock skew): a future
stamp would make every genuine later event of that order look stale to `webhooks.staleness`.

What the window does *not* do: the HMAC covers the body only, so whoever holds a captured delivery
can send it again with fresh headers. An unchanged replay is stopped by the event id (the inbox keeps
every id, even after `ledger purge`), and a replay with a new event id or topic is stopped by no
header check at all — only by the flows re-reading the order from Shopify before a destructive
action. The window stops the naive replay of an old capture and bounds what the inbox must remember.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mienne_ops.webhooks.inputs import BadInput
from mienne_ops.webhooks.staleness import parse_triggered_at


@dataclass(frozen=True)
class ReplayWindow:
    max_age: timedelta = timedelta(hours=48)
    max_skew: timedelta = timedelta(minutes=5)

    def check(self, triggered_at: str, now: datetime | None = None) -> None:
        """`BadInput` when ``triggered_at`` is unreadable, older than `max_age` or in the future."""
        moment = parse_triggered_at(triggered_at)
        if moment is None:
            raise BadInput(400, "bad_header", "X-Shopify-Triggered-At is not an ISO 8601 time")
        now = now or datetime.now(UTC)
        if moment < now - self.max_age:
            raise BadInput(422, "replay_window", "triggered longer ago than the replay window")
        if moment > now + self.max_skew:
            raise BadInput(422, "replay_window", "triggered in the future")
