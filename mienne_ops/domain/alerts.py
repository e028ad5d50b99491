"""Alerts as data: what an incident is, which incidents a check's findings open or close, and the
words of the message an operator receives. Pure (no I/O), so every rule here is table-tested.

An *incident* is a condition that holds now (a flow's runs failing, an order stuck past its SLO, a
webhook subscription gone). It has a stable *key*: while the condition holds, every check of it
finds the same key, so the operator gets one message when it starts and one when it clears, never
one per sensor tick. Messages carry ids, order names, counts and links, and never a customer's
name, email, address or phone: they are built from whitelisted facts only, and `scrub` removes any
email address or phone number that could still slip in through a free-text fact.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class AlertKind(StrEnum):
    RUN_FAILURE = "run_failure"
    EXCEPTION_SPIKE = "exception_spike"
    ORDER_STUCK = "order_stuck"
    INVENTORY_DISCREPANCY = "inventory_discrepancy"
    WEBHOOK_SUBSCRIPTION_MISSING = "webhook_subscription_missing"
    GORGIAS_INTEGRATION_DISABLED = "gorgias_integration_disabled"
    CREDENTIALS_REFUSED = "credentials_refused"


class StuckLeg(StrEnum):
    """The legs of an order's way with an SLO, each measured on the ledger's own timestamps."""

    PAID_TO_DCL = "paid_to_dcl"  # journey created (we first saw the order) → a DCL order number
    SHIPPED_TO_TRACKING = "shipped_to_tracking"  # shipment recorded from DCL → tracking on Shopify
    RECEIVED_TO_REFUNDED = "received_to_refunded"  # return received at DCL → refunded


LEG_TITLES = {
    StuckLeg.PAID_TO_DCL: "paid, not at DCL",
    StuckLeg.SHIPPED_TO_TRACKING: "shipped by DCL, no tracking on Shopify",
    StuckLeg.RECEIVED_TO_REFUNDED: "return received, not refunded",
}


@dataclass(frozen=True)
class Incident:
    """One condition that holds now. ``facts``: short, PII-free values shown in the message."""

    key: str
    kind: AlertKind
    title: str
    facts: Mapping[str, str] = field(default_factory=dict)
    link: str = ""

    @classmethod
    def keyed(
        cls, kind: AlertKind, subject: str, *, title: str, facts: Mapping[str, str], link: str = ""
    ) -> Incident:
        """The incident of ``kind`` about ``subject``, keyed ``kind:subject``."""
        return cls(key=f"{kind}:{subject}", kind=kind, title=title, facts=facts, link=link)


@dataclass(frozen=True)
class Findings:
    """What one check saw: the incidents holding now, and the keys it judged (a key, or a prefix
    ending in ``:``), so an open incident it judged that is no longer found has cleared — and only
    those: a check of Shopify's webhooks must not close an incident about a failing run."""

    firing: tuple[Incident, ...] = ()
    judged: tuple[str, ...] = ()

    @classmethod
    def of_kind(cls, kind: AlertKind, firing: Iterable[Incident]) -> Findings:
        """A check that judges every incident of ``kind``: an open one not firing now clears."""
        return cls(firing=tuple(firing), judged=(f"{kind}:",))

    def judges(self, key: str) -> bool:
        return any(
            key == judged or (judged.endswith(":") and key.startswith(judged)) for judged in self.judged
        )


@dataclass(frozen=True)
class Transitions:
    opened: tuple[Incident, ...]
    cleared: tuple[str, ...]


def transitions(findings: Findings, open_keys: Iterable[str]) -> Transitions:
    """Which incidents start (found, not open yet) and which clear (open, judged, no longer found)."""
    already = set(open_keys)
    found = {incident.key for incident in findings.firing}
    opened = tuple(incident for incident in findings.firing if incident.key not in already)
    cleared = tuple(sorted(key for key in already if findings.judges(key) and key not in found))
    return Transitions(opened=opened, cleared=cleared)


# -- the checks' findings, built from plain values ------------------------------------------------
def run_failure(job: str, run_id: str, ui_url: str, *, failed_steps: Sequence[str] = ()) -> Incident:
    """A flow's runs failing: one incident per job, until a run of it succeeds."""
    facts = {"job": job, "run": run_id}
    if failed_steps:
        facts["failed steps"] = ", ".join(sorted(failed_steps)[:5])
    return Incident.keyed(
        AlertKind.RUN_FAILURE,
        job,
        title=f"Run of {job} failed",
        facts=facts,
        link=run_link(ui_url, run_id),
    )


def credentials_refused(system: str, job: str, run_id: str, ui_url: str) -> Incident:
    """A system answering 401 to our credentials: one incident per system."""
    return Incident.keyed(
        AlertKind.CREDENTIALS_REFUSED,
        system,
        title=f"{system} refused our credentials (401)",
        # "job" only when a run saw it: the incident then clears when that job's next run succeeds.
        facts={"system": system, "job": job, "run": run_id} if run_id else {"system": system, "seen by": job},
        link=run_link(ui_url, run_id) if run_id else "",
    )


def recovered(open_incidents: Iterable[Incident], latest_run_status: Mapping[str, str]) -> Findings:
    """Run-borne incidents (a failed run, credentials refused in a run) clear once the latest finished
    run of the job that raised them succeeded; ``latest_run_status``: job name -> that run's status."""
    cleared = tuple(
        incident.key
        for incident in open_incidents
        if incident.kind in RUN_BORNE
        and "job" in incident.facts
        and latest_run_status.get(incident.facts["job"]) == "SUCCESS"
    )
    return Findings(judged=cleared)


RUN_BORNE = frozenset({AlertKind.RUN_FAILURE, AlertKind.CREDENTIALS_REFUSED})


@dataclass(frozen=True)
class NewException:
    flow: str
    reason: str
    key: str
    first_seen: datetime


def exception_spikes(
    exceptions: Iterable[NewException], *, now: datetime, window: timedelta, threshold: int, ui_url: str
) -> Findings:
    """Open exceptions first seen within ``window``, per flow and reason: ``threshold`` or more is a
    spike. It clears when fewer remain (resolved, or older than the window)."""
    recent: dict[tuple[str, str], list[str]] = {}
    for row in exceptions:
        if now - row.first_seen <= window:
            recent.setdefault((row.flow, row.reason), []).append(row.key)
    firing = tuple(
        Incident.keyed(
            AlertKind.EXCEPTION_SPIKE,
            f"{flow}:{reason}",
            title=f"{len(keys)} new exceptions in flow {flow}: {reason}",
            facts={
                "flow": flow,
                "reason": reason,
                "new": f"{len(keys)} in the last {_minutes(window)} (threshold {threshold})",
                "records": _some(keys),
                "see": f"mienne-ops exceptions list --flow {flow}",
            },
            link=exceptions_link(ui_url),
        )
        for (flow, reason), keys in sorted(recent.items())
        if len(keys) >= threshold
    )
    return Findings.of_kind(AlertKind.EXCEPTION_SPIKE, firing)


@dataclass(frozen=True)
class Waiting:
    """An order (by name or id) waiting on a leg since ``since``."""

    leg: StuckLeg
    order: str
    since: datetime


def stuck_orders(
    waiting: Iterable[Waiting], *, now: datetime, slos: Mapping[StuckLeg, timedelta], ui_url: str
) -> Findings:
    """Orders past their leg's SLO: one incident per leg (a DCL outage is one alert, not hundreds),
    naming the oldest orders; it clears when no order on that leg is past its SLO."""
    late: dict[StuckLeg, list[Waiting]] = {}
    for item in waiting:
        if now - item.since > slos[item.leg]:
            late.setdefault(item.leg, []).append(item)
    firing = []
    for leg, items in sorted(late.items()):
        items.sort(key=lambda item: item.since)
        firing.append(
            Incident.keyed(
                AlertKind.ORDER_STUCK,
                leg,
                title=f"{len(items)} order(s) stuck past the SLO: {LEG_TITLES[leg]}",
                facts={
                    "leg": str(leg),
                    "slo": _minutes(slos[leg]),
                    "orders": _some([item.order for item in items]),
                    "oldest waiting": _minutes(now - items[0].since),
                    "see": f"mienne-ops order status {items[0].order}",
                },
                link=exceptions_link(ui_url),
            )
        )
    return Findings(firing=tuple(firing), judged=tuple(f"{AlertKind.ORDER_STUCK}:{leg}" for leg in slos))


def inventory_discrepancy(
    check: str, partition: str | None, description: str, ui_url: str, run_id: str
) -> Incident:
    where = f"{check}[{partition}]" if partition else check
    return Incident.keyed(
        AlertKind.INVENTORY_DISCREPANCY,
        where,
        title=f"Inventory check failed: {where}",
        facts={"check": check, "location": partition or "-", "result": description},
        link=run_link(ui_url, run_id) if run_id else "",
    )


def webhook_subscriptions_missing(expected: Iterable[str], subscribed: Iterable[str]) -> Findings:
    """A topic we subscribe to that Shopify no longer lists (it deletes a subscription after repeated
    failed deliveries): orders then only arrive through the slower reconciliation poll."""
    present = set(subscribed)
    firing = tuple(
        Incident.keyed(
            AlertKind.WEBHOOK_SUBSCRIPTION_MISSING,
            topic,
            title=f"Shopify webhook subscription {topic} is gone",
            facts={"topic": topic, "fix": "mienne-ops webhooks subscribe --uri <receiver URL>"},
        )
        for topic in sorted(set(expected) - present)
    )
    return Findings.of_kind(AlertKind.WEBHOOK_SUBSCRIPTION_MISSING, firing)


def gorgias_integrations_disabled(integrations: Iterable[Mapping[str, object]], name_prefix: str) -> Findings:
    """Our Gorgias HTTP integrations (named ``name_prefix…``) that Gorgias deactivated (it does after
    100 failed calls): tickets then reach us only through the poll."""
    firing = tuple(
        Incident.keyed(
            AlertKind.GORGIAS_INTEGRATION_DISABLED,
            str(item["id"]),
            title=f"Gorgias disabled the HTTP integration {item['name']}",
            facts={
                "integration": str(item["id"]),
                "since": str(item["deactivated_datetime"]),
                "fix": "mienne-ops gorgias connect --url <receiver URL>",
            },
        )
        for item in integrations
        if str(item.get("name", "")).startswith(name_prefix) and item.get("deactivated_datetime")
    )
    return Findings.of_kind(AlertKind.GORGIAS_INTEGRATION_DISABLED, firing)


# -- the message ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Message:
    subject: str
    text: str


def render(incident: Incident, *, resolved: bool) -> Message:
    """The Slack text / email of an incident starting or clearing."""
    state = "RESOLVED" if resolved else "ALERT"
    subject = scrub(f"[mienne-ops {state}] {incident.title}")
    lines = [subject]
    if resolved:
        lines.append("The condition has cleared.")
    lines += [f"{name}: {value}" for name, value in incident.facts.items()]
    if incident.link:
        lines.append(f"link: {incident.link}")
    lines.append(f"incident: {incident.key}")
    return Message(subject=subject, text=scrub("\n".join(lines)))


EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
#: North American numbers with separators, and E.164 (``+15551234567``); a bare run of digits is an
#: id here (Shopify order ids are 13 digits), not a phone number.
PHONE = re.compile(r"(?<!\w)(\+\d{1,3}[ .-]?)?\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}(?!\w)|\+\d{8,15}(?!\w)")


def scrub(text: str) -> str:
    """Defence in depth: an email address or phone number in a fact is masked, never sent."""
    return PHONE.sub("[phone]", EMAIL.sub("[email]", text))


def run_link(ui_url: str, run_id: str) -> str:
    return f"{ui_url.rstrip('/')}/runs/{run_id}"


def exceptions_link(ui_url: str) -> str:
    """The `order_exceptions` asset in the Dagster UI (its table lists every open exception)."""
    return f"{ui_url.rstrip('/')}/assets/order_exceptions"


def _minutes(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def _some(values: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(values[:limit])
    return f"{shown} and {len(values) - limit} more" if len(values) > limit else shown
