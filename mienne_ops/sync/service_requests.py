"""Flow F: carry out a request to cancel an order or refund it, in every system, exactly once.

A request (see `domain.service_requests`) is worked on by `RequestWorker.carry_out`, one at a time
and in isolation (`sync.batch.run_batch`). Each step notes what it did in the request's outcome
before the next starts, and each external write carries a natural key — Shopify's ``@idempotent``
key and the order's own cancelled state, NetSuite's externalId, Recharge's refunded total, the
ticket message's external id — so a run that died halfway, or the same ticket delivered twice,
finishes the work without doing any of it twice.

**Cancel**: an order not yet at DCL is held (flow B sends no held order) while Shopify cancels it
(refund to the original payment, restock), NetSuite closes its sales order and StateSet cancels its
record; an order at DCL is cancelled at DCL first, and refused — with a return offered — once DCL has
started picking (DCL refuses the cancel) or the order has shipped.

**Refund**: the lines, shipping and/or amount asked for are priced by Shopify's ``suggestedRefund``,
never above what is refundable; the money goes back where it was taken (Recharge for subscription
charges Recharge billed, Shopify otherwise); NetSuite books the same amount to the cent against how the
order was billed (cash sale → cash refund, invoice → credit memo + customer refund; not billed yet →
the request waits for flow C's billing); StateSet records the refund. Inventory and DCL are not
touched: no goods come back (returns are their own flow).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from mienne_ops.domain.holds import HoldDecision, HoldReason
from mienne_ops.domain.journey import Entity, Flow, OrderJourney, Stage
from mienne_ops.domain.money import ZERO, cents
from mienne_ops.domain.refund_books import (
    BookedRefundLine,
    RefundBreakdown,
    return_authorization_body,
)
from mienne_ops.domain.refund_plan import (
    RefundPlanError,
    allocate,
    money_left,
    plan_refund,
)
from mienne_ops.domain.refund_policy import (
    PROCEED,
    Decision,
    OrderFacts,
    RefundPolicy,
    Verdict,
    cancel_decision,
    invalid,
    refund_decision,
    refused,
)
from mienne_ops.domain.replies import (
    cancelled_reply,
    note_text,
    refunded_reply,
    refused_reply,
    subscription_reply,
    waiting_reply,
)
from mienne_ops.domain.service_requests import (
    FINAL_STATUSES,
    OUR_REFUND_NOTE,
    RequestKind,
    RequestSource,
    RequestStatus,
    ServiceRequest,
    SubscriptionAction,
)
from mienne_ops.domain.shopify_money import OrderMoney, OrderRefund, allocate_refund
from mienne_ops.errors import InvalidRecordError, NotFoundError, PermanentError
from mienne_ops.integrations.dcl import DclClient
from mienne_ops.integrations.netsuite import NetSuiteClient
from mienne_ops.integrations.recharge import RechargeCharge, RechargeClient
from mienne_ops.integrations.shopify import ShopifyClient
from mienne_ops.integrations.stateset import StateSetClient
from mienne_ops.ledger import Ledger
from mienne_ops.sync.batch import Outcome
from mienne_ops.sync.netsuite_refunds import RefundBooks, book_refund, shopify_booking_key, source_lines
from mienne_ops.sync.returns import ReturnWorker
from mienne_ops.sync.support_desk import SupportDesk

log = logging.getLogger("mienne_ops.sync.service_requests")

FLOW = Flow.REQUESTS.value
ENTITY = Entity.REQUEST.value
CANCELLING = "cancellation"
# Shopify's `OrderCancelReason` for the reasons a request may carry.
SHOPIFY_CANCEL_REASON = {
    "customer": "CUSTOMER",
    "fraud": "FRAUD",
    "inventory": "INVENTORY",
    "declined": "DECLINED",
    "staff": "STAFF",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RequestRules:
    policy: RefundPolicy
    books: RefundBooks
    # Subscription orders whose charge Recharge processed are refunded on Recharge (Recharge took the
    # money); False: every refund goes through Shopify (stores on Shopify Checkout for subscriptions).
    refund_subscriptions_on_recharge: bool = True
    ticket_done_tag: str = "mienne-handled"


@dataclass
class StepResult:
    decision: Decision
    reply: str | None = None  # the public answer (None: no customer-facing message)
    waiting_for_books: bool = False


@dataclass
class RequestWorker:
    shopify: ShopifyClient
    netsuite: NetSuiteClient
    dcl: DclClient
    stateset: StateSetClient
    ledger: Ledger
    rules: RequestRules
    desk: SupportDesk = field(default_factory=SupportDesk)
    recharge: RechargeClient | None = None
    returns: ReturnWorker | None = None  # opens returns (kind "return"); None: returns are refused
    clock: Callable[[], datetime] = utc_now
    # How long a run may hold a request before another run takes it over (the first one died).
    lease: timedelta = timedelta(minutes=15)

    # -- the step run_batch calls -----------------------------------------------------------------
    def carry_out(self, request_key: str) -> Outcome:
        request = self.ledger.request_by_key(request_key)
        if request is None or request.status in FINAL_STATUSES:
            return Outcome.SKIPPED
        if request.status == RequestStatus.AWAITING_APPROVAL:
            return Outcome.SKIPPED  # a person decides first
        if not self.ledger.claim_request(request.id, self.lease):
            return Outcome.SKIPPED  # another run is carrying it out
        try:
            result = self._work_on(request)
        except BaseException:
            # Hand it back for the next run (a transient failure; a crash leaves the lease to expire).
            self.ledger.set_request_status(
                request.id, RequestStatus.RECEIVED, expect=[RequestStatus.IN_PROGRESS]
            )
            raise
        return self._conclude(request_key, result)

    def _work_on(self, request: ServiceRequest) -> StepResult:
        try:
            order = self._order(request)
            request = self.ledger.request(request.id) or request
            if request.kind == RequestKind.CANCEL:
                return self._cancel(request, order)
            if request.kind == RequestKind.RETURN:
                return self._return(request, order)
            return self._refund(request, order)
        except RefundPlanError as error:
            return StepResult(invalid(error.code, str(error)))
        except InvalidRecordError as error:
            return StepResult(invalid(error.reason, str(error)))

    # -- the order ----------------------------------------------------------------------------------
    def _order(self, request: ServiceRequest) -> OrderMoney:
        if request.shopify_order_id:
            try:
                return self.shopify.order_money(request.shopify_order_id)
            except NotFoundError as error:
                raise InvalidRecordError(
                    "unknown_order", f"order {request.shopify_order_id} does not exist"
                ) from error
        name = request.order_name
        if not name:
            raise InvalidRecordError("unknown_order", "the request names no order")
        for order_id in self.shopify.iter_order_ids(f"name:{name}"):
            order = self.shopify.order_money(order_id)
            if order.name == name:
                self.ledger.bind_request_order(request.id, order.id, order.name)
                return order
        raise InvalidRecordError("unknown_order", f"there is no order {name}")

    def _facts(self, order: OrderMoney, request: ServiceRequest) -> OrderFacts:
        emails = frozenset(e.strip().lower() for e in (order.email, order.customer_email) if e)
        shipped = sum(max(0, line.quantity - line.unfulfilled_quantity) for line in order.lines)
        return OrderFacts(
            currency=order.currency,
            customer_emails=emails,
            processed_at=order.processed_at,
            cancelled=order.cancelled_at is not None,
            shipped_units=shipped,
            refundable=money_left(order),
            prior_refunds=len(order.refunds),
            approved=request.approved,
        )

    # -- cancel -------------------------------------------------------------------------------------
    def _cancel(self, request: ServiceRequest, order: OrderMoney) -> StepResult:
        done = request.outcome
        if not done.get("shopify_cancelled"):
            decision = cancel_decision(request.requester, request.details, self._facts(order, request))
            if not decision.proceeds:
                return StepResult(decision, refused_reply(request.kind, order.name, decision))
        if not done.get("hold_placed"):
            hold = HoldDecision(HoldReason.MANUAL, f"being cancelled ({request.request_key})")
            if self.ledger.place_hold(order.id, hold, placed_by=CANCELLING):
                request = self.ledger.note_outcome(request.id, hold_placed=True)
        # Read the journey after the hold: flow B may have sent the order to DCL a moment ago.
        journey = self.ledger.journey(order.id)
        if journey and journey.dcl_order_number and not request.outcome.get("dcl_cancelled"):
            if not self.dcl.cancel_order(journey.dcl_order_number):
                self._release_hold(request, order.id)
                decision = refused("picking_started", "the warehouse has already started packing it")
                return StepResult(decision, refused_reply(request.kind, order.name, decision))
            request = self.ledger.note_outcome(request.id, dcl_cancelled=journey.dcl_order_number)
            self.ledger.audit(
                "dcl", "order.cancel", request.request_key, "ok", remote_id=journey.dcl_order_number
            )
        refunded = self._cancel_in_shopify(request, order)
        request = self._close_elsewhere(self.ledger.request(request.id) or request, journey, order)
        request = self._subscription(request, order)
        if journey is not None:
            self.ledger.set_stage(journey.id, Stage.CANCELLED)
        else:
            self.ledger.record_order(order.id, order.name, Stage.CANCELLED)
        self._release_all_holds(order.id)
        reply = cancelled_reply(order.name, refunded, order.currency)
        extra = subscription_reply(str(request.details.subscription))
        return StepResult(PROCEED, f"{reply} {extra}".strip())

    def _cancel_in_shopify(self, request: ServiceRequest, order: OrderMoney) -> Decimal:
        if request.outcome.get("shopify_cancelled"):
            return cents(request.outcome.get("refunded") or ZERO)
        charge = self._recharge_charge(order)
        refunded = money_left(order)
        try:
            self.shopify.cancel_order(
                order.id,
                reason=SHOPIFY_CANCEL_REASON.get(request.details.reason, "OTHER"),
                refund=charge is None,
                restock=True,
                notify_customer=True,
                staff_note=f"mienne-ops {request.request_key}",
            )
        except PermanentError as error:
            if error.code != "already_cancelled":
                raise
            # Cancelled by an earlier attempt of this request (its note was lost with a crash).
        self.ledger.audit("shopify", "order.cancel", request.request_key, "ok", remote_id=order.id)
        self.ledger.note_outcome(request.id, shopify_cancelled=True, refunded=str(refunded))
        if charge is not None and refunded > 0:
            self._refund_on_recharge(request, charge, refunded)
        return refunded

    def _close_elsewhere(
        self, request: ServiceRequest, journey: OrderJourney | None, order: OrderMoney
    ) -> ServiceRequest:
        if journey and journey.netsuite_sales_order_id and not request.outcome.get("netsuite_closed"):
            self.netsuite.close_sales_order(journey.netsuite_sales_order_id)
            self.ledger.audit(
                "netsuite",
                "salesOrder.close",
                request.request_key,
                "ok",
                remote_id=journey.netsuite_sales_order_id,
            )
            request = self.ledger.note_outcome(request.id, netsuite_closed=journey.netsuite_sales_order_id)
        if journey and journey.stateset_order_id and not request.outcome.get("stateset_cancelled"):
            self.stateset.cancel_order(journey.stateset_order_id, reason=request.details.reason)
            request = self.ledger.note_outcome(request.id, stateset_cancelled=journey.stateset_order_id)
        return request

    def _release_hold(self, request: ServiceRequest, order_id: str) -> None:
        """The hold the cancellation placed (the order stays as it was when DCL refused)."""
        if (self.ledger.request(request.id) or request).outcome.get("hold_placed"):
            self.ledger.release_hold(order_id, HoldReason.MANUAL, released_by=CANCELLING)

    def _release_all_holds(self, order_id: str) -> None:
        """A cancelled order has nothing left to hold: every hold ends (and the held-orders list and
        its SLA check stop counting it)."""
        for hold in self.ledger.active_holds([order_id]):
            self.ledger.release_hold(order_id, hold.reason, released_by=CANCELLING)

    # -- return -------------------------------------------------------------------------------------
    def _return(self, request: ServiceRequest, order: OrderMoney) -> StepResult:
        """Goods come back: the return worker decides and opens it (label, records, reply); the
        subscription changes the customer asked for follow once it is open."""
        if self.returns is None:
            return StepResult(invalid("returns_not_configured", "this deployment does not handle returns"))
        decision, reply = self.returns.open(request, order)
        if decision.proceeds:
            request = self._subscription(self.ledger.request(request.id) or request, order)
            extra = subscription_reply(str(request.details.subscription))
            reply = f"{reply} {extra}".strip() if reply else reply
        return StepResult(decision, reply)

    # -- refund -------------------------------------------------------------------------------------
    def _refund(self, request: ServiceRequest, order: OrderMoney) -> StepResult:
        if request.source == RequestSource.SHOPIFY:
            return self._follow_shopify_refund(request, order)
        if not request.outcome.get("money_refunded") and not self._adopt_our_refund(request, order):
            result = self._move_money(request, order)
            if result is not None:
                return result
        request = self.ledger.request(request.id) or request
        amount = cents(request.outcome["money_refunded"])
        breakdown = self._breakdown(request, order, amount)
        if not self._book(request, breakdown):
            return StepResult(PROCEED, None, waiting_for_books=True)
        request = self._record_in_stateset(self.ledger.request(request.id) or request, amount)
        request = self._subscription(request, order)
        reply = refunded_reply(order.name, amount, order.currency)
        extra = subscription_reply(str(request.details.subscription))
        return StepResult(PROCEED, f"{reply} {extra}".strip())

    def _adopt_our_refund(self, request: ServiceRequest, order: OrderMoney) -> bool:
        """A refund this request made before its run died, before the run could note it: found by
        the note it carries, noted now, never made again (re-pricing it would find the units gone)."""
        mark = f"{OUR_REFUND_NOTE}{request.request_key}:"
        refund = next((r for r in order.refunds if (r.note or "").startswith(mark)), None)
        if refund is None:
            return False
        self.ledger.note_outcome(request.id, shopify_refund_id=refund.gid, money_refunded=str(refund.total))
        return True

    def _move_money(self, request: ServiceRequest, order: OrderMoney) -> StepResult | None:
        """Price the refund and move the money; a StepResult when it stops here (policy, approval)."""
        details = request.details
        plan = plan_refund(order, details)
        shipping: Decimal | None = None
        if plan.lines or plan.refund_shipping:
            suggested = self.shopify.suggested_refund(
                order.id, lines=list(plan.lines), refund_shipping=plan.refund_shipping
            )
            if details.amount is not None and details.amount > suggested.amount:
                raise RefundPlanError(
                    "above_refundable",
                    f"{details.amount} asked, but those lines and shipping are worth {suggested.amount}",
                )
            amount = details.amount or suggested.amount
            shipping = suggested.shipping if plan.refund_shipping else None
            payments = suggested.transactions
        else:
            if details.amount is None:
                raise RefundPlanError("nothing_asked", "the request names no lines, shipping or amount")
            amount = details.amount
            try:
                payments = allocate_refund(order, amount)
            except ValueError as error:
                raise RefundPlanError("above_refundable", str(error)) from error
        decision = refund_decision(
            request.requester, details, self._facts(order, request), amount, self.rules.policy, self.clock()
        )
        if decision.verdict == Verdict.NEEDS_APPROVAL:
            return StepResult(decision, waiting_reply(order.name))
        if not decision.proceeds:
            return StepResult(decision, refused_reply(request.kind, order.name, decision))
        charge = self._recharge_charge(order)
        if charge is not None:
            self._refund_on_recharge(request, charge, amount)
        else:
            refund = self.shopify.create_refund(
                order.id,
                lines=list(plan.lines),
                shipping_amount=shipping,
                transactions=allocate(payments, amount),
                note=f"{OUR_REFUND_NOTE}{request.request_key}: {details.reason}",
                notify=True,
                restock=False,  # no goods come back: inventory stays as it is
                idempotency_key=_shopify_key(request),
            )
            self.ledger.audit("shopify", "refund.create", request.request_key, "ok", remote_id=refund.gid)
            self.ledger.note_outcome(
                request.id, shopify_refund_id=refund.gid, money_refunded=str(refund.total)
            )
        return None

    def _follow_shopify_refund(self, request: ServiceRequest, order: OrderMoney) -> StepResult:
        """A refund made in the Shopify admin: only the books and StateSet follow it."""
        refund_gid = request.outcome.get("shopify_refund_id")
        refund = next((r for r in order.refunds if r.gid == refund_gid), None)
        if refund is None:
            return StepResult(invalid("unknown_refund", f"order {order.name} has no refund {refund_gid}"))
        if not request.outcome.get("money_refunded"):
            request = self.ledger.note_outcome(request.id, money_refunded=str(refund.total))
        if refund.total <= 0:
            return StepResult(PROCEED)  # a restock-only refund moves no money: nothing to book
        if not self._book(request, breakdown_of(refund, request.request_key)):
            return StepResult(PROCEED, waiting_for_books=True)
        self._record_in_stateset(self.ledger.request(request.id) or request, refund.total)
        return StepResult(PROCEED)

    def _breakdown(self, request: ServiceRequest, order: OrderMoney, amount: Decimal) -> RefundBreakdown:
        refund_gid = request.outcome.get("shopify_refund_id")
        refund = next((r for r in order.refunds if r.gid == refund_gid), None) if refund_gid else None
        if refund is not None:
            return breakdown_of(refund, request.request_key)
        return RefundBreakdown(
            lines=(), shipping=ZERO, tax=ZERO, total=amount, memo=f"mienne-ops {request.request_key}"
        )

    # -- money on Recharge -------------------------------------------------------------------------
    def _recharge_charge(self, order: OrderMoney) -> RechargeCharge | None:
        """The Recharge charge that billed this order, when Recharge took the money."""
        if self.recharge is None or not self.rules.refund_subscriptions_on_recharge:
            return None
        charge = self.recharge.charge_for_shopify_order(order.id)
        return charge if charge is not None and charge.status in ("success", "partially_refunded") else None

    def _refund_on_recharge(self, request: ServiceRequest, charge: RechargeCharge, amount: Decimal) -> None:
        assert self.recharge is not None
        before = cents(request.outcome.get("recharge_refunds_before") or charge.total_refunds)
        # Noted before the call: Recharge has no idempotency key, so a retry compares the charge's
        # refunded total with this to know whether the first attempt landed.
        self.ledger.note_outcome(
            request.id, recharge_charge_id=charge.id, recharge_refunds_before=str(before)
        )
        self.recharge.refund_charge(charge.id, amount, expected_total_refunds_before=before)
        self.ledger.audit("recharge", "charge.refund", request.request_key, "ok", remote_id=str(charge.id))
        self.ledger.note_outcome(request.id, money_refunded=str(amount), recharge_refunded=str(amount))

    # -- books (NetSuite) ---------------------------------------------------------------------------
    def _book(self, request: ServiceRequest, breakdown: RefundBreakdown) -> bool:
        """Book the refund in NetSuite; False when the order is not billed yet (flow C bills it)."""
        if request.outcome.get("netsuite_refund_id"):
            return True
        journey = self.ledger.journey(request.shopify_order_id) if request.shopify_order_id else None
        if journey is None or not journey.netsuite_sales_order_id:
            raise InvalidRecordError(
                "not_in_netsuite", "the order has no NetSuite sales order to book against"
            )
        if not (journey.cash_sale_id or journey.invoice_id):
            if journey.stage == Stage.CANCELLED:
                # Cancelled before it was billed: the sales order is closed, NetSuite took no money.
                self.ledger.note_outcome(request.id, netsuite_refund_id="none: cancelled before billing")
                return True
            return False
        external_id = netsuite_refund_external_id(request)
        source = self._refund_source(request, journey, breakdown, external_id)
        booked = book_refund(
            self.netsuite,
            self.rules.books,
            source=source,
            breakdown=breakdown,
            external_id=external_id,
            invoiced=not journey.cash_sale_id,
            sales_order_id=str(journey.netsuite_sales_order_id),
        )
        if booked.credit_memo_id:
            self.ledger.note_outcome(request.id, netsuite_credit_memo_id=booked.credit_memo_id)
        self.ledger.note_outcome(
            request.id, netsuite_refund_id=booked.record_id, netsuite_refund_type=booked.record_type
        )
        self.ledger.audit("netsuite", "refund.book", request.request_key, "ok", remote_id=booked.record_id)
        return True

    def _refund_source(
        self, request: ServiceRequest, journey: OrderJourney, breakdown: RefundBreakdown, external_id: str
    ) -> tuple[str, str]:
        """What the refund record is transformed from: the cash sale / invoice, or an approved RMA on
        the sales order where the account refuses the direct transforms (`netsuite_refund_source`)."""
        if self.rules.books.source != "return_authorization":
            return (
                ("cashSale", str(journey.cash_sale_id))
                if journey.cash_sale_id
                else ("invoice", str(journey.invoice_id))
            )
        rma_id = request.outcome.get("netsuite_rma_id")
        if not rma_id:
            so = ("salesOrder", str(journey.netsuite_sales_order_id))
            books = self.rules.books
            body = return_authorization_body(
                breakdown,
                source_lines=source_lines(self.netsuite, so),
                tax_item_id=books.tax_item_id,
                shipping_item_id=books.shipping_item_id,
                shipping_cost_field=books.shipping_cost_field,
                external_id=f"{external_id}-RMA",
                adjustment_item_id=books.adjustment_item_id,
            )
            rma_id = self.netsuite.return_authorization(
                source=so, external_id=f"{external_id}-RMA", body=body
            )
            self.ledger.note_outcome(request.id, netsuite_rma_id=rma_id)
        return ("returnAuthorization", str(rma_id))

    def _record_in_stateset(self, request: ServiceRequest, amount: Decimal) -> ServiceRequest:
        journey = self.ledger.journey(request.shopify_order_id) if request.shopify_order_id else None
        if journey is None or not journey.stateset_order_id or request.outcome.get("stateset_refunded"):
            return request
        # StateSet has no idempotency key: the reason names the request, so a retry is recognised.
        reason = f"mienne-ops {request.request_key}: {request.details.reason}"
        self.stateset.refund_order(journey.stateset_order_id, amount=amount, reason=reason)
        return self.ledger.note_outcome(request.id, stateset_refunded=str(amount))

    # -- subscriptions --------------------------------------------------------------------------
    def _subscription(self, request: ServiceRequest, order: OrderMoney) -> ServiceRequest:
        action = request.details.subscription
        if (
            action == SubscriptionAction.NONE
            or request.outcome.get("subscription_done")
            or self.recharge is None
        ):
            return request
        ids = self._subscription_ids(order)
        if not ids:
            return self.ledger.note_outcome(request.id, subscription_done="none found")
        if action == SubscriptionAction.CANCEL:
            for subscription_id in ids:
                self.recharge.cancel_subscription(
                    subscription_id,
                    reason=request.details.reason,
                    comments=f"mienne-ops {request.request_key}",
                )
        else:
            customer_id = self._recharge_customer_id(order)
            for charge in self.recharge.queued_charges(customer_id) if customer_id else []:
                mine = [s for s in charge.subscription_ids if s in ids]
                if mine:
                    self.recharge.skip_charge(charge.id, mine)
                    break
        self.ledger.audit("recharge", f"subscription.{action}", request.request_key, "ok", detail=str(ids))
        return self.ledger.note_outcome(request.id, subscription_done=f"{action} {ids}")

    def _subscription_ids(self, order: OrderMoney) -> list[int]:
        assert self.recharge is not None
        charge = self.recharge.charge_for_shopify_order(order.id)
        if charge is not None and charge.subscription_ids:
            return list(charge.subscription_ids)
        customer_id = self._recharge_customer_id(order)
        if customer_id is None:
            return []
        skus = {line.sku for line in order.lines}
        return [s.id for s in self.recharge.subscriptions(customer_id) if s.sku in skus]

    def _recharge_customer_id(self, order: OrderMoney) -> int | None:
        assert self.recharge is not None
        customer = None
        if order.customer_id:
            customer = self.recharge.customer_by_shopify_id(order.customer_id)
        email = order.customer_email or order.email
        if customer is None and email:
            customer = self.recharge.customer_by_email(email)
        return customer.id if customer else None

    # -- the end of a run: status, ticket, exceptions ---------------------------------------------
    def _conclude(self, request_key: str, result: StepResult) -> Outcome:
        request = self.ledger.request_by_key(request_key)
        assert request is not None
        decision = result.decision
        if result.waiting_for_books:
            self.ledger.set_request_status(
                request.id, RequestStatus.AWAITING_BOOKS, reasons=["waiting for billing"]
            )
            return Outcome.WAITING
        status = {
            Verdict.PROCEED: RequestStatus.DONE,
            Verdict.NEEDS_APPROVAL: RequestStatus.AWAITING_APPROVAL,
            Verdict.REFUSED: RequestStatus.REFUSED,
            Verdict.INVALID: RequestStatus.FAILED,
        }[decision.verdict]
        self.ledger.set_request_status(request.id, status, reasons=decision.reasons)
        # Bad input is for the support team (internal note), not a reply to whoever wrote in: the
        # requester may not be the order's customer.
        reply = None if decision.verdict == Verdict.INVALID else result.reply
        self._answer(request, decision, reply, status)
        if decision.verdict == Verdict.INVALID:
            raise InvalidRecordError(decision.code or "invalid_request", "; ".join(decision.reasons))
        return Outcome.DONE

    def _answer(
        self, request: ServiceRequest, decision: Decision, reply: str | None, status: RequestStatus
    ) -> None:
        if request.ticket is None:
            return
        facts = {"status": status, **{k: v for k, v in request.outcome.items() if k != "hold_placed"}}
        note = note_text(request.request_key, decision, facts)
        self.desk.note(request.ticket, note, key=f"{request.request_key}:note:{status}")
        if reply:
            self.desk.reply(request.ticket, reply, key=f"{request.request_key}:reply:{status}")
        if status in FINAL_STATUSES:
            self.desk.tag(request.ticket, [self.rules.ticket_done_tag])


def breakdown_of(refund: OrderRefund, memo: str) -> RefundBreakdown:
    """A Shopify refund as NetSuite books it, to the cent: shipping and tax on their own lines, the
    merchandise as money without units (on the adjustment item) — no goods come back, so NetSuite's
    stock must not grow (flow E would sell units DCL does not have). The memo names what was refunded.
    A refund worth less than its shipping and tax (a partial amount) is booked as its total."""
    what = ", ".join(f"{line.sku or '?'} x{line.quantity}" for line in refund.lines)
    memo = f"{memo}: {what}" if what else memo
    tax = cents(sum((line.total_tax for line in refund.lines), ZERO))
    money = tuple(
        BookedRefundLine(sku=line.sku or "", quantity=0, amount=line.subtotal) for line in refund.lines
    )
    parts = cents(sum((line.amount for line in money), ZERO) + refund.shipping + tax)
    if parts == refund.total:
        return RefundBreakdown(
            lines=money, shipping=refund.shipping, tax=tax, total=refund.total, memo=memo[:999]
        )
    if refund.shipping + tax <= refund.total:
        rest = cents(refund.total - refund.shipping - tax)
        lines = (BookedRefundLine(sku="", quantity=0, amount=rest),) if rest else ()
        return RefundBreakdown(
            lines=lines, shipping=refund.shipping, tax=tax, total=refund.total, memo=memo[:999]
        )
    return RefundBreakdown(lines=(), shipping=ZERO, tax=ZERO, total=refund.total, memo=memo[:999])


def netsuite_refund_external_id(request: ServiceRequest) -> str:
    """NetSuite's key for a refund: the Shopify refund it mirrors, else the request (Recharge)."""
    refund_gid = request.outcome.get("shopify_refund_id")
    if refund_gid:
        return shopify_booking_key(str(refund_gid))
    return f"MIENNE-REFUND-{request.id}"


def _shopify_key(request: ServiceRequest) -> str:
    return f"mienne-refund-{request.id}-{request.request_key}"[:255]
