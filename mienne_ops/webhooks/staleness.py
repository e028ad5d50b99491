"""Stale webhook deliveries: an event older than what the ledger already holds for its resource.

Shopify retries a failed delivery for up to four hours with the ORIGINAL payload, gives no ordering
guarantee, and stamps every delivery with ``X-Shopify-Triggered-At`` — when the event fired
(shopify.md §7.2, §7.4). So a retry of an old ``orders/paid`` can arrive after the order's
``orders/cancelled``. Consumers decide by that stamp: an event triggered before the newest event the
inbox already holds for the same order is stale and starts no work (the order's current state comes
from Shopify's API, or from the newer event that was already handled). Events without a stamp are
kept: the consumers re-read Shopify anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Protocol, TypeVar


class StampedEvent(Protocol):
    @property
    def resource_id(self) -> str | None: ...

    @property
    def triggered_at(self) -> str | None: ...


E = TypeVar("E", bound=StampedEvent)


def parse_triggered_at(value: str | None) -> datetime | None:
    """``X-Shopify-Triggered-At`` as an aware UTC datetime (None when absent or unreadable)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def newest_by_resource(stamps: Iterable[tuple[str | None, str | None]]) -> dict[str, datetime]:
    """The newest trigger time per resource id over ``(resource_id, triggered_at)`` pairs."""
    newest: dict[str, datetime] = {}
    for resource_id, stamp in stamps:
        moment = parse_triggered_at(stamp)
        if resource_id and moment and (resource_id not in newest or moment > newest[resource_id]):
            newest[resource_id] = moment
    return newest


def split_stale(events: Iterable[E], known: Mapping[str, datetime]) -> tuple[list[E], list[E]]:
    """``(fresh, stale)`` in inbox order; ``known`` is the newest stamp seen before these events.

    Within the batch the newest stamp so far counts too: an older event stored after a newer one is
    stale. (Stored before it, it was fresh when it arrived; the consumer re-reads Shopify anyway.)
    """
    newest = dict(known)
    fresh: list[E] = []
    stale: list[E] = []
    for event in events:
        moment = parse_triggered_at(event.triggered_at)
        resource = event.resource_id
        if resource and moment and resource in newest and moment < newest[resource]:
            stale.append(event)
            continue
        if resource and moment:
            newest[resource] = max(moment, newest.get(resource, moment))
        fresh.append(event)
    return fresh, stale
