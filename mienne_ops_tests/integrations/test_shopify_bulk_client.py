"""The Shopify client's bulk operations against the sandbox: same data as the paged reads, waiting
for a blocking operation, clear failures, and a download that survives a broken stream.

Polling sleeps go through the HTTP core's injectable ``sleep`` (recorded here, never slept), and the
fake moves an operation one step per status read, so nothing depends on time.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from graphql import parse, validate

from mienne_ops.errors import RemoteValidationError, TransientError
from mienne_ops.integrations.http import HttpCore, RetryPolicy
from mienne_ops.integrations.shopify import ShopifyClient
from mienne_ops.integrations.shopify_bulk import (
    BulkPolling,
    assemble_bulk_rows,
    bulk_document,
    bulk_document_names,
    with_search,
)
from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.server import SandboxServer
from mienne_ops.sandbox.shopify_bulk import bulk_query_problem
from mienne_ops.sandbox.shopify_graphql import admin_schema
from mienne_ops_tests.support import single_system_server

TOKEN_HEADER = "X-Shopify-Access-Token"
server = single_system_server("shopify")


@pytest.fixture
def sandbox(server) -> Iterator[SandboxServer]:
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    yield server


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def client(sandbox, slept) -> Iterator[ShopifyClient]:
    core = HttpCore(
        "shopify",
        f"{sandbox.url}/shopify",
        headers={TOKEN_HEADER: credentials.SHOPIFY["access_token"]},
        retry=RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05),
        sleep=slept.append,
    )
    shopify = ShopifyClient(core)
    yield shopify
    shopify.close()


def knobs(sandbox, **settings) -> None:
    httpx.post(f"{sandbox.url}/_sandbox/shopify/bulk_operations", json=settings).raise_for_status()


def inject(sandbox, **fields) -> str:
    payload = {"line_items": [{"sku": "MN-SERUM-001", "quantity": 1}], **fields}
    response = httpx.post(f"{sandbox.url}/_sandbox/shopify/orders", json=payload)
    assert response.status_code == 201
    return str(response.json()["id"])


@pytest.mark.parametrize("name", bulk_document_names())
def test_bulk_documents_are_valid_and_follow_shopifys_bulk_rules(name):
    text = bulk_document(name)
    assert validate(admin_schema(), parse(text)) == []
    query = with_search(text, "status:open") if "__SEARCH__" in text else text
    assert bulk_query_problem(admin_schema(), query) is None


def test_the_bulk_inventory_read_equals_the_paged_read(client, sandbox, slept):
    # The paged read of the whole catalog is priced as Shopify does (40 items a page, 762 points
    # each): more than a Standard bucket holds, so this shop is on Plus.
    httpx.post(f"{sandbox.url}/_sandbox/shopify/limits", json={"plan": "plus"}).raise_for_status()
    paged = sorted(client.iter_inventory_items(), key=lambda item: item["id"])
    bulk = sorted(client.bulk_inventory_items(), key=lambda item: item["id"])
    assert len(bulk) > 250 and bulk == paged
    assert slept == [0.25]  # one backoff between the RUNNING and the COMPLETED poll


def test_bulk_order_ids_match_a_search(client, sandbox):
    wanted = {inject(sandbox), inject(sandbox)}
    inject(sandbox, financial_status="pending")
    assert set(client.bulk_order_ids("financial_status:paid")) == wanted
    assert client.bulk_order_ids('financial_status:paid tag:"not there"') == []


def test_a_run_refused_by_a_running_operation_waits_for_it(client, sandbox, slept):
    blocking = client.run_bulk_query(bulk_document("inventory_items"))
    wanted = inject(sandbox)
    assert client.bulk_order_ids("financial_status:paid") == [wanted]
    assert client.bulk_operation(blocking["id"])["status"] == "COMPLETED"
    assert slept == [0.25]  # the blocking one was done by its second read; ours needed a backoff


def test_an_operation_that_never_finishes_fails_clearly_within_the_budget(client, sandbox, slept):
    knobs(sandbox, hold=True)
    client.bulk_polling = BulkPolling(first_delay=1, max_delay=4, max_wait=20)
    blocking = client.run_bulk_query(bulk_document("inventory_items"))
    with pytest.raises(TransientError) as refused:
        client.bulk_order_ids("financial_status:paid")
    assert refused.value.code == "BULK_OPERATION_RUNNING" and blocking["id"] in str(refused.value)
    assert slept[:5] == [1, 2, 4, 4, 4] and sum(slept[:7]) <= 20


def test_a_failed_operation_raises_with_shopifys_error_code(client, sandbox):
    knobs(sandbox, fail_next="TIMEOUT")
    with pytest.raises(TransientError) as failed:
        client.bulk_inventory_items()
    assert failed.value.code == "TIMEOUT" and "FAILED" in str(failed.value)


def test_an_invalid_bulk_query_is_a_validation_error(client):
    with pytest.raises(RemoteValidationError) as invalid:
        client.bulk_query("{ shop { name } }", operation="test")
    assert invalid.value.code == "INVALID" and "connection" in str(invalid.value)


def test_children_are_joined_to_parents_wherever_they_come():
    parents_first = [
        {"id": "gid://shopify/Order/1"},
        {"id": "gid://shopify/Order/2"},
        {"id": "gid://shopify/LineItem/11", "__parentId": "gid://shopify/Order/1"},
        {"id": "gid://shopify/LineItem/21", "__parentId": "gid://shopify/Order/2"},
        {"id": "gid://shopify/LineItem/12", "__parentId": "gid://shopify/Order/1"},
    ]
    grouped = [parents_first[i] for i in (0, 2, 4, 1, 3)]
    for rows in (parents_first, grouped):
        orders = assemble_bulk_rows(rows)
        assert [o["id"] for o in orders] == ["gid://shopify/Order/1", "gid://shopify/Order/2"]
        assert [[c["id"].rsplit("/", 1)[1] for c in o["__children"]] for o in orders] == [
            ["11", "12"],
            ["21"],
        ]
    with pytest.raises(RemoteValidationError):
        assemble_bulk_rows([{"id": "x", "__parentId": "gid://shopify/Order/9"}])


def test_a_broken_download_starts_again_without_repeating_lines_or_sending_the_token():
    body = b"".join(b'{"n": %d}\n' % n for n in range(6))
    seen: list[httpx.Request] = []

    class Breaks(httpx.SyncByteStream):
        def __iter__(self):
            yield body[:20]  # two whole lines, then the connection drops
            raise httpx.ReadError("connection reset")

    def serve(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(200, stream=Breaks())
        return httpx.Response(200, content=body)

    core = HttpCore(
        "shopify",
        "https://mienne.myshopify.com",
        headers={TOKEN_HEADER: "shpat_secret"},
        transport=httpx.MockTransport(serve),
        retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.01),
        sleep=lambda _: None,
    )
    lines = list(core.stream_lines("https://storage.example/result.jsonl?sig=1", operation="download"))
    assert lines == [f'{{"n": {n}}}' for n in range(6)]
    assert len(seen) == 2 and all(TOKEN_HEADER not in r.headers for r in seen)
