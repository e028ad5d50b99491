"""The traffic simulator: makes the sandbox feel like a live shop while `dagster dev` runs.

A background thread places Shopify orders every few seconds (now and then a bad one: unknown SKU,
no address, all lines removed) and, once DCL has held an order for a while, ships it — sometimes in
two shipments, sometimes with two tracking numbers — so a person watching the Dagster UI sees
orders move through flows A → B → C within about a minute. About once a minute it also creates a
NetSuite purchase order for a few DCL-stocked SKUs and, once flow D has announced it to DCL, receives
it at DCL in two parts (about half of the first line, then the rest). About every 40 seconds a
Recharge subscription renews: a catalog customer's monthly subscription is charged, which creates a
Shopify order tagged ``Subscription`` (flow F's subscription orders). About every 45 seconds a
customer writes to support in Gorgias about one of the latest orders — asking to cancel it (done, or
too late once DCL is picking) or for their money back once it shipped — so flow F's replies and
internal notes appear on the tickets. About every 90 seconds a customer asks to send back an item
of a shipped order — by turns in a Gorgias ticket tagged ``return-request`` and as a return request
in Shopify's customer account — so returns move through their states in `mienne-ops returns list`
and the ``returns`` asset (the dev command also lets DCL scan and receive the parcels by itself).
Off in tests; on in the dev command.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from mienne_ops.sandbox.order_factory import build_order

log = logging.getLogger("mienne_ops.sandbox.traffic")


class TrafficSimulator:
    def __init__(
        self,
        hub: Any,
        *,
        order_every_seconds: float = 6.0,
        ship_after_seconds: float = 12.0,
        bad_order_rate: float = 0.05,
        seed: int | None = None,
        purchase_order_every_seconds: float = 60.0,
        subscription_order_every_seconds: float = 40.0,
        ticket_every_seconds: float = 45.0,
        return_every_seconds: float = 90.0,
    ) -> None:
        self.hub = hub
        self.order_every = order_every_seconds
        self.ship_after = timedelta(seconds=ship_after_seconds)
        self.bad_order_rate = bad_order_rate
        self.rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sandbox-traffic", daemon=True)
        self._first_seen: dict[str, datetime] = {}
        self.purchase_order_every = purchase_order_every_seconds
        self._po_seen: dict[int, datetime] = {}
        self.ticket_every = ticket_every_seconds
        self._ticketed: set[int] = set()
        self.subscription_order_every = subscription_order_every_seconds
        self.return_every = return_every_seconds
        self._returns_asked = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        next_order = time.monotonic()
        next_po = time.monotonic() + self.purchase_order_every / 2
        next_ticket = time.monotonic() + self.ticket_every
        next_renewal = time.monotonic() + self.subscription_order_every / 2
        next_return = time.monotonic() + self.return_every
        while not self._stop.is_set():
            try:
                if time.monotonic() >= next_order:
                    self.place_order()
                    next_order = time.monotonic() + self.rng.uniform(0.5, 1.5) * self.order_every
                self.ship_waiting_orders()
                if time.monotonic() >= next_po:
                    self.place_purchase_order()
                    next_po = time.monotonic() + self.rng.uniform(0.5, 1.5) * self.purchase_order_every
                self.receive_announced_purchase_orders()
                if time.monotonic() >= next_ticket:
                    self.open_support_ticket()
                    next_ticket = time.monotonic() + self.rng.uniform(0.5, 1.5) * self.ticket_every
                if time.monotonic() >= next_renewal and "recharge" in self.hub.systems:
                    self.place_subscription_order()
                    next_renewal = (
                        time.monotonic() + self.rng.uniform(0.5, 1.5) * self.subscription_order_every
                    )
                if time.monotonic() >= next_return:
                    self.ask_for_return()
                    next_return = time.monotonic() + self.rng.uniform(0.75, 1.25) * self.return_every
            except Exception:  # the simulator must never take the sandbox down
                log.exception("traffic simulator step failed")
            self._stop.wait(1.0)

    def place_order(self) -> dict[str, Any]:
        bad = None
        if self.rng.random() < self.bad_order_rate:
            bad = self.rng.choice(("unknown_sku", "missing_address", "zero_quantity"))
        payload = build_order(self.hub.catalog, self.rng, bad=bad)
        created = self.hub.system("shopify").inject_order(payload)
        log.info("traffic: placed Shopify order %s%s", created.get("name"), f" ({bad})" if bad else "")
        return created

    def ship_waiting_orders(self) -> None:
        dcl = self.hub.system("dcl")
        now = datetime.now(UTC)
        for order in dcl.list_orders():
            number = order["order_number"]
            if order.get("is_cancelled") or int(order.get("order_stage") or 0) >= 60:
                continue
            first_seen = self._first_seen.setdefault(number, now)
            if now - first_seen < self.ship_after:
                continue
            self._ship(order)

    def _ship(self, order: dict[str, Any]) -> None:
        dcl = self.hub.system("dcl")
        number = order["order_number"]
        # The listing may be older than the order (a partial shipment since): decide on the order now.
        order = dcl.world.get("dcl", "order", number) or order
        if order.get("is_cancelled") or int(order.get("order_stage") or 0) >= 60:
            return
        lines = order.get("lines") or []
        already_partial = bool(order.get("shipments"))
        if len(lines) > 1 and not already_partial and self.rng.random() < 0.3:
            first = lines[0]
            dcl.ship_order(
                number, lines=[{"line_number": first["line_number"], "quantity": first["quantity"]}]
            )
            log.info("traffic: DCL shipped order %s partially", number)
            return
        # Two packages now and then, never more than units left (DCL refuses that: error 13).
        packages = 2 if units_left(order) >= 2 and self.rng.random() < 0.15 else 1
        tracking = [f"1Z{self.rng.randrange(10**15, 10**16)}" for _ in range(packages)]
        dcl.ship_order(number, tracking_numbers=tracking)
        log.info("traffic: DCL shipped order %s", number)

    # -- inbound (flow D) -------------------------------------------------------------------------
    def place_purchase_order(self) -> dict[str, Any]:
        from mienne_ops.sandbox import netsuite_inbound, netsuite_records

        dcl_items = set(self.hub.system("dcl").items)
        skus = [
            s for s in self.hub.catalog.skus if s.item_type == "InvtPart" and s.active and s.sku in dcl_items
        ]
        lines = [
            {"sku": sku.sku, "quantity": self.rng.choice((12, 24, 48, 96))}
            for sku in self.rng.sample(skus, k=min(len(skus), self.rng.randint(1, 3)))
        ]
        world = self.hub.world
        with world.tx() as conn:
            ctx = netsuite_records.Ctx(conn, world.now().strftime("%Y-%m-%dT%H:%M:%SZ"), world.next_id, "")
            due = (world.now() + timedelta(days=self.rng.randint(3, 14))).date().isoformat()
            created = netsuite_inbound.create_order(ctx, "purchaseOrder", {"lines": lines, "dueDate": due})
        log.info("traffic: created NetSuite purchase order %s", created["tranId"])
        return created

    def receive_announced_purchase_orders(self) -> None:
        dcl = self.hub.system("dcl")
        now = datetime.now(UTC)
        for po in dcl.world.list("dcl", "po"):
            number = int(po["dcl_po_number"])
            open_lines = [line for line in po["lines"] if line["quantity"] > line["quantity_received"]]
            if not open_lines:
                continue
            first_seen = self._po_seen.setdefault(number, now)
            if now - first_seen < self.ship_after:
                continue
            self._po_seen[number] = now  # the second part comes one interval later
            if not any(line["quantity_received"] for line in po["lines"]):
                first = open_lines[0]
                part = max(1, first["quantity"] // 2)
                dcl.receive_po_number(number, [{"line_number": first["line_number"], "quantity": part}])
                log.info("traffic: DCL received PO %s partially", number)
            else:
                dcl.receive_po_number(number)
                log.info("traffic: DCL received the rest of PO %s", number)

    # -- subscriptions (flow F) -------------------------------------------------------------------
    def place_subscription_order(self) -> dict[str, Any]:
        """Renew one catalog customer's Recharge subscription (created on first use): the charge is
        processed and the Shopify order it creates enters flow A like any other."""
        recharge, shopify = self.hub.system("recharge"), self.hub.system("shopify")
        person = self.rng.choice(self.hub.catalog.customers)
        known = [c for c in self.hub.world.list("recharge", "customer") if c["email"] == person.email]
        customer = (
            known[0]
            if known
            else recharge.create_customer(
                {
                    "email": person.email,
                    "first_name": person.first_name,
                    "last_name": person.last_name,
                    "shopify_customer_id": str(person.shopify_customer_id),
                    "address": {
                        "address1": person.address["address1"],
                        "address2": person.address["address2"],
                        "city": person.address["city"],
                        "province": person.address["province_code"],
                        "zip": person.address["zip"],
                        "country_code": person.address["country_code"],
                        "phone": person.address["phone"],
                    },
                }
            )
        )
        queued = [
            c
            for c in self.hub.world.list("recharge", "charge")
            if c["status"] == "queued" and c["customer"]["id"] == customer["id"]
        ]
        if not queued:
            item = self.rng.choice(self.hub.catalog.sellable_skus())
            created = recharge.create_subscription(
                {
                    "customer_id": customer["id"],
                    "sku": item.sku,
                    "quantity": self.rng.choice((1, 1, 2)),
                    "price": str(item.price),
                    "order_interval_unit": "month",
                    "order_interval_frequency": 1,
                }
            )
            queued = [created["charge"]]
        charge, order = recharge.process_charge(queued[0]["id"], shopify)
        log.info("traffic: Recharge charge %s renewed as Shopify order %s", charge["id"], order["name"])
        return order

    # -- support tickets (flow F) ---------------------------------------------------------------
    def open_support_ticket(self) -> dict[str, Any] | None:
        """A customer asks Gorgias to cancel an order, or for a refund of one that shipped."""
        if "gorgias" not in self.hub.systems:
            return None
        orders = [
            o
            for o in self.hub.world.list("shopify", "order")
            if o.get("email") and not o.get("cancelled_at") and int(o["id"]) not in self._ticketed
        ]
        if not orders:
            return None
        order = self.rng.choice(orders[-20:])  # one of the latest
        self._ticketed.add(int(order["id"]))
        shipped = order.get("fulfillment_status") == "fulfilled" or bool(order.get("fulfillments"))
        tag, words = (
            ("refund-request", "The parcel arrived but I'd like my money back, please.")
            if shipped
            else ("cancel-order", "I ordered by mistake — could you cancel it before it ships?")
        )
        body = {
            "customer_email": order["email"],
            "customer_name": "A customer",
            "subject": f"Order {order['name']}",
            "body_text": f"Hi! About order {order['name']}: {words}",
            "tags": [tag],
        }
        _, ticket = self.hub.system("gorgias").customer_writes_in({}, body)
        log.info("traffic: customer opened Gorgias ticket %s (%s %s)", ticket.get("id"), tag, order["name"])
        return ticket

    # -- returns (flow F) -------------------------------------------------------------------------
    def ask_for_return(self) -> dict[str, Any] | None:
        """A customer asks to send back a shipped order: by turns in a Gorgias ticket tagged
        ``return-request`` (flow F takes a ticket's return as everything shipped) and as a Shopify
        return request (customer account) for one unit of one line. Orders that already had a
        ticket are left alone (a refunded order has nothing to return)."""
        order = self._returnable_order()
        if order is None:
            return None
        self._ticketed.add(int(order["id"]))
        line = self.rng.choice([li for li in order["line_items"] if li.get("sku")])
        via_shopify = self._returns_asked % 2 == 1 or "gorgias" not in self.hub.systems
        self._returns_asked += 1
        if via_shopify and self._shopify_return_request(order, line):
            return order
        if "gorgias" in self.hub.systems:
            self._return_ticket(order, line)
        return order

    def _returnable_order(self) -> dict[str, Any] | None:
        shipped = [
            o
            for o in self.hub.world.list("shopify", "order")
            if o.get("email")
            and not o.get("cancelled_at")
            and o.get("fulfillment_status") == "fulfilled"
            and o.get("financial_status") == "paid"
            and int(o["id"]) not in self._ticketed
            and any(li.get("sku") for li in o.get("line_items") or [])
        ]
        return self.rng.choice(shipped[-20:]) if shipped else None

    def _return_ticket(self, order: dict[str, Any], line: dict[str, Any]) -> dict[str, Any]:
        words = self.rng.choice(("it doesn't fit", "the colour isn't what I expected", "I changed my mind"))
        body = {
            "customer_email": order["email"],
            "customer_name": "A customer",
            "subject": f"Return for order {order['name']}",
            "body_text": (
                f"Hi! I'd like to send back what I got in order {order['name']} "
                f"({line.get('title') or line['sku']}): {words}. How do I return it?"
            ),
            "tags": ["return-request"],
        }
        _, ticket = self.hub.system("gorgias").customer_writes_in({}, body)
        log.info("traffic: customer asked Gorgias to return %s of %s", line["sku"], order["name"])
        return ticket

    def _shopify_return_request(self, order: dict[str, Any], line: dict[str, Any]) -> bool:
        """A return request in the customer account (the Shopify fake's control plane); False when
        this sandbox has none or Shopify refuses it (the caller writes a ticket instead)."""
        request_return = getattr(self.hub.system("shopify"), "request_return", None)
        if request_return is None:
            return False
        reason = self.rng.choice(("SIZE_TOO_SMALL", "SIZE_TOO_LARGE", "UNWANTED", "COLOR"))  # ReturnReason
        body = {"lines": [{"sku": line["sku"], "quantity": 1, "reason": reason}]}
        try:
            request_return(int(order["id"]), body)
        except Exception as error:  # a refusal (e.g. nothing returnable left): try the helpdesk
            log.info("traffic: Shopify refused a return request on %s: %s", order["name"], error)
            return False
        log.info("traffic: customer requested a return of %s on %s in Shopify", line["sku"], order["name"])
        return True


def units_left(order: dict[str, Any]) -> int:
    """Physical units DCL still has to ship on an order, counted as the DCL fake packs them: a kit
    line is its components (per kit × kits), so a tracking number per package never exceeds them."""
    units = 0
    for line in order.get("lines") or []:
        kits = int(line["quantity"]) - int(line.get("quantity_shipped") or 0)
        per_kit = sum(int(c["quantity"]) for c in line.get("bundle_lines") or []) or 1
        units += max(kits, 0) * per_kit
    return units
