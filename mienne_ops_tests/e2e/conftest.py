"""Fixtures for end-to-end tests: the real definitions wired to the test sandbox and a test ledger."""

from collections.abc import Iterator

import dagster as dg
import pytest

from mienne_ops import settings
from mienne_ops.business_rules import BusinessRules
from mienne_ops.cli import WEBHOOK_TOPICS, connect_gorgias, register_zendesk_webhook
from mienne_ops.definitions import build_definitions
from mienne_ops.devtools.harness import FlowDriver, ReceiverServer
from mienne_ops.resources import LIVE_SWITCHES, build_resources, shopify_resource
from mienne_ops_tests.support import new_ledger


@pytest.fixture
def dagster_instance() -> Iterator[dg.DagsterInstance]:
    """The instance the stack's runs are written to: a throw-away one (a module may override this
    fixture, e.g. with an instance a real webserver reads)."""
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def stack(request, sandbox, tmp_path, monkeypatch, dagster_instance) -> Iterator[dict]:
    """Sandbox + webhook receiver + ledger + definitions + a driver that plays the daemon.

    Parametrize indirectly with a dict of `BusinessRules` fields to run under other rules.
    """
    for variable in LIVE_SWITCHES.values():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("MIENNE_SANDBOX_URL", sandbox.url)
    monkeypatch.setenv("MIENNE_SANDBOX_SMTP_PORT", str(sandbox.smtp_port))  # email alerts' sink
    monkeypatch.setenv("MIENNE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("MIENNE_LEDGER_URL", raising=False)
    ledger = new_ledger(settings.ledger_url())
    resources = build_resources(retry_base_delay_seconds=0.02, max_attempts=8)
    # Reconcile (and re-check held fulfillment orders) on every tick, and no edit window unless a
    # test asks for one: the tests never wait minutes.
    rules = {
        "reconcile_every_seconds": 0,
        "waiting_fulfillment_recheck_seconds": 0,
        "hold_edit_window_minutes": 0,
        "requests_poll_seconds": 0,
    }
    resources["rules"] = BusinessRules(**{**rules, **getattr(request, "param", {})})
    defs = build_definitions(resources)
    with ReceiverServer(ledger) as receiver:
        with shopify_resource().process_config_and_initialize_cm() as shopify:
            for topic in WEBHOOK_TOPICS:
                shopify.client.subscribe_webhook(topic, receiver.url)
        connect_gorgias(receiver.gorgias_url)
        register_zendesk_webhook(sandbox.url, receiver.zendesk_url)
        yield {
            "sandbox": sandbox,
            "ledger": ledger,
            "defs": defs,
            "driver": FlowDriver(defs, dagster_instance),
            "receiver": receiver,
        }
    ledger.dispose()
