"""What the customer and the support team are told along a return, as plain text (pure, tested as text).

Same rules as `replies`: public replies say what to do next and by when, with money to the cent and
its currency, never an internal id; the internal note carries the ids. ``lines`` are
``(item, quantity)`` pairs where ``item`` is what the customer recognises (the product title, or the
SKU when no title is known).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal

from mienne_ops.domain.money import cents
from mienne_ops.domain.refund_policy import Decision, Verdict
from mienne_ops.domain.replies import MONEY_ARRIVES

Lines = Sequence[tuple[str, int]]


def items_text(lines: Lines) -> str:
    """``2 × Linen Shirt, 1 × Silk Scarf``."""
    return ", ".join(f"{quantity} × {item}" for item, quantity in lines if quantity > 0)


def packing_list(lines: Lines) -> str:
    return "\n".join(f"- {quantity} × {item}" for item, quantity in lines if quantity > 0)


def day_text(day: date) -> str:
    """``Sunday, December 20, 2026`` (English whatever the machine's locale)."""
    return f"{_WEEKDAYS[day.weekday()]}, {_MONTHS[day.month - 1]} {day.day}, {day.year}"


def service_text(carrier: str, service: str) -> str:
    """``USPS``, ``GROUND ADVANTAGE`` -> ``USPS Ground Advantage`` (the label's name for customers)."""
    words = f"{carrier} {service}".split()
    return " ".join(_ACRONYMS.get(word.upper(), word.capitalize()) for word in words)


def money_text(amount: Decimal, currency: str) -> str:
    return f"{cents(amount):.2f} {currency.upper()}"


def label_sent_reply(
    order_name: str, lines: Lines, label_url: str, carrier_service: str, deadline: date
) -> str:
    return (
        f"Your return for order {order_name} is approved. Here is what to do:\n\n"
        f"1. Pack these items, unworn and with their tags:\n{packing_list(lines)}\n"
        f"2. Print your prepaid {carrier_service} return label: {label_url}\n"
        "3. Stick it on the parcel and drop it off at a post office or carrier drop-off point "
        f"by {day_text(deadline)}.\n\n"
        "We will write again when your parcel reaches us, and refund you to your original payment "
        "method once we have checked the items."
    )


def no_label_reply(order_name: str, lines: Lines, deadline: date, return_address_text: str) -> str:
    return (
        f"Your return for order {order_name} is approved. We cannot provide a prepaid label for your "
        "country, so please send the parcel yourself:\n\n"
        f"1. Pack these items, unworn and with their tags:\n{packing_list(lines)}\n"
        f"2. Write your order number {order_name} on a note inside the parcel.\n"
        f"3. Send it by {day_text(deadline)} to:\n{return_address_text}\n\n"
        "Please use a tracked service and keep the receipt and tracking number — reply to this message "
        "with the tracking number once it is on its way. We will refund you once the items reach us."
    )


def reminder_reply(order_name: str, label_url: str, deadline: date) -> str:
    return (
        f"A quick reminder: we have not yet received the return for order {order_name}. Your prepaid "
        f"label is here: {label_url}\n"
        f"Please drop the parcel off by {day_text(deadline)}. If you have already sent it, thank you — "
        "there is nothing more to do. If you changed your mind, just ignore this message."
    )


def received_reply(order_name: str, lines_received: Lines, under_review: Lines = ()) -> str:
    text = f"Good news: your return for order {order_name} has arrived ({items_text(lines_received)})."
    if under_review:
        return (
            f"{text} Some items ({items_text(under_review)}) need a closer look by our team; we will be "
            "in touch about them shortly."
        )
    return f"{text} We are checking it now and will refund you shortly."


def refunded_reply(
    order_name: str, amount: Decimal, currency: str, lines: Lines, instant: bool = False
) -> str:
    why = (
        "We have not waited for your parcel to reach us: " if instant else "Thanks for sending your return: "
    )
    return (
        f"{why}we have refunded {money_text(amount, currency)} for {items_text(lines)} from order "
        f"{order_name} to your original payment method. {MONEY_ARRIVES}"
    )


def partial_refund_reply(
    order_name: str, amount: Decimal, currency: str, refunded: Lines, outstanding: Lines
) -> str:
    """Some items arrived and are refunded; the rest (``outstanding``) will be when they arrive."""
    text = (
        f"We have received part of your return for order {order_name} and refunded "
        f"{money_text(amount, currency)} for {items_text(refunded)} to your original payment method. "
        f"{MONEY_ARRIVES}"
    )
    if outstanding:
        text += (
            f" We have not received {items_text(outstanding)} yet; we will refund them as soon as they "
            "arrive. If they were not in your parcel, please send them too."
        )
    return text


def expired_reply(order_name: str) -> str:
    return (
        f"The return for order {order_name} has expired: its deadline passed and we did not receive "
        "the parcel, so the label no longer works. If you still want to return your items, or you "
        "already sent them, just reply to this message and we will help."
    )


def refused_return_reply(order_name: str, decision: Decision) -> str:
    """Why a return cannot go ahead (the decision's reasons are written for the customer)."""
    reasons = "; ".join(decision.reasons) or "it does not meet our return policy"
    if decision.code == "not_requester":
        return f"We could not start a return: {reasons}."
    text = f"We are sorry, but we could not accept the return for order {order_name}: {reasons}."
    if (
        decision.code in ("too_many", "final_sale", "unknown_sku", "outside_window")
        and len(decision.reasons) == 1
    ):
        text += " If you would like to return other items from this order, just reply and tell us which."
    return text


def return_note_text(return_key: str, facts: Mapping[str, object], decision: Decision | None = None) -> str:
    """The internal note: what was decided, why, and every record id (empty values left out)."""
    lines = [f"mienne-ops return {return_key}"]
    if decision is not None and decision.verdict != Verdict.PROCEED:
        lines.append(
            f"{decision.verdict}: {'; '.join(decision.reasons)}"
            + (f" [{decision.code}]" if decision.code else "")
        )
    lines += [f"{name}: {value}" for name, value in sorted(facts.items()) if value not in (None, "")]
    return "\n".join(lines)


_ACRONYMS = {"USPS": "USPS", "UPS": "UPS", "DHL": "DHL", "FEDEX": "FedEx"}
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
