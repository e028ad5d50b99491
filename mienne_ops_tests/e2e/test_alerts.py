"""Alerts end to end: the real sensors against the sandbox's Slack fake and SMTP sink.

Each incident reaches each destination exactly once however many ticks pass, its resolution once
when the condition clears, and no message carries the customer's name, email, address or phone.
"""

import random
from typing import Any

import dagster as dg
import httpx
import pytest

from mienne_ops.cli import WEBHOOK_TOPICS, connect_gorgias
from mienne_ops.devtools.harness import ORDER_TO_CASH_SENSORS, sandbox_state
from mienne_ops.resources import shopify_resource
from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.order_factory import build_order

pytestmark = pytest.mark.e2e

ALERTS = "alerts_sensor"
FAILURES = "run_failure_alerts_sensor"
PRIVATE_FIELDS = {"email", "first_name", "last_name", "address1", "address2", "phone", "zip"}


def sinks(url: str) -> tuple[list[str], list[dict]]:
    """(Slack texts, mails) the sandbox received, oldest first."""
    state = sandbox_state(url)
    return [m["text"] for m in state["slack"]["messages"]], state["mail"]["messages"]


def everything_sent(url: str) -> list[str]:
    texts, mails = sinks(url)
    return [*texts, *(f"{m['subject']}\n{m['body']}" for m in mails)]


def place(stack: dict, rng: random.Random, **options: Any) -> tuple[dict, dict]:
    """An order placed in the sandbox's Shopify: (what was sent, what Shopify answered)."""
    sandbox = stack["sandbox"]
    payload = build_order(sandbox.hub.catalog, rng, **options)
    response = httpx.post(f"{sandbox.url}/_sandbox/shopify/orders", json=payload, timeout=30)
    response.raise_for_status()
    return payload, response.json()


def private_values(record: Any) -> set[str]:
    """The customer's email, names, street, postcode and phone anywhere in an order payload."""
    found: set[str] = set()
    if isinstance(record, dict):
        for key, value in record.items():
            if key in PRIVATE_FIELDS and isinstance(value, str) and len(value) > 2:
                found.add(value)
            found |= private_values(value)
    elif isinstance(record, list):
        for item in record:
            found |= private_values(item)
    return found


def assert_no_pii(url: str, payloads: list[dict]) -> None:
    sent = everything_sent(url)
    private = set().union(*(private_values(p) for p in payloads))
    assert private, "the orders carry customer details to look for"
    leaks = {value for value in private for text in sent if value in text}
    assert not leaks, leaks


class Explode(dg.Config):
    fail: bool = True


@dg.op
def maybe_explode(config: Explode) -> None:
    if config.fail:
        raise RuntimeError("boom")


@dg.job
def exploding_job() -> None:
    maybe_explode()


def test_a_failing_run_is_one_slack_message_and_one_email_then_one_resolution(stack):
    url, driver = stack["sandbox"].url, stack["driver"]
    driver.tick(FAILURES)  # a run status sensor starts by placing its cursor at the newest event
    failed = exploding_job.execute_in_process(instance=driver.instance, raise_on_error=False)
    assert not failed.success

    for _ in range(2):  # a second evaluation repeats nothing
        driver.tick(FAILURES)
        driver.tick(ALERTS)
    texts, mails = sinks(url)
    assert len(texts) == 1 and len(mails) == 1, texts
    assert "[mienne-ops ALERT] Run of exploding_job failed" in texts[0]
    assert f"http://127.0.0.1:3000/runs/{failed.run_id}" in texts[0]
    assert mails[0]["subject"] == "[mienne-ops ALERT] Run of exploding_job failed"
    assert failed.run_id in mails[0]["body"]
    assert mails[0]["to"] == credentials.SMTP["recipients"]

    # The job's next run succeeds: the incident clears, announced once to each destination.
    fixed = {"ops": {"maybe_explode": {"config": {"fail": False}}}}
    assert exploding_job.execute_in_process(instance=driver.instance, run_config=fixed).success
    for _ in range(2):
        driver.tick(FAILURES)
        driver.tick(ALERTS)
    texts, mails = sinks(url)
    assert len(texts) == 2 and len(mails) == 2, texts
    assert texts[1].startswith("[mienne-ops RESOLVED] Run of exploding_job failed")
    assert mails[1]["subject"].startswith("[mienne-ops RESOLVED]")


@pytest.mark.parametrize("stack", [{"alert_exception_threshold": 2}], indirect=True)
def test_an_exceptions_spike_is_one_slack_message_and_one_email_without_pii(stack):
    url, driver = stack["sandbox"].url, stack["driver"]
    rng = random.Random(31)
    placed = [place(stack, rng, bad="unknown_sku") for _ in range(3)]
    driver.tick(ORDER_TO_CASH_SENSORS[0])
    assert len(stack["ledger"].exceptions(statuses=["open"], flow="A")) == 3

    driver.tick(ALERTS)
    driver.tick(ALERTS)
    texts, mails = sinks(url)
    assert len(texts) == 1 and len(mails) == 1, texts
    assert "3 new exceptions in flow A: unknown_sku" in texts[0]
    assert "http://127.0.0.1:3000/assets/order_exceptions" in texts[0]
    assert "mienne-ops exceptions list --flow A" in mails[0]["body"]
    assert all(str(order["id"]) in texts[0] for _, order in placed)
    assert_no_pii(url, [payload for payload, _ in placed] + [order for _, order in placed])


@pytest.mark.parametrize("stack", [{"alert_slo_paid_to_dcl_minutes": 0}], indirect=True)
def test_a_stuck_order_raises_its_slo_alert_and_the_resolution_once_it_moves_on(stack):
    url, driver = stack["sandbox"].url, stack["driver"]
    payload, order = place(stack, random.Random(32))
    driver.tick(ORDER_TO_CASH_SENSORS[0])  # in NetSuite, not at DCL: past an SLO of 0 minutes
    driver.tick(ALERTS)
    driver.tick(ALERTS)
    texts, mails = sinks(url)
    assert len(texts) == 1 and len(mails) == 1, texts
    assert "1 order(s) stuck past the SLO: paid, not at DCL" in texts[0]
    assert order["name"] in texts[0] and order["name"] in mails[0]["body"]

    driver.tick(ORDER_TO_CASH_SENSORS[1])  # at DCL now
    assert stack["ledger"].journey(str(order["id"])).dcl_order_number
    driver.tick(ALERTS)
    driver.tick(ALERTS)
    texts, mails = sinks(url)
    assert len(texts) == 2 and len(mails) == 2, texts
    assert texts[1].startswith("[mienne-ops RESOLVED] 1 order(s) stuck past the SLO")
    assert_no_pii(url, [payload, order])


def test_refused_credentials_alert_once_and_resolve_when_the_flow_runs_again(stack):
    url, driver = stack["sandbox"].url, stack["driver"]
    place(stack, random.Random(33))
    driver.tick(FAILURES)
    httpx.post(f"{url}/_sandbox/netsuite/token", json={"revoked": True}).raise_for_status()
    driver.tick(ORDER_TO_CASH_SENSORS[0])
    assert not driver.runs[-1].success
    driver.tick(FAILURES)
    driver.tick(ALERTS)
    driver.tick(ALERTS)
    texts, mails = sinks(url)
    assert len(texts) == 1 and len(mails) == 1, texts
    assert "netsuite refused our credentials (401)" in texts[0]  # not a second "run failed" alert

    httpx.post(f"{url}/_sandbox/netsuite/token", json={"revoked": False}).raise_for_status()
    driver.settle(ORDER_TO_CASH_SENSORS[:1], until=lambda: bool(driver.runs[-1].success))
    driver.tick(FAILURES)
    driver.tick(ALERTS)
    texts, mails = sinks(url)
    assert len(texts) == 2 and texts[1].startswith("[mienne-ops RESOLVED] netsuite refused our credentials")


@pytest.mark.parametrize("stack", [{"alert_integration_poll_seconds": 0}], indirect=True)
def test_a_deleted_webhook_subscription_and_a_disabled_gorgias_integration_alert_until_repaired(stack):
    sandbox, driver = stack["sandbox"], stack["driver"]
    world = sandbox.hub.system("shopify").world
    (gone,) = [s for s in world.list("shopify", "webhook_subscription") if s["topic"] == "orders/paid"]
    world.delete("shopify", "webhook_subscription", gone["id"])  # as Shopify does after 8 failures
    gorgias_auth = (credentials.GORGIAS["email"], credentials.GORGIAS["api_key"])
    integrations = httpx.get(f"{sandbox.url}/gorgias/api/integrations", auth=gorgias_auth).json()["data"]
    ours = next(i for i in integrations if i["name"].startswith("mienne-ops "))
    httpx.put(
        f"{sandbox.url}/gorgias/api/integrations/{ours['id']}",
        auth=gorgias_auth,
        json={"deactivated_datetime": "2026-01-01T00:00:00"},
    ).raise_for_status()

    driver.tick(ALERTS)
    driver.tick(ALERTS)
    texts, mails = sinks(sandbox.url)
    assert len(texts) == 2 and len(mails) == 2, texts
    assert any(f"Shopify webhook subscription {WEBHOOK_TOPICS[1]} is gone" in text for text in texts)
    assert any(f"Gorgias disabled the HTTP integration {ours['name']}" in text for text in texts)

    # Repaired the operator's way: subscribe again, reconnect Gorgias.
    receiver = stack["receiver"]
    with shopify_resource().process_config_and_initialize_cm() as shopify:
        shopify.client.subscribe_webhook(WEBHOOK_TOPICS[1], receiver.url)
    connect_gorgias(receiver.gorgias_url)
    driver.tick(ALERTS)
    driver.tick(ALERTS)
    texts, mails = sinks(sandbox.url)
    assert len(texts) == 4 and len(mails) == 4, texts
    assert sum(text.startswith("[mienne-ops RESOLVED]") for text in texts) == 2
