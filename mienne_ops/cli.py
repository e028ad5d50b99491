"""`mienne-ops` — the command line: dev stack, sandbox, webhook receiver, order journeys, exceptions.

mienne-ops dev                       sandbox + demo traffic + webhook receiver + `dagster dev`
mienne-ops sandbox serve             the sandbox server alone
mienne-ops webhooks serve            the webhook receiver alone
mienne-ops gorgias connect --url U   register the Gorgias HTTP integrations that call the receiver
mienne-ops order status <ref>        one order's journey through A → B → C (Shopify id/name, DCL number)
mienne-ops orders backfill --since D  import the orders an outage missed (one bulk read, flow A's path)
mienne-ops orders repair [--dry-run]  finish orders with a missing earlier step (the repair sweep)
mienne-ops exceptions list|retry|resolve
mienne-ops holds list|hold|release    holds before dispatch

mienne-ops ledger purge              personal data out of old inbox payloads (see purge_cli.py)
mienne-ops ledger upgrade|current|archive  the ledger's schema migrations; its archive (retention_cli.py)
mienne-ops ops purge-runs            delete old finished Dagster runs (retention_cli.py)
mienne-ops inventory sync|show        flow E by hand (see inventory_cli.py)
mienne-ops orders cancel <ref>        flow F: cancel everywhere (see requests_cli.py)
mienne-ops refunds create <ref>       flow F: refund lines / shipping / an amount
mienne-ops approvals list|approve|deny  refunds waiting for a person
mienne-ops returns start|list|show|cancel  flow F: returns (see returns_cli.py)
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click
import httpx

from mienne_ops import settings
from mienne_ops.cli_errors import LedgerErrorsGroup

if TYPE_CHECKING:
    from mienne_ops.domain.journey import OrderJourney, ShipmentProgress
    from mienne_ops.ledger.store import ExceptionStatus
    from mienne_ops.resources import ApiClients

REPO_ROOT = Path(__file__).resolve().parents[1]
WEBHOOK_TOPICS = (
    "ORDERS_CREATE",
    "ORDERS_PAID",
    "ORDERS_UPDATED",
    "ORDERS_CANCELLED",
    "REFUNDS_CREATE",
    "RETURNS_REQUEST",  # a customer asks for a return in Shopify: flow F answers it
)


@click.group(cls=LedgerErrorsGroup)  # an unreachable ledger is one line, not a traceback
@click.option("--verbose", is_flag=True, help="debug logging")
def main(verbose: bool) -> None:
    """mienne-ops: order operations on Dagster."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every URL at INFO, query strings included; our HTTP core logs paths only.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its plugin set-up chatter; we say what ran


# -- API clients --------------------------------------------------------------------------------
@contextmanager
def api_clients() -> Iterator[ApiClients]:
    """Every system's client, from its resource initialised the way Dagster initialises it.

    `process_config_and_initialize_cm` resolves a live system's `dg.EnvVar` fields (a resource that
    is built but never initialised holds the variable *names*) and runs the resource's setup and
    teardown, so a command from the shell talks to exactly what a run would.
    """
    from mienne_ops.integrations.resource import ClientResource, ClientT
    from mienne_ops.resources import (
        ApiClients,
        dcl_resource,
        gorgias_resource,
        netsuite_resource,
        recharge_resource,
        shopify_resource,
        stateset_resource,
        zendesk_resource,
    )

    with ExitStack() as stack:

        def ready(resource: ClientResource[ClientT]) -> ClientT:
            return stack.enter_context(resource.process_config_and_initialize_cm()).client

        yield ApiClients(
            shopify=ready(shopify_resource()),
            netsuite=ready(netsuite_resource()),
            dcl=ready(dcl_resource()),
            stateset=ready(stateset_resource()),
            recharge=ready(recharge_resource()),
            gorgias=ready(gorgias_resource()),
            zendesk=ready(zendesk_resource()),
        )


# -- sandbox ------------------------------------------------------------------------------------
@main.group()
def sandbox() -> None:
    """The local sandbox of every external system."""


@sandbox.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=settings.DEFAULT_SANDBOX_PORT, show_default=True, type=int)
@click.option("--db", "db_path", default=None, help="SQLite file of the sandbox world")
@click.option("--traffic/--no-traffic", default=False, help="run the demo traffic simulator")
def sandbox_serve(host: str, port: int, db_path: str | None, traffic: bool) -> None:
    """Serve the sandbox over HTTP (state in a SQLite file)."""
    from mienne_ops.sandbox.server import serve

    serve(host, port, db_path or str(settings.state_dir() / "sandbox.db"), traffic=traffic)


# -- webhooks -----------------------------------------------------------------------------------
@main.group()
def webhooks() -> None:
    """The webhook receiver."""


@webhooks.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=settings.DEFAULT_WEBHOOK_PORT, show_default=True, type=int)
@click.option(
    "--max-delivery-age-hours",
    default=48,
    show_default=True,
    type=int,
    help="refuse Shopify deliveries triggered longer ago (the replay window, see webhooks/replay.py)",
)
def webhooks_serve(host: str, port: int, max_delivery_age_hours: int) -> None:
    """Receive Shopify, Zendesk and Recharge webhooks and Gorgias calls into the ledger inbox."""
    import uvicorn

    from mienne_ops.ledger import Ledger
    from mienne_ops.webhooks.limits import ReceiverLimits, receiver_config
    from mienne_ops.webhooks.receiver import create_receiver_app
    from mienne_ops.webhooks.replay import ReplayWindow

    # Every secret before the ledger is opened: a live system without its secret stops the start here.
    shopify_secret, shop_domain = shopify_webhook_secret(), shopify_shop_domain()
    zendesk_secret, recharge_secret = zendesk_webhook_secret(), recharge_webhook_secret()
    gorgias_secret = gorgias_webhook_secret()
    app = create_receiver_app(
        Ledger(settings.ledger_url()),
        shopify_secret,
        zendesk_secret=zendesk_secret,
        recharge_secret=recharge_secret,
        gorgias_secret=gorgias_secret,
        shop_domain=shop_domain,
        replay_window=ReplayWindow(max_age=timedelta(hours=max_delivery_age_hours)),
    )
    uvicorn.Server(receiver_config(app, host, port, ReceiverLimits())).run()


def webhook_secret(system: str, variable: str, sandbox_secret: str, hint: str = "") -> str:
    """The secret a receiver route checks: ``variable`` when ``system`` is live, the public sandbox
    secret otherwise. A live system without its variable stops the receiver from starting — never
    the sandbox's secret, which anyone can read: a forged delivery would pass."""
    from mienne_ops.resources import LIVE_SWITCHES, is_live

    if not is_live(system):
        return sandbox_secret
    secret = os.environ.get(variable)
    if not secret:
        raise click.ClickException(
            f"{LIVE_SWITCHES[system]} is set but {variable} is not: the receiver cannot verify "
            f"{system}'s webhooks and does not start{hint}"
        )
    return secret


def shopify_webhook_secret() -> str:
    """The app's client secret Shopify signs webhooks with."""
    from mienne_ops.sandbox import credentials

    hint = " (the app's client secret, Partner Dashboard → App setup)"
    return webhook_secret("shopify", "SHOPIFY_API_SECRET", credentials.SHOPIFY["api_secret"], hint)


def shopify_shop_domain() -> str:
    """The one shop whose deliveries the receiver takes (``X-Shopify-Shop-Domain``): the live shop's
    host from ``SHOPIFY_SHOP_URL``, else the sandbox's."""
    from urllib.parse import urlsplit

    from mienne_ops.resources import is_live
    from mienne_ops.sandbox import credentials

    if not is_live("shopify"):
        return credentials.SHOPIFY["shop_domain"]
    url = os.environ.get("SHOPIFY_SHOP_URL", "").strip()
    domain = urlsplit(url if "//" in url else f"//{url}").hostname
    if not domain:
        raise click.ClickException("SHOPIFY_ACCESS_TOKEN is set but SHOPIFY_SHOP_URL is not: whose webhooks?")
    return domain


def zendesk_webhook_secret() -> str:
    """The signing secret of our Zendesk webhook (copied from Zendesk Admin Center)."""
    from mienne_ops.sandbox import credentials

    hint = " (copy the webhook's signing secret from Zendesk Admin Center)"
    return webhook_secret("zendesk", "ZENDESK_WEBHOOK_SECRET", credentials.ZENDESK["webhook_secret"], hint)


def recharge_webhook_secret() -> str:
    """The API client secret Recharge signs webhooks with."""
    from mienne_ops.sandbox import credentials

    return webhook_secret("recharge", "RECHARGE_CLIENT_SECRET", credentials.RECHARGE["client_secret"])


def gorgias_webhook_secret() -> str:
    """The secret header value our Gorgias HTTP integration sends (Gorgias signs nothing)."""
    from mienne_ops.sandbox import credentials

    return webhook_secret("gorgias", "GORGIAS_WEBHOOK_SECRET", credentials.GORGIAS["webhook_secret"])


def subscribe_recharge_webhooks(uri: str) -> dict[str, int]:
    """Register /webhooks/recharge for mienne-ops' Recharge topics (idempotent)."""
    from mienne_ops.resources import recharge_resource

    with recharge_resource().process_config_and_initialize_cm() as resource:
        return resource.client.subscribe_webhooks(uri)


def register_zendesk_webhook(sandbox_url: str, receiver_url: str) -> None:
    """Point the sandbox's Zendesk webhook (our trigger's) at the receiver (idempotent)."""
    answer = httpx.post(f"{sandbox_url}/_sandbox/zendesk/webhooks", json={"url": receiver_url}, timeout=30)
    answer.raise_for_status()


@webhooks.command("subscribe")
@click.option("--uri", required=True, help="public URL of /webhooks/shopify")
def webhooks_subscribe(uri: str) -> None:
    """Subscribe the receiver to the Shopify order topics (idempotent)."""
    for topic, subscription in subscribe_order_webhooks(uri).items():
        click.echo(f"{topic}: {subscription}")


def subscribe_order_webhooks(uri: str) -> dict[str, str]:
    with api_clients() as clients:
        return {topic: clients.shopify.subscribe_webhook(topic, uri) for topic in WEBHOOK_TOPICS}


# -- gorgias ------------------------------------------------------------------------------------
GORGIAS_TRIGGERS = ("ticket-created", "ticket-message-created")


@main.group()
def gorgias() -> None:
    """The Gorgias helpdesk."""


@gorgias.command("connect")
@click.option("--url", required=True, help="public URL of the receiver's /webhooks/gorgias")
def gorgias_connect(url: str) -> None:
    """Register (or update) the HTTP integrations that call the receiver (idempotent)."""
    for trigger, integration_id in connect_gorgias(url).items():
        click.echo(f"{trigger}: HTTP integration {integration_id}")


def connect_gorgias(url: str) -> dict[str, int]:
    """One HTTP integration per trigger, so each call's form can name its trigger (a form has no
    variable for it); both carry the secret header the receiver checks."""
    from mienne_ops.integrations.gorgias import WEBHOOK_SECRET_HEADER
    from mienne_ops.resources import gorgias_resource

    secret = gorgias_webhook_secret()  # stops with a message when live without GORGIAS_WEBHOOK_SECRET
    with gorgias_resource().process_config_and_initialize_cm() as resource:
        return {
            trigger: resource.client.ensure_http_integration(
                name=f"mienne-ops {trigger}",
                url=url,
                headers={WEBHOOK_SECRET_HEADER: secret},
                triggers=[trigger],
            )
            for trigger in GORGIAS_TRIGGERS
        }


# -- dev ----------------------------------------------------------------------------------------
#: The Dagster instance `mienne-ops dev` runs (and `inventory sync` reports to when DAGSTER_HOME is unset).
DEV_DAGSTER_HOME = REPO_ROOT / ".dagster_home"
#: Warnings every process of the dev stack hides (PYTHONWARNINGS: literal message prefixes). Dagster
#: warns that `owners` is in beta each time it copies a sensor onto resolved jobs — its own call, no
#: sensor here sets owners — in every run worker: hundreds of lines a minute. `dagster dev` itself
#: tells us to use `dg dev`, which this project does not install.
QUIET_WARNINGS = (
    "ignore:Parameter `owners` of initializer",
    "ignore:Function `dev_command` is superseded",
)


@main.command()
@click.option("--port", default=3000, show_default=True, type=int, help="Dagster UI port")
@click.option("--sandbox-port", default=settings.DEFAULT_SANDBOX_PORT, show_default=True, type=int)
@click.option("--webhook-port", default=settings.DEFAULT_WEBHOOK_PORT, show_default=True, type=int)
@click.option("--traffic/--no-traffic", default=True, show_default=True)
@click.option("--fresh", is_flag=True, help="start from an empty sandbox world and ledger")
@click.option(
    "--dagster-home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="the Dagster instance's directory [default: .dagster_home in the repository]",
)
@click.pass_context
def dev(
    ctx: click.Context,
    port: int,
    sandbox_port: int,
    webhook_port: int,
    traffic: bool,
    fresh: bool,
    dagster_home: Path | None,
) -> None:
    """Sandbox + demo traffic + webhook receiver + the Dagster UI, in one command.

    The console shows warnings and errors; everything is in dev.log under the state directory
    (`mienne-ops --verbose dev` shows everything). Ctrl-C stops it cleanly (see devtools/shutdown.py).
    """
    from mienne_ops.devtools.console import STOPPING, pump
    from mienne_ops.devtools.shutdown import stop_stack

    state = settings.state_dir()
    dagster_home = (dagster_home or DEV_DAGSTER_HOME).resolve()
    if fresh:
        # A new world, ledger and Dagster instance together: sensor cursors and queued runs of the
        # old world would only point at records that no longer exist.
        for name in ("sandbox.db", "ledger.db"):
            for suffix in ("", "-wal", "-shm"):
                (state / f"{name}{suffix}").unlink(missing_ok=True)
        shutil.rmtree(dagster_home, ignore_errors=True)
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    from mienne_ops.ledger.migrate import upgrade_ledger

    os.environ["MIENNE_STATE_DIR"] = str(state)
    upgrade_ledger(settings.ledger_url())  # before the receiver or any run opens it
    _print_revision()
    env = {
        # The demo's orders wait one minute before DCL, not the production default of 30.
        "MIENNE_EDIT_WINDOW_MINUTES": "1",
        # With the demo traffic, DCL scans a return's label 20 s after the RMA and receives the
        # parcel 60 s after it (the DCL fake's auto mode), so demo returns reach their refund.
        **({"MIENNE_SANDBOX_DCL_RMA_AUTO": "20,60"} if traffic else {}),
        "MIENNE_DAGSTER_UI_URL": f"http://127.0.0.1:{port}",  # alerts link to this UI's runs
        **_dotenv(),
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "MIENNE_SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}",
        "MIENNE_STATE_DIR": str(state),
        "PYTHONWARNINGS": ",".join(filter(None, [*QUIET_WARNINGS, os.environ.get("PYTHONWARNINGS")])),
        # Their output goes through a pipe to the console filter: line by line, not in 8 KB blocks.
        "PYTHONUNBUFFERED": "1",
    }
    verbose = bool(ctx.find_root().params.get("verbose"))
    log = open(state / "dev.log", "a", encoding="utf-8")  # noqa: SIM115 - closed in the finally below
    threshold = logging.DEBUG if verbose else logging.WARNING

    def spawn(command: list[str], cwd: Path = REPO_ROOT) -> subprocess.Popen:
        child = _spawn(command, env, cwd=cwd)
        pumps.append(pump(child.stdout, sys.stdout, log, threshold))  # type: ignore[arg-type]
        return child

    me = [sys.executable, "-m", "mienne_ops.cli"]
    services: list[subprocess.Popen] = []
    pumps: list = []
    dagster: subprocess.Popen | None = None
    # Stop cleanly on SIGTERM as on Ctrl-C (a backgrounded shell job ignores SIGINT).
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        traffic_flag = "--traffic" if traffic else "--no-traffic"
        services.append(spawn([*me, "sandbox", "serve", "--port", str(sandbox_port), traffic_flag]))
        services.append(spawn([*me, "webhooks", "serve", "--port", str(webhook_port)]))
        _wait_healthy(f"http://127.0.0.1:{sandbox_port}/_sandbox/health")
        _wait_healthy(f"http://127.0.0.1:{webhook_port}/health")
        os.environ.update({k: env[k] for k in ("MIENNE_SANDBOX_URL", "MIENNE_STATE_DIR")})
        subscribe_order_webhooks(f"http://127.0.0.1:{webhook_port}/webhooks/shopify")
        from mienne_ops.resources import is_live

        if not is_live("zendesk"):
            register_zendesk_webhook(
                env["MIENNE_SANDBOX_URL"], f"http://127.0.0.1:{webhook_port}/webhooks/zendesk"
            )
        if not is_live("recharge"):  # a live Recharge gets the public HTTPS URL, registered by hand
            subscribe_recharge_webhooks(f"http://127.0.0.1:{webhook_port}/webhooks/recharge")
        if not is_live("gorgias"):  # a live helpdesk is never pointed at a local receiver
            connect_gorgias(f"http://127.0.0.1:{webhook_port}/webhooks/gorgias")
        click.echo(
            f"sandbox on :{sandbox_port}, webhooks on :{webhook_port}; Dagster UI on http://127.0.0.1:{port}"
        )
        click.echo(f"console: warnings and errors only; everything in {state / 'dev.log'}")
        # In DAGSTER_HOME, beside the dagster.yaml copied there: run from the repository root,
        # `dagster dev` would find the repository's dagster.yaml and warn it "will not be used".
        workspace = str(REPO_ROOT / "workspace.yaml")
        dagster = spawn(
            [venv_tool("dagster"), "dev", "-w", workspace, "-h", "127.0.0.1", "-p", str(port)],
            cwd=dagster_home,
        )
        dagster.wait()
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl-C must not abandon the stop half-way (it is bounded by its grace period).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        click.echo("stopping: Dagster first (runs in flight finish), then the receiver and the sandbox")
        STOPPING.set()
        report = stop_stack(dagster, services, dagster_home)
        for thread in pumps:
            thread.join(timeout=5)
        log.close()
        click.echo(f"stopped: {report.summary()}")


def _dotenv() -> dict[str, str]:
    """The repository's `.env` (the README's way to go live), for every child: `dagster dev` runs in
    DAGSTER_HOME now, where Dagster's own `.env` loading would not find it."""
    from dotenv import dotenv_values

    path = REPO_ROOT / ".env"
    values = dotenv_values(path) if path.exists() else {}
    return {name: value for name, value in values.items() if value is not None}


def _spawn(command: list[str], env: dict[str, str], cwd: Path = REPO_ROOT) -> subprocess.Popen:
    """A child in its own process group with Ctrl-C restored (a background job ignores SIGINT, and
    children inherit that), so that stopping the group reaches every process it started. Its output
    comes back through a pipe, for the console filter."""

    def restore_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    return subprocess.Popen(
        command,
        env=env,
        cwd=cwd,
        preexec_fn=restore_sigint,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def venv_tool(name: str) -> str:
    """A console script installed beside this Python (the venv may not be activated)."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


def _wait_healthy(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise click.ClickException(f"{url} did not become healthy within {timeout:.0f} s")


# -- the ledger (our own state) -----------------------------------------------------------------
def _ledger():
    from mienne_ops.ledger import Ledger

    return Ledger(settings.ledger_url())


@main.group()
def ledger() -> None:
    """mienne-ops's own state: schema migrations, inbox retention."""


@ledger.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def ledger_upgrade(revision: str) -> None:
    """Migrate the ledger (MIENNE_LEDGER_URL, default SQLite under the state dir) to a revision."""
    from mienne_ops.ledger.migrate import upgrade_ledger

    upgrade_ledger(settings.ledger_url(), revision)
    _print_revision()


@ledger.command("current")
def ledger_current() -> None:
    """Print the ledger's schema revision and the newest one this code knows."""
    _print_revision()


def _print_revision() -> None:
    import sqlalchemy as sa

    from mienne_ops.ledger.migrate import current_revision, head_revision

    engine = sa.create_engine(settings.ledger_url())
    with engine.connect() as connection:
        current = current_revision(connection)
    engine.dispose()
    click.echo(f"ledger revision {current or 'none'} (newest {head_revision()})")


# -- orders and exceptions ----------------------------------------------------------------------


@main.group()
def order() -> None:
    """Look at one order."""


@order.command("status")
@click.argument("reference")
def order_status(reference: str) -> None:
    """Print an order's journey: ids in every system, shipments, returns, exceptions, external writes.

    REFERENCE is a Shopify order id or name (#1001), a DCL order number or a NetSuite sales order id.
    """
    from mienne_ops.domain.money import cents
    from mienne_ops.returns_cli import label_tracking, lines_text, return_exceptions

    ledger = _ledger()
    journey = ledger.find_journey(reference)
    if journey is None:
        raise click.ClickException(f"no order {reference} in the ledger")
    click.echo(f"{journey.name or reference} — stage: {journey.stage}")
    for label, value in journey.ids_by_system().items():
        click.echo(f"  {label:<21} {value}")
    if journey.stateset_shipped_at:
        click.echo(f"  {'stateset shipped':<21} {journey.stateset_shipped_at:%Y-%m-%d %H:%M:%S}")
    if journey.shipments_completed:
        click.echo(f"  {'complete':<21} all steps done for {journey.shipments_completed} shipment(s)")
    shipments = ledger.shipments_of(journey.dcl_order_number) if journey.dcl_order_number else []
    _echo_gaps(journey, shipments)
    _echo_shipments(shipments)
    order_returns = (
        ledger.returns(shopify_order_id=journey.shopify_order_id) if journey.shopify_order_id else []
    )
    if order_returns:
        click.echo(f"  returns ({len(order_returns)}):")
    for ret in order_returns:
        tracking = label_tracking(ret)
        click.echo(
            f"    {ret.return_key:<40} {ret.status}: {lines_text(ret)}, rma {ret.rma_number or '-'}, "
            f"label {tracking or '-'}, refunded {cents(ret.refunded)} of {cents(ret.value)} {ret.currency}"
        )
    # Flow C audits its writes per shipment and flow F per return: they are the order's writes too.
    records = [r for r in (journey.shopify_order_id, journey.dcl_order_number) if r]
    records += [shipment.shipment_key for shipment in shipments]
    records += [r for ret in order_returns for r in (ret.return_key, ret.rma_number) if r]
    click.echo("  external writes:")
    for entry in ledger.audit_trail(records):
        click.echo(
            f"    {entry['at']:%Y-%m-%d %H:%M:%S} {entry['system']:<9} {entry['operation']:<26} "
            f"{entry['outcome']:<5} {entry['remote_id'] or ''}"
        )
    keys = {*records, journey.netsuite_sales_order_id}
    problems = {p.id: p for key in keys if key for p in ledger.exceptions(key=key)}
    problems |= {p.id: p for ret in order_returns for p in return_exceptions(ledger, ret)}
    if problems:
        click.echo("  exceptions:")
        for problem in sorted(problems.values(), key=lambda p: p.id):
            click.echo(
                f"    #{problem.id} flow {problem.flow} [{problem.status}] "
                f"{problem.reason}: {problem.message}"
            )


def _echo_gaps(journey: OrderJourney, shipments: list[ShipmentProgress]) -> None:
    """Each step the ledger does not show as done although the order went on (`domain.journey_gaps`):
    a gap reads as a gap, with whether the repair sweep will finish it or its flow still may."""
    from datetime import timedelta

    from mienne_ops.domain.journey_gaps import describe, journey_gaps
    from mienne_ops.resources import business_rules

    rules = business_rules()
    found = journey_gaps(
        journey, shipments, now=datetime.now(UTC), grace=timedelta(minutes=rules.repair_grace_minutes)
    )
    if not found:
        return
    click.echo(f"  gaps ({len(found.gaps)}):")
    for gap in found.gaps:
        click.echo(f"    {describe(gap, imported_tag=rules.imported_tag, due=found.due)}")


def _echo_shipments(shipments: list[ShipmentProgress]) -> None:
    """Each DCL shipment on its own lines — tracking, item fulfillment, Shopify fulfillment — so a
    split shipment reads as two parcels, each with what it created in NetSuite and Shopify."""
    if not shipments:
        return
    split = "  split: DCL shipped this order in parts" if len(shipments) > 1 else ""
    click.echo(f"  shipments ({len(shipments)}):{split}")
    for number, shipment in enumerate(shipments, start=1):
        if shipment.tracking_numbers is None:
            tracking = "not recorded"
        else:
            tracking = f"{shipment.carrier or '?'} {', '.join(shipment.tracking_numbers) or '(no number)'}"
        on_shopify = (
            "not yet on Shopify"
            if not shipment.on_shopify
            else f"on Shopify as {shipment.shopify_fulfillment_id or '(nothing left to fulfil)'}"
        )
        click.echo(f"    {number}. {shipment.shipment_key}")
        click.echo(f"       tracking {tracking}")
        click.echo(f"       item fulfillment {shipment.item_fulfillment_id or '-'}, {on_shopify}")


@main.group()
def orders() -> None:
    """Many orders at once."""


@orders.command("backfill")
@click.option(
    "--since",
    required=True,
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]),
    help="orders updated since then (a date or time; without a zone, UTC)",
)
def orders_backfill(since: datetime) -> None:
    """Import the paid, unfulfilled orders updated since a date that flow A has not imported yet.

    One Shopify bulk operation finds them; each is imported as flow A imports it (idempotent:
    running the backfill again creates nothing new).
    """
    from mienne_ops.errors import MienneOpsError
    from mienne_ops.flows.orders import reconciliation_search
    from mienne_ops.resources import business_rules
    from mienne_ops.sync.backfill import backfill_orders
    from mienne_ops.sync.orders import OrderIngestor, OrderSystems

    rules = business_rules()
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    ledger = _ledger()
    with api_clients() as clients:
        try:
            # Flow A's own ingestor: the same mapping, and the same holds before dispatch.
            ingestor = OrderIngestor.from_rules(rules, OrderSystems.of(clients, ledger))
            search = reconciliation_search(rules.imported_tag, since)
            result = backfill_orders(
                clients.shopify, ingestor, ledger, search, workers=rules.parallel_records
            )
        except MienneOpsError as error:  # e.g. another bulk query still running, credentials rejected
            raise click.ClickException(str(error)) from error
    held = f"; held {len(result.held)} with an open exception" if result.held else ""
    click.echo(
        f"{len(result.found)} order(s) updated since {since.isoformat()} not yet imported — "
        f"{result.report.summary()}{held}"
    )
    for problem in result.report.problems:
        click.echo(f"  {problem.key} [{problem.outcome.value}] {problem.reason}: {problem.message}")
    if result.report.problems:
        raise SystemExit(1)


def _refuse_beside_flow_runs(flow: str, force: bool) -> None:
    """Exit 2 while a run of ``flow`` is in flight: a repair beside an import of the same order
    could race it (StateSet's find-before-create makes a duplicate unlikely, not impossible)."""
    busy = flow_runs_in_flight(flow)
    if busy is None:
        click.echo(
            f"note: no Dagster instance at {dagster_home()}; not checked for flow {flow} runs in flight"
        )
    elif busy and not force:
        click.echo(
            f"flow {flow} has {len(busy)} run(s) queued or running ({', '.join(busy[:3])}); a repair beside"
            " them could race on the same orders. Run it again when they finish, or pass --force."
        )
        raise SystemExit(2)


def dagster_home() -> Path:
    """The Dagster instance the CLI reports to and asks: DAGSTER_HOME's, else `mienne-ops dev`'s."""
    return Path(os.environ.get("DAGSTER_HOME") or DEV_DAGSTER_HOME)


def flow_runs_in_flight(flow: str) -> list[str] | None:
    """Ids of the Dagster runs of ``flow`` queued or running; None when there is no instance to ask."""
    import dagster as dg

    from mienne_ops.flows.common import TAG_FLOW
    from mienne_ops.flows.sensor_kit import IN_FLIGHT_STATUSES

    home = dagster_home()
    if not (home / "dagster.yaml").exists():
        return None
    instance = dg.DagsterInstance.from_config(str(home))
    try:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={TAG_FLOW: flow}, statuses=IN_FLIGHT_STATUSES))
    finally:
        instance.dispose()
    return [run.run_id for run in runs]


@orders.command("repair")
@click.option("--dry-run", is_flag=True, help="list the gaps; change nothing")
@click.option("--days", type=int, default=None, help="journeys changed within N days (default: the rules')")
@click.option("--force", is_flag=True, help="repair even while a flow A run is queued or running")
def orders_repair(dry_run: bool, days: int | None, force: bool) -> None:
    """Finish orders whose later stage was reached with an earlier step missing (the repair sweep
    `journey_repair_sensor` runs every 10 minutes, by hand): flow A's import, the Shopify tag, the
    StateSet order and its SHIPPED status. Idempotent; each repair is audited.

    In Dagster a repair is a flow A run, so it never runs beside an import; by hand it asks the
    Dagster instance first and refuses (exit 2) while a flow A run is queued or running."""
    from mienne_ops.resources import business_rules
    from mienne_ops.sync.batch import run_batch
    from mienne_ops.sync.orders import OrderSystems
    from mienne_ops.sync.repair import ENTITY, FLOW, JourneyRepair, SweepWindow, describe_findings

    rules = business_rules()
    ledger = _ledger()
    window = SweepWindow.at(
        datetime.now(UTC),
        window=timedelta(days=days or rules.repair_window_days),
        grace=timedelta(minutes=rules.repair_grace_minutes),
    )
    with api_clients() as clients:
        repair = JourneyRepair.from_rules(rules, OrderSystems.of(clients, ledger))
        findings = repair.find(window)
        for line in describe_findings(findings.due):
            click.echo(f"gap: {line}")
        for line in describe_findings(findings.waiting):
            click.echo(f"left to its flow for now: {line}")
        if findings.dcl_order_numbers:
            numbers = ", ".join(findings.dcl_order_numbers)
            click.echo(f"DCL orders with tracking not on Shopify (flow C, via the sensor): {numbers}")
        if dry_run or not findings.order_keys:
            click.echo(f"{len(findings.order_keys)} order(s) to repair" + (" (dry run)" if dry_run else ""))
            return
        _refuse_beside_flow_runs(FLOW, force)
        report = run_batch(
            flow=FLOW, entity=ENTITY, keys=findings.order_keys, handle=repair.repair, ledger=ledger
        )
    click.echo(f"repaired: {report.summary()}")
    for problem in report.problems:
        click.echo(f"  {problem.key} [{problem.outcome.value}] {problem.reason}: {problem.message}")
    if report.problems:
        raise SystemExit(1)


@main.group()
def holds() -> None:
    """Holds before dispatch: list them, hold an order, release one."""


def _operator() -> str:
    return os.environ.get("USER") or "operator"


def _journey_key(ledger, reference: str) -> str:
    journey = ledger.find_journey(reference)
    if journey is None or journey.shopify_order_id is None:
        raise click.ClickException(f"no Shopify order {reference} in the ledger")
    return journey.shopify_order_id


@holds.command("list")
@click.option("--all", "show_all", is_flag=True, help="include released holds")
@click.option("--order", "reference", default=None, help="one order (Shopify id or name)")
def holds_list(show_all: bool, reference: str | None) -> None:
    """Active holds, oldest first: order, reason, age, what releases it."""
    ledger = _ledger()
    if reference:
        rows = ledger.holds_of(_journey_key(ledger, reference))
        rows = rows if show_all else [h for h in rows if h.active]
    else:
        rows = ledger.active_holds()
    if not rows:
        click.echo("no holds")
    from mienne_ops.sync.hold_recall import DclState, dcl_states

    at_dcl = dcl_states(ledger, sorted({hold.shopify_order_id for hold in rows}))
    now = datetime.now(UTC)
    for hold in rows:
        state = (
            f"released {hold.released_at:%Y-%m-%d %H:%M} by {hold.released_by}"
            if hold.released_at
            else f"held {_age(hold.age(now))}"
            + (f", until {hold.until:%Y-%m-%d %H:%M} UTC" if hold.until else f", release {hold.release}")
        )
        dcl_state, dcl_detail = at_dcl[hold.shopify_order_id]
        shown = hold.active and dcl_state != DclState.NOT_SENT
        dcl = f" [DCL: {dcl_state}: {dcl_detail}]" if shown else ""
        by = f"(by {hold.placed_by})"
        click.echo(f"{hold.shopify_order_id:<14} {hold.reason:<12} {state} — {hold.detail} {by}{dcl}")


def _age(age) -> str:
    hours = age.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


@holds.command("hold")
@click.argument("reference")
@click.option("--note", required=True, help="why (shown in the ledger, the UI and Shopify)")
def holds_hold(reference: str, note: str) -> None:
    """Hold an order by hand (released only by `holds release`)."""
    from mienne_ops.domain.holds import HoldDecision, HoldReason

    ledger = _ledger()
    key = _journey_key(ledger, reference)
    placed = ledger.place_hold(key, HoldDecision(HoldReason.MANUAL, note), placed_by=_operator())
    click.echo(f"{reference} held" if placed else f"{reference} was already held by hand (note updated)")
    _recall_from_dcl(ledger, key, reference)


def _recall_from_dcl(ledger, key: str, reference: str) -> None:
    """DCL already has the order: cancel it there now (or say it is too late), so the operator sees
    the outcome at once; the holds sensor does the same for holds placed any other way."""
    from mienne_ops.errors import MienneOpsError
    from mienne_ops.sync.hold_recall import DclRecall, DclState, dcl_states, due_recalls

    journey = ledger.journey(key)
    number = journey.dcl_order_number if journey else None
    if number is None or number not in due_recalls(ledger):
        state, detail = dcl_states(ledger, [key])[key]
        if state != DclState.NOT_SENT:
            click.echo(f"DCL: {state}: {detail}")
        return
    problems = []
    try:
        with api_clients() as clients:
            problems = DclRecall(clients.dcl, clients.netsuite, ledger).recall_all([number]).problems
    except MienneOpsError as error:
        problems = []
        click.echo(f"DCL not reached ({error}); the holds sensor tries again")
    state, detail = dcl_states(ledger, [key])[key]
    if state == DclState.WITHDRAWN:
        click.echo(f"{detail}: flow B sends {reference} to DCL again when the hold is released")
    elif state == DclState.TOO_LATE:
        click.echo(f"TOO LATE: {problems[0].message if problems else detail}", err=True)
        click.echo("the hold stays; see `mienne-ops exceptions list --flow holds`", err=True)
        raise SystemExit(1)
    else:
        reasons = "; ".join(f"{p.reason}: {p.message}" for p in problems)
        retry = f" ({reasons}); the holds sensor tries again" if reasons else ""
        click.echo(f"DCL: {state}: {detail}{retry}")


@holds.command("release")
@click.argument("reference")
@click.option("--reason", default=None, help="only this hold (default: every active hold of the order)")
def holds_release(reference: str, reason: str | None) -> None:
    """Release an order's holds; the next dispatch tick sends it to DCL if nothing else holds it."""
    from mienne_ops.domain.holds import HoldReason

    ledger = _ledger()
    key = _journey_key(ledger, reference)
    active = [h for h in ledger.holds_of(key) if h.active and (reason is None or h.reason == reason)]
    if not active:
        raise click.ClickException(f"{reference} has no active {reason or ''} hold".replace("  ", " "))
    for hold in active:
        ledger.release_hold(key, HoldReason(hold.reason), released_by=_operator())
        click.echo(f"released {hold.reason} on {reference}")
    journey = ledger.journey(key)
    if journey and journey.stage in ("withdrawn", "withdrawing") and not ledger.active_holds([key]):
        number = journey.dcl_order_number
        click.echo(f"its DCL order {number} was cancelled for the hold: flow B sends it again")


@main.group()
def exceptions() -> None:
    """The exceptions queue (quarantined records)."""


@exceptions.command("list")
@click.option("--all", "show_all", is_flag=True, help="include resolved ones")
@click.option("--flow", default=None)
def exceptions_list(show_all: bool, flow: str | None) -> None:
    from mienne_ops.ledger.store import ExceptionStatus

    statuses = None if show_all else [ExceptionStatus.OPEN, ExceptionStatus.RETRYING]
    rows = _ledger().exceptions(statuses=statuses, flow=flow)
    if not rows:
        click.echo("no exceptions")
    for row in rows:
        click.echo(
            f"#{row.id:<5} flow {row.flow} {row.entity} {row.key:<22} [{row.status}] x{row.attempts} "
            f"{row.reason}: {row.message}"
        )


@exceptions.command("retry")
@click.argument("exception_id", type=int)
def exceptions_retry(exception_id: int) -> None:
    """Put a quarantined record back in line: the flow's sensor picks it up on its next tick."""
    from mienne_ops.ledger.store import ExceptionStatus

    _set_exception_status(exception_id, ExceptionStatus.RETRYING)
    click.echo(f"#{exception_id} will be retried")


@exceptions.command("resolve")
@click.argument("exception_id", type=int)
def exceptions_resolve(exception_id: int) -> None:
    """Mark an exception handled by hand."""
    from mienne_ops.ledger.store import ExceptionStatus

    _set_exception_status(exception_id, ExceptionStatus.RESOLVED)
    click.echo(f"#{exception_id} resolved")


def _set_exception_status(exception_id: int, status: ExceptionStatus) -> None:
    """Set the status of exception ``exception_id``; an unknown id is the operator's error."""
    ledger = _ledger()
    if ledger.exception_by_id(exception_id) is None:
        raise click.ClickException(f"no exception #{exception_id}")
    ledger.set_exception_status(exception_id, status)


# -- inventory (flow E; the commands live in inventory_cli.py) ----------------------------------
from mienne_ops.inventory_cli import inventory as _inventory  # noqa: E402

main.add_command(_inventory)

# -- cancellations, refunds, approvals (flow F; the commands live in requests_cli.py) -------------
from mienne_ops.requests_cli import approvals as _approvals  # noqa: E402
from mienne_ops.requests_cli import orders_cancel as _orders_cancel  # noqa: E402
from mienne_ops.requests_cli import refunds as _refunds  # noqa: E402

orders.add_command(_orders_cancel)
main.add_command(_refunds)
main.add_command(_approvals)

# -- returns (flow F; the commands live in returns_cli.py) ---------------------------------------
from mienne_ops.returns_cli import returns as _returns  # noqa: E402

main.add_command(_returns)

# -- inbox retention (issue 13; the command lives in purge_cli.py) --------------------------------
from mienne_ops.purge_cli import purge as _purge  # noqa: E402

ledger.add_command(_purge)
# -- retention: `ledger archive`, `ops purge-runs` (the commands live in retention_cli.py) ----------
from mienne_ops.retention_cli import register as _register_retention  # noqa: E402

_register_retention(main, ledger)


if __name__ == "__main__":
    main()
