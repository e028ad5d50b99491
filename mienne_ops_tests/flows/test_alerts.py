"""The alert sensors' parts that need Dagster or a destination: the inventory check read from the
instance, and sending when a destination is down (nothing lost, nothing sent twice)."""

import dagster as dg
import pytest

from mienne_ops.domain.alerts import AlertKind, Incident
from mienne_ops.errors import TransientError
from mienne_ops.flows.alerts import INVENTORY_CHECK, deliver, inventory_findings
from mienne_ops.ledger.alerts import AlertIncidents
from mienne_ops_tests.support import new_ledger

UI = "http://127.0.0.1:3000"
STUCK = Incident(key="order_stuck:paid_to_dcl", kind=AlertKind.ORDER_STUCK, title="1 order(s) stuck")


@pytest.fixture
def book(tmp_path):
    ledger = new_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield AlertIncidents(ledger.engine)
    ledger.dispose()


def test_a_destination_that_is_down_gets_the_alert_on_a_later_tick_and_the_other_only_once(book):
    received: dict[str, list[str]] = {"slack": [], "email": []}
    slack_up = False

    def slack(message):
        if not slack_up:
            raise TransientError("Slack is not taking messages right now", system="slack")
        received["slack"].append(message.subject)

    senders = {"slack": slack, "email": lambda message: received["email"].append(message.subject)}
    book.open(STUCK)
    sent, problems = deliver(book, senders)
    assert (sent, len(problems)) == (1, 1) and "slack" in problems[0]
    slack_up = True
    assert deliver(book, senders) == (1, [])
    assert deliver(book, senders) == (0, [])
    assert received == {
        "slack": ["[mienne-ops ALERT] 1 order(s) stuck"],
        "email": ["[mienne-ops ALERT] 1 order(s) stuck"],
    }


def evaluation(passed: bool, severity: dg.AssetCheckSeverity, partition: str) -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(
        asset_key=INVENTORY_CHECK.asset_key,
        check_name=INVENTORY_CHECK.name,
        passed=passed,
        severity=severity,
        description=f"{'3' if passed else '30'} discrepancies (warn above 0, fail above 25)",
        partition=partition,
    )


def test_the_latest_failing_discrepancy_check_per_location_is_an_incident_at_error_severity_only():
    with dg.instance_for_test() as instance:
        instance.report_runless_asset_event(evaluation(False, dg.AssetCheckSeverity.ERROR, "FR"))
        instance.report_runless_asset_event(evaluation(False, dg.AssetCheckSeverity.WARN, "LA"))
        found = inventory_findings(instance, UI)
        assert [i.key for i in found.firing] == ["inventory_discrepancy:discrepancies_within_threshold[FR]"]
        assert found.firing[0].facts["result"].startswith("30 discrepancies")
        assert found.judges("inventory_discrepancy:discrepancies_within_threshold[LA]")

    with dg.instance_for_test() as instance:  # the check passes again: judged, nothing firing
        instance.report_runless_asset_event(evaluation(True, dg.AssetCheckSeverity.WARN, "FR"))
        found = inventory_findings(instance, UI)
        assert found.firing == () and found.judges("inventory_discrepancy:discrepancies_within_threshold[FR]")


@pytest.mark.parametrize(
    "bad",
    [
        {"alert_destinations": ["slack", "pager"]},
        {"alert_exception_threshold": 0},
        {"alert_slo_paid_to_dcl_minutes": -1},
    ],
)
def test_a_bad_alert_rule_fails_at_load(bad):
    from mienne_ops.business_rules import BusinessRules

    with pytest.raises(ValueError, match="alert"):
        BusinessRules(**bad)
