"""Which support tickets are requests: the rules' tags (a macro adding a tag counts the same).

Until the support agent classifies free text, a ticket is a cancellation, refund or return request
only when a person or a helpdesk rule tagged it so; a ticket without such a tag is not flow F's.
A return refunds when the goods come back, so a ticket tagged for a return *and* a refund is a
return only: a refund request beside it would pay twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from mienne_ops.domain.service_requests import RequestKind, SubscriptionAction


@dataclass(frozen=True)
class TicketRules:
    cancel_tags: frozenset[str]
    refund_tags: frozenset[str]
    cancel_subscription_tags: frozenset[str]
    skip_subscription_tags: frozenset[str]
    return_tags: frozenset[str] = frozenset()

    def kinds(self, tags: frozenset[str]) -> list[RequestKind]:
        """The requests a ticket with these (lower-cased) tags makes, cancel first."""
        kinds = []
        if tags & self.cancel_tags:
            kinds.append(RequestKind.CANCEL)
        if tags & self.return_tags:
            kinds.append(RequestKind.RETURN)
        elif tags & self.refund_tags:
            kinds.append(RequestKind.REFUND)
        return kinds

    def subscription_action(self, tags: frozenset[str]) -> SubscriptionAction:
        if tags & self.cancel_subscription_tags:
            return SubscriptionAction.CANCEL
        if tags & self.skip_subscription_tags:
            return SubscriptionAction.SKIP
        return SubscriptionAction.NONE
