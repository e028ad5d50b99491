"""The alert rules and words, as tables: which findings open or clear an incident, and what a
message says (and never says)."""

from datetime import UTC, datetime, timedelta

import pytest

from mienne_ops.domain import alerts
from mienne_ops.domain.alerts import AlertKind, Findings, Incident, NewException, StuckLeg, Waiting

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
UI = "http://dagster.example:3000/"
SLOS = {
    StuckLeg.PAID_TO_DCL: timedelta(hours=2),
    StuckLeg.SHIPPED_TO_TRACKING: timedelta(hours=1),
    StuckLeg.RECEIVED_TO_REFUNDED: timedelta(hours=24),
}


def incident(key: str) -> Incident:
    return Incident(key=key, kind=AlertKind(key.split(":")[0]), title=key)


@pytest.mark.parametrize(
    ("firing", "judged", "open_keys", "opened", "cleared"),
    [
        # new condition: opened once
        (["exception_spike:A:x"], ["exception_spike:"], [], ["exception_spike:A:x"], []),
        # still holding: nothing to say
        (["exception_spike:A:x"], ["exception_spike:"], ["exception_spike:A:x"], [], []),
        # gone, and judged by this check: cleared
        ([], ["exception_spike:"], ["exception_spike:A:x"], [], ["exception_spike:A:x"]),
        # gone, but another check's incident: untouched
        ([], ["exception_spike:"], ["run_failure:orders_job"], [], []),
        # an exact key judges that key only, not a longer one sharing its start
        (
            [],
            ["run_failure:orders"],
            ["run_failure:orders_job", "run_failure:orders"],
            [],
            ["run_failure:orders"],
        ),
        # a check that could not look (an outage) judges nothing
        ([], [], ["webhook_subscription_missing:ORDERS_PAID"], [], []),
    ],
)
def test_transitions_open_what_started_and_clear_only_what_the_check_judged(
    firing, judged, open_keys, opened, cleared
):
    change = alerts.transitions(Findings(tuple(map(incident, firing)), tuple(judged)), open_keys)
    assert [i.key for i in change.opened] == opened
    assert list(change.cleared) == cleared


def spike(*rows: tuple[str, str, int], threshold: int = 3) -> Findings:
    exceptions = [
        NewException(
            flow=flow, reason=reason, key=f"{flow}-{reason}-{n}", first_seen=NOW - timedelta(minutes=age)
        )
        for n, (flow, reason, age) in enumerate(rows)
    ]
    return alerts.exception_spikes(
        exceptions, now=NOW, window=timedelta(hours=1), threshold=threshold, ui_url=UI
    )


@pytest.mark.parametrize(
    ("rows", "keys"),
    [
        ([("A", "unknown_sku", 5)] * 3, ["exception_spike:A:unknown_sku"]),
        ([("A", "unknown_sku", 5)] * 2, []),  # below the threshold
        ([("A", "unknown_sku", 5)] * 2 + [("A", "unknown_sku", 61)], []),  # one is older than the window
        ([("A", "unknown_sku", 5)] * 2 + [("B", "unknown_sku", 5)], []),  # per flow
        ([("A", "unknown_sku", 5)] * 2 + [("A", "po_box_unsupported", 5)], []),  # and per reason
        ([("A", "x", 1)] * 3 + [("C", "y", 1)] * 4, ["exception_spike:A:x", "exception_spike:C:y"]),
    ],
)
def test_an_exceptions_spike_is_counted_per_flow_and_reason_within_the_window(rows, keys):
    assert [i.key for i in spike(*rows).firing] == keys


def test_a_spike_names_some_records_the_threshold_and_where_to_look():
    (found,) = spike(*[("A", "unknown_sku", 5)] * 7).firing
    assert found.title == "7 new exceptions in flow A: unknown_sku"
    assert found.facts["new"] == "7 in the last 1 h 0 min (threshold 3)"
    assert found.facts["records"].endswith("and 2 more")
    assert found.facts["see"] == "mienne-ops exceptions list --flow A"
    assert found.link == "http://dagster.example:3000/assets/order_exceptions"


@pytest.mark.parametrize(
    ("waiting", "keys"),
    [
        ([Waiting(StuckLeg.PAID_TO_DCL, "#1001", NOW - timedelta(hours=3))], ["order_stuck:paid_to_dcl"]),
        ([Waiting(StuckLeg.PAID_TO_DCL, "#1001", NOW - timedelta(minutes=90))], []),  # within its SLO
        (
            [Waiting(StuckLeg.SHIPPED_TO_TRACKING, "#1002", NOW - timedelta(minutes=90))],
            ["order_stuck:shipped_to_tracking"],
        ),
        ([Waiting(StuckLeg.RECEIVED_TO_REFUNDED, "#1003", NOW - timedelta(hours=23))], []),
        (
            [Waiting(StuckLeg.PAID_TO_DCL, f"#10{n:02d}", NOW - timedelta(hours=3 + n)) for n in range(40)],
            ["order_stuck:paid_to_dcl"],  # an outage is one incident per leg, not one per order
        ),
    ],
)
def test_orders_past_their_legs_slo_are_one_incident_per_leg(waiting, keys):
    found = alerts.stuck_orders(waiting, now=NOW, slos=SLOS, ui_url=UI)
    assert [i.key for i in found.firing] == keys
    assert found.judges("order_stuck:received_to_refunded")


def test_a_stuck_leg_names_the_oldest_orders_first():
    waiting = [
        Waiting(StuckLeg.PAID_TO_DCL, name, NOW - timedelta(hours=h)) for name, h in (("#2", 3), ("#1", 5))
    ]
    (found,) = alerts.stuck_orders(waiting, now=NOW, slos=SLOS, ui_url=UI).firing
    assert found.facts["orders"] == "#1, #2"
    assert found.facts["oldest waiting"] == "5 h 0 min"
    assert found.facts["see"] == "mienne-ops order status #1"


@pytest.mark.parametrize(
    ("facts", "statuses", "cleared"),
    [
        ({"job": "j"}, {"j": "SUCCESS"}, True),
        ({"job": "j"}, {"j": "FAILURE"}, False),
        ({"job": "j"}, {"j": "STARTED"}, False),
        ({"job": "j"}, {}, False),
        (
            {"seen by": "alerts_sensor"},
            {"alerts_sensor": "SUCCESS"},
            False,
        ),  # not run-borne: its poll clears it
    ],
)
def test_run_borne_incidents_clear_when_the_jobs_latest_run_succeeded(facts, statuses, cleared):
    open_incident = Incident(
        key="credentials_refused:netsuite", kind=AlertKind.CREDENTIALS_REFUSED, title="t", facts=facts
    )
    found = alerts.recovered([open_incident], statuses)
    assert found.judges(open_incident.key) is cleared and not found.firing


def test_webhook_topics_without_a_subscription_are_incidents():
    found = alerts.webhook_subscriptions_missing(["ORDERS_CREATE", "ORDERS_PAID"], ["ORDERS_CREATE"])
    assert [i.key for i in found.firing] == ["webhook_subscription_missing:ORDERS_PAID"]


def test_only_our_deactivated_gorgias_integrations_are_incidents():
    integrations = [
        {"id": 1, "name": "mienne-ops ticket-created", "deactivated_datetime": "2026-12-06T10:00:00"},
        {"id": 2, "name": "mienne-ops ticket-message-created", "deactivated_datetime": None},
        {"id": 3, "name": "someone else's", "deactivated_datetime": "2026-12-06T10:00:00"},
    ]
    found = alerts.gorgias_integrations_disabled(integrations, "mienne-ops ")
    assert [i.key for i in found.firing] == ["gorgias_integration_disabled:1"]


@pytest.mark.parametrize(
    ("made", "resolved", "expected"),
    [
        (
            lambda: alerts.run_failure("shopify_order_ingestion_job", "abc-123", UI, failed_steps=["ingest"]),
            False,
            "[mienne-ops ALERT] Run of shopify_order_ingestion_job failed\n"
            "job: shopify_order_ingestion_job\nrun: abc-123\nfailed steps: ingest\n"
            "link: http://dagster.example:3000/runs/abc-123\n"
            "incident: run_failure:shopify_order_ingestion_job",
        ),
        (
            lambda: alerts.credentials_refused("netsuite", "j", "r1", UI),
            True,
            "[mienne-ops RESOLVED] netsuite refused our credentials (401)\nThe condition has cleared.\n"
            "system: netsuite\njob: j\nrun: r1\nlink: http://dagster.example:3000/runs/r1\n"
            "incident: credentials_refused:netsuite",
        ),
    ],
)
def test_messages_read_as_the_operator_sees_them(made, resolved, expected):
    message = alerts.render(made(), resolved=resolved)
    assert message.text == expected
    assert message.subject == expected.splitlines()[0]


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        ("customer jane.doe+vip@example.com wrote", "customer [email] wrote"),
        ("call (555) 123-4567 now", "call [phone] now"),
        ("call +1 555-123-4567", "call [phone]"),
        ("or +15551234567.", "or [phone]."),
        # ids, order names, run ids, dates and times are not phone numbers
        ("order 5012345678901 (#1014)", "order 5012345678901 (#1014)"),
        ("run 8f3e1234-5678-9012-abcd-123456789012", "run 8f3e1234-5678-9012-abcd-123456789012"),
        ("since 2026-12-06T10:00:00", "since 2026-12-06T10:00:00"),
    ],
)
def test_scrub_masks_emails_and_phone_numbers_and_nothing_else(text, scrubbed):
    assert alerts.scrub(text) == scrubbed


def test_a_free_text_fact_cannot_carry_an_email_into_a_message():
    leaky = Incident(
        key="k", kind=AlertKind.INVENTORY_DISCREPANCY, title="t", facts={"result": "ask bob@shop.example"}
    )
    assert "bob@shop.example" not in alerts.render(leaky, resolved=False).text
