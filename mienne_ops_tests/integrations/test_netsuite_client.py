"""The NetSuite client against the NetSuite sandbox over real HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import requests
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA256
from requests_oauthlib import OAuth1

from mienne_ops.domain.suiteql_rows import PendingSalesOrder, SalesOrderLine, UnreadableRow
from mienne_ops.errors import AuthError, RemoteValidationError, TransientError
from mienne_ops.integrations.http import STATS, RetryPolicy
from mienne_ops.integrations.netsuite import NetSuiteClient, NetSuiteResource, client_for, netsuite_host
from mienne_ops.sandbox.credentials import NETSUITE
from mienne_ops.sandbox.server import SandboxServer
from mienne_ops.sync.dispatch import LINES_QUERY, PENDING_DISPATCH_QUERY
from mienne_ops_tests.support import single_system_server

FAST = RetryPolicy(max_attempts=8, base_delay=0.01, max_delay=0.05)


server = single_system_server("netsuite")


@pytest.fixture
def sandbox(server: SandboxServer) -> Iterator[SandboxServer]:
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    yield server
    httpx.post(f"{server.url}/_sandbox/faults", json={"clear": True})


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[NetSuiteClient]:
    ns = client_for(NETSUITE, f"{sandbox.url}/netsuite", retry=FAST)
    yield ns
    ns.close()


def order_body(quantity: int = 2, **extra) -> dict:
    return {
        "entity": {"id": "5000"},
        "orderStatus": {"id": "B"},
        "location": {"id": "1"},
        "otherRefNum": "#1001",
        "custbody_sent_to_3pl": False,
        "item": {
            "items": [
                {
                    "item": {"id": "1001"},
                    "quantity": quantity,
                    "rate": "19.99",
                    "custcol_shopify_line_id": "11",
                },
                {"item": {"id": "1002"}, "quantity": 1, "rate": "5.00", "custcol_shopify_line_id": "12"},
            ]
        },
        **extra,
    }


def state(sandbox: SandboxServer) -> dict:
    return sandbox.hub.system("netsuite").state()


def test_host_is_derived_from_the_account_id():
    assert netsuite_host("1234567_SB1") == "https://1234567-sb1.suitetalk.api.netsuite.com"
    resource = NetSuiteResource(**NETSUITE)
    assert str(resource.client.core._client.base_url).startswith("https://1234567-sb1.suitetalk")
    resource.client.close()


def test_wrong_secret_is_an_auth_error(sandbox):
    bad = client_for({**NETSUITE, "token_secret": "wrong"}, f"{sandbox.url}/netsuite", retry=FAST)
    with pytest.raises(AuthError) as caught:
        bad.get("customer", "5000")
    assert caught.value.code == "INVALID_LOGIN"
    bad.close()


def test_an_independent_signer_is_accepted_and_hmac_sha1_is_not(sandbox):
    url = f"{sandbox.url}/netsuite/services/rest/record/v1/customer/5000?fields=email"
    keys = (
        NETSUITE["consumer_key"],
        NETSUITE["consumer_secret"],
        NETSUITE["token_id"],
        NETSUITE["token_secret"],
    )
    sha256 = OAuth1(*keys, signature_method=SIGNATURE_HMAC_SHA256, realm=NETSUITE["account_id"])
    answer = requests.get(url, auth=sha256, timeout=10)
    assert answer.status_code == 200
    assert answer.json()["email"].endswith("@example.com")
    sha1 = OAuth1(*keys, realm=NETSUITE["account_id"])  # requests-oauthlib's default is HMAC-SHA1
    rejected = requests.get(url, auth=sha1, timeout=10)
    assert rejected.status_code == 401
    assert rejected.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_LOGIN"


def test_a_replayed_nonce_is_rejected(sandbox):
    url = f"{sandbox.url}/netsuite/services/rest/record/v1/customer/5000"
    keys = (
        NETSUITE["consumer_key"],
        NETSUITE["consumer_secret"],
        NETSUITE["token_id"],
        NETSUITE["token_secret"],
    )
    signed = requests.Request(
        "GET", url, auth=OAuth1(*keys, signature_method=SIGNATURE_HMAC_SHA256, realm=NETSUITE["account_id"])
    ).prepare()
    with requests.Session() as session:
        assert session.send(signed, timeout=10).status_code == 200
        assert session.send(signed, timeout=10).status_code == 401


def test_create_returns_the_id_from_location(client, sandbox):
    customer_id = client.create(
        "customer", {"firstName": "Ada", "lastName": "Byron", "email": "ada@example.com"}
    )
    assert customer_id.isdigit()
    assert client.get("customer", customer_id)["email"] == "ada@example.com"
    assert client.find_customer_by_email("ADA@example.com") == customer_id
    assert client.find_customer_by_email("nobody@example.com") is None


def test_upsert_twice_keeps_one_sales_order(client, sandbox):
    first = client.upsert("salesOrder", "shopify-order-1", order_body())
    second = client.upsert("salesOrder", "shopify-order-1", order_body(quantity=3), replace=["item"])
    assert first == second
    orders = state(sandbox)["sales_orders"]
    assert len(orders) == 1
    assert [line["quantity"] for line in orders[0]["lines"]] == [3, 1]
    record = client.get("salesOrder", "eid:shopify-order-1", expand=True)
    assert record["id"] == first and record["tranId"].startswith("SO")
    assert record["orderStatus"]["id"] == "B"


def test_unknown_item_is_a_validation_error_naming_the_field(client):
    body = order_body()
    body["item"]["items"][1]["item"] = {"id": "999999"}
    with pytest.raises(RemoteValidationError) as caught:
        client.upsert("salesOrder", "shopify-order-bad", body)
    assert caught.value.code == "INVALID_CONTENT"
    assert "item.items[1].item" in str(caught.value)


def test_suiteql_pages_through_all_rows_with_lower_case_keys_and_omitted_nulls(client, sandbox):
    for number in range(5):
        client.upsert(
            "salesOrder", f"shopify-order-{number}", order_body(memo=None if number % 2 else "gift")
        )
    STATS.reset()
    rows = list(
        client.suiteql(
            "SELECT t.id, t.tranid AS TranId, t.memo, t.externalid FROM transaction t "
            "WHERE t.type = 'SalesOrd' AND t.status = 'B' AND t.custbody_sent_to_3pl = 'F' ORDER BY t.id",
            page_size=2,
        )
    )
    assert [row["externalid"] for row in rows] == [f"shopify-order-{n}" for n in range(5)]
    assert STATS.snapshot()["calls"]["netsuite:suiteql"] == 3
    assert all(isinstance(row["id"], str) and "tranid" in row for row in rows)
    assert "memo" not in rows[1] and rows[1]["memo"] is None
    assert rows[0]["memo"] == "gift"


def test_missing_prefer_transient_is_rejected(client, sandbox):
    with pytest.raises(RemoteValidationError) as caught:
        client.core.request(
            "POST", "/services/rest/query/v1/suiteql", operation="suiteql", json={"q": "SELECT id FROM item"}
        )
    assert caught.value.status == 400
    assert caught.value.code == "INVALID_PARAMETER"


def test_partial_then_full_fulfilment_and_billing(client, sandbox):
    order_id = client.upsert("salesOrder", "shopify-order-9", order_body())
    partial = {
        "externalId": "dcl-shipment-9-1",
        "shipStatus": {"id": "C"},
        "item": {
            "items": [
                {"orderLine": 1, "quantity": 1, "location": {"id": "1"}},
                {"orderLine": 2, "itemReceive": False},
            ]
        },
        "package": {"items": [{"packageTrackingNumber": "1Z999", "packageDescr": "UPS GROUND"}]},
    }
    first = client.transform("salesOrder", order_id, "itemFulfillment", partial)
    assert client.get("salesOrder", order_id)["status"]["id"] == "Pending Billing/Partially Fulfilled"
    assert client.find_by_external_id("ItemShip", "dcl-shipment-9-1") == first
    second = client.transform("salesOrder", order_id, "itemFulfillment", {"externalId": "dcl-shipment-9-2"})
    assert second != first
    order = next(o for o in state(sandbox)["sales_orders"] if o["id"] == order_id)
    assert order["status"] == "F"
    assert [line["quantityFulfilled"] for line in order["lines"]] == [2, 1]
    fulfilments = state(sandbox)["item_fulfillments"]
    assert fulfilments[0]["tracking"] == ["1Z999"]
    client.transform("salesOrder", order_id, "cashSale", {"externalId": "cash-sale-9"})
    assert next(o for o in state(sandbox)["sales_orders"] if o["id"] == order_id)["status"] == "G"


def test_a_reused_fulfilment_external_id_is_rejected(client, sandbox):
    order_id = client.upsert("salesOrder", "shopify-order-10", order_body(quantity=4))
    body = {"externalId": "dcl-shipment-10-1", "item": {"items": [{"orderLine": 1, "quantity": 1}]}}
    client.transform("salesOrder", order_id, "itemFulfillment", body)
    with pytest.raises(RemoteValidationError) as caught:
        client.transform("salesOrder", order_id, "itemFulfillment", body)
    assert caught.value.code == "DUP_RCRD"
    assert len(state(sandbox)["item_fulfillments"]) == 1


def wait_until(predicate, timeout: float = 60.0) -> None:
    """Poll until ``predicate`` holds; the timeout only guards against a hang (busy CI box)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def netsuite_limits(sandbox: SandboxServer, **settings) -> dict:
    answer = httpx.post(f"{sandbox.url}/_sandbox/netsuite/limits", json=settings)
    answer.raise_for_status()
    return answer.json()


def fetch_customers(client: NetSuiteClient, count: int) -> tuple[list[threading.Thread], list[str]]:
    """``count`` threads each reading one customer through the shared client; started, not joined."""
    results: list[str] = []

    def work() -> None:
        results.append(client.get("customer", "5000")["id"])

    threads = [threading.Thread(target=work) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, results


class CountingSemaphore(threading.BoundedSemaphore):
    """The client's slot semaphore, counting the callers queued on it."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.waiting = 0
        self._count_lock = threading.Lock()

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        if super().acquire(blocking=False):
            return True
        with self._count_lock:
            self.waiting += 1
        try:
            return super().acquire(blocking, timeout)
        finally:
            with self._count_lock:
                self.waiting -= 1

    __enter__ = acquire


def test_concurrency_429s_are_retried_once_the_pool_frees(sandbox):
    """The client's cap (4) is above the account's pool (2): the overflow is a 429, retried later.

    The sandbox holds the two admitted requests in flight, so the other two are refused on every
    run; their retries are let go only once the pool is free again.
    """
    netsuite_limits(sandbox, concurrency=2, hold=True)
    client = client_for(NETSUITE, f"{sandbox.url}/netsuite", retry=FAST, max_concurrency=4)
    backoffs: list[float] = []
    retry_now = threading.Event()

    def wait(seconds: float) -> None:  # a refused call waits here until the test lets it retry
        backoffs.append(seconds)
        assert retry_now.wait(60), "never released"

    client.core.sleep = wait
    retries_before = STATS.retries["netsuite"]
    threads, results = fetch_customers(client, 4)
    wait_until(lambda: len(backoffs) == 2 and netsuite_limits(sandbox)["held"] == 2)
    assert netsuite_limits(sandbox)["refused"] == 2 and results == []
    netsuite_limits(sandbox, hold=False)
    # The held pair answered and the pool is empty again.
    wait_until(lambda: len(results) == 2 and netsuite_limits(sandbox)["in_flight"] == 0)
    retry_now.set()
    for thread in threads:
        thread.join(60)
    assert results == ["5000"] * 4
    assert STATS.retries["netsuite"] == retries_before + 2
    assert netsuite_limits(sandbox)["refused"] == 2
    client.close()


def test_client_cap_at_the_pool_size_never_sees_a_429(sandbox):
    """With the client's cap at the account's pool, extra callers queue in the client instead."""
    netsuite_limits(sandbox, concurrency=2, hold=True)
    client = client_for(NETSUITE, f"{sandbox.url}/netsuite", retry=FAST, max_concurrency=2)
    slots = CountingSemaphore(2)
    client.core.transport._slots = slots  # type: ignore[union-attr]
    retries_before = STATS.retries["netsuite"]
    threads, results = fetch_customers(client, 4)
    # Two calls hold the whole pool; the other two are queued in the client, not sent.
    wait_until(lambda: slots.waiting == 2 and netsuite_limits(sandbox)["held"] == 2)
    netsuite_limits(sandbox, hold=False)
    for thread in threads:
        thread.join(60)
    assert results == ["5000"] * 4
    assert netsuite_limits(sandbox)["refused"] == 0
    assert STATS.retries["netsuite"] == retries_before
    client.close()


def test_injected_503_is_retried_then_surfaces_as_transient(sandbox):
    httpx.post(f"{sandbox.url}/_sandbox/faults", json={"netsuite": {"error_rate": 1.0}}).raise_for_status()
    ns = client_for(NETSUITE, f"{sandbox.url}/netsuite", retry=RetryPolicy(max_attempts=3, base_delay=0.01))
    STATS.reset()
    with pytest.raises(TransientError) as caught:
        ns.get("customer", "5000")
    assert caught.value.code == "SERVICE_UNAVAILABLE"
    assert STATS.snapshot()["calls"]["netsuite"] == 3
    httpx.post(f"{sandbox.url}/_sandbox/faults", json={"netsuite": {"error_rate": 0.5}, "seed": 3})
    ns.core.retry = FAST
    assert ns.get("customer", "5000")["id"] == "5000"
    ns.close()


def test_a_revoked_token_ends_in_one_auth_error_after_a_bounded_number_of_calls(client, sandbox):
    revoke = httpx.post(f"{sandbox.url}/_sandbox/netsuite/token", json={"revoked": True})
    assert revoke.json() == {"revoked": True, "spurious_401_every": 0}
    before = STATS.snapshot()["calls"].get("netsuite", 0)
    with pytest.raises(AuthError) as caught:
        list(client.suiteql("SELECT id FROM item"))
    assert (caught.value.status, caught.value.code) == (401, "INVALID_LOGIN")
    assert STATS.snapshot()["calls"].get("netsuite", 0) - before == 3  # not an endless retry
    with pytest.raises(AuthError):
        client.upsert("salesOrder", "shopify-order-revoked", order_body())
    # Back in business once the token is valid again.
    httpx.post(f"{sandbox.url}/_sandbox/netsuite/token", json={"revoked": False}).raise_for_status()
    assert next(client.suiteql("SELECT id FROM item"))["id"]
    assert httpx.post(f"{sandbox.url}/_sandbox/netsuite/token", json={"revoked": "yes"}).status_code == 400


def test_spurious_401s_are_absorbed_by_the_bounded_re_sends(client, sandbox):
    answer = httpx.post(f"{sandbox.url}/_sandbox/netsuite/token", json={"spurious_401_every": 2})
    assert answer.json() == {"revoked": False, "spurious_401_every": 2}
    retries_before = STATS.retries["netsuite"]
    for _ in range(6):
        assert next(client.suiteql("SELECT id FROM item ORDER BY id"))["id"]
    # Every second signed request is refused: calls 2..6 each needed one re-send, none failed.
    assert STATS.retries["netsuite"] - retries_before == 5
    assert (
        httpx.post(f"{sandbox.url}/_sandbox/netsuite/token", json={"spurious_401_every": -1}).status_code
        == 400
    )


def test_suiteql_rows_arrive_parsed_once_and_a_row_that_does_not_fit_says_why(client, sandbox):
    whole = client.upsert("salesOrder", "shopify-order-1", order_body(quantity=3))
    fractional = client.upsert("salesOrder", "shopify-order-2", order_body(quantity=2.5))
    pending = list(client.suiteql_rows(PendingSalesOrder, PENDING_DISPATCH_QUERY))
    assert all(isinstance(row, PendingSalesOrder) and row.trandate for row in pending)
    assert [row.id for row in pending if isinstance(row, PendingSalesOrder)] == [whole, fractional]

    rows = list(client.suiteql_rows(SalesOrderLine, LINES_QUERY.format(ids=f"{whole}, {fractional}")))
    lines = [row for row in rows if isinstance(row, SalesOrderLine)]
    (unreadable,) = [row for row in rows if isinstance(row, UnreadableRow)]
    assert [(line.transaction, line.qty, line.qty_shipped, line.isclosed) for line in lines] == [
        (whole, 3, 0, False),
        (whole, 1, 0, False),
        (fractional, 1, 0, False),
    ]
    assert {line.shopify_line_id for line in lines} == {"11", "12"}
    assert unreadable.reason == "invalid_quantity"
    assert unreadable.problem.endswith("quantity '2.5' is not a whole number")
    assert unreadable.raw["transaction"] == fractional and unreadable.raw["qty"] == "2.5"
