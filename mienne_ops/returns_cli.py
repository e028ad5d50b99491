"""Flow F's returns by hand: `mienne-ops returns start|list|show|cancel`.

mienne-ops returns start '#1001' [--line SKU:QTY …] [--reason size_fit_issue]
                         [--subscription cancel|skip] [--key K]
    record a return request and carry it out now (eligibility, label, records, reply), exactly as a
    ticket tagged ``return-request`` or a Shopify return request is; the same command twice is one
    return (give --key for a deliberate second one)
mienne-ops returns list [--status S] [--all]
    open returns (or those in one status, or all): order, status, age, deadline, money pending, RMA
mienne-ops returns show REF
    one return (REF: its key, the order's name or id, or the RMA number): every column, the ids it
    made in each system, its audit trail and its exceptions
mienne-ops returns cancel REF --reason …
    withdraw a return before anything arrived: its records are closed in every system
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from mienne_ops import settings
from mienne_ops.domain.journey import Flow
from mienne_ops.domain.money import cents
from mienne_ops.domain.returns import OPEN_STATUSES, OrderReturn, ReturnStatus
from mienne_ops.domain.returns_report import ReturnRow
from mienne_ops.domain.service_requests import (
    RequestDetails,
    RequestedLine,
    RequestKind,
    SubscriptionAction,
    operator_request_key,
)
from mienne_ops.errors import InvalidRecordError
from mienne_ops.requests_cli import _carry_out, _operator, _worker

if TYPE_CHECKING:
    from mienne_ops.ledger.store import ExceptionRow


@click.group()
def returns() -> None:
    """Returns (flow F): goods coming back, from the label to the refund."""


def _ledger():
    from mienne_ops.ledger import Ledger

    return Ledger(settings.ledger_url())


@returns.command("start")
@click.argument("reference")
@click.option(
    "--line",
    "lines",
    multiple=True,
    help="SKU:QTY coming back (repeatable; none: every unit still returnable)",
)
@click.option(
    "--reason", default="other", show_default=True, help="why it comes back (size_fit_issue, defective, …)"
)
@click.option("--subscription", type=click.Choice([a.value for a in SubscriptionAction]), default="none")
@click.option("--key", default=None, help="an idempotency key of your own (a deliberate second return)")
def returns_start(
    reference: str, lines: tuple[str, ...], reason: str, subscription: str, key: str | None
) -> None:
    """Start a return of an order's lines: checked against the return policy, then labelled."""
    try:
        details = RequestDetails(
            lines=tuple(RequestedLine.parse(line) for line in lines),
            reason=reason,
            subscription=SubscriptionAction(subscription),
        )
    except ValueError as error:
        raise click.BadParameter(str(error)) from error
    _carry_out(RequestKind.RETURN, reference, details, key)
    ledger = _ledger()
    try:
        ret = ledger.return_by_key(operator_request_key(RequestKind.RETURN, reference, details, key))
    finally:
        ledger.dispose()
    if ret is not None:
        click.echo(_one_line(ret, datetime.now(UTC)))


@returns.command("list")
@click.option("--status", type=click.Choice([s.value for s in ReturnStatus]), default=None)
@click.option("--all", "show_all", is_flag=True, help="every return, closed ones too")
def returns_list(status: str | None, show_all: bool) -> None:
    """Open returns (default), oldest first: order, status, age, deadline, money pending, RMA."""
    ledger = _ledger()
    try:
        statuses = [ReturnStatus(status)] if status else (None if show_all else OPEN_STATUSES)
        rows = ledger.returns(statuses=statuses, limit=1_000_000)
    finally:
        ledger.dispose()
    if not rows:
        click.echo("no returns" if show_all or status else "no open returns")
        return
    now = datetime.now(UTC)
    shown = sorted((ReturnRow.of(ret, now) for ret in rows), key=lambda r: (-r.age, r.ret.id))
    click.echo(
        f"{'order':<10} {'status':<16} {'age':>9}  {'deadline':<16}  {'money pending':>16}  "
        f"{'rma':<12} return"
    )
    for row in shown:
        cells = row.row()
        click.echo(
            f"{cells['order']:<10} {cells['status']:<16} {_age(row.age_hours):>9}  "
            f"{cells['deadline'] or '-':<16}  {cells['money_pending']:>16}  {cells['rma'] or '-':<12} "
            f"{row.ret.return_key}"
        )


@returns.command("show")
@click.argument("reference")
def returns_show(reference: str) -> None:
    """Everything about a return (or an order's returns): columns, ids, audit trail, exceptions."""
    ledger = _ledger()
    try:
        found = find_returns(ledger, reference)
        now = datetime.now(UTC)
        for index, ret in enumerate(found):
            if index:
                click.echo("")
            _show(ledger, ret, now)
    finally:
        ledger.dispose()


@returns.command("cancel")
@click.argument("reference")
@click.option("--reason", required=True, help="why (kept in the ledger and the audit log)")
def returns_cancel(reference: str, reason: str) -> None:
    """Withdraw a return before anything arrived: closed in DCL, NetSuite, Shopify, StateSet."""
    ledger = _ledger()
    try:
        ret = _one_return(ledger, reference)
    finally:
        ledger.dispose()
    try:
        with _worker() as (worker, _):
            assert worker.returns is not None  # the CLI's flow F worker always handles returns
            cancelled = worker.returns.cancel(ret.return_key, by=_operator(), reason=reason)
    except InvalidRecordError as error:  # e.g. goods already arrived: not cancellable
        raise click.ClickException(str(error)) from error
    click.echo(_one_line(cancelled, datetime.now(UTC)))


# -- finding and describing returns ---------------------------------------------------------------
def find_returns(ledger, reference: str) -> list[OrderReturn]:
    """The returns ``reference`` names: a return key, an RMA number, or an order (name, Shopify id,
    DCL order number: every return of it). Unknown: a `click.ClickException` (exit 1)."""
    ret = ledger.return_by_key(reference) or ledger.return_by_rma(reference)
    if ret is not None:
        return [ret]
    journey = ledger.find_journey(reference)
    order_id = journey.shopify_order_id if journey is not None else reference.strip()
    found = ledger.returns(shopify_order_id=order_id) if order_id else []
    if not found:
        name = f"#{reference.strip().lstrip('#')}"
        found = [r for r in ledger.returns(limit=1_000_000) if r.order_name == name]
    if not found:
        raise click.ClickException(f"no return {reference} (a return key, an RMA number or an order)")
    return found


def _one_return(ledger, reference: str) -> OrderReturn:
    found = find_returns(ledger, reference)
    if len(found) > 1:
        live = [r for r in found if r.status in OPEN_STATUSES]
        if len(live) != 1:
            keys = ", ".join(r.return_key for r in found)
            raise click.ClickException(f"{reference} has {len(found)} returns ({keys}): name one by its key")
        return live[0]
    return found[0]


def label_tracking(ret: OrderReturn) -> str | None:
    """The return label's tracking number (DCL made it with the RMA)."""
    tracking = ret.outcome.get("tracking_number")
    return str(tracking) if tracking else None


def return_exceptions(ledger, ret: OrderReturn) -> list[ExceptionRow]:
    """Flow F's exceptions about a return: its request's (same key), its own (``<key>:<reason>``:
    wrong item, damaged, no label…) and its RMA's (a receipt after it closed)."""
    keys = {ret.return_key, ret.rma_number}
    return [
        row
        for row in ledger.exceptions(flow=Flow.REQUESTS)
        if row.key in keys or row.key.startswith(f"{ret.return_key}:")
    ]


def lines_text(ret: OrderReturn) -> str:
    return ", ".join(f"{line.sku}×{line.quantity}" for line in ret.lines) or "-"


def _one_line(ret: OrderReturn, now: datetime) -> str:
    row = ReturnRow.of(ret, now).row()
    rma = f", RMA {ret.rma_number}" if ret.rma_number else ""
    return f"{ret.label}: {ret.status}{rma}, {row['money_pending']} pending"


def _show(ledger, ret: OrderReturn, now: datetime) -> None:
    click.echo(f"{ret.label} — {ret.status}")
    fields: list[tuple[str, Any]] = [
        ("order", f"{ret.order_name or '-'} (Shopify {ret.shopify_order_id})"),
        ("lines", lines_text(ret)),
        ("value", f"{cents(ret.value)} {ret.currency}"),
        ("refunded", f"{cents(ret.refunded)} {ret.currency}"),
        ("money pending", f"{cents(ret.money_pending)} {ret.currency}"),
        ("country", ret.country),
        ("rma", ret.rma_number),
        ("label tracking", label_tracking(ret)),
        ("instant refund", "yes" if ret.instant else "no"),
        ("age", _age(ReturnRow.of(ret, now).age_hours)),
        ("created", ret.created_at),
        ("label sent", ret.label_sent_at),
        ("deadline", ret.deadline_at),
        ("reminders sent", ret.reminders_sent),
        ("received", ret.received_at),
        ("refunded at", ret.refunded_at),
        ("updated", ret.updated_at),
        ("request", ret.request_id),
    ]
    for label, value in fields:
        if value is not None and value != "":
            click.echo(f"  {label:<16} {_text(value)}")
    if ret.outcome:
        click.echo("  outcome:")
        for key, value in sorted(ret.outcome.items()):
            click.echo(f"    {key:<28} {_text(value)}")
    records = [r for r in (ret.return_key, ret.rma_number) if r]
    trail = ledger.audit_trail(records)
    click.echo("  audit trail:" if trail else "  audit trail: none")
    for entry in trail:
        said = " ".join(part for part in (entry["remote_id"], entry["detail"]) if part)
        click.echo(
            f"    {entry['at']:%Y-%m-%d %H:%M:%S} {entry['system']:<9} {entry['operation']:<26} "
            f"{entry['outcome']:<5} {said}".rstrip()
        )
    problems = return_exceptions(ledger, ret)
    click.echo("  exceptions:" if problems else "  exceptions: none")
    for problem in problems:
        click.echo(
            f"    #{problem.id} flow {problem.flow} {problem.entity} [{problem.status}] "
            f"{problem.reason}: {problem.message}"
        )


def _text(value: Any) -> str:
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M:%S} UTC"
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    return str(value)


def _age(hours: float) -> str:
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"
