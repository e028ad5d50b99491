"""Mienne's business configuration as a Dagster resource: mapping tables and policies.

What a connector user configures (Celigo's mapping tables, the NetSuite Connector's maps): where
orders are booked, which Shopify shipping method is which NetSuite ship method and DCL
carrier/service, which NetSuite location each DCL warehouse is, the service items for tax and gift
cards, when a cash sale is created, the tag that marks an imported order, and the look-back of the
reconciliation poll. The defaults describe the sandbox's seed catalog; production overrides them in
the launchpad or through `definitions.py`.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal, InvalidOperation

import dagster as dg
from pydantic import model_validator

from mienne_ops.domain.holds import HoldPolicy, pre_order_dates
from mienne_ops.domain.refund_policy import RefundPolicy
from mienne_ops.domain.return_policy import InstantTrigger, LabelService, ReturnPolicy
from mienne_ops.domain.ticket_rules import TicketRules

#: Where alerts can go (`flows.alerts` has a sender for each).
ALERT_DESTINATIONS = frozenset({"slack", "email"})
#: The steps of a return the ticket is tagged at (`return_ticket_tags` keys).
RETURN_TICKET_STEPS = frozenset({"label_sent", "received", "refunded", "expired", "refused"})


class BusinessRules(dg.ConfigurableResource):
    # Flow A: Shopify -> NetSuite sales order
    imported_tag: str = "SENT_TO_NS"
    netsuite_location_id: int = 1
    tax_item_id: int = 900
    gift_card_item_id: int = 901
    discount_item_id: int = 902
    # Money that is no product: each on its own NetSuite service item (seeded in the sandbox).
    tip_item_id: int = 903
    duty_item_id: int = 904
    gift_card_sale_item_id: int = 905  # a gift card bought on the order (a liability; never shipped)
    rounding_item_id: int = 906  # cent remainders of rates, and a gap to Shopify within tolerance
    # Test orders (`test: true`, bogus gateway / test mode) are skipped unless this is on.
    import_test_orders: bool = False
    # The shop's IANA time zone (Shopify `shop.ianaTimezone`): tranDate is the shop's calendar day.
    shop_timezone: str = "America/New_York"
    # Shopify shipping line code (or lower-cased title) -> NetSuite shipMethod id
    ship_methods: dict[str, int] = {
        "standard": 101,
        "standard shipping": 101,
        "express": 102,
        "express shipping": 102,
        "overnight": 103,
        "canada-post": 104,
        "canada post expedited": 104,
        "usps-priority": 105,
        "usps priority mail": 105,
    }
    # An unmapped Shopify method is an exception (`unmapped_ship_method`), never a default method.
    # PO boxes: the methods whose carrier delivers to them; another method on a PO-box address is
    # switched to the country's PO-box method, or quarantined (`po_box_unsupported`) without one.
    po_box_ship_method_ids: list[int] = [104, 105]
    po_box_ship_method_by_country: dict[str, int] = {"US": 105, "CA": 104}
    # Countries the 3PL ships to; other destinations are quarantined (`unsupported_destination`).
    allowed_countries: list[str] = ["US", "CA"]
    # Bad input: an order in another currency than the shop's, or with more units on a line than
    # this, is quarantined (`unexpected_currency`, `absurd_quantity`) instead of booked and shipped.
    shop_currency: str = "USD"
    max_line_quantity: int = 100
    # The one tolerance between the planned sales order and Shopify's current total (shop money).
    # A gap up to it (multi-currency conversions, shares of partly refunded lines) is booked on the
    # rounding line, so NetSuite's total equals Shopify's; a larger gap quarantines the order.
    total_tolerance: str = "0.05"
    # OneWorld accounts: the (primary) subsidiary new customers are created in (NetSuite requires one
    # there; None = not OneWorld, the field is not sent).
    netsuite_subsidiary_id: int | None = None
    # Flow B: NetSuite -> DCL
    dcl_warehouse: str = "FR"
    # NetSuite shipMethod id -> "CARRIER/SERVICE" at DCL
    dcl_ship_methods: dict[str, str] = {
        "101": "UPS/GROUND",
        "102": "FEDEX/2DAY",
        "103": "FEDEX/OVERNIGHT",
        "104": "CANADAPOST/EXPEDITED",
        "105": "USPS/PRIORITY",
    }
    rush_ship_method_ids: list[int] = [103]
    dispatch_batch_size: int = 200
    # An order DCL cancelled because it was held after dispatch is sent again when released. DCL
    # refuses an order number it holds; whether it takes a *cancelled* order's number again is not
    # documented (dcl.md §4, §13): "suffix" sends <number>-R1, -R2… (safe either way; flow C follows
    # the new number), "same_number" reuses the number (only if DCL is known to accept it).
    dcl_resend_cancelled_as: str = "suffix"
    # Flow C: DCL -> NetSuite / StateSet / Shopify
    netsuite_location_by_warehouse: dict[str, int] = {"FR": 1, "LA": 2}
    # on_full_shipment | on_each_shipment | never
    cash_sale_policy: str = "on_full_shipment"
    # Payment method / deposit account set on each cash sale (None = the form's defaults); some
    # accounts make Payment Method mandatory (NetSuite standard ids: 1 Cash … 5 VISA).
    cash_sale_payment_method_id: int | None = None
    cash_sale_account_id: int | None = None
    # NetSuite shipMethod id -> package sublist of its item fulfillments, for ship methods with a
    # UPS / FedEx carrier integration ("packageUps" / "packageFedEx"); others use "package".
    # Must match NetSuite's setup: a sublist the form lacks is dropped with its tracking numbers.
    netsuite_package_sublists: dict[str, str] = {}
    notify_customer_on_fulfillment: bool = False
    # What flow C bills a shipped sales order with: "cashSale" (prepaid web orders) or "invoice"
    # (customers on terms); either is keyed by externalId (cashsale-so-<id> / invoice-so-<id>).
    billing_record: str = "cashSale"
    # Books side of refunds (domain/refund_books.py, README "Refunds in NetSuite"). "cash_sale":
    # the cash sale / invoice is transformed into the cash refund / credit memo; "return_authorization":
    # sales order -> approved RMA (no receipt) -> cash refund / credit memo, for accounts where the
    # direct transform is refused.
    netsuite_refund_source: str = "cash_sale"
    # Shipping refunded on this service item's line instead of the `shippingCost` header field
    # (accounts whose cash refund / credit memo forms have no shipping cost); None = the header field.
    refund_shipping_item_id: int | None = None
    # Refunds of an amount without lines, and the cents a rate cannot carry (10.00 over 3 units).
    refund_adjustment_item_id: int | None = 907
    # Payment method of customer refunds paying out credit memos (None = the form's default).
    customer_refund_payment_method_id: int | None = None
    # Flow D: inbound (POs / TOs -> DCL ASNs, DCL receipts -> item receipts)
    inbound_orders_per_run: int = 50
    inbound_receipts_lookback_days: int = 2
    inbound_stuck_hours: int = 4
    # What DCL does with a new reference_transaction_number for a PO it already holds (undocumented,
    # dcl.md §8.1): "update_in_place" (it updates that PO: an edit is sent as the next version) or
    # "cancel_and_replace" (it would create a second PO: the old one is cancelled first, in eFactory,
    # since DCL's API has no cancel for PO notifications; then the open quantities go out as a new PO).
    dcl_asn_updates: str = "update_in_place"
    # Sensors
    reconcile_every_seconds: int = 300
    reconcile_lookback_minutes: int = 120
    # The repair sweep (`sync.repair`, every 10 min): journeys changed within this many days are
    # compared with the vendors; one changed less than the grace ago is left to its flow.
    repair_window_days: int = 14
    repair_grace_minutes: int = 15
    # Inbox retention: webhook payloads (names, emails, addresses) older than this are redacted by
    # `mienne-ops ledger purge`; their event ids stay, so a late redelivery is still a duplicate.
    inbox_payload_retention_days: int = 30
    shipment_lookback_minutes: int = 30
    # A shipment waiting on a Shopify fulfillment order that is on hold or scheduled is re-tried at
    # most this often (a hold can last days; every other retrying exception goes on every tick).
    waiting_fulfillment_recheck_seconds: int = 300
    orders_per_run: int = 100
    # Flow A reads a run's orders with one Shopify bulk operation (instead of ~63 cost points each)
    # from this many orders on (a reconciliation poll after an outage, a burst); fewer are read one
    # by one, since a bulk operation takes a while on a real store. 0 turns the bulk read off.
    bulk_read_min_orders: int = 50
    # Records handled at once inside a run: hides API latency; each client still caps its own
    # concurrency (NetSuite's account pool), so this is not a way around the vendors' limits.
    parallel_records: int = 4
    # Flow E: inventory (partitions are the DCL warehouse codes of `netsuite_location_by_warehouse`)
    shopify_location_by_warehouse: dict[str, int] = {"FR": 60_000_000_001, "LA": 60_000_000_002}
    inventory_buffer_by_location: dict[str, int] = {"FR": 2, "LA": 2}
    inventory_buffer_by_sku: dict[str, int] = {}
    inventory_default_buffer: int = 2
    inventory_low_stock_threshold: int = 3
    # Reconciliation: differences of at most `tolerance` units are ignored; more mismatched
    # SKU-locations than `warn` warns, more than `fail` fails the check.
    inventory_discrepancy_tolerance: int = 0
    inventory_discrepancy_warn: int = 0
    inventory_discrepancy_fail: int = 25
    # Holds before dispatch (domain/holds.py; README "Holds before dispatch"). Evaluated at import and
    # on every orders/updated of a held order; flow B sends only orders without an active hold.
    holds_enabled: bool = True
    hold_edit_window_minutes: int = 30  # from Shopify's processedAt; 0 turns the window off
    hold_fraud_level: str | None = "HIGH"  # Shopify risk level that holds ("MEDIUM", "HIGH"; None: off)
    hold_value_threshold: str | None = None  # order total (shop currency) above which a person reviews
    hold_pre_order_skus: dict[str, str] = {}  # SKU -> ISO date it can ship
    hold_pre_order_tags: dict[str, str] = {}  # order tag -> ISO date
    hold_check_addresses: bool = True
    # How often the holds sensor reads Shopify for holds released in the admin (one read per held order).
    hold_shopify_check_seconds: int = 300
    # How long a hold may last before the `held_orders` check fails (hours, per reason); pre-orders
    # wait for their date and have none.
    hold_sla_hours: dict[str, float] = {
        "edit_window": 2,
        "fraud_risk": 24,
        "address": 72,
        "high_value": 24,
        "manual": 72,
    }
    # Flow F: cancellations and refunds (domain/refund_policy.py; README "Cancellations and refunds").
    refund_window_days: int = 60  # refunds are possible this long after the order
    refund_approval_above: str | None = "150.00"  # a refund above this waits for a person; None: never
    refund_approve_repeat: bool = True  # a second refund on the same order waits for a person
    # Subscription orders whose charge Recharge processed are refunded on Recharge, which took the
    # money (False: Shopify Checkout takes subscription payments and every refund goes through Shopify).
    refund_subscriptions_on_recharge: bool = True
    # Ticket tags (or macros adding them) that make a support ticket a request.
    ticket_cancel_tags: list[str] = ["cancel-order"]
    ticket_refund_tags: list[str] = ["refund-request"]
    ticket_cancel_subscription_tags: list[str] = ["cancel-subscription"]
    ticket_skip_subscription_tags: list[str] = ["skip-subscription"]
    ticket_done_tag: str = "mienne-handled"
    # How often open requests waiting for billing, and the helpdesks (for lost HTTP-integration
    # calls) and Shopify refunds (for lost refunds/create webhooks), are polled.
    requests_poll_seconds: int = 300
    requests_lookback_hours: int = 24
    # Flow F, returns (domain/return_policy.py; README "Returns"). The window counts calendar days in
    # `shop_timezone` from delivery, or from fulfillment plus the transit allowance when the carrier's
    # delivery date is unknown (DCL does not report it for every carrier).
    return_window_days: int = 30
    return_transit_allowance_days: int = 7
    # Final sale (refused with the SKU named): by SKU, or by a product tag merchandisers already set.
    return_final_sale_skus: list[str] = []
    return_final_sale_tags: list[str] = ["final-sale"]
    # Destination country (ISO-2) -> [carrier, service] of DCL's prepaid return label. US and Canada
    # need different carriers; a country not here gets no label: the customer ships to
    # `return_address_text` and a person is told (an exception).
    return_label_services: dict[str, list[str]] = {
        "US": ["USPS", "GROUND ADVANTAGE"],
        "CA": ["CANADA POST", "EXPEDITED PARCEL"],
    }
    # Days after the label was sent: reminders while the parcel has not been handed to the carrier,
    # then the return expires (records closed everywhere, the ticket told). Reminders come first.
    return_reminder_days: list[int] = [3, 7]
    return_expiry_days: int = 14
    # Instant refunds (at the carrier's first scan, before DCL receives the parcel) for returns worth
    # at most this much (shop currency; None: never) from customers with at least this many orders
    # and no refused or expired return before: they wait days less, at a risk bounded by the limit.
    return_instant_refund_max: str | None = "50.00"
    return_instant_refund_min_orders: int = 2
    # "first_scan" refunds at the carrier's first scan; "label_created" as soon as the label exists
    # (for when DCL's RMA status turns out not to report scans: unverified).
    return_instant_trigger: str = "first_scan"
    # Damaged goods are written off; refunded anyway (True) or left to a person (an exception).
    return_refund_damaged: bool = False
    # The `returns` asset check fails for a return received but not refunded after this long.
    return_refund_sla_hours: int = 24
    # Where customers outside the label countries send their parcel (DCL's Fremont warehouse).
    return_address_text: str = (
        "Mienne Returns\nc/o DCL Logistics\n48641 Milmont Drive\nFremont, CA 94538\nUnited States"
    )
    # DCL RMA codes, configured per DCL account (dcl.md §9): the RMA type, and the disposition
    # (2 Return To Stock: DCL puts good units back; damaged ones are reported by condition).
    dcl_rma_type: str = "T01"
    dcl_rma_disposition: int = 2
    # NetSuite location damaged returns are received into (a write-off / quarantine location); None:
    # damaged units are not received into stock at all, only written off.
    return_writeoff_location_id: str | None = None
    # The returns sensor polls DCL RMAs this often, reading receipts this far back (a restart or an
    # outage shorter than the look-back loses nothing; received quantities are cumulative anyway).
    returns_poll_seconds: int = 60
    returns_lookback_hours: int = 72
    # Ticket tags (or macros adding them) that make a support ticket a return request.
    ticket_return_tags: list[str] = ["return-request"]
    # Tags put on the ticket at each step of a return, so agents and helpdesk views can follow it.
    return_ticket_tags: dict[str, str] = {
        "label_sent": "return-label-sent",
        "received": "return-received",
        "refunded": "return-refunded",
        "expired": "return-expired",
        "refused": "return-refused",
    }
    # Alerts (flows/alerts.py): where they go and when a condition is an incident. Slack's token and
    # channel and the SMTP relay come from the environment (README "Alerts"); the sandbox otherwise.
    alert_destinations: list[str] = ["slack", "email"]
    alert_dagster_ui_url: str = "http://127.0.0.1:3000"  # links to runs and to the exceptions view
    alert_exception_threshold: int = 5  # new exceptions of one flow and reason within the window
    alert_exception_window_minutes: int = 60
    alert_slo_paid_to_dcl_minutes: int = 120  # first seen → a DCL order (the edit window included)
    alert_slo_shipped_to_tracking_minutes: int = 60  # DCL shipment recorded → tracking on Shopify
    # return received → refunded: `return_refund_sla_hours`
    alert_integration_poll_seconds: int = 300  # Shopify webhook subscriptions, Gorgias integrations
    # SLOs (`slo` asset, README "Metrics and SLOs"): p95 targets in seconds over the last window.
    # Sales order -> DCL includes flow B's edit window (``hold_edit_window_minutes``) on purpose.
    slo_window_hours: int = 24
    slo_webhook_to_sales_order_p95_seconds: float = 60
    slo_sales_order_to_dcl_p95_seconds: float = 45 * 60
    slo_shipment_to_tracking_p95_seconds: float = 5 * 60

    @model_validator(mode="after")
    def _check_returns(self) -> BusinessRules:
        """A bad return knob fails at load, not on the first customer's return."""
        self.return_policy()
        missing = sorted(RETURN_TICKET_STEPS - set(self.return_ticket_tags))
        if missing:
            raise ValueError(f"return_ticket_tags needs a tag for {', '.join(missing)}")
        if self.return_refund_sla_hours <= 0 or self.returns_poll_seconds < 0:
            raise ValueError("return_refund_sla_hours is positive and returns_poll_seconds not negative")
        if self.returns_lookback_hours <= 0:
            raise ValueError("returns_lookback_hours is positive")
        return self

    @model_validator(mode="after")
    def _check_alerts(self) -> BusinessRules:
        """A misspelt destination or a negative threshold fails at load, not when an alert is due."""
        unknown = sorted(set(self.alert_destinations) - ALERT_DESTINATIONS)
        if unknown:
            raise ValueError(f"alert_destinations are among {sorted(ALERT_DESTINATIONS)}, not {unknown}")
        if (
            self.alert_exception_threshold < 1
            or min(
                self.alert_exception_window_minutes,
                self.alert_slo_paid_to_dcl_minutes,
                self.alert_slo_shipped_to_tracking_minutes,
                self.alert_integration_poll_seconds,
            )
            < 0
        ):
            raise ValueError("alert thresholds are positive and alert windows and SLOs not negative")
        return self

    def hold_policy(self) -> HoldPolicy:
        return HoldPolicy(
            edit_window=timedelta(minutes=self.hold_edit_window_minutes),
            fraud_hold_level=self.hold_fraud_level,
            value_threshold=Decimal(self.hold_value_threshold) if self.hold_value_threshold else None,
            pre_order_skus=pre_order_dates(self.hold_pre_order_skus.items()),
            pre_order_tags=pre_order_dates(self.hold_pre_order_tags.items()),
            shop_timezone=self.shop_timezone,
            check_addresses=self.hold_check_addresses,
        )

    def refund_policy(self) -> RefundPolicy:
        return RefundPolicy(
            refund_window_days=self.refund_window_days,
            approval_above=Decimal(self.refund_approval_above) if self.refund_approval_above else None,
            approve_repeat_refunds=self.refund_approve_repeat,
        )

    def return_policy(self) -> ReturnPolicy:
        """The return policy of these rules; a ValueError says which knob is wrong."""
        trigger = self.return_instant_trigger.strip().lower()
        if trigger not in set(InstantTrigger):
            raise ValueError(
                f"return_instant_trigger is one of {', '.join(InstantTrigger)}, "
                f"not {self.return_instant_trigger!r}"
            )
        services = {}
        for country, pair in self.return_label_services.items():
            if len(pair) != 2 or not all(part.strip() for part in pair):
                raise ValueError(f"return_label_services[{country!r}] is [carrier, service], not {pair!r}")
            services[country.strip().upper()] = LabelService(pair[0].strip(), pair[1].strip())
        try:
            instant_max = (
                Decimal(self.return_instant_refund_max)
                if self.return_instant_refund_max is not None
                else None
            )
        except InvalidOperation as exc:
            raise ValueError(
                f"return_instant_refund_max is an amount like 50.00, not {self.return_instant_refund_max!r}"
            ) from exc
        return ReturnPolicy(
            window_days=self.return_window_days,
            transit_allowance_days=self.return_transit_allowance_days,
            final_sale_skus=frozenset(self.return_final_sale_skus),
            final_sale_tags=frozenset(tag.strip().lower() for tag in self.return_final_sale_tags),
            label_services=services,
            reminder_days=tuple(self.return_reminder_days),
            expiry_days=self.return_expiry_days,
            instant_refund_max=instant_max,
            instant_refund_min_orders=self.return_instant_refund_min_orders,
            instant_trigger=InstantTrigger(trigger),
            refund_damaged=self.return_refund_damaged,
            timezone=self.shop_timezone,
        )

    def ticket_rules(self) -> TicketRules:
        def lowered(tags: list[str]) -> frozenset[str]:
            return frozenset(tag.lower() for tag in tags)

        return TicketRules(
            cancel_tags=lowered(self.ticket_cancel_tags),
            refund_tags=lowered(self.ticket_refund_tags),
            cancel_subscription_tags=lowered(self.ticket_cancel_subscription_tags),
            skip_subscription_tags=lowered(self.ticket_skip_subscription_tags),
            return_tags=lowered(self.ticket_return_tags),
        )

    @property
    def tolerance(self) -> Decimal:
        return Decimal(self.total_tolerance)

    def dcl_carrier_service(self, ship_method_id: int) -> tuple[str, str] | None:
        value = self.dcl_ship_methods.get(str(ship_method_id))
        if not value:
            return None
        carrier, _, service = value.partition("/")
        return carrier, service
