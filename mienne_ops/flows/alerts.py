"""Alerts: Dagster's sensors that notice incidents and tell the operator, on Slack and by email.

- `run_failure_alerts_sensor` (Dagster's `run_failure_sensor`, every job of every code location):
  a failed run opens the incident "runs of <job> failing", or, when a system refused our
  credentials in it (`flows.common.stop_on_rejected_credentials`), "<system> refused our
  credentials". It only records the incident in the ledger.
- `alerts_sensor` (every 30 s): checks the ledger (new exceptions above a threshold per flow and
  reason, orders stuck past an SLO), the inventory reconciliation's check, whether failed jobs have
  run successfully since, and, every `alert_integration_poll_seconds`, Shopify's webhook
  subscriptions and Gorgias' HTTP integrations; it opens and closes incidents, then sends every
  message not sent yet. One sensor sends, so two ticks never send the same message.

Incidents live in the ledger (`ledger.alerts`): each is announced once and its end once, whatever
the number of ticks, restarts or failed deliveries in between. The words are `domain.alerts`'.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from mienne_ops.business_rules import BusinessRules
from mienne_ops.cli import WEBHOOK_TOPICS
from mienne_ops.domain import alerts
from mienne_ops.domain.alerts import AlertKind, Findings, StuckLeg
from mienne_ops.errors import AuthError, MienneOpsError
from mienne_ops.flows.common import CREDENTIALS_REFUSED
from mienne_ops.flows.sensor_kit import SensorCursor
from mienne_ops.integrations.email import EmailAlertResource
from mienne_ops.integrations.gorgias import GorgiasResource
from mienne_ops.integrations.shopify import ShopifyResource
from mienne_ops.integrations.slack import SlackAlertResource
from mienne_ops.ledger.alerts import AlertIncidents, IncidentStatus, Notice, new_exceptions, waiting_orders
from mienne_ops.ledger.resource import LedgerResource

#: The inventory check whose failure (at ERROR severity: above `inventory_discrepancy_fail`) alerts.
INVENTORY_CHECK = dg.AssetCheckKey(dg.AssetKey("inventory_reconciliation"), "discrepancies_within_threshold")
#: Our Gorgias HTTP integrations are named "mienne-ops <trigger>" (`cli.connect_gorgias`).
GORGIAS_PREFIX = "mienne-ops "


# -- run failures --------------------------------------------------------------------------------
@dg.run_failure_sensor(
    name="run_failure_alerts_sensor",
    monitor_all_code_locations=True,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Every failed run opens an alert incident (sent by alerts_sensor)",
)
def run_failure_alerts_sensor(
    context: dg.RunFailureSensorContext, ledger: LedgerResource, rules: BusinessRules
) -> None:
    book = AlertIncidents(ledger.ledger.engine)
    for incident in failure_incidents(context, rules.alert_dagster_ui_url):
        if book.open(incident):
            context.log.info(f"alert incident opened: {incident.key}")


def failure_incidents(context: dg.RunFailureSensorContext, ui_url: str) -> list[alerts.Incident]:
    """The run's incidents: the systems that refused our credentials in it, else the failure itself."""
    run = context.dagster_run
    steps = context.get_step_failure_events()
    refused = sorted({system for event in steps if (system := refused_system(event))})
    if refused:
        return [alerts.credentials_refused(system, run.job_name, run.run_id, ui_url) for system in refused]
    failed_steps = [event.step_key for event in steps if event.step_key]
    return [alerts.run_failure(run.job_name, run.run_id, ui_url, failed_steps=failed_steps)]


def refused_system(event: dg.DagsterEvent) -> str | None:
    """The system named by a step failure raised by `stop_on_rejected_credentials`, if it was one."""
    failure = event.step_failure_data.user_failure_data if event.step_failure_data else None
    metadata = failure.metadata if failure else {}
    reason = metadata.get("reason")
    system = metadata.get("system")
    if reason is None or system is None or reason.value != CREDENTIALS_REFUSED:
        return None
    return str(system.value)


# -- the periodic checks and the sending ---------------------------------------------------------
class AlertsCursor(SensorCursor):
    integrations_polled_at: datetime | None = None


@dg.sensor(
    name="alerts_sensor",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Opens and resolves alert incidents (ledger, systems); sends them to Slack and email",
)
def alerts_sensor(
    context: dg.SensorEvaluationContext,
    ledger: LedgerResource,
    rules: BusinessRules,
    shopify: ShopifyResource,
    gorgias: GorgiasResource,
    slack: SlackAlertResource,
    email: EmailAlertResource,
) -> dg.SensorResult:
    cursor = AlertsCursor.parse(context.cursor)
    now = datetime.now(UTC)
    book = AlertIncidents(ledger.ledger.engine)
    findings = [
        exception_findings(ledger, rules, now),
        stuck_order_findings(ledger, rules, now),
        run_recoveries(context.instance, book),
        inventory_findings(context.instance, rules.alert_dagster_ui_url),
    ]
    if integrations_due(cursor, rules, now):
        findings += [shopify_findings(shopify), gorgias_findings(gorgias)]
        cursor.integrations_polled_at = now
    opened, cleared = apply(book, findings)
    senders = {"slack": lambda m: slack.post(m.text), "email": lambda m: email.send(m.subject, m.text)}
    sent, problems = deliver(book, {name: senders[name] for name in rules.alert_destinations})
    for problem in problems:
        context.log.warning(f"alert not delivered (retried next tick): {problem}")
    summary = f"{opened} opened, {cleared} resolved, {sent} message(s) sent, {len(problems)} not delivered"
    return dg.SensorResult(skip_reason=summary, cursor=cursor.dump())


def integrations_due(cursor: AlertsCursor, rules: BusinessRules, now: datetime) -> bool:
    last = cursor.integrations_polled_at
    return last is None or now - last >= timedelta(seconds=rules.alert_integration_poll_seconds)


def apply(book: AlertIncidents, findings: list[Findings]) -> tuple[int, int]:
    """Open what started and resolve what cleared; how many of each this tick changed."""
    opened = cleared = 0
    for finding in findings:
        change = alerts.transitions(finding, book.open_keys())
        opened += sum(book.open(incident) for incident in change.opened)
        cleared += sum(book.resolve(key) for key in change.cleared)
    return opened, cleared


def deliver(book: AlertIncidents, senders: dict) -> tuple[int, list[str]]:
    """Send every message a destination still needs, marking each right after it went out. A
    destination that fails is left alone for the rest of the tick (one timeout, not one per alert)."""
    sent, problems, down = 0, [], set()
    for row, destination, notice in book.unsent(senders):
        if destination in down:
            continue
        message = alerts.render(row.incident, resolved=notice == Notice.RESOLVED)
        try:
            senders[destination](message)
        except MienneOpsError as error:
            down.add(destination)
            problems.append(f"{destination}: {error}")
            continue
        book.mark_sent(row.key, destination, notice)
        sent += 1
    return sent, problems


def exception_findings(ledger: LedgerResource, rules: BusinessRules, now: datetime) -> Findings:
    window = timedelta(minutes=rules.alert_exception_window_minutes)
    return alerts.exception_spikes(
        new_exceptions(ledger.ledger.engine, now - window),
        now=now,
        window=window,
        threshold=rules.alert_exception_threshold,
        ui_url=rules.alert_dagster_ui_url,
    )


def stuck_order_findings(ledger: LedgerResource, rules: BusinessRules, now: datetime) -> Findings:
    slos = {
        StuckLeg.PAID_TO_DCL: timedelta(minutes=rules.alert_slo_paid_to_dcl_minutes),
        StuckLeg.SHIPPED_TO_TRACKING: timedelta(minutes=rules.alert_slo_shipped_to_tracking_minutes),
        StuckLeg.RECEIVED_TO_REFUNDED: timedelta(hours=rules.return_refund_sla_hours),
    }
    waiting = waiting_orders(ledger.ledger.engine, {leg: now - slo for leg, slo in slos.items()})
    return alerts.stuck_orders(waiting, now=now, slos=slos, ui_url=rules.alert_dagster_ui_url)


#: A run that ended: the latest of these says whether a job works again (queued ones say nothing).
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


def run_recoveries(instance: dg.DagsterInstance, book: AlertIncidents) -> Findings:
    """Run-borne incidents whose job's latest finished run succeeded."""
    open_rows = [row.incident for row in book.incidents(status=IncidentStatus.OPEN)]
    jobs = {row.facts["job"] for row in open_rows if row.kind in alerts.RUN_BORNE and "job" in row.facts}
    latest = {}
    for job in jobs:
        runs = instance.get_runs(filters=dg.RunsFilter(job_name=job, statuses=FINISHED), limit=1)
        if runs:
            latest[job] = runs[0].status.value
    return alerts.recovered(open_rows, latest)


def inventory_findings(instance: dg.DagsterInstance, ui_url: str) -> Findings:
    """The latest result of the discrepancy check per location: failed at ERROR severity alerts."""
    records = instance.event_log_storage.get_asset_check_execution_history(INVENTORY_CHECK, limit=50)
    latest = {}
    for record in records:  # newest first
        evaluation = (
            record.event.dagster_event.event_specific_data
            if record.event and record.event.dagster_event
            else None
        )
        if isinstance(evaluation, dg.AssetCheckEvaluation) and record.partition not in latest:
            latest[record.partition] = (evaluation, record.run_id)
    firing = tuple(
        alerts.inventory_discrepancy(
            INVENTORY_CHECK.name, partition, evaluation.description or "", ui_url, run_id
        )
        for partition, (evaluation, run_id) in sorted(latest.items(), key=lambda item: str(item[0]))
        if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    )
    judged = tuple(
        alerts.inventory_discrepancy(INVENTORY_CHECK.name, partition, "", ui_url, "").key
        for partition in latest
    )
    return Findings(firing=firing, judged=judged)


def shopify_findings(shopify: ShopifyResource) -> Findings:
    """Our order topics Shopify has no subscription for (it deletes one after repeated failures)."""
    try:
        subscribed = [
            str(s["topic"]).upper().replace("/", "_") for s in shopify.client.list_webhook_subscriptions()
        ]
    except AuthError:
        return refused_by("shopify")
    except MienneOpsError:
        return Findings()  # not judged this time: nothing opens or clears
    found = alerts.webhook_subscriptions_missing(WEBHOOK_TOPICS, subscribed)
    return Findings(firing=found.firing, judged=(*found.judged, f"{AlertKind.CREDENTIALS_REFUSED}:shopify"))


def gorgias_findings(gorgias: GorgiasResource) -> Findings:
    """Our Gorgias HTTP integrations that Gorgias deactivated."""
    try:
        integrations = gorgias.client.http_integrations()
    except AuthError:
        return refused_by("gorgias")
    except MienneOpsError:
        return Findings()
    found = alerts.gorgias_integrations_disabled(integrations, GORGIAS_PREFIX)
    return Findings(firing=found.firing, judged=(*found.judged, f"{AlertKind.CREDENTIALS_REFUSED}:gorgias"))


def refused_by(system: str) -> Findings:
    incident = alerts.credentials_refused(system, "alerts_sensor", "", "")
    return Findings(firing=(incident,), judged=(incident.key,))


#: Merged into the code location by `mienne_ops.definitions`.
defs = dg.Definitions(sensors=[run_failure_alerts_sensor, alerts_sensor])
