"""The Recharge fake's rules, one test per item of recharge.md's fidelity checklist (and refunds)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import httpx
import pytest

from mienne_ops.integrations.recharge import verify_webhook
from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.server import SandboxServer

HEADERS = {
    "X-Recharge-Access-Token": credentials.RECHARGE["access_token"],
    "X-Recharge-Version": "2021-11",
}
EASTERN = ZoneInfo("America/New_York")
SKU = "MN-SERUM-001"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """Recharge with Shopify beside it: processing a charge creates a Shopify order."""
    db = tmp_path_factory.mktemp("recharge") / "world.db"
    modules = ("mienne_ops.sandbox.shopify", "mienne_ops.sandbox.recharge")
    with SandboxServer(db, modules=modules) as running:
        yield running


@pytest.fixture
def url(server) -> Iterator[str]:
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    yield server.url
    httpx.post(f"{server.url}/_sandbox/faults", json={"clear": True})


def api(url: str, method: str, path: str, **kwargs) -> httpx.Response:
    headers = {**HEADERS, **kwargs.pop("headers", {})}
    return httpx.request(method, f"{url}/recharge/{path}", headers=headers, timeout=30, **kwargs)


def customer(url: str, email: str = "ava@example.com", shopify_id: str | None = "9001") -> dict:
    body = {"email": email, "first_name": "Ava", "last_name": "Garcia", "shopify_customer_id": shopify_id}
    response = httpx.post(f"{url}/_sandbox/recharge/customers", json=body)
    assert response.status_code == 201, response.text
    return response.json()["customer"]


def subscription(url: str, customer_id: int, **overrides) -> dict:
    body = {
        "customer_id": customer_id,
        "sku": SKU,
        "quantity": 1,
        "price": "24.00",
        "order_interval_unit": "month",
        "order_interval_frequency": 1,
        **overrides,
    }
    response = httpx.post(f"{url}/_sandbox/recharge/subscriptions", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def paid_charge(url: str, price: str = "24.00", quantity: int = 2) -> dict:
    owner = customer(url)
    created = subscription(url, owner["id"], price=price, quantity=quantity)
    response = httpx.post(f"{url}/_sandbox/recharge/charges/{created['charge']['id']}/process")
    assert response.status_code == 200, response.text
    return response.json()["charge"]


def test_token_and_version_headers_are_required(url):
    assert api(url, "GET", "customers", headers={"X-Recharge-Access-Token": ""}).status_code == 401
    wrong = api(url, "GET", "customers", headers={"X-Recharge-Access-Token": "sk_wrong"})
    assert wrong.status_code == 401 and isinstance(wrong.json()["errors"], str)
    no_version = httpx.get(
        f"{url}/recharge/customers", headers={"X-Recharge-Access-Token": HEADERS["X-Recharge-Access-Token"]}
    )
    assert no_version.status_code == 400
    assert no_version.json() == {"errors": "X-Recharge-Version header required"}
    assert api(url, "GET", "customers", headers={"X-Recharge-Version": "2021-01"}).status_code == 400
    assert api(url, "GET", "customers").status_code == 200


def test_lists_are_cursor_envelopes_with_limit_default_50_and_max_250(url):
    for index in range(52):
        customer(url, f"c{index:02d}@example.com")
    first = api(url, "GET", "customers").json()
    assert set(first) == {"customers", "next_cursor", "previous_cursor"}
    assert len(first["customers"]) == 50 and first["previous_cursor"] is None and first["next_cursor"]
    second = api(url, "GET", "customers", params={"cursor": first["next_cursor"], "limit": 50}).json()
    assert len(second["customers"]) == 2 and second["next_cursor"] is None and second["previous_cursor"]
    back = api(url, "GET", "customers", params={"cursor": second["previous_cursor"]}).json()
    assert [c["id"] for c in back["customers"]] == [c["id"] for c in first["customers"]]
    too_many = api(url, "GET", "customers", params={"limit": 251})
    assert too_many.status_code == 422 and "limit" in too_many.json()["errors"]
    assert len(api(url, "GET", "customers", params={"limit": 250}).json()["customers"]) == 52


def test_with_a_cursor_only_cursor_and_limit_count(url):
    owner = customer(url)
    subs = [subscription(url, owner["id"])["subscription"] for _ in range(3)]
    api(url, "POST", f"subscriptions/{subs[0]['id']}/cancel", json={"cancellation_reason": "price"})
    page = api(url, "GET", "subscriptions", params={"status": "active", "limit": 1}).json()
    assert [s["id"] for s in page["subscriptions"]] == [subs[1]["id"]]
    # The status filter is locked into the cursor: a different one sent beside it is ignored.
    locked = api(url, "GET", "subscriptions", params={"cursor": page["next_cursor"], "status": "cancelled"})
    assert [s["id"] for s in locked.json()["subscriptions"]] == [subs[2]["id"]]


def test_customers_by_email_and_one_comma_separated_include(url):
    owner = customer(url, "Mia.Kim@Example.com")
    customer(url, "someone@example.com")
    subscription(url, owner["id"])
    found = api(url, "GET", "customers", params={"email": "mia.kim@example.com"}).json()["customers"]
    assert [c["id"] for c in found] == [owner["id"]]
    assert found[0]["external_customer_id"] == {"ecommerce": "9001"}
    one = api(url, "GET", f"customers/{owner['id']}", params={"include": "addresses,subscriptions"}).json()
    assert len(one["customer"]["include"]["addresses"]) == 1
    assert len(one["customer"]["include"]["subscriptions"]) == 1
    repeated = api(url, "GET", f"customers/{owner['id']}?include=addresses&include=subscriptions").json()
    assert "include" not in repeated["customer"]
    plural = api(url, "GET", f"customers/{owner['id']}", params={"includes": "addresses"}).json()
    assert "include" not in plural["customer"]


def test_subscriptions_have_no_email_filter_and_statuses_are_lowercase(url):
    ava, mia = customer(url, "ava@example.com"), customer(url, "mia@example.com")
    subscription(url, ava["id"])
    subscription(url, mia["id"])
    by_email = api(url, "GET", "subscriptions", params={"email": "ava@example.com"}).json()["subscriptions"]
    assert {s["customer_id"] for s in by_email} == {ava["id"], mia["id"]}  # the parameter is ignored
    assert {s["status"] for s in by_email} == {"active"}
    assert api(url, "GET", "subscriptions", params={"status": "ACTIVE"}).status_code == 422
    charges = api(url, "GET", "charges", params={"status": "queued"}).json()["charges"]
    assert {c["status"] for c in charges} == {"queued"}


def test_times_are_eastern_without_offset_dates_plain_and_prices_strings(url):
    owner = customer(url)
    created = subscription(url, owner["id"], price=19.5)
    sub, charge = created["subscription"], created["charge"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", sub["created_at"])
    as_eastern = datetime.fromisoformat(sub["created_at"]).replace(tzinfo=EASTERN)
    assert abs(as_eastern - datetime.now(UTC)) < timedelta(minutes=10)  # Eastern, not UTC, wall time
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", sub["next_charge_scheduled_at"])
    assert sub["price"] == "19.50" and charge["total_price"] == "19.50"
    assert charge["line_items"][0]["unit_price"] == "19.50" and charge["total_refunds"] == "0.00"


def test_cancel_needs_a_reason_and_short_comments(url):
    sub = subscription(url, customer(url)["id"])["subscription"]
    path = f"subscriptions/{sub['id']}/cancel"
    missing = api(url, "POST", path, json={})
    assert missing.status_code == 422 and "cancellation_reason" in missing.json()["errors"]
    long = api(
        url, "POST", path, json={"cancellation_reason": "x", "cancellation_reason_comments": "c" * 1025}
    )
    assert long.status_code == 422
    done = api(
        url, "POST", path, json={"cancellation_reason": "too expensive", "cancellation_reason_comments": "c"}
    )
    cancelled = done.json()["subscription"]
    assert cancelled["status"] == "cancelled" and cancelled["cancellation_reason"] == "too expensive"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", cancelled["cancelled_at"])
    assert (
        api(url, "GET", "charges", params={"purchase_item_id": sub["id"], "status": "queued"}).json()[
            "charges"
        ]
        == []
    )
    assert api(url, "POST", path, json={"cancellation_reason": "again"}).status_code == 422
    httpx.post(
        f"{url}/_sandbox/recharge/settings", json={"already_cancelled": "unchanged"}
    ).raise_for_status()
    again = api(url, "POST", path, json={"cancellation_reason": "again"})
    assert again.status_code == 200 and again.json()["subscription"]["cancellation_reason"] == "too expensive"


def test_set_next_charge_date_validates_and_merges_same_address_and_day(url):
    owner = customer(url)
    first = subscription(url, owner["id"], next_charge_scheduled_at="2030-01-10")
    second = subscription(url, owner["id"], next_charge_scheduled_at="2030-01-20")
    path = f"subscriptions/{second['subscription']['id']}/set_next_charge_date"
    assert api(url, "POST", path, json={"date": "2030/01/10"}).status_code == 422
    assert api(url, "POST", path, json={}).status_code == 422
    today = datetime.now(EASTERN).date().isoformat()
    assert api(url, "POST", path, json={"date": today}).status_code == 422
    moved = api(url, "POST", path, json={"date": "2030-01-10"})
    assert (
        moved.status_code == 200 and moved.json()["subscription"]["next_charge_scheduled_at"] == "2030-01-10"
    )
    queued = api(url, "GET", "charges", params={"status": "queued"}).json()["charges"]
    (merged,) = queued
    assert merged["id"] not in (first["charge"]["id"], second["charge"]["id"])  # one NEW charge
    assert sorted(li["purchase_item_id"] for li in merged["line_items"]) == sorted(
        [first["subscription"]["id"], second["subscription"]["id"]]
    )
    assert merged["total_price"] == "48.00"


def test_skip_by_purchase_item_ids_and_unskip(url):
    created = subscription(url, customer(url)["id"], next_charge_scheduled_at="2030-03-01")
    sub_id, charge_id = created["subscription"]["id"], created["charge"]["id"]
    old_shape = api(url, "POST", f"charges/{charge_id}/skip", json={"subscription_id": sub_id})
    assert old_shape.status_code == 422 and "purchase_item_ids" in old_shape.json()["errors"]
    skipped = api(url, "POST", f"charges/{charge_id}/skip", json={"purchase_item_ids": [sub_id]})
    assert skipped.json()["charge"]["status"] == "skipped"
    assert api(url, "GET", f"subscriptions/{sub_id}").json()["subscription"]["next_charge_scheduled_at"] == (
        "2030-04-01"
    )
    assert (
        api(url, "POST", f"charges/{charge_id}/skip", json={"purchase_item_ids": [sub_id]}).status_code == 422
    )
    unskipped = api(url, "POST", f"charges/{charge_id}/unskip", json={"purchase_item_ids": [sub_id]})
    assert unskipped.json()["charge"]["status"] == "queued"
    queued = api(url, "GET", "charges", params={"status": "queued"}).json()["charges"]
    assert [c["id"] for c in queued] == [charge_id]
    assert api(url, "GET", f"subscriptions/{sub_id}").json()["subscription"]["next_charge_scheduled_at"] == (
        "2030-03-01"
    )


def test_leaky_bucket_40_leaking_2_per_second_then_429_without_usage_header(url):
    httpx.post(f"{url}/_sandbox/recharge/limits", json={"frozen_clock": True}).raise_for_status()
    try:
        statuses = [api(url, "GET", "customers").status_code for _ in range(40)]
        assert statuses == [200] * 40
        refused = api(url, "GET", "customers")
        assert refused.status_code == 429 and isinstance(refused.json()["errors"], str)
        assert "retry-after" not in refused.headers
        assert not [name for name in refused.headers if "limit" in name.lower()]
        httpx.post(f"{url}/_sandbox/recharge/limits", json={"advance_seconds": 1}).raise_for_status()
        assert [api(url, "GET", "customers").status_code for _ in range(3)] == [200, 200, 429]
    finally:
        httpx.post(f"{url}/_sandbox/recharge/limits", json={"frozen_clock": False})


def test_error_shapes_and_409_while_a_charge_is_being_processed(url):
    created = subscription(url, customer(url)["id"], next_charge_scheduled_at="2030-03-01")
    charge_id, sub_id = created["charge"]["id"], created["subscription"]["id"]
    missing = api(url, "GET", "charges/1")
    assert missing.status_code == 404 and isinstance(missing.json()["errors"], str)
    bad = api(url, "POST", f"charges/{charge_id}/skip", json={"purchase_item_ids": []})
    assert bad.status_code == 422 and isinstance(bad.json()["errors"]["purchase_item_ids"], list)
    control = f"{url}/_sandbox/recharge/charges/{charge_id}/processing"
    httpx.post(control, json={"processing": True}).raise_for_status()
    busy = api(url, "POST", f"charges/{charge_id}/skip", json={"purchase_item_ids": [sub_id]})
    assert busy.status_code == 409 and isinstance(busy.json()["errors"], str)
    assert (
        api(url, "POST", f"subscriptions/{sub_id}/cancel", json={"cancellation_reason": "x"}).status_code
        == 409
    )
    httpx.post(control, json={"processing": False}).raise_for_status()
    assert (
        api(url, "POST", f"charges/{charge_id}/skip", json={"purchase_item_ids": [sub_id]}).status_code == 200
    )


def test_refund_up_to_what_is_left_then_refunded_and_no_more(url):
    charge = paid_charge(url)  # 2 x 24.00
    path = f"charges/{charge['id']}/refund"
    assert api(url, "POST", path, json={"amount": 5}).status_code == 422  # amounts are strings
    assert api(url, "POST", path, json={"amount": "48.01"}).status_code == 422
    part = api(url, "POST", path, json={"amount": "10.00", "full_refund": False, "retry": False}).json()[
        "charge"
    ]
    assert (part["status"], part["total_refunds"]) == ("partially_refunded", "10.00")
    over = api(url, "POST", path, json={"amount": "38.01"})
    assert over.status_code == 422 and "amount" in over.json()["errors"]
    rest = api(url, "POST", path, json={"amount": "38.00"}).json()["charge"]
    assert (rest["status"], rest["total_refunds"]) == ("refunded", "48.00")
    again = api(url, "POST", path, json={"amount": "1.00"})
    assert again.status_code == 422 and "status" in again.json()["errors"]
    queued = api(url, "GET", "charges", params={"status": "queued"}).json()["charges"][0]
    assert api(url, "POST", f"charges/{queued['id']}/refund", json={"amount": "1.00"}).status_code == 422


def test_full_refund_refunds_what_is_left(url):
    charge = paid_charge(url)
    api(url, "POST", f"charges/{charge['id']}/refund", json={"amount": "8.00"}).raise_for_status()
    full = api(url, "POST", f"charges/{charge['id']}/refund", json={"amount": "1.00", "full_refund": True})
    assert (full.json()["charge"]["status"], full.json()["charge"]["total_refunds"]) == ("refunded", "48.00")


def test_processing_a_charge_creates_the_shopify_order_and_the_next_charge(url):
    owner = customer(url, "zoe@example.com", shopify_id="7007")
    created = subscription(url, owner["id"], quantity=2, next_charge_scheduled_at="2030-05-05")
    processed = httpx.post(f"{url}/_sandbox/recharge/charges/{created['charge']['id']}/process").json()
    charge, order_ref = processed["charge"], processed["shopify_order"]
    assert charge["status"] == "success" and charge["processed_at"]
    assert charge["external_order_id"] == {"ecommerce": str(order_ref["id"])}
    state = httpx.get(f"{url}/_sandbox/state").json()
    (order,) = [o for o in state["shopify"]["orders"] if o["id"] == order_ref["id"]]
    assert order["email"] == "zoe@example.com" and "Subscription" in order["tags"]
    assert [(li["sku"], li["quantity"]) for li in order["line_items"]] == [(SKU, 2)]
    assert order["total_price"] == "48.00"
    queued = [c for c in state["recharge"]["charges"] if c["status"] == "queued"]
    assert [c["scheduled_at"] for c in queued] == ["2030-06-05"]
    again = httpx.post(f"{url}/_sandbox/recharge/charges/{created['charge']['id']}/process")
    assert again.status_code == 422


def test_write_fault_applies_the_write_then_loses_the_answer(url):
    charge = paid_charge(url)
    httpx.post(
        f"{url}/_sandbox/recharge/write_faults", json={"operation": "refund", "status": 503}
    ).raise_for_status()
    lost = api(url, "POST", f"charges/{charge['id']}/refund", json={"amount": "4.00"})
    assert lost.status_code == 503
    assert api(url, "GET", f"charges/{charge['id']}").json()["charge"]["total_refunds"] == "4.00"


# -- webhooks -------------------------------------------------------------------------------------
class Catcher:
    """A tiny HTTP endpoint recording what it receives (and answering ``status``)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[dict[str, str], bytes]] = []
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                catcher.received.append((dict(self.headers.items()), body))
                self.send_response(catcher.status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def catcher() -> Iterator[Catcher]:
    running = Catcher()
    yield running
    running.close()


def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_webhook_registration_is_capped_at_10_per_topic(url):
    for index in range(10):
        created = api(
            url, "POST", "webhooks", json={"address": f"https://h{index}.example/x", "topic": "charge/paid"}
        )
        assert created.status_code == 201
    eleventh = api(url, "POST", "webhooks", json={"address": "https://h.example/x", "topic": "charge/paid"})
    assert eleventh.status_code == 422 and "topic" in eleventh.json()["errors"]
    other = api(url, "POST", "webhooks", json={"address": "https://h.example/x", "topic": "charge/refunded"})
    assert other.status_code == 201
    assert len(api(url, "GET", "webhooks").json()["webhooks"]) == 11


def test_webhooks_carry_both_signatures_the_topic_and_the_rest_shape(url, catcher):
    api(
        url, "POST", "webhooks", json={"address": catcher.url, "topic": "subscription/cancelled"}
    ).raise_for_status()
    sub = subscription(url, customer(url)["id"])["subscription"]
    api(
        url, "POST", f"subscriptions/{sub['id']}/cancel", json={"cancellation_reason": "moving"}
    ).raise_for_status()
    wait_until(lambda: len(catcher.received) == 1)
    headers, body = catcher.received[0]
    assert headers["X-Recharge-Topic"] == "subscription/cancelled"
    secret = credentials.RECHARGE["client_secret"]
    assert verify_webhook(secret, body, headers)  # the new scheme
    legacy = {k: v for k, v in headers.items() if not k.startswith("X-Recharge-Webhook")}
    assert "X-Recharge-Hmac-Sha256" in legacy and verify_webhook(secret, body, legacy)
    assert headers["X-Recharge-Webhook-Signature"].startswith(
        f"t={headers['X-Recharge-Webhook-Timestamp']},v1="
    )
    assert json.loads(body) == api(url, "GET", f"subscriptions/{sub['id']}").json()


def test_webhook_faults_drop_and_duplicate(url, catcher):
    api(
        url, "POST", "webhooks", json={"address": catcher.url, "topic": "subscription/cancelled"}
    ).raise_for_status()
    subs = [subscription(url, customer(url)["id"])["subscription"] for _ in range(2)]
    httpx.post(f"{url}/_sandbox/faults", json={"recharge": {"webhook_duplicate_rate": 1}}).raise_for_status()
    api(
        url, "POST", f"subscriptions/{subs[0]['id']}/cancel", json={"cancellation_reason": "x"}
    ).raise_for_status()
    wait_until(lambda: len(catcher.received) == 2)
    assert catcher.received[0][1] == catcher.received[1][1]
    httpx.post(f"{url}/_sandbox/faults", json={"recharge": {"webhook_drop_rate": 1}}).raise_for_status()
    api(
        url, "POST", f"subscriptions/{subs[1]['id']}/cancel", json={"cancellation_reason": "x"}
    ).raise_for_status()
    log = httpx.get(f"{url}/_sandbox/recharge/webhooks/log").json()["deliveries"]
    assert [entry["outcome"] for entry in log if entry["outcome"] == "dropped"] == ["dropped"]
    assert len(catcher.received) == 2


def test_a_failing_webhook_is_retried_20_times_then_deleted(url):
    failing = Catcher(status=500)
    try:
        settings = {"webhook_retry_span_seconds": 0.5}
        httpx.post(f"{url}/_sandbox/recharge/settings", json=settings).raise_for_status()
        api(
            url, "POST", "webhooks", json={"address": failing.url, "topic": "subscription/cancelled"}
        ).raise_for_status()
        sub = subscription(url, customer(url)["id"])["subscription"]
        api(
            url, "POST", f"subscriptions/{sub['id']}/cancel", json={"cancellation_reason": "x"}
        ).raise_for_status()
        wait_until(lambda: api(url, "GET", "webhooks").json()["webhooks"] == [])
        assert len(failing.received) == 21  # the delivery and its 20 retries
        log = httpx.get(f"{url}/_sandbox/recharge/webhooks/log").json()["deliveries"]
        assert log[-1]["outcome"] == "webhook_deleted"
    finally:
        failing.close()


def test_the_traffic_simulator_renews_subscriptions_into_shopify_orders(url, server):
    from mienne_ops.sandbox.traffic import TrafficSimulator

    simulator = TrafficSimulator(server.hub, seed=3)
    orders = [simulator.place_subscription_order() for _ in range(3)]
    state = httpx.get(f"{url}/_sandbox/state").json()
    paid = [c for c in state["recharge"]["charges"] if c["status"] == "success"]
    assert sorted(c["external_order_id"]["ecommerce"] for c in paid) == sorted(str(o["id"]) for o in orders)
    shopify = {o["id"]: o for o in state["shopify"]["orders"]}
    for order in orders:
        placed = shopify[order["id"]]
        assert "Subscription" in placed["tags"]
        assert [line["code"] for line in placed["shipping_lines"]] == ["standard"]  # flow A maps it
        assert placed["shipping_address"]["zip"] and placed["customer"]["id"]


def test_a_subscription_order_maps_to_a_netsuite_sales_order_like_any_order(url, server):
    from mienne_ops.business_rules import BusinessRules
    from mienne_ops.domain.orders import plan_sales_order
    from mienne_ops.domain.shopify import ShopifyOrder
    from mienne_ops.sync.orders import mapping_config

    owner = customer(url, "theo@example.com", shopify_id="8008")
    created = subscription(url, owner["id"], quantity=3)
    done = httpx.post(f"{url}/_sandbox/recharge/charges/{created['charge']['id']}/process").json()
    state = httpx.get(f"{url}/_sandbox/state").json()
    (raw,) = [o for o in state["shopify"]["orders"] if o["id"] == done["shopify_order"]["id"]]
    item_ids = {s.sku: s.netsuite_item_id for s in server.hub.catalog.skus}
    plan = plan_sales_order(ShopifyOrder.from_rest(raw), mapping_config(BusinessRules(), item_ids))
    assert plan.ship_method_id == BusinessRules().ship_methods["standard"]
    assert [(line.quantity, line.rate) for line in plan.lines if line.item_id == item_ids[SKU]] == [(3, 24)]
