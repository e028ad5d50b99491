"""Shopify client inventory calls against the sandbox: items with levels, CAS set, re-read by id."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from mienne_ops.integrations.http import HttpCore, RetryPolicy
from mienne_ops.integrations.shopify import ShopifyClient
from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.server import SandboxServer

FR = "gid://shopify/Location/60000000001"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[SandboxServer]:
    with SandboxServer(
        tmp_path_factory.mktemp("shopify-inv") / "w.db", modules=("mienne_ops.sandbox.shopify",)
    ) as running:
        yield running


@pytest.fixture
def client(server) -> Iterator[ShopifyClient]:
    httpx.post(f"{server.url}/_sandbox/reset").raise_for_status()
    core = HttpCore(
        "shopify",
        f"{server.url}/shopify",
        headers={"X-Shopify-Access-Token": credentials.SHOPIFY["access_token"]},
        retry=RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05),
    )
    shopify = ShopifyClient(core)
    yield shopify
    shopify.close()


def test_items_levels_set_and_reread(client):
    items = list(client.iter_inventory_items())
    assert len(items) > 300 and all(FR in i["levels"] for i in items)
    assert any(i["requires_components"] for i in items)
    target = next(i for i in items if i["sku"] == "MN-SERUM-001")
    before = target["levels"][FR]
    quantity = {"inventoryItemId": target["id"], "locationId": FR, "quantity": before + 5}
    result = client.set_inventory_quantities(
        [{**quantity, "changeFromQuantity": before}], idempotency_key="a"
    )
    assert result["user_errors"] == [] and result["changes"][0]["quantityAfterChange"] == before + 5
    stale = client.set_inventory_quantities([{**quantity, "changeFromQuantity": before}], idempotency_key="b")
    assert stale["user_errors"][0]["code"] == "CHANGE_FROM_QUANTITY_STALE"
    (again,) = client.inventory_items_by_id([target["id"]])
    assert again["levels"][FR] == before + 5
    with pytest.raises(ValueError):
        client.set_inventory_quantities([quantity] * 251, idempotency_key="c")
