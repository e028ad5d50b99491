"""How requests come in: a tagged support ticket, a refund made in the Shopify admin, an operator.

Each source gets its natural idempotency key (see `domain.service_requests`) and is recorded in the
ledger once; `RequestWorker` carries it out. A ticket becomes a request when a rule marks it — one of
the rules' tags (or a macro that adds one) — until the support agent classifies free text; a ticket
without such a tag is not ours and is left alone. The order is the one the customer names (``#1001``)
or else their latest order; a ticket naming none that we can find is still recorded, and fails with
a clear reason on its internal note rather than vanishing.

Nothing is taken from a webhook's body but the id of what to read: the ticket is read from its
helpdesk, the refund and the return from Shopify. A ``refunds/create`` or ``returns/request``
delivery naming a refund or return Shopify does not have (a replayed or re-topiced delivery) is an
`InvalidRecordError` (``refund_not_in_shopify``, ``return_not_in_shopify``) and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from mienne_ops.domain.journey import OrderJourney
from mienne_ops.domain.service_requests import (
    OUR_REFUND_NOTE,
    RequestDetails,
    RequestedLine,
    RequestKind,
    RequestSource,
    ServiceRequest,
    TicketRef,
    operator_request_key,
    order_names_in,
    ticket_request_key,
)
from mienne_ops.domain.shopify_money import OrderMoney, OrderRefund
from mienne_ops.domain.shopify_returns import ShopifyReturn
from mienne_ops.domain.ticket_rules import TicketRules
from mienne_ops.errors import InvalidRecordError, NotFoundError
from mienne_ops.integrations.shopify import ShopifyClient
from mienne_ops.ledger import Ledger
from mienne_ops.sync.support_desk import SupportDesk


@dataclass
class RequestIntake:
    ledger: Ledger
    shopify: ShopifyClient
    desk: SupportDesk
    rules: TicketRules

    def from_ticket(self, ticket: TicketRef) -> list[ServiceRequest]:
        """The requests a ticket makes (none when no rule marks it); recorded once per ticket and kind."""
        view = self.desk.read(ticket)
        kinds = self.rules.kinds(view.tags)
        if not kinds:
            return []
        names = order_names_in(f"{view.subject}\n{view.text}")
        order_name = names[0] if names else self._latest_order_name(view.requester_email)
        action = self.rules.subscription_action(view.tags)
        recorded = []
        for kind in kinds:
            details = RequestDetails(
                full=kind in (RequestKind.REFUND, RequestKind.RETURN),
                reason="customer",
                subscription=action,
                note=view.subject[:200] or None,
            )
            request, _ = self.ledger.record_request(
                ticket_request_key(ticket, kind),
                kind,
                RequestSource(ticket.system),
                details,
                ticket=ticket,
                order_name=order_name,
                requester=(view.requester_email or "").lower() or None,
            )
            recorded.append(request)
        return recorded

    def _latest_order_name(self, email: str | None) -> str | None:
        if not email:
            return None
        for order_id in self.shopify.iter_order_ids(f"email:{email} status:open"):
            order = self.shopify.order_money(order_id)
            if order.cancelled_at is None:
                return order.name
        return None

    def from_refund_delivery(self, order_id: str, refund_id: str) -> list[ServiceRequest]:
        """The requests a ``refunds/create`` delivery makes, decided on the order as Shopify has it now
        (one read): every refund of the order to follow. The webhook is only believed as far as
        naming the order and the refund; a refund Shopify does not show is refused, nothing changed."""
        try:
            if not order_id.isdigit():
                raise NotFoundError("no order id", system="shopify", operation="refunds/create")
            order = self.shopify.order_money(order_id)
        except NotFoundError as error:
            raise _refused(
                "refunds/create",
                f"refund {refund_id} of order {order_id}",
                f"a refunds/create delivery named order {order_id or '(none)'}, which Shopify does not have",
            ) from error
        if not any(_tail(refund.gid) == _tail(refund_id) for refund in order.refunds):
            raise _refused(
                "refunds/create",
                f"{order.name} ({order.id})",
                f"a refunds/create delivery named refund {_tail(refund_id)} of {order.name}; Shopify "
                f"shows {len(order.refunds)} refund(s) on it and not that one",
            )
        requests = (self.from_shopify_refund(order, refund) for refund in order.refunds)
        return [request for request in requests if request is not None]

    def from_shopify_refund(self, order: OrderMoney, refund: OrderRefund) -> ServiceRequest | None:
        """A refund made in the Shopify admin (not one of ours): NetSuite and StateSet must follow it."""
        if not refund_to_follow(order, refund, self.ledger.journey(order.id)):
            return None
        if any(
            refund.gid == entry.get("id")
            for ret in self.ledger.returns(shopify_order_id=order.id)
            for entry in ret.outcome.get("refunds", [])
        ):
            return None  # a return's refund (its note lost on the way): the return books it
        key = shopify_refund_request_key(refund.gid)
        details = RequestDetails(amount=refund.total if refund.total > 0 else None, reason="shopify_admin")
        request, new = self.ledger.record_request(
            key,
            RequestKind.REFUND,
            RequestSource.SHOPIFY,
            details,
            shopify_order_id=order.id,
            order_name=order.name,
        )
        if new:
            request = self.ledger.note_outcome(request.id, shopify_refund_id=refund.gid)
        return request

    def from_return_delivery(self, return_gid: str) -> ServiceRequest | None:
        """The request a ``returns/request`` delivery makes, decided on the return as Shopify has it
        now (`from_shopify_return`); a return Shopify does not have is refused, nothing changed."""
        try:
            if not return_gid.startswith("gid://shopify/Return/"):
                raise NotFoundError("not a return id", system="shopify", operation="returns/request")
            shopify_return = self.shopify.get_return(return_gid)
        except NotFoundError as error:
            raise _refused(
                "returns/request",
                return_gid,
                f"a returns/request delivery named {return_gid}, which Shopify does not have as a return",
            ) from error
        return self.from_shopify_return(shopify_return, self.shopify.order_money(shopify_return.order_id))

    def from_shopify_return(self, shopify_return: ShopifyReturn, order: OrderMoney) -> ServiceRequest | None:
        """A customer's return request made in Shopify (``returns/request``): the policy answers it
        (approve → a return opens, decline → Shopify tells the customer). Only requests count: a
        return we created ourselves is already OPEN."""
        if shopify_return.status != "REQUESTED":
            return None
        units: dict[str, int] = {}
        for line in shopify_return.lines:
            if line.sku:
                units[line.sku] = units.get(line.sku, 0) + line.quantity
        details = RequestDetails(
            lines=tuple(RequestedLine(sku=sku, quantity=quantity) for sku, quantity in units.items()),
            reason="customer",
            note=(shopify_return.customer_note or "")[:200] or None,
        )
        request, new = self.ledger.record_request(
            shopify_return_request_key(shopify_return.gid),
            RequestKind.RETURN,
            RequestSource.SHOPIFY,
            details,
            shopify_order_id=order.id,
            order_name=order.name,
            requester=(order.customer_email or order.email or "").lower() or None,
        )
        if new:
            request = self.ledger.note_outcome(request.id, shopify_return_id=shopify_return.gid)
        return request

    def from_operator(
        self,
        kind: RequestKind,
        order_name: str,
        details: RequestDetails,
        *,
        key: str | None = None,
    ) -> tuple[ServiceRequest, bool]:
        """A request typed by an operator (CLI, Dagster UI): not checked against a requester."""
        request_key = operator_request_key(kind, order_name, details, key)
        order_id = order_name if order_name.isdigit() else None
        return self.ledger.record_request(
            request_key,
            kind,
            RequestSource.OPERATOR,
            details,
            shopify_order_id=order_id,
            order_name=None if order_id else _normalised_name(order_name),
        )


def shopify_return_request_key(return_gid: str) -> str:
    return f"shopify-return:{return_gid.rsplit('/', 1)[-1]}"


def refund_to_follow(order: OrderMoney, refund: OrderRefund, journey: OrderJourney | None) -> bool:
    """Whether a Shopify refund is one flow F must follow in the books: not one of ours (the request
    that made it books it), and not a cancellation's own refund of an order NetSuite never billed
    (its sales order is closed; NetSuite took no money)."""
    if (refund.note or "").startswith(OUR_REFUND_NOTE):
        return False
    billed = journey is not None and bool(journey.cash_sale_id or journey.invoice_id)
    return order.cancelled_at is None or billed


def shopify_refund_request_key(refund_gid: str) -> str:
    return f"shopify:refund:{_tail(refund_gid)}"


#: A destructive topic's delivery naming what Shopify does not show is refused with this reason.
NOT_IN_SHOPIFY = {"refunds/create": "refund_not_in_shopify", "returns/request": "return_not_in_shopify"}


def _refused(topic: str, record: str, what_was_named: str) -> InvalidRecordError:
    """The exception for a delivery of ``topic`` that named what Shopify does not have: the webhook
    is not believed on its own, and nothing was changed."""
    return InvalidRecordError(
        NOT_IN_SHOPIFY[topic],
        f"{what_was_named}; nothing was changed",
        system="shopify",
        operation=topic,
        record=record,
    )


def _tail(gid: str) -> str:
    """The numeric id of a gid (``gid://shopify/Refund/7`` → ``7``); a bare id stays as it is."""
    return str(gid).rsplit("/", 1)[-1]


def _normalised_name(name: str) -> str:
    name = name.strip()
    return name if name.startswith("#") else f"#{name}"
