"""Flow F by hand: `mienne-ops orders cancel`, `refunds create`, `approvals list|approve|deny`.

mienne-ops orders cancel '#1001' [--reason customer] [--subscription cancel|skip] [--key K]
mienne-ops refunds create '#1001' [--line SKU:QTY ...] [--shipping] [--amount 5.00] [--currency USD]
                          [--full] [--reason …] [--key K]
    record the request (the same command twice is one request: give --key for a deliberate second
    one) and carry it out now, exactly as the Dagster jobs `cancel_order_job` / `refund_order_job` do
mienne-ops approvals list
mienne-ops approvals approve REQUEST | deny REQUEST --reason …
    the approval queue: refunds above the cap or repeated on one order wait for a person; an approved
    one is carried out by the next flow F run (`service_requests_sensor`)
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation

import click

from mienne_ops import settings
from mienne_ops.domain.service_requests import (
    RequestDetails,
    RequestedLine,
    RequestKind,
    RequestStatus,
    ServiceRequest,
    SubscriptionAction,
)


def _operator() -> str:
    return os.environ.get("USER") or "operator"


@contextmanager
def _worker():
    """Flow F's worker and intake over the clients every CLI command uses (`cli.api_clients`)."""
    from mienne_ops.business_rules import BusinessRules
    from mienne_ops.cli import api_clients  # here, not at the top: cli.py imports this module
    from mienne_ops.flows.service_requests import build_request_worker
    from mienne_ops.ledger import Ledger
    from mienne_ops.resources import business_rules

    rules: BusinessRules = business_rules()
    ledger = Ledger(settings.ledger_url())
    try:
        with api_clients() as clients:
            yield build_request_worker(clients, ledger, rules)
    finally:
        ledger.dispose()


def _carry_out(kind: RequestKind, reference: str, details: RequestDetails, key: str | None) -> None:
    from mienne_ops.flows.service_requests import carry_out

    with _worker() as (worker, intake):
        request, new = intake.from_operator(kind, reference, details, key=key)
        if not new:
            click.echo(
                f"request {request.request_key} was made before (status {request.status}); carrying on"
            )
        report = carry_out(worker, [request.request_key])
        stored = worker.ledger.request_by_key(request.request_key) or request
    click.echo(_describe(stored))
    for problem in report.problems:
        click.echo(f"  {problem.outcome}: {problem.reason}: {problem.message}")
    if stored.status == RequestStatus.FAILED:
        raise click.ClickException(
            "the request failed; it is in the exceptions queue (mienne-ops exceptions list)"
        )


def _describe(request: ServiceRequest) -> str:
    money = request.outcome.get("money_refunded") or request.outcome.get("refunded")
    parts = [f"{request.kind} {request.order_name or request.shopify_order_id}: {request.status}"]
    if money:
        parts.append(f"refunded {money}")
    if request.decision:
        parts.append("; ".join(request.decision))
    return " — ".join(parts)


@click.command("cancel")
@click.argument("reference")
@click.option(
    "--reason", default="customer", show_default=True, help="customer, fraud, inventory, declined, staff"
)
@click.option("--subscription", type=click.Choice([a.value for a in SubscriptionAction]), default="none")
@click.option(
    "--key", default=None, help="an idempotency key of your own (default: derived from the request)"
)
def orders_cancel(reference: str, reason: str, subscription: str, key: str | None) -> None:
    """Cancel an order everywhere: refused once DCL has started picking it or it shipped."""
    details = RequestDetails(reason=reason, subscription=SubscriptionAction(subscription))
    _carry_out(RequestKind.CANCEL, reference, details, key)


@click.group()
def refunds() -> None:
    """Refunds (flow F)."""


@refunds.command("create")
@click.argument("reference")
@click.option("--line", "lines", multiple=True, help="SKU:QTY (repeatable)")
@click.option("--shipping", is_flag=True, help="refund the shipping too")
@click.option("--amount", default=None, help="5.00: alone an amount refund; with lines at most their worth")
@click.option("--currency", default=None, help="the currency you mean (refused if it is not the order's)")
@click.option("--full", is_flag=True, help="everything still refundable")
@click.option("--reason", default="customer", show_default=True)
@click.option("--subscription", type=click.Choice([a.value for a in SubscriptionAction]), default="none")
@click.option("--key", default=None, help="an idempotency key of your own (a deliberate second refund)")
def refunds_create(
    reference: str,
    lines: tuple[str, ...],
    shipping: bool,
    amount: str | None,
    currency: str | None,
    full: bool,
    reason: str,
    subscription: str,
    key: str | None,
) -> None:
    """Refund lines, shipping and/or an amount; NetSuite books the same amount to the cent."""
    try:
        details = RequestDetails(
            lines=tuple(RequestedLine.parse(line) for line in lines),
            shipping=shipping,
            amount=Decimal(amount) if amount else None,
            currency=currency,
            full=full,
            reason=reason,
            subscription=SubscriptionAction(subscription),
        )
    except (ValueError, InvalidOperation) as error:
        raise click.BadParameter(str(error)) from error
    if not details.asks_for_money():
        raise click.BadParameter("say what to refund: --line, --shipping, --amount or --full")
    _carry_out(RequestKind.REFUND, reference, details, key)


@click.group()
def approvals() -> None:
    """The approval queue: refunds waiting for a person."""


def _ledger():
    from mienne_ops.ledger import Ledger

    return Ledger(settings.ledger_url())


def _find(ledger, reference: str) -> ServiceRequest:
    request = ledger.request_by_key(reference)
    if request is None and reference.isdigit():
        request = ledger.request(int(reference))
    if request is None:
        raise click.ClickException(f"no request {reference}")
    return request


@approvals.command("list")
def approvals_list() -> None:
    waiting = _ledger().requests(statuses=[RequestStatus.AWAITING_APPROVAL])
    if not waiting:
        click.echo("nothing waits for approval")
    for request in waiting:
        asked = request.details.model_dump_json(exclude_defaults=True)
        click.echo(
            f"#{request.id:<5} {request.request_key}  "
            f"{request.order_name or request.shopify_order_id}  {asked}"
        )
        click.echo(f"       why: {'; '.join(request.decision)}")


@approvals.command("approve")
@click.argument("reference")
def approvals_approve(reference: str) -> None:
    """Approve (by request id or key); the next flow F run carries it out, once."""
    ledger = _ledger()
    request = _find(ledger, reference)
    if not ledger.approve_request(request.id, _operator()):
        raise click.ClickException(f"{request.request_key} is {request.status}, not waiting for approval")
    click.echo(f"approved {request.request_key}; the next flow F run carries it out")


@approvals.command("deny")
@click.argument("reference")
@click.option("--reason", required=True, help="why (kept in the ledger and the audit log)")
def approvals_deny(reference: str, reason: str) -> None:
    ledger = _ledger()
    request = _find(ledger, reference)
    denied = ledger.set_request_status(
        request.id,
        RequestStatus.DENIED,
        reasons=[f"denied: {reason}"],
        decided_by=_operator(),
        expect=[RequestStatus.AWAITING_APPROVAL],
    )
    if not denied:
        raise click.ClickException(f"{request.request_key} is {request.status}, not waiting for approval")
    click.echo(f"denied {request.request_key}")
