"""Flow D for one record: announce a NetSuite PO / TO to DCL; post one DCL PO's receipts to NetSuite.

ASN out (`Announcer.announce`, per NetSuite order): the notification is planned and fingerprinted;
if the ledger's latest announced version has the same fingerprint nothing is sent (a re-run, a
repeated sensor tick, a retried run). Otherwise the next version ``<tranId>-<n>`` is sent. Each send
is written to the audit log *before* the POST, so a version whose answer was lost is never reused.
The ``dcl_po_number`` is bound in the ledger right after DCL answers, then the NetSuite order gets
``custbody_dcl_po_number`` and ``custbody_sent_to_3pl = true``.

What DCL does with a later version is undocumented, so `BusinessRules.dcl_asn_updates` says:

- ``update_in_place``: DCL updates the PO it holds for the ``reference_order_number`` (same
  ``dcl_po_number``). An edit goes out as the next version; a rejected send (possibly our own lost
  duplicate) goes once more as the next version, which is again an update.
- ``cancel_and_replace``: every version is a new DCL PO, so sending an edit as-is would make DCL
  expect the goods twice. DCL's API has no cancel for PO notifications, so the order is quarantined
  (``asn_cancel_required``, with the old ``dcl_po_number``) until an operator has cancelled the old
  PO in eFactory and sends the exception back (``mienne-ops exceptions retry``); then the OPEN
  quantities (ordered minus received) go out as the replacement PO and the ledger and NetSuite are
  re-pointed to it. A rejected send is never resent under a new version in this mode (it could be a
  second PO): it is quarantined for a human.

Receipts in (`ReceiptSync.sync_po`, per DCL PO): every receipt not yet recorded becomes one NetSuite
item receipt (``externalId = dcl-receipt-<dcl_po_number>-<receipt key>``, looked up by SuiteQL before
the transform). Quantities beyond the open quantity and items not on the order are quarantined
(entity ``dcl_receipt``) with their reason before the known lines post. When every line is received
in full, the order is closed (all lines ``isClosed``). A receipt whose lines cannot be read under
any known field name (DCL's receipt model is unconfirmed, dcl.md §8.2) is quarantined with its raw
payload (``unreadable_receipt``) and left unrecorded — never recorded as handled — so it is
read again once the reader knows its shape; the PO's other receipts still post.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mienne_ops.domain.dcl_records import UNREADABLE_RECEIPT, Receipt, parse_receipt
from mienne_ops.domain.inbound import (
    PENDING_RECEIPT,
    InboundOrder,
    item_receipt_external_id,
    notification_digest,
    plan_item_receipt,
    plan_po_notification,
    receipt_key,
    reference_transaction_number,
    replacement_notification,
)
from mienne_ops.domain.journey import AsnVersion, Entity, Flow
from mienne_ops.domain.suiteql_rows import InboundOrderHeader, InboundOrderLine, UnreadableRow
from mienne_ops.errors import InvalidRecordError, NotFoundError, RemoteValidationError
from mienne_ops.integrations.dcl import DclClient
from mienne_ops.integrations.netsuite import NetSuiteClient, suiteql_date, suiteql_literal
from mienne_ops.ledger import Ledger
from mienne_ops.ledger.store import ExceptionStatus
from mienne_ops.sync.batch import Outcome

log = logging.getLogger("mienne_ops.sync.inbound")

FLOW = Flow.INBOUND.value  # a plain str: it is also a Dagster run tag, which must not be an Enum
ENTITY_ORDER = Entity.INBOUND_ORDER  # key: NetSuite PO / TO internal id (ledger: inbound_orders)
ENTITY_PO = Entity.DCL_PO  # key: dcl_po_number (receipt runs)
ENTITY_RECEIPT = Entity.DCL_RECEIPT  # key: <dcl_po_number>-<receipt key> (ledger: receipts)
UPDATE_IN_PLACE, CANCEL_AND_REPLACE = "update_in_place", "cancel_and_replace"
ASN_CANCEL_REQUIRED = "asn_cancel_required"
SEND_ATTEMPTS = 2
_VERSION = re.compile(r"-(\d+)$")

_STATUSES = " OR ".join(
    f"(t.type = '{kind}' AND t.status IN ({', '.join(repr(s) for s in letters)}))"
    for kind, letters in PENDING_RECEIPT.items()
)
# Dates as ISO text whatever the account's date preference (SuiteQL would give `6/15/2024`).
HEADER_COLUMNS = (
    "t.id, t.type, t.tranid, t.status, t.entity, t.location, t.transferlocation, "
    f"{suiteql_date('t.trandate', 'trandate')}, {suiteql_date('t.duedate', 'duedate')}, "
    "t.custbody_sent_to_3pl, t.custbody_dcl_po_number, "
    f"{suiteql_date('t.lastmodifieddate', 'lastmodifieddate', with_time=True)}"
)


def pending_orders_query(location_ids: list[int], *, sent: bool) -> str:
    """Open POs / TOs at a DCL warehouse, not yet announced (``sent=False``) or announced."""
    locations = ", ".join(str(int(x)) for x in location_ids) or "-1"
    return (
        f"SELECT {HEADER_COLUMNS} FROM transaction t WHERE ({_STATUSES}) "
        f"AND ((t.type = 'PurchOrd' AND t.location IN ({locations})) "
        f"OR (t.type = 'TrnfrOrd' AND t.transferlocation IN ({locations}))) "
        f"AND t.custbody_sent_to_3pl = '{'T' if sent else 'F'}' ORDER BY t.id"
    )


LINES_QUERY = (
    "SELECT tl.transaction, tl.id AS line, i.itemid AS sku, tl.itemtype, tl.quantity AS qty, "
    "tl.quantityshiprecv AS qty_received, tl.isclosed FROM transactionline tl JOIN item i ON i.id = tl.item "
    "WHERE tl.transaction IN ({ids}) AND tl.mainline = 'F' AND tl.taxline = 'F' "
    "ORDER BY tl.transaction, tl.linesequencenumber"
)


def load_orders(
    netsuite: NetSuiteClient, ids: list[str], *, skip_unreadable: bool = False
) -> dict[str, InboundOrder]:
    """POs / TOs by internal id (two SuiteQL queries, rows parsed once); ids that are not a PO / TO
    are absent. An order whose rows cannot be read raises `InvalidRecordError` with the reason; with
    ``skip_unreadable`` (a batch's look-ahead) it is left out, to fail alone when its record runs."""
    if not ids:
        return {}
    id_list = ", ".join(str(int(i)) for i in ids)
    headers = list(
        netsuite.suiteql_rows(
            InboundOrderHeader,
            f"SELECT {HEADER_COLUMNS} FROM transaction t WHERE t.id IN ({id_list}) "
            "AND t.type IN ('PurchOrd', 'TrnfrOrd')",
        )
    )
    lines: dict[str, list[InboundOrderLine | UnreadableRow]] = defaultdict(list)
    for row in netsuite.suiteql_rows(InboundOrderLine, LINES_QUERY.format(ids=id_list)):
        lines[_row_value(row, "transaction")].append(row)
    orders = {}
    for header in headers:
        order_id = _row_value(header, "id")
        try:
            orders[order_id] = InboundOrder.from_suiteql(header, lines[order_id])
        except InvalidRecordError:
            if not skip_unreadable:
                raise
    return orders


def _row_value(row: InboundOrderHeader | InboundOrderLine | UnreadableRow, column: str) -> str:
    value = row.raw.get(column) if isinstance(row, UnreadableRow) else getattr(row, column)
    return str(value)


@dataclass
class Announcer:
    netsuite: NetSuiteClient
    dcl: DclClient
    ledger: Ledger
    warehouse_by_location: dict[int, str]
    asn_updates: str = UPDATE_IN_PLACE  # BusinessRules.dcl_asn_updates

    def __post_init__(self) -> None:
        if self.asn_updates not in (UPDATE_IN_PLACE, CANCEL_AND_REPLACE):
            raise ValueError(f"dcl_asn_updates must be {UPDATE_IN_PLACE} or {CANCEL_AND_REPLACE}")

    def announce(self, order_id: str, order: InboundOrder | None = None) -> Outcome:
        order = order or load_orders(self.netsuite, [order_id]).get(order_id)
        if order is None:
            raise NotFoundError("no NetSuite purchase or transfer order", system="netsuite", record=order_id)
        if not order.pending_receipt:
            return Outcome.SKIPPED  # cancelled, closed or fully received: nothing to announce
        notification = plan_po_notification(order, self.warehouse_by_location)
        digest = notification_digest(notification)
        versions = self.ledger.asn_versions(order.id)
        known = self.ledger.dcl_po_number(order.id)
        if versions and versions[max(versions)].fingerprint == digest and known:
            return Outcome.DONE if self._mark(order, known) else Outcome.SKIPPED
        if known and versions and self.asn_updates == CANCEL_AND_REPLACE:
            return self._replace(order, notification, digest, versions, known)
        dcl_po_number, version, reference = self._send(order, notification, versions)
        self.ledger.bind_dcl_po(order.id, str(dcl_po_number))
        units = sum(int(line["quantity"]) for line in notification["lines"])
        self.ledger.record_asn_version(
            order.id, AsnVersion(version, digest, reference, units, str(dcl_po_number))
        )
        self._mark(order, str(dcl_po_number))
        return Outcome.DONE

    def _replace(
        self,
        order: InboundOrder,
        notification: dict[str, Any],
        digest: str,
        versions: dict[int, AsnVersion],
        old_number: str,
    ) -> Outcome:
        """Cancel-and-replace: only once the old DCL PO is cancelled, the open quantities as a new PO."""
        if not self._cancel_confirmed(order.id, old_number):
            raise InvalidRecordError(
                ASN_CANCEL_REQUIRED,
                f"{order.record_type} {order.tranid} changed after it was announced as DCL PO {old_number}; "
                "DCL would expect a new version as a second PO. Cancel DCL PO "
                f"{old_number} in eFactory, then retry this exception to send the replacement.",
                system="dcl",
                operation="po_notifications",
                record=order.id,
                payload={"dcl_po_number": old_number, "reference": versions[max(versions)].reference},
            )
        # Kept in the ledger: a transient failure below re-queues the exception under another reason.
        self.ledger.confirm_asn_cancel(order.id, old_number)
        replacement = replacement_notification(notification, order)
        dcl_po_number, version, reference = self._send(order, replacement, versions)
        if not self.ledger.replace_dcl_po(order.id, old_number, str(dcl_po_number)):
            raise RemoteValidationError(
                "the ledger's DCL PO changed while it was being replaced",
                system="ledger",
                record=order.id,
            )
        units = sum(int(line["quantity"]) for line in notification["lines"])  # what the order announces
        self.ledger.record_asn_version(
            order.id, AsnVersion(version, digest, reference, units, str(dcl_po_number))
        )
        self.ledger.record_asn_replacement(order.id, old_number, str(dcl_po_number))
        self._mark(order, str(dcl_po_number))
        return Outcome.DONE

    def _cancel_confirmed(self, order_id: str, old_number: str) -> bool:
        """An operator sent the ``asn_cancel_required`` exception of this PO number back for a retry."""
        if self.ledger.asn_cancel_confirmed(order_id, old_number):
            return True
        return any(
            row.entity == ENTITY_ORDER
            and row.reason == ASN_CANCEL_REQUIRED
            and (row.context or {}).get("dcl_po_number") == old_number
            for row in self.ledger.exceptions(statuses=[ExceptionStatus.RETRYING], flow=FLOW, key=order_id)
        )

    def _send(
        self, order: InboundOrder, notification: dict[str, Any], versions: dict[int, AsnVersion]
    ) -> tuple[int, int, str]:
        version = max([0, *versions, *self._attempted_versions(order.id)]) + 1
        # Resending a rejected version as the next one is an update only when DCL updates in place.
        attempts = SEND_ATTEMPTS if self.asn_updates == UPDATE_IN_PLACE else 1
        for attempt in range(1, attempts + 1):
            reference = reference_transaction_number(order, version)
            # Written before the POST: a version whose answer is lost is never sent again.
            self.ledger.audit("dcl", "po_notifications", order.id, "sending", detail=reference)
            try:
                number = self.dcl.submit_po_notification(
                    {**notification, "reference_transaction_number": reference}
                )
            except RemoteValidationError:
                # Possibly our own earlier send (answer lost, resent by the HTTP core): the same
                # content as the next version is an update of that PO. A real rejection fails again.
                if attempt == attempts:
                    raise
                version += 1
                continue
            self.ledger.audit(
                "dcl", "po_notifications", order.id, "ok", remote_id=str(number), detail=reference
            )
            return number, version, reference
        raise AssertionError("unreachable")

    def _attempted_versions(self, order_id: str) -> list[int]:
        versions = []
        for row in self.ledger.audit_trail([order_id]):
            if row["operation"] == "po_notifications" and (match := _VERSION.search(row["detail"] or "")):
                versions.append(int(match.group(1)))
        return versions

    def _mark(self, order: InboundOrder, dcl_po_number: str) -> bool:
        """Flag the NetSuite order and store the DCL PO number on it; False when already so."""
        if order.sent_to_3pl and order.dcl_po_number == dcl_po_number:
            return False
        self.netsuite.patch(
            order.record_type,
            order.id,
            {"custbody_sent_to_3pl": True, "custbody_dcl_po_number": dcl_po_number},
        )
        self.ledger.audit("netsuite", f"{order.record_type}.flag", order.id, "ok", remote_id=dcl_po_number)
        return True


@dataclass
class ReceiptSync:
    netsuite: NetSuiteClient
    ledger: Ledger
    location_by_warehouse: dict[str, int]

    def sync_po(self, dcl_po_number: str, receipts: Sequence[dict[str, Any] | Receipt]) -> Outcome:
        order_id = self._order_id(dcl_po_number)
        did_work = False
        for receipt in map(parse_receipt, receipts):  # parsed once: keyed, checked and planned as read
            key = f"{dcl_po_number}-{receipt_key(receipt)}"
            if self.ledger.posted_receipt(key):
                continue
            if receipt.unreadable:
                self._quarantine_unreadable(dcl_po_number, key, receipt)
                continue
            self.ledger.resolve(FLOW, ENTITY_RECEIPT, key)  # read now (a reader fix): no longer stuck
            self._post(order_id, dcl_po_number, receipt, key)
            did_work = True
        order = load_orders(self.netsuite, [order_id])[order_id]
        if order.fully_received and order.status != "H":
            self._close(order)
            did_work = True
        return Outcome.DONE if did_work else Outcome.SKIPPED

    def _post(self, order_id: str, dcl_po_number: str, receipt: Receipt, key: str) -> None:
        external_id = item_receipt_external_id(dcl_po_number, receipt_key(receipt))
        existing = self.netsuite.find_by_external_id("ItemRcpt", external_id)
        if existing is None:
            order = load_orders(self.netsuite, [order_id])[order_id]  # fresh: earlier receipts changed it
            location = self.location_by_warehouse.get(receipt.location or "")
            plan = plan_item_receipt(receipt, order, location or order.receiving_location or 0, external_id)
            if plan.excess:
                # Recorded before the known lines post, so a crash in between cannot lose it.
                self.ledger.quarantine(
                    FLOW,
                    ENTITY_RECEIPT,
                    key,
                    plan.reason,
                    f"{order.record_type} {order.tranid} / DCL PO {dcl_po_number}: {plan.describe_excess()}",
                    context={
                        "netsuite_id": order.id,
                        "dcl_po_number": dcl_po_number,
                        "excess": [vars(e) for e in plan.excess],
                    },
                )
            if plan.body is None:
                self.ledger.record_receipt(key, dcl_po_number, None)  # all excess: quarantined above
                return
            existing = self.netsuite.transform(
                order.record_type, order.id, "itemReceipt", plan.body, record=key
            )
            self.ledger.audit("netsuite", "itemReceipt.transform", key, "ok", remote_id=existing)
        self.ledger.record_receipt(key, dcl_po_number, existing)

    def _quarantine_unreadable(self, dcl_po_number: str, key: str, receipt: Receipt) -> None:
        self.ledger.quarantine(
            FLOW,
            ENTITY_RECEIPT,
            key,
            UNREADABLE_RECEIPT,
            f"DCL PO {dcl_po_number}: receipt {key} cannot be read ({receipt.unreadable}); "
            "nothing was posted and it stays pending",
            context={"dcl_po_number": dcl_po_number, "raw": receipt.raw},
        )

    def _close(self, order: InboundOrder) -> None:
        lines = [{"line": line.line, "isClosed": True} for line in order.lines]
        self.netsuite.patch(order.record_type, order.id, {"item": {"items": lines}})
        self.ledger.audit("netsuite", f"{order.record_type}.close", order.id, "ok", remote_id=order.id)

    def _order_id(self, dcl_po_number: str) -> str:
        bound = self.ledger.inbound_order_of_po(dcl_po_number)
        if bound:
            return bound
        rows = list(
            self.netsuite.suiteql(
                "SELECT t.id FROM transaction t WHERE t.type IN ('PurchOrd', 'TrnfrOrd') "
                f"AND t.custbody_dcl_po_number = {suiteql_literal(str(dcl_po_number))}"
            )
        )
        if not rows:
            raise NotFoundError(
                "no NetSuite PO / TO carries this DCL PO number", system="netsuite", record=dcl_po_number
            )
        return str(rows[0]["id"])
