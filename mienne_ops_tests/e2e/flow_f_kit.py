"""Flow F's end-to-end kit: place an order, let the flows settle under faults, ship it, open tickets,
read what each system holds — shared by the cancellation/refund and the return tests."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import httpx
from click.testing import CliRunner

from mienne_ops.cli import main
from mienne_ops.devtools.harness import sandbox_state
from mienne_ops.errors import TransientError
from mienne_ops.resources import shopify_resource
from mienne_ops.sandbox.order_factory import build_order

SENSORS = [
    "shopify_orders_sensor",
    "order_holds_sensor",
    "netsuite_dispatch_sensor",
    "dcl_shipments_sensor",
    "service_requests_sensor",
]
API_FAULTS = {"error_rate": 0.05, "rate_429": 0.03, "burst_length": 2}
FAULTS = {
    "seed": 11,
    **{system: API_FAULTS for system in ("shopify", "netsuite", "dcl", "stateset", "recharge")},
    "gorgias": {**API_FAULTS, "webhook_drop_rate": 0.3, "webhook_duplicate_rate": 0.3},
}
CUSTOMER = "ana.lopez@example.com"


def post(url: str, path: str, body: dict) -> dict:
    response = httpx.post(f"{url}{path}", json=body, timeout=30)
    assert response.status_code in (200, 201), response.text
    return response.json()


def place(stack, seed: int, **changes) -> dict:
    payload = build_order(stack["sandbox"].hub.catalog, random.Random(seed), gift_card=False)
    payload.setdefault("processed_at", (datetime.now(UTC) - timedelta(hours=2)).isoformat())
    payload["email"] = CUSTOMER
    payload.update(changes)
    return post(stack["sandbox"].url, "/_sandbox/shopify/orders", payload)


def settle(stack, rounds: int = 8) -> None:
    post(stack["sandbox"].url, "/_sandbox/faults", FAULTS)
    stack["driver"].settle(SENSORS, rounds=rounds)


def ticket(stack, order_name: str, tags: list[str], email: str = CUSTOMER, text: str = "") -> dict:
    body = {
        "customer_email": email,
        "customer_name": "Ana Lopez",
        "subject": f"About my order {order_name}",
        "body_text": text or f"Hello, please help with order {order_name}. Thanks!",
        "tags": tags,
    }
    return post(stack["sandbox"].url, "/_sandbox/gorgias/tickets", body)


def messages(url: str, ticket_id) -> list[dict]:
    return [m for m in sandbox_state(url)["gorgias"]["messages"] if str(m["ticket_id"]) == str(ticket_id)]


def replies(url: str, ticket_id) -> list[str]:
    return [m["body_text"] for m in messages(url, ticket_id) if m["from_agent"] and m["public"]]


def notes(url: str, ticket_id) -> list[str]:
    return [m["body_text"] for m in messages(url, ticket_id) if m["channel"] == "internal-note"]


def money(order_id):
    with shopify_resource().process_config_and_initialize_cm() as shopify:
        return shopify.client.order_money(str(order_id))


def sales_order(url: str, order_id) -> dict | None:
    external_id = f"shopify-order-{order_id}"
    return next(
        (s for s in sandbox_state(url)["netsuite"]["sales_orders"] if s["externalId"] == external_id), None
    )


def dcl_order(url: str, order_id) -> dict | None:
    so = sales_order(url, order_id)
    if so is None:
        return None
    return next((o for o in sandbox_state(url)["dcl"]["orders"] if o["order_number"] == so["tranId"]), None)


def stateset_order(url: str, order_id) -> dict | None:
    orders = sandbox_state(url)["stateset"]["orders"]
    wanted = f"shopify-order-{order_id}"
    return next((o for o in orders if o["data"]["metadata"].get("external_id") == wanted), None)


def cash_refunds(url: str) -> list[dict]:
    return sandbox_state(url)["netsuite"]["cash_refunds"]


def requests(stack, order_id) -> list:
    return stack["ledger"].requests(shopify_order_id=str(order_id))


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def shipped(stack, order_id) -> None:
    """Ship the whole order at DCL and let flow C book it (item fulfillment, cash sale)."""
    url = stack["sandbox"].url
    dcl = dcl_order(url, order_id)
    assert dcl is not None, "the order should be at DCL"
    post(url, f"/_sandbox/dcl/orders/{dcl['order_number']}/ship", {})
    settle(stack)
    assert stack["ledger"].journey(str(order_id)).cash_sale_id


class Crash(TransientError):
    """The process died here (raised once, right after the write it interrupts)."""


def crash_once(monkeypatch, target, name: str) -> None:
    """``target.name`` does its write, then the process "dies" the first time (a `Crash`)."""
    real = getattr(target, name)
    calls = {"n": 0}

    def dying(*args, **kwargs):
        result = real(*args, **kwargs)  # the write happened; the process dies before noting it
        calls["n"] += 1
        if calls["n"] == 1:
            raise Crash(f"crashed after {name}")
        return result

    monkeypatch.setattr(target, name, dying)
