"""Flow F: a return from the request to the refund, in every system, exactly once.

`ReturnWorker.open` runs inside the request's run (`sync.service_requests`): the policy decides
(`domain.return_policy`), the return is recorded in the ledger, then its records are made one by one,
each noted the moment it exists — the NetSuite return authorization (approved; its tranId is the RMA
number everywhere), the DCL RMA with a prepaid label for US and Canadian addresses (carrier and service
per country), the StateSet return, the Shopify return with DCL's label attached as its reverse
delivery — and the customer gets the label, what to pack and the deadline.

`ReturnWorker.advance` runs from the returns job, as often as `returns_sensor` polls DCL: the carrier's
first scan (an *instant* return is refunded then), each DCL receipt (booked as a NetSuite item receipt
into stock or written off by the condition DCL reports, then refunded for what arrived — partial
receipts refund partially — in Shopify or Recharge and in NetSuite to the same cent, and StateSet), the
reminders and, after the deadline, the expiry (records closed everywhere, the customer told).

Nothing here keeps state in memory: the return's row (status, deadline, reminders sent, ids, receipts
booked, refunds made) is the state, so a restart in the middle of a two-week wait loses nothing, and
each external write carries a natural key (NetSuite externalId, DCL rma_number, the refund note and
Shopify ``@idempotent`` key, Recharge's refunded total, the ticket message's external id).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from mienne_ops.domain.dcl_records import DclRma, DclRmaReceipt
from mienne_ops.domain.dispatch import dcl_address
from mienne_ops.domain.journey import Entity, Flow, OrderJourney
from mienne_ops.domain.money import ZERO, cents
from mienne_ops.domain.refund_books import BookedRefundLine, RefundBreakdown, return_authorization_body
from mienne_ops.domain.refund_policy import PROCEED, invalid, refused
from mienne_ops.domain.return_policy import (
    EXCEPTION_CODES,
    InstantTrigger,
    LabelService,
    ReturnFacts,
    ReturnPolicy,
    ShippedLine,
    assess_receipt,
    due_reminders,
    expires_at,
    label_service,
    reminders_passed,
    return_decision,
)
from mienne_ops.domain.return_replies import (
    expired_reply,
    label_sent_reply,
    no_label_reply,
    received_reply,
    refunded_reply,
    refused_return_reply,
    reminder_reply,
    return_note_text,
)
from mienne_ops.domain.returns import (
    FINAL_STATUSES,
    WAITING_STATUSES,
    OrderReturn,
    ReturnLine,
    ReturnStatus,
    receipt_external_id,
    return_external_id,
)
from mienne_ops.domain.service_requests import (
    OUR_REFUND_NOTE,
    RequestedLine,
    RequestSource,
    ServiceRequest,
    TicketRef,
)
from mienne_ops.domain.shopify_money import OrderMoney, OrderRefund, RefundedLine
from mienne_ops.domain.shopify_returns import ReturnableLine, ShopifyReturn
from mienne_ops.errors import InvalidRecordError, PermanentError
from mienne_ops.integrations.dcl import DclClient
from mienne_ops.integrations.netsuite import NetSuiteClient
from mienne_ops.integrations.recharge import RechargeCharge, RechargeClient
from mienne_ops.integrations.shopify import ShopifyClient
from mienne_ops.integrations.stateset import StateSetClient
from mienne_ops.ledger import Ledger
from mienne_ops.sync.batch import Outcome
from mienne_ops.sync.netsuite_refunds import RefundBooks, book_refund, shopify_booking_key, source_lines
from mienne_ops.sync.support_desk import SupportDesk

log = logging.getLogger("mienne_ops.sync.returns")

FLOW = Flow.REQUESTS.value
ENTITY = Entity.RETURN.value
GOOD, DAMAGED = "good", "damaged"
# Shopify's ReturnReason (deprecated in inputs, still accepted) for our reasons.
SHOPIFY_REASONS = {
    "size_fit_issue": "SIZE_TOO_SMALL",
    "changed_mind": "UNWANTED",
    "not_as_described": "NOT_AS_DESCRIBED",
    "wrong_item": "WRONG_ITEM",
    "defective": "DEFECTIVE",
    "damaged_in_shipping": "DEFECTIVE",
    "quality_issue": "DEFECTIVE",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ReturnRules:
    policy: ReturnPolicy
    books: RefundBooks
    rma_type: str = "T01"
    rma_disposition: int = 2  # DCL: Return To Stock
    restock_location_id: str = "1"  # NetSuite location of the warehouse goods come back to
    writeoff_location_id: str | None = None  # damaged goods are received here; None: not received
    return_address_text: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)  # step -> ticket tag
    refund_on_recharge: bool = True  # subscription charges Recharge took are refunded on Recharge


@dataclass
class ReturnWorker:
    shopify: ShopifyClient
    netsuite: NetSuiteClient
    dcl: DclClient
    stateset: StateSetClient
    ledger: Ledger
    rules: ReturnRules
    desk: SupportDesk = field(default_factory=SupportDesk)
    recharge: RechargeClient | None = None
    clock: Callable[[], datetime] = utc_now
    # DCL RMAs read for this run in one paged call (`prefetch`), by rma_number.
    _rmas: dict[str, DclRma] = field(default_factory=dict)

    # ==============================================================================================
    # Opening (inside the request's run)
    # ==============================================================================================
    def open(self, request: ServiceRequest, order: OrderMoney) -> tuple[Any, str | None]:
        """Decide, record and open the return a request asks for.

        Returns the policy's decision and the public reply (the request's run concludes with them).
        """
        ret = self.ledger.return_by_key(request.request_key)
        if ret is None:
            decided = self._decide(request, order)
            if isinstance(decided, tuple):
                return decided
            ret = decided
        if ret.status != ReturnStatus.OPENING:
            return PROCEED, None  # opened by an earlier run: nothing to say twice
        ret = self._open_records(ret, request, order)
        if ret.status == ReturnStatus.FAILED:
            reason = ret.outcome.get("failure", "the return could not be opened")
            return invalid(str(ret.outcome.get("failure_code", "return_failed")), reason), None
        return PROCEED, self._opened_reply(ret)

    def _decide(self, request: ServiceRequest, order: OrderMoney) -> OrderReturn | tuple[Any, str | None]:
        requested_in_shopify = str(request.outcome.get("shopify_return_id") or "") or None
        returnable = self.shopify.returnable_lines(order.id)
        if requested_in_shopify:
            returnable = self._with_requested_units(order.id, requested_in_shopify, returnable)
        header = self.shopify.get_order(int(order.id)) or {}
        facts = self._facts(order, returnable, header, leave_out=requested_in_shopify)
        requested = self._requested(request, returnable)
        if not requested:
            # "Return my order" with nothing left to return: already in a return, or never shipped.
            decision = refused(
                "nothing_to_return",
                f"everything that shipped on order {order.name} is already being returned, "
                "or nothing has shipped yet",
            )
            return decision, refused_return_reply(order.name, decision)
        trusted = request.source in (RequestSource.OPERATOR, RequestSource.SHOPIFY)
        verdict = return_decision(
            request.requester, trusted, requested, facts, self.rules.policy, self.clock()
        )
        if not verdict.decision.proceeds:
            self._refused(request, order, verdict.decision)
            return verdict.decision, refused_return_reply(order.name, verdict.decision)
        lines = _return_lines(verdict.lines, returnable)
        ret, _ = self.ledger.record_return(
            request.request_key,
            request_id=request.id,
            shopify_order_id=order.id,
            order_name=order.name,
            lines=lines,
            currency=order.currency,
            value=verdict.value,
            country=facts.country,
            instant=verdict.instant,
        )
        if request.source == RequestSource.SHOPIFY and request.outcome.get("shopify_return_id"):
            ret = self.ledger.note_return(ret.id, shopify_return_id=request.outcome["shopify_return_id"])
        return ret

    def _with_requested_units(
        self, order_id: str, return_id: str, returnable: list[ReturnableLine]
    ) -> list[ReturnableLine]:
        """The returnable lines as they were before the customer asked: Shopify counts the units of a
        requested return as no longer returnable, but they are what the policy must judge."""
        requested = self.shopify.get_return(return_id)
        dates = self.shopify.fulfillment_line_dates(order_id)
        lines = {line.fulfillment_line_item_id: line for line in returnable}
        for line in requested.lines:
            if line.fulfillment_line_item_id not in dates:
                continue  # a fulfillment cancelled since: nothing shipped to return
            known = lines.get(line.fulfillment_line_item_id)
            if known is not None:
                lines[known.fulfillment_line_item_id] = known.model_copy(
                    update={"quantity": known.quantity + line.quantity}
                )
                continue
            fulfilled_at, delivered_at = dates[line.fulfillment_line_item_id]
            lines[line.fulfillment_line_item_id] = ReturnableLine(
                fulfillment_line_item_id=line.fulfillment_line_item_id,
                line_item_id=line.line_item_id,
                sku=line.sku,
                quantity=line.quantity,
                fulfilled_at=fulfilled_at,
                delivered_at=delivered_at,
                unit_price=line.unit_price,
                product_tags=line.product_tags,
            )
        return list(lines.values())

    def _facts(
        self, order: OrderMoney, returnable: list[ReturnableLine], header: dict, leave_out: str | None = None
    ) -> ReturnFacts:
        emails = frozenset(e.strip().lower() for e in (order.email, order.customer_email) if e)
        address = header.get("shippingAddress") or {}
        in_returns = self._units_in_returns(order.id, leave_out)
        lines = tuple(
            ShippedLine(
                sku=line.sku or "",
                line_item_id=line.line_item_id,
                shipped=line.quantity + in_returns.get(line.fulfillment_line_item_id, 0),
                returned=in_returns.get(line.fulfillment_line_item_id, 0),
                fulfilled_at=line.fulfilled_at,
                delivered_at=line.delivered_at,
                tags=line.product_tags,
                unit_price=line.unit_price,
            )
            for line in returnable
        )
        return ReturnFacts(
            order_name=order.name,
            currency=order.currency,
            customer_emails=emails,
            cancelled=order.cancelled_at is not None,
            fully_refunded=order.total_refunded >= order.total > 0
            or order.display_financial_status == "REFUNDED",
            lines=lines,
            country=(address.get("countryCodeV2") or None),
            customer_orders=self._customer_orders(order),
            bad_history=self._bad_history(order),
        )

    def _units_in_returns(self, order_id: str, leave_out: str | None = None) -> dict[str, int]:
        """Units of each fulfillment line already in other live returns (Shopify's returnable quantity
        leaves them out; the policy counts them as returned)."""
        units: dict[str, int] = {}
        for existing in self.shopify.order_returns(order_id):
            if existing.status in ("DECLINED", "CANCELED") or existing.gid == leave_out:
                continue
            for line in existing.lines:
                units[line.fulfillment_line_item_id] = (
                    units.get(line.fulfillment_line_item_id, 0) + line.quantity
                )
        return units

    def _customer_orders(self, order: OrderMoney) -> int:
        if not order.customer_id:
            return 1
        customer = str(order.customer_id).rsplit("/", 1)[-1]
        return sum(1 for _ in self.shopify.iter_order_ids(f"customer_id:{customer}"))

    def _bad_history(self, order: OrderMoney) -> bool:
        """A return of this customer's that expired (the parcel never came) or was refused."""
        if not order.customer_id:
            return False
        customer = str(order.customer_id).rsplit("/", 1)[-1]
        for order_id in self.shopify.iter_order_ids(f"customer_id:{customer}"):
            if any(r.status == ReturnStatus.EXPIRED for r in self.ledger.returns(shopify_order_id=order_id)):
                return True
        return False

    @staticmethod
    def _requested(request: ServiceRequest, returnable: list[ReturnableLine]) -> list[RequestedLine]:
        """What was asked: the lines named, or every returnable unit (a ticket asking to return an
        order without naming lines)."""
        if request.details.lines:
            return list(request.details.lines)
        units: dict[str, int] = {}
        for line in returnable:
            if line.sku and line.quantity > 0:
                units[line.sku] = units.get(line.sku, 0) + line.quantity
        return [RequestedLine(sku=sku, quantity=quantity) for sku, quantity in units.items()]

    def _refused(self, request: ServiceRequest, order: OrderMoney, decision: Any) -> None:
        """A refused Shopify request is declined there; an already refunded order is an exception
        (someone refunded without the goods: a person looks)."""
        return_id = request.outcome.get("shopify_return_id")
        if request.source == RequestSource.SHOPIFY and return_id:
            reason = (
                "FINAL_SALE"
                if decision.code == "final_sale"
                else ("RETURN_PERIOD_ENDED" if decision.code == "outside_window" else "OTHER")
            )
            self.shopify.decline_return_request(
                str(return_id), reason=reason, note="; ".join(decision.reasons)
            )
        if decision.code in EXCEPTION_CODES:
            self.ledger.quarantine(
                FLOW,
                ENTITY,
                request.request_key,
                str(decision.code),
                f"a return was asked for {order.name} and refused: {'; '.join(decision.reasons)}",
                context={"order": order.name, "shopify_order_id": order.id},
            )

    # -- the records -------------------------------------------------------------------------------
    def _open_records(self, ret: OrderReturn, request: ServiceRequest, order: OrderMoney) -> OrderReturn:
        journey = self.ledger.journey(order.id)
        if journey is None or not journey.netsuite_sales_order_id:
            raise InvalidRecordError(
                "not_in_netsuite", f"{order.name} has no NetSuite sales order to return against"
            )
        label = label_service(ret.country, self.rules.policy)
        ret = self._netsuite_rma(ret, journey)
        ret = self._dcl_rma(ret, journey, label)
        if ret.status == ReturnStatus.FAILED:
            return ret
        ret = self._stateset_return(ret, journey, request)
        ret = self._shopify_return(ret, request)
        now = self.clock()
        ret = self.ledger.update_return(
            ret.id, label_sent_at=now, deadline_at=expires_at(now, self.rules.policy)
        )
        self.ledger.set_return_status(ret.id, ReturnStatus.AWAITING_PARCEL, expect=[ReturnStatus.OPENING])
        ret = self._fresh(ret)
        self._tell(ret, note=True)
        self._tag(ret, "label_sent")
        if ret.instant and self.rules.policy.instant_trigger == InstantTrigger.LABEL_CREATED:
            ret = self._refund_instantly(ret)
        return ret

    def _netsuite_rma(self, ret: OrderReturn, journey: OrderJourney) -> OrderReturn:
        if ret.outcome.get("netsuite_rma_id") and ret.rma_number:
            return ret
        external_id = return_external_id(ret)
        rma_id = ret.outcome.get("netsuite_rma_id")
        if not rma_id:
            breakdown = self._rma_breakdown(ret)
            # What the customer gets back is the lines with their tax: the money pending until refunded.
            ret = self.ledger.update_return(ret.id, value=breakdown.total)
            so = ("salesOrder", str(journey.netsuite_sales_order_id))
            books = self.rules.books
            body = return_authorization_body(
                breakdown,
                source_lines=source_lines(self.netsuite, so),
                tax_item_id=books.tax_item_id,
                shipping_item_id=books.shipping_item_id,
                shipping_cost_field=books.shipping_cost_field,
                external_id=external_id,
                adjustment_item_id=books.adjustment_item_id,
            )
            rma_id = self.netsuite.return_authorization(source=so, external_id=external_id, body=body)
            self.ledger.audit(
                "netsuite", "returnAuthorization.create", ret.return_key, "ok", remote_id=rma_id
            )
            ret = self.ledger.note_return(ret.id, netsuite_rma_id=rma_id)
        self.netsuite.approve_return_authorization(str(rma_id))
        summary = self.netsuite.return_authorization_summary(str(rma_id))
        return self.ledger.update_return(ret.id, rma_number=summary.tran_id)

    def _rma_breakdown(self, ret: OrderReturn) -> RefundBreakdown:
        """What the returned lines are worth, tax included, as Shopify prices them (the RMA's total is
        what its refunds may take, so it must be the refund's to the cent)."""
        suggested = self.shopify.suggested_refund(
            ret.shopify_order_id, lines=[(line.line_item_id or "", line.quantity) for line in ret.lines]
        )
        return _breakdown(suggested.lines, ZERO, suggested.total_tax, f"mienne-ops {ret.return_key}")

    def _dcl_rma(self, ret: OrderReturn, journey: OrderJourney, label: LabelService | None) -> OrderReturn:
        if ret.outcome.get("dcl_rma"):
            return ret
        assert ret.rma_number is not None
        header = self.netsuite.get("salesOrder", str(journey.netsuite_sales_order_id), expand=True)
        rma: dict[str, Any] = {
            "rma_number": ret.rma_number,
            "rma_date": self.clock().date().isoformat(),
            "original_order_number": journey.dcl_order_number,
            "shipping_address": dcl_address(header, ret.return_key),
            "rma_type": self.rules.rma_type,
            "disposition": self.rules.rma_disposition,
            "comments": f"mienne-ops {ret.return_key}"[:100],
            "generate_return_service_label": label is not None,
            "order_amount": float(ret.value),
            "lines": [
                {"item_number": line.sku, "quantity": line.quantity, "price": float(line.unit_price)}
                for line in ret.lines
            ],
        }
        if label is not None:
            rma |= {"shipping_carrier": label.carrier, "shipping_service": label.service}
        try:
            created = self.dcl.create_rma(rma)
        except PermanentError as error:
            if error.code != "label_refused":
                raise
            return self._fail(ret, "label_refused", f"DCL refused a return label: {error}")
        self.ledger.audit("dcl", "rma.create", ret.return_key, "ok", remote_id=created.rma_number)
        ret = self.ledger.note_return(
            ret.id,
            dcl_rma=created.rma_number,
            label_url=created.label_url,
            tracking_number=created.tracking_number,
            label_service=f"{label.carrier} {label.service}" if label else None,
        )
        if label is None:
            # Outside the US and Canada: no prepaid label; the customer ships it and a person
            # watches for it (the reply says where to send it).
            self.ledger.quarantine(
                FLOW,
                ENTITY,
                f"{ret.return_key}:no_label",
                "outside_us_ca",
                f"return {ret.rma_number} for {ret.order_name}: no prepaid label to {ret.country or '?'}; "
                "the customer was sent shipping instructions",
                context={"rma_number": ret.rma_number, "order": ret.order_name},
            )
        return ret

    def _fail(self, ret: OrderReturn, code: str, message: str) -> OrderReturn:
        """A return that cannot be opened: the RMA made for it is closed, nothing waits for a parcel."""
        rma_id = ret.outcome.get("netsuite_rma_id")
        if rma_id:
            self.netsuite.close_return_authorization(str(rma_id))
        self.ledger.note_return(ret.id, failure_code=code, failure=message)
        self.ledger.set_return_status(ret.id, ReturnStatus.FAILED, reason=message)
        return self._fresh(ret)

    def _stateset_return(
        self, ret: OrderReturn, journey: OrderJourney, request: ServiceRequest
    ) -> OrderReturn:
        if ret.outcome.get("stateset_return_id") or not journey.stateset_order_id:
            return ret
        reason = request.details.reason  # the client maps it to StateSet's ReturnReason (else "other")
        label = (
            {
                "carrier": ret.outcome.get("label_service"),
                "tracking_number": ret.outcome.get("tracking_number"),
                "label_url": ret.outcome.get("label_url"),
                "cost": 0,
            }
            if ret.outcome.get("label_url")
            else None
        )
        worth = self._worth_with_tax(ret)
        created = self.stateset.create_return(
            order_id=journey.stateset_order_id,
            external_id=ret.return_key,
            items=[
                {
                    "product_id": line.sku,  # flow A names StateSet order items by SKU
                    "quantity": line.quantity,
                    "reason": reason,
                    "refund_amount": worth.get(line.sku, line.unit_price * line.quantity),
                }
                for line in ret.lines
            ],
            reason=reason,
            customer_email=request.requester,
            shipping_label=label,
        )
        self.stateset.approve_return(created["id"])
        return self.ledger.note_return(ret.id, stateset_return_id=created["id"])

    def _worth_with_tax(self, ret: OrderReturn) -> dict[str, Decimal]:
        """What refunding each SKU of the return gives back, tax included (StateSet caps a return's
        refund at its items' refund amounts, so they carry the tax the refund will)."""
        suggested = self.shopify.suggested_refund(
            ret.shopify_order_id, lines=[(line.line_item_id or "", line.quantity) for line in ret.lines]
        )
        worth: dict[str, Decimal] = {}
        for line in suggested.lines:
            sku = line.sku or ""
            worth[sku] = cents(worth.get(sku, ZERO) + line.subtotal + line.total_tax)
        return worth

    def _shopify_return(self, ret: OrderReturn, request: ServiceRequest) -> OrderReturn:
        return_id = ret.outcome.get("shopify_return_id")
        if return_id and request.source == RequestSource.SHOPIFY:
            self.shopify.approve_return_request(str(return_id))
        elif not return_id:
            found = self._adoptable_shopify_return(ret)
            if found is None:
                reason = SHOPIFY_REASONS.get(request.details.reason, "OTHER")
                found = self.shopify.create_return(
                    ret.shopify_order_id,
                    [(line.fulfillment_line_item_id or "", line.quantity) for line in ret.lines],
                    reason=reason,
                    requested_at=request.created_at,
                )
                self.ledger.audit("shopify", "return.create", ret.return_key, "ok", remote_id=found.gid)
            ret = self.ledger.note_return(ret.id, shopify_return_id=found.gid)
            return_id = found.gid
        tracking, label_url = ret.outcome.get("tracking_number"), ret.outcome.get("label_url")
        if tracking and label_url and not ret.outcome.get("shopify_label_attached"):
            self.shopify.attach_return_label(
                str(return_id), tracking_number=str(tracking), tracking_url=None, label_url=str(label_url)
            )
            ret = self.ledger.note_return(ret.id, shopify_label_attached=True)
        return ret

    def _adoptable_shopify_return(self, ret: OrderReturn) -> ShopifyReturn | None:
        """An open Shopify return of exactly these lines that no return of ours holds: the one a run
        that died after `returnCreate` made (Shopify has no idempotency key for it)."""
        wanted = sorted((line.fulfillment_line_item_id or "", line.quantity) for line in ret.lines)
        taken = {
            other.outcome.get("shopify_return_id")
            for other in self.ledger.returns(shopify_order_id=ret.shopify_order_id)
            if other.id != ret.id
        }
        for candidate in self.shopify.order_returns(ret.shopify_order_id):
            lines = sorted((line.fulfillment_line_item_id, line.quantity) for line in candidate.lines)
            if candidate.status == "OPEN" and candidate.gid not in taken and lines == wanted:
                return candidate
        return None

    def _opened_reply(self, ret: OrderReturn) -> str:
        lines = [(line.sku, line.quantity) for line in ret.lines]
        deadline = (ret.deadline_at or self.clock()).date()
        label_url = ret.outcome.get("label_url")
        if label_url:
            return label_sent_reply(
                ret.order_name or "",
                lines,
                str(label_url),
                str(ret.outcome.get("label_service") or ""),
                deadline,
            )
        return no_label_reply(ret.order_name or "", lines, deadline, self.rules.return_address_text)

    # ==============================================================================================
    # Waiting, receiving, refunding (the returns job)
    # ==============================================================================================
    def prefetch(self, rma_numbers: Iterable[str]) -> None:
        """Read the RMAs of a run's returns in as few DCL calls as paging allows."""
        wanted = sorted({n for n in rma_numbers if n})
        if wanted:
            self._rmas.update({rma.rma_number: rma for rma in self.dcl.rmas(wanted)})

    def advance(self, return_key: str) -> Outcome:
        """Move one return on by what DCL, the carrier and the calendar say."""
        ret = self.ledger.return_by_key(return_key)
        if ret is None or ret.status in FINAL_STATUSES or ret.status == ReturnStatus.OPENING:
            return Outcome.SKIPPED
        rma = self._rma(ret)
        before = (
            ret.status,
            len(ret.booked_receipts),
            len(ret.outcome.get("refunds", [])),
            ret.reminders_sent,
        )
        if rma is not None:
            ret = self._first_scan(ret, rma)
            ret = self._receipts(ret, rma)
        ret = self._settle_money(ret)
        if ret.status in WAITING_STATUSES:
            ret = self._remind_or_expire(ret)
        elif ret.status == ReturnStatus.RECEIVED:
            ret = self._finish_when_done(ret, rma)
        after = (
            ret.status,
            len(ret.booked_receipts),
            len(ret.outcome.get("refunds", [])),
            ret.reminders_sent,
        )
        return Outcome.DONE if after != before else Outcome.SKIPPED

    def _rma(self, ret: OrderReturn) -> DclRma | None:
        number = ret.outcome.get("dcl_rma") or ret.rma_number
        if not number:
            return None
        if number not in self._rmas:
            self.prefetch([number])
        return self._rmas.get(number)

    def _first_scan(self, ret: OrderReturn, rma: DclRma) -> OrderReturn:
        if rma.first_scan_date is None or ret.status != ReturnStatus.AWAITING_PARCEL:
            return ret
        self.ledger.set_return_status(ret.id, ReturnStatus.IN_TRANSIT, expect=[ReturnStatus.AWAITING_PARCEL])
        ret = self.ledger.note_return(ret.id, first_scan_at=rma.first_scan_date.isoformat())
        if ret.instant and self.rules.policy.instant_trigger == InstantTrigger.FIRST_SCAN:
            ret = self._refund_instantly(ret)
        return self._fresh(ret)

    # -- receipts ----------------------------------------------------------------------------------
    def _receipts(self, ret: OrderReturn, rma: DclRma) -> OrderReturn:
        new = [r for r in rma.receipts if r.receipt_id not in ret.booked_receipts]
        if not new:
            return ret
        for receipt in sorted(new, key=lambda r: (r.received_date, r.receipt_id)):
            ret = self._book_receipt(ret, receipt)
        if ret.received_at is None:
            ret = self.ledger.update_return(ret.id, received_at=min(r.received_date for r in new))
        self.ledger.set_return_status(ret.id, ReturnStatus.RECEIVED, expect=[*WAITING_STATUSES])
        ret = self._fresh(ret)
        received = _received(rma)
        good = {
            sku: min(by.get(GOOD, 0), units)
            for sku, units in ret.expected.items()
            if (by := received.get(sku))
        }
        ret = self.ledger.note_return(ret.id, received_units={sku: n for sku, n in good.items() if n})
        self._report_problems(ret, received)
        self._stateset_receive(ret, received)
        units = [(sku, sum(by_condition.values())) for sku, by_condition in sorted(received.items())]
        self._reply(ret, received_reply(ret.order_name or "", units), f"received:{len(ret.booked_receipts)}")
        self._tag(ret, "received")
        return ret

    def _book_receipt(self, ret: OrderReturn, receipt: DclRmaReceipt) -> OrderReturn:
        """One DCL receipt → one NetSuite item receipt on the RMA (good units into stock, damaged ones
        into the write-off location or not received); what is not on the RMA is left out (reported)."""
        rma_id = str(ret.outcome["netsuite_rma_id"])
        summary = self.netsuite.return_authorization_summary(rma_id)
        room = {line.line: line.quantity - line.quantity_received for line in summary.lines}
        lines: list[tuple[int, int, str]] = []
        for received in receipt.lines:
            location = self._location_for(received.condition)
            left = received.quantity
            for line in summary.lines:
                if left <= 0 or location is None:
                    break
                if line.sku != received.item_number or room.get(line.line, 0) <= 0:
                    continue
                take = min(left, room[line.line])
                lines.append((line.line, take, location))
                room[line.line] -= take
                left -= take
        assert ret.rma_number is not None
        if lines:
            receipt_id = self.netsuite.receive_return(
                rma_id, external_id=receipt_external_id(ret.rma_number, receipt.receipt_id), lines=lines
            )
            self.ledger.audit("netsuite", "itemReceipt.create", ret.return_key, "ok", remote_id=receipt_id)
        return self.ledger.append_return_fact(ret.id, "receipts_booked", receipt.receipt_id)

    def _location_for(self, condition: str) -> str | None:
        if condition == DAMAGED:
            return self.rules.writeoff_location_id
        return self.rules.restock_location_id

    def _stateset_receive(self, ret: OrderReturn, received: Mapping[str, Mapping[str, int]]) -> None:
        return_id = ret.outcome.get("stateset_return_id")
        if not return_id:
            return
        # StateSet takes what is on the return, no more (wrong items are the exceptions queue's).
        expected = ret.expected
        damaged = any(by.get(DAMAGED) for sku, by in received.items() if sku in expected)
        items = [
            {"product_id": sku, "quantity": min(sum(by.values()), expected[sku])}
            for sku, by in sorted(received.items())
            if sku in expected
        ]
        if not items:
            return
        self.stateset.receive_return(str(return_id), items=items, condition="damaged" if damaged else "new")

    def _report_problems(self, ret: OrderReturn, received: Mapping[str, Mapping[str, int]]) -> None:
        """Wrong items, wrong quantities and damaged goods: each an exception a person sees (the rest of
        the return, and every other return, goes on)."""
        assessment = assess_receipt(ret.expected, received, ret.refunded_units, self.rules.policy)
        problems = {
            "wrong_item": {s: q for s, q in assessment.unexpected.items() if s not in ret.expected},
            "wrong_quantity": {s: q for s, q in assessment.unexpected.items() if s in ret.expected},
            "damaged": dict(assessment.damaged) if not self.rules.policy.refund_damaged else {},
        }
        for reason, units in problems.items():
            if not units:
                continue
            what = ", ".join(f"{sku} x{quantity}" for sku, quantity in sorted(units.items()))
            self.ledger.quarantine(
                FLOW,
                ENTITY,
                f"{ret.return_key}:{reason}",
                reason,
                f"return {ret.rma_number} for {ret.order_name}: {reason.replace('_', ' ')} received: {what}",
                context={"rma_number": ret.rma_number, "order": ret.order_name, "units": units},
            )

    # -- money -------------------------------------------------------------------------------------
    def _settle_money(self, ret: OrderReturn) -> OrderReturn:
        """Refund what arrived and is not refunded yet; book and record every refund made."""
        rma = self._rmas.get(ret.rma_number or "")
        if rma is not None and ret.status == ReturnStatus.RECEIVED:
            assessment = assess_receipt(ret.expected, _received(rma), ret.refunded_units, self.rules.policy)
            units = {sku: quantity for sku, quantity in assessment.refund.items() if quantity > 0}
            if units:
                ret = self._refund(ret, units, instant=False)
        return self._follow_refunds(ret)

    def _refund_instantly(self, ret: OrderReturn) -> OrderReturn:
        """An instant return is refunded before the goods arrive, for everything it expects."""
        if ret.outcome.get("refunds"):
            return ret
        ret = self._refund(ret, ret.expected, instant=True)
        return self._follow_refunds(ret)

    def _refund(self, ret: OrderReturn, units: Mapping[str, int], *, instant: bool) -> OrderReturn:
        number = len(ret.outcome.get("refunds", [])) + 1
        mark = f"{OUR_REFUND_NOTE}{ret.return_key}:{number}:"
        order = self.shopify.order_money(ret.shopify_order_id)
        adopted = next((r for r in order.refunds if (r.note or "").startswith(mark)), None)
        if adopted is not None:
            return self._noted_refund(
                ret, number, adopted.gid, units, _refund_breakdown(adopted, mark), instant
            )
        lines = _line_units(ret, units)
        suggested = self.shopify.suggested_refund(order.id, lines=lines)
        charge = self._recharge_charge(order)
        if charge is not None:
            amount = suggested.amount
            self._refund_on_recharge(ret, number, charge, amount)
            if not instant:
                self._process_in_shopify(ret, units, transactions=None, note=mark)
            breakdown = _breakdown(suggested.lines, ZERO, suggested.total_tax, mark, total=amount)
            return self._noted_refund(
                ret, number, f"recharge:{charge.id}:{number}", units, breakdown, instant
            )
        refund = (
            self._process_in_shopify(ret, units, transactions=suggested.transactions, note=mark)
            if not instant
            else None
        )
        if refund is None:
            refund = self.shopify.create_refund(
                order.id,
                lines=lines,
                shipping_amount=None,
                transactions=suggested.transactions,
                note=f"{mark} return",
                notify=True,
                restock=False,  # nothing is back yet (instant) — the receipt restocks it
                idempotency_key=f"mienne-return-{ret.id}-{number}",
            )
        self.ledger.audit("shopify", "refund.create", ret.return_key, "ok", remote_id=refund.gid)
        return self._noted_refund(ret, number, refund.gid, units, _refund_breakdown(refund, mark), instant)

    def _process_in_shopify(
        self, ret: OrderReturn, units: Mapping[str, int], *, transactions: Any, note: str
    ) -> OrderRefund | None:
        """`returnProcess` for the units that arrived: restocked, refunded when ``transactions``."""
        return_id = ret.outcome.get("shopify_return_id")
        if not return_id:
            return None
        shopify_return = self.shopify.get_return(str(return_id))
        lines: list[tuple[str, int, bool]] = []
        wanted = dict(units)
        for line in shopify_return.lines:
            left = min(wanted.get(line.sku or "", 0), line.quantity - line.processed_quantity)
            if left > 0:
                lines.append((line.id, left, True))
                wanted[line.sku or ""] -= left
        if not lines:
            return None
        return self.shopify.process_return(str(return_id), lines, transactions=transactions, note=note)

    def _noted_refund(
        self,
        ret: OrderReturn,
        number: int,
        refund_id: str,
        units: Mapping[str, int],
        breakdown: RefundBreakdown,
        instant: bool,
    ) -> OrderReturn:
        entry = {
            "n": number,
            "id": refund_id,
            "units": dict(units),
            "amount": str(breakdown.total),
            "instant": instant,
            "breakdown": {
                "lines": [[line.sku, line.quantity, str(line.amount)] for line in breakdown.lines],
                "shipping": str(breakdown.shipping),
                "tax": str(breakdown.tax),
                "memo": breakdown.memo,
            },
        }
        ret = self.ledger.append_return_fact(ret.id, "refunds", entry)
        refunded = cents(sum((Decimal(r["amount"]) for r in ret.outcome["refunds"]), ZERO))
        return self.ledger.update_return(ret.id, refunded=refunded, refunded_at=self.clock())

    def _recharge_charge(self, order: OrderMoney) -> RechargeCharge | None:
        if self.recharge is None or not self.rules.refund_on_recharge:
            return None
        charge = self.recharge.charge_for_shopify_order(order.id)
        return charge if charge is not None and charge.status in ("success", "partially_refunded") else None

    def _refund_on_recharge(
        self, ret: OrderReturn, number: int, charge: RechargeCharge, amount: Decimal
    ) -> None:
        assert self.recharge is not None
        key = f"recharge_before_{number}"
        before = cents(Decimal(str(ret.outcome.get(key) or charge.total_refunds)))
        # Noted before the call: Recharge has no idempotency key; a retry compares the charge's
        # refunded total with this to know whether the first attempt landed.
        self.ledger.note_return(ret.id, **{key: str(before)})
        self.recharge.refund_charge(charge.id, amount, expected_total_refunds_before=before)
        self.ledger.audit("recharge", "charge.refund", ret.return_key, "ok", remote_id=str(charge.id))

    def _follow_refunds(self, ret: OrderReturn) -> OrderReturn:
        """Book every refund made in NetSuite (from the RMA), once each. (StateSet holds one refund
        per return, after its receipt: it gets the total when the return completes.)"""
        for entry in ret.outcome.get("refunds", []):
            if int(entry["n"]) not in ret.outcome.get("booked_refunds", []):
                ret = self._book(ret, entry)
        return ret

    def _book(self, ret: OrderReturn, entry: dict) -> OrderReturn:
        journey = self.ledger.journey(ret.shopify_order_id)
        if journey is None or not journey.netsuite_sales_order_id:
            raise InvalidRecordError("not_in_netsuite", f"{ret.order_name} has no NetSuite sales order")
        saved = entry["breakdown"]
        breakdown = RefundBreakdown(
            lines=tuple(BookedRefundLine(sku, int(q), Decimal(a)) for sku, q, a in saved["lines"]),
            shipping=Decimal(saved["shipping"]),
            tax=Decimal(saved["tax"]),
            total=Decimal(entry["amount"]),
            memo=saved["memo"][:999],
        )
        booked = book_refund(
            self.netsuite,
            self.rules.books,
            source=("returnAuthorization", str(ret.outcome["netsuite_rma_id"])),
            breakdown=breakdown,
            external_id=return_refund_external_id(ret, entry),
            invoiced=not journey.cash_sale_id and bool(journey.invoice_id),
            sales_order_id=str(journey.netsuite_sales_order_id),
        )
        self.ledger.audit("netsuite", "refund.book", ret.return_key, "ok", remote_id=booked.record_id)
        ret = self.ledger.note_return(ret.id, **{f"netsuite_refund_{entry['n']}": booked.record_id})
        return self.ledger.append_return_fact(ret.id, "booked_refunds", int(entry["n"]))

    # -- reminders, expiry, the end ----------------------------------------------------------------
    def _remind_or_expire(self, ret: OrderReturn) -> OrderReturn:
        now = self.clock()
        if ret.deadline_at is not None and now >= ret.deadline_at:
            return self._expire(ret)
        if ret.label_sent_at is None:
            return ret
        if due_reminders(ret.label_sent_at, ret.reminders_sent, self.rules.policy, now) > 0:
            number = ret.reminders_sent + 1
            deadline = (ret.deadline_at or now).date()
            text = reminder_reply(ret.order_name or "", str(ret.outcome.get("label_url") or ""), deadline)
            self._reply(ret, text, f"reminder:{number}")
            # A restart after days sends the one reminder due, and counts those it stepped over.
            passed = reminders_passed(ret.label_sent_at, self.rules.policy, now)
            ret = self.ledger.update_return(ret.id, reminders_sent=max(number, passed))
        return ret

    def _expire(self, ret: OrderReturn) -> OrderReturn:
        """Nothing arrived by the deadline: every record closes and the customer is told."""
        self._close_everywhere(ret, cancel=True)
        if ret.outcome.get("refunds"):
            self.ledger.quarantine(
                FLOW,
                ENTITY,
                f"{ret.return_key}:refunded_not_returned",
                "refunded_not_returned",
                f"return {ret.rma_number} for {ret.order_name} was refunded at once and never arrived",
                context={"rma_number": ret.rma_number, "refunded": str(ret.refunded)},
            )
        self.ledger.set_return_status(
            ret.id, ReturnStatus.EXPIRED, expect=[*WAITING_STATUSES], reason="deadline passed"
        )
        ret = self._fresh(ret)
        self._reply(ret, expired_reply(ret.order_name or ""), "expired")
        self._tag(ret, "expired")
        return ret

    def cancel(self, return_key: str, *, by: str, reason: str) -> OrderReturn:
        """An operator withdraws a return before anything arrived: records closed everywhere."""
        ret = self.ledger.return_by_key(return_key)
        if ret is None:
            raise InvalidRecordError("unknown_return", f"there is no return {return_key}")
        if ret.status == ReturnStatus.CANCELLED:
            return ret
        if ret.status not in (ReturnStatus.OPENING, *WAITING_STATUSES) or ret.booked_receipts:
            raise InvalidRecordError(
                "return_not_cancellable",
                f"{ret.label} is {ret.status}: only a return nothing arrived for can be cancelled",
            )
        self._close_everywhere(ret, cancel=True)
        self.ledger.set_return_status(ret.id, ReturnStatus.CANCELLED, reason=f"by {by}: {reason}")
        return self._fresh(ret)

    def _finish_when_done(self, ret: OrderReturn, rma: DclRma | None) -> OrderReturn:
        """Everything expected arrived (or the deadline passed after a partial receipt): close it."""
        received = _received(rma) if rma is not None else {}
        arrived = {sku: sum(by.values()) for sku, by in received.items()}
        complete = all(arrived.get(sku, 0) >= quantity for sku, quantity in ret.expected.items())
        late = ret.deadline_at is not None and self.clock() >= ret.deadline_at
        if not (complete or late):
            return ret
        self._close_everywhere(ret, cancel=False)
        self.ledger.set_return_status(ret.id, ReturnStatus.COMPLETED, expect=[ReturnStatus.RECEIVED])
        ret = self._fresh(ret)
        lines = [(sku, q) for sku, q in sorted(ret.refunded_units.items())]
        self._reply(ret, refunded_reply(ret.order_name or "", ret.refunded, ret.currency, lines), "refunded")
        self._tag(ret, "refunded")
        return ret

    def _close_everywhere(self, ret: OrderReturn, *, cancel: bool) -> None:
        """NetSuite's RMA closed (nothing more to receive), the Shopify and StateSet returns closed
        (cancelled when nothing arrived). DCL has no API to cancel an RMA: it stays open there and a
        late parcel is reported as a receipt for a closed return."""
        rma_id = ret.outcome.get("netsuite_rma_id")
        if rma_id and not ret.outcome.get("netsuite_rma_closed"):
            self.netsuite.close_return_authorization(str(rma_id))
            ret = self.ledger.note_return(ret.id, netsuite_rma_closed=True)
        shopify_id = ret.outcome.get("shopify_return_id")
        if shopify_id and not ret.outcome.get("shopify_return_closed"):
            if cancel and not ret.outcome.get("refunds"):
                self.shopify.cancel_return(str(shopify_id))
            else:
                self.shopify.close_return(str(shopify_id))
            ret = self.ledger.note_return(ret.id, shopify_return_closed=True)
        stateset_id = ret.outcome.get("stateset_return_id")
        if stateset_id and not ret.outcome.get("stateset_return_closed"):
            if cancel and not ret.booked_receipts:
                self.stateset.cancel_return(str(stateset_id), reason="return not received by the deadline")
            else:
                if ret.refunded > 0:  # received -> COMPLETED with the money refunded in total
                    self.stateset.refund_return(str(stateset_id), amount=ret.refunded)
                self.stateset.close_return(str(stateset_id))
            self.ledger.note_return(ret.id, stateset_return_closed=True)

    # -- DCL receipts nobody asked for ------------------------------------------------------------
    def unknown_receipts(self, since: datetime) -> list[str]:
        """RMAs DCL received since ``since`` that no return of ours made, or that arrived after their
        return closed: each an exception (a person decides what to refund)."""
        found = []
        for rma in self.dcl.iter_rmas(received_from=since):
            if not rma.receipts:
                continue
            ret = self.ledger.return_by_rma(rma.rma_number)
            if ret is not None and ret.status not in (ReturnStatus.EXPIRED, ReturnStatus.CANCELLED):
                continue
            reason = "unknown_rma" if ret is None else "receipt_after_close"
            what = ", ".join(f"{sku} x{sum(by.values())}" for sku, by in sorted(_received(rma).items()))
            self.ledger.quarantine(
                FLOW,
                Entity.DCL_RMA.value,
                rma.rma_number,
                reason,
                f"DCL received RMA {rma.rma_number} ({what})"
                + (" which no return of ours made" if ret is None else f" after its return {ret.status}"),
                context={"rma_number": rma.rma_number, "original_order_number": rma.original_order_number},
            )
            found.append(rma.rma_number)
        return found

    # -- the ticket --------------------------------------------------------------------------------
    def _ticket(self, ret: OrderReturn) -> TicketRef | None:
        request = self.ledger.request(ret.request_id) if ret.request_id else None
        return request.ticket if request is not None else None

    def _reply(self, ret: OrderReturn, text: str, step: str) -> None:
        ticket = self._ticket(ret)
        if ticket is not None and text:
            self.desk.reply(ticket, text, key=f"{ret.return_key}:return:{step}")

    def _tell(self, ret: OrderReturn, *, note: bool) -> None:
        ticket = self._ticket(ret)
        if ticket is None or not note:
            return
        facts = {
            "status": ret.status,
            "rma_number": ret.rma_number,
            **{
                k: v
                for k, v in ret.outcome.items()
                if k.endswith("_id") or k in ("dcl_rma", "tracking_number")
            },
        }
        self.desk.note(
            ticket, return_note_text(ret.return_key, facts), key=f"{ret.return_key}:return:note:{ret.status}"
        )

    def _tag(self, ret: OrderReturn, step: str) -> None:
        ticket, tag = self._ticket(ret), self.rules.tags.get(step)
        if ticket is not None and tag:
            self.desk.tag(ticket, [tag])

    # -- helpers -----------------------------------------------------------------------------------
    def _fresh(self, ret: OrderReturn) -> OrderReturn:
        fresh = self.ledger.order_return(ret.id)
        assert fresh is not None
        return fresh


def return_refund_external_id(ret: OrderReturn, entry: Mapping[str, Any]) -> str:
    """NetSuite's key for a return's refund: the Shopify refund it mirrors (as every Shopify refund is
    booked, so the daily reconciliation matches it), else the return and the refund's number."""
    refund_id = str(entry.get("id") or "")
    if refund_id.startswith("gid://shopify/Refund/"):
        return shopify_booking_key(refund_id)
    return f"{return_external_id(ret)}-R{entry['n']}"


def _return_lines(approved: Iterable[tuple[str, int]], returnable: list[ReturnableLine]) -> list[ReturnLine]:
    """The approved units on the order's fulfillment lines (a SKU on two lines fills the first)."""
    lines: list[ReturnLine] = []
    room = {id(line): line.quantity for line in returnable}
    for sku, quantity in approved:
        left = quantity
        for line in returnable:
            if left <= 0:
                break
            if line.sku != sku or room[id(line)] <= 0:
                continue
            take = min(left, room[id(line)])
            room[id(line)] -= take
            left -= take
            lines.append(
                ReturnLine(
                    sku=sku,
                    quantity=take,
                    line_item_id=line.line_item_id,
                    fulfillment_line_item_id=line.fulfillment_line_item_id,
                    unit_price=line.unit_price,
                )
            )
    return lines


def _line_units(ret: OrderReturn, units: Mapping[str, int]) -> list[tuple[str, int]]:
    """(line item gid, quantity) for refunding ``units`` of the return's lines."""
    wanted = dict(units)
    result: list[tuple[str, int]] = []
    for line in ret.lines:
        take = min(line.quantity, wanted.get(line.sku, 0))
        if take > 0 and line.line_item_id:
            result.append((line.line_item_id, take))
            wanted[line.sku] -= take
    return result


def _received(rma: DclRma) -> dict[str, dict[str, int]]:
    """What DCL received of an RMA, per SKU and condition, over all its receipts."""
    received: dict[str, dict[str, int]] = {}
    for receipt in rma.receipts:
        for line in receipt.lines:
            by_condition = received.setdefault(line.item_number, {})
            condition = DAMAGED if line.condition == DAMAGED else GOOD
            by_condition[condition] = by_condition.get(condition, 0) + line.quantity
    return received


def _breakdown(
    lines: Iterable[RefundedLine], shipping: Decimal, tax: Decimal, memo: str, total: Decimal | None = None
) -> RefundBreakdown:
    booked = tuple(
        BookedRefundLine(sku=line.sku or "", quantity=line.quantity, amount=line.subtotal) for line in lines
    )
    parts = cents(sum((line.amount for line in booked), ZERO) + shipping + tax)
    return RefundBreakdown(
        lines=booked, shipping=shipping, tax=tax, total=total if total is not None else parts, memo=memo[:999]
    )


def _refund_breakdown(refund: OrderRefund, memo: str) -> RefundBreakdown:
    """A return's Shopify refund as NetSuite books it: the returned units on their RMA lines (the
    item receipt moved the stock), shipping and tax apart, the total to the cent."""
    tax = cents(sum((line.total_tax for line in refund.lines), ZERO))
    return _breakdown(refund.lines, refund.shipping, tax, memo, total=refund.total)
