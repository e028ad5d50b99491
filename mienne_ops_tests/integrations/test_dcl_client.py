"""The DCL client against the DCL sandbox over real HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from mienne_ops.errors import AuthError, RemoteValidationError
from mienne_ops.integrations.dcl import DclResource, to_dcl_datetime
from mienne_ops.integrations.http import STATS, RetryPolicy
from mienne_ops.sandbox import credentials
from mienne_ops_tests.support import single_system_server

server = single_system_server("dcl")


@pytest.fixture
def sandbox_url(server):
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    # Most tests are about behaviour, not throttling; the 429 test lowers the limit again.
    httpx.post(f"{server.url}/_sandbox/dcl/limits", json={"requests_per_second": 1000}).raise_for_status()
    return server.url


def make_client(url: str, password: str = credentials.DCL["password"]):
    resource = DclResource(
        base_url=f"{url}/dcl",
        username=credentials.DCL["username"],
        password=password,
        account_number=credentials.DCL["account_number"],
        freight_account=credentials.DCL["freight_account"],
        retry_base_delay_seconds=0.01,
        max_attempts=8,
    )
    return resource.build_client()


def order(number: str, *, sku: str = "MN-SERUM-001", quantity: int = 2, **extra) -> dict:
    return {
        "order_number": number,
        "shipping_carrier": "UPS",
        "shipping_service": "GROUND",
        "shipping_address": {
            "attention": "Test Person",
            "address1": "1 Main St",
            "city": "Austin",
            "state_province": "TX",
            "postal_code": "78701",
            "country_code": "US",
        },
        "lines": [{"line_number": 1, "item_number": sku, "quantity": quantity}],
        **extra,
    }


def ship(url: str, number: str, **body) -> dict:
    response = httpx.post(f"{url}/_sandbox/dcl/orders/{number}/ship", json=body)
    response.raise_for_status()
    return response.json()


def test_bad_credentials_raise_auth_error(sandbox_url):
    client = make_client(sandbox_url, password="wrong")
    with pytest.raises(AuthError):
        client.get_orders(["SO-1"])


def test_partial_batch_reports_each_order_in_request_order(sandbox_url):
    client = make_client(sandbox_url)
    results = client.submit_batch([order("SO-1"), order("SO-2", sku="NO-SUCH-SKU"), order("SO-3")])
    assert [r.order_number for r in results] == ["SO-1", "SO-2", "SO-3"]
    assert [r.accepted for r in results] == [True, False, True]
    assert results[1].error_code != 0 and "NO-SUCH-SKU" in results[1].error_message
    assert not results[1].already_exists
    assert {o["order_number"] for o in client.get_orders(["SO-1", "SO-2", "SO-3"])} == {"SO-1", "SO-3"}


def test_batch_without_allow_partial_creates_nothing(sandbox_url):
    client = make_client(sandbox_url)
    results = client.submit_batch([order("SO-1"), order("SO-2", sku="NO-SUCH-SKU")], allow_partial=False)
    assert not any(r.ok for r in results)
    assert results[1].error_message.startswith("Item number not found")
    assert client.get_orders(["SO-1", "SO-2"]) == []


def test_duplicate_order_is_confirmed_as_already_existing(sandbox_url):
    client = make_client(sandbox_url)
    assert client.submit_batch([order("SO-7")])[0].accepted
    again = client.submit_batch([order("SO-7"), order("SO-8")])
    assert again[0].already_exists and not again[0].accepted and again[0].ok
    assert again[1].accepted
    # A rejected order that DCL does not hold is not mistaken for a duplicate.
    bad = client.submit_batch([order("SO-9", sku="NO-SUCH-SKU")])
    assert not bad[0].already_exists


def test_lost_batch_answer_is_reconciled_without_duplicates(sandbox_url):
    client = make_client(sandbox_url)
    httpx.post(f"{sandbox_url}/_sandbox/dcl/limits", json={"drop_response_after_create": True})
    results = client.submit_batch([order("SO-20"), order("SO-21")])
    assert all(r.ok for r in results)
    state = httpx.get(f"{sandbox_url}/_sandbox/state").json()["dcl"]["orders"]
    assert sorted(o["order_number"] for o in state) == ["SO-20", "SO-21"]


def test_orders_page_through_more_than_one_hundred(sandbox_url):
    client = make_client(sandbox_url)
    numbers = [f"PG-{i:03d}" for i in range(130)]
    results = client.submit_batch([order(n) for n in numbers])
    assert all(r.accepted for r in results)
    before = STATS.calls["dcl:orders"]
    listed = [o["order_number"] for o in client.iter_orders(page_size=100)]
    assert listed == numbers
    assert STATS.calls["dcl:orders"] - before == 2  # a full page, then a short one ends the loop


def test_modified_from_filters_by_pacific_time(sandbox_url):
    client = make_client(sandbox_url)
    client.submit_batch([order("OLD-1")])
    cut = datetime.now(UTC)
    later = cut + timedelta(seconds=1)
    assert list(client.iter_orders(modified_from=later)) == []
    ship(sandbox_url, "OLD-1")
    # Shipping bumps modified_at, so the order is seen again after the cursor.
    seen = [o["order_number"] for o in client.iter_orders(modified_from=cut - timedelta(seconds=1))]
    assert seen == ["OLD-1"]
    naive_pacific = to_dcl_datetime(cut + timedelta(hours=1))
    assert "+" not in naive_pacific and naive_pacific < (cut + timedelta(hours=1)).isoformat()
    assert list(client.iter_orders(modified_from=cut + timedelta(hours=1))) == []


def test_partial_then_remaining_shipment_carries_tracking(sandbox_url):
    client = make_client(sandbox_url)
    client.submit_batch([order("SH-1", quantity=3)])
    ship(sandbox_url, "SH-1", lines=[{"line_number": 1, "quantity": 1}], tracking_numbers=["1ZPART"])
    (partial,) = client.get_orders(["SH-1"])
    assert partial["order_stage"] == 50 and partial["lines"][0]["quantity_shipped"] == 1
    ship(sandbox_url, "SH-1")
    (done,) = client.get_orders(["SH-1"])
    assert done["order_stage"] == 60
    assert len(done["shipments"]) == 2
    tracking = [p["tracking_number"] for s in done["shipments"] for p in s["packages"]]
    assert tracking[0] == "1ZPART" and tracking[1]
    assert (
        sum(i["quantity"] for s in done["shipments"] for p in s["packages"] for i in p["shipped_items"]) == 3
    )


def test_cancel_is_refused_once_shipped(sandbox_url):
    client = make_client(sandbox_url)
    client.submit_batch([order("CX-1"), order("CX-2")])
    assert client.cancel_order("CX-1") is True
    assert client.cancel_order("CX-1") is True  # already cancelled is the desired state
    ship(sandbox_url, "CX-2")
    assert client.cancel_order("CX-2") is False
    with pytest.raises(RemoteValidationError):
        client.cancel_order("NOPE-1")


class UpperBoundBackoff(RetryPolicy):
    """The policy's backoff without its jitter: always the upper bound."""

    def backoff(self, attempt: int) -> float:
        return min(self.max_delay, self.base_delay * (2**attempt))


def test_throttled_requests_are_retried(sandbox_url):
    """DCL's 429 carries no Retry-After: the client backs off until the one-second window passes.

    The window's clock is frozen and moves only by the client's (recorded) backoff, and the jitter
    is pinned to its upper bound, so the same requests are refused on every run.
    """
    client = DclResource(
        base_url=f"{sandbox_url}/dcl",
        username=credentials.DCL["username"],
        password=credentials.DCL["password"],
        account_number=credentials.DCL["account_number"],
        freight_account=credentials.DCL["freight_account"],
    ).build_client()
    limits = f"{sandbox_url}/_sandbox/dcl/limits"
    httpx.post(limits, json={"requests_per_second": 2, "frozen_clock": True}).raise_for_status()
    client.core.retry = UpperBoundBackoff(max_attempts=8, base_delay=0.2)
    waits: list[float] = []

    def wait(seconds: float) -> None:  # instead of sleeping: the fake's window moves by the backoff
        waits.append(seconds)
        httpx.post(limits, json={"advance_seconds": seconds}).raise_for_status()

    client.core.sleep = wait
    retries_before = STATS.retries["dcl"]
    for _ in range(5):
        assert client.get_orders(["ANY-1"]) == []
    # Calls 1-2 fill the window; call 3 is refused until 0.4 + 0.8 s have passed, call 4 fits
    # beside it, call 5 is refused the same way.
    assert waits == [0.4, 0.8, 0.4, 0.8]
    assert STATS.retries["dcl"] == retries_before + 4


def test_items_report_available_and_move_on_ship(sandbox_url):
    client = make_client(sandbox_url)
    (before,) = client.iter_items(item_numbers=["MN-SERUM-001"], inventory_type="FR")
    assert (
        before["available"]
        == before["on_hand"] - before["on_hold"] - before["committed"] - before["in_process"]
    )
    client.submit_batch([order("INV-1", quantity=2)])
    ship(sandbox_url, "INV-1")
    (after,) = client.iter_items(item_numbers=["MN-SERUM-001"], inventory_type="FR")
    assert after["on_hand"] == before["on_hand"] - 2


def test_a_cancelled_order_under_the_number_is_not_taken_for_an_accepted_create(sandbox_url):
    """Sending an order DCL cancelled again under its number: "already exists" is proof of nothing
    (the cancelled one is there), so the client reports the refusal instead of a success."""
    client = make_client(sandbox_url)
    assert client.submit_batch([order("SO-40")])[0].accepted
    assert client.cancel_order("SO-40")
    (again,) = client.submit_batch([order("SO-40")])
    assert not again.ok and again.error_code == 20
    httpx.post(f"{sandbox_url}/_sandbox/dcl/account", json={"cancelled_order_numbers": "reusable"})
    (reused,) = client.submit_batch([order("SO-40")])
    assert reused.accepted
    (repeat,) = client.submit_batch([order("SO-40")])  # now a live order: idempotent success
    assert repeat.already_exists and repeat.ok
