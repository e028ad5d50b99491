"""The soak: orders through A → B → C on the operator's stack while it is killed and attacked.

The stack is the one an operator runs: the sandbox (every vendor, in this process, never killed),
`mienne-ops webhooks serve` (a process), `dagster-daemon run` (a process group: daemon, code server,
run workers) and the ledger (SQLite, or a private PostgreSQL cluster). While orders are placed in
waves, with 5xx and 429 on every system and 30 % of the webhooks dropped and 30 % duplicated:

- the *chaos* thread kills, at random moments, the daemon's whole process group (then starts a new
  daemon), one run worker in its step, the receiver (then starts it again and re-subscribes: Shopify
  removes a subscription after 8 failed deliveries) and, on PostgreSQL, restarts the database; after
  each it measures the recovery time (`Chaos.recovered`);
- the *attacker* thread sends forged and replayed deliveries to the receiver (`ATTACKS`) and records
  every answer;
- the *warehouse* thread ships every DCL order (the sandbox's control plane).

It ends when every order is shipped and fulfilled (or at the duration cap); the verdict comes from
the vendors' state only (`soak_verdict.judge`). `bench/soak.py` is the command line;
`mienne_ops_tests/e2e/test_soak_short.py` runs a short one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import random
import signal
import statistics
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import httpx

from mienne_ops.cli import subscribe_order_webhooks
from mienne_ops.devtools.daemon import run_worker_pid
from mienne_ops.devtools.harness import sandbox_state
from mienne_ops.devtools.soak_stack import PrivatePostgres, ReceiverProcess, RestartableDaemon, child_env
from mienne_ops.devtools.soak_verdict import judge, progress
from mienne_ops.flows.common import TAG_FLOW
from mienne_ops.flows.run_launcher import WorkerStatus, local_worker_health, run_worker
from mienne_ops.ledger import Ledger
from mienne_ops.ledger.migrate import upgrade_ledger
from mienne_ops.resources import LIVE_SWITCHES
from mienne_ops.sandbox import credentials
from mienne_ops.sandbox.order_factory import build_order
from mienne_ops.sandbox.server import SandboxServer

FLOWS = ("A", "B", "C")
IN_PROGRESS = (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED)
KINDS = ("daemon", "run_worker", "receiver", "postgres")


@dataclass(frozen=True)
class SoakSettings:
    orders: int = 1000
    ledger: str = "sqlite"  # or "postgres"
    seed: int = 2026
    kills: int = 3  # of each kind
    duration: float = 3600.0  # seconds: the cap on the whole soak
    rate: float = 60.0  # orders placed per minute
    wave: int = 10  # orders per wave
    error_rate: float = 0.03  # injected 5xx per API call, every system
    rate_429: float = 0.02  # chance a burst of three 429s starts, every system
    webhook_drop: float = 0.3
    webhook_duplicate: float = 0.3
    attack_every: float = 2.0  # seconds between forged deliveries
    reconcile_seconds: int = 60  # flow A's reconciliation poll (finds orders whose webhooks were dropped)
    kill_gap: tuple[float, float] = (20.0, 60.0)  # seconds between a recovery and the next kill
    recovery_guard: float = 900.0  # seconds: a kill not recovered by then is reported as such
    # Kills at random moments may all come after the last order is done when the soak is short.
    # Paced, kill i waits until i+1 of every K+1 parts of the orders are placed, and the placer waits
    # at the next part until that kill is made: every kill lands while orders are on their way.
    pace_kills_by_orders: bool = False
    workdir: Path | None = None
    # The deployment's MIENNE_LIMITER_URL (Redis): the daemon, its sensors and every run worker take
    # Shopify's points and NetSuite's slots from one account-wide limiter. None: each process
    # predicts the bucket alone, and their collisions come back THROTTLED.
    limiter_url: str | None = None


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- kills and recoveries ---------------------------------------------------------------------------
@dataclass
class Kill:
    kind: str
    at: float  # time.time()
    detail: str = ""
    blocked: list[str] = field(default_factory=list)  # flows with a run in flight at the kill
    recovery_seconds: float | None = None
    # Until a run of every blocked flow *started* after the kill: the flow is no longer blocked.
    # Recovery waits on top of that for such a run to succeed, which a 429 burst can delay for minutes.
    resumed_seconds: float | None = None


class Chaos(threading.Thread):
    """Kills of each kind in a shuffled order, at random moments, one at a time; after each, waits
    for the recovery: a run of every blocked flow (or, if none was in flight, of any flow) started
    after the kill has succeeded; for the receiver, a delivery stored after the restart."""

    def __init__(self, soak: Soak) -> None:
        super().__init__(name="soak-chaos", daemon=True)
        self.soak = soak
        self.rng = random.Random(soak.settings.seed + 1)
        kinds = ["daemon", "run_worker", "receiver"] + (
            ["postgres"] if soak.settings.ledger == "postgres" else []
        )
        self.plan = [kind for kind in kinds for _ in range(soak.settings.kills)]
        self.rng.shuffle(self.plan)
        self.kills: list[Kill] = []
        self.errors: list[str] = []
        self.attempted = 0  # kills made, skipped (nothing to kill) or failed: the placer's gate

    def run(self) -> None:
        soak = self.soak
        # First the stack must work at all: one flow A run has succeeded.
        while not soak.stopping.is_set() and not soak.succeeded_since("A", 0):
            soak.stopping.wait(2)
        for index, kind in enumerate(self.plan):
            if not self.wait_for_orders(index):
                return
            if soak.stopping.wait(self.rng.uniform(*soak.settings.kill_gap)) or soak.all_done.is_set():
                return
            try:
                kill = getattr(self, f"kill_{kind}")()
            except Exception as error:  # a kill that could not be done is reported, not fatal
                self.errors.append(f"{kind}: {type(error).__name__}: {error}")
                log(f"chaos: {kind} kill failed: {error}")
                continue
            finally:
                self.attempted += 1
            if kill is None:
                continue
            self.kills.append(kill)
            log(f"chaos: killed {kind} {kill.detail}; blocked flows {kill.blocked or 'none'}")
            self.wait_recovered(kill)
            recovered = (
                f"{kill.recovery_seconds:.1f} s" if kill.recovery_seconds is not None else "NOT recovered"
            )
            resumed = f"{kill.resumed_seconds:.1f} s" if kill.resumed_seconds is not None else "never"
            log(f"chaos: {kind} resumed in {resumed}, recovered in {recovered}")

    def gate(self, index: int) -> int:
        """Paced: the orders placed before kill ``index`` may be made (see SoakSettings)."""
        return (index + 1) * self.soak.settings.orders // (len(self.plan) + 1)

    def wait_for_orders(self, index: int) -> bool:
        soak = self.soak
        if not soak.settings.pace_kills_by_orders:
            return True
        while len(soak.placed) < self.gate(index) and not soak.all_placed.is_set():
            if soak.stopping.wait(1):
                return False
        return True

    def may_place(self, placed: int) -> bool:
        """Paced: the placer may place order number ``placed + 1`` (not past the next kill's gate
        and one wave, until that kill has been made)."""
        if not self.soak.settings.pace_kills_by_orders or not self.is_alive():
            return True
        if self.attempted >= len(self.plan):
            return True
        return placed < self.gate(self.attempted) + self.soak.settings.wave

    # Each kill returns the Kill, or None when there was nothing to kill.
    def kill_daemon(self) -> Kill:
        blocked = self.soak.flows_in_flight()
        at = time.time()
        self.soak.daemon_restarting.set()  # `wait_done` must not take the restart for a death
        try:
            self.soak.daemon.kill9()
            self.soak.daemon.start()  # a container restart: a new daemon on the same instance
        finally:
            self.soak.daemon_restarting.clear()
        return Kill("daemon", at, f"(process group; restarted in {time.time() - at:.1f} s)", blocked)

    def kill_run_worker(self) -> Kill | None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not self.soak.stopping.is_set():
            target = self.soak.run_in_its_step()
            if target is not None:
                run_id, flow, pid = target
                time.sleep(self.rng.uniform(0, 2))  # a random moment inside the step
                if not self.soak.still_working(run_id, pid):
                    continue  # it finished meanwhile (its pid may be another process's now)
                at = time.time()
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue  # it finished meanwhile: pick another
                return Kill("run_worker", at, f"(flow {flow} run {run_id[:8]}, pid {pid})", [flow])
            time.sleep(0.5)
        return None

    def kill_receiver(self) -> Kill:
        soak = self.soak
        at = time.time()
        soak.inbox_mark = soak.ledger.last_event_id("shopify")
        soak.receiver.kill9()
        down = self.rng.uniform(1, 5)
        time.sleep(down)
        soak.receiver.start()
        soak.subscribe()  # Shopify drops a subscription after 8 failed deliveries
        return Kill("receiver", at, f"(down {down:.1f} s)")

    def kill_postgres(self) -> Kill:
        soak = self.soak
        blocked = soak.flows_in_flight()
        soak.inbox_mark = soak.ledger.last_event_id("shopify")
        at = time.time()
        assert soak.postgres is not None
        soak.postgres.restart()
        return Kill("postgres", at, f"(pg_ctl restart -m fast: {time.time() - at:.1f} s)", blocked)

    def wait_recovered(self, kill: Kill) -> None:
        soak = self.soak
        deadline = time.monotonic() + soak.settings.recovery_guard
        while time.monotonic() < deadline and not soak.stopping.is_set():
            if kill.resumed_seconds is None and (started := soak.resumed(kill)) is not None:
                kill.resumed_seconds = started - kill.at
            done = soak.recovered(kill)
            if done is not None:
                kill.recovery_seconds = done - kill.at
                if kill.resumed_seconds is None:  # the run started and succeeded between two looks
                    kill.resumed_seconds = (soak.resumed(kill) or done) - kill.at
                return
            time.sleep(0.5)


# -- the attacker -----------------------------------------------------------------------------------
#: Each forged delivery and what the receiver must answer. A same-event replay is answered 200 but
#: stored nothing (``stored: false``); a replay under another topic is signed (the HMAC covers the
#: body only), but its body is not a cancelled order, so it is refused (and, were it stored, the
#: cancel path would re-read the order from Shopify: the verdict checks the vendors either way).
ATTACKS = {
    "bad_signature": "401",
    "wrong_shop": "403",
    "stale_triggered_at": "422",
    "future_triggered_at": "422",
    "replay_same_event": "200, stored false",
    "replay_as_cancelled": "422",
}


@dataclass
class Attack:
    kind: str
    status: int
    stored: bool | None
    order_id: str | None

    @property
    def refused(self) -> bool:
        if 400 <= self.status < 500:
            return True
        if self.kind == "replay_same_event":
            return self.status == 200 and self.stored is False
        return False


def sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class Attacker(threading.Thread):
    def __init__(self, soak: Soak) -> None:
        super().__init__(name="soak-attacker", daemon=True)
        self.soak = soak
        self.rng = random.Random(soak.settings.seed + 2)
        self.attacks: list[Attack] = []
        self.unanswered = 0  # receiver down or 5xx: not an answer, sent again later

    def captured(self) -> list[dict[str, Any]]:
        """Deliveries the receiver took (an eavesdropper's captures): body, headers' values."""
        shopify = self.soak.sandbox.hub.system("shopify")
        return [
            e
            for e in shopify.deliveries.entries()[-400:]
            if e.get("outcome") == "delivered" and e.get("topic") == "orders/create" and e.get("body")
        ]

    def run(self) -> None:
        soak = self.soak
        while not soak.stopping.wait(self.rng.uniform(0.5, 1.5) * soak.settings.attack_every):
            captures = self.captured()
            if not captures:
                continue
            capture = self.rng.choice(captures[-50:])
            kind = self.rng.choice(list(ATTACKS))
            try:
                attack = self.send(kind, capture)
            except httpx.HTTPError:
                self.unanswered += 1
                continue
            if attack is None:
                self.unanswered += 1
                continue
            self.attacks.append(attack)
            if not attack.refused:
                log(f"attacker: {kind} ACCEPTED ({attack.status}, stored {attack.stored})")

    def send(self, kind: str, capture: dict[str, Any]) -> Attack | None:
        body = capture["body"].encode()
        secret = credentials.SHOPIFY["api_secret"]
        now = datetime.now(UTC)
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": capture["topic"],
            "X-Shopify-Hmac-Sha256": sign(body, secret),
            "X-Shopify-Shop-Domain": credentials.SHOPIFY["shop_domain"],
            "X-Shopify-API-Version": credentials.SHOPIFY["api_version"],
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Event-Id": str(uuid.uuid4()),
            "X-Shopify-Triggered-At": now.isoformat(),
        }
        if kind == "bad_signature":
            headers["X-Shopify-Hmac-Sha256"] = sign(body, secret + "-guessed")
        elif kind == "wrong_shop":
            headers["X-Shopify-Shop-Domain"] = "attacker-shop.myshopify.com"
        elif kind == "stale_triggered_at":
            headers["X-Shopify-Triggered-At"] = (now - timedelta(days=3)).isoformat()
        elif kind == "future_triggered_at":
            headers["X-Shopify-Triggered-At"] = (now + timedelta(days=1)).isoformat()
        elif kind == "replay_same_event":
            headers["X-Shopify-Event-Id"] = capture["event_id"]
        elif kind == "replay_as_cancelled":
            headers["X-Shopify-Topic"] = "orders/cancelled"
        response = httpx.post(self.soak.receiver.url, content=body, headers=headers, timeout=15)
        if response.status_code >= 500:
            return None
        stored = None
        if response.status_code == 200:
            stored = bool(response.json().get("stored"))
        order_id = str(json.loads(body).get("id"))
        return Attack(kind, response.status_code, stored, order_id)


# -- placing orders and playing the warehouse -------------------------------------------------------
class Placer(threading.Thread):
    def __init__(self, soak: Soak, chaos: Chaos) -> None:
        super().__init__(name="soak-placer", daemon=True)
        self.soak = soak
        self.chaos = chaos
        self.rng = random.Random(soak.settings.seed)

    def run(self) -> None:
        s, soak = self.soak.settings, self.soak
        every = s.wave / s.rate * 60
        catalog = soak.sandbox.hub.catalog
        with httpx.Client(base_url=soak.sandbox.url, timeout=60) as client:
            while len(soak.placed) < s.orders and not soak.stopping.is_set():
                started = time.monotonic()
                for _ in range(min(s.wave, s.orders - len(soak.placed))):
                    while not self.chaos.may_place(len(soak.placed)):
                        if soak.stopping.wait(1):
                            return
                    response = client.post("/_sandbox/shopify/orders", json=build_order(catalog, self.rng))
                    response.raise_for_status()
                    soak.placed.append(str(response.json()["id"]))
                soak.stopping.wait(max(0.0, every - (time.monotonic() - started)))
        soak.all_placed.set()


class Warehouse(threading.Thread):
    """Ships every DCL order in one shipment (as the e2e tests do through the control plane)."""

    def __init__(self, soak: Soak) -> None:
        super().__init__(name="soak-warehouse", daemon=True)
        self.soak = soak
        self.shipped: set[str] = set()

    def run(self) -> None:
        dcl = self.soak.sandbox.hub.system("dcl")
        with httpx.Client(base_url=self.soak.sandbox.url, timeout=60) as client:
            while not self.soak.stopping.wait(5):
                for order in dcl.list_orders():
                    number = str(order["order_number"])
                    if number in self.shipped or order.get("shipments") or order.get("is_cancelled"):
                        continue
                    response = client.post(f"/_sandbox/dcl/orders/{number}/ship", json={})
                    if response.status_code == 200:
                        self.shipped.add(number)


# -- the soak ---------------------------------------------------------------------------------------
class Soak:
    def __init__(self, settings: SoakSettings) -> None:
        self.settings = settings
        self.placed: list[str] = []
        self.stopping = threading.Event()
        self.all_placed = threading.Event()
        self.all_done = threading.Event()
        self.daemon_restarting = threading.Event()
        self.inbox_mark = 0
        self.postgres: PrivatePostgres | None = None
        self.timeline: list[dict[str, Any]] = []

    # -- the stack ----------------------------------------------------------------------------------
    def start(self) -> None:
        s = self.settings
        self.workdir = s.workdir or Path(tempfile.mkdtemp(prefix=f"mienne-soak-{s.ledger}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        log(f"soak: {s.orders} orders on {s.ledger}; logs and state in {self.workdir}")
        self.sandbox = SandboxServer(self.workdir / "sandbox.db").start()
        state = self.workdir / "state"
        env = {
            "MIENNE_SANDBOX_URL": self.sandbox.url,
            "MIENNE_SANDBOX_SMTP_PORT": str(self.sandbox.smtp_port),
            "MIENNE_STATE_DIR": str(state),
            "MIENNE_EDIT_WINDOW_MINUTES": "0",  # no edit window: orders go to DCL at once
            "MIENNE_RECONCILE_EVERY_SECONDS": str(s.reconcile_seconds),
            "DAGSTER_HOME": str(self.workdir / "dagster_home"),
            # The daemon's calls to its code server (a run's launch) wait longer than Dagster's 60 s:
            # on a box this busy a launch that timed out failed its run before it started.
            "DAGSTER_GRPC_TIMEOUT_SECONDS": "300",
            "PROMETHEUS_MULTIPROC_DIR": str(self.workdir / "prometheus"),
        }
        (self.workdir / "prometheus").mkdir(exist_ok=True)
        if s.limiter_url:
            env["MIENNE_LIMITER_URL"] = s.limiter_url
            env["MIENNE_LIMITER_PREFIX"] = f"mienne-soak-{self.workdir.name}"  # this soak's own limits
        if s.ledger == "postgres":
            self.postgres = PrivatePostgres(self.workdir / "postgres").start()
            env["MIENNE_LEDGER_URL"] = self.postgres.create_database("mienne_soak")
        for variable in (*LIVE_SWITCHES.values(), "MIENNE_LEDGER_URL", "MIENNE_LIMITER_URL"):
            os.environ.pop(variable, None)
        os.environ.update(env)
        ledger_url = env.get("MIENNE_LEDGER_URL") or f"sqlite:///{state / 'ledger.db'}"
        state.mkdir(parents=True, exist_ok=True)
        upgrade_ledger(ledger_url)
        self.ledger = Ledger(ledger_url)
        children = child_env(env)
        self.receiver = ReceiverProcess(children, self.workdir / "receiver.log", self.workdir).start()
        self.subscribe()
        self.daemon = RestartableDaemon(self.workdir / "dagster_home", children, self.workdir / "daemon.log")
        self.daemon.start()
        self.instance = dg.DagsterInstance.from_config(str(self.workdir / "dagster_home"))
        faults = {"error_rate": s.error_rate, "rate_429": s.rate_429, "burst_length": 3}
        webhooks = {"webhook_drop_rate": s.webhook_drop, "webhook_duplicate_rate": s.webhook_duplicate}
        body = {"*": faults, "shopify": {**faults, **webhooks}, "seed": s.seed}
        httpx.post(f"{self.sandbox.url}/_sandbox/faults", json=body, timeout=30).raise_for_status()

    def subscribe(self) -> None:
        for attempt in range(10):  # the sandbox's injected faults apply to this call too
            try:
                subscribe_order_webhooks(self.receiver.url)
                return
            except Exception:
                if attempt == 9:
                    raise
                time.sleep(1)

    def stop(self) -> None:
        """Stops whatever `start` got to start, even when it failed half-way or a Ctrl-C came."""
        self.stopping.set()
        parts = [
            getattr(self, "daemon", None) and self.daemon.stop,
            getattr(self, "receiver", None) and self.receiver.stop,
            getattr(self, "sandbox", None) and self.sandbox.stop,
            getattr(self, "ledger", None) and self.ledger.dispose,
            getattr(self, "instance", None) and self.instance.dispose,
            self.postgres and self.postgres.stop,
        ]
        for stop in filter(None, parts):
            try:
                stop()
            except BaseException as error:  # the rest must still stop, a second Ctrl-C included
                log(f"soak: stopping: {type(error).__name__}: {error}")

    # -- what the daemon's instance says ------------------------------------------------------------
    def flow_records(self, flow: str, **filters: Any) -> list[dg.RunRecord]:
        return list(self.instance.get_run_records(filters=dg.RunsFilter(tags={TAG_FLOW: flow}, **filters)))

    def flows_in_flight(self) -> list[str]:
        return [f for f in FLOWS if self.flow_records(f, statuses=list(IN_PROGRESS))]

    def succeeded_since(self, flow: str, moment: float) -> float | None:
        """When the first run of ``flow`` that started after ``moment`` succeeded, if one has."""
        after = datetime.fromtimestamp(moment, UTC)
        ends = [
            r.end_time
            for r in self.flow_records(flow, statuses=[dg.DagsterRunStatus.SUCCESS], updated_after=after)
            if r.start_time is not None and r.start_time > moment and r.end_time is not None
        ]
        return min(ends) if ends else None

    def run_in_its_step(self) -> tuple[str, str, int] | None:
        """A started run of flow A, B or C whose step has started, with its worker's pid."""
        records = [r for f in FLOWS for r in self.flow_records(f, statuses=[dg.DagsterRunStatus.STARTED])]
        random.shuffle(records)
        for record in records:
            run_id = record.dagster_run.run_id
            if not self.instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START):
                continue
            pid = run_worker_pid(self.instance, run_id)
            if pid is not None:
                return run_id, record.dagster_run.tags[TAG_FLOW], pid
        return None

    def still_working(self, run_id: str, pid: int) -> bool:
        """The run is still STARTED and ``pid`` is still its worker (not a reused pid)."""
        run = self.instance.get_run_by_id(run_id)
        worker = run_worker(self.instance, run_id)
        if run is None or run.status != dg.DagsterRunStatus.STARTED or worker is None or worker.pid != pid:
            return False
        return local_worker_health(worker).status == WorkerStatus.RUNNING

    def started_since(self, flow: str, moment: float) -> float | None:
        """When the first run of ``flow`` that started after ``moment`` started, if one has."""
        after = datetime.fromtimestamp(moment, UTC)
        starts = [
            r.start_time
            for r in self.flow_records(flow, updated_after=after)
            if r.start_time is not None and r.start_time > moment
        ]
        return min(starts) if starts else None

    def resumed(self, kill: Kill) -> float | None:
        """The moment every flow ``kill`` blocked had a run started after it (the receiver and a
        database restart: as `recovered`, which asks for a stored delivery)."""
        flows = [f for f in kill.blocked if f in FLOWS]
        if kill.kind == "receiver" or not flows:
            return self.recovered(kill)
        starts = [self.started_since(f, kill.at) for f in flows]
        return None if None in starts else max(s for s in starts if s is not None)

    def recovered(self, kill: Kill) -> float | None:
        """The moment the stack had recovered from ``kill``, or None while it has not."""
        flows = [f for f in kill.blocked if f in FLOWS]
        if kill.kind in ("receiver", "postgres"):
            stored = self.ledger.last_event_id("shopify") > self.inbox_mark
            if not stored and not self.all_placed.is_set():
                return None
            if kill.kind == "receiver":
                return time.time()
        ends = {f: self.succeeded_since(f, kill.at) for f in flows or FLOWS}
        done = [end for end in ends.values() if end is not None]
        if flows:  # every blocked flow ran again
            return max(done) if len(done) == len(flows) else None
        return min(done) if done else None  # nothing was in flight: the first flow run after it

    # -- the run ------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        started = time.time()
        try:
            self.start()
            chaos = Chaos(self)
            placer, warehouse, attacker = Placer(self, chaos), Warehouse(self), Attacker(self)
            for thread in (chaos, placer, warehouse, attacker):  # chaos first: it paces the placer
                thread.start()
            self.wait_done(started)
            self.all_done.set()
            log("soak: every order shipped and fulfilled" if self.done() else "soak: duration cap reached")
            # Every order done: a recovery still being measured may finish (the flows still run).
            finishing = time.monotonic()
            while self.done() and chaos.is_alive() and time.monotonic() - finishing < 120:
                if not chaos.kills or chaos.kills[-1].recovery_seconds is not None:
                    break
                time.sleep(1)
            self.stopping.set()
            for thread in (placer, warehouse, chaos, attacker):
                thread.join(timeout=60)
            self.wait_quiet(guard=120 if self.done() else 10)
            final = sandbox_state(self.sandbox.url)
            verdict = judge(final, self.placed)
            deliveries = self.sandbox.hub.system("shopify").deliveries.entries()
        finally:
            self.stop()
        return self.report(started, verdict, chaos, attacker, deliveries)

    def done(self) -> bool:
        return bool(self.timeline) and self.timeline[-1]["done"] == self.settings.orders

    def wait_done(self, started: float) -> None:
        s = self.settings
        while time.time() - started < s.duration:
            dead = not self.daemon.alive() and not self.daemon_restarting.is_set()
            if dead and not self.stopping.is_set():
                raise RuntimeError(f"the daemon died:\n{self.daemon.log_tail()}")
            figures = progress(self.sandbox.hub.state(), list(self.placed))
            self.timeline.append({"t": round(time.time() - started, 1), **figures})
            log(f"progress: {figures}")
            if self.all_placed.is_set() and figures["done"] == s.orders:
                return
            time.sleep(15)

    def wait_quiet(self, guard: float = 300) -> None:
        """No flow run in flight and no webhook pending: the vendors' state no longer moves."""
        deadline = time.monotonic() + guard
        shopify = self.sandbox.hub.system("shopify")
        while time.monotonic() < deadline:
            if not self.flows_in_flight() and not shopify.pending_webhooks():
                return
            time.sleep(2)

    def report(
        self, started: float, verdict, chaos: Chaos, attacker: Attacker, deliveries: list[dict[str, Any]]
    ) -> dict[str, Any]:
        s = self.settings
        attacks: dict[str, dict[str, int]] = {}
        for attack in attacker.attacks:
            row = attacks.setdefault(attack.kind, {"sent": 0, "refused": 0, "accepted": 0})
            row["sent"] += 1
            row["refused" if attack.refused else "accepted"] += 1
        kills: dict[str, Any] = {}
        for kind in KINDS:
            mine = [k for k in chaos.kills if k.kind == kind]
            if not mine:
                continue
            times = [k.recovery_seconds for k in mine if k.recovery_seconds is not None]
            resumed = [k.resumed_seconds for k in mine if k.resumed_seconds is not None]
            kills[kind] = {
                "kills": len(mine),
                "resumed_max_s": round(max(resumed), 1) if resumed else None,
                "recovered": len(times),
                "recovery_min_s": round(min(times), 1) if times else None,
                "recovery_median_s": round(statistics.median(times), 1) if times else None,
                "recovery_max_s": round(max(times), 1) if times else None,
            }
        outcomes = Counter(e.get("outcome") for e in deliveries)
        accepted = sum(row["accepted"] for row in attacks.values())
        unrecovered = sum(1 for k in chaos.kills if k.recovery_seconds is None)
        result = {
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(s).items()},
            "workdir": str(self.workdir),
            "wall_seconds": round(time.time() - started, 1),
            "placed": len(self.placed),
            # False: the duration cap came first, and "lost" counts orders still on their way too.
            "finished": self.done(),
            "verdict": verdict.summary(),
            "kills": kills,
            "kill_log": [
                {
                    **asdict(k),
                    "at": round(k.at - started, 1),
                    "recovery_seconds": k.recovery_seconds and round(k.recovery_seconds, 1),
                    "resumed_seconds": k.resumed_seconds and round(k.resumed_seconds, 1),
                }
                for k in chaos.kills
            ],
            "chaos_errors": chaos.errors,
            "attacks": attacks,
            "attacks_unanswered": attacker.unanswered,
            "forgeries_sent": sum(row["sent"] for row in attacks.values()),
            "forgeries_refused": sum(row["refused"] for row in attacks.values()),
            "forgeries_accepted": accepted,
            "webhook_deliveries": dict(outcomes),
            "timeline": self.timeline,
        }
        result["ok"] = bool(
            verdict.ok
            and not accepted
            and not unrecovered
            and len(self.placed) == s.orders
            and not chaos.errors
        )
        return result


def run_soak(settings: SoakSettings) -> dict[str, Any]:
    return Soak(settings).run()
