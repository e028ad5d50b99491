"""Money on a Shopify order in the fake: transactions, refunds, the suggested refund, cancellation.

Shopify keeps an order's money as transactions (SALE, or AUTHORIZATION then CAPTURE, per gateway; a
gift card is its own gateway) and refunds (lines, shipping, and REFUND transactions each pointing at
the sale or capture it gives money back from). The rules enforced here (shopify.md §5, §5.x; the
2026-04 schema's `RefundInput`, `SuggestedRefund`, `OrderCancel*`):

- a line's refundable quantity is its current quantity (ordered − refunded − edited away); a refund
  of more units is refused;
- a refunded line's subtotal is its discounted price (price × quantity − discount allocations) at the
  refunded share, its tax the same share of its tax lines; the last units take what is left, so a
  line refunded in parts adds up to the cent;
- shipping refundable = shipping charged − shipping refunded, its tax in proportion;
- a REFUND transaction takes at most what its parent sale/capture has left (unless
  ``allowOverRefunding``), and the suggested transactions spread a refund over the parents in the
  order they were taken (our design choice: Shopify's own order is not published);
- refunded units leave the order (`current_quantity`) and, when unfulfilled, its open fulfillment
  orders; ``restockType: CANCEL`` may only take unfulfilled units (goods that shipped come back
  through returns);
- financial status: PARTIALLY_REFUNDED while money is left, REFUNDED when none is.

Pure functions over the stored REST order (see `shopify_orders`); the sandbox owns ids, time,
persistence, inventory and webhooks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from mienne_ops.sandbox.catalog import Catalog
from mienne_ops.sandbox.shopify_graphql import gid, parse_gid
from mienne_ops.sandbox.shopify_orders import UserErrors, line_item_node, money, money_bag, money_set

ZERO = Decimal("0")
CENT = Decimal("0.01")
PAYMENT_KINDS = ("sale", "capture")
RESTOCK_TYPES = ("return", "cancel", "no_restock", "legacy_restock")


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def dec(value: Any) -> Decimal:
    return Decimal(str(value if value not in (None, "") else "0"))


# -- transactions ---------------------------------------------------------------------------------
def ensure_money_records(order: dict[str, Any], next_id: Callable[[], int]) -> bool:
    """Give an order stored before refunds existed its transactions and refund list (derived the
    way `default_transactions` derives them for a new order); True when something was added."""
    changed = False
    if "refunds" not in order:
        order["refunds"], changed = [], True
    if "_transactions" not in order:
        from mienne_ops.sandbox.shopify_orders import default_transactions

        order["_transactions"], changed = default_transactions(order, None, next_id), True
    return changed


def payments(order: dict[str, Any]) -> list[dict[str, Any]]:
    """The successful sales and captures: the transactions money can be refunded from."""
    return [
        tx
        for tx in order.get("_transactions") or []
        if tx["kind"] in PAYMENT_KINDS and tx.get("status", "success") == "success"
    ]


def refunded_from(order: dict[str, Any], parent_id: int) -> Decimal:
    return sum(
        (
            dec(tx["amount"])
            for tx in order.get("_transactions") or []
            if tx["kind"] == "refund" and tx.get("status") == "success" and tx.get("parent_id") == parent_id
        ),
        ZERO,
    )


def remaining_on(order: dict[str, Any], payment: dict[str, Any]) -> Decimal:
    return dec(payment["amount"]) - refunded_from(order, payment["id"])


def total_received(order: dict[str, Any]) -> Decimal:
    return sum((dec(tx["amount"]) for tx in payments(order)), ZERO)


def total_refunded(order: dict[str, Any]) -> Decimal:
    return sum(
        (
            dec(tx["amount"])
            for tx in order.get("_transactions") or []
            if tx["kind"] == "refund" and tx.get("status") == "success"
        ),
        ZERO,
    )


def transaction_node(tx: dict[str, Any], order: dict[str, Any]) -> dict[str, Any]:
    currency = tx.get("currency") or order["currency"]
    parent = next((t for t in order.get("_transactions") or [] if t["id"] == tx.get("parent_id")), None)
    when = tx.get("processed_at") or order.get("processed_at") or order["created_at"]
    node = {
        "__typename": "OrderTransaction",
        "id": gid("OrderTransaction", tx["id"]),
        "kind": tx["kind"].upper(),
        "status": (tx.get("status") or "success").upper(),
        "gateway": tx.get("gateway"),
        "formattedGateway": tx.get("gateway"),
        "test": bool(order.get("test")),
        "manualPaymentGateway": False,
        "manuallyCapturable": False,
        "multiCapturable": False,
        "createdAt": tx.get("created_at") or when,
        "processedAt": when,
        "amountSet": money_bag(None, tx["amount"], currency),
        "parentTransaction": transaction_node(parent, order) if parent else None,
        "fees": [],
    }
    if tx["kind"] in PAYMENT_KINDS:
        node["maximumRefundableV2"] = {"amount": money(remaining_on(order, tx)), "currencyCode": currency}
    return node


# -- lines and shipping ---------------------------------------------------------------------------
def line_net(line: dict[str, Any]) -> Decimal:
    """What the line's units were sold for: price × quantity − its discount allocations."""
    discount = sum((dec(a.get("amount")) for a in line.get("discount_allocations") or []), ZERO)
    if not discount:
        discount = dec(line.get("total_discount"))
    return dec(line["price"]) * int(line["quantity"]) - discount


def line_tax(line: dict[str, Any]) -> Decimal:
    return sum((dec(t.get("price")) for t in line.get("tax_lines") or []), ZERO)


def refunded_lines(order: dict[str, Any], line_id: int) -> tuple[int, Decimal, Decimal]:
    """(units, subtotal, tax) already refunded of one line."""
    units, subtotal, tax = 0, ZERO, ZERO
    for refund in order.get("refunds") or []:
        for rli in refund.get("refund_line_items") or []:
            if rli["line_item_id"] == line_id:
                units += int(rli["quantity"])
                subtotal += dec(rli["subtotal"])
                tax += dec(rli["total_tax"])
    return units, subtotal, tax


def refundable_quantity(line: dict[str, Any]) -> int:
    return int(line.get("current_quantity", line["quantity"]))


def line_refund_amounts(
    order: dict[str, Any], line: dict[str, Any], quantity: int
) -> tuple[Decimal, Decimal]:
    """(subtotal, tax) of refunding ``quantity`` units of ``line``: its share, and whatever is
    left when these are its last refundable units (so parts add up to the cent)."""
    units, subtotal_done, tax_done = refunded_lines(order, line["id"])
    ordered = int(line["quantity"]) or 1
    if quantity and quantity == refundable_quantity(line) and units + quantity == ordered:
        return line_net(line) - subtotal_done, line_tax(line) - tax_done
    return cents(line_net(line) * quantity / ordered), cents(line_tax(line) * quantity / ordered)


def shipping_charged(order: dict[str, Any]) -> tuple[Decimal, Decimal]:
    """(shipping, its tax) charged on the order."""
    amount = tax = ZERO
    for ship in order.get("shipping_lines") or []:
        amount += dec(ship.get("discounted_price", ship.get("price")))
        tax += sum((dec(t.get("price")) for t in ship.get("tax_lines") or []), ZERO)
    return amount, tax


def shipping_refunded(order: dict[str, Any]) -> tuple[Decimal, Decimal]:
    amount = tax = ZERO
    for refund in order.get("refunds") or []:
        for line in refund.get("refund_shipping_lines") or []:
            amount += dec(line["subtotal_amount_set"]["shop_money"]["amount"])
            tax += dec(line["tax_amount_set"]["shop_money"]["amount"])
    return amount, tax


# -- the calculation (suggestedRefund and the checks of refundCreate) ------------------------------
@dataclass
class Calculation:
    lines: list[tuple[dict[str, Any], int, Decimal, Decimal]] = field(
        default_factory=list
    )  # line, q, sub, tax
    shipping: Decimal = ZERO
    shipping_tax: Decimal = ZERO
    maximum_shipping: Decimal = ZERO
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def subtotal(self) -> Decimal:
        return sum((sub for _, _, sub, _ in self.lines), ZERO)

    @property
    def tax(self) -> Decimal:
        return sum((tax for _, _, _, tax in self.lines), ZERO) + self.shipping_tax

    def amount(self, taxes_included: bool) -> Decimal:
        return self.subtotal + self.shipping + (ZERO if taxes_included else self.tax)


def calculate(
    order: dict[str, Any],
    refund_lines: list[dict[str, Any]],
    *,
    shipping_amount: Any = None,
    full_shipping: bool = False,
    cap_shipping: bool = True,
) -> Calculation:
    """What refunding these lines and this shipping is worth; problems in ``errors`` (userErrors)."""
    calc = Calculation()
    by_id = {line["id"]: line for line in order["line_items"]}
    asked: dict[int, int] = {}
    for index, item in enumerate(refund_lines):
        line_id = parse_gid(str(item.get("lineItemId")), "LineItem")
        line = by_id.get(line_id or 0)
        where = ["refundLineItems", str(index)]
        if line is None:
            calc.errors.append(_error([*where, "lineItemId"], "Line item does not exist on this order"))
            continue
        quantity = int(item.get("quantity") or 0)
        asked[line["id"]] = asked.get(line["id"], 0) + quantity
        restock = str(item.get("restockType") or "no_restock").lower()
        if quantity < 0:
            calc.errors.append(_error([*where, "quantity"], "Quantity must be greater than or equal to 0"))
        elif asked[line["id"]] > refundable_quantity(line):
            calc.errors.append(
                _error(
                    [*where, "quantity"],
                    f"Quantity cannot refund more items than were purchased ({refundable_quantity(line)} "
                    "refundable)",
                )
            )
        elif restock == "cancel" and asked[line["id"]] > int(line.get("fulfillable_quantity", 0)):
            calc.errors.append(
                _error([*where, "restockType"], "Only unfulfilled items can be restocked with CANCEL")
            )
        else:
            subtotal, tax = line_refund_amounts(order, line, quantity)
            calc.lines.append((line, quantity, subtotal, tax))
    charged, charged_tax = shipping_charged(order)
    done, done_tax = shipping_refunded(order)
    calc.maximum_shipping = charged - done
    if full_shipping:
        calc.shipping, calc.shipping_tax = calc.maximum_shipping, charged_tax - done_tax
    elif shipping_amount not in (None, ""):
        wanted = dec(shipping_amount)
        if wanted < 0:
            calc.errors.append(_error(["shipping", "amount"], "Shipping amount must be positive"))
        elif wanted > calc.maximum_shipping and not cap_shipping:
            calc.errors.append(
                _error(
                    ["shipping", "amount"],
                    f"Shipping amount exceeds the refundable shipping of {money(calc.maximum_shipping)}",
                )
            )
        calc.shipping = min(max(wanted, ZERO), calc.maximum_shipping)
        if calc.shipping == calc.maximum_shipping:
            calc.shipping_tax = charged_tax - done_tax
        elif charged:
            calc.shipping_tax = cents(charged_tax * calc.shipping / charged)
    return calc


def suggested_transactions(order: dict[str, Any], amount: Decimal) -> list[tuple[dict[str, Any], Decimal]]:
    """(parent payment, amount) covering ``amount`` from the payments in the order they were taken."""
    left, chosen = amount, []
    for payment in payments(order):
        if left <= 0:
            break
        take = min(left, remaining_on(order, payment))
        if take > 0:
            chosen.append((payment, take))
            left -= take
    return chosen


def suggested_refund_node(order: dict[str, Any], args: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    """`Order.suggestedRefund(...)`: Shopify's calculation, nothing persisted."""
    currency = order["currency"]
    lines = list(args.get("refundLineItems") or [])
    if args.get("suggestFullRefund"):
        lines = [
            {"lineItemId": gid("LineItem", li["id"]), "quantity": refundable_quantity(li)}
            for li in order["line_items"]
            if refundable_quantity(li)
        ]
    calc = calculate(
        order,
        lines,
        shipping_amount=args.get("shippingAmount"),
        full_shipping=bool(args.get("refundShipping") or args.get("suggestFullRefund")),
    )
    if calc.errors:
        from graphql import GraphQLError

        raise GraphQLError(calc.errors[0]["message"], extensions={"code": "BAD_REQUEST"})
    amount = calc.amount(bool(order.get("taxes_included")))
    maximum = total_received(order) - total_refunded(order)
    return {
        "__typename": "SuggestedRefund",
        "amountSet": money_bag(None, amount, currency),
        "maximumRefundableSet": money_bag(None, maximum, currency),
        "subtotalSet": money_bag(None, calc.subtotal, currency),
        "discountedSubtotalSet": money_bag(None, calc.subtotal, currency),
        "totalTaxSet": money_bag(None, calc.tax, currency),
        "totalCartDiscountAmountSet": money_bag(None, 0, currency),
        "totalDutiesSet": money_bag(None, 0, currency),
        "refundDuties": [],
        "suggestedRefundMethods": [],
        "shipping": {
            "amountSet": money_bag(None, calc.shipping, currency),
            "taxSet": money_bag(None, calc.shipping_tax, currency),
            "maximumRefundableSet": money_bag(None, calc.maximum_shipping, currency),
        },
        "refundLineItems": [
            {
                "__typename": "RefundLineItem",
                "id": None,
                "lineItem": line_item_node(line, catalog, currency),
                "location": None,
                "quantity": quantity,
                "restockType": "NO_RESTOCK",
                "restocked": False,
                "priceSet": money_bag(None, line["price"], currency),
                "subtotalSet": money_bag(None, subtotal, currency),
                "totalTaxSet": money_bag(None, tax, currency),
            }
            for line, quantity, subtotal, tax in calc.lines
        ],
        "suggestedTransactions": [
            {
                "__typename": "SuggestedOrderTransaction",
                "kind": "SUGGESTED_REFUND",
                "gateway": payment.get("gateway"),
                "formattedGateway": payment.get("gateway"),
                "amountSet": money_bag(None, share, currency),
                "maximumRefundableSet": money_bag(None, remaining_on(order, payment), currency),
                "parentTransaction": transaction_node(payment, order),
            }
            for payment, share in suggested_transactions(order, amount)
        ],
    }


# -- creating a refund ----------------------------------------------------------------------------
def check_transactions(
    order: dict[str, Any], transactions: list[dict[str, Any]], allow_over_refunding: bool
) -> list[tuple[dict[str, Any] | None, Decimal, str]]:
    """(parent, amount, gateway) of each REFUND transaction asked; raises UserErrors when one is wrong."""
    checked = []
    taking: dict[int, Decimal] = {}
    for index, tx in enumerate(transactions):
        where = ["transactions", str(index)]
        if str(tx.get("kind") or "").upper() != "REFUND":
            raise UserErrors([*where, "kind"], "Transaction kind must be REFUND")
        amount = dec(tx.get("amount"))
        if amount <= 0:
            raise UserErrors([*where, "amount"], "Amount must be greater than 0")
        parent = None
        if tx.get("parentId"):
            number = parse_gid(str(tx["parentId"]), "OrderTransaction")
            parent = next((p for p in payments(order) if p["id"] == number), None)
            if parent is None:
                raise UserErrors([*where, "parentId"], "Parent transaction does not exist on this order")
            if tx.get("gateway") and tx["gateway"] != parent.get("gateway"):
                raise UserErrors([*where, "gateway"], "Gateway must match the parent transaction's gateway")
            taking[parent["id"]] = taking.get(parent["id"], ZERO) + amount
            if taking[parent["id"]] > remaining_on(order, parent) and not allow_over_refunding:
                raise UserErrors(
                    [*where, "amount"],
                    f"Refund amount exceeds the {money(remaining_on(order, parent))} available to refund "
                    "on the parent transaction",
                )
        elif not allow_over_refunding:
            raise UserErrors([*where, "parentId"], "A refund transaction needs its parent sale or capture")
        checked.append((parent, amount, str(tx.get("gateway") or (parent or {}).get("gateway") or "manual")))
    asked = sum((amount for _, amount, _ in checked), ZERO)
    if asked > total_received(order) - total_refunded(order) and not allow_over_refunding:
        raise UserErrors(
            ["transactions"], "Refund amount exceeds the amount available to refund on the order"
        )
    return checked


def apply_refund(
    order: dict[str, Any],
    request: dict[str, Any],
    *,
    new_id: Callable[[str], int],
    now: str,
) -> tuple[dict[str, Any], dict[int, int]]:
    """Validate and book one refund on ``order`` (in place); returns (REST refund, {line id: units
    to restock}). Raises `UserErrors` (nothing booked) when Shopify would refuse it."""
    if request.get("currency") and str(request["currency"]).upper() != order["currency"]:
        raise UserErrors(["currency"], f"Currency must be the order's currency, {order['currency']}")
    shipping = request.get("shipping") or {}
    calc = calculate(
        order,
        list(request.get("refundLineItems") or []),
        shipping_amount=shipping.get("amount"),
        full_shipping=bool(shipping.get("fullRefund")),
        cap_shipping=False,
    )
    if calc.errors:
        error = UserErrors(None, "")
        error.errors = calc.errors
        raise error
    checked = check_transactions(
        order, list(request.get("transactions") or []), bool(request.get("allowOverRefunding"))
    )
    currency = order["currency"]
    refund_id = new_id("refund")
    restock: dict[int, int] = {}
    refund_line_items = []
    types = {
        parse_gid(str(i.get("lineItemId")), "LineItem"): str(i.get("restockType") or "no_restock").lower()
        for i in request.get("refundLineItems") or []
    }
    for line, quantity, subtotal, tax in calc.lines:
        restock_type = types.get(line["id"], "no_restock")
        if restock_type in ("cancel", "return") and quantity:
            restock[line["id"]] = restock.get(line["id"], 0) + quantity
        refund_line_items.append(
            {
                "id": new_id("refund_line_item"),
                "line_item_id": line["id"],
                "location_id": None,
                "quantity": quantity,
                "restock_type": restock_type,
                "subtotal": money(subtotal),
                "subtotal_set": money_set(subtotal, currency),
                "total_tax": money(tax),
                "total_tax_set": money_set(tax, currency),
                "line_item": {k: v for k, v in line.items() if not k.startswith("_")},
            }
        )
        _remove_units(order, line, quantity, restock_type)
    refund_shipping_lines, adjustments = [], []
    if calc.shipping or calc.shipping_tax:
        ship = (order.get("shipping_lines") or [{}])[0]
        refund_shipping_lines.append(
            {
                "id": new_id("refund_shipping_line"),
                "shipping_line_id": ship.get("id"),
                "subtotal_amount_set": money_set(calc.shipping, currency),
                "tax_amount_set": money_set(calc.shipping_tax, currency),
            }
        )
        adjustments.append(
            {
                "id": new_id("order_adjustment"),
                "order_id": order["id"],
                "refund_id": refund_id,
                "kind": "shipping_refund",
                "reason": "Shipping refund",
                "amount": money(-calc.shipping),
                "amount_set": money_set(-calc.shipping, currency),
                "tax_amount": money(-calc.shipping_tax),
                "tax_amount_set": money_set(-calc.shipping_tax, currency),
            }
        )
    transactions = []
    for parent, amount, gateway in checked:
        tx = {
            "id": new_id("transaction"),
            "order_id": order["id"],
            "kind": "refund",
            "gateway": gateway,
            "status": "success",
            "message": "Refunded",
            "created_at": now,
            "processed_at": now,
            "amount": money(amount),
            "currency": currency,
            "parent_id": parent["id"] if parent else None,
            "authorization": None,
            "error_code": None,
            "receipt": {},
            "test": bool(order.get("test")),
            "admin_graphql_api_id": None,
        }
        tx["admin_graphql_api_id"] = gid("OrderTransaction", tx["id"])
        transactions.append(tx)
    order["_transactions"].extend(transactions)
    refund = {
        "id": refund_id,
        "order_id": order["id"],
        "created_at": now,
        "processed_at": request.get("processedAt") or now,
        "note": request.get("note"),
        "user_id": None,
        "restock": bool(restock),
        "admin_graphql_api_id": gid("Refund", refund_id),
        "refund_line_items": refund_line_items,
        "refund_shipping_lines": refund_shipping_lines,
        "transactions": transactions,
        "order_adjustments": adjustments,
        "duties": [],
        "additional_fees": [],
        "return": None,
    }
    order.setdefault("refunds", []).append(refund)
    settle_financial_status(order)
    return refund, restock


def _remove_units(order: dict[str, Any], line: dict[str, Any], quantity: int, restock_type: str) -> None:
    """Refunded units leave the order, out of its open fulfillment orders when unfulfilled: unfulfilled
    units go first, except for a RETURN, which gives back units that were fulfilled."""
    current = int(line.get("current_quantity", line["quantity"]))
    pending = int(line.get("fulfillable_quantity", 0))
    line["current_quantity"] = current - quantity
    if restock_type == "return":
        unfulfilled = max(0, quantity - (current - pending))
    else:
        unfulfilled = min(quantity, pending)
    line["fulfillable_quantity"] = int(line.get("fulfillable_quantity", 0)) - unfulfilled
    for fo in order.get("_fulfillment_orders") or []:
        if unfulfilled <= 0:
            break
        if fo["status"] in ("closed", "cancelled"):
            continue
        for fo_line in fo["line_items"]:
            if fo_line["line_item_id"] != line["id"] or unfulfilled <= 0:
                continue
            taken = min(unfulfilled, int(fo_line["fulfillable_quantity"]))
            fo_line["fulfillable_quantity"] -= taken
            fo_line["quantity"] -= taken
            unfulfilled -= taken
        if all(int(li["fulfillable_quantity"]) == 0 for li in fo["line_items"]):
            fo["status"] = "closed"
            fo["supported_actions"] = []


def settle_financial_status(order: dict[str, Any]) -> None:
    refunded = total_refunded(order)
    if refunded <= 0:
        return
    order["financial_status"] = "refunded" if refunded >= total_received(order) else "partially_refunded"


# -- presentation ---------------------------------------------------------------------------------
def refund_node(refund: dict[str, Any], order: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    currency = order["currency"]
    lines = {li["id"]: li for li in order["line_items"]}
    total = sum((dec(tx["amount"]) for tx in refund.get("transactions") or []), ZERO)
    ships = {s.get("id"): s for s in order.get("shipping_lines") or []}
    return {
        "__typename": "Refund",
        "id": refund["admin_graphql_api_id"],
        "legacyResourceId": str(refund["id"]),
        "createdAt": refund["created_at"],
        "processedAt": refund.get("processed_at") or refund["created_at"],
        "updatedAt": refund["created_at"],
        "note": refund.get("note"),
        "duties": [],
        "return": None,
        "staffMember": None,
        "order": lambda info, **_: _order_node(order, catalog),
        "totalRefundedSet": money_bag(None, total, currency),
        "totalRefunded": {"amount": money(total), "currencyCode": currency},
        "refundLineItems": [
            {
                "__typename": "RefundLineItem",
                "id": gid("RefundLineItem", rli["id"]),
                "lineItem": line_item_node(
                    lines.get(rli["line_item_id"], rli["line_item"]), catalog, currency
                ),
                "location": None,
                "quantity": rli["quantity"],
                "restockType": rli["restock_type"].upper(),
                "restocked": rli["restock_type"] in ("cancel", "return"),
                "priceSet": money_bag(None, rli["line_item"].get("price"), currency),
                "subtotalSet": money_bag(rli["subtotal_set"]),
                "totalTaxSet": money_bag(rli["total_tax_set"]),
            }
            for rli in refund.get("refund_line_items") or []
        ],
        "refundShippingLines": [
            {
                "__typename": "RefundShippingLine",
                "id": gid("RefundShippingLine", rsl["id"]),
                "shippingLine": _shipping_line_node(ships.get(rsl.get("shipping_line_id")) or {}, currency),
                "subtotalAmountSet": money_bag(rsl["subtotal_amount_set"]),
                "taxAmountSet": money_bag(rsl["tax_amount_set"]),
            }
            for rsl in refund.get("refund_shipping_lines") or []
        ],
        "transactions": [transaction_node(tx, order) for tx in refund.get("transactions") or []],
        "orderAdjustments": [],
    }


def _order_node(order: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    from mienne_ops.sandbox.shopify_orders import order_node

    return order_node(order, catalog)


def _shipping_line_node(ship: dict[str, Any], currency: str) -> dict[str, Any]:
    return {
        "__typename": "ShippingLine",
        "id": gid("ShippingLine", ship.get("id") or 0),
        "code": ship.get("code"),
        "title": ship.get("title") or "",
        "source": ship.get("source"),
        "originalPriceSet": money_bag(None, ship.get("price"), currency),
        "discountedPriceSet": money_bag(None, ship.get("discounted_price", ship.get("price")), currency),
        "taxLines": [],
    }


def _error(field: list[str] | None, message: str) -> dict[str, Any]:
    return {"field": field, "message": message, "code": None}
