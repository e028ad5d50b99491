"""Which support tickets are requests: the rules' tags (a macro adding a tag counts the same).

Until the support agent classifies free text, a ticket is a cancellation or refund request only when
a person or a helpdesk rule tagged it so; a ticket without such a tag is not flow F's.
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

    def kinds(self, tags: frozenset[str]) -> list[RequestKind]:
        """The requests a ticket with these (lower-cased) tags makes, cancel first."""
        kinds = []
        if tags & self.cancel_tags:
            kinds.append(RequestKind.CANCEL)
        if tags & self.refund_tags:
            kinds.append(RequestKind.REFUND)
        return kinds

    def subscription_action(self, tags: frozenset[str]) -> SubscriptionAction:
        if tags & self.cancel_subscription_tags:
            return SubscriptionAction.CANCEL
        if tags & self.skip_subscription_tags:
            return SubscriptionAction.SKIP
        return SubscriptionAction.NONE
