"""The soak's verdict, from the vendors' state only (`GET /_sandbox/state`), never from our ledger.

For every order the soak placed in Shopify, the journey A → B → C must have left exactly one record
of each kind with each vendor: one NetSuite sales order (by ``externalId``), one DCL order (by the
sales order's ``tranId``), one StateSet order (by ``metadata.external_id``, SHIPPED), one item
fulfillment and one cash sale per sales order (by ``createdFrom``), one Shopify fulfillment per DCL
shipment carrying DCL's tracking numbers, and the imported tag once. An order missing one of them is
*lost*, an order with two of one kind *duplicated*; a record with any vendor that maps to no placed
order's journey is an *orphan*. A cancelled Shopify order, DCL order or closed sales order means a
forged cancellation acted (the soak cancels nothing itself).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

#: NetSuite sales order statuses a cancellation leaves: C Cancelled, H Closed.
CANCELLED_SALES_ORDER = {"C", "H"}


def external_id(order_id: str) -> str:
    return f"shopify-order-{order_id}"


@dataclass
class Verdict:
    orders: int
    complete: int = 0
    lost: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    duplicated: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    orphans: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    cancelled: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    @property
    def lost_orders(self) -> set[str]:
        return {o for orders in self.lost.values() for o in orders}

    @property
    def duplicated_orders(self) -> set[str]:
        return {o for orders in self.duplicated.values() for o in orders}

    @property
    def orphan_records(self) -> int:
        return sum(len(records) for records in self.orphans.values())

    @property
    def cancelled_orders(self) -> set[str]:
        return {o for orders in self.cancelled.values() for o in orders}

    @property
    def ok(self) -> bool:
        return not (
            self.lost_orders or self.duplicated_orders or self.orphan_records or self.cancelled_orders
        )

    def summary(self) -> dict[str, Any]:
        def examples(groups: dict[str, list[str]]) -> dict[str, Any]:
            return {
                kind: {"count": len(keys), "e.g.": sorted(keys)[:5]} for kind, keys in groups.items() if keys
            }

        return {
            "orders": self.orders,
            "complete": self.complete,
            "lost": len(self.lost_orders),
            "duplicated": len(self.duplicated_orders),
            "orphan_records": self.orphan_records,
            "cancelled_by_forgery": len(self.cancelled_orders),
            "lost_by_kind": examples(self.lost),
            "duplicated_by_kind": examples(self.duplicated),
            "orphans_by_kind": examples(self.orphans),
            "cancelled_by_kind": examples(self.cancelled),
        }


def judge(state: dict[str, Any], placed: list[str], imported_tag: str = "SENT_TO_NS") -> Verdict:
    """Lost, duplicated and orphan records of ``placed`` (Shopify order ids) in ``state``."""
    verdict = Verdict(orders=len(placed))
    ours = {external_id(key): key for key in placed}

    # NetSuite sales orders, by externalId.
    sales_orders = state["netsuite"]["sales_orders"]
    so_count = Counter(so["externalId"] for so in sales_orders)
    so_by_order: dict[str, dict[str, Any]] = {}
    for so in sales_orders:
        key = ours.get(so["externalId"])
        if key is None:
            verdict.orphans["netsuite_sales_order"].append(f"{so['tranId']}:{so['externalId']}")
            continue
        so_by_order[key] = so
        if so["status"] in CANCELLED_SALES_ORDER:
            verdict.cancelled["netsuite_sales_order_closed"].append(key)
    tran_to_order = {str(so["tranId"]): key for key, so in so_by_order.items()}
    so_id_to_order = {str(so["id"]): key for key, so in so_by_order.items()}

    # DCL orders, by order number (= the sales order's tranId).
    dcl_orders = state["dcl"]["orders"]
    dcl_count = Counter(str(o["order_number"]) for o in dcl_orders)
    dcl_by_order: dict[str, dict[str, Any]] = {}
    for order in dcl_orders:
        key = tran_to_order.get(str(order["order_number"]))
        if key is None:
            verdict.orphans["dcl_order"].append(str(order["order_number"]))
            continue
        dcl_by_order[key] = order
        if order.get("is_cancelled") or order.get("order_stage") == 2:
            verdict.cancelled["dcl_order_cancelled"].append(key)

    # NetSuite item fulfillments and cash sales / invoices, by the sales order they were created from.
    children: dict[str, Counter[str]] = {}
    for kind, records in (
        ("netsuite_item_fulfillment", state["netsuite"]["item_fulfillments"]),
        ("netsuite_billing", [*state["netsuite"]["cash_sales"], *state["netsuite"].get("invoices", [])]),
    ):
        counts: Counter[str] = Counter()
        for record in records:
            key = so_id_to_order.get(str(record["createdFrom"]))
            if key is None:
                verdict.orphans[kind].append(str(record["tranId"]))
            else:
                counts[key] += 1
        children[kind] = counts

    # StateSet orders, by metadata.external_id.
    stateset = state["stateset"]["orders"]
    stateset_count: Counter[str] = Counter()
    stateset_status: dict[str, str] = {}
    for order in stateset:
        key = ours.get(((order.get("data") or {}).get("metadata") or {}).get("external_id", ""))
        if key is None:
            verdict.orphans["stateset_order"].append(str(order.get("id")))
            continue
        stateset_count[key] += 1
        stateset_status[key] = order["status"]
        if str(order["status"]).upper() == "CANCELLED":
            verdict.cancelled["stateset_order_cancelled"].append(key)

    # Shopify: only our orders, each with one fulfillment per DCL shipment and DCL's tracking.
    shopify = {str(o["id"]): o for o in state["shopify"]["orders"]}
    for key in sorted(set(shopify) - set(placed)):
        verdict.orphans["shopify_order"].append(key)

    for key in placed:
        so_id = external_id(key)
        problems_before = (len(verdict.lost_orders), len(verdict.duplicated_orders))
        check_once(verdict, "netsuite_sales_order", key, so_count[so_id])
        so = so_by_order.get(key)
        dcl = dcl_by_order.get(key)
        check_once(verdict, "dcl_order", key, dcl_count[str(so["tranId"])] if so else 0)
        shipments = (dcl or {}).get("shipments") or []
        check_once(verdict, "dcl_shipment", key, len(shipments))
        check_once(verdict, "netsuite_item_fulfillment", key, children["netsuite_item_fulfillment"][key])
        check_once(verdict, "netsuite_billing", key, children["netsuite_billing"][key])
        check_once(verdict, "stateset_order", key, stateset_count[key])
        if stateset_count[key] and stateset_status.get(key) != "SHIPPED":
            verdict.lost["stateset_shipped"].append(key)
        order = shopify.get(key)
        if order is None:
            verdict.lost["shopify_order"].append(key)
            continue
        if order.get("cancelled_at"):
            verdict.cancelled["shopify_order_cancelled"].append(key)
        tags = [t.strip() for t in (order.get("tags_string") or "").split(",") if t.strip()]
        check_once(verdict, "shopify_tag", key, tags.count(imported_tag))
        fulfillments = [
            f for f in order.get("fulfillments") or [] if f.get("status", "success") != "cancelled"
        ]
        check_once(verdict, "shopify_fulfillment", key, len(fulfillments))
        tracking = sorted(
            p["tracking_number"]
            for s in shipments
            for p in s.get("packages") or []
            if p.get("tracking_number")
        )
        shown = sorted(n for f in fulfillments for n in f.get("tracking_numbers") or [])
        if fulfillments and shown != tracking:
            verdict.lost["shopify_tracking"].append(key)
        if (len(verdict.lost_orders), len(verdict.duplicated_orders)) == problems_before:
            verdict.complete += 1
    return verdict


def check_once(verdict: Verdict, kind: str, key: str, count: int) -> None:
    if count == 0:
        verdict.lost[kind].append(key)
    elif count > 1:
        verdict.duplicated[kind].append(key)


def progress(state: dict[str, Any], placed: list[str], imported_tag: str = "SENT_TO_NS") -> dict[str, int]:
    """How far the placed orders got, cheaply: imported (tagged), at DCL, shipped, fulfilled in Shopify."""
    ours = set(placed)
    shopify = [o for o in state["shopify"]["orders"] if str(o["id"]) in ours]
    shipped_in_stateset = {
        ((o.get("data") or {}).get("metadata") or {}).get("external_id")
        for o in state["stateset"]["orders"]
        if o["status"] == "SHIPPED"
    }
    return {
        "placed": len(placed),
        "tagged": sum(1 for o in shopify if imported_tag in (o.get("tags") or [])),
        "sales_orders": len(state["netsuite"]["sales_orders"]),
        "at_dcl": len(state["dcl"]["orders"]),
        "shipped_at_dcl": sum(1 for o in state["dcl"]["orders"] if o.get("shipments")),
        "fulfilled": sum(1 for o in shopify if o.get("fulfillments")),
        "done": sum(
            1
            for o in shopify
            if o.get("fulfillments")
            and imported_tag in (o.get("tags") or [])
            and external_id(str(o["id"])) in shipped_in_stateset
        ),
    }
