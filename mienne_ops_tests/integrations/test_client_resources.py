"""Every API resource hands out the client type it declares, inside and outside Dagster's lifecycle."""

from __future__ import annotations

import pytest

from mienne_ops.integrations.dcl import DclClient, DclResource
from mienne_ops.integrations.gorgias import GorgiasClient, GorgiasResource
from mienne_ops.integrations.netsuite import NetSuiteClient, NetSuiteResource
from mienne_ops.integrations.recharge import RechargeClient, RechargeResource
from mienne_ops.integrations.resource import ClientResource
from mienne_ops.integrations.shopify import ShopifyClient, ShopifyResource
from mienne_ops.integrations.stateset import StateSetClient, StateSetResource
from mienne_ops.integrations.zendesk import ZendeskClient, ZendeskResource
from mienne_ops.resources import LIVE_SWITCHES, build_resources

DECLARED = {
    "shopify": (ShopifyResource, ShopifyClient),
    "netsuite": (NetSuiteResource, NetSuiteClient),
    "dcl": (DclResource, DclClient),
    "stateset": (StateSetResource, StateSetClient),
    "zendesk": (ZendeskResource, ZendeskClient),
    "recharge": (RechargeResource, RechargeClient),
    "gorgias": (GorgiasResource, GorgiasClient),
}


@pytest.fixture
def sandbox_resources(monkeypatch: pytest.MonkeyPatch) -> dict[str, ClientResource]:
    for variable in LIVE_SWITCHES.values():
        monkeypatch.delenv(variable, raising=False)
    resources = build_resources()
    return {name: resources[name] for name in DECLARED}


@pytest.mark.parametrize("name", sorted(DECLARED))
def test_the_lifecycle_builds_the_declared_client_and_closes_it(sandbox_resources, name):
    resource_class, client_class = DECLARED[name]
    resource = sandbox_resources[name]
    assert isinstance(resource, resource_class)
    with resource.process_config_and_initialize_cm() as initialized:
        client = initialized.client
        assert isinstance(client, client_class)
        assert initialized.client is client  # built once per run, not per access
    assert initialized._client is None  # teardown closed and dropped it


@pytest.mark.parametrize("name", sorted(DECLARED))
def test_outside_dagster_the_client_is_built_on_first_use(sandbox_resources, name):
    _, client_class = DECLARED[name]
    resource = sandbox_resources[name]
    client = resource.client
    try:
        assert isinstance(client, client_class)
        assert resource.client is client
    finally:
        client.close()
