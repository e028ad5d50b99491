"""Sensor tick times with a year of orders in the ledger, before and after the archive (issue 12).

    .venv/bin/python bench/sensor_ticks.py                          # 1,000,000 orders, SQLite and PostgreSQL
    .venv/bin/python bench/sensor_ticks.py --orders 2000 --backend sqlite   # the CI smoke run

What one run does, per backend (SQLite file; a throw-away PostgreSQL database on 127.0.0.1:5432):

1. Fills a migrated ledger with ``--orders`` orders over a year, by bulk inserts: most finished
   (shipped with every shipment complete, some cancelled), the newest ``--in-flight`` still moving
   through A → B → C (plus a few stuck for months), each with what the flows leave behind — a
   released edit-window hold, two Shopify webhooks, two audit rows, shipments; 2 % with a resolved
   exception, a hundred open or retrying; helpdesk events, returns and requests.
2. Evaluates every real sensor of the code location (`dg.build_sensor_context`, as the daemon does)
   against the sandbox, started in this process with an empty world, so the APIs answer at once and
   the tick time is the sensor's own work: its ledger reads and a local HTTP call or two. Each
   sensor ticks once to set its cursor (the inbox cursors start at the inbox's end, as in a running
   deployment), then ``--ticks`` times; the median is reported.
3. Three states: without revision 0009's indexes (dropped for the measurement), with them, and
   after `mienne-ops ledger archive --older-than-days 90`.

A benchmark, not a test: it asserts nothing about time. Results: bench/results/sensor_ticks.json.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import sqlalchemy as sa
from dagster._core.execution.resources_init import get_transitive_required_resource_keys

from mienne_ops.definitions import build_definitions
from mienne_ops.ledger import schema
from mienne_ops.ledger.archive import ArchivePolicy, archive_ledger
from mienne_ops.ledger.migrate import upgrade_ledger
from mienne_ops.ledger.resource import LedgerResource
from mienne_ops.resources import LIVE_SWITCHES, build_resources
from mienne_ops.sandbox.server import SandboxServer

PG_ADMIN_URL = os.environ.get(
    "MIENNE_TEST_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
RESULTS = Path(__file__).resolve().parent / "results" / "sensor_ticks.json"
#: Revision 0009's indexes for the sensors' reads (dropped for the "before" measurement).
SENSOR_INDEXES = {
    "ix_journey_stage": ("order_journeys", ["stage", "updated_at"]),
    "ix_inbox_source_id": ("inbox_events", ["source", "id"]),
    "ix_inbox_source_resource": ("inbox_events", ["source", "resource_id"]),
}
YEAR = timedelta(days=365)
CHUNK = 20_000


@dataclass(frozen=True)
class Settings:
    orders: int
    in_flight: int
    ticks: int
    backends: list[str]
    archive_days: int
    output: Path


def parse_args(argv: list[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--in-flight", type=int, default=3_000, help="orders not finished (newest)")
    parser.add_argument("--ticks", type=int, default=5, help="measured ticks per sensor (median)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--archive-days", type=int, default=90)
    parser.add_argument("--output", type=Path, default=RESULTS)
    a = parser.parse_args(argv)
    backends = ["sqlite", "postgresql"] if a.backend == "both" else [a.backend]
    return Settings(a.orders, min(a.in_flight, a.orders), a.ticks, backends, a.archive_days, a.output)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the ledger's contents -------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    """When and how each order of the year happened: order ``i`` (1-based) of ``orders`` was placed
    at ``start + i/orders`` of the year; the newest ``in_flight`` are not finished, nor are a few
    stuck ones spread over the year."""

    orders: int
    in_flight: int
    now: datetime

    def placed_at(self, i: int) -> datetime:
        return self.now - YEAR + YEAR * (i / self.orders)

    def stuck(self, i: int) -> bool:
        return i % 50_000 == 7  # ~20 in a million: waiting on an exception for months

    def finished(self, i: int) -> bool:
        return i <= self.orders - self.in_flight and not self.stuck(i)

    def stage(self, i: int) -> str:
        if self.finished(i):
            return "cancelled" if i % 50 == 3 else ("test_skipped" if i % 1000 == 9 else "shipped")
        moving = ["received", "in_netsuite", "dispatched", "dispatched", "partially_shipped", "shipped"]
        if i % 400 == 1:
            return "withdrawn" if i % 800 == 1 else "withdrawing"
        return moving[i % len(moving)]


def journey_row(world: World, i: int) -> dict[str, Any]:
    placed, stage = world.placed_at(i), world.stage(i)
    done = world.finished(i)
    sent = stage not in ("received", "in_netsuite", "cancelled", "test_skipped")
    return {
        "id": i,
        "shopify_order_id": str(5_000_000 + i),
        "name": f"#{100_000 + i}",
        "stage": stage,
        "lines": [{"sku": f"SKU-{i % 40}", "quantity": 1 + i % 3}],
        "netsuite_sales_order_id": str(i) if stage != "received" else None,
        "netsuite_tranid": f"SO{i}" if stage != "received" else None,
        "dcl_order_number": f"D{i}" if sent else None,
        "stateset_order_id": f"ss-{i}",
        "stateset_shipped_at": placed + timedelta(days=2) if stage == "shipped" else None,
        "cash_sale_id": str(i) if stage == "shipped" and done else None,
        "shipments_completed": (1 + (i % 10 == 0)) if stage == "shipped" and done else None,
        "imported_at": placed + timedelta(seconds=30) if stage != "received" else None,
        "invoice_id": None,
        "created_at": placed,
        "updated_at": placed + timedelta(days=3) if done else placed,
    }


def shipment_rows(world: World, i: int) -> list[dict[str, Any]]:
    stage = world.stage(i)
    if stage not in ("shipped", "partially_shipped"):
        return []
    placed = world.placed_at(i) + timedelta(days=2)
    count = 2 if i % 10 == 0 else 1
    on_shopify = placed if world.finished(i) else None
    return [
        {
            "shipment_key": f"D{i}-S{n}",
            "dcl_order_number": f"D{i}",
            "item_fulfillment_id": f"IF{i}-{n}",
            "on_shopify_at": on_shopify,
            "shopify_fulfillment_id": f"gid://shopify/Fulfillment/{i}{n}" if on_shopify else None,
            "created_at": placed,
            "updated_at": placed,
        }
        for n in range(count)
    ]


def hold_row(world: World, i: int) -> dict[str, Any]:
    """Every order's edit-window hold (30 minutes after payment); the newest few still active."""
    placed = world.placed_at(i)
    active = i > world.orders - min(300, world.in_flight)
    return {
        "shopify_order_id": str(5_000_000 + i),
        "reason": "edit_window",
        "detail": "edit window",
        "release": "at_time",
        "until": placed + timedelta(minutes=30),
        "placed_at": placed,
        "placed_by": "flow A",
        "released_at": None if active else placed + timedelta(minutes=30),
        "released_by": None if active else "holds",
        "shopify_hold_ids": ["gid://shopify/FulfillmentHold/1"] if active else None,
    }


def inbox_rows(world: World, i: int) -> list[dict[str, Any]]:
    placed = world.placed_at(i)
    rows = [
        {
            "source": "shopify",
            "event_id": f"evt-{i}-{topic}",
            "topic": topic,
            "resource_id": str(5_000_000 + i),
            "triggered_at": placed.isoformat(),
            "received_at": placed,
            "payload": {"id": 5_000_000 + i, "name": f"#{100_000 + i}"},
        }
        for topic in ("orders/create", "orders/paid")
    ]
    if i % 20 == 0:  # a helpdesk ticket for one order in twenty
        rows.append(
            {
                "source": "gorgias",
                "event_id": f"ticket-{i}",
                "topic": "ticket-created",
                "resource_id": str(i),
                "triggered_at": placed.isoformat(),
                "received_at": placed + timedelta(days=4),
                "payload": {"ticket": {"id": i}},
            }
        )
    return rows


def audit_rows(world: World, i: int) -> list[dict[str, Any]]:
    placed = world.placed_at(i)
    return [
        {
            "at": placed,
            "system": "netsuite",
            "operation": "salesOrder.create",
            "record": str(5_000_000 + i),
            "outcome": "ok",
            "remote_id": str(i),
            "detail": "created",
        },
        {
            "at": placed + timedelta(days=2),
            "system": "shopify",
            "operation": "fulfillmentCreate",
            "record": f"D{i}-S0",
            "outcome": "ok",
            "remote_id": f"{i}",
            "detail": "tracking on Shopify",
        },
    ]


def exception_row(world: World, i: int) -> dict[str, Any] | None:
    """2 % of orders had an exception, resolved; the stuck ones and a few in flight have open ones."""
    placed = world.placed_at(i)
    open_now = world.stuck(i) or (not world.finished(i) and i % 40 == 0)
    if not open_now and i % 50 != 11:
        return None
    return {
        "flow": "A",
        "entity": "order",
        "key": str(5_000_000 + i),
        "reason": "unknown_sku",
        "message": "SKU not in NetSuite",
        "status": ("retrying" if i % 80 == 0 else "open") if open_now else "resolved",
        "attempts": 1,
        "context": None,
        "first_seen": placed,
        "last_seen": placed,
        "resolved_at": None if open_now else placed + timedelta(hours=5),
    }


def request_and_return_rows(world: World, i: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A refund request for one order in 25, a return for one in 33 (the newest still open)."""
    placed = world.placed_at(i) + timedelta(days=5)
    recent = i > world.orders - min(300, world.in_flight)
    requests, returns = [], []
    if i % 25 == 0:
        requests.append(
            {
                "request_key": f"gorgias:ticket-{i}",
                "kind": "refund",
                "source": "gorgias",
                "ticket_system": "gorgias",
                "ticket_id": str(i),
                "shopify_order_id": str(5_000_000 + i),
                "order_name": f"#{100_000 + i}",
                "requester": None,
                "details": {},
                "status": "received" if recent else "done",
                "decision": None,
                "outcome": None,
                "decided_by": None,
                "decided_at": None,
                "created_at": placed,
                "updated_at": placed,
            }
        )
    if i % 33 == 0:
        returns.append(
            {
                "return_key": f"return-{i}",
                "request_id": None,
                "shopify_order_id": str(5_000_000 + i),
                "order_name": f"#{100_000 + i}",
                "status": "awaiting_parcel" if recent else "completed",
                "lines": [],
                "currency": "USD",
                "value": "10.00",
                "refunded": "0" if recent else "10.00",
                "country": "US",
                "rma_number": f"RMA{i}",
                "instant": False,
                "label_sent_at": placed,
                "deadline_at": None,
                "reminders_sent": 0,
                "received_at": None,
                "refunded_at": None,
                "outcome": None,
                "created_at": placed,
                "updated_at": placed,
            }
        )
    return requests, returns


def fill(engine: sa.Engine, world: World) -> dict[str, int]:
    """Bulk-insert the year, ``CHUNK`` orders at a time; the rows written per table."""
    counts: dict[str, int] = {}
    makers = {
        "order_journeys": lambda i: [journey_row(world, i)],
        "shipments": lambda i: shipment_rows(world, i),
        "order_holds": lambda i: [hold_row(world, i)],
        "inbox_events": lambda i: inbox_rows(world, i),
        "audit_log": lambda i: audit_rows(world, i),
        "exceptions": lambda i: [row] if (row := exception_row(world, i)) else [],
        "service_requests": lambda i: request_and_return_rows(world, i)[0],
        "returns": lambda i: request_and_return_rows(world, i)[1],
    }
    for start in range(1, world.orders + 1, CHUNK):
        numbers = range(start, min(start + CHUNK, world.orders + 1))
        for name, make in makers.items():
            rows = [row for i in numbers for row in make(i)]
            if rows:
                bulk_insert(engine, schema.metadata.tables[name], rows)
                counts[name] = counts.get(name, 0) + len(rows)
        if start // CHUNK % 10 == 0:
            log(f"  {numbers[-1]:,} orders written")
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE"))  # as autovacuum would have by now
    return counts


def bulk_insert(engine: sa.Engine, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert through the driver, not SQLAlchemy's per-row processing (a million orders are ~8
    million rows): ``executemany`` on SQLite, ``COPY … FROM STDIN`` on PostgreSQL."""
    columns = list(rows[0])
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "sqlite":
            marks = ", ".join("?" for _ in columns)
            values = [tuple(_sqlite_value(row[c]) for c in columns) for row in rows]
            cursor.executemany(f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})", values)
        else:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerows([_pg_value(row[c]) for c in columns] for row in rows)
            buffer.seek(0)
            cursor.copy_expert(
                f"COPY {table.name} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)", buffer
            )
        raw.commit()
    finally:
        raw.close()


def _sqlite_value(value: Any) -> Any:
    """As SQLAlchemy stores it on SQLite: naive UTC text for datetimes, JSON text, 0/1."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, bool):
        return int(value)
    return value


def _pg_value(value: Any) -> Any:
    """A CSV field for COPY: NULL is an unquoted empty field (the rows hold no empty strings)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


# -- the sensors -----------------------------------------------------------------------------------


def seeded_cursors(engine: sa.Engine) -> dict[str, str]:
    """Cursors of a running deployment: the inbox sensors are at the inbox's end (a tick reads what
    arrived since the last one), and their last API poll was just now; the returns sensor's tick is
    one that polls."""
    inbox = schema.inbox_events
    with engine.connect() as conn:
        last = dict(
            conn.execute(sa.select(inbox.c.source, sa.func.max(inbox.c.id)).group_by(inbox.c.source)).all()
        )
    now = datetime.now(UTC).isoformat()
    shopify = last.get("shopify", 0)
    marks = {
        "gorgias": last.get("gorgias", 0),
        "zendesk": 0,
        "shopify-refunds": shopify,
        "shopify-returns": shopify,
    }
    return {
        "shopify_orders_sensor": json.dumps({"inbox_id": max(0, shopify - 20), "polled_at": now}),
        "service_requests_sensor": json.dumps({"inbox": marks, "polled_at": now}),
        # Its ticks between polls of DCL's RMAs skip at once; measure the ticks that poll.
        "returns_sensor": "{}",
    }


class SqlClock:
    """Seconds the ledger's database spent on the statements of one tick (every engine on ``url``:
    the `LedgerResource` opens its own per tick), apart from Python, HTTP and Dagster's own storage."""

    def __init__(self, url: str) -> None:
        self.url, self.seconds, self.statements = url, 0.0, 0
        sa.event.listen(sa.engine.Engine, "before_cursor_execute", self._before)
        sa.event.listen(sa.engine.Engine, "after_cursor_execute", self._after)

    def _mine(self, conn: sa.Connection) -> bool:
        return conn.engine.url.render_as_string(hide_password=False) == self.url

    def _before(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if self._mine(conn):
            conn.info["sql_started"] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if self._mine(conn):
            self.seconds += time.perf_counter() - conn.info.pop("sql_started")
            self.statements += 1

    def reset(self) -> None:
        self.seconds, self.statements = 0.0, 0

    def close(self) -> None:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", self._before)
        sa.event.remove(sa.engine.Engine, "after_cursor_execute", self._after)


def tick(
    defs: dg.Definitions, instance: dg.DagsterInstance, name: str, cursor: str | None
) -> tuple[float, str | None]:
    """One evaluation of sensor ``name`` as the daemon's code server does it (only the resources the
    sensor needs are built): seconds and the cursor it leaves."""
    repository = defs.get_repository_def()
    sensor = repository.get_sensor_def(name)
    top_level = repository.get_top_level_resources()
    needed = get_transitive_required_resource_keys(sensor.required_resource_keys, top_level)
    resources = {key: value for key, value in top_level.items() if key in needed}
    started = time.perf_counter()
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, sensor_name=name, resources=resources, repository_def=repository
    ) as context:
        data = sensor.evaluate_tick(context)
    return time.perf_counter() - started, data.cursor


def measure_sensors(
    defs: dg.Definitions, instance: dg.DagsterInstance, engine: sa.Engine, clock: SqlClock, ticks: int
) -> dict[str, dict[str, float]]:
    """Per sensor, the median of ``ticks`` ticks (after one that sets its cursor): the whole tick
    and the ledger's SQL in it, in milliseconds, and the statements it ran."""
    seeds = seeded_cursors(engine)
    sensors = defs.get_repository_def().sensor_defs
    # Dagster's own automation sensor (declarative automation) is evaluated by the daemon, not here.
    flow_sensors = [s.name for s in sensors if not isinstance(s, dg.AutomationConditionSensorDefinition)]
    medians = {}
    for sensor in sorted(flow_sensors):
        _, cursor = tick(defs, instance, sensor, seeds.get(sensor))
        walls, sqls, statements = [], [], []
        for _ in range(ticks):
            clock.reset()
            seconds, _ = tick(defs, instance, sensor, seeds.get(sensor, cursor))
            walls.append(seconds)
            sqls.append(clock.seconds)
            statements.append(clock.statements)
        medians[sensor] = {
            "tick_ms": round(statistics.median(walls) * 1000, 1),
            "sql_ms": round(statistics.median(sqls) * 1000, 1),
            "statements": statistics.median(statements),
        }
    return medians


def live_rows(engine: sa.Engine) -> dict[str, int]:
    names = ["order_journeys", "shipments", "order_holds", "inbox_events", "audit_log", "exceptions"]
    with engine.connect() as conn:
        return {name: conn.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one() for name in names}


def set_sensor_indexes(engine: sa.Engine, present: bool) -> None:
    with engine.begin() as conn:
        for name, (table, columns) in SENSOR_INDEXES.items():
            conn.execute(sa.text(f"DROP INDEX IF EXISTS {name}"))
            if present:
                conn.execute(sa.text(f"CREATE INDEX {name} ON {table} ({', '.join(columns)})"))
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("ANALYZE order_journeys; ANALYZE inbox_events"))


# -- one backend ------------------------------------------------------------------------------------


@contextlib.contextmanager
def ledger_url(backend: str, tmp: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'ledger.db'}"
        return
    name = f"mienne_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run_backend(backend: str, s: Settings, sandbox_url: str, tmp: Path) -> dict[str, Any]:
    with ledger_url(backend, tmp) as url, dg.instance_for_test() as instance:
        upgrade_ledger(url)
        engine = sa.create_engine(url)
        world = World(s.orders, s.in_flight, datetime.now(UTC))
        log(f"{backend}: filling the ledger with {s.orders:,} orders ({s.in_flight:,} in flight)")
        started = time.perf_counter()
        written = fill(engine, world)
        fill_seconds = round(time.perf_counter() - started, 1)
        log(f"{backend}: filled in {fill_seconds} s: {written}")
        resources = build_resources()
        resources["ledger"] = LedgerResource(url=url)
        defs = build_definitions(resources)
        clock = SqlClock(url)
        states: dict[str, Any] = {}
        for state, action in (
            ("without 0009 indexes", lambda: set_sensor_indexes(engine, present=False)),
            ("with 0009 indexes", lambda: set_sensor_indexes(engine, present=True)),
            ("after archive", lambda: archive(engine, s, states)),
        ):
            action()
            sensors = measure_sensors(defs, instance, engine, clock, s.ticks)
            states[state] = {"live_rows": live_rows(engine), "sensors": sensors}
            log(
                f"{backend}: {state}: "
                + ", ".join(f"{n} {m['tick_ms']}/{m['sql_ms']}" for n, m in sensors.items())
            )
        clock.close()
        engine.dispose()
        return {"fill_seconds": fill_seconds, "rows_written": written, "states": states}


def archive(engine: sa.Engine, s: Settings, states: dict[str, Any]) -> None:
    started = time.perf_counter()
    moved = archive_ledger(engine, ArchivePolicy(timedelta(days=s.archive_days), batch_size=10_000))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))  # as autovacuum would after a big delete
    states["archive"] = {"seconds": round(time.perf_counter() - started, 1), "moved": dict(moved)}
    log(f"archived in {states['archive']['seconds']} s: {dict(moved)}")


def isolate_environment(state_dir: Path, sandbox_url: str) -> None:
    """Every system on the sandbox, never a live one; no real ledger."""
    for variable in (*LIVE_SWITCHES.values(), "MIENNE_LEDGER_URL"):
        os.environ.pop(variable, None)
    os.environ["MIENNE_SANDBOX_URL"] = sandbox_url
    os.environ["MIENNE_STATE_DIR"] = str(state_dir)


def report(results: dict[str, Any]) -> None:
    """A Markdown table per backend: tick / SQL milliseconds per sensor in each state."""
    columns = ["without 0009 indexes", "with 0009 indexes", "after archive"]
    for backend, result in results["backends"].items():
        states = result["states"]
        print(f"\n{backend}: {results['orders']:,} orders; median ms per tick: whole tick / ledger SQL")
        print("| sensor | " + " | ".join(columns) + " |")
        print("|---|" + "---:|" * len(columns))
        for name in states["with 0009 indexes"]["sensors"]:
            cells = [states[c]["sensors"][name] for c in columns]
            print(f"| {name} | " + " | ".join(f"{m['tick_ms']} / {m['sql_ms']}" for m in cells) + " |")
        before, after = (
            states[c]["live_rows"]["order_journeys"] for c in ("with 0009 indexes", "after archive")
        )
        print(f"live order_journeys: {before:,} -> {after:,}; archive took {states['archive']['seconds']} s")


def main(argv: list[str] | None = None) -> int:
    s = parse_args(argv)
    for name in ("dagster", "mienne_ops", "httpx", "uvicorn", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)
    results: dict[str, Any] = {
        "orders": s.orders,
        "in_flight": s.in_flight,
        "ticks": s.ticks,
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "backends": {},
    }
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mienne-ticks-")))
        sandbox = stack.enter_context(SandboxServer(tmp / "world.db"))
        isolate_environment(tmp / "state", sandbox.url)
        for backend in s.backends:
            results["backends"][backend] = run_backend(backend, s, sandbox.url, tmp)
    s.output.parent.mkdir(parents=True, exist_ok=True)
    s.output.write_text(json.dumps(results, indent=2))
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
