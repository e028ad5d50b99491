"""The code location loads, every job resolves, and resources pick sandbox or live per system."""

import importlib
import pkgutil

import dagster as dg

import mienne_ops.flows
from mienne_ops.definitions import build_definitions
from mienne_ops.resources import build_resources


def test_definitions_load_with_sandbox_defaults(monkeypatch, state_dir):
    for variable in ("SHOPIFY_ACCESS_TOKEN", "NETSUITE_TOKEN_SECRET", "DCL_PASSWORD", "STATESET_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("MIENNE_SANDBOX_URL", "http://127.0.0.1:9999")
    defs = build_definitions()
    dg.Definitions.validate_loadable(defs)
    for job in ("shopify_order_ingestion_job", "netsuite_dispatch_job", "dcl_shipment_sync_job"):
        assert defs.resolve_job_def(job)
    sensors = {s.name: s for s in defs.get_repository_def().sensor_defs}
    for name in ("shopify_orders_sensor", "netsuite_dispatch_sensor", "dcl_shipments_sensor"):
        assert sensors[name].default_status == dg.DefaultSensorStatus.RUNNING
    shopify = build_resources()["shopify"]
    assert shopify.shop_url == "http://127.0.0.1:9999/shopify"


def test_the_code_location_is_exactly_the_flow_modules_own_definitions(monkeypatch, state_dir):
    monkeypatch.setenv("MIENNE_SANDBOX_URL", "http://127.0.0.1:9999")
    repository = build_definitions().get_repository_def()
    # Every module of mienne_ops.flows that exports `defs` (a new flow is found, not listed here).
    modules = [
        module
        for info in pkgutil.iter_modules(mienne_ops.flows.__path__)
        if hasattr(module := importlib.import_module(f"mienne_ops.flows.{info.name}"), "defs")
    ]
    assert {m.__name__.rsplit(".", 1)[-1] for m in modules} >= {"orders", "dispatch", "fulfillment", "holds"}
    for module in modules:
        assert not module.defs.resources, f"{module.__name__}: only definitions.py picks resources"
    flows = [module.defs for module in modules]
    assert {job.name for job in repository.get_all_jobs() if not job.name.startswith("__")} == {
        job.name for flow in flows for job in flow.jobs or []
    }
    assert {sensor.name for sensor in repository.sensor_defs} == {
        sensor.name for flow in flows for sensor in flow.sensors or []
    }
    assert {schedule.name for schedule in repository.schedule_defs} == {
        schedule.name for flow in flows for schedule in flow.schedules or []
    }
    assert set(repository.assets_defs_by_key) == {
        key for flow in flows for asset in flow.assets or [] for key in asset.keys
    }
    assert len(repository.sensor_defs) == 15 and "inbound_reconciliation" in {
        key.path[-1] for key in repository.assets_defs_by_key
    }


def test_real_credentials_switch_one_system_to_live_through_env_vars(monkeypatch, state_dir):
    monkeypatch.setenv("SHOPIFY_ACCESS_TOKEN", "shpat_live")
    monkeypatch.setenv("SHOPIFY_SHOP_URL", "https://mienne.myshopify.com")
    monkeypatch.setenv("SHOPIFY_API_SECRET", "secret")
    monkeypatch.delenv("NETSUITE_TOKEN_SECRET", raising=False)
    resources = build_resources()
    # The live secret is an EnvVar (resolved at launch, never shown in the UI); NetSuite stays sandboxed.
    with resources["shopify"].process_config_and_initialize_cm() as shopify:
        assert shopify.shop_url == "https://mienne.myshopify.com"
        assert shopify.access_token == "shpat_live"
    # An EnvVar, not a value baked into the definitions.
    assert isinstance(resources["shopify"].access_token, dg.EnvVar)
    assert resources["netsuite"].base_url.endswith("/netsuite")
